"""Bytes really flow through StapledStreamTransport: sockets and pipes.

The parts are minimal transports written here over blocking sockets and
pipe file objects (the composite tests must not depend on
transports.socket or transports.selector). Every blocking call is bounded.
"""

from __future__ import annotations

import array
import math
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import pytest
from typing_extensions import Buffer

from transports.abc import (
    BaseTransport,
    StreamReadTransport,
    StreamTransport,
    StreamWriteTransport,
    timeout_error,
)
from transports.composite import StapledStreamTransport

SocketPairFactory = Callable[[int], tuple[socket.socket, socket.socket]]

# Test helpers never wait forever: "infinite" means this long.
LONGEST_WAIT = 10.0


def bounded(timeout: float) -> float:
    return min(timeout, LONGEST_WAIT)


class SocketPart(BaseTransport):
    """Owns a blocking socket; the subclasses pick which directions they offer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def close(self) -> None:
        self.sock.close()

    def is_closed(self) -> bool:
        return self.sock.fileno() == -1


class SocketWriteEnd(SocketPart, StreamWriteTransport):
    def send(self, data: Buffer, timeout: float) -> int:
        self.sock.settimeout(bounded(timeout))
        return self.sock.send(data)

    def send_all_with_ancillary(self, iterable_of_data: Iterable[Buffer], ancillary_data: Any, timeout: float) -> None:
        buffers = [memoryview(chunk) for chunk in iterable_of_data]
        self.sock.settimeout(bounded(timeout))
        sent = self.sock.sendmsg(buffers, ancillary_data)
        if sent != sum(len(b) for b in buffers):
            raise OSError("not everything was sent at once")


class SocketReadEnd(SocketPart, StreamReadTransport):
    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        self.sock.settimeout(bounded(timeout))
        return self.sock.recv_into(buffer)

    def recv_with_ancillary(self, bufsize: int, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        self.sock.settimeout(bounded(timeout))
        data, ancillary, _, _ = self.sock.recvmsg(bufsize, ancillary_bufsize)
        return data, ancillary


class SocketStream(SocketWriteEnd, SocketReadEnd, StreamTransport):
    def send_eof(self) -> None:
        if not self.is_closed():
            self.sock.shutdown(socket.SHUT_WR)


class PipeWriteEnd(StreamWriteTransport):
    """The write end of a pipe (a child's stdin): write-only, no half-close."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file

    def send(self, data: Buffer, timeout: float) -> int:
        _, writable, _ = select.select([], [self.file], [], bounded(timeout))
        if not writable:
            raise timeout_error()
        return os.write(self.file.fileno(), data)

    def close(self) -> None:
        self.file.close()

    def is_closed(self) -> bool:
        return self.file.closed


class PipeReadEnd(StreamReadTransport):
    """The read end of a pipe (a child's stdout)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        readable, _, _ = select.select([self.file], [], [], bounded(timeout))
        if not readable:
            raise timeout_error()
        return os.readv(self.file.fileno(), [buffer])

    def close(self) -> None:
        self.file.close()

    def is_closed(self) -> bool:
        return self.file.closed


def recv_exactly(transport: StreamReadTransport, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = transport.recv(size - len(received), 5.0)
        assert chunk, f"EOF after {len(received)} of {size} bytes"
        received += chunk
    return bytes(received)


def recv_until_eof(transport: StreamReadTransport) -> bytes:
    received = bytearray()
    while chunk := transport.recv(65536, 5.0):
        received += chunk
    return bytes(received)


Stapled = StapledStreamTransport[StreamWriteTransport, StreamReadTransport]


def crossed_pair(make_socketpair: SocketPairFactory, full_duplex: bool) -> tuple[Stapled, Stapled]:
    """Two stapled transports talking to each other over two socket pairs.

    ``left`` sends on pair 1 and receives on pair 2; ``right`` the other way
    round. With ``full_duplex=False`` the parts are one-way ends.
    """
    left_out, right_in = make_socketpair(socket.SOCK_STREAM)
    right_out, left_in = make_socketpair(socket.SOCK_STREAM)
    if full_duplex:
        return (
            StapledStreamTransport(SocketStream(left_out), SocketStream(left_in)),
            StapledStreamTransport(SocketStream(right_out), SocketStream(right_in)),
        )
    return (
        StapledStreamTransport(SocketWriteEnd(left_out), SocketReadEnd(left_in)),
        StapledStreamTransport(SocketWriteEnd(right_out), SocketReadEnd(right_in)),
    )


@pytest.mark.parametrize("full_duplex", [True, False], ids=["stream-parts", "one-way-parts"])
def test_bytes_flow_both_ways(make_socketpair: SocketPairFactory, full_duplex: bool) -> None:
    left, right = crossed_pair(make_socketpair, full_duplex)
    with left, right:
        left.send_all(b"ping", math.inf)
        assert recv_exactly(right, 4) == b"ping"
        right.send_all(b"pong!", 5.0)
        assert recv_exactly(left, 5) == b"pong!"
        assert left.send(b"partial?", 5.0) == 8
        buffer = bytearray(8)
        assert right.recv_into(buffer, 5.0) > 0


def test_large_transfer_with_a_concurrent_reader(make_socketpair: SocketPairFactory) -> None:
    left, right = crossed_pair(make_socketpair, full_duplex=True)
    payload = os.urandom(4 * 1024 * 1024)  # far more than a socket buffer holds
    errors: list[BaseException] = []

    def write() -> None:
        try:
            left.send_all(payload, 20.0)
            left.send_eof()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with left, right:
        writer = threading.Thread(target=write)
        writer.start()
        try:
            received = recv_until_eof(right)
        finally:
            writer.join(20.0)
        assert not writer.is_alive()
        assert errors == []
        assert received == payload


def test_send_all_from_iterable_keeps_order_and_empty_chunks(make_socketpair: SocketPairFactory) -> None:
    left, right = crossed_pair(make_socketpair, full_duplex=False)
    with left, right:
        chunks: list[Buffer] = [b"", b"ab", b"", memoryview(b"cd"), bytearray(b"e"), b""]
        left.send_all_from_iterable(iter(chunks), 5.0)
        assert recv_exactly(right, 5) == b"abcde"


def test_send_eof_half_closes_and_the_other_direction_keeps_working(make_socketpair: SocketPairFactory) -> None:
    left, right = crossed_pair(make_socketpair, full_duplex=True)
    with left, right:
        left.send_all(b"last words", 5.0)
        left.send_eof()
        assert not left.send_transport.is_closed()  # half-closed, not closed
        assert recv_until_eof(right) == b"last words"
        right.send_all(b"reply after EOF", 5.0)
        assert recv_exactly(left, 15) == b"reply after EOF"


def test_send_eof_closes_a_write_only_part_so_the_peer_sees_eof(make_socketpair: SocketPairFactory) -> None:
    left, right = crossed_pair(make_socketpair, full_duplex=False)
    with left, right:
        left.send_all(b"bye", 5.0)
        left.send_eof()
        assert left.send_transport.is_closed()
        assert not left.is_closed()
        assert recv_until_eof(right) == b"bye"
        right.send_all(b"still here", 5.0)
        assert recv_exactly(left, 10) == b"still here"


def test_close_closes_both_sockets_and_peers_see_eof(make_socketpair: SocketPairFactory) -> None:
    left, right = crossed_pair(make_socketpair, full_duplex=True)
    with right:
        left.close()
        assert left.is_closed()
        assert isinstance(left.send_transport, SocketPart)
        assert isinstance(left.receive_transport, SocketPart)
        assert left.send_transport.sock.fileno() == -1
        assert left.receive_transport.sock.fileno() == -1
        assert right.recv(10, 5.0) == b""


def test_timeout_of_the_receive_part_propagates(make_socketpair: SocketPairFactory) -> None:
    left, right = crossed_pair(make_socketpair, full_duplex=True)
    with left, right, pytest.raises(TimeoutError):
        left.recv(10, 0.05)


@pytest.mark.skipif(not hasattr(socket, "SCM_RIGHTS"), reason="needs SCM_RIGHTS")
def test_ancillary_data_passes_through(make_socketpair: SocketPairFactory, tmp_path: Path) -> None:
    left, right = crossed_pair(make_socketpair, full_duplex=False)
    shared_file = tmp_path / "shared"
    shared_file.write_bytes(b"")
    fd = os.open(shared_file, os.O_RDONLY)
    try:
        with left, right:
            fds = array.array("i", [fd])
            left.send_all_with_ancillary([b"he", b"re"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)], 5.0)
            data, ancillary = right.recv_with_ancillary(16, socket.CMSG_SPACE(fds.itemsize), 5.0)
    finally:
        os.close(fd)
    assert data == b"here"
    ((level, kind, raw),) = ancillary
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    (received_fd,) = array.array("i", raw)
    try:
        assert os.fstat(received_fd).st_ino == shared_file.stat().st_ino
    finally:
        os.close(received_fd)


ECHO_CHILD = "import shutil, sys; shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)"


def test_child_process_stdin_and_stdout_as_one_stream() -> None:
    # The motivating case: a write-only pipe and a read-only pipe stapled
    # together; send_eof closes the child's stdin, so it finishes its echo.
    process = subprocess.Popen([sys.executable, "-c", ECHO_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None
    assert process.stdout is not None
    stapled = StapledStreamTransport(PipeWriteEnd(process.stdin), PipeReadEnd(process.stdout))
    payload = os.urandom(1024 * 1024)  # larger than a pipe buffer: needs the concurrent reader
    errors: list[BaseException] = []

    def write() -> None:
        try:
            stapled.send_all(payload, 20.0)
            stapled.send_eof()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    writer = threading.Thread(target=write)
    try:
        with stapled:
            writer.start()
            received = recv_until_eof(stapled)
            writer.join(20.0)
            assert not writer.is_alive()
            assert errors == []
            assert stapled.send_transport.is_closed()
            assert received == payload
    finally:
        if writer.is_alive():
            writer.join(20.0)
        try:
            process.wait(10.0)
        finally:
            if process.returncode is None:
                process.kill()
                process.wait(10.0)
    assert process.returncode == 0
    assert stapled.is_closed()
