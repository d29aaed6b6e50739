"""Large transfers through SocketStreamTransport, checked end to end.

The reader is a plain blocking socket in a thread that starts late and
then reads while checksumming, so the transport meets full send buffers,
partial sends and waits many times over.
"""

from __future__ import annotations

import array
import itertools
import math
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports.socket import SocketStreamTransport
from transports.socket import _stream as stream_module

SocketPair = tuple[socket.socket, socket.socket]
PairFactory = Callable[[str], SocketPair]
Spawn = Callable[..., Future[Any]]

BIG = 256 << 20
RETRY_INTERVAL = 0.5


@pytest.fixture(scope="module")
def big_payload() -> tuple[bytes, int]:
    """256 MiB that do not repeat on any power-of-two boundary, and their CRC-32."""
    pattern = random.Random(20240611).randbytes((1 << 20) + 7)
    payload = (pattern * (BIG // len(pattern) + 1))[:BIG]
    return payload, zlib.crc32(payload)


def read_and_checksum(peer: socket.socket, total: int, start_after: float) -> tuple[int, int]:
    time.sleep(start_after)  # let the sender run into a full buffer first
    buffer = memoryview(bytearray(1 << 20))
    received = crc = 0
    while received < total:
        nbytes = peer.recv_into(buffer)
        if not nbytes:
            break
        crc = zlib.crc32(buffer[:nbytes], crc)
        received += nbytes
    return received, crc


def test_send_all_256_mib(stream_pair: PairFactory, spawn: Spawn, big_payload: tuple[bytes, int]) -> None:
    payload, crc = big_payload
    ours, peer = stream_pair("tcp4")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        reader = spawn(read_and_checksum, peer, BIG, 0.2)
        transport.send_all(payload, 30.0)
        assert reader.result(30.0) == (BIG, crc)


def test_send_all_from_iterable_256_mib_in_5000_chunks(
    stream_pair: PairFactory, spawn: Spawn, big_payload: tuple[bytes, int]
) -> None:
    payload, crc = big_payload
    view = memoryview(payload)
    bounds = [BIG * i // 5000 for i in range(5001)]
    chunks = [view[start:end] for start, end in itertools.pairwise(bounds)]
    ours, peer = stream_pair("unix")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        reader = spawn(read_and_checksum, peer, BIG, 0.2)
        transport.send_all_from_iterable(chunks, 30.0)
        assert reader.result(30.0) == (BIG, crc)


@pytest.mark.parametrize("kind", ["tcp4", "unix"])
def test_send_all_from_iterable_5000_small_chunks(stream_pair: PairFactory, spawn: Spawn, kind: str) -> None:
    rng = random.Random(5000)
    chunks: list[Any] = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(5000)]
    chunks[::7] = [bytearray(chunk) for chunk in chunks[::7]]
    chunks[::11] = [memoryview(chunk) for chunk in chunks[::11]]
    expected = b"".join(chunks)
    ours, peer = stream_pair(kind)
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        reader = spawn(read_and_checksum, peer, len(expected), 0.1)
        transport.send_all_from_iterable(chunks, 30.0)
        assert reader.result(30.0) == (len(expected), zlib.crc32(expected))


def _view(data: bytes) -> memoryview:
    return memoryview(data)


class _ShortLenBytes(bytes):
    """A bytes subclass whose len() lies: the bytes must still all go."""

    def __len__(self) -> int:
        return 1


def _buffers() -> st.SearchStrategy[Any]:
    data = st.binary(max_size=4000)
    return st.one_of(
        data,
        data.map(bytearray),
        data.map(_view),
        data.map(_ShortLenBytes),
        st.lists(st.integers(-(2**31), 2**31 - 1), max_size=300).map(lambda items: array.array("i", items)),
    )


# Both non-blocking gather writes: pwritev(RWF_NOWAIT), and the
# sendmsg(MSG_DONTWAIT) of kernels whose sockets refuse RWF_NOWAIT (forced
# here by its switch); and the blocking writev of an infinite timeout.
@pytest.mark.parametrize(("pwritev", "timeout"), [(True, 10.0), (False, 10.0), (True, math.inf)])
@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(_buffers(), max_size=2500))
def test_gather_sends_every_byte_in_order(chunks: list[Any], pwritev: bool, timeout: float) -> None:
    saved = stream_module._pwritev_nowait
    stream_module._pwritev_nowait = pwritev and saved
    try:
        _gather_sends_every_byte_in_order(chunks, timeout)
    finally:
        stream_module._pwritev_nowait = saved


def _gather_sends_every_byte_in_order(chunks: list[Any], timeout: float) -> None:
    expected = b"".join(bytes(chunk) for chunk in chunks)
    ours, peer = socket.socketpair()
    # A small send buffer: partial sendmsg calls stop inside chunks.
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.settimeout(10.0)
    received = bytearray()

    def read() -> None:
        while len(received) < len(expected):
            data = peer.recv(65536)
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
            transport.send_all_from_iterable(chunks, timeout)
    finally:
        reader.join(10.0)
        peer.close()
    assert bytes(received) == expected
