"""connect_tcp, connect_tls and connect_unix: one budget, happy eyeballs, nothing leaked.

Listeners are real loopback and Unix sockets. A "silent" address, one whose
connection attempts neither succeed nor fail, is a TCP listener with a full
backlog: Linux drops the SYNs it cannot queue, so the attempt hangs. Name
resolution is the one thing replaced (``socket.getaddrinfo`` for names
ending in ``.test``): no real resolver can be made, without the network, to
give chosen addresses, to fail, or to be slow.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from transports.socket import SocketAttribute, connect_tcp, connect_tls, connect_unix

PEER_TIMEOUT = 10.0


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def no_descriptor_left() -> Iterator[None]:
    before = open_descriptors()
    yield
    assert open_descriptors() <= before, "a descriptor was left open"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(PEER_TIMEOUT)
        yield sock


@pytest.fixture
def silent_address() -> Iterator[tuple[str, int]]:
    """A loopback TCP address whose connection attempts hang (a listener with a full backlog)."""
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        address = sock.getsockname()
        # Fill the backlog; the kernel queues one more than listen() asks.
        for _ in range(8):
            filler = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(address)
        yield address


@pytest.fixture
def refused_port() -> int:
    """A loopback TCP port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


Resolution = dict[str, Callable[[], list[Any]]]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolution:
    """Names ending in ``.test`` resolve as the test says; others as usual."""
    answers: Resolution = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if isinstance(host, str) and host.endswith(".test"):
            flags = args[3] if len(args) > 3 else kwargs.get("flags", 0)
            if flags & socket.AI_NUMERICHOST:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return answers[host]()
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def tcp_info(host: str, port: int) -> tuple[Any, ...]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address: tuple[Any, ...] = (host, port, 0, 0) if family == socket.AF_INET6 else (host, port)
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)


# ---------------------------------------------------------------- TCP ----


def test_connect_tcp_to_an_address(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with connect_tcp("127.0.0.1", port, 5.0) as transport:
        peer, _ = listener.accept()
        with peer:
            transport.send_all(b"hello", 5.0)
            assert peer.recv(5) == b"hello"
            peer.sendall(b"back")
            assert transport.recv(4, 5.0) == b"back"
            proxy = transport.extra(SocketAttribute.socket)
            assert proxy.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert transport.extra(SocketAttribute.peername) == ("127.0.0.1", port)


def test_nodelay_can_be_left_off(listener: socket.socket) -> None:
    with connect_tcp("127.0.0.1", listener.getsockname()[1], 5.0, nodelay=False) as transport:
        listener.accept()[0].close()
        assert transport.extra(SocketAttribute.socket).getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0


def test_connect_tcp_over_ipv6() -> None:
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback (::1) on this machine")
    with server, connect_tcp("::1", server.getsockname()[1], 5.0) as transport:
        assert transport.extra(SocketAttribute.family) == socket.AF_INET6
        server.accept()[0].close()


def test_connect_tcp_to_a_name(listener: socket.socket) -> None:
    # "localhost" resolves through the hosts file, without the network.
    with connect_tcp("localhost", listener.getsockname()[1], 5.0, family=socket.AF_INET) as transport:
        listener.accept()[0].close()
        assert transport.extra(SocketAttribute.peername)[0] == "127.0.0.1"


def test_local_address(listener: socket.socket) -> None:
    with connect_tcp("127.0.0.1", listener.getsockname()[1], 5.0, local_address=("127.0.0.1", 0)) as transport:
        peer, peer_address = listener.accept()
        peer.close()
        assert transport.extra(SocketAttribute.sockname) == peer_address


def test_refused(refused_port: int) -> None:
    with no_descriptor_left(), pytest.raises(ConnectionRefusedError, match=f"127.0.0.1:{refused_port}") as caught:
        connect_tcp("127.0.0.1", refused_port, 5.0)
    assert isinstance(caught.value.__cause__, ExceptionGroup)


def test_every_address_failing_names_every_attempt(resolver: Resolution, refused_port: int) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.2", 0))
        other_port = other.getsockname()[1]
    resolver["two.test"] = lambda: [tcp_info("127.0.0.1", refused_port), tcp_info("127.0.0.2", other_port)]
    with no_descriptor_left(), pytest.raises(ConnectionRefusedError) as caught:
        connect_tcp("two.test", refused_port, 5.0)
    message = str(caught.value)
    assert f"('127.0.0.1', {refused_port})" in message
    assert f"('127.0.0.2', {other_port})" in message
    group = caught.value.__cause__
    assert isinstance(group, ExceptionGroup)
    assert len(group.exceptions) == 2


def test_happy_eyeballs_starts_the_next_attempt_after_the_delay(
    resolver: Resolution, silent_address: tuple[str, int], listener: socket.socket
) -> None:
    good = listener.getsockname()
    resolver["slow-first.test"] = lambda: [tcp_info(*silent_address), tcp_info(*good)]
    with no_descriptor_left():
        started = time.monotonic()
        with connect_tcp("slow-first.test", good[1], 5.0, happy_eyeballs_delay=0.2) as transport:
            elapsed = time.monotonic() - started
            assert transport.extra(SocketAttribute.peername) == good
            listener.accept()[0].close()
        # The second attempt waited for the delay, not for the whole timeout.
        assert 0.15 <= elapsed < 2.0


def test_a_failed_attempt_starts_the_next_one_at_once(
    resolver: Resolution, refused_port: int, listener: socket.socket
) -> None:
    good = listener.getsockname()
    resolver["refused-first.test"] = lambda: [tcp_info("127.0.0.1", refused_port), tcp_info(*good)]
    started = time.monotonic()
    with connect_tcp("refused-first.test", 0, 5.0, happy_eyeballs_delay=3.0) as transport:
        assert time.monotonic() - started < 1.0
        assert transport.extra(SocketAttribute.peername) == good
        listener.accept()[0].close()


def test_a_failure_beside_a_pending_attempt_starts_the_next_one_at_once(
    resolver: Resolution, silent_address: tuple[str, int], refused_port: int, listener: socket.socket
) -> None:
    # The silent attempt gets its delay; the refused one, started beside it,
    # fails at once, and the good one starts then, not a delay later.
    good = listener.getsockname()
    resolver["three.test"] = lambda: [tcp_info(*silent_address), tcp_info("127.0.0.1", refused_port), tcp_info(*good)]
    started = time.monotonic()
    with connect_tcp("three.test", 0, 5.0, happy_eyeballs_delay=0.4) as transport:
        elapsed = time.monotonic() - started
        assert transport.extra(SocketAttribute.peername) == good
        listener.accept()[0].close()
    assert 0.35 <= elapsed < 0.7


def test_families_are_interleaved(resolver: Resolution, refused_port: int) -> None:
    # Three IPv4 addresses, then one IPv6: the IPv6 one is tried second.
    tried: list[Any] = []
    real_connect = socket.socket.connect

    resolver["many.test"] = lambda: [
        tcp_info("127.0.0.1", refused_port),
        tcp_info("127.0.0.2", refused_port),
        tcp_info("127.0.0.3", refused_port),
        tcp_info("::1", refused_port),
    ]

    def connect(self: socket.socket, address: Any) -> None:
        tried.append(address[0])
        real_connect(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        with no_descriptor_left(), pytest.raises(OSError):
            connect_tcp("many.test", refused_port, 5.0)
    assert tried == ["127.0.0.1", "::1", "127.0.0.2", "127.0.0.3"]


@pytest.mark.parametrize("timeout", [0.0, 0.3])
def test_timeout_while_connecting(silent_address: tuple[str, int], timeout: float) -> None:
    with no_descriptor_left():
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="timed out connecting"):
            connect_tcp(*silent_address, timeout)
        assert timeout <= time.monotonic() - started < timeout + 1.0


def test_timeout_while_resolving(resolver: Resolution) -> None:
    release = threading.Event()

    def slow() -> list[Any]:
        release.wait(PEER_TIMEOUT)
        return []

    resolver["slow.test"] = slow
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="resolving"):
            connect_tcp("slow.test", 80, 0.3)
        assert 0.3 <= time.monotonic() - started < 1.3
    finally:
        release.set()


def test_unresolvable_name(resolver: Resolution) -> None:
    def fail() -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    resolver["nowhere.test"] = fail
    with no_descriptor_left(), pytest.raises(socket.gaierror):
        connect_tcp("nowhere.test", 80, 5.0)


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ((b"127.0.0.1", 80, 1.0), TypeError),
        (("127.0.0.1", "80", 1.0), TypeError),
        (("127.0.0.1", True, 1.0), TypeError),
        (("127.0.0.1", 70000, 1.0), ValueError),
        (("127.0.0.1", -1, 1.0), ValueError),
        (("127.0.0.1", 80, -1.0), ValueError),
        (("127.0.0.1", 80, math.nan), ValueError),
        (("127.0.0.1", 80, None), TypeError),
    ],
)
def test_bad_arguments(arguments: tuple[Any, ...], error: type[Exception]) -> None:
    with no_descriptor_left(), pytest.raises(error):
        connect_tcp(*arguments)


@pytest.mark.parametrize(
    "options",
    [{"family": socket.AF_UNIX}, {"happy_eyeballs_delay": -1.0}, {"retry_interval": 0.0}],
)
def test_bad_options(options: dict[str, Any]) -> None:
    with no_descriptor_left(), pytest.raises(ValueError):
        connect_tcp("127.0.0.1", 80, 1.0, **options)


# ---------------------------------------------------------------- TLS ----


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA, listener: socket.socket) -> Iterator[Callable[[], threading.Thread]]:
    """``start()`` makes one TLS handshake as the server for 127.0.0.1, in a thread, and returns the thread."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    threads: list[threading.Thread] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello")
                tls.recv(1)

    def start() -> threading.Thread:
        thread = threading.Thread(target=serve)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    listener.close()
    for thread in threads:
        thread.join(PEER_TIMEOUT)


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_connect_tls(ca: trustme.CA, listener: socket.socket, tls_server: Callable[[], threading.Thread]) -> None:
    tls_server()
    port = listener.getsockname()[1]
    with connect_tls("127.0.0.1", port, 5.0, ssl_context=client_context(ca), shutdown_timeout=1.0) as transport:
        assert transport.recv(5, 5.0) == b"hello"
        transport.send_all(b"!", 5.0)


def test_connect_tls_checks_certificates_by_default(
    listener: socket.socket, tls_server: Callable[[], threading.Thread]
) -> None:
    # The server thread's socket is a descriptor of this process too: count
    # once that thread is done with it.
    before = open_descriptors()
    server = tls_server()
    with pytest.raises(ssl.SSLCertVerificationError):
        connect_tls("127.0.0.1", listener.getsockname()[1], 5.0)
    server.join(PEER_TIMEOUT)
    assert open_descriptors() <= before


def test_connect_tls_checks_the_host_name(
    ca: trustme.CA, listener: socket.socket, tls_server: Callable[[], threading.Thread]
) -> None:
    before = open_descriptors()
    server = tls_server()
    with pytest.raises(ssl.SSLCertVerificationError):
        connect_tls(
            "127.0.0.1", listener.getsockname()[1], 5.0, ssl_context=client_context(ca), server_hostname="other.test"
        )
    server.join(PEER_TIMEOUT)
    assert open_descriptors() <= before


def test_connect_tls_spends_one_budget_on_connection_and_handshake(ca: trustme.CA, listener: socket.socket) -> None:
    # The server accepts (the kernel does, from its backlog) but never speaks.
    with no_descriptor_left():
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            connect_tls("127.0.0.1", listener.getsockname()[1], 0.4, ssl_context=client_context(ca))
        assert 0.4 <= time.monotonic() - started < 1.4
    listener.accept()[0].close()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"ssl_context": object()}, TypeError),
        ({"session": object()}, TypeError),
        ({"shutdown_timeout": -1.0}, ValueError),
        ({"shutdown_timeout": math.nan}, ValueError),
    ],
)
def test_connect_tls_refuses_bad_options_before_connecting(
    listener: socket.socket, options: dict[str, Any], error: type[Exception]
) -> None:
    with no_descriptor_left(), pytest.raises(error):
        connect_tls("127.0.0.1", listener.getsockname()[1], 1.0, **options)
    listener.settimeout(0.0)
    with pytest.raises(BlockingIOError):  # no connection was made
        listener.accept()


# --------------------------------------------------------------- Unix ----


@pytest.fixture
def unix_listener(tmp_path: Path) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(tmp_path / "server.sock"))
        sock.listen()
        sock.settimeout(PEER_TIMEOUT)
        yield sock


@pytest.mark.parametrize("as_type", [str, os.fsencode, Path], ids=["str", "bytes", "Path"])
def test_connect_unix(unix_listener: socket.socket, as_type: Callable[[str], Any]) -> None:
    with connect_unix(as_type(unix_listener.getsockname()), 5.0) as transport:
        peer, _ = unix_listener.accept()
        with peer:
            transport.send_all(b"hello", 5.0)
            assert peer.recv(5) == b"hello"


def test_connect_unix_abstract_namespace() -> None:
    name = f"\0transports-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(name)
        server.listen()
        with connect_unix(name, 5.0) as transport:
            server.accept()[0].close()
            assert transport.recv(1, 5.0) == b""


def test_connect_unix_to_nothing(tmp_path: Path) -> None:
    with no_descriptor_left(), pytest.raises(FileNotFoundError):
        connect_unix(tmp_path / "missing.sock", 5.0)


def test_connect_unix_to_a_socket_nobody_listens_on(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))
    with no_descriptor_left(), pytest.raises(ConnectionRefusedError):
        connect_unix(path, 5.0)


def test_connect_unix_waits_for_a_full_backlog_within_its_budget(tmp_path: Path) -> None:
    path = str(tmp_path / "busy.sock")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        server.bind(path)
        server.listen(0)
        for _ in range(4):
            filler = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(path)
        with no_descriptor_left():
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                connect_unix(path, 0.3)
            assert 0.3 <= time.monotonic() - started < 1.3
        # Once the listener takes one, the next connect gets through.
        server.setblocking(True)
        server.accept()[0].close()
        taker = threading.Timer(0.2, lambda: server.accept()[0].close())
        taker.start()
        try:
            with connect_unix(path, 5.0):
                pass
        finally:
            taker.join(PEER_TIMEOUT)


def test_connect_unix_bad_arguments() -> None:
    with pytest.raises(TypeError):
        connect_unix(42, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        connect_unix("/nonexistent", -1.0)
