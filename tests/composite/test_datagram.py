"""StapledDatagramTransport: routing, typed attributes, structure, real packets."""

from __future__ import annotations

import array
import math
import os
import socket
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from typing_extensions import Buffer

from transports.abc import (
    DatagramReadTransport,
    DatagramTransport,
    DatagramWriteTransport,
    StreamTransport,
    TypedAttributeLookupError,
    TypedAttributeSet,
    UnsupportedOperation,
    typed_attribute,
)
from transports.composite import StapledDatagramTransport

SocketPairFactory = Callable[[int], tuple[socket.socket, socket.socket]]

ANCILLARY = object()  # opaque: the composite must pass it through untouched
LONGEST_WAIT = 10.0


class RecordingDatagram(DatagramTransport):
    """A two-way part that records every call and returns fixed values.

    Used in BOTH slots, so a call routed to the wrong part would show.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.closed = False

    def send(self, data: Buffer, timeout: float) -> None:
        self.calls.append(("send", (data, timeout)))

    def send_with_ancillary(self, data: Buffer, ancillary_data: Any, timeout: float) -> None:
        self.calls.append(("send_with_ancillary", (data, ancillary_data, timeout)))

    def recv(self, timeout: float) -> bytes:
        self.calls.append(("recv", (timeout,)))
        return b"a packet"

    def recv_with_ancillary(self, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        self.calls.append(("recv_with_ancillary", (ancillary_bufsize, timeout)))
        return b"packet with ancillary", ANCILLARY

    def close(self) -> None:
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed


class QueueWriter(DatagramWriteTransport):
    """A write-only part that queues packets; overrides nothing optional."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.closed = False
        self.attributes: dict[Any, Callable[[], Any]] = {}

    def send(self, data: Buffer, timeout: float) -> None:
        self.packets.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.attributes


class QueueReader(DatagramReadTransport):
    """A read-only part serving queued packets; overrides nothing optional."""

    def __init__(self, packets: list[bytes] | None = None) -> None:
        self.packets = list(packets or [])
        self.closed = False
        self.attributes: dict[Any, Callable[[], Any]] = {}

    def recv(self, timeout: float) -> bytes:
        return self.packets.pop(0)

    def close(self) -> None:
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.attributes


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("method", "args", "expected", "side"),
    [
        ("send", (bytearray(b"pkt"), 1.5), None, "send"),
        ("send_with_ancillary", (b"pkt", ANCILLARY, math.inf), None, "send"),
        ("recv", (0.0,), b"a packet", "receive"),
        ("recv_with_ancillary", (256, 2.5), (b"packet with ancillary", ANCILLARY), "receive"),
    ],
    ids=["send", "send_with_ancillary", "recv", "recv_with_ancillary"],
)
def test_each_method_calls_the_right_part_only(
    method: str, args: tuple[object, ...], expected: object, side: str
) -> None:
    send_part, receive_part = RecordingDatagram(), RecordingDatagram()
    stapled = StapledDatagramTransport(send_part, receive_part)
    assert getattr(stapled, method)(*args) == expected
    called, idle = (send_part, receive_part) if side == "send" else (receive_part, send_part)
    ((name, received),) = called.calls
    assert name == method
    assert all(got is sent for got, sent in zip(received, args, strict=True))
    assert idle.calls == []


def test_keyword_arguments_reach_the_parts() -> None:
    send_part, receive_part = RecordingDatagram(), RecordingDatagram()
    stapled = StapledDatagramTransport(send_part, receive_part)
    stapled.send(data=b"kw", timeout=0.5)
    assert stapled.recv_with_ancillary(ancillary_bufsize=8, timeout=0.25)[0] == b"packet with ancillary"
    assert send_part.calls == [("send", (b"kw", 0.5))]
    assert receive_part.calls == [("recv_with_ancillary", (8, 0.25))]


def test_ancillary_unsupported_by_the_parts_raises_unsupported_operation() -> None:
    stapled = StapledDatagramTransport(QueueWriter(), QueueReader())
    with pytest.raises(UnsupportedOperation):
        stapled.send_with_ancillary(b"x", ANCILLARY, 1.0)
    with pytest.raises(UnsupportedOperation):
        stapled.recv_with_ancillary(64, 1.0)
    with pytest.raises(ValueError, match="ancillary_bufsize"):
        stapled.recv_with_ancillary(-1, 1.0)


def test_exception_of_a_part_propagates_unchanged() -> None:
    error = OSError(90, "Message too long")

    class TooSmall(QueueWriter):
        def send(self, data: Buffer, timeout: float) -> None:
            raise error

    stapled = StapledDatagramTransport(TooSmall(), QueueReader())
    with pytest.raises(OSError, match="too long") as caught:
        stapled.send(b"x" * 100, 1.0)
    assert caught.value is error


def test_one_two_way_part_may_fill_both_slots() -> None:
    part = RecordingDatagram()
    stapled = StapledDatagramTransport(part, part)
    stapled.send(b"x", 1.0)
    assert stapled.recv(1.0) == b"a packet"
    assert [name for name, _ in part.calls] == ["send", "recv"]
    stapled.close()
    assert stapled.is_closed()


# ------------------------------------------------------- typed attributes


class Attr(TypedAttributeSet):
    shared: str = typed_attribute()
    send_only: int = typed_attribute()
    receive_only: float = typed_attribute()
    absent: bytes = typed_attribute()


def test_extra_attributes_merge_with_the_receive_part_winning() -> None:
    writer, reader = QueueWriter(), QueueReader()
    writer.attributes = {Attr.shared: lambda: "send", Attr.send_only: lambda: 1}
    reader.attributes = {Attr.shared: lambda: "receive", Attr.receive_only: lambda: 2.5}
    stapled = StapledDatagramTransport(writer, reader)
    assert set(stapled.extra_attributes) == {Attr.shared, Attr.send_only, Attr.receive_only}
    assert stapled.extra(Attr.shared) == "receive"
    assert stapled.extra(Attr.send_only) == 1
    assert stapled.extra(Attr.receive_only) == 2.5
    with pytest.raises(TypedAttributeLookupError):
        stapled.extra(Attr.absent)
    assert stapled.extra(Attr.absent, None) is None
    writer.attributes = {Attr.absent: lambda: b"late"}
    assert stapled.extra(Attr.absent) == b"late"


# -------------------------------------------------------------- structure


def test_parts_are_exposed_read_only_and_instances_have_slots() -> None:
    writer, reader = QueueWriter(), QueueReader()
    stapled = StapledDatagramTransport(writer, reader)
    assert stapled.send_transport is writer
    assert stapled.receive_transport is reader
    with pytest.raises(AttributeError):
        setattr(stapled, "receive_transport", QueueReader())  # noqa: B010
    assert not hasattr(stapled, "__dict__")
    assert weakref.ref(stapled)() is stapled
    assert issubclass(StapledDatagramTransport, DatagramTransport)
    assert getattr(StapledDatagramTransport, "__final__", False) is True
    assert type(StapledDatagramTransport[QueueWriter, QueueReader](writer, reader)) is StapledDatagramTransport
    text = repr(stapled)
    assert text.startswith("<StapledDatagramTransport ")
    assert f"send_transport={writer!r}" in text
    assert f"receive_transport={reader!r}" in text


class StreamNotDatagram(StreamTransport):
    def send(self, data: Buffer, timeout: float) -> int:
        raise AssertionError("never called")

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        raise AssertionError("never called")

    def send_eof(self) -> None:
        pass

    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("send_part", "receive_part", "message"),
    [
        (QueueReader(), QueueReader(), "send_transport must be a DatagramWriteTransport, got QueueReader"),
        (QueueWriter(), QueueWriter(), "receive_transport must be a DatagramReadTransport, got QueueWriter"),
        (StreamNotDatagram(), QueueReader(), "send_transport must be a DatagramWriteTransport"),
        (QueueWriter(), StreamNotDatagram(), "receive_transport must be a DatagramReadTransport"),
    ],
)
def test_parts_of_the_wrong_kind_are_refused(send_part: Any, receive_part: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        StapledDatagramTransport(send_part, receive_part)


# -------------------------------------------------------------- real I/O


class SocketDatagram(DatagramTransport):
    """A minimal datagram transport over a blocking AF_UNIX SOCK_DGRAM socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: Buffer, timeout: float) -> None:
        self.sock.settimeout(min(timeout, LONGEST_WAIT))
        self.sock.send(data)

    def send_with_ancillary(self, data: Buffer, ancillary_data: Any, timeout: float) -> None:
        self.sock.settimeout(min(timeout, LONGEST_WAIT))
        self.sock.sendmsg([data], ancillary_data)

    def recv(self, timeout: float) -> bytes:
        self.sock.settimeout(min(timeout, LONGEST_WAIT))
        return self.sock.recv(65536)

    def recv_with_ancillary(self, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        self.sock.settimeout(min(timeout, LONGEST_WAIT))
        data, ancillary, _, _ = self.sock.recvmsg(65536, ancillary_bufsize)
        return data, ancillary

    def close(self) -> None:
        self.sock.close()

    def is_closed(self) -> bool:
        return self.sock.fileno() == -1


Stapled = StapledDatagramTransport[SocketDatagram, SocketDatagram]


def crossed_pair(make_socketpair: SocketPairFactory) -> tuple[Stapled, Stapled]:
    left_out, right_in = make_socketpair(socket.SOCK_DGRAM)
    right_out, left_in = make_socketpair(socket.SOCK_DGRAM)
    return (
        StapledDatagramTransport(SocketDatagram(left_out), SocketDatagram(left_in)),
        StapledDatagramTransport(SocketDatagram(right_out), SocketDatagram(right_in)),
    )


def test_packets_flow_both_ways_with_boundaries_kept(make_socketpair: SocketPairFactory) -> None:
    left, right = crossed_pair(make_socketpair)
    with left, right:
        for packet in (b"first", b"", b"third" * 1000):
            left.send(packet, 5.0)
        assert [right.recv(5.0) for _ in range(3)] == [b"first", b"", b"third" * 1000]
        right.send(memoryview(b"answer"), math.inf)
        assert left.recv(5.0) == b"answer"
    assert left.is_closed()
    assert right.is_closed()
    assert left.send_transport.sock.fileno() == -1
    assert left.receive_transport.sock.fileno() == -1


def test_timeout_of_the_receive_part_propagates(make_socketpair: SocketPairFactory) -> None:
    left, right = crossed_pair(make_socketpair)
    with left, right, pytest.raises(TimeoutError):
        right.recv(0.05)


@pytest.mark.skipif(not hasattr(socket, "SCM_RIGHTS"), reason="needs SCM_RIGHTS")
def test_ancillary_data_passes_through(make_socketpair: SocketPairFactory, tmp_path: Path) -> None:
    left, right = crossed_pair(make_socketpair)
    shared_file = tmp_path / "shared"
    shared_file.write_bytes(b"")
    fd = os.open(shared_file, os.O_RDONLY)
    try:
        with left, right:
            fds = array.array("i", [fd])
            left.send_with_ancillary(b"fd inside", [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)], 5.0)
            data, ancillary = right.recv_with_ancillary(socket.CMSG_SPACE(fds.itemsize), 5.0)
    finally:
        os.close(fd)
    assert data == b"fd inside"
    ((level, kind, raw),) = ancillary
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    (received_fd,) = array.array("i", raw)
    try:
        assert os.fstat(received_fd).st_ino == shared_file.stat().st_ino
    finally:
        os.close(received_fd)
