"""Misuses of the stapled transports that mypy --strict must reject.

Each line that must be reported ends with a comment ``# error: [code]``
naming mypy's error code; the test checks that mypy reports exactly those
lines with those codes, and nothing else.
"""

from __future__ import annotations

from typing import assert_type

from typing_extensions import Buffer

from transports.abc import DatagramWriteTransport, StreamReadTransport, StreamWriteTransport
from transports.composite import StapledDatagramTransport, StapledStreamTransport


class MyWriter(StreamWriteTransport):
    def send(self, data: Buffer, timeout: float) -> int:
        return 0

    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False


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


def misuse(writer: MyWriter, reader: MyReader, datagram_writer: MyDatagramWriter) -> None:
    # A datagram part where a stream part is needed, and the reverse.
    StapledStreamTransport(datagram_writer, reader)  # error: [type-var]
    StapledDatagramTransport(writer, reader)  # error: [type-var]
    # The parts swapped.
    StapledStreamTransport(reader, writer)  # error: [type-var]

    stapled = StapledStreamTransport(writer, reader)
    # The part types are kept exactly, so confusing them is caught.
    assert_type(stapled.send_transport, MyReader)  # error: [assert-type]
    # The parts are read-only.
    stapled.send_transport = writer  # error: [misc]
    # A datagram method that stream transports do not have.
    stapled.send_with_ancillary(b"x", None, 1.0)  # error: [attr-defined]


class Subclass(StapledStreamTransport[MyWriter, MyReader]):  # error: [misc]
    pass
