"""SocketStreamTransport.send_file: os.sendfile, its fallback, offsets and budgets."""

from __future__ import annotations

import errno
import io
import os
import random
import socket
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from transports.socket import SocketStreamTransport

SocketPair = tuple[socket.socket, socket.socket]
PairFactory = Callable[[str], SocketPair]
Spawn = Callable[..., Future[Any]]

FILE_SIZE = 64 << 20
RETRY_INTERVAL = 0.5


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A 64 MiB file of random-looking bytes, and its content."""
    pattern = random.Random(64).randbytes((1 << 20) + 3)
    content = (pattern * 65)[:FILE_SIZE]
    path = tmp_path_factory.mktemp("send_file") / "big.bin"
    path.write_bytes(content)
    return path, content


def read_and_checksum(peer: socket.socket, total: int) -> tuple[int, int]:
    time.sleep(0.1)
    buffer = memoryview(bytearray(1 << 20))
    received = crc = 0
    while received < total:
        nbytes = peer.recv_into(buffer)
        if not nbytes:
            break
        crc = zlib.crc32(buffer[:nbytes], crc)
        received += nbytes
    return received, crc


def write_and_close(fd: int, data: bytes) -> None:
    with open(fd, "wb") as file:
        file.write(data)


@pytest.mark.parametrize("kind", ["tcp4", "unix"])
def test_whole_file(stream_pair: PairFactory, spawn: Spawn, big_file: tuple[Path, bytes], kind: str) -> None:
    path, content = big_file
    ours, peer = stream_pair(kind)
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport, path.open("rb") as file:
        reader = spawn(read_and_checksum, peer, FILE_SIZE)
        assert transport.send_file(file, 30.0) == FILE_SIZE
        assert file.tell() == FILE_SIZE
        assert reader.result(30.0) == (FILE_SIZE, zlib.crc32(content))


def test_offset_and_count(stream_pair: PairFactory, spawn: Spawn, big_file: tuple[Path, bytes]) -> None:
    path, content = big_file
    offset, count = 123_457, 10 << 20
    ours, peer = stream_pair("tcp4")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport, path.open("rb") as file:
        reader = spawn(read_and_checksum, peer, count)
        assert transport.send_file(file, 30.0, offset=offset, count=count) == count
        assert file.tell() == offset + count
        assert reader.result(30.0) == (count, zlib.crc32(content[offset : offset + count]))


def test_count_past_the_end_and_offset_past_the_end(stream_pair: PairFactory, tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(b"0123456789")
    ours, peer = stream_pair("unix")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport, path.open("rb") as file:
        assert transport.send_file(file, 5.0, offset=4, count=100) == 6
        assert peer.recv(100) == b"456789"
        assert transport.send_file(file, 5.0, offset=50) == 0
        assert transport.send_file(file, 5.0) == 10
        assert peer.recv(100) == b"0123456789"


def test_fallback_for_objects_without_a_descriptor(stream_pair: PairFactory) -> None:
    ours, peer = stream_pair("tcp4")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        memory = io.BytesIO(b"in memory, no descriptor")
        assert transport.send_file(memory, 5.0, offset=3, count=6) == 6
        assert memory.tell() == 9
        assert peer.recv(100) == b"memory"


def test_fallback_for_pipes(stream_pair: PairFactory, spawn: Spawn) -> None:
    ours, peer = stream_pair("unix")
    read_end, write_end = os.pipe()
    payload = os.urandom(300_000)  # more than a pipe buffer: the writer needs the reader
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport, open(read_end, "rb") as pipe_file:
        writer = spawn(write_and_close, write_end, payload)
        with pytest.raises(ValueError, match="seek"):
            transport.send_file(pipe_file, 5.0, offset=1)
        reader = spawn(read_and_checksum, peer, len(payload))
        assert transport.send_file(pipe_file, 10.0) == len(payload)
        writer.result(10.0)
        assert reader.result(10.0) == (len(payload), zlib.crc32(payload))


def test_timeout_covers_the_whole_transfer(stream_pair: PairFactory, big_file: tuple[Path, bytes]) -> None:
    path, _content = big_file
    ours, _peer = stream_pair("unix")  # the peer never reads
    with SocketStreamTransport(ours, 0.05) as transport, path.open("rb") as file:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            transport.send_file(file, 0.3)
        assert 0.29 <= time.monotonic() - start < 2.0
        assert 0 < file.tell() < FILE_SIZE  # how far it went


@pytest.mark.parametrize(
    ("offset", "count", "error"),
    [(-1, None, ValueError), (0, 0, ValueError), (0, -5, ValueError), ("1", None, TypeError), (0, 1.5, TypeError)],
)
def test_bad_offset_or_count(
    stream_pair: PairFactory, tmp_path: Path, offset: Any, count: Any, error: type[Exception]
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"data")
    ours, _peer = stream_pair("unix")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport, path.open("rb") as file, pytest.raises(error):
        transport.send_file(file, 5.0, offset=offset, count=count)


def test_send_file_on_closed_transport(stream_pair: PairFactory, tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"data")
    ours, _peer = stream_pair("unix")
    transport = SocketStreamTransport(ours, RETRY_INTERVAL)
    transport.close()
    with path.open("rb") as file, pytest.raises(OSError) as caught:
        transport.send_file(file, 5.0)
    assert caught.value.errno == errno.EBADF
    with pytest.raises(ValueError, match="timeout"), path.open("rb") as file:
        transport.send_file(file, -1.0)
