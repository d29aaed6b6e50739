"""The socket transports' descriptor mode: blocking, with MSG_DONTWAIT on every try.

On Linux the plain socket transports leave the descriptor in blocking mode,
so that an operation with an infinite timeout waits inside its system call
(one ``recv`` rather than ``poll`` plus ``recv``), bounded by ``SO_RCVTIMEO`` /
``SO_SNDTIMEO`` = ``retry_interval`` on datagram sockets and by nothing more
than the caller set on TCP and Unix stream sockets (close() shuts those down). These tests pin the three things that
could go wrong with that: a call that must not block blocking, an infinite
wait that never comes back to notice a close, and a wait that gives up
early. Calls that could hang run in a thread with a bounded ``result()``; ``spawn``
comes first among the fixtures so that the sockets are closed (waking any
call a bug left blocked) before its threads are joined.
"""

from __future__ import annotations

import errno
import math
import os
import selectors
import socket
import struct
import sys
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from transports.selector import WouldBlockOnRead, WouldBlockOnWrite
from transports.socket import SocketAttribute, SocketDatagramTransport, SocketStreamTransport, ancillary_space_for_fds

SocketPair = tuple[socket.socket, socket.socket]
PairFactory = Callable[[str], SocketPair]
Spawn = Callable[..., Future[Any]]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the descriptor stays blocking on Linux only")

# Long enough that a call blocking by mistake is told apart from one that
# returns at once; short enough to keep the tests quick.
PROMPT = 2.0


def timeval(sock: Any, seconds: float) -> bytes:
    """``seconds`` as the ``struct timeval`` of ``SO_RCVTIMEO`` on ``sock`` (a socket or its proxy)."""
    size = len(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 64))
    return struct.pack("@qq" if size == 16 else "@ii", int(seconds), round(seconds % 1 * 1e6))


def set_call_timeouts(transport: Any, seconds: float) -> None:
    """Bound the transport's blocking calls, as a user may through the socket proxy."""
    proxy = transport.extra(SocketAttribute.socket)
    proxy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval(proxy, seconds))
    proxy.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval(proxy, seconds))


def call_timeouts(sock: socket.socket) -> tuple[float, float]:
    def seconds(option: int) -> float:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, 64)
        whole: int
        micro: int
        whole, micro = struct.unpack("@qq" if len(raw) == 16 else "@ii", raw)
        return whole + micro / 1e6

    return seconds(socket.SO_RCVTIMEO), seconds(socket.SO_SNDTIMEO)


def fill_send_buffer(transport: SocketStreamTransport) -> None:
    for _ in range(10_000):  # bounded: 640 MiB at most
        try:
            transport.send(b"x" * 65536, 0)
        except TimeoutError:
            return
    raise AssertionError("the send buffer never filled up")


def send_later(sock: socket.socket, data: bytes, delay: float) -> None:
    time.sleep(delay)
    sock.sendall(data)


def test_datagram_descriptor_is_blocking_with_retry_interval_as_call_timeouts(datagram_pair: PairFactory) -> None:
    ours, _peer = datagram_pair("udp4")
    with SocketDatagramTransport(ours, 0.25):
        assert os.get_blocking(ours.fileno())
        assert call_timeouts(ours) == pytest.approx((0.25, 0.25), abs=0.01)


def test_stream_calls_are_unbounded_and_bounds_set_before_are_outlasted(spawn: Spawn, stream_pair: PairFactory) -> None:
    # close() shuts a stream down, which wakes a blocked call: no bound needed,
    # and none is set. A bound the caller set before stays, and an infinite
    # receive outlasts it.
    fresh, _ = stream_pair("tcp4")
    with SocketStreamTransport(fresh, 0.25):
        assert os.get_blocking(fresh.fileno())
        assert call_timeouts(fresh) == (0.0, 0.0)
    ours, peer = stream_pair("unix")
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval(ours, 0.05))
    with SocketStreamTransport(ours, 5.0) as transport:
        assert os.get_blocking(ours.fileno())
        sender = spawn(send_later, peer, b"late", 0.4)
        assert transport.recv(10, math.inf) == b"late"
        sender.result(PROMPT)


def test_other_stream_families_keep_their_waits_bounded(cleanup: Callable[[Any], Any]) -> None:
    # Their shutdown is not known to wake a blocked call. AF_VSOCK options
    # read as integers only in CPython, so no timeval can be set: the
    # descriptor is made non-blocking, and every wait is a bounded poll.
    try:
        sock = cleanup(socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM))
    except (AttributeError, OSError):
        pytest.skip("no AF_VSOCK sockets here")
    with SocketStreamTransport(sock, 0.25) as transport:
        assert not os.get_blocking(sock.fileno())
        with pytest.raises(OSError):  # not connected: at once, whatever the timeout
            transport.recv(10, math.inf)


def test_infinite_retry_interval_leaves_calls_unbounded(datagram_pair: PairFactory) -> None:
    ours, _peer = datagram_pair("udp4")
    with SocketDatagramTransport(ours, math.inf):
        assert os.get_blocking(ours.fileno())
        assert call_timeouts(ours) == (0.0, 0.0)


def test_tiny_retry_interval_is_not_read_as_no_timeout(datagram_pair: PairFactory) -> None:
    ours, _peer = datagram_pair("unix")
    with SocketDatagramTransport(ours, 1e-9):
        rcv, snd = call_timeouts(ours)
        assert 0 < rcv < 0.1  # the kernel rounds up to a clock tick
        assert 0 < snd < 0.1


@pytest.mark.parametrize("retry_interval", [0.05, math.inf])
def test_non_blocking_stream_calls_never_block(spawn: Spawn, stream_pair: PairFactory, retry_interval: float) -> None:
    ours, _peer = stream_pair("unix")
    with SocketStreamTransport(ours, retry_interval) as transport:

        def reads() -> list[type[BaseException]]:
            raised: list[type[BaseException]] = []
            for call in (
                lambda: transport.recv_noblock(10),
                lambda: transport.recv_noblock_into(bytearray(10)),
                lambda: transport.recv_noblock_with_ancillary(10, ancillary_space_for_fds(1)),
                lambda: transport.recv_noblock_with_ancillary_into(bytearray(10), ancillary_space_for_fds(1)),
                lambda: transport.recv(10, 0),
                lambda: transport.recv_into(bytearray(10), 0),
            ):
                with pytest.raises((WouldBlockOnRead, TimeoutError)) as caught:
                    call()
                raised.append(caught.type)
            return raised

        assert spawn(reads).result(PROMPT) == [WouldBlockOnRead] * 4 + [TimeoutError] * 2

        def writes() -> None:
            fill_send_buffer(transport)
            with pytest.raises(WouldBlockOnWrite):
                transport.send_noblock(b"y")
            with pytest.raises(TimeoutError):
                transport.send_all(b"y" * 65536, 0)
            with pytest.raises(TimeoutError):
                transport.send_all_from_iterable([b"y" * 65536] * 4, 0)

        spawn(writes).result(PROMPT)


def test_non_blocking_datagram_calls_never_block(spawn: Spawn, datagram_pair: PairFactory) -> None:
    ours, _peer = datagram_pair("udp4")
    with SocketDatagramTransport(ours, math.inf) as transport:

        def reads() -> None:
            with pytest.raises(WouldBlockOnRead):
                transport.recv_noblock()
            with pytest.raises(WouldBlockOnRead):
                transport.recv_noblock_with_ancillary(64)
            with pytest.raises(TimeoutError):
                transport.recv(0)

        spawn(reads).result(PROMPT)


def test_non_blocking_datagram_sends_never_block(spawn: Spawn, datagram_pair: PairFactory) -> None:
    ours, _peer = datagram_pair("unix")  # an AF_UNIX datagram send waits while the peer's queue is full
    with SocketDatagramTransport(ours, math.inf) as transport:

        def writes() -> None:
            for _ in range(10_000):  # bounded
                try:
                    transport.send(b"x" * 1000, 0)
                except TimeoutError:
                    break
            else:
                raise AssertionError("the peer's queue never filled up")
            with pytest.raises(WouldBlockOnWrite):
                transport.send_noblock(b"y")
            with pytest.raises(WouldBlockOnWrite):
                transport.send_noblock_with_ancillary(b"y", [])
            with pytest.raises(TimeoutError):
                transport.send_with_ancillary(b"y", [], 0.1)

        spawn(writes).result(PROMPT)


def test_ancillary_stream_sends_never_block(spawn: Spawn, stream_pair: PairFactory) -> None:
    ours, _peer = stream_pair("unix")
    with SocketStreamTransport(ours, math.inf) as transport:

        def writes() -> None:
            fill_send_buffer(transport)
            with pytest.raises(WouldBlockOnWrite):
                transport.send_all_noblock_with_ancillary([b"y"], [])
            with pytest.raises(TimeoutError):
                transport.send_all_with_ancillary([b"y"], [], 0.1)

        spawn(writes).result(PROMPT)


def test_send_file_keeps_its_budget(spawn: Spawn, stream_pair: PairFactory, tmp_path: Path) -> None:
    # os.sendfile() takes no flags: on the blocking descriptor, with no
    # SO_SNDTIMEO (retry_interval=inf), it would wait for the peer forever.
    ours, _peer = stream_pair("tcp4")
    path = tmp_path / "file.bin"
    path.write_bytes(b"z" * (64 << 20))
    with SocketStreamTransport(ours, math.inf) as transport:

        def send() -> float:
            start = time.monotonic()
            with path.open("rb") as file, pytest.raises(TimeoutError):
                transport.send_file(file, 0.3)  # the peer never reads
            return time.monotonic() - start

        assert 0.29 <= spawn(send).result(PROMPT) < PROMPT
        assert os.get_blocking(ours.fileno())


def test_infinite_stream_recv_outlasts_a_call_timeout_set_through_the_proxy(
    spawn: Spawn, stream_pair: PairFactory
) -> None:
    ours, peer = stream_pair("tcp4")
    with SocketStreamTransport(ours, 0.05) as transport:
        set_call_timeouts(transport, 0.05)
        # SO_RCVTIMEO expires several times before the data comes.
        sender = spawn(send_later, peer, b"late", 0.4)
        assert transport.recv(10, math.inf) == b"late"
        sender = spawn(send_later, peer, b"later", 0.4)
        buffer = bytearray(10)
        assert transport.recv_into(buffer, math.inf) == 5
        assert buffer[:5] == b"later"
        sender.result(PROMPT)


def test_infinite_datagram_recv_outlasts_the_call_timeout(spawn: Spawn, datagram_pair: PairFactory) -> None:
    ours, peer = datagram_pair("udp4")
    with SocketDatagramTransport(ours, 0.05) as transport:
        sender = spawn(send_later, peer, b"late", 0.4)
        assert transport.recv(math.inf) == b"late"
        sender.result(PROMPT)


def test_infinite_send_all_to_a_slow_reader_sends_everything(spawn: Spawn, stream_pair: PairFactory) -> None:
    ours, peer = stream_pair("unix")
    payload = os.urandom(8 << 20)

    def read_slowly() -> tuple[int, int]:
        received = crc = 0
        while received < 2 * len(payload):
            time.sleep(0.002)  # stalls longer than SO_SNDTIMEO now and then
            chunk = peer.recv(256 * 1024)
            if not chunk:
                break
            received += len(chunk)
            crc = zlib.crc32(chunk, crc)
        return received, crc

    with SocketStreamTransport(ours, 0.01) as transport:
        set_call_timeouts(transport, 0.001)  # a blocking send then stops part-way now and then
        reader = spawn(read_slowly)
        transport.send_all(payload, math.inf)
        transport.send_all_from_iterable([payload[: 1 << 20], payload[1 << 20 :]], math.inf)
        assert reader.result(30.0) == (2 * len(payload), zlib.crc32(payload, zlib.crc32(payload)))


@pytest.mark.parametrize("gather", [False, True])
def test_closing_from_another_thread_ends_a_blocked_send_all(
    spawn: Spawn, stream_pair: PairFactory, gather: bool
) -> None:
    ours, _peer = stream_pair("tcp4")
    transport = SocketStreamTransport(ours, 5.0)  # longer than the test: the shutdown must wake the call
    payload = b"x" * (64 << 20)
    if gather:
        blocked = spawn(transport.send_all_from_iterable, [payload[: 32 << 20], payload[32 << 20 :]], math.inf)
    else:
        blocked = spawn(transport.send_all, payload, math.inf)
    time.sleep(0.2)
    assert not blocked.done()
    start = time.monotonic()
    transport.close()
    with pytest.raises(OSError) as caught:
        blocked.result(PROMPT)
    assert caught.value.errno == errno.EBADF
    assert time.monotonic() - start < 1.0


def test_send_file_meanwhile_an_infinite_recv(spawn: Spawn, stream_pair: PairFactory, tmp_path: Path) -> None:
    ours, peer = stream_pair("tcp4")
    content = os.urandom(4 << 20)
    path = tmp_path / "file.bin"
    path.write_bytes(content)

    def peer_reads_then_answers() -> int:
        received = crc = 0
        while received < len(content):
            chunk = peer.recv(1 << 20)
            assert chunk
            received += len(chunk)
            crc = zlib.crc32(chunk, crc)
        peer.sendall(b"got it")
        return crc

    with SocketStreamTransport(ours, 0.05) as transport:
        receiver = spawn(transport.recv, 100, math.inf)  # blocked in its system call meanwhile
        time.sleep(0.1)
        answer = spawn(peer_reads_then_answers)
        with path.open("rb") as file:
            assert transport.send_file(file, 10.0) == len(content)
        assert answer.result(10.0) == zlib.crc32(content)
        assert receiver.result(PROMPT) == b"got it"
        # The transfer made the descriptor non-blocking for a while only.
        assert os.get_blocking(ours.fileno())
        assert ours.gettimeout() is None


def test_selector_factory_makes_infinite_waits_too(spawn: Spawn, stream_pair: PairFactory) -> None:
    ours, peer = stream_pair("unix")
    made: list[int] = []

    def factory() -> selectors.BaseSelector:
        made.append(1)
        return selectors.DefaultSelector()

    with SocketStreamTransport(ours, 0.05, selector_factory=factory) as transport:
        sender = spawn(send_later, peer, b"data", 0.2)
        assert transport.recv(10, math.inf) == b"data"
        assert len(made) >= 2  # polled every retry_interval, never blocked in recv()
        sender.result(PROMPT)
