"""Fixtures shared by the transports.composite tests."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from typing_extensions import Buffer

from transports.abc import StreamTransport, timeout_error, validate_timeout
from transports.composite import TLSStreamTransport

if TYPE_CHECKING:
    import trustme

SocketPairFactory = Callable[[int], tuple[socket.socket, socket.socket]]


@pytest.fixture
def make_socketpair() -> Iterator[SocketPairFactory]:
    """Build connected AF_UNIX socket pairs (``SOCK_STREAM`` or ``SOCK_DGRAM``).

    Every socket made is closed at teardown, whatever the test did with it,
    so a failing test never leaks one (a leak would fail the next test
    through the ResourceWarning turned into an error).
    """
    made: list[socket.socket] = []

    def make(sock_type: int) -> tuple[socket.socket, socket.socket]:
        left, right = socket.socketpair(socket.AF_UNIX, sock_type)
        made.extend((left, right))
        # Bound every blocking call of the test helpers, so a bug fails the
        # test instead of hanging until pytest-timeout.
        left.settimeout(10.0)
        right.settimeout(10.0)
        return left, right

    yield make
    for sock in made:
        sock.close()


# ------------------------------------------------------------------ TLS ----
# Fixtures of the TLSStreamTransport tests (test_tls_*.py). trustme is a test
# dependency of the composite environment, imported only by the fixtures
# that need it.

TLS_SERVER_NAME = "server.test"

# Test transports never block longer than this, whatever timeout they get:
# a bug then fails the test instead of hanging it.
LONGEST_INNER_WAIT = 30.0


class BlockingSocketStream(StreamTransport):
    """A minimal blocking StreamTransport over a connected stream socket.

    The wrapped transport of the TLS tests (the composite tests may not use
    transports.socket). The timeout of each call becomes the socket's
    timeout (``0``: non-blocking); a socket timeout becomes
    :func:`~transports.abc.timeout_error`. ``send_limit`` and
    ``send_delay`` make a peer that dribbles its bytes.
    """

    def __init__(self, sock: socket.socket, *, send_limit: int | None = None, send_delay: float = 0.0) -> None:
        self.sock = sock
        self.send_limit = send_limit
        self.send_delay = send_delay
        self.sent = 0

    def _set_timeout(self, timeout: float) -> None:
        self.sock.settimeout(min(validate_timeout(timeout), LONGEST_INNER_WAIT))

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        self._set_timeout(timeout)
        try:
            return self.sock.recv_into(buffer)
        except (TimeoutError, BlockingIOError):
            raise timeout_error() from None

    def send(self, data: Buffer, timeout: float) -> int:
        if self.send_delay:
            time.sleep(self.send_delay)
        self._set_timeout(timeout)
        with memoryview(data) as view:
            try:
                sent = self.sock.send(view[: self.send_limit])
            except (TimeoutError, BlockingIOError):
                raise timeout_error() from None
        self.sent += sent
        return sent

    def send_eof(self) -> None:
        if not self.is_closed():
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()

    def is_closed(self) -> bool:
        return self.sock.fileno() == -1


InnerFactory = Callable[..., tuple[BlockingSocketStream, socket.socket]]


class ShutdownOnClose(StreamTransport):
    """Delegates to a socket transport; close() shuts the socket down first.

    As ``SocketStreamTransport.close()`` does, and for the same reason: on
    Linux, only a shutdown wakes a thread blocked on the socket (and it
    wakes it with an end of stream that the peer never sent).
    """

    def __init__(self, inner: StreamTransport, sock: socket.socket) -> None:
        self.inner = inner
        self.sock = sock

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        return self.inner.recv_into(buffer, timeout)

    def send(self, data: Buffer, timeout: float) -> int:
        return self.inner.send(data, timeout)

    def send_eof(self) -> None:
        self.inner.send_eof()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed or not connected
        self.inner.close()

    def is_closed(self) -> bool:
        return self.inner.is_closed()


@pytest.fixture
def shutdown_on_close_wrapper() -> Callable[[StreamTransport, socket.socket], StreamTransport]:
    """Wrap a transport over ``sock`` so that its close() shuts ``sock`` down first."""
    return ShutdownOnClose


@pytest.fixture
def make_inner(make_socketpair: SocketPairFactory) -> InnerFactory:
    """Build ``(transport, peer_socket)``: a BlockingSocketStream and the socket at the other end.

    Keyword arguments go to :class:`BlockingSocketStream`. Wrap the peer
    socket in another BlockingSocketStream for a TLSStreamTransport peer,
    or give it to ``SSLContext.wrap_socket`` for an ``ssl.SSLSocket`` peer.
    """

    def make(**kwargs: Any) -> tuple[BlockingSocketStream, socket.socket]:
        ours, theirs = make_socketpair(socket.SOCK_STREAM)
        return BlockingSocketStream(ours, **kwargs), theirs

    return make


@pytest.fixture
def socket_stream() -> Callable[..., StreamTransport]:
    """:class:`BlockingSocketStream` itself, to wrap a peer's socket."""
    return BlockingSocketStream


@pytest.fixture
def run_in_thread() -> Iterator[Callable[[Callable[[], Any]], Future[Any]]]:
    """Run a peer in a thread; every thread is waited for at teardown.

    Peers only make bounded calls, so the wait ends; ``future.result(t)``
    re-raises what the peer raised.
    """
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tls-peer")
    try:
        yield executor.submit
    finally:
        executor.shutdown(wait=True)


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """One certificate authority for the whole session."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server_cert(tls_ca: trustme.CA) -> trustme.LeafCert:
    """The server certificate for :data:`TLS_SERVER_NAME`."""
    return tls_ca.issue_cert(TLS_SERVER_NAME)


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"])
def tls_version(request: pytest.FixtureRequest) -> ssl.TLSVersion:
    """Every TLS test runs once per protocol version."""
    version: ssl.TLSVersion = request.param
    return version


def make_tls_context(purpose: ssl.Purpose, version: ssl.TLSVersion) -> ssl.SSLContext:
    """A default context pinned to ``version``, seeing ragged EOFs as errors."""
    context = ssl.create_default_context(purpose)
    context.minimum_version = context.maximum_version = version
    context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return context


@pytest.fixture
def server_context(tls_server_cert: trustme.LeafCert, tls_version: ssl.TLSVersion) -> ssl.SSLContext:
    """A server context with the certificate of :data:`TLS_SERVER_NAME`."""
    context = make_tls_context(ssl.Purpose.CLIENT_AUTH, tls_version)
    tls_server_cert.configure_cert(context)
    return context


@pytest.fixture
def client_context(tls_ca: trustme.CA, tls_version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client context trusting :func:`tls_ca` (verifies certificate and host name)."""
    context = make_tls_context(ssl.Purpose.SERVER_AUTH, tls_version)
    tls_ca.configure_trust(context)
    return context


@pytest.fixture
def tls_context_factory() -> Callable[[ssl.Purpose, ssl.TLSVersion], ssl.SSLContext]:
    """:func:`make_tls_context`, for tests that need contexts of their own."""
    return make_tls_context


TLS = TLSStreamTransport[StreamTransport]
TLSPairFactory = Callable[..., tuple[TLS, TLS]]


@pytest.fixture
def make_tls_pair(
    make_inner: InnerFactory,
    run_in_thread: Callable[[Callable[[], Any]], Future[Any]],
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> Iterator[TLSPairFactory]:
    """Connect a client and a server TLSStreamTransport over a socket pair.

    ``make(client_options=..., server_options=..., client_ctx=..., server_ctx=...,
    inner_options=...)`` returns ``(client, server)``; the server's handshake
    runs in a thread. Options go to the constructors (by default 10 s for
    the handshake, 5 s for the closing one); ``inner_options`` to the
    client's :class:`BlockingSocketStream`. Every pair is closed at
    teardown, both ends at once, so each closing handshake is answered.
    """
    made: list[tuple[TLS, TLS]] = []

    def make(
        *,
        client_options: Mapping[str, Any] | None = None,
        server_options: Mapping[str, Any] | None = None,
        client_ctx: ssl.SSLContext | None = None,
        server_ctx: ssl.SSLContext | None = None,
        inner_options: Mapping[str, Any] | None = None,
    ) -> tuple[TLS, TLS]:
        ours, theirs = make_inner(**(inner_options or {}))
        server_future: Future[TLS] = run_in_thread(
            lambda: TLSStreamTransport(
                BlockingSocketStream(theirs),
                server_ctx or server_context,
                **{"handshake_timeout": 10.0, "shutdown_timeout": 5.0, **(server_options or {})},
            )
        )
        try:
            client: TLS = TLSStreamTransport(
                ours,
                client_ctx or client_context,
                **{
                    "server_hostname": TLS_SERVER_NAME,
                    "handshake_timeout": 10.0,
                    "shutdown_timeout": 5.0,
                    **(client_options or {}),
                },
            )
        except BaseException:
            try:
                server_future.result(15.0).close()
            except Exception:
                pass  # the server's handshake failed too
            raise
        try:
            server = server_future.result(15.0)
        except BaseException:
            client.close()
            raise
        made.append((client, server))
        return client, server

    yield make
    for client, server in made:
        closing = run_in_thread(server.close)
        try:
            client.close()
        finally:
            closing.result(15.0)
