"""Fixtures of the SSLStreamTransport tests (tests/socket/tls/).

Real TLS over loopback TCP: certificates from one session-scoped
``trustme.CA()``, every test run over TLS 1.2 and TLS 1.3, and contexts that
clear ``ssl.OP_IGNORE_UNEXPECTED_EOF`` so that a ragged EOF is seen. Every
socket, transport and peer thread a fixture makes is closed or joined at
teardown, whatever the test did, so a failing test leaks nothing into the
next one (a leak would surface as a ResourceWarning, turned into an error).

Test modules cannot import each other or this file (``--import-mode=importlib``):
helpers are handed out as fixtures.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from transports.socket import SSLStreamTransport

if TYPE_CHECKING:
    import trustme

SERVER_NAME = "server.test"
# Blocking calls of peers never wait longer than this: a bug fails the test.
PEER_TIMEOUT = 10.0

TCPPair = Callable[[], tuple[socket.socket, socket.socket]]
TLSPair = Callable[..., tuple[SSLStreamTransport, SSLStreamTransport]]
RunPeer = Callable[[Callable[[], Any]], "Future[Any]"]
ContextFactory = Callable[[ssl.Purpose], ssl.SSLContext]


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """One certificate authority for the whole session."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(tls_ca: trustme.CA) -> trustme.LeafCert:
    """The server certificate, for :data:`SERVER_NAME`."""
    return tls_ca.issue_cert(SERVER_NAME)


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"])
def tls_version(request: pytest.FixtureRequest) -> ssl.TLSVersion:
    """Every TLS test runs once per protocol version."""
    version: ssl.TLSVersion = request.param
    return version


@pytest.fixture
def make_context(tls_version: ssl.TLSVersion) -> ContextFactory:
    """A default context for ``purpose``, pinned to the version, seeing ragged EOFs."""

    def make(purpose: ssl.Purpose) -> ssl.SSLContext:
        context = ssl.create_default_context(purpose)
        context.minimum_version = context.maximum_version = tls_version
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
        return context

    return make


@pytest.fixture
def server_context(make_context: ContextFactory, server_cert: trustme.LeafCert) -> ssl.SSLContext:
    """A server context with the certificate of :data:`SERVER_NAME`."""
    context = make_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return context


@pytest.fixture
def client_context(make_context: ContextFactory, tls_ca: trustme.CA) -> ssl.SSLContext:
    """A client context trusting :func:`tls_ca` (verifies the certificate and the host name)."""
    context = make_context(ssl.Purpose.SERVER_AUTH)
    tls_ca.configure_trust(context)
    return context


@pytest.fixture
def closer() -> Iterator[Callable[[Any], Any]]:
    """Register something with a ``close()`` method to close at teardown; returns it."""
    things: list[Any] = []

    def register(thing: Any) -> Any:
        things.append(thing)
        return thing

    yield register
    for thing in reversed(things):
        with contextlib.suppress(OSError):
            thing.close()


@pytest.fixture
def run_peer() -> Iterator[RunPeer]:
    """Run a peer in a thread; returns its Future. Every thread is joined at teardown.

    Peers only make bounded calls, so the join ends; ``future.result(t)``
    re-raises what the peer raised.
    """
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tls-peer")
    try:
        yield executor.submit
    finally:
        executor.shutdown(wait=True)


@pytest.fixture
def tcp_pair(closer: Callable[[Any], Any]) -> TCPPair:
    """Make a connected loopback TCP pair ``(ours, peer)``; the peer blocks at most PEER_TIMEOUT."""

    def make() -> tuple[socket.socket, socket.socket]:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            ours = closer(socket.create_connection(listener.getsockname(), timeout=PEER_TIMEOUT))
            peer = closer(listener.accept()[0])
        ours.settimeout(None)
        peer.settimeout(PEER_TIMEOUT)
        return ours, peer

    return make


@pytest.fixture
def tls_pair(
    tcp_pair: TCPPair,
    run_peer: RunPeer,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> Iterator[TLSPair]:
    """Connect a client and a server SSLStreamTransport over loopback TCP.

    ``make(client_options=..., server_options=..., client_ctx=..., server_ctx=...,
    client_retry_interval=...)`` returns ``(client, server)``; the server's
    handshake runs in a thread. Options go to the constructors (by default
    10 s for the handshake, 5 s for the closing one, a retry interval of 1 s). Every pair is closed at
    teardown, both ends at once, so each closing handshake is answered.
    """
    made: list[tuple[SSLStreamTransport, SSLStreamTransport]] = []

    def make(
        *,
        client_options: dict[str, Any] | None = None,
        server_options: dict[str, Any] | None = None,
        client_ctx: ssl.SSLContext | None = None,
        server_ctx: ssl.SSLContext | None = None,
        client_retry_interval: float = 1.0,
    ) -> tuple[SSLStreamTransport, SSLStreamTransport]:
        ours, theirs = tcp_pair()
        defaults = {"handshake_timeout": 10.0, "shutdown_timeout": 5.0}
        server_future: Future[SSLStreamTransport] = run_peer(
            lambda: SSLStreamTransport(
                theirs, server_ctx or server_context, 1.0, **{**defaults, **(server_options or {})}
            )
        )
        try:
            client = SSLStreamTransport(
                ours,
                client_ctx or client_context,
                client_retry_interval,
                **{"server_hostname": SERVER_NAME, **defaults, **(client_options or {})},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                server_future.result(PEER_TIMEOUT).close()
            raise
        try:
            server = server_future.result(PEER_TIMEOUT)
        except BaseException:
            client.close()
            raise
        made.append((client, server))
        return client, server

    yield make
    for client, server in made:
        closing = run_peer(server.close)
        client.close()
        closing.result(PEER_TIMEOUT)


@pytest.fixture
def fd_count() -> Callable[[], int]:
    """Count the descriptors this process has open (Linux: /proc/self/fd)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")

    def count() -> int:
        return len(os.listdir("/proc/self/fd"))

    return count
