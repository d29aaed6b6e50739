"""Bad buffers get the same exception, at once, from every stream transport we ship.

- A read-only buffer given to ``recv_into`` is a :exc:`TypeError` before
  any wait, also when receives have switched to waiting before they read
  (after one would have blocked), and also with an infinite timeout.
- A buffer that is not C-contiguous, given to any send method, is a
  :exc:`TypeError`, and nothing of that call reaches the peer.
"""

from __future__ import annotations

import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from transports.abc import StreamTransport
from transports.composite import StapledStreamTransport, TLSStreamTransport
from transports.selector import PipeReadTransport, PipeWriteTransport
from transports.socket import SocketDatagramTransport, SocketStreamTransport, SSLStreamTransport

SERVER_NAME = "server.test"
Pair = tuple[StreamTransport, StreamTransport]


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SERVER_NAME).configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return server, client


def handshake_both(make_server: Callable[[], StreamTransport], make_client: Callable[[], StreamTransport]) -> Pair:
    made: list[StreamTransport] = []
    thread = threading.Thread(target=lambda: made.append(make_server()))
    thread.start()
    client = make_client()
    thread.join(10.0)
    return client, made[0]


def tcp(contexts: Any) -> Pair:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname())
        theirs, _ = listener.accept()
    return SocketStreamTransport(ours, 1.0), SocketStreamTransport(theirs, 1.0)


def unix(contexts: Any) -> Pair:
    ours, theirs = socket.socketpair()
    return SocketStreamTransport(ours, 1.0), SocketStreamTransport(theirs, 1.0)


def pipes(contexts: Any) -> Pair:
    to_theirs_r, to_theirs_w = os.pipe()
    to_ours_r, to_ours_w = os.pipe()
    return (
        StapledStreamTransport(PipeWriteTransport(to_theirs_w, 1.0), PipeReadTransport(to_ours_r, 1.0)),
        StapledStreamTransport(PipeWriteTransport(to_ours_w, 1.0), PipeReadTransport(to_theirs_r, 1.0)),
    )


def ssl_on_a_socket(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> Pair:
    server_context, client_context = contexts
    ours, theirs = socket.socketpair()
    return handshake_both(
        lambda: SSLStreamTransport(theirs, server_context, 1.0, shutdown_timeout=0.5),
        lambda: SSLStreamTransport(ours, client_context, 1.0, server_hostname=SERVER_NAME, shutdown_timeout=0.5),
    )


def tls_over_pipes(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> Pair:
    server_context, client_context = contexts
    ours, theirs = pipes(contexts)
    return handshake_both(
        lambda: TLSStreamTransport(theirs, server_context, shutdown_timeout=0.5),
        lambda: TLSStreamTransport(ours, client_context, server_hostname=SERVER_NAME, shutdown_timeout=0.5),
    )


def receive_exactly(transport: StreamTransport, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = transport.recv(size - len(received), 5.0)
        assert chunk, f"end of stream after {received!r}"
        received += chunk
    return received


KINDS: dict[str, Callable[[tuple[ssl.SSLContext, ssl.SSLContext]], Pair]] = {
    "TCP": tcp,
    "Unix stream": unix,
    "stapled pipes": pipes,
    "SSLStreamTransport": ssl_on_a_socket,
    "TLSStreamTransport over pipes": tls_over_pipes,
}


@pytest.fixture(params=list(KINDS))
def pair(request: pytest.FixtureRequest, contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> Iterator[Pair]:
    ours, theirs = KINDS[request.param](contexts)
    try:
        yield ours, theirs
    finally:
        # Both ends at once, so that each closing handshake is answered.
        closer = threading.Thread(target=theirs.close)
        closer.start()
        ours.close()
        closer.join(10.0)


NOT_CONTIGUOUS = memoryview(bytearray(b"0123456789abcdef"))[::2]


@pytest.mark.parametrize("timeout", [3.0, math.inf])
@pytest.mark.parametrize("buffer", [b"read-only", NOT_CONTIGUOUS], ids=["read-only", "not contiguous"])
def test_unusable_receive_buffer_is_refused_before_any_wait(pair: Pair, buffer: Any, timeout: float) -> None:
    ours, theirs = pair
    with pytest.raises(TimeoutError):  # would block: receives now wait before they read
        ours.recv(10, 0)
    started = time.monotonic()
    with pytest.raises(TypeError):
        ours.recv_into(buffer, timeout)
    assert time.monotonic() - started < 1.0
    theirs.send_all(b"data", 5.0)
    time.sleep(0.05)
    with pytest.raises(TypeError):  # also when it tries first, with data there
        ours.recv_into(buffer, 0)
    assert ours.recv(4, 5.0) == b"data"  # and nothing was lost


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda t: t.send(NOT_CONTIGUOUS, 5.0), id="send"),
        pytest.param(lambda t: t.send_all(NOT_CONTIGUOUS, 5.0), id="send_all"),
        pytest.param(lambda t: t.send_all_from_iterable([b"first", NOT_CONTIGUOUS], 5.0), id="send_all_from_iterable"),
    ],
)
def test_non_contiguous_buffer_is_a_type_error_and_sends_nothing(
    pair: Pair, send: Callable[[StreamTransport], Any]
) -> None:
    ours, theirs = pair
    with pytest.raises(TypeError):
        send(ours)
    ours.send_all(b"next", 5.0)
    assert receive_exactly(theirs, 4) == b"next"  # the first bytes: nothing went before them


def test_non_contiguous_buffer_to_send_noblock_is_a_type_error(pair: Pair) -> None:
    ours, theirs = pair
    sender = getattr(ours, "send_transport", ours)  # a stapled pair's send part
    send_noblock = getattr(sender, "send_noblock", None)
    if send_noblock is None:
        pytest.skip(f"{type(sender).__name__} has no send_noblock")
    with pytest.raises(TypeError):
        send_noblock(NOT_CONTIGUOUS)
    ours.send_all(b"next", 5.0)
    assert receive_exactly(theirs, 4) == b"next"  # the first bytes: nothing went before them


@pytest.mark.parametrize("family", ["UDP", "Unix datagram"])
@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda t: t.send(NOT_CONTIGUOUS, 5.0), id="send"),
        pytest.param(lambda t: t.send_noblock(NOT_CONTIGUOUS), id="send_noblock"),
        pytest.param(lambda t: t.send_with_ancillary(NOT_CONTIGUOUS, [], 5.0), id="send_with_ancillary"),
    ],
)
def test_non_contiguous_datagram_is_a_type_error_and_sends_nothing(
    family: str, send: Callable[[SocketDatagramTransport], Any]
) -> None:
    if family == "UDP":
        ours_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        theirs_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ours_sock.bind(("127.0.0.1", 0))
        theirs_sock.bind(("127.0.0.1", 0))
        ours_sock.connect(theirs_sock.getsockname())
        theirs_sock.connect(ours_sock.getsockname())
    else:
        ours_sock, theirs_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with SocketDatagramTransport(ours_sock, 1.0) as ours, SocketDatagramTransport(theirs_sock, 1.0) as theirs:
        with pytest.raises(TypeError):
            send(ours)
        ours.send(b"next", 5.0)
        assert theirs.recv(5.0) == b"next"  # the first packet: nothing went before it
