"""close(), is_closed() and the context manager of both stapled transports."""

from __future__ import annotations

from typing import Protocol

import pytest
from typing_extensions import Buffer

from transports.abc import (
    BaseTransport,
    DatagramReadTransport,
    DatagramWriteTransport,
    StreamReadTransport,
    StreamWriteTransport,
)
from transports.composite import StapledDatagramTransport, StapledStreamTransport


class CloseProbe(BaseTransport):
    """close() logs the part's name, marks it closed, then raises ``error`` once.

    Like a real transport, a second close() of a closed part does nothing,
    so the stapled close() stays idempotent.
    """

    def __init__(self, name: str, log: list[str], error: BaseException | None = None) -> None:
        self.name = name
        self.log = log
        self.error = error
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.log.append(self.name)
        self.closed = True
        if self.error is not None:
            raise self.error

    def is_closed(self) -> bool:
        return self.closed


class StreamWriteProbe(CloseProbe, StreamWriteTransport):
    def send(self, data: Buffer, timeout: float) -> int:
        raise AssertionError("not used")


class StreamReadProbe(CloseProbe, StreamReadTransport):
    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        raise AssertionError("not used")


class DatagramWriteProbe(CloseProbe, DatagramWriteTransport):
    def send(self, data: Buffer, timeout: float) -> None:
        raise AssertionError("not used")


class DatagramReadProbe(CloseProbe, DatagramReadTransport):
    def recv(self, timeout: float) -> bytes:
        raise AssertionError("not used")


class MakeStapled(Protocol):
    def __call__(
        self, log: list[str], send_error: BaseException | None = None, receive_error: BaseException | None = None
    ) -> tuple[BaseTransport, CloseProbe, CloseProbe]: ...


def make_stream(
    log: list[str], send_error: BaseException | None = None, receive_error: BaseException | None = None
) -> tuple[BaseTransport, CloseProbe, CloseProbe]:
    send_part = StreamWriteProbe("send", log, send_error)
    receive_part = StreamReadProbe("receive", log, receive_error)
    return StapledStreamTransport(send_part, receive_part), send_part, receive_part


def make_datagram(
    log: list[str], send_error: BaseException | None = None, receive_error: BaseException | None = None
) -> tuple[BaseTransport, CloseProbe, CloseProbe]:
    send_part = DatagramWriteProbe("send", log, send_error)
    receive_part = DatagramReadProbe("receive", log, receive_error)
    return StapledDatagramTransport(send_part, receive_part), send_part, receive_part


@pytest.fixture(params=[make_stream, make_datagram], ids=["stream", "datagram"])
def make(request: pytest.FixtureRequest) -> MakeStapled:
    factory: MakeStapled = request.param
    return factory


def test_close_closes_send_part_then_receive_part(make: MakeStapled) -> None:
    log: list[str] = []
    stapled, send_part, receive_part = make(log)
    assert not stapled.is_closed()
    stapled.close()
    assert log == ["send", "receive"]
    assert send_part.is_closed()
    assert receive_part.is_closed()
    assert stapled.is_closed()


def test_close_is_idempotent(make: MakeStapled) -> None:
    log: list[str] = []
    stapled, _, _ = make(log)
    stapled.close()
    stapled.close()
    assert log == ["send", "receive"]
    assert stapled.is_closed()


def test_is_closed_only_when_both_parts_are(make: MakeStapled) -> None:
    log: list[str] = []
    stapled, send_part, receive_part = make(log)
    send_part.close()
    assert not stapled.is_closed()
    receive_part.close()
    assert stapled.is_closed()

    stapled, send_part, receive_part = make(log)
    receive_part.close()
    assert not stapled.is_closed()


def test_send_part_error_propagates_after_receive_part_is_closed(make: MakeStapled) -> None:
    log: list[str] = []
    error = OSError("send part failed to close")
    stapled, send_part, receive_part = make(log, send_error=error)
    with pytest.raises(OSError, match="send part failed") as caught:
        stapled.close()
    assert caught.value is error
    assert log == ["send", "receive"]
    assert send_part.is_closed()
    assert receive_part.is_closed()
    assert stapled.is_closed()
    # The second part's close happened outside the first error's handler.
    assert caught.value.__context__ is None
    stapled.close()  # now a no-op


def test_receive_part_error_propagates_unchanged(make: MakeStapled) -> None:
    log: list[str] = []
    error = ValueError("receive part failed to close")
    stapled, send_part, _ = make(log, receive_error=error)
    with pytest.raises(ValueError, match="receive part failed") as caught:
        stapled.close()
    assert caught.value is error
    assert caught.value.__context__ is None
    assert log == ["send", "receive"]
    assert send_part.is_closed()
    assert stapled.is_closed()


def test_both_errors_are_raised_together_in_order(make: MakeStapled) -> None:
    log: list[str] = []
    send_error = OSError("send part")
    receive_error = RuntimeError("receive part")
    stapled, _, _ = make(log, send_error=send_error, receive_error=receive_error)
    with pytest.raises(ExceptionGroup) as caught:
        stapled.close()
    group = caught.value
    assert group.message == "close() failed for both parts"
    assert list(group.exceptions) == [send_error, receive_error]
    assert receive_error.__context__ is None
    assert log == ["send", "receive"]
    assert stapled.is_closed()


def test_both_errors_caught_with_except_star(make: MakeStapled) -> None:
    log: list[str] = []
    stapled, _, _ = make(log, send_error=BrokenPipeError(), receive_error=ConnectionResetError())
    seen: list[type[BaseException]] = []
    try:
        stapled.close()
    except* BrokenPipeError as group:
        seen.extend(type(e) for e in group.exceptions)
    except* ConnectionResetError as group:
        seen.extend(type(e) for e in group.exceptions)
    assert seen == [BrokenPipeError, ConnectionResetError]


def test_base_exception_from_one_part_still_closes_the_other(make: MakeStapled) -> None:
    log: list[str] = []
    interrupt = KeyboardInterrupt()
    stapled, _, receive_part = make(log, send_error=interrupt)
    with pytest.raises(KeyboardInterrupt) as caught:
        stapled.close()
    assert caught.value is interrupt
    assert receive_part.is_closed()


def test_base_exception_and_error_give_a_base_exception_group(make: MakeStapled) -> None:
    log: list[str] = []
    interrupt = KeyboardInterrupt()
    error = OSError("receive part")
    stapled, _, _ = make(log, send_error=interrupt, receive_error=error)
    with pytest.raises(BaseExceptionGroup) as caught:
        stapled.close()
    assert not isinstance(caught.value, ExceptionGroup)
    assert list(caught.value.exceptions) == [interrupt, error]


def test_context_manager_returns_itself_and_closes_both(make: MakeStapled) -> None:
    log: list[str] = []
    stapled, send_part, receive_part = make(log)
    with stapled as entered:
        assert entered is stapled
        assert log == []
    assert log == ["send", "receive"]
    assert send_part.is_closed()
    assert receive_part.is_closed()


def test_context_manager_closes_both_when_the_body_raises(make: MakeStapled) -> None:
    log: list[str] = []
    stapled, _, _ = make(log)
    with pytest.raises(LookupError, match="body"), stapled:
        raise LookupError("body")
    assert log == ["send", "receive"]
    assert stapled.is_closed()


def test_context_manager_reports_close_errors(make: MakeStapled) -> None:
    log: list[str] = []
    error = OSError("flush failed")
    stapled, _, receive_part = make(log, send_error=error)
    with pytest.raises(OSError, match="flush failed"), stapled:
        pass
    assert receive_part.is_closed()
