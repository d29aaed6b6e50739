"""SocketStreamTransport over real TCP (IPv4, IPv6) and AF_UNIX stream sockets."""

from __future__ import annotations

import array
import errno
import gc
import math
import selectors
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from transports.abc import TypedAttributeLookupError
from transports.socket import (
    INETSocketAttribute,
    SocketAttribute,
    SocketDatagramTransport,
    SocketProxy,
    SocketStreamTransport,
    UNIXSocketAttribute,
)

SocketPair = tuple[socket.socket, socket.socket]
PairFactory = Callable[[str], SocketPair]
Spawn = Callable[..., Future[Any]]

KINDS = ["tcp4", "tcp6", "unix"]
RETRY_INTERVAL = 0.1


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def pair(stream_pair: PairFactory, kind: str) -> Iterator[tuple[SocketStreamTransport, socket.socket]]:
    ours, peer = stream_pair(kind)
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        yield transport, peer


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        assert chunk, "unexpected EOF"
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def fill_send_buffer(sock: socket.socket) -> int:
    """Write to ``sock`` (non-blocking) until the kernel takes no more."""
    sent = 0
    chunk = b"\0" * 65536
    try:
        while True:
            sent += sock.send(chunk)
    except BlockingIOError:
        return sent


def send_later(sock: socket.socket, data: bytes, delay: float) -> None:
    time.sleep(delay)
    sock.sendall(data)


# ----------------------------------------------------------- data flow --


def test_echo(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, peer = pair
    transport.send_all(b"hello, world", 5.0)
    assert recv_exactly(peer, 12) == b"hello, world"
    peer.sendall(b"and back")
    assert transport.recv(1024, 5.0) == b"and back"


def test_recv_into_and_send(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, peer = pair
    assert transport.send(b"abc", 5.0) == 3
    assert recv_exactly(peer, 3) == b"abc"
    peer.sendall(b"xyz")
    buffer = bytearray(10)
    assert transport.recv_into(buffer, 5.0) == 3
    assert buffer[:3] == b"xyz"


@pytest.mark.parametrize("after_would_block", [False, True])
def test_recv_sizes(pair: tuple[SocketStreamTransport, socket.socket], after_would_block: bool) -> None:
    transport, peer = pair
    if after_would_block:  # receives now wait for readiness first: sizes still act at once
        with pytest.raises(TimeoutError):
            transport.recv(10, 0)
    start = time.monotonic()
    assert transport.recv(0, 5.0) == b""
    assert transport.recv_into(bytearray(), 5.0) == 0
    with pytest.raises(ValueError, match="negative"):
        transport.recv(-1, 5.0)
    assert time.monotonic() - start < 1.0
    peer.sendall(b"12345")
    assert transport.recv(2, 5.0) == b"12"
    assert transport.recv(10, 5.0) == b"345"


def test_noblock_methods(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    from transports.selector import WouldBlockOnRead

    transport, peer = pair
    with pytest.raises(WouldBlockOnRead) as caught:
        transport.recv_noblock(10)
    assert caught.value.fileno == transport.extra(SocketAttribute.socket).fileno()
    with pytest.raises(WouldBlockOnRead):
        transport.recv_noblock_into(bytearray(10))
    assert transport.send_noblock(b"ping") == 4
    assert recv_exactly(peer, 4) == b"ping"
    peer.sendall(b"pong")
    deadline = time.monotonic() + 5.0
    while True:
        try:
            assert transport.recv_noblock(10) == b"pong"
            break
        except WouldBlockOnRead:
            assert time.monotonic() < deadline
            time.sleep(0.001)


@pytest.mark.parametrize("timeout", [5.0, math.inf])  # a send with MSG_DONTWAIT, and a blocking send
def test_send_all_accepts_any_buffer(pair: tuple[SocketStreamTransport, socket.socket], timeout: float) -> None:
    transport, peer = pair
    ints = array.array("i", [1, 2, 3])
    transport.send_all(ints, timeout)
    assert recv_exactly(peer, len(ints.tobytes())) == ints.tobytes()
    matrix = memoryview(bytearray(b"abcdef")).cast("B", (2, 3))
    transport.send_all(matrix, timeout)
    assert recv_exactly(peer, 6) == b"abcdef"
    transport.send_all(b"", timeout)
    with pytest.raises(TypeError):
        transport.send_all(memoryview(b"abcdef")[::2], timeout)
    with pytest.raises(TypeError):
        transport.send_all("text", timeout)  # type: ignore[arg-type]


def test_gather_falls_back_to_sendmsg_where_pwritev_is_refused(
    stream_pair: PairFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transports.socket import _stream as stream_module

    # A flag this kernel does not know makes it refuse pwritev() with
    # EOPNOTSUPP, as kernels whose sockets do not take RWF_NOWAIT do.
    monkeypatch.setattr(stream_module, "_RWF_NOWAIT", 1 << 30)
    monkeypatch.setattr(stream_module, "_pwritev_nowait", True)
    ours, peer = stream_pair("unix")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        transport.send_all_from_iterable([b"abc", b"def"], 5.0)
        assert stream_module._pwritev_nowait is False  # for good, in this process
        transport.send_all_from_iterable([b"ghi"], 5.0)
    assert recv_exactly(peer, 9) == b"abcdefghi"


def test_send_all_from_iterable_mixed_chunks(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, peer = pair
    chunks: list[Any] = []
    for i in range(3000):  # more than IOV_MAX buffers
        match i % 5:
            case 0:
                chunks.append(bytes([i % 256]) * (i % 7))
            case 1:
                chunks.append(bytearray(b"ba"))
            case 2:
                chunks.append(memoryview(b"memoryview")[i % 4 :])
            case 3:
                chunks.append(array.array("h", [i]))
            case _:
                chunks.append(b"")
    chunks.append(b"")  # a trailing empty chunk must not loop forever
    expected = b"".join(bytes(chunk) for chunk in chunks)
    result = bytearray()

    def read() -> None:
        while len(result) < len(expected):
            result.extend(peer.recv(65536))

    reader = threading.Thread(target=read)
    reader.start()
    transport.send_all_from_iterable(iter(chunks), 5.0)
    reader.join(10.0)
    assert bytes(result) == expected
    transport.send_all_from_iterable([], 5.0)
    transport.send_all_from_iterable([b"", b""], 5.0)


# ------------------------------------------------------------ half-close --


def test_peer_eof_then_we_still_send(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, peer = pair
    peer.sendall(b"last words")
    peer.shutdown(socket.SHUT_WR)
    assert transport.recv(100, 5.0) == b"last words"
    assert transport.recv(100, 5.0) == b""
    assert transport.recv(100, 5.0) == b""  # EOF stays EOF
    transport.send_all(b"still here", 5.0)
    assert recv_exactly(peer, 10) == b"still here"


def test_send_eof_then_peer_still_sends(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, peer = pair
    transport.send_all(b"bye", 5.0)
    transport.send_eof()
    transport.send_eof()  # twice is fine
    assert recv_exactly(peer, 3) == b"bye"
    assert peer.recv(100) == b""
    peer.sendall(b"reply")
    assert transport.recv(100, 5.0) == b"reply"
    with pytest.raises(BrokenPipeError):
        transport.send_all(b"too late", 5.0)


def test_send_eof_ignores_unconnected_and_closed(cleanup: Callable[[Any], Any]) -> None:
    transport = cleanup(SocketStreamTransport(socket.socket(), RETRY_INTERVAL))
    transport.send_eof()  # ENOTCONN is ignored
    transport.close()
    transport.send_eof()  # closed: nothing happens


def test_peer_reset(stream_pair: PairFactory) -> None:
    ours, peer = stream_pair("tcp4")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # l_onoff=1, l_linger=0
        peer.close()
        with pytest.raises(ConnectionResetError):
            transport.recv(100, 5.0)
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            transport.send_all(b"x" * (64 << 20), 5.0)


def test_unix_peer_gone(stream_pair: PairFactory) -> None:
    ours, peer = stream_pair("unix")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        peer.close()
        assert transport.recv(100, 5.0) == b""
        with pytest.raises(BrokenPipeError):
            transport.send_all(b"anyone?", 5.0)


# -------------------------------------------------------------- timeouts --


def test_recv_timeout_zero(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, peer = pair
    start = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        transport.recv(10, 0)
    assert time.monotonic() - start < 0.5
    assert caught.value.errno == errno.ETIMEDOUT
    peer.sendall(b"now")
    time.sleep(0.05)
    assert transport.recv(10, 0) == b"now"


@pytest.mark.parametrize("retry_interval", [0.05, math.inf])
def test_recv_timeout_elapsed(stream_pair: PairFactory, retry_interval: float) -> None:
    ours, _peer = stream_pair("unix")
    with SocketStreamTransport(ours, retry_interval) as transport:
        for _ in range(2):  # the second call starts in "wait first" mode
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                transport.recv(10, 0.25)
            elapsed = time.monotonic() - start
            assert 0.24 <= elapsed < 2.0
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                transport.recv_into(bytearray(10), 0.25)
            assert 0.24 <= time.monotonic() - start < 2.0


def test_recv_infinite_timeout_waits_for_data(pair: tuple[SocketStreamTransport, socket.socket], spawn: Spawn) -> None:
    transport, peer = pair

    def late_send() -> None:
        time.sleep(0.2)
        peer.sendall(b"finally")

    sender = spawn(late_send)
    start = time.monotonic()
    assert transport.recv(100, math.inf) == b"finally"
    assert time.monotonic() - start >= 0.15
    sender.result(10.0)


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_bad_timeouts_raise_before_io(pair: tuple[SocketStreamTransport, socket.socket], bad: float) -> None:
    transport, peer = pair
    peer.sendall(b"kept")
    time.sleep(0.05)
    with pytest.raises(ValueError, match="timeout"):
        transport.recv(10, bad)
    with pytest.raises(ValueError, match="timeout"):
        transport.recv_into(bytearray(10), bad)
    with pytest.raises(ValueError, match="timeout"):
        transport.send(b"not sent", bad)
    with pytest.raises(ValueError, match="timeout"):
        transport.send_all(b"not sent", bad)
    with pytest.raises(ValueError, match="timeout"):
        transport.send_all_from_iterable([b"not sent"], bad)
    assert transport.recv(10, 5.0) == b"kept"
    peer.settimeout(0.1)
    with pytest.raises(TimeoutError):
        peer.recv(10)


def test_send_all_timeout_shares_one_budget(stream_pair: PairFactory) -> None:
    ours, _peer = stream_pair("unix")
    with SocketStreamTransport(ours, 0.05) as transport:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            transport.send_all(b"x" * (32 << 20), 0.3)  # the peer never reads
        assert 0.29 <= time.monotonic() - start < 2.0
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            transport.send_all_from_iterable([b"y" * 65536] * 100, 0.3)
        assert 0.29 <= time.monotonic() - start < 2.0
        with pytest.raises(TimeoutError):
            transport.send(b"z", 0)


def test_selector_factory_makes_every_wait(stream_pair: PairFactory, spawn: Spawn) -> None:
    ours, peer = stream_pair("unix")
    made: list[selectors.BaseSelector] = []

    def factory() -> selectors.BaseSelector:
        selector = selectors.DefaultSelector()
        made.append(selector)
        return selector

    with SocketStreamTransport(ours, 0.05, selector_factory=factory) as transport:
        with pytest.raises(TimeoutError):
            transport.recv(10, 0.2)
        assert len(made) >= 2  # waits of at most retry_interval each
        count = len(made)
        sender = spawn(send_later, peer, b"data", 0.1)
        assert transport.recv(10, 5.0) == b"data"
        assert len(made) > count
        sender.result(10.0)


# ----------------------------------------------------- closing, ownership --


def test_socket_is_owned(stream_pair: PairFactory) -> None:
    ours, _peer = stream_pair("tcp4")
    transport = SocketStreamTransport(ours, RETRY_INTERVAL)
    # Blocking on Linux, with MSG_DONTWAIT on every try (test_blocking_descriptor.py).
    assert ours.getblocking() is (sys.platform == "linux")
    assert not transport.is_closed()
    transport.close()
    assert transport.is_closed()
    assert ours.fileno() == -1
    transport.close()  # idempotent


def test_close_shuts_the_connection_down(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, peer = pair
    transport.send_all(b"before close", 5.0)
    transport.close()
    assert recv_exactly(peer, 12) == b"before close"
    assert peer.recv(10) == b""


def test_context_manager_closes(stream_pair: PairFactory) -> None:
    ours, _peer = stream_pair("unix")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        assert not transport.is_closed()
    assert transport.is_closed()


def test_operations_after_close_raise_ebadf(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, _peer = pair
    transport.close()
    calls: list[Callable[[], object]] = [
        lambda: transport.recv(10, math.inf),
        lambda: transport.recv(10, 0),
        lambda: transport.recv_into(bytearray(10), math.inf),
        lambda: transport.recv_noblock(10),
        lambda: transport.send(b"x", math.inf),
        lambda: transport.send_noblock(b"x"),
        lambda: transport.send_all(b"x", math.inf),
        lambda: transport.send_all_from_iterable([b"x", b"y"], math.inf),
    ]
    for call in calls:
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == errno.EBADF
    transport.send_eof()  # a no-op once closed


# Waiting in poll() after a first try, in the timed wait in C of a receive
# that waits first, and in recv() itself.
@pytest.mark.parametrize(("timeout", "waiting_first"), [(30.0, False), (30.0, True), (math.inf, False)])
def test_closing_from_another_thread_ends_a_blocked_recv(
    stream_pair: PairFactory, spawn: Spawn, timeout: float, waiting_first: bool
) -> None:
    for kind in ("unix", "tcp4"):
        ours, _peer = stream_pair(kind)
        transport = SocketStreamTransport(ours, 30.0)  # the shutdown must wake it, not the retry interval
        if waiting_first:
            with pytest.raises(TimeoutError):
                transport.recv(10, 0)
        blocked = spawn(transport.recv, 10, timeout)
        time.sleep(0.1)
        assert not blocked.done()
        start = time.monotonic()
        transport.close()
        with pytest.raises(OSError) as caught:
            blocked.result(5.0)
        assert caught.value.errno == errno.EBADF
        assert time.monotonic() - start < 1.0


def test_garbage_collected_transport_warns_and_closes(stream_pair: PairFactory) -> None:
    ours, _peer = stream_pair("unix")
    transport = SocketStreamTransport(ours, RETRY_INTERVAL)
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        del transport
        gc.collect()
    assert ours.fileno() == -1


def test_closed_transport_does_not_warn(stream_pair: PairFactory) -> None:
    ours, _peer = stream_pair("unix")
    transport = SocketStreamTransport(ours, RETRY_INTERVAL)
    transport.close()
    del transport
    gc.collect()  # filterwarnings=error: any warning would fail here


@pytest.mark.parametrize("timeout", [5.0, math.inf])
def test_signal_during_blocked_recv_is_retried(
    pair: tuple[SocketStreamTransport, socket.socket], spawn: Spawn, timeout: float
) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    transport, peer = pair
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        main = threading.get_ident()

        def interrupt_then_send() -> None:
            time.sleep(0.1)
            signal.pthread_kill(main, signal.SIGUSR1)  # EINTR in the blocked poll() or recv()
            time.sleep(0.1)
            peer.sendall(b"after the signal")

        helper = spawn(interrupt_then_send)
        assert transport.recv(100, timeout) == b"after the signal"
        helper.result(10.0)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert received == [signal.SIGUSR1]


# ------------------------------------------------------ argument checks --


def test_wrong_socket_type_is_value_error(cleanup: Callable[[Any], Any]) -> None:
    udp = cleanup(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with pytest.raises(ValueError, match="SOCK_STREAM"):
        SocketStreamTransport(udp, RETRY_INTERVAL)
    assert udp.fileno() != -1  # left alone
    assert udp.getblocking()
    tcp = cleanup(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    with pytest.raises(ValueError, match="SOCK_DGRAM"):
        SocketDatagramTransport(tcp, RETRY_INTERVAL)
    assert tcp.fileno() != -1
    assert tcp.getblocking()


def test_not_a_socket_is_type_error() -> None:
    with pytest.raises(TypeError):
        SocketStreamTransport(3, RETRY_INTERVAL)  # type: ignore[arg-type]


def test_ssl_socket_is_type_error(cleanup: Callable[[Any], Any]) -> None:
    context = ssl.create_default_context()
    raw = cleanup(socket.socket())
    wrapped = cleanup(context.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False))
    with pytest.raises(TypeError, match="SSLSocket"):
        SocketStreamTransport(wrapped, RETRY_INTERVAL)


@pytest.mark.parametrize("retry_interval", [0, -1.0, math.nan])
def test_bad_retry_interval_leaves_the_socket_alone(cleanup: Callable[[Any], Any], retry_interval: float) -> None:
    sock = cleanup(socket.socket())
    with pytest.raises(ValueError, match="retry_interval"):
        SocketStreamTransport(sock, retry_interval)
    assert sock.fileno() != -1
    assert sock.getblocking()


def test_closed_socket_is_refused() -> None:
    sock = socket.socket()
    sock.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        SocketStreamTransport(sock, RETRY_INTERVAL)


# ------------------------------------------------------------ attributes --


def test_attributes(pair: tuple[SocketStreamTransport, socket.socket], kind: str) -> None:
    transport, peer = pair
    proxy = transport.extra(SocketAttribute.socket)
    assert isinstance(proxy, SocketProxy)
    assert transport.extra(SocketAttribute.family) == peer.family
    assert transport.extra(SocketAttribute.sockname) == peer.getpeername()
    assert transport.extra(SocketAttribute.peername) == peer.getsockname()
    assert proxy.family == peer.family
    assert proxy.type == socket.SOCK_STREAM
    assert proxy.proto in {0, socket.IPPROTO_TCP}
    if kind == "unix":
        assert transport.extra(UNIXSocketAttribute.family) == socket.AF_UNIX
        assert transport.extra(UNIXSocketAttribute.peername) == ""
    else:
        host, port = transport.extra(INETSocketAttribute.peername)[:2]
        assert host in {"127.0.0.1", "::1"}
        assert port == peer.getsockname()[1]


def test_family_attributes_are_their_own_and_only_their_familys(stream_pair: PairFactory) -> None:
    # The proxy is shared; every other attribute of a family set is a key of
    # its own, typed for the family and absent from sockets of another one.
    assert INETSocketAttribute.socket is SocketAttribute.socket is UNIXSocketAttribute.socket
    for name in ("family", "sockname", "peername"):
        assert len({id(getattr(cls, name)) for cls in (SocketAttribute, INETSocketAttribute, UNIXSocketAttribute)}) == 3
    tcp_ours, tcp_peer = stream_pair("tcp4")
    unix_ours, _ = stream_pair("unix")
    with SocketStreamTransport(tcp_ours, 1.0) as tcp, SocketStreamTransport(unix_ours, 1.0) as unix:
        host, port = tcp.extra(INETSocketAttribute.peername)  # a (host, port) pair, for type checkers too
        assert (host, port) == tcp_peer.getsockname()
        assert tcp.extra(INETSocketAttribute.remote_host) == host
        assert tcp.extra(INETSocketAttribute.remote_port) == port
        assert tcp.extra(INETSocketAttribute.sockname) == tcp_peer.getpeername()
        assert tcp.extra(INETSocketAttribute.local_host) == "127.0.0.1"
        assert tcp.extra(INETSocketAttribute.local_port) == tcp_peer.getpeername()[1]
        assert tcp.extra(INETSocketAttribute.family) is socket.AF_INET
        assert unix.extra(UNIXSocketAttribute.family) is socket.AF_UNIX
        assert unix.extra(UNIXSocketAttribute.peername) == ""
        for attribute in (
            INETSocketAttribute.family,
            INETSocketAttribute.sockname,
            INETSocketAttribute.peername,
            INETSocketAttribute.local_host,
            INETSocketAttribute.local_port,
            INETSocketAttribute.remote_host,
            INETSocketAttribute.remote_port,
        ):
            with pytest.raises(TypedAttributeLookupError):
                unix.extra(attribute)
        for unix_attribute in (UNIXSocketAttribute.family, UNIXSocketAttribute.sockname, UNIXSocketAttribute.peername):
            with pytest.raises(TypedAttributeLookupError):
                tcp.extra(unix_attribute)


def test_ipv6_addresses_are_host_and_port(stream_pair: PairFactory) -> None:
    ours, peer = stream_pair("tcp6")
    with SocketStreamTransport(ours, 1.0) as transport:
        assert transport.extra(SocketAttribute.peername) == peer.getsockname()  # (host, port, flowinfo, scope_id)
        assert transport.extra(INETSocketAttribute.peername) == peer.getsockname()[:2]
        assert transport.extra(INETSocketAttribute.family) is socket.AF_INET6


def test_attributes_after_close(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, _peer = pair
    proxy = transport.extra(SocketAttribute.socket)
    transport.close()
    for attribute in (
        SocketAttribute.socket,
        SocketAttribute.family,
        SocketAttribute.sockname,
        SocketAttribute.peername,
    ):
        with pytest.raises(TypedAttributeLookupError):
            transport.extra(attribute)
        assert transport.extra(attribute, "default") == "default"
    assert proxy.fileno() == -1
    with pytest.raises(OSError):
        proxy.getsockname()


def test_peername_of_unconnected_socket(cleanup: Callable[[Any], Any]) -> None:
    transport = cleanup(SocketStreamTransport(socket.socket(), RETRY_INTERVAL))
    with pytest.raises(TypedAttributeLookupError):
        transport.extra(SocketAttribute.peername)
    assert transport.extra(INETSocketAttribute.sockname) == ("0.0.0.0", 0)


def test_proxy_refuses_io(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, _peer = pair
    proxy = transport.extra(SocketAttribute.socket)
    for name in (
        "send",
        "sendall",
        "sendmsg",
        "sendto",
        "sendfile",
        "recv",
        "recv_into",
        "recvmsg",
        "recvfrom",
        "close",
        "detach",
        "shutdown",
        "dup",
        "makefile",
        "setblocking",
        "settimeout",
        "accept",
        "connect",
        "bind",
        "listen",
    ):
        assert not hasattr(proxy, name), name
    with pytest.raises(AttributeError):
        proxy.sock = None  # type: ignore[attr-defined]
    assert "SocketProxy" in repr(proxy)


def test_proxy_options(pair: tuple[SocketStreamTransport, socket.socket]) -> None:
    transport, _peer = pair
    proxy = transport.extra(SocketAttribute.socket)
    proxy.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    assert proxy.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= 65536
    raw = proxy.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE, 4)
    assert int.from_bytes(raw, "little") == socket.SOCK_STREAM
    assert proxy.getsockname() == transport.extra(SocketAttribute.sockname)
    assert proxy.getpeername() == transport.extra(SocketAttribute.peername)
    with pytest.raises(TypeError):
        proxy.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, None)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        proxy.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1, 4)  # type: ignore[call-overload]


def test_repr(stream_pair: PairFactory) -> None:
    ours, _peer = stream_pair("unix")
    transport = SocketStreamTransport(ours, RETRY_INTERVAL)
    assert "AF_UNIX" in repr(transport)
    transport.close()
    assert "closed" in repr(transport)


# ------------------------------------------- receive modes (try / wait first) --


def echo_until_eof(peer: socket.socket) -> None:
    while data := peer.recv(65536):
        peer.sendall(data)
    peer.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("timeout", [5.0, math.inf])
def test_many_round_trips(stream_pair: PairFactory, spawn: Spawn, timeout: float) -> None:
    # A ping-pong makes receives switch to waiting first and back (probes);
    # every byte must still arrive once and in order.
    ours, peer = stream_pair("unix")
    echo = spawn(echo_until_eof, peer)
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        buffer = bytearray(64)
        for i in range(3000):
            message = i.to_bytes(4, "big") * 16
            transport.send_all(message, timeout)
            received = b""
            while len(received) < 64:
                if i % 2:
                    received += transport.recv(64 - len(received), timeout)
                else:
                    received += buffer[: transport.recv_into(memoryview(buffer)[: 64 - len(received)], timeout)]
            assert received == message
        transport.send_eof()
        assert transport.recv(10, 5.0) == b""
    echo.result(10.0)


def test_bulk_after_ping_pong_still_works(stream_pair: PairFactory, spawn: Spawn) -> None:
    ours, peer = stream_pair("unix")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        for _ in range(50):  # receives now wait first
            sender = spawn(send_later, peer, b"x", 0.0)
            assert transport.recv(10, 5.0) == b"x"
            sender.result(5.0)
        payload = bytes(range(256)) * 4096
        peer.sendall(payload[: 1 << 16])
        received = bytearray()
        sender = spawn(peer.sendall, payload[1 << 16 :])
        while len(received) < len(payload):
            chunk = transport.recv(4096, 5.0)
            assert chunk
            received += chunk
        sender.result(10.0)
        assert received == payload


def test_a_socket_subclass_has_its_own_receive_called_on_every_path(stream_pair: Any) -> None:
    # The transport owns whatever socket.socket it was given: a subclass's
    # recv is the one called, whether a receive tries, waits or retries.
    class CountingSocket(socket.socket):
        calls = 0

        def recv(self, *args: Any) -> bytes:
            CountingSocket.calls += 1
            return super().recv(*args)

    first, peer = stream_pair("unix")
    counting = CountingSocket(first.family, first.type, first.proto, fileno=first.detach())
    with SocketStreamTransport(counting, 0.1) as transport:
        peer.sendall(b"abcdef")
        assert transport.recv(2, 1.0) == b"ab"  # tries first: 1 call
        assert transport.recv(2, 0) == b"cd"  # timeout 0, the receive engine: 2
        assert transport.recv_noblock(2) == b"ef"  # 3
        with pytest.raises(TimeoutError):
            transport.recv(2, 0)  # would block (4): the next receives wait first
        peer.sendall(b"gh")
        assert transport.recv(2, 0.05) == b"gh"  # waits first, with poll (0.05 < retry_interval): 5
    assert CountingSocket.calls == 5
