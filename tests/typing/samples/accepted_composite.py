"""Stapled transports keep the exact types of their parts.

mypy --strict must accept this file with transports-abc and
transports-composite installed; every assert_type is a claim about what a
type checker infers.
"""

from __future__ import annotations

import math
from typing import Any, assert_type

from typing_extensions import Buffer

from transports.abc import (
    DatagramReadTransport,
    DatagramTransport,
    DatagramWriteTransport,
    StreamReadTransport,
    StreamTransport,
    StreamWriteTransport,
    TypedAttributeSet,
    typed_attribute,
)
from transports.composite import StapledDatagramTransport, StapledStreamTransport


class PipeAttribute(TypedAttributeSet):
    fileno: int = typed_attribute()


class MyWriter(StreamWriteTransport):
    def send(self, data: Buffer, timeout: float) -> int:
        return len(memoryview(data))

    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False

    def flush_now(self) -> None:
        pass


class MyReader(StreamReadTransport):
    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        return 0

    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False


class MyDatagramWriter(DatagramWriteTransport):
    def send(self, data: Buffer, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False


class MyDatagramReader(DatagramReadTransport):
    def recv(self, timeout: float) -> bytes:
        return b""

    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False


def takes_stream(transport: StreamTransport) -> None:
    transport.send_all(b"x", math.inf)
    transport.send_eof()


def takes_datagrams(transport: DatagramTransport) -> None:
    transport.send(b"x", 0)


def stream(writer: MyWriter, reader: MyReader) -> None:
    stapled = StapledStreamTransport(writer, reader)
    assert_type(stapled, StapledStreamTransport[MyWriter, MyReader])
    assert_type(stapled.send_transport, MyWriter)
    assert_type(stapled.receive_transport, MyReader)
    stapled.send_transport.flush_now()  # a method only MyWriter has
    assert_type(stapled.send(b"x", 1.0), int)
    assert_type(stapled.recv(10, 1.0), bytes)
    assert_type(stapled.recv_into(bytearray(10), 1.0), int)
    assert_type(stapled.recv_with_ancillary(10, 64, 1.0), tuple[bytes, Any])
    assert_type(stapled.recv_with_ancillary_into(bytearray(10), 64, 1.0), tuple[int, Any])
    assert_type(stapled.extra(PipeAttribute.fileno), int)
    assert_type(stapled.extra(PipeAttribute.fileno, None), int | None)
    takes_stream(stapled)
    with stapled as entered:
        assert_type(entered, StapledStreamTransport[MyWriter, MyReader])

    # A full stream transport fits either slot.
    both: StreamTransport = stapled
    nested = StapledStreamTransport(both, reader)
    assert_type(nested.send_transport, StreamTransport)

    # Explicit parametrisation with the abstract part types.
    widened: StapledStreamTransport[StreamWriteTransport, StreamReadTransport] = StapledStreamTransport(writer, reader)
    assert_type(widened.receive_transport, StreamReadTransport)


def datagram(writer: MyDatagramWriter, reader: MyDatagramReader) -> None:
    stapled = StapledDatagramTransport(writer, reader)
    assert_type(stapled, StapledDatagramTransport[MyDatagramWriter, MyDatagramReader])
    assert_type(stapled.send_transport, MyDatagramWriter)
    assert_type(stapled.receive_transport, MyDatagramReader)
    assert_type(stapled.send(b"x", 1.0), None)
    assert_type(stapled.recv(1.0), bytes)
    assert_type(stapled.recv_with_ancillary(64, 1.0), tuple[bytes, Any])
    takes_datagrams(stapled)
