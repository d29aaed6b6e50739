"""StapledStreamTransport: routing, send_eof, typed attributes, structure.

The parts here are small in-memory transports that record what reached
them; the real-I/O proof lives in test_stream_real_io.py.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typing_extensions import Buffer

from transports.abc import (
    DatagramTransport,
    StreamReadTransport,
    StreamTransport,
    StreamWriteTransport,
    TypedAttributeLookupError,
    TypedAttributeSet,
    UnsupportedOperation,
    typed_attribute,
)
from transports.composite import StapledStreamTransport

ANCILLARY = object()  # an opaque ancillary-data value: the composite must pass it through untouched


class Recorder:
    """State shared by the recording parts: calls seen, closed flag, attributes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.closed = False
        self.attributes: dict[Any, Callable[[], Any]] = {}


class RecordingStream(StreamTransport):
    """A full-duplex part that records every call and returns fixed values.

    Used in BOTH slots of a stapled transport, so a call routed to the wrong
    part would be recorded by the wrong recorder.
    """

    def __init__(self, send_eof_error: BaseException | None = None) -> None:
        self.recorder = Recorder()
        self.send_eof_error = send_eof_error

    def _record(self, name: str, *args: object) -> None:
        self.recorder.calls.append((name, args))

    def send(self, data: Buffer, timeout: float) -> int:
        self._record("send", data, timeout)
        return 1234

    def send_all(self, data: Buffer, timeout: float) -> None:
        self._record("send_all", data, timeout)

    def send_all_from_iterable(self, iterable_of_data: Iterable[Buffer], timeout: float) -> None:
        self._record("send_all_from_iterable", iterable_of_data, timeout)

    def send_all_with_ancillary(self, iterable_of_data: Iterable[Buffer], ancillary_data: Any, timeout: float) -> None:
        self._record("send_all_with_ancillary", iterable_of_data, ancillary_data, timeout)

    def recv(self, bufsize: int, timeout: float) -> bytes:
        self._record("recv", bufsize, timeout)
        return b"from recv"

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        self._record("recv_into", buffer, timeout)
        with memoryview(buffer) as view:
            view[:2] = b"ok"
        return 2

    def recv_with_ancillary(self, bufsize: int, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        self._record("recv_with_ancillary", bufsize, ancillary_bufsize, timeout)
        return b"with ancillary", ANCILLARY

    def recv_with_ancillary_into(self, buffer: Buffer, ancillary_bufsize: int, timeout: float) -> tuple[int, Any]:
        self._record("recv_with_ancillary_into", buffer, ancillary_bufsize, timeout)
        return 7, ANCILLARY

    def send_eof(self) -> None:
        self._record("send_eof")
        if self.send_eof_error is not None:
            raise self.send_eof_error

    def close(self) -> None:
        self.recorder.closed = True

    def is_closed(self) -> bool:
        return self.recorder.closed

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.recorder.attributes


class MinimalWriter(StreamWriteTransport):
    """A write-only part that keeps what it is sent and overrides nothing optional."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.closed = False
        self.attributes: dict[Any, Callable[[], Any]] = {}

    def send(self, data: Buffer, timeout: float) -> int:
        with memoryview(data) as view:
            self.received += view
            return len(view)

    def close(self) -> None:
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.attributes


class MinimalReader(StreamReadTransport):
    """A read-only part serving fixed bytes and overriding nothing optional."""

    def __init__(self, source: bytes = b"") -> None:
        self.source = source
        self.closed = False
        self.attributes: dict[Any, Callable[[], Any]] = {}

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        with memoryview(buffer) as view:
            n = min(len(view), len(self.source))
            view[:n] = self.source[:n]
        self.source = self.source[n:]
        return n

    def close(self) -> None:
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.attributes


class NotAStreamPart(DatagramTransport):
    def send(self, data: Buffer, timeout: float) -> None:
        raise AssertionError("never called")

    def recv(self, timeout: float) -> bytes:
        raise AssertionError("never called")

    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False


@pytest.fixture
def parts() -> tuple[RecordingStream, RecordingStream]:
    return RecordingStream(), RecordingStream()


@pytest.fixture
def stapled(parts: tuple[RecordingStream, RecordingStream]) -> StapledStreamTransport[RecordingStream, RecordingStream]:
    return StapledStreamTransport(*parts)


# ---------------------------------------------------------------- routing


def send_side_cases() -> list[tuple[str, tuple[object, ...], object]]:
    data = bytearray(b"payload")
    chunks = iter([b"a", b"", b"b"])
    return [
        ("send", (data, 1.5), 1234),
        ("send_all", (data, math.inf), None),
        ("send_all_from_iterable", (chunks, 0.0), None),
        ("send_all_with_ancillary", (chunks, ANCILLARY, 2.0), None),
    ]


def receive_side_cases() -> list[tuple[str, tuple[object, ...], object]]:
    buffer = bytearray(16)
    return [
        ("recv", (42, 1.5), b"from recv"),
        ("recv_into", (buffer, math.inf), 2),
        ("recv_with_ancillary", (42, 128, 0.0), (b"with ancillary", ANCILLARY)),
        ("recv_with_ancillary_into", (buffer, 128, 3.0), (7, ANCILLARY)),
    ]


def assert_called_with_same_objects(part: RecordingStream, method: str, args: tuple[object, ...]) -> None:
    ((name, received),) = part.recorder.calls
    assert name == method
    assert len(received) == len(args)
    # The very same objects, not copies: a buffer must be the caller's own, a
    # one-shot iterator must arrive unconsumed.
    assert all(got is sent for got, sent in zip(received, args, strict=True))


@pytest.mark.parametrize(
    ("method", "args", "expected"), send_side_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_send_side_method_calls_the_send_part_only(
    parts: tuple[RecordingStream, RecordingStream],
    stapled: StapledStreamTransport[RecordingStream, RecordingStream],
    method: str,
    args: tuple[object, ...],
    expected: object,
) -> None:
    send_part, receive_part = parts
    assert getattr(stapled, method)(*args) == expected
    assert_called_with_same_objects(send_part, method, args)
    assert receive_part.recorder.calls == []


@pytest.mark.parametrize(
    ("method", "args", "expected"), receive_side_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_receive_side_method_calls_the_receive_part_only(
    parts: tuple[RecordingStream, RecordingStream],
    stapled: StapledStreamTransport[RecordingStream, RecordingStream],
    method: str,
    args: tuple[object, ...],
    expected: object,
) -> None:
    send_part, receive_part = parts
    assert getattr(stapled, method)(*args) == expected
    assert_called_with_same_objects(receive_part, method, args)
    assert send_part.recorder.calls == []


def test_recv_into_fills_the_callers_buffer(stapled: StapledStreamTransport[RecordingStream, RecordingStream]) -> None:
    buffer = bytearray(4)
    assert stapled.recv_into(buffer, 1.0) == 2
    assert buffer == b"ok\x00\x00"


def test_keyword_arguments_reach_the_parts(
    parts: tuple[RecordingStream, RecordingStream],
    stapled: StapledStreamTransport[RecordingStream, RecordingStream],
) -> None:
    send_part, receive_part = parts
    assert stapled.send(data=b"kw", timeout=0.5) == 1234
    assert stapled.recv(bufsize=3, timeout=0.25) == b"from recv"
    assert send_part.recorder.calls == [("send", (b"kw", 0.5))]
    assert receive_part.recorder.calls == [("recv", (3, 0.25))]


def test_default_methods_of_the_parts_do_the_work() -> None:
    # The composite adds no logic of its own: with minimal parts, the ABC
    # defaults of the PARTS run (send_all loops over the writer's send;
    # recv builds on the reader's recv_into).
    writer, reader = MinimalWriter(), MinimalReader(b"hello world")
    stapled = StapledStreamTransport(writer, reader)
    stapled.send_all(memoryview(b"abcdef")[1:], math.inf)
    stapled.send_all_from_iterable([b"1", b"", b"23", b""], 1.0)
    assert writer.received == b"bcdef123"
    assert stapled.recv(5, 1.0) == b"hello"
    assert stapled.recv(0, 1.0) == b""
    buffer = bytearray(10)
    assert stapled.recv_into(buffer, 1.0) == 6
    assert buffer[:6] == b" world"
    assert stapled.recv(5, 1.0) == b""  # EOF


def test_ancillary_unsupported_by_the_parts_raises_unsupported_operation() -> None:
    stapled = StapledStreamTransport(MinimalWriter(), MinimalReader())
    with pytest.raises(UnsupportedOperation):
        stapled.send_all_with_ancillary([b"x"], ANCILLARY, 1.0)
    with pytest.raises(UnsupportedOperation):
        stapled.recv_with_ancillary(1, 64, 1.0)
    with pytest.raises(UnsupportedOperation):
        stapled.recv_with_ancillary_into(bytearray(1), 64, 1.0)


def test_argument_errors_of_the_parts_propagate() -> None:
    stapled = StapledStreamTransport(MinimalWriter(), MinimalReader(b"data"))
    with pytest.raises(ValueError, match="bufsize"):
        stapled.recv(-1, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        stapled.send_all(b"x", math.nan)
    with pytest.raises(ValueError, match="ancillary_bufsize"):
        stapled.recv_with_ancillary(1, -1, 1.0)


def test_exception_of_a_part_propagates_unchanged() -> None:
    error = TimeoutError("no data")

    class FailingReader(MinimalReader):
        def recv_into(self, buffer: Buffer, timeout: float) -> int:
            raise error

    stapled = StapledStreamTransport(MinimalWriter(), FailingReader())
    with pytest.raises(TimeoutError) as caught:
        stapled.recv(10, 0.1)
    assert caught.value is error


def test_one_full_duplex_part_may_fill_both_slots() -> None:
    part = RecordingStream()
    stapled = StapledStreamTransport(part, part)
    assert stapled.send(b"x", 1.0) == 1234
    assert stapled.recv(1, 1.0) == b"from recv"
    assert [name for name, _ in part.recorder.calls] == ["send", "recv"]
    stapled.close()
    assert part.is_closed()
    assert stapled.is_closed()


# --------------------------------------------------------------- send_eof


def test_send_eof_calls_send_eof_of_a_full_stream_part(
    parts: tuple[RecordingStream, RecordingStream],
    stapled: StapledStreamTransport[RecordingStream, RecordingStream],
) -> None:
    send_part, receive_part = parts
    stapled.send_eof()
    assert send_part.recorder.calls == [("send_eof", ())]
    assert not send_part.is_closed()
    assert receive_part.recorder.calls == []
    assert not receive_part.is_closed()


def test_send_eof_closes_a_write_only_part() -> None:
    writer, reader = MinimalWriter(), MinimalReader(b"still readable")
    stapled = StapledStreamTransport(writer, reader)
    stapled.send_eof()
    assert writer.is_closed()
    assert not reader.is_closed()
    assert not stapled.is_closed()
    assert stapled.recv(100, 1.0) == b"still readable"


@pytest.mark.parametrize(
    "error",
    [UnsupportedOperation("no half-close"), NotImplementedError("not here either")],
    ids=["UnsupportedOperation", "NotImplementedError"],
)
def test_send_eof_falls_back_to_close_when_the_part_cannot_half_close(error: NotImplementedError) -> None:
    send_part, receive_part = RecordingStream(send_eof_error=error), RecordingStream()
    stapled = StapledStreamTransport(send_part, receive_part)
    stapled.send_eof()  # does not raise
    assert send_part.recorder.calls == [("send_eof", ())]
    assert send_part.is_closed()
    assert not receive_part.is_closed()


def test_send_eof_propagates_other_errors_without_closing() -> None:
    error = ConnectionResetError("peer went away")
    send_part = RecordingStream(send_eof_error=error)
    stapled = StapledStreamTransport(send_part, RecordingStream())
    with pytest.raises(ConnectionResetError) as caught:
        stapled.send_eof()
    assert caught.value is error
    assert not send_part.is_closed()


def test_send_eof_after_close_does_not_raise() -> None:
    stapled = StapledStreamTransport(MinimalWriter(), MinimalReader())
    stapled.close()
    stapled.send_eof()
    assert stapled.is_closed()


# ------------------------------------------------------- typed attributes


class Attr(TypedAttributeSet):
    shared: str = typed_attribute()
    send_only: int = typed_attribute()
    receive_only: float = typed_attribute()
    unavailable: str = typed_attribute()
    absent: bytes = typed_attribute()


def unavailable() -> str:
    raise TypedAttributeLookupError("not now")


def test_extra_attributes_merge_with_the_receive_part_winning() -> None:
    writer, reader = MinimalWriter(), MinimalReader()
    writer.attributes = {Attr.shared: lambda: "send", Attr.send_only: lambda: 1}
    reader.attributes = {Attr.shared: lambda: "receive", Attr.receive_only: lambda: 2.5, Attr.unavailable: unavailable}
    stapled = StapledStreamTransport(writer, reader)

    assert set(stapled.extra_attributes) == {Attr.shared, Attr.send_only, Attr.receive_only, Attr.unavailable}
    assert stapled.extra(Attr.shared) == "receive"
    assert stapled.extra(Attr.send_only) == 1
    assert stapled.extra(Attr.receive_only) == 2.5
    with pytest.raises(TypedAttributeLookupError):
        stapled.extra(Attr.unavailable)
    assert stapled.extra(Attr.unavailable, None) is None
    with pytest.raises(TypedAttributeLookupError):
        stapled.extra(Attr.absent)
    assert stapled.extra(Attr.absent, b"default") == b"default"


def test_extra_attributes_follow_the_parts() -> None:
    writer, reader = MinimalWriter(), MinimalReader()
    stapled = StapledStreamTransport(writer, reader)
    assert dict(stapled.extra_attributes) == {}
    writer.attributes = {Attr.send_only: lambda: 3}
    assert stapled.extra(Attr.send_only) == 3
    reader.attributes = {Attr.send_only: lambda: 4}
    assert stapled.extra(Attr.send_only) == 4


def test_getters_of_the_parts_are_passed_through_not_called_early() -> None:
    calls: list[str] = []

    def getter() -> str:
        calls.append("called")
        return "value"

    writer = MinimalWriter()
    writer.attributes = {Attr.shared: getter}
    stapled = StapledStreamTransport(writer, MinimalReader())
    assert stapled.extra_attributes[Attr.shared] is getter
    assert calls == []


@settings(deadline=None, max_examples=50)
@given(
    send_values=st.dictionaries(st.integers(0, 15), st.integers(), max_size=10),
    receive_values=st.dictionaries(st.integers(0, 15), st.integers(), max_size=10),
)
def test_merge_priority_holds_for_any_key_sets(send_values: dict[int, int], receive_values: dict[int, int]) -> None:
    def getter(side: str, value: int) -> Callable[[], tuple[str, int]]:
        return lambda: (side, value)

    writer, reader = MinimalWriter(), MinimalReader()
    writer.attributes = {key: getter("send", value) for key, value in send_values.items()}
    reader.attributes = {key: getter("receive", value) for key, value in receive_values.items()}
    stapled = StapledStreamTransport(writer, reader)
    assert set(stapled.extra_attributes) == set(send_values) | set(receive_values)
    for key in range(16):
        marker: Any = key  # any hashable object can serve as a marker
        if key in receive_values:
            assert stapled.extra(marker) == ("receive", receive_values[key])
        elif key in send_values:
            assert stapled.extra(marker) == ("send", send_values[key])
        else:
            assert stapled.extra(marker, None) is None


# -------------------------------------------------------------- structure


def test_parts_are_exposed_and_read_only() -> None:
    writer, reader = MinimalWriter(), MinimalReader()
    stapled = StapledStreamTransport(writer, reader)
    assert stapled.send_transport is writer
    assert stapled.receive_transport is reader
    with pytest.raises(AttributeError):
        setattr(stapled, "send_transport", MinimalWriter())  # noqa: B010
    with pytest.raises(AttributeError):
        setattr(stapled, "receive_transport", MinimalReader())  # noqa: B010
    assert stapled.send_transport is writer


def test_instances_have_slots_not_a_dict() -> None:
    stapled = StapledStreamTransport(MinimalWriter(), MinimalReader())
    assert not hasattr(stapled, "__dict__")
    with pytest.raises(AttributeError):
        stapled.anything = 1  # type: ignore[attr-defined]
    assert weakref.ref(stapled)() is stapled


def test_is_a_final_stream_transport_subscriptable_at_runtime() -> None:
    assert issubclass(StapledStreamTransport, StreamTransport)
    assert getattr(StapledStreamTransport, "__final__", False) is True
    alias = StapledStreamTransport[MinimalWriter, MinimalReader]
    stapled = alias(MinimalWriter(), MinimalReader())
    assert type(stapled) is StapledStreamTransport


@pytest.mark.parametrize(
    ("send_part", "receive_part", "message"),
    [
        (MinimalReader(), MinimalReader(), "send_transport must be a StreamWriteTransport, got MinimalReader"),
        (MinimalWriter(), MinimalWriter(), "receive_transport must be a StreamReadTransport, got MinimalWriter"),
        (NotAStreamPart(), MinimalReader(), "send_transport must be a StreamWriteTransport"),
        (MinimalWriter(), NotAStreamPart(), "receive_transport must be a StreamReadTransport"),
        (object(), MinimalReader(), "send_transport must be a StreamWriteTransport, got object"),
    ],
)
def test_parts_of_the_wrong_kind_are_refused(send_part: Any, receive_part: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        StapledStreamTransport(send_part, receive_part)


def test_repr_names_both_parts() -> None:
    writer, reader = MinimalWriter(), MinimalReader()
    text = repr(StapledStreamTransport(writer, reader))
    assert text.startswith("<StapledStreamTransport ")
    assert f"send_transport={writer!r}" in text
    assert f"receive_transport={reader!r}" in text
