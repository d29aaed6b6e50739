"""The two TLS transports talk to each other.

``transports.composite.TLSStreamTransport`` (TLS in memory BIOs, over a
``SocketStreamTransport``) on one end, ``transports.socket.SSLStreamTransport``
(OpenSSL driving the socket) on the other, with client and server swapped:
echo, a few MiB each way with a checksum, and a clean closing handshake
from both sides.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import trustme

from transports.abc import StreamTransport, TLSAttribute
from transports.composite import TLSStreamTransport
from transports.socket import SocketStreamTransport, SSLStreamTransport

SERVER_NAME = "server.test"
MiB = 1024 * 1024
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"])
def contexts(ca: trustme.CA, request: pytest.FixtureRequest) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts pinned to one version, ragged EOFs seen."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    for context in (server, client):
        context.minimum_version = context.maximum_version = request.param
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    ca.issue_cert(SERVER_NAME).configure_cert(server)
    ca.configure_trust(client)
    return server, client


@pytest.fixture
def run_in_thread() -> Iterator[Callable[[Callable[[], Any]], Future[Any]]]:
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tls-interop")
    try:
        yield executor.submit
    finally:
        executor.shutdown(wait=True)


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        left = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
        right = listener.accept()[0]
    try:
        yield left, right
    finally:
        left.close()
        right.close()


def membio_tls(sock: socket.socket, context: ssl.SSLContext, **options: Any) -> TLSStreamTransport[StreamTransport]:
    inner: StreamTransport = SocketStreamTransport(sock, 1.0)
    return TLSStreamTransport(inner, context, handshake_timeout=TIMEOUT, shutdown_timeout=TIMEOUT, **options)


def socket_tls(sock: socket.socket, context: ssl.SSLContext, **options: Any) -> SSLStreamTransport:
    return SSLStreamTransport(sock, context, 1.0, handshake_timeout=TIMEOUT, shutdown_timeout=TIMEOUT, **options)


def recv_exactly(transport: StreamTransport, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = transport.recv(min(size - len(data), 256 * 1024), TIMEOUT)
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def exchange(client: StreamTransport, server: StreamTransport, run: Callable[[Callable[[], Any]], Future[Any]]) -> None:
    """Echo, then 4 MiB each way with checksums, then a clean close from both sides."""
    to_server = os.urandom(4 * MiB)
    to_client = os.urandom(4 * MiB)

    def serve() -> bytes:
        for _ in range(20):
            message = server.recv(1024, TIMEOUT)
            server.send_all(message.upper(), TIMEOUT)
        digest = hashlib.sha256(recv_exactly(server, len(to_server))).digest()
        server.send_all(to_client, TIMEOUT)
        assert server.recv(1, TIMEOUT) == b""  # the client's close_notify: a clean end
        server.close()  # answers it
        return digest

    peer = run(serve)
    for index in range(20):
        message = f"ping {index}".encode()
        client.send_all(message, TIMEOUT)
        assert recv_exactly(client, len(message)) == message.upper()
    client.send_all(to_server, TIMEOUT)
    assert hashlib.sha256(recv_exactly(client, len(to_client))).digest() == hashlib.sha256(to_client).digest()
    client.close()  # the closing handshake: returns once the server answered
    assert peer.result(2 * TIMEOUT) == hashlib.sha256(to_server).digest()
    assert client.is_closed()
    assert server.is_closed()


def test_memory_bio_client_with_socket_server(
    tcp_pair: tuple[socket.socket, socket.socket],
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    run_in_thread: Callable[[Callable[[], Any]], Future[Any]],
) -> None:
    server_context, client_context = contexts
    left, right = tcp_pair
    server_future = run_in_thread(lambda: socket_tls(right, server_context))
    client = membio_tls(left, client_context, server_hostname=SERVER_NAME)
    server = server_future.result(TIMEOUT)
    try:
        assert client.extra(TLSAttribute.tls_version) == server.extra(TLSAttribute.tls_version)
        assert client.extra(TLSAttribute.cipher) == server.extra(TLSAttribute.cipher)
        exchange(client, server, run_in_thread)
    finally:
        client.close()
        server.close()


def test_socket_client_with_memory_bio_server(
    tcp_pair: tuple[socket.socket, socket.socket],
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    run_in_thread: Callable[[Callable[[], Any]], Future[Any]],
) -> None:
    server_context, client_context = contexts
    left, right = tcp_pair
    server_future = run_in_thread(lambda: membio_tls(right, server_context))
    client = socket_tls(left, client_context, server_hostname=SERVER_NAME)
    server = server_future.result(TIMEOUT)
    try:
        peercert = client.extra(TLSAttribute.peercert)
        assert peercert is not None
        assert peercert["subjectAltName"] == (("DNS", SERVER_NAME),)
        exchange(client, server, run_in_thread)
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize("sender", ["membio", "socket"])
def test_send_after_the_peer_closed_is_a_connection_reset_on_both(
    tcp_pair: tuple[socket.socket, socket.socket],
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    run_in_thread: Callable[[Callable[[], Any]], Future[Any]],
    sender: str,
) -> None:
    # The two transports agree: a received close_notify reads as b"", and
    # sending afterwards raises ConnectionResetError.
    server_context, client_context = contexts
    left, right = tcp_pair
    make_server = membio_tls if sender == "socket" else socket_tls
    make_client = socket_tls if sender == "socket" else membio_tls
    server_future = run_in_thread(lambda: make_server(right, server_context))
    client: StreamTransport = make_client(left, client_context, server_hostname=SERVER_NAME)
    server: StreamTransport = server_future.result(TIMEOUT)
    try:
        closing = run_in_thread(server.close)
        assert client.recv(10, TIMEOUT) == b""
        with pytest.raises(ConnectionResetError):
            client.send_all(b"too late", TIMEOUT)
        client.close()
        closing.result(TIMEOUT)
    finally:
        client.close()
        server.close()
