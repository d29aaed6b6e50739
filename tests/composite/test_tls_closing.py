"""TLSStreamTransport's own ways of ending a connection.

What both TLS transports do at the end of a connection (close_notify,
ragged EOFs, the bounded closing handshake) is checked once for both in
tests/integration/test_tls_contract.py. Here: a close() that does not wait
for a sender stuck in the wrapped transport, and wrapped transports that
fail during the closing handshake or in their own close().
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


# -------------------------------------------------- a stuck sender


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
