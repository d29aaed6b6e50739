"""TLSStreamTransport's ending: close_notify, ragged EOFs, bounded closing handshakes.

``standard_compatible=True``: close() sends a close_notify and waits (a
bounded time) for the peer's; an EOF without close_notify is an error.
``False``: no closing handshake; any EOF reads as ``b""``.
"""

from __future__ import annotations

import errno
import math
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import pytest
from typing_extensions import Buffer

from transports.abc import StreamTransport
from transports.composite import TLSStreamTransport

TLS = TLSStreamTransport[StreamTransport]
TLSPairFactory = Callable[..., tuple[TLS, TLS]]
InnerFactory = Callable[..., tuple[StreamTransport, socket.socket]]
RunInThread = Callable[[Callable[[], Any]], Future[Any]]

SERVER_NAME = "server.test"  # conftest.TLS_SERVER_NAME
# How late a timeout may fire on a loaded 2-core machine.
MARGIN = 0.3


def read_until_eof(transport: StreamTransport) -> None:
    while transport.recv(65536, 5.0):
        pass


def timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def connect_to_ssl_socket(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    peer: Callable[[ssl.SSLSocket], object],
    **options: Any,
) -> tuple[TLS, Future[Any]]:
    """A TLSStreamTransport client talking to ``peer(ssl_socket)`` in a thread."""
    inner, peer_sock = make_inner()

    def serve() -> object:
        with server_context.wrap_socket(peer_sock, server_side=True) as tls_sock:
            return peer(tls_sock)

    future = run_in_thread(serve)
    client: TLS = TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, **options)
    return client, future


# ------------------------------------------------------- clean closes


def test_close_sends_close_notify_and_waits_for_the_answer(
    make_tls_pair: TLSPairFactory, run_in_thread: RunInThread
) -> None:
    client, server = make_tls_pair(client_options={"shutdown_timeout": 5.0})
    closing = run_in_thread(lambda: timed(client.close))
    assert server.recv(10, 5.0) == b""  # the close_notify
    server.close()  # answers it
    assert closing.result(10.0) < 1.0  # answered: no wait for the 5 s bound
    assert client.wrapped_transport.is_closed()


def test_a_clean_close_notify_reads_as_eof_and_forbids_sending(
    make_tls_pair: TLSPairFactory, run_in_thread: RunInThread
) -> None:
    client, server = make_tls_pair()

    def server_says_goodbye() -> float:
        server.send_all(b"goodbye", 5.0)
        return timed(server.close)

    server_closing = run_in_thread(server_says_goodbye)
    assert client.recv(100, 5.0) == b"goodbye"
    assert client.recv(100, 5.0) == b""
    assert client.recv(100, 5.0) == b""  # EOF stays EOF
    assert client.recv_into(bytearray(10), 5.0) == 0
    sends: list[Callable[[], object]] = [
        lambda: client.send(b"late", 5.0),
        lambda: client.send_all(b"late", 5.0),
        lambda: client.send_all_from_iterable([b"la", b"te"], 5.0),
    ]
    for send in sends:
        with pytest.raises(ConnectionResetError) as caught:
            send()
        assert caught.value.errno == errno.ECONNRESET
    assert timed(client.close) < 1.0  # the peer's close_notify is there already: no wait
    assert server_closing.result(10.0) < 1.0


def test_an_ssl_socket_unwrap_reads_as_eof(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    def unwrap(tls_sock: ssl.SSLSocket) -> None:
        tls_sock.sendall(b"bye")
        tls_sock.unwrap().close()  # sends close_notify, waits for ours

    client, peer = connect_to_ssl_socket(make_inner, run_in_thread, server_context, client_context, unwrap)
    with client:
        assert client.recv(10, 5.0) == b"bye"
        assert client.recv(10, 5.0) == b""
        with pytest.raises(ConnectionResetError):
            client.send_all(b"x", 5.0)
    peer.result(10.0)  # our close answered its unwrap()


# --------------------------------------------------------- ragged EOF


def test_ragged_eof_is_an_error_when_standard_compatible(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    def vanish(tls_sock: ssl.SSLSocket) -> None:
        tls_sock.sendall(b"data")
        # SSLSocket.close() sends no close_notify: a ragged EOF.

    client, peer = connect_to_ssl_socket(
        make_inner, run_in_thread, server_context, client_context, vanish, shutdown_timeout=5.0
    )
    with client:
        assert client.recv(10, 5.0) == b"data"
        peer.result(10.0)
        with pytest.raises(ssl.SSLEOFError):
            client.recv(10, 5.0)
        with pytest.raises(ssl.SSLEOFError):  # and again: a truncated stream never becomes EOF
            client.recv_into(bytearray(10), 5.0)
        assert timed(client.close) < 1.0  # the peer is gone: nothing to wait for


def test_ragged_eof_reads_as_eof_when_not_standard_compatible(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    def vanish(tls_sock: ssl.SSLSocket) -> None:
        tls_sock.sendall(b"data")

    client, peer = connect_to_ssl_socket(
        make_inner, run_in_thread, server_context, client_context, vanish, standard_compatible=False
    )
    with client:
        assert client.recv(10, 5.0) == b"data"
        peer.result(10.0)
        assert client.recv(10, 5.0) == b""
        assert client.recv(10, 5.0) == b""
        assert client.recv_into(bytearray(10), 5.0) == 0


@pytest.mark.parametrize("reader_standard_compatible", [True, False], ids=["strict-reader", "lenient-reader"])
def test_a_non_standard_close_sends_no_close_notify(
    make_tls_pair: TLSPairFactory, reader_standard_compatible: bool
) -> None:
    client, server = make_tls_pair(
        client_options={"standard_compatible": False},
        server_options={"standard_compatible": reader_standard_compatible},
    )
    # Read first, so that no TLS 1.3 session ticket is left unread in the
    # client's socket: closing a socket with unread data resets the connection.
    server.send_all(b"hi", 5.0)
    assert client.recv(10, 5.0) == b"hi"
    client.send_all(b"last", 5.0)
    assert timed(client.close) < 0.2  # no closing handshake: no wait
    assert client.wrapped_transport.is_closed()
    assert server.recv(10, 5.0) == b"last"
    if reader_standard_compatible:
        with pytest.raises(ssl.SSLEOFError):
            server.recv(10, 5.0)
    else:
        assert server.recv(10, 5.0) == b""


# -------------------------------------------------- bounded closing


def test_close_with_a_vanished_peer_returns_at_once(make_inner: InnerFactory, make_tls_pair: TLSPairFactory) -> None:
    client, server = make_tls_pair(client_options={"shutdown_timeout": 5.0})
    server.wrapped_transport.close()  # gone, without any TLS goodbye
    assert timed(client.close) < 1.0
    assert client.wrapped_transport.is_closed()


@pytest.mark.parametrize("peer_kind", ["tls-transport", "ssl-socket"])
def test_close_with_a_silent_peer_is_bounded_by_shutdown_timeout(
    make_inner: InnerFactory,
    make_tls_pair: TLSPairFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    peer_kind: str,
) -> None:
    # Many TLS 1.3 peers never answer a close_notify: the wait is bounded.
    if peer_kind == "tls-transport":
        client, _server = make_tls_pair(client_options={"shutdown_timeout": 0.5})
        elapsed = timed(client.close)
    else:

        def stay_silent(tls_sock: ssl.SSLSocket) -> bytes:
            time.sleep(0.5 + MARGIN + 0.2)  # reads nothing while the client closes
            return tls_sock.recv(10)  # then sees the close_notify

        client, peer = connect_to_ssl_socket(
            make_inner, run_in_thread, server_context, client_context, stay_silent, shutdown_timeout=0.5
        )
        elapsed = timed(client.close)
        assert peer.result(10.0) == b""
    assert 0.5 <= elapsed < 0.5 + MARGIN
    assert client.wrapped_transport.is_closed()


def test_close_while_the_peer_does_not_read_is_bounded(make_tls_pair: TLSPairFactory) -> None:
    # Our socket buffer is full (a send timed out mid-record): the close_notify
    # cannot even be sent. close() still ends within shutdown_timeout.
    client, _server = make_tls_pair(client_options={"shutdown_timeout": 0.5})
    with pytest.raises(TimeoutError):
        client.send_all(b"x" * (16 * 1024 * 1024), 0.2)
    elapsed = timed(client.close)
    assert 0.5 <= elapsed < 0.5 + MARGIN
    assert client.wrapped_transport.is_closed()


def test_close_does_not_wait_for_a_sender_stuck_on_a_peer_that_does_not_read(
    make_socketpair: Callable[[int], tuple[socket.socket, socket.socket]],
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    socket_stream: Callable[..., StreamTransport],
    shutdown_on_close_wrapper: Callable[[StreamTransport, socket.socket], StreamTransport],
) -> None:
    # Regression: close() waited up to shutdown_timeout for the send lock
    # before closing the wrapped transport, although only that close could
    # end the stuck send. Now it skips the closing handshake at once.
    ours, theirs = make_socketpair(socket.SOCK_STREAM)
    server_future: Future[TLS] = run_in_thread(
        lambda: TLSStreamTransport(socket_stream(theirs), server_context, shutdown_timeout=1.0)
    )
    client = TLSStreamTransport(
        shutdown_on_close_wrapper(socket_stream(ours), ours),
        client_context,
        server_hostname=SERVER_NAME,
        shutdown_timeout=5.0,
    )
    with server_future.result(10.0) as server:
        sending = run_in_thread(lambda: client.send_all(b"x" * (16 * 1024 * 1024), math.inf))
        time.sleep(0.3)
        assert not sending.done()  # stuck: the server does not read
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < MARGIN
        assert client.wrapped_transport.is_closed()
        with pytest.raises(OSError):
            sending.result(1.0)
        assert time.monotonic() - started < 1.0
        # No close_notify could be sent: the server sees a ragged EOF (or a
        # reset: the client's socket was closed with unread session tickets).
        with pytest.raises((ssl.SSLEOFError, ConnectionResetError)):
            read_until_eof(server)


# ------------------------------------------------ a failing transport


class FailingTransport(StreamTransport):
    """Delegates to another transport until told to fail."""

    def __init__(self, inner: StreamTransport) -> None:
        self.inner = inner
        self.fail_sends = False
        self.fail_close = False

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        return self.inner.recv_into(buffer, timeout)

    def send(self, data: Buffer, timeout: float) -> int:
        if self.fail_sends:
            raise OSError(errno.EIO, "I/O error")
        return self.inner.send(data, timeout)

    def send_eof(self) -> None:
        self.inner.send_eof()

    def close(self) -> None:
        self.inner.close()
        if self.fail_close:
            raise OSError(errno.EIO, "close failed")

    def is_closed(self) -> bool:
        return self.inner.is_closed()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.inner.extra_attributes


def test_errors_of_the_closing_handshake_are_swallowed(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    socket_stream: Callable[..., StreamTransport],
) -> None:
    inner, peer_sock = make_inner()
    failing = FailingTransport(inner)
    server_future: Future[TLS] = run_in_thread(lambda: TLSStreamTransport(socket_stream(peer_sock), server_context))
    client = TLSStreamTransport(failing, client_context, server_hostname=SERVER_NAME, shutdown_timeout=5.0)
    with server_future.result(10.0) as server:
        server.send_all(b"hi", 5.0)
        assert client.recv(10, 5.0) == b"hi"  # no unread ticket left: a clean EOF, not a reset
        failing.fail_sends = True
        with pytest.raises(OSError, match="I/O error"):
            client.send_all(b"x", 1.0)
        assert timed(client.close) < 1.0  # the close_notify cannot be sent: given up at once
        assert inner.is_closed()
        with pytest.raises(ssl.SSLEOFError):
            server.recv(10, 5.0)


def test_an_error_closing_the_wrapped_transport_is_raised(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    socket_stream: Callable[..., StreamTransport],
) -> None:
    inner, peer_sock = make_inner()
    failing = FailingTransport(inner)
    server_future: Future[TLS] = run_in_thread(lambda: TLSStreamTransport(socket_stream(peer_sock), server_context))
    client = TLSStreamTransport(failing, client_context, server_hostname=SERVER_NAME, standard_compatible=False)
    with server_future.result(10.0):
        failing.fail_close = True
        with pytest.raises(OSError, match="close failed"):
            client.close()
        assert client.is_closed()
        client.close()  # already closed: nothing happens, nothing is raised
