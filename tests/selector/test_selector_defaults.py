"""The default blocking methods of the Selector* ABCs, over real sockets."""

from __future__ import annotations

import hashlib
import math
import socket
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typing_extensions import Buffer

from transports.abc import UnsupportedOperation
from transports.selector import (
    SelectorDatagramTransport,
    SelectorStreamTransport,
    WouldBlockOnWrite,
)


def test_stream_round_trip(stream_pair: tuple[SelectorStreamTransport, socket.socket]) -> None:
    transport, peer = stream_pair
    transport.send_all(b"hello", 1.0)
    assert peer.recv(10) == b"hello"
    peer.sendall(b"world")
    assert transport.recv(3, 1.0) == b"wor"
    buffer = bytearray(10)
    assert transport.recv_into(buffer, 1.0) == 2
    assert buffer[:2] == b"ld"


def test_recv_noblock_default_is_built_on_recv_noblock_into(
    stream_pair: tuple[SelectorStreamTransport, socket.socket],
) -> None:
    transport, peer = stream_pair
    peer.sendall(b"abcdef")
    time.sleep(0.05)
    assert transport.recv_noblock(4) == b"abcd"
    assert transport.recv_noblock(0) == b""
    with pytest.raises(ValueError, match="bufsize"):
        transport.recv_noblock(-1)
    assert transport.recv_noblock(100) == b"ef"


def test_recv_times_out_then_eof(stream_pair: tuple[SelectorStreamTransport, socket.socket]) -> None:
    transport, peer = stream_pair
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        transport.recv(10, 0.1)
    assert time.monotonic() - start >= 0.1
    with pytest.raises(TimeoutError):
        transport.recv(10, 0)
    peer.shutdown(socket.SHUT_WR)
    assert transport.recv(10, 1.0) == b""


def test_send_all_partial_sends_under_one_budget(stream_pair: tuple[SelectorStreamTransport, socket.socket]) -> None:
    transport, peer = stream_pair
    payload = bytes(range(256)) * 40_000  # 10 MB: far beyond the socket buffers
    received = bytearray()

    def slow_reader() -> None:
        while len(received) < len(payload):
            chunk = peer.recv(65536)
            if not chunk:
                break
            received.extend(chunk)

    reader = threading.Thread(target=slow_reader)
    reader.start()
    try:
        transport.send_all(payload, 30.0)
    finally:
        reader.join(30)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_send_all_times_out_when_nobody_reads(stream_pair: tuple[SelectorStreamTransport, socket.socket]) -> None:
    transport, _ = stream_pair
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        transport.send_all(b"x" * 50_000_000, 0.2)
    assert 0.2 <= time.monotonic() - start < 1.0


def test_stream_ancillary_defaults(stream_pair: tuple[SelectorStreamTransport, socket.socket]) -> None:
    transport, _ = stream_pair
    with pytest.raises(UnsupportedOperation):
        transport.recv_noblock_with_ancillary(10, 10)
    with pytest.raises(UnsupportedOperation):
        transport.recv_noblock_with_ancillary_into(bytearray(10), 10)
    with pytest.raises(UnsupportedOperation):
        transport.send_all_noblock_with_ancillary([b"x"], [])
    with pytest.raises(UnsupportedOperation):
        transport.recv_with_ancillary(10, 10, 1.0)
    with pytest.raises(UnsupportedOperation):
        transport.recv_with_ancillary_into(bytearray(10), 10, 1.0)
    with pytest.raises(UnsupportedOperation):
        transport.send_all_with_ancillary([b"x"], [], 1.0)
    with pytest.raises(ValueError, match="bufsize"):
        transport.recv_noblock_with_ancillary(-1, 10)
    with pytest.raises(ValueError, match="ancillary_bufsize"):
        transport.recv_with_ancillary_into(bytearray(1), -1, 1.0)


def test_send_all_with_ancillary_retries_with_the_same_data(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    seen: list[tuple[list[bytes], Any]] = []

    class Flaky(SelectorStreamTransport):
        def __init__(self, sock: socket.socket) -> None:
            super().__init__(1.0)
            self.sock = sock

        def send_all_noblock_with_ancillary(self, iterable_of_data: Any, ancillary_data: Any) -> None:
            seen.append(([bytes(c) for c in iterable_of_data], list(ancillary_data)))
            if len(seen) == 1:
                # Ready for writing at once: the retry comes straight away.
                raise WouldBlockOnWrite(self.sock.fileno())

        def send_noblock(self, data: Buffer) -> int:
            raise AssertionError

        def recv_noblock_into(self, buffer: Buffer) -> int:
            raise AssertionError

        def send_eof(self) -> None:
            pass

        def close(self) -> None:
            pass

        def is_closed(self) -> bool:
            return False

    def chunks() -> Iterator[bytes]:
        yield b"one"
        yield b"two"

    ancillary = iter([(1, 2, b"three")])
    Flaky(socket_pair[0]).send_all_with_ancillary(chunks(), ancillary, 1.0)
    assert seen == [([b"one", b"two"], [(1, 2, b"three")])] * 2


def test_selector_factory_drives_stream_waits(
    socket_pair: tuple[socket.socket, socket.socket],
    make_stream: Callable[..., SelectorStreamTransport],
    counting_factory: Callable[[], Any],
) -> None:
    left, right = socket_pair
    transport = make_stream(left, 1.0, counting_factory)
    timer = threading.Timer(0.05, right.send, args=(b"x",))
    timer.start()
    assert transport.recv(1, 2.0) == b"x"
    timer.join()
    assert len(counting_factory.made) >= 1  # type: ignore[attr-defined]


def test_full_duplex_from_two_threads(
    socket_pair: tuple[socket.socket, socket.socket], make_stream: Callable[..., SelectorStreamTransport]
) -> None:
    """One thread reads while another writes: separate waits, no interference."""
    left, right = socket_pair
    a = make_stream(left)
    b = make_stream(right)
    payload = b"z" * 5_000_000
    got = bytearray()

    def read_all() -> None:
        while len(got) < len(payload):
            got.extend(b.recv(65536, 10.0))

    reader = threading.Thread(target=read_all)
    reader.start()
    # Meanwhile, data flows the other way through the same transports.
    b.send_all(b"reverse", 5.0)
    a.send_all(payload, 10.0)
    reader.join(20)
    assert got == payload
    assert a.recv(100, 5.0) == b"reverse"


def test_datagram_round_trip_and_defaults(datagram_pair: tuple[SelectorDatagramTransport, socket.socket]) -> None:
    transport, peer = datagram_pair
    transport.send(b"packet", 1.0)
    assert peer.recv(100) == b"packet"
    peer.send(b"reply")
    assert transport.recv(1.0) == b"reply"
    with pytest.raises(TimeoutError):
        transport.recv(0.05)
    with pytest.raises(UnsupportedOperation):
        transport.recv_noblock_with_ancillary(10)
    with pytest.raises(UnsupportedOperation):
        transport.recv_with_ancillary(10, 1.0)
    with pytest.raises(UnsupportedOperation):
        transport.send_noblock_with_ancillary(b"x", [])
    with pytest.raises(UnsupportedOperation):
        transport.send_with_ancillary(b"x", iter([]), 1.0)
    with pytest.raises(ValueError, match="ancillary_bufsize"):
        transport.recv_with_ancillary(-1, 1.0)
    with pytest.raises(ValueError, match="timeout"):
        transport.send(b"x", math.nan)


def test_multibyte_buffers_through_send_all(stream_pair: tuple[SelectorStreamTransport, socket.socket]) -> None:
    transport, peer = stream_pair
    values = array("d", [1.5, -2.25, 1e300])
    transport.send_all(values, 1.0)
    received = b""
    while len(received) < values.itemsize * len(values):
        received += peer.recv(100)
    assert received == values.tobytes()
