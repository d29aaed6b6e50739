"""Connected pairs of every transport kind we ship, for the cross-package suite.

One entry per kind of connected pair: adding a transport adds one entry to
``STREAM_KINDS`` or ``DATAGRAM_KINDS``, and every test that takes the
``stream_kind`` or ``datagram_kind`` argument runs on it. Each factory makes
real connections (loopback TCP and UDP, Unix sockets, pipes, child
processes relaying bytes, real TLS with trustme certificates).

Test modules cannot import from each other or from this file (pytest runs
with ``--import-mode=importlib``), so helpers are handed out as fixtures:
``open_stream_pair(kind)`` and ``open_datagram_pair(kind)`` are context
managers that close everything they made when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from transports.abc import DatagramTransport, StreamTransport
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


def require_ipv6_for(kind: str) -> None:
    """Skip the test cleanly when ``kind`` needs an IPv6 loopback that is missing."""
    if "IPv6" in kind and not IPV6:
        pytest.skip("no IPv6 loopback (::1) on this machine")


@pytest.fixture(scope="session")
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
    if not isinstance(a, (SSLStreamTransport, TLSStreamTransport)):
        # No closing handshake to answer: a thread would only cost time.
        try:
            a.close()
        finally:
            b.close()
        return
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
    # As protocol libraries do: without it, a small write that follows an
    # unacknowledged one (the first data after a TLS handshake) waits for the
    # peer's delayed ACK, some 40 ms on Linux.
    for sock in (ours, theirs):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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


CHILD_PROCESSES = "stapled pipes to child processes"
# Every stream kind, the one relaying through child processes included.
ALL_STREAM_KINDS = [*STREAM_KINDS, CHILD_PROCESSES]

OpenStreamPair = Callable[[str], contextlib.AbstractContextManager[StreamPair]]
OpenDatagramPair = Callable[[str], contextlib.AbstractContextManager[DatagramPair]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking ``stream_kind`` or ``datagram_kind`` runs once per kind."""
    if "stream_kind" in metafunc.fixturenames:
        metafunc.parametrize("stream_kind", ALL_STREAM_KINDS)
    if "datagram_kind" in metafunc.fixturenames:
        metafunc.parametrize("datagram_kind", list(DATAGRAM_KINDS))


@pytest.fixture
def half_close(stream_kind: str) -> bool:
    """Whether pairs of ``stream_kind`` support ``send_eof``."""
    return stream_kind == CHILD_PROCESSES or STREAM_KINDS[stream_kind][1]


@pytest.fixture
def open_stream_pair(contexts: Contexts) -> OpenStreamPair:
    """``open_stream_pair(kind)``: a context manager giving a connected pair, closed at its end."""

    @contextlib.contextmanager
    def open_pair(kind: str) -> Iterator[StreamPair]:
        require_ipv6_for(kind)
        if kind == CHILD_PROCESSES:
            with pipes_through_child_processes() as pair:
                yield pair
            return
        a, b = STREAM_KINDS[kind][0](contexts)
        try:
            yield a, b
        finally:
            close_both(a, b)

    return open_pair


@pytest.fixture
def make_stream_pair(contexts: Contexts) -> Callable[[str], StreamPair]:
    """``make_stream_pair(kind)``: a connected pair the caller owns (not for child processes)."""

    def make(kind: str) -> StreamPair:
        require_ipv6_for(kind)
        return STREAM_KINDS[kind][0](contexts)

    return make


@pytest.fixture
def make_datagram_pair() -> Callable[[str], DatagramPair]:
    """``make_datagram_pair(kind)``: a connected pair the caller owns."""

    def make(kind: str) -> DatagramPair:
        require_ipv6_for(kind)
        return DATAGRAM_KINDS[kind][0]()

    return make


@pytest.fixture
def open_datagram_pair() -> OpenDatagramPair:
    """``open_datagram_pair(kind)``: a context manager giving a connected pair, closed at its end."""

    @contextlib.contextmanager
    def open_pair(kind: str) -> Iterator[DatagramPair]:
        require_ipv6_for(kind)
        a, b = DATAGRAM_KINDS[kind][0]()
        with a, b:
            yield a, b

    return open_pair


@pytest.fixture
def datagram_too_big(datagram_kind: str) -> int:
    """A packet size pairs of ``datagram_kind`` refuse with ``EMSGSIZE``."""
    return DATAGRAM_KINDS[datagram_kind][1]


# ---------------------------------------------------------------- figures ----
# The reliability tests report what they did (connections, bytes, faults,
# cycles, examples, descriptors) with ``figures(...)``; the values ride on
# the test report (so they cross from xdist workers) and are printed at the
# end of the run, where CI logs keep them.

Figures = Callable[..., None]


@pytest.fixture
def figures(record_property: Callable[[str, object], None]) -> Figures:
    """``figures(name=value, ...)``: numbers this test measured, printed at the end of the run."""

    def record(**values: int | float | str) -> None:
        record_property("figures", values)

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines: list[str] = []
    for report in terminalreporter.stats.get("passed", []):
        for name, values in getattr(report, "user_properties", ()):
            if name == "figures":
                shown = ", ".join(
                    f"{key}={value:,}" if isinstance(value, int) else f"{key}={value}" for key, value in values.items()
                )
                lines.append(f"{report.nodeid}: {shown}")
    if lines:
        terminalreporter.section("reliability figures")
        for line in sorted(lines):
            terminalreporter.line(line)
