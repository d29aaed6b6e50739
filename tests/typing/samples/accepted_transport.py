"""A third-party transport written against transports.abc alone.

mypy --strict must accept this file with only transports-abc installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, assert_type

from typing_extensions import Buffer

from transports.abc import (
    DatagramTransport,
    StreamTransport,
    TypedAttributeSet,
    UnsupportedOperation,
    deadline_after,
    time_left,
    typed_attribute,
)


class QueueAttribute(TypedAttributeSet):
    depth: int = typed_attribute()
    label: str = typed_attribute()


class InMemoryStream(StreamTransport):
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._closed = False
        self._eof = False

    def send(self, data: Buffer, timeout: float) -> int:
        with memoryview(data) as view:
            self._buffer += view
            return len(view)

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        deadline = deadline_after(timeout)
        assert time_left(deadline) >= 0
        with memoryview(buffer) as view:
            n = min(len(view), len(self._buffer))
            view[:n] = self._buffer[:n]
        del self._buffer[:n]
        return n

    def send_eof(self) -> None:
        self._eof = True

    def close(self) -> None:
        self._closed = True

    def is_closed(self) -> bool:
        return self._closed

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {QueueAttribute.depth: lambda: len(self._buffer), QueueAttribute.label: lambda: "memory"}


class InMemoryDatagrams(DatagramTransport):
    def __init__(self) -> None:
        self._packets: list[bytes] = []
        self._closed = False

    def send(self, data: Buffer, timeout: float) -> None:
        self._packets.append(bytes(data))

    def recv(self, timeout: float) -> bytes:
        return self._packets.pop(0)

    def close(self) -> None:
        self._closed = True

    def is_closed(self) -> bool:
        return self._closed


def use() -> None:
    with InMemoryStream() as stream:
        stream.send_all(b"abc", math.inf)
        assert_type(stream.recv(3, 1.0), bytes)
        assert_type(stream.extra(QueueAttribute.depth), int)
        assert_type(stream.extra(QueueAttribute.label, None), str | None)
        try:
            stream.recv_with_ancillary(1, 1, 1.0)
        except UnsupportedOperation:
            pass
    with InMemoryDatagrams() as datagrams:
        datagrams.send(bytearray(b"x"), 0)
        assert_type(datagrams.recv(0), bytes)
