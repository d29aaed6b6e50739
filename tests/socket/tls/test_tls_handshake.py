"""SSLStreamTransport's constructor: what only it takes and checks.

Every failure must close the socket before the constructor raises (so no
descriptor leaks), and none may turn into a wait longer than
``handshake_timeout``. The handshake both TLS transports share (peers
that fail it, certificates, sessions, the common argument checks) is
checked once for both in tests/integration/test_tls_contract.py; here are
the retry interval, the socket argument and the selector factory.
"""

from __future__ import annotations

import gc
import selectors
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from transports.socket import SSLStreamTransport

SERVER_NAME = "server.test"  # conftest.SERVER_NAME
# How late a timeout may fire on a loaded 2-core machine.
MARGIN = 0.5

TCPPair = Callable[[], tuple[socket.socket, socket.socket]]
RunPeer = Callable[[Callable[[], Any]], "Future[Any]"]


# ------------------------------------------------------------ failures ----


def test_silent_peer_times_out_within_handshake_timeout_with_a_short_retry_interval(
    tcp_pair: TCPPair, client_context: ssl.SSLContext, fd_count: Callable[[], int]
) -> None:
    ours, _silent = tcp_pair()
    before = fd_count()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="handshake") as caught:
        # retry_interval shorter than the timeout: several waits share one budget.
        SSLStreamTransport(ours, client_context, 0.1, server_hostname=SERVER_NAME, handshake_timeout=0.5)
    elapsed = time.monotonic() - start
    assert 0.5 <= elapsed < 0.5 + MARGIN
    assert caught.value.errno is not None
    assert fd_count() == before - 1


def test_unconnected_socket(client_context: ssl.SSLContext) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(OSError) as caught:
        SSLStreamTransport(sock, client_context, 1.0, server_hostname=SERVER_NAME, handshake_timeout=1.0)
    assert not isinstance(caught.value, TimeoutError)
    assert sock.fileno() == -1


# --------------------------------------------------- argument checking ----


def test_ssl_socket_argument_is_a_type_error(client_context: ssl.SSLContext) -> None:
    left, right = socket.socketpair()
    try:
        wrapped = client_context.wrap_socket(left, server_hostname=SERVER_NAME, do_handshake_on_connect=False)
        with pytest.raises(TypeError, match="SSLSocket"):
            SSLStreamTransport(wrapped, client_context, 1.0, server_hostname=SERVER_NAME)
        assert wrapped.fileno() == -1  # every failure closes the socket given
    finally:
        right.close()


@pytest.mark.parametrize(
    ("family", "sock_type"),
    [(socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_UNIX, socket.SOCK_DGRAM), (socket.AF_UNIX, socket.SOCK_SEQPACKET)],
    ids=["udp", "unix-dgram", "unix-seqpacket"],
)
def test_wrong_socket_type_is_a_value_error(client_context: ssl.SSLContext, family: int, sock_type: int) -> None:
    sock = socket.socket(family, sock_type)
    with pytest.raises(ValueError, match="SOCK_STREAM"):
        SSLStreamTransport(sock, client_context, 1.0, server_hostname=SERVER_NAME)
    assert sock.fileno() == -1


def test_not_a_socket_is_a_type_error(client_context: ssl.SSLContext) -> None:
    with pytest.raises(TypeError, match=r"socket\.socket"):
        SSLStreamTransport(object(), client_context, 1.0, server_hostname=SERVER_NAME)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry_interval", [0.0, -1.0, float("nan")])
def test_bad_retry_interval_closes_the_socket(
    tcp_pair: TCPPair, client_context: ssl.SSLContext, retry_interval: float
) -> None:
    ours, _ = tcp_pair()
    with pytest.raises(ValueError, match="retry_interval"):
        SSLStreamTransport(ours, client_context, retry_interval, server_hostname=SERVER_NAME)
    assert ours.fileno() == -1


def test_selector_factory_makes_every_wait(
    tcp_pair: TCPPair, run_peer: RunPeer, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    made: list[selectors.BaseSelector] = []

    def factory() -> selectors.BaseSelector:
        selector = selectors.SelectSelector()
        made.append(selector)
        return selector

    ours, theirs = tcp_pair()
    go = threading.Event()

    def server() -> bytes:
        with server_context.wrap_socket(theirs, server_side=True) as tls_sock:
            go.wait(10.0)
            tls_sock.sendall(b"late")
            tls_sock.unwrap().detach()
        return b"late"

    peer = run_peer(server)
    with SSLStreamTransport(
        ours, client_context, 1.0, server_hostname=SERVER_NAME, selector_factory=factory, shutdown_timeout=5.0
    ) as client:
        after_handshake = len(made)
        with pytest.raises(TimeoutError):
            client.recv(10, 0.1)  # nothing to read: waits, with a selector from the factory
        assert len(made) > after_handshake
        go.set()
        assert client.recv(10, 5.0) == b"late"
        assert client.recv(10, 5.0) == b""
    assert peer.result(10.0) == b"late"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"server_hostname": "a" * 64 + ".example"}, ValueError),  # a label over 63 characters: no IDNA form
        ({"server_hostname": SERVER_NAME, "session": "not a session"}, TypeError),
        ({"server_hostname": 42}, TypeError),
    ],
)
def test_arguments_wrap_socket_checks_too_late_close_the_socket_at_once(
    tcp_pair: TCPPair,
    client_context: ssl.SSLContext,
    fd_count: Callable[[], int],
    options: dict[str, Any],
    error: type[Exception],
) -> None:
    # ssl.SSLContext.wrap_socket checks these only after it moved the
    # descriptor to its new SSLSocket, which its failure then leaves open to
    # the garbage collector: they are refused before.
    ours, _ = tcp_pair()
    before = fd_count()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with pytest.raises(error):
            SSLStreamTransport(ours, client_context, 1.0, **options)
        assert ours.fileno() == -1
        assert fd_count() == before - 1
        gc.collect()  # nothing left behind for the collector to find open
