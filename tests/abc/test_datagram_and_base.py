"""Datagram ABC defaults, the context manager and the abstract methods."""

from __future__ import annotations

import math

import pytest
from typing_extensions import Buffer

from transports.abc import (
    BaseTransport,
    DatagramReadTransport,
    DatagramTransport,
    DatagramWriteTransport,
    UnsupportedOperation,
)


class Loopback(DatagramTransport):
    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.close_calls = 0

    def send(self, data: Buffer, timeout: float) -> None:
        self.packets.append(bytes(data))

    def recv(self, timeout: float) -> bytes:
        return self.packets.pop(0)

    def close(self) -> None:
        self.close_calls += 1

    def is_closed(self) -> bool:
        return self.close_calls > 0


def test_datagram_round_trip() -> None:
    t = Loopback()
    t.send(b"one", 1.0)
    t.send(bytearray(b"two"), 1.0)
    assert t.recv(1.0) == b"one"
    assert t.recv(1.0) == b"two"


def test_datagram_ancillary_defaults_unsupported() -> None:
    t = Loopback()
    with pytest.raises(UnsupportedOperation):
        t.recv_with_ancillary(100, 1.0)
    with pytest.raises(UnsupportedOperation):
        t.send_with_ancillary(b"x", [], math.inf)
    assert t.packets == []


def test_datagram_ancillary_argument_checks() -> None:
    t = Loopback()
    with pytest.raises(ValueError, match="ancillary_bufsize"):
        t.recv_with_ancillary(-1, 1.0)
    with pytest.raises(ValueError, match="timeout"):
        t.recv_with_ancillary(1, math.nan)
    with pytest.raises(ValueError, match="timeout"):
        t.send_with_ancillary(b"x", [], -3)


def test_context_manager_returns_self_and_closes() -> None:
    t = Loopback()
    with t as entered:
        assert entered is t
        assert not t.is_closed()
    assert t.is_closed()
    assert t.close_calls == 1


def test_context_manager_closes_on_error() -> None:
    t = Loopback()
    with pytest.raises(KeyError), t:
        raise KeyError("boom")
    assert t.is_closed()


def test_unsupported_operation_is_not_implemented_error() -> None:
    assert issubclass(UnsupportedOperation, NotImplementedError)


@pytest.mark.parametrize("cls", [BaseTransport, DatagramReadTransport, DatagramWriteTransport, DatagramTransport])
def test_abstract_classes_cannot_be_instantiated(cls: type[BaseTransport]) -> None:
    with pytest.raises(TypeError):
        cls()


def test_transports_are_weak_referenceable() -> None:
    import weakref

    t = Loopback()
    assert weakref.ref(t)() is t
