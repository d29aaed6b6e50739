"""SSLStreamTransport's data path: echo, bulk, buffers, timeouts, interrupted writes."""

from __future__ import annotations

import array
import errno
import hashlib
import math
import os
import random
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from transports.abc import TLSAttribute, TypedAttributeLookupError, UnsupportedOperation
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


def drain_and_close(transport: SSLStreamTransport, timeout: float = 10.0) -> bytes:
    """Read until EOF (a close_notify), then close (answering it)."""
    chunks = bytearray()
    while data := transport.recv(256 * 1024, timeout):
        chunks += data
    transport.close()
    return bytes(chunks)


# ----------------------------------------------------------------- echo ----


@pytest.mark.parametrize("method", ["recv", "recv_into"])
def test_echo_both_directions(tls_pair: TLSPair, run_peer: RunPeer, method: str) -> None:
    client, server = tls_pair()

    def echo(count: int) -> None:
        buffer = bytearray(1024)
        for _ in range(count):
            data = server.recv(1024, 5.0) if method == "recv" else bytes(buffer[: server.recv_into(buffer, 5.0)])
            server.send_all(data[::-1], 5.0)

    peer = run_peer(lambda: echo(50))
    for index in range(50):
        message = f"message {index} ".encode() * (index + 1)
        message = message[:1000]
        client.send_all(message, 5.0)
        assert recv_exactly(client, len(message)) == message[::-1]
    peer.result(10.0)


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


def test_bulk_256_mib_with_checksum(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    client, server = tls_pair()
    total = 256 * MiB

    def receive() -> tuple[int, str]:
        digest = hashlib.sha256()
        buffer = bytearray(256 * 1024)
        view = memoryview(buffer)
        received = 0
        while received < total:
            count = server.recv_into(buffer, 10.0)
            assert count, "early EOF"
            digest.update(view[:count])
            received += count
        server.send_all(b"done", 10.0)
        return received, digest.hexdigest()

    peer = run_peer(receive)
    block = bytearray(os.urandom(MiB))
    digest = hashlib.sha256()
    for index in range(total // MiB):
        block[:8] = index.to_bytes(8, "big")  # every block differs: order matters
        client.send_all(block, 10.0)  # returns once OpenSSL encrypted it: reusing the buffer is safe
        digest.update(block)
    assert client.recv(4, 10.0) == b"done"
    assert peer.result(30.0) == (total, digest.hexdigest())


def test_bulk_from_server_to_client(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    client, server = tls_pair()
    payload = os.urandom(16 * MiB)
    # A memoryview larger than send_all's 1 MiB write chunk, sent in one call.
    peer = run_peer(lambda: server.send_all(memoryview(payload), 10.0))
    assert hashlib.sha256(recv_exactly(client, len(payload), 10.0)).digest() == hashlib.sha256(payload).digest()
    peer.result(10.0)


# ------------------------------------------------------------- buffers ----


def test_send_accepts_any_buffer(tls_pair: TLSPair) -> None:
    client, server = tls_pair()
    numbers = array.array("i", range(100))
    client.send_all(numbers, 5.0)
    assert recv_exactly(server, numbers.itemsize * 100) == numbers.tobytes()
    assert client.send(numbers, 5.0) == numbers.itemsize * 100
    assert recv_exactly(server, numbers.itemsize * 100) == numbers.tobytes()
    client.send_all(b"", 5.0)  # nothing to send, no error
    client.send_all(bytearray(b"end"), 5.0)
    assert recv_exactly(server, 3) == b"end"


def test_send_takes_at_most_64_kib(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    client, server = tls_pair()
    data = os.urandom(200 * 1024)
    sent = client.send(data, 5.0)
    assert sent == 64 * 1024
    assert recv_exactly(server, sent) == data[:sent]


def test_send_all_from_iterable_joins_chunks_into_one_record(tls_pair: TLSPair) -> None:
    client, server = tls_pair()
    chunks: list[Any] = [b"", *(f"{index:09d}|".encode() for index in range(100)), b"", memoryview(b"tail"), b""]
    client.send_all_from_iterable(iter(chunks), 5.0)
    expected = b"".join(chunks)
    # SSLSocket.recv returns at most one record: one recv gets it all only if
    # the chunks went out as one record.
    assert server.recv(65536, 5.0) == expected
    client.send_all_from_iterable([], 5.0)
    client.send_all_from_iterable([array.array("h", [1, 2])], 5.0)
    assert recv_exactly(server, 4) == array.array("h", [1, 2]).tobytes()


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


def test_recv_edge_sizes(tls_pair: TLSPair) -> None:
    client, server = tls_pair()
    assert client.recv(0, 5.0) == b""
    assert client.recv_into(bytearray(), 5.0) == 0
    with pytest.raises(ValueError):
        client.recv(-1, 5.0)
    # None of these was an end of stream: sending still works.
    client.send_all(b"still open", 5.0)
    assert recv_exactly(server, 10) == b"still open"


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


def test_ancillary_data_is_unsupported(tls_pair: TLSPair) -> None:
    client, _ = tls_pair()
    with pytest.raises(UnsupportedOperation):
        client.recv_with_ancillary(10, 100, 1.0)
    with pytest.raises(UnsupportedOperation):
        client.send_all_with_ancillary([b"x"], [], 1.0)


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


def test_zero_timeout_does_not_block(tls_pair: TLSPair) -> None:
    client, server = tls_pair()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        client.recv(10, 0.0)
    with pytest.raises(TimeoutError):
        client.recv_into(bytearray(10), 0)
    assert time.monotonic() - start < 0.2
    server.send_all(b"now", 5.0)
    assert recv_exactly(client, 3) == b"now"


@pytest.mark.parametrize("timeout", [-1.0, math.nan])
def test_bad_timeouts(tls_pair: TLSPair, timeout: float) -> None:
    client, _ = tls_pair()
    operations: list[Callable[[], Any]] = [
        lambda: client.recv(10, timeout),
        lambda: client.recv_into(bytearray(10), timeout),
        lambda: client.send(b"x", timeout),
        lambda: client.send_all(b"x", timeout),
        lambda: client.send_all_from_iterable([b"x"], timeout),
    ]
    for operation in operations:
        with pytest.raises(ValueError, match="timeout"):
            operation()


def test_send_all_timeout_keeps_the_stream_intact(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    client, server = tls_pair()
    payload = bytearray(b"a" * (64 * MiB))  # far more than the socket buffers hold
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        client.send_all(payload, 0.5)  # the server does not read
    assert 0.5 <= time.monotonic() - start < 0.5 + MARGIN
    # The caller may reuse its buffer at once: the write OpenSSL had begun
    # goes on from the transport's own copy.
    payload[:] = b"b" * len(payload)
    peer = run_peer(lambda: drain_and_close(server))
    client.send_all(b"tail", 10.0)
    client.close()  # the closing handshake: the server reads up to our close_notify, then answers
    received = peer.result(20.0)
    assert received.endswith(b"tail")
    body = received[:-4]
    assert body == b"a" * len(body)  # a prefix of what was given, never torn, never b"b"
    assert len(body) >= 1  # something had gone before the timeout


def test_send_timeout_then_send_again(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    client, server = tls_pair()

    # Fill the socket buffers, then time out in send().
    def fill() -> None:
        while True:
            client.send(b"x" * 65536, 0.2)

    with pytest.raises(TimeoutError):
        fill()
    peer = run_peer(lambda: drain_and_close(server))
    assert client.send(b"END", 10.0) == 3
    client.close()
    received = peer.result(20.0)
    assert received.endswith(b"END")
    assert set(received[:-3]) == {ord("x")}
    assert len(received[:-3]) % 65536 == 0  # whole sends only: the interrupted one was finished


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


@pytest.mark.parametrize("standard_compatible", [True, False])
def test_operations_after_close(tls_pair: TLSPair, standard_compatible: bool) -> None:
    client, _ = tls_pair(client_options={"standard_compatible": standard_compatible, "shutdown_timeout": 0.2})
    client.close()
    client.close()  # idempotent
    assert client.is_closed()
    operations: list[Callable[[], Any]] = [
        lambda: client.recv(10, 1.0),
        lambda: client.recv(10, 0.0),
        lambda: client.recv_into(bytearray(10), 1.0),
        lambda: client.recv_noblock(10),
        lambda: client.recv_noblock_into(bytearray(10)),
        lambda: client.send(b"x", 1.0),
        lambda: client.send_all(b"x", 1.0),
        lambda: client.send_all(b"x" * (3 * MiB), 1.0),
        lambda: client.send_all_from_iterable([b"x", b"y"], 1.0),
        lambda: client.send_noblock(b"x"),
    ]
    for operation in operations:
        start = time.monotonic()
        with pytest.raises(OSError) as caught:
            operation()
        assert caught.value.errno == errno.EBADF
        assert time.monotonic() - start < 0.5
    client.send_eof()  # does nothing once closed


def test_send_eof_is_unsupported(tls_pair: TLSPair) -> None:
    client, server = tls_pair()
    with pytest.raises(UnsupportedOperation, match="half-close"):
        client.send_eof()
    assert isinstance(UnsupportedOperation(), NotImplementedError)
    # Nothing changed: the connection still works both ways.
    client.send_all(b"ok", 5.0)
    assert recv_exactly(server, 2) == b"ok"
    server.send_all(b"ok", 5.0)
    assert recv_exactly(client, 2) == b"ok"


def test_plain_ssl_socket_client_bulk_to_our_server(
    tcp_pair: Callable[[], Any],
    run_peer: RunPeer,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    ours, theirs = tcp_pair()
    payload = os.urandom(8 * MiB)

    def client() -> None:
        with client_context.wrap_socket(theirs, server_hostname="server.test") as tls_sock:
            tls_sock.sendall(payload)
            assert tls_sock.recv(10) == b"thanks"
            tls_sock.unwrap().detach()

    peer = run_peer(client)
    with SSLStreamTransport(ours, server_context, 1.0, handshake_timeout=10.0, shutdown_timeout=5.0) as server:
        assert recv_exactly(server, len(payload), 10.0) == payload
        server.send_all(b"thanks", 5.0)
        assert server.recv(10, 5.0) == b""
    peer.result(10.0)


def test_one_thread_sends_while_another_receives_at_each_end(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, run_peer: RunPeer, closer: Callable[[Any], Any]
) -> None:
    # Full duplex, two threads per transport: OpenSSL's reads and writes on a
    # non-blocking socket must not run at once (they corrupted the stream in
    # 4 of 5 runs). Unix sockets' small buffers make both block often.
    size = 4 * MiB
    rng = random.Random()
    for _ in range(3):
        ours, theirs = socket.socketpair()
        server_future: Future[SSLStreamTransport] = run_peer(
            partial(SSLStreamTransport, theirs, server_context, 1.0, shutdown_timeout=1.0)
        )
        client = closer(
            SSLStreamTransport(ours, client_context, 1.0, server_hostname="server.test", shutdown_timeout=1.0)
        )
        server = closer(server_future.result(10.0))
        streams = {"client": os.urandom(size), "server": os.urandom(size)}

        def send(transport: SSLStreamTransport, data: bytes) -> None:
            view = memoryview(data)
            start = 0
            while start < size:
                step = rng.randint(1, 256 * 1024)
                transport.send_all(view[start : start + step], 10.0)
                start += step

        def digest(transport: SSLStreamTransport) -> str:
            hasher = hashlib.sha256()
            buffer = bytearray(65536)
            received = 0
            while received < size:
                count = transport.recv_into(buffer, 10.0)
                assert count, f"end of stream after {received} bytes"
                hasher.update(memoryview(buffer)[:count])
                received += count
            return hasher.hexdigest()

        with ThreadPoolExecutor(max_workers=4) as pool:
            sends = [pool.submit(send, client, streams["client"]), pool.submit(send, server, streams["server"])]
            at_server = pool.submit(digest, server)
            at_client = pool.submit(digest, client)
            assert at_server.result(30.0) == hashlib.sha256(streams["client"]).hexdigest()
            assert at_client.result(30.0) == hashlib.sha256(streams["server"]).hexdigest()
            for sent in sends:
                sent.result(30.0)
        closing = run_peer(server.close)  # both ends at once: each closing handshake is answered
        client.close()
        closing.result(10.0)
