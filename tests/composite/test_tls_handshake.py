"""TLSStreamTransport's handshake: one budget against a dribbling peer, a client without SNI.

The handshake both TLS transports share (failures that are bounded,
reported and leak nothing; certificates; sessions; the common argument
checks) is checked once for both in tests/integration/test_tls_contract.py.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pytest

from transports.abc import StreamTransport
from transports.composite import TLSStreamTransport

if TYPE_CHECKING:
    import trustme

InnerFactory = Callable[..., tuple[StreamTransport, socket.socket]]
RunInThread = Callable[[Callable[[], Any]], Future[Any]]
ContextFactory = Callable[[ssl.Purpose, ssl.TLSVersion], ssl.SSLContext]

SERVER_NAME = "server.test"  # conftest.TLS_SERVER_NAME
# How late a timeout may fire on a loaded 2-core machine.
MARGIN = 0.3


def ssl_socket_server(server_context: ssl.SSLContext, sock: socket.socket) -> None:
    """Handshake as an SSLSocket server and echo one message; errors propagate."""
    with server_context.wrap_socket(sock, server_side=True) as tls_sock:
        tls_sock.sendall(tls_sock.recv(1024))


def test_a_dribbling_peer_cannot_stretch_the_handshake_budget(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    socket_stream: Callable[..., StreamTransport],
) -> None:
    # The server sends its flight 8 bytes every 10 ms: the client reads its
    # transport dozens of times, all within ONE budget of 0.5 s.
    inner, peer_sock = make_inner()

    def dribbling_server() -> None:
        transport = socket_stream(peer_sock, send_limit=8, send_delay=0.01)
        try:
            TLSStreamTransport(transport, server_context, handshake_timeout=10.0)
        except OSError:  # the client gave up and closed: expected
            pass
        else:
            raise AssertionError("the handshake should not have finished")

    peer = run_in_thread(dribbling_server)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, handshake_timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 0.5 + MARGIN
    assert inner.is_closed()
    peer.result(15.0)


def test_explicit_client_without_hostname_check(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    tls_ca: trustme.CA,
    tls_context_factory: ContextFactory,
    tls_version: ssl.TLSVersion,
) -> None:
    context = tls_context_factory(ssl.Purpose.SERVER_AUTH, tls_version)
    context.check_hostname = False
    tls_ca.configure_trust(context)
    inner, peer_sock = make_inner()
    peer = run_in_thread(lambda: ssl_socket_server(server_context, peer_sock))
    with TLSStreamTransport(inner, context, server_side=False, shutdown_timeout=5.0) as client:
        client.send_all(b"no SNI", 5.0)
        assert client.recv(10, 5.0) == b"no SNI"
    peer.result(10.0)
