"""The conformance kit (transports.abc.testing) on every transport we ship.

One entry per kind of connected pair: adding a transport adds one entry.
Each factory makes real connections (loopback TCP and UDP, Unix sockets,
pipes, child processes relaying bytes, real TLS with trustme
certificates) and closes everything it made when the check leaves it.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from transports.abc import DatagramTransport, StreamTransport
from transports.abc.testing import check_datagram_transport, check_stream_transport
from transports.composite import StapledDatagramTransport, StapledStreamTransport, TLSStreamTransport
from transports.selector import PipeReadTransport, PipeWriteTransport
from transports.socket import SocketDatagramTransport, SocketStreamTransport, SSLStreamTransport

SERVER_NAME = "server.test"
RETRY = 1.0
# Pipes and datagram sockets notice a close from another thread only after
# a retry interval: short ones here, so the close checks stay quick.
SHORT_RETRY = 0.1
SHUTDOWN = 1.0

StreamPair = tuple[StreamTransport, StreamTransport]
DatagramPair = tuple[DatagramTransport, DatagramTransport]
Contexts = tuple[ssl.SSLContext, ssl.SSLContext]


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = _ipv6_loopback()


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts of one test CA, seeing ragged EOFs."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SERVER_NAME).configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    for context in (server, client):
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return server, client


def close_both(a: Any, b: Any) -> None:
    """Close both ends at once, so that each closing handshake is answered."""
    closer = threading.Thread(target=b.close)
    closer.start()
    try:
        a.close()
    finally:
        closer.join(30.0)


def handshake_both(make_server: Callable[[], Any], make_client: Callable[[], Any]) -> tuple[Any, Any]:
    """``(client, server)``, the server's handshake in a thread; nothing leaks if one fails."""
    made: list[Any] = []
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            made.append(make_server())
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client = make_client()
    finally:
        thread.join(30.0)
    if failed:
        client.close()
        raise failed[0]
    return client, made[0]


def tcp_sockets(family: socket.AddressFamily) -> tuple[socket.socket, socket.socket]:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.create_server((host, 0), family=family) as listener:
        ours = socket.create_connection(listener.getsockname()[:2])
        theirs, _ = listener.accept()
    return ours, theirs


def stream_sockets(kind: str) -> tuple[socket.socket, socket.socket]:
    if kind == "unix":
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return tcp_sockets(socket.AF_INET6 if kind == "tcp6" else socket.AF_INET)


def socket_streams(kind: str) -> StreamPair:
    ours, theirs = stream_sockets(kind)
    return SocketStreamTransport(ours, RETRY), SocketStreamTransport(theirs, RETRY)


def ssl_streams(kind: str, contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> StreamPair:
    server_context, client_context = contexts
    ours, theirs = stream_sockets(kind)
    return handshake_both(
        lambda: SSLStreamTransport(theirs, server_context, RETRY, shutdown_timeout=SHUTDOWN),
        lambda: SSLStreamTransport(ours, client_context, RETRY, server_hostname=SERVER_NAME, shutdown_timeout=SHUTDOWN),
    )


def tls_over(pair: StreamPair, contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> StreamPair:
    server_context, client_context = contexts
    ours, theirs = pair
    try:
        return handshake_both(
            lambda: TLSStreamTransport(theirs, server_context, shutdown_timeout=SHUTDOWN),
            lambda: TLSStreamTransport(ours, client_context, server_hostname=SERVER_NAME, shutdown_timeout=SHUTDOWN),
        )
    except BaseException:
        close_both(ours, theirs)
        raise


def pipe_ends(write_fd: int, read_fd: int) -> StreamTransport:
    """One stream transport of a pipe to write to and a pipe to read from."""
    return StapledStreamTransport(PipeWriteTransport(write_fd, SHORT_RETRY), PipeReadTransport(read_fd, SHORT_RETRY))


def stapled_pipes() -> StreamPair:
    a_to_b_read, a_to_b_write = os.pipe()
    b_to_a_read, b_to_a_write = os.pipe()
    return pipe_ends(a_to_b_write, b_to_a_read), pipe_ends(b_to_a_write, a_to_b_read)


def stapled_sockets() -> StreamPair:
    a_to_b = socket.socketpair()
    b_to_a = socket.socketpair()
    return (
        StapledStreamTransport(SocketStreamTransport(a_to_b[0], RETRY), SocketStreamTransport(b_to_a[1], RETRY)),
        StapledStreamTransport(SocketStreamTransport(b_to_a[0], RETRY), SocketStreamTransport(a_to_b[1], RETRY)),
    )


# A child process that copies its stdin to its stdout as bytes come, and
# exits at the end of its input (closing its output: the reader's EOF).
RELAY = (
    "import os\n"
    "while True:\n"
    "    data = os.read(0, 65536)\n"
    "    if not data:\n"
    "        break\n"
    "    while data:\n"
    "        data = data[os.write(1, data):]\n"
)


@contextlib.contextmanager
def pipes_through_child_processes() -> Iterator[StreamPair]:
    """Each direction goes through a child process relaying it over its stdin and stdout."""
    children: list[subprocess.Popen[bytes]] = []
    ends: list[tuple[int, int]] = []
    try:
        for _ in range(2):
            child = subprocess.Popen([sys.executable, "-c", RELAY], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            children.append(child)
            assert child.stdin is not None
            assert child.stdout is not None
            # The transports own the descriptors from here: detach them from the file objects.
            ends.append((os.dup(child.stdin.fileno()), os.dup(child.stdout.fileno())))
            child.stdin.close()
            child.stdout.close()
        (to_first, from_first), (to_second, from_second) = ends
        with pipe_ends(to_first, from_second) as a, pipe_ends(to_second, from_first) as b:
            yield a, b
    finally:
        for child in children:
            try:
                child.wait(10.0)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


STREAM_KINDS: dict[str, tuple[Callable[[tuple[ssl.SSLContext, ssl.SSLContext]], StreamPair], bool]] = {
    # kind: (make a pair, half-close works)
    "TCP over IPv4": (lambda _: socket_streams("tcp4"), True),
    "TCP over IPv6": (lambda _: socket_streams("tcp6"), True),
    "Unix stream": (lambda _: socket_streams("unix"), True),
    "SSLStreamTransport over TCP": (lambda c: ssl_streams("tcp4", c), False),
    "SSLStreamTransport over Unix": (lambda c: ssl_streams("unix", c), False),
    "TLSStreamTransport over a socket": (lambda c: tls_over(socket_streams("unix"), c), False),
    "TLSStreamTransport over stapled pipes": (lambda c: tls_over(stapled_pipes(), c), False),
    "TLS in TLS": (lambda c: tls_over(tls_over(socket_streams("unix"), c), c), False),
    "stapled socket pairs": (lambda _: stapled_sockets(), True),
    "stapled pipes": (lambda _: stapled_pipes(), True),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", [*STREAM_KINDS, "stapled pipes to child processes"])
def test_stream_transport_conformance(kind: str, contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    if "IPv6" in kind and not IPV6:
        pytest.skip("no IPv6 loopback (::1) on this machine")
    if kind == "stapled pipes to child processes":
        check_stream_transport(pipes_through_child_processes, half_close=True)
        return
    make, half_close = STREAM_KINDS[kind]

    @contextlib.contextmanager
    def make_pair() -> Iterator[StreamPair]:
        a, b = make(contexts)
        try:
            yield a, b
        finally:
            close_both(a, b)

    check_stream_transport(make_pair, half_close=half_close)


def datagram_sockets(kind: str) -> tuple[socket.socket, socket.socket]:
    if kind == "unix":
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    family, host = (socket.AF_INET6, "::1") if kind == "udp6" else (socket.AF_INET, "127.0.0.1")
    ours, theirs = socket.socket(family, socket.SOCK_DGRAM), socket.socket(family, socket.SOCK_DGRAM)
    ours.bind((host, 0))
    theirs.bind((host, 0))
    ours.connect(theirs.getsockname())
    theirs.connect(ours.getsockname())
    return ours, theirs


def socket_datagrams(kind: str) -> DatagramPair:
    ours, theirs = datagram_sockets(kind)
    return SocketDatagramTransport(ours, SHORT_RETRY), SocketDatagramTransport(theirs, SHORT_RETRY)


def stapled_datagrams() -> DatagramPair:
    a_to_b = datagram_sockets("unix")
    b_to_a = datagram_sockets("unix")
    return (
        StapledDatagramTransport(
            SocketDatagramTransport(a_to_b[0], SHORT_RETRY), SocketDatagramTransport(b_to_a[1], SHORT_RETRY)
        ),
        StapledDatagramTransport(
            SocketDatagramTransport(b_to_a[0], SHORT_RETRY), SocketDatagramTransport(a_to_b[1], SHORT_RETRY)
        ),
    )


DATAGRAM_KINDS: dict[str, tuple[Callable[[], DatagramPair], int]] = {
    # kind: (make a pair, a packet size the kind refuses)
    "UDP over IPv4": (lambda: socket_datagrams("udp4"), 70_000),
    "UDP over IPv6": (lambda: socket_datagrams("udp6"), 70_000),
    "Unix datagram": (lambda: socket_datagrams("unix"), 4 * 1024 * 1024),
    "stapled datagram pairs": (stapled_datagrams, 4 * 1024 * 1024),
}


@pytest.mark.parametrize("kind", list(DATAGRAM_KINDS))
def test_datagram_transport_conformance(kind: str) -> None:
    if "IPv6" in kind and not IPV6:
        pytest.skip("no IPv6 loopback (::1) on this machine")
    make, too_big = DATAGRAM_KINDS[kind]

    @contextlib.contextmanager
    def make_pair() -> Iterator[DatagramPair]:
        a, b = make()
        with a, b:
            yield a, b

    check_datagram_transport(make_pair, too_big=too_big)


# ---------------------------------------------------------------------------
# Unusable buffers get the same exception, at once, from every transport:
# a read-only or non-contiguous buffer given to recv_into is a TypeError
# before any wait (also once receives wait before they read, and with an
# infinite timeout); a non-contiguous buffer given to a send is a TypeError,
# and nothing of that call reaches the peer.

NOT_CONTIGUOUS = memoryview(bytearray(b"0123456789abcdef"))[::2]


@pytest.fixture(params=list(STREAM_KINDS))
def stream_pair(request: pytest.FixtureRequest, contexts: Contexts) -> Iterator[StreamPair]:
    if "IPv6" in request.param and not IPV6:
        pytest.skip("no IPv6 loopback (::1) on this machine")
    make, _half_close = STREAM_KINDS[request.param]
    a, b = make(contexts)
    try:
        yield a, b
    finally:
        close_both(a, b)


def send_noblock_of(transport: Any) -> Callable[[Any], Any]:
    """The ``send_noblock`` of ``transport``, or of its send part when it is stapled."""
    sender = getattr(transport, "send_transport", transport)
    method: Callable[[Any], Any] = sender.send_noblock  # AttributeError: it has none
    return method


def receive_exactly(transport: StreamTransport, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = transport.recv(size - len(received), 5.0)
        assert chunk, f"end of stream after {received!r}"
        received += chunk
    return received


@pytest.mark.parametrize("timeout", [3.0, math.inf])
@pytest.mark.parametrize("buffer", [b"read-only", NOT_CONTIGUOUS], ids=["read-only", "not contiguous"])
def test_unusable_receive_buffer_is_refused_before_any_wait(
    stream_pair: StreamPair, buffer: Any, timeout: float
) -> None:
    ours, theirs = stream_pair
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
    assert receive_exactly(ours, 4) == b"data"  # and nothing was lost


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda t: t.send(NOT_CONTIGUOUS, 5.0), id="send"),
        pytest.param(lambda t: t.send_all(NOT_CONTIGUOUS, 5.0), id="send_all"),
        pytest.param(lambda t: t.send_all_from_iterable([b"first", NOT_CONTIGUOUS], 5.0), id="send_all_from_iterable"),
        pytest.param(lambda t: send_noblock_of(t)(NOT_CONTIGUOUS), id="send_noblock"),
    ],
)
def test_non_contiguous_buffer_is_a_type_error_and_sends_nothing(
    stream_pair: StreamPair, send: Callable[[Any], Any]
) -> None:
    ours, theirs = stream_pair
    try:
        send(ours)
    except AttributeError:
        pytest.skip(f"{type(ours).__name__} has no such method")
    except TypeError:
        pass
    else:
        pytest.fail("no TypeError")
    ours.send_all(b"next", 5.0)
    assert receive_exactly(theirs, 4) == b"next"  # the first bytes: nothing went before them


@pytest.mark.parametrize("kind", ["udp4", "unix"])
@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda t: t.send(NOT_CONTIGUOUS, 5.0), id="send"),
        pytest.param(lambda t: t.send_noblock(NOT_CONTIGUOUS), id="send_noblock"),
        pytest.param(lambda t: t.send_with_ancillary(NOT_CONTIGUOUS, [], 5.0), id="send_with_ancillary"),
    ],
)
def test_non_contiguous_datagram_is_a_type_error_and_sends_nothing(
    kind: str, send: Callable[[SocketDatagramTransport], Any]
) -> None:
    ours_sock, theirs_sock = datagram_sockets(kind)
    with SocketDatagramTransport(ours_sock, 1.0) as ours, SocketDatagramTransport(theirs_sock, 1.0) as theirs:
        with pytest.raises(TypeError):
            send(ours)
        ours.send(b"next", 5.0)
        assert theirs.recv(5.0) == b"next"  # the first packet: nothing went before it
