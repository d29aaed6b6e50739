"""SSLStreamTransport's own ways of ending a connection.

What both TLS transports do at the end of a connection (close_notify,
ragged EOF, the bounded closing handshake) is checked once for both in
tests/integration/test_tls_contract.py. Here: the sends after any end of
the stream, the retry interval within the closing budget, and the
interrupted write that close() finishes.
"""

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


@pytest.mark.parametrize("standard_compatible", [True, False], ids=["standard", "lenient"])
@pytest.mark.parametrize("clean", [True, False], ids=["close_notify", "ragged"])
def test_every_send_after_an_end_of_stream_is_a_connection_reset(
    connect_to_ssl_socket_server: Callable[..., tuple[SSLStreamTransport, Future[None]]],
    clean: bool,
    standard_compatible: bool,
) -> None:
    # After any end of the stream, a ragged one too, OpenSSL would still
    # encrypt data for a peer that has left: the transport refuses at once.
    client, peer = connect_to_ssl_socket_server(clean=clean, standard_compatible=standard_compatible)
    assert client.recv(100, 5.0) == b"hello"
    peer.result(10.0)
    if clean or not standard_compatible:
        assert client.recv(100, 5.0) == b""
        assert client.recv_noblock(10) == b""  # from then on, without waiting as well
    else:
        with pytest.raises(ssl.SSLEOFError, match="EOF"):
            client.recv(100, 5.0)
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


# ---------------------------------------------------- closing handshake ----


def test_close_with_a_short_retry_interval_keeps_one_budget(tls_pair: TLSPair) -> None:
    client, _silent = tls_pair(client_options={"shutdown_timeout": 0.4}, client_retry_interval=0.05)
    start = time.monotonic()
    client.close()
    assert 0.4 <= time.monotonic() - start < 0.4 + MARGIN


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
