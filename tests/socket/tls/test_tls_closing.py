"""SSLStreamTransport's end of connection: close_notify, ragged EOF, bounded closing handshake."""

from __future__ import annotations

import errno
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from transports.socket import SSLStreamTransport

SERVER_NAME = "server.test"
MARGIN = 0.5  # how late a timeout may fire on a loaded 2-core machine

TCPPair = Callable[[], tuple[socket.socket, socket.socket]]
TLSPair = Callable[..., tuple[SSLStreamTransport, SSLStreamTransport]]
RunPeer = Callable[[Callable[[], Any]], "Future[Any]"]


def ssl_socket_server(context: ssl.SSLContext, sock: socket.socket, *, clean: bool) -> None:
    """A blocking ssl.SSLSocket server: say hello, then leave with or without a close_notify."""
    tls_sock = context.wrap_socket(sock, server_side=True)
    try:
        tls_sock.sendall(b"hello")
        if clean:
            # Send a close_notify, without waiting for the answer.
            tls_sock.setblocking(False)
            with pytest.raises(ssl.SSLWantReadError):
                tls_sock.unwrap()
    finally:
        tls_sock.close()  # ssl.SSLSocket.close() sends no close_notify: a ragged EOF


@pytest.fixture
def connect_to_ssl_socket_server(
    tcp_pair: TCPPair, run_peer: RunPeer, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> Iterator[Callable[..., tuple[SSLStreamTransport, Future[None]]]]:
    """Connect an SSLStreamTransport client to :func:`ssl_socket_server`; the client is closed at teardown."""

    made: list[SSLStreamTransport] = []

    def connect(*, clean: bool, standard_compatible: bool) -> tuple[SSLStreamTransport, Future[None]]:
        ours, theirs = tcp_pair()
        peer = run_peer(lambda: ssl_socket_server(server_context, theirs, clean=clean))
        client = SSLStreamTransport(
            ours,
            client_context,
            1.0,
            server_hostname=SERVER_NAME,
            standard_compatible=standard_compatible,
            handshake_timeout=10.0,
            shutdown_timeout=2.0,
        )
        made.append(client)
        return client, peer

    yield connect
    for client in made:
        client.close()


# ------------------------------------------------------- end of stream ----


@pytest.mark.parametrize("standard_compatible", [True, False])
def test_clean_close_notify_reads_as_eof(
    connect_to_ssl_socket_server: Callable[..., tuple[SSLStreamTransport, Future[None]]], standard_compatible: bool
) -> None:
    client, peer = connect_to_ssl_socket_server(clean=True, standard_compatible=standard_compatible)
    assert client.recv(100, 5.0) == b"hello"
    assert client.recv(100, 5.0) == b""
    assert client.recv(100, 5.0) == b""  # from then on
    assert client.recv_into(bytearray(10), 5.0) == 0
    assert client.recv_noblock(10) == b""
    peer.result(10.0)
    # The peer closed the TLS connection: sending is an error.
    operations: list[Callable[[], Any]] = [
        lambda: client.send(b"late", 1.0),
        lambda: client.send_all(b"late", 1.0),
        lambda: client.send_all_from_iterable([b"la", b"te"], 1.0),
        lambda: client.send_noblock(b"late"),
    ]
    for operation in operations:
        with pytest.raises(ConnectionResetError) as caught:
            operation()
        assert caught.value.errno == errno.ECONNRESET
    start = time.monotonic()
    client.close()  # the peer's close_notify arrived already: no wait
    assert time.monotonic() - start < 1.0


def test_ragged_eof_is_an_error_when_standard_compatible(
    connect_to_ssl_socket_server: Callable[..., tuple[SSLStreamTransport, Future[None]]],
) -> None:
    client, peer = connect_to_ssl_socket_server(clean=False, standard_compatible=True)
    assert client.recv(100, 5.0) == b"hello"
    peer.result(10.0)
    with pytest.raises(ssl.SSLEOFError, match="EOF"):
        client.recv(100, 5.0)
    with pytest.raises(ssl.SSLEOFError):  # each time
        client.recv_into(bytearray(10), 5.0)
    with pytest.raises(ConnectionResetError):
        client.send_all(b"x", 1.0)
    start = time.monotonic()
    client.close()  # the closing handshake fails at once; the error is swallowed
    assert time.monotonic() - start < 1.0
    assert client.is_closed()


def test_ragged_eof_reads_as_eof_when_not_standard_compatible(
    connect_to_ssl_socket_server: Callable[..., tuple[SSLStreamTransport, Future[None]]],
) -> None:
    client, peer = connect_to_ssl_socket_server(clean=False, standard_compatible=False)
    assert client.recv(100, 5.0) == b"hello"
    peer.result(10.0)
    assert client.recv(100, 5.0) == b""
    assert client.recv(100, 5.0) == b""
    assert client.recv_into(bytearray(10), 5.0) == 0
    with pytest.raises(ConnectionResetError):
        client.send(b"x", 1.0)


def test_ragged_eof_from_our_transport(tls_pair: TLSPair) -> None:
    # standard_compatible=False: close() sends no close_notify, a
    # standard-compatible peer sees a ragged EOF.
    client, server = tls_pair(server_options={"standard_compatible": False})
    server.send_all(b"bye", 5.0)
    start = time.monotonic()
    server.close()  # no closing handshake, no wait
    assert time.monotonic() - start < 0.5
    assert client.recv(100, 5.0) == b"bye"
    with pytest.raises(ssl.SSLEOFError):
        client.recv(100, 5.0)


# ---------------------------------------------------- closing handshake ----


def test_close_performs_the_closing_handshake(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    client, server = tls_pair(client_options={"shutdown_timeout": 10.0})

    def server_side() -> bytes:
        data = server.recv(100, 5.0)
        assert server.recv(100, 5.0) == b""  # our close_notify: a clean end
        server.close()  # answers it
        return data

    peer = run_peer(server_side)
    client.send_all(b"last words", 5.0)
    start = time.monotonic()
    client.close()
    assert time.monotonic() - start < 2.0  # the answer came: no wait for the timeout
    assert peer.result(10.0) == b"last words"


def test_close_with_a_silent_peer_returns_within_shutdown_timeout(tls_pair: TLSPair) -> None:
    # The peer is there but never answers (many TLS 1.3 peers do not).
    client, _silent = tls_pair(client_options={"shutdown_timeout": 0.5})
    start = time.monotonic()
    client.close()
    elapsed = time.monotonic() - start
    assert 0.5 <= elapsed < 0.5 + MARGIN
    assert client.is_closed()


def test_close_with_a_short_retry_interval_keeps_one_budget(tls_pair: TLSPair) -> None:
    client, _silent = tls_pair(client_options={"shutdown_timeout": 0.4}, client_retry_interval=0.05)
    start = time.monotonic()
    client.close()
    assert 0.4 <= time.monotonic() - start < 0.4 + MARGIN


def test_close_with_a_peer_that_vanished(tcp_pair: TCPPair, run_peer: RunPeer, server_context: ssl.SSLContext) -> None:
    # The peer's socket is closed (no close_notify) before our close().
    ours, theirs = tcp_pair()

    def client_that_vanishes() -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(theirs) as tls_sock:
            tls_sock.sendall(b"x")

    peer = run_peer(client_that_vanishes)
    server = SSLStreamTransport(ours, server_context, 1.0, handshake_timeout=10.0, shutdown_timeout=5.0)
    assert server.recv(1, 5.0) == b"x"
    peer.result(10.0)
    time.sleep(0.1)  # let its FIN (or reset) arrive
    start = time.monotonic()
    server.close()  # the errors of the closing handshake are swallowed
    assert time.monotonic() - start < 1.0
    assert server.is_closed()


def test_close_without_closing_handshake_when_not_standard_compatible(tls_pair: TLSPair) -> None:
    client, _silent = tls_pair(client_options={"standard_compatible": False, "shutdown_timeout": 10.0})
    start = time.monotonic()
    client.close()
    assert time.monotonic() - start < 0.5


def test_close_finishes_an_interrupted_write(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    client, server = tls_pair(client_options={"shutdown_timeout": 10.0})
    payload = b"z" * (32 * 1024 * 1024)
    with pytest.raises(TimeoutError):
        client.send_all(payload, 0.3)  # the server does not read yet

    def drain_and_close() -> bytes:
        chunks = bytearray()
        while data := server.recv(256 * 1024, 10.0):
            chunks += data
        server.close()
        return bytes(chunks)

    peer = run_peer(drain_and_close)
    client.close()  # finishes the write OpenSSL had begun, then the closing handshake
    received = peer.result(20.0)
    assert received  # the server read a clean end after the data: no torn record
    assert received == payload[: len(received)]
    assert len(received) % (1024 * 1024) == 0  # whole 1 MiB writes only


def test_concurrent_close_of_both_ends(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    client, server = tls_pair()
    closing = run_peer(server.close)
    start = time.monotonic()
    client.close()
    closing.result(10.0)
    assert time.monotonic() - start < 2.0
    assert client.is_closed()
    assert server.is_closed()
