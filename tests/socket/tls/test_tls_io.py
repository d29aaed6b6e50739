"""SSLStreamTransport's own data path: receive modes, non-blocking calls, retry intervals, closing races.

The data path both TLS transports share (echo, bulk, buffers, timeouts,
interrupted sends) is checked once for both by the conformance kit and in
tests/integration/test_tls_contract.py.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any

import pytest

from transports.abc import TLSAttribute, TypedAttributeLookupError
from transports.selector import WouldBlockOnRead
from transports.socket import SocketAttribute, SSLStreamTransport

MiB = 1024 * 1024
MARGIN = 0.5  # how late a timeout may fire on a loaded 2-core machine

TLSPair = Callable[..., tuple[SSLStreamTransport, SSLStreamTransport]]
RunPeer = Callable[[Callable[[], Any]], "Future[Any]"]


def recv_exactly(transport: SSLStreamTransport, size: int, timeout: float = 5.0) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        data = transport.recv(min(size - len(chunks), 256 * 1024), timeout)
        assert data, f"EOF after {len(chunks)} of {size} bytes"
        chunks += data
    return bytes(chunks)


# ---------------------------------------------------------- round trips ----


def test_ping_pong_many_round_trips(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    # Long enough for receives to switch to waiting first and back.
    client, server = tls_pair()
    rounds = 2000

    def echo() -> None:
        for _ in range(rounds):
            server.send_all(recv_exactly(server, 64), 5.0)

    peer = run_peer(echo)
    ping = os.urandom(64)
    for _ in range(rounds):
        client.send_all(ping, 5.0)
        assert recv_exactly(client, 64) == ping
    peer.result(10.0)


# -------------------------------------------------------- receive modes ----


def test_small_reads_take_a_record_already_decrypted(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    # A 16 KiB record read 100 bytes at a time: after the first read, the rest
    # sits decrypted in OpenSSL (pending()) while the socket has nothing to
    # read. A receive that waits for the socket first would time out here.
    client, server = tls_pair()
    record = os.urandom(16 * 1024)
    for method in ("recv", "recv_into"):
        # Put receives in "wait first" mode: one that finds nothing.
        with pytest.raises(TimeoutError):
            client.recv(100, 0.0)
        server.send_all(record, 5.0)
        received = bytearray()
        start = time.monotonic()
        buffer = bytearray(100)
        while len(received) < len(record):
            if method == "recv":
                received += client.recv(100, 2.0)
            else:
                received += buffer[: client.recv_into(buffer, 2.0)]
        assert time.monotonic() - start < 1.5
        assert received == record


def test_noblock_methods(tls_pair: TLSPair) -> None:
    client, server = tls_pair()
    with pytest.raises(WouldBlockOnRead) as caught:
        client.recv_noblock(10)
    assert caught.value.fileno == client.extra(SocketAttribute.socket).fileno()
    assert client.send_noblock(b"abc") == 3
    data = server.recv(3, 5.0)
    assert data == b"abc"
    server.send_all(b"xyz", 5.0)
    buffer = bytearray(3)
    deadline = time.monotonic() + 5.0
    while True:
        try:
            assert client.recv_noblock_into(buffer) == 3
            break
        except WouldBlockOnRead:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert buffer == b"xyz"


# ------------------------------------------------------------ timeouts ----


def test_recv_timeout_against_a_silent_peer(tls_pair: TLSPair) -> None:
    client, _silent = tls_pair()
    operations: list[Callable[[], Any]] = [
        lambda: client.recv(100, 0.3),
        lambda: client.recv_into(bytearray(100), 0.3),
    ]
    for operation in operations * 2:  # try-first, then wait-first mode
        start = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            operation()
        elapsed = time.monotonic() - start
        assert 0.3 <= elapsed < 0.3 + MARGIN
        assert caught.value.errno == errno.ETIMEDOUT


def test_recv_timeout_with_a_short_retry_interval(tls_pair: TLSPair) -> None:
    client, _ = tls_pair(client_retry_interval=0.1)  # several waits, one budget
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        client.recv(100, 0.35)
    assert 0.35 <= time.monotonic() - start < 0.35 + MARGIN


# ------------------------------------------------------ cross-thread close ----


def test_close_from_another_thread_wakes_a_blocked_recv(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    # A retry interval far longer than the test: only the close can wake it.
    client, _ = tls_pair(client_options={"shutdown_timeout": 10.0}, client_retry_interval=30.0)
    started = time.monotonic()
    blocked = run_peer(lambda: client.recv(100, 20.0))
    time.sleep(0.2)
    client.close()  # a receiver waits: no wait for the peer's answer
    with pytest.raises(OSError) as caught:
        blocked.result(10.0)
    assert caught.value.errno == errno.EBADF
    assert time.monotonic() - started < 2.0


def test_close_from_another_thread_while_a_reader_waits(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    # OpenSSL must not run for two threads at once: with a reader inside,
    # close() makes no closing handshake, and the peer sees a ragged end.
    client, server = tls_pair(client_options={"shutdown_timeout": 10.0}, client_retry_interval=30.0)

    def server_side() -> bytes:
        try:
            return server.recv(100, 10.0)
        finally:
            server.close()

    peer = run_peer(server_side)
    blocked = run_peer(lambda: client.recv(100, 20.0))
    time.sleep(0.2)
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 2.0
    # Closed from the moment close() returns, even while the reader may not
    # have left yet: no getter runs OpenSSL any more.
    assert client.is_closed()
    assert "closed" in repr(client)
    with pytest.raises(TypedAttributeLookupError):
        client.extra(TLSAttribute.cipher)
    with pytest.raises(ssl.SSLEOFError):
        peer.result(10.0)
    with pytest.raises(OSError) as caught:
        blocked.result(10.0)
    assert caught.value.errno == errno.EBADF
    assert time.monotonic() - started < 2.0


def test_close_from_another_thread_ends_a_receive_whatever_takes_the_number(
    tls_pair: TLSPair, run_peer: RunPeer
) -> None:
    # close() shuts the socket down, which wakes the reader's poll; the
    # kernel then looks the number up again, so the number must still be
    # this connection's even though new sockets are opened at once.
    for _ in range(10):
        client, _server = tls_pair(client_retry_interval=math.inf)
        fd = client.extra(SocketAttribute.socket).fileno()
        blocked: Future[bytes] = run_peer(partial(client.recv, 100, 60.0))
        time.sleep(0.05)
        client.close()
        taken = [end for _ in range(8) for end in socket.socketpair()]
        try:
            with pytest.raises(OSError) as caught:
                blocked.result(1.0)
            assert caught.value.errno == errno.EBADF
        finally:
            for sock in taken:
                sock.close()
        with pytest.raises(OSError):  # the last call out closed the number
            os.fstat(fd)


def test_close_from_another_thread_wakes_a_blocked_send(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    client, _not_reading = tls_pair(client_options={"shutdown_timeout": 10.0}, client_retry_interval=30.0)
    blocked = run_peer(lambda: client.send_all(b"x" * (64 * MiB), 20.0))
    time.sleep(0.5)  # the socket buffers are full by now
    started = time.monotonic()
    client.close()  # a sender waits: no closing handshake, no wait
    assert time.monotonic() - started < 1.0
    with pytest.raises(OSError) as caught:
        blocked.result(10.0)
    assert caught.value.errno == errno.EBADF
    assert time.monotonic() - started < 2.0


def test_non_blocking_calls_after_close_raise_ebadf(tls_pair: TLSPair) -> None:
    # The blocking calls after close() are the contract of both TLS
    # transports (tests/integration/test_tls_contract.py).
    client, _ = tls_pair(client_options={"shutdown_timeout": 0.2})
    client.close()
    operations: list[Callable[[], Any]] = [
        lambda: client.recv_noblock(10),
        lambda: client.recv_noblock_into(bytearray(10)),
        lambda: client.send_noblock(b"x"),
    ]
    for operation in operations:
        with pytest.raises(OSError) as caught:
            operation()
        assert caught.value.errno == errno.EBADF


@pytest.mark.parametrize("waiting_first", [False, True])
def test_recv_of_a_negative_size_fails_at_once(tls_pair: TLSPair, waiting_first: bool) -> None:
    client, _server = tls_pair()
    if waiting_first:
        with pytest.raises(TimeoutError):
            client.recv(10, 0)  # the next receives wait first
    start = time.monotonic()
    with pytest.raises(ValueError, match="negative"):
        client.recv(-1, 5.0)
    assert time.monotonic() - start < MARGIN, "refused only after a wait"
