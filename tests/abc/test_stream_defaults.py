"""The default methods of the stream ABCs, over small in-memory transports."""

from __future__ import annotations

import errno
import itertools
import math
import time
from array import array
from collections.abc import Iterator

import pytest
from typing_extensions import Buffer

from transports.abc import StreamReadTransport, StreamTransport, StreamWriteTransport


class RecordingWriter(StreamWriteTransport):
    """Accepts at most ``chunk`` bytes per send; optionally sleeps per call."""

    def __init__(self, chunk: int = 1 << 30, delay: float = 0.0, result: int | None = None) -> None:
        self.chunk = chunk
        self.delay = delay
        self.result = result
        self.received = bytearray()
        self.calls: list[tuple[int, float]] = []
        self.closed = False

    def send(self, data: Buffer, timeout: float) -> int:
        view = memoryview(data)
        assert view.format == "B"
        assert view.ndim == 1
        self.calls.append((len(view), timeout))
        if self.delay:
            if timeout < self.delay:
                time.sleep(timeout)
                raise TimeoutError(errno.ETIMEDOUT, "timed out")
            time.sleep(self.delay)
        if self.result is not None:
            return self.result
        taken = view[: self.chunk]
        self.received += taken
        return len(taken)

    def close(self) -> None:
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed


class MemoryReader(StreamReadTransport):
    def __init__(self, source: bytes, result: int | None = None) -> None:
        self.source = source
        self.result = result
        self.closed = False

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        if self.result is not None:
            return self.result
        with memoryview(buffer) as view:
            n = min(len(view), len(self.source))
            view[:n] = self.source[:n]
        self.source = self.source[n:]
        return n

    def close(self) -> None:
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed


# send_all


def test_send_all_one_byte_at_a_time() -> None:
    writer = RecordingWriter(chunk=1)
    writer.send_all(b"hello world", math.inf)
    assert writer.received == b"hello world"
    assert [n for n, _ in writer.calls] == list(range(11, 0, -1))


def test_send_all_first_try_makes_one_call() -> None:
    writer = RecordingWriter()
    writer.send_all(b"x" * 100_000, 5.0)
    assert len(writer.calls) == 1
    assert writer.calls[0] == (100_000, 5.0)


def test_send_all_empty_data_still_calls_send_once() -> None:
    writer = RecordingWriter()
    writer.send_all(b"", 1.0)
    assert writer.calls == [(0, 1.0)]


@pytest.mark.parametrize("count", [-1, -100])
def test_send_all_negative_count_is_runtime_error(count: int) -> None:
    writer = RecordingWriter(result=count)
    with pytest.raises(RuntimeError):
        writer.send_all(b"abc", math.inf)


def test_send_all_overlong_count_is_runtime_error() -> None:
    writer = RecordingWriter(result=10)
    with pytest.raises(RuntimeError):
        writer.send_all(b"abc", math.inf)


def test_send_all_multibyte_items_are_sent_as_bytes() -> None:
    values = array("i", [1, -2, 300_000, 7])
    writer = RecordingWriter(chunk=3)
    writer.send_all(values, math.inf)
    assert bytes(writer.received) == values.tobytes()


def test_send_all_two_dimensional_view_is_flattened() -> None:
    data = bytes(range(12))
    view = memoryview(data).cast("B", (3, 4))
    writer = RecordingWriter(chunk=5)
    writer.send_all(view, math.inf)
    assert bytes(writer.received) == data


def test_send_all_never_copies() -> None:
    seen: list[memoryview] = []

    class Spy(RecordingWriter):
        def send(self, data: Buffer, timeout: float) -> int:
            seen.append(memoryview(data))
            return super().send(data, timeout)

    payload = bytearray(b"abcdefgh")
    Spy(chunk=3).send_all(payload, math.inf)
    # Every view handed to send() is a window on the caller's own buffer.
    for view in seen:
        assert view.obj is payload
    for view in seen:
        view.release()


def test_send_all_budget_runs_out_midway() -> None:
    writer = RecordingWriter(chunk=1, delay=0.05)
    start = time.monotonic()
    with pytest.raises(TimeoutError) as exc_info:
        writer.send_all(b"0123456789", 0.12)
    elapsed = time.monotonic() - start
    assert exc_info.value.errno == errno.ETIMEDOUT
    assert 0.1 <= elapsed < 1.0
    # Each call got what was left of the one budget, never more.
    timeouts = [t for _, t in writer.calls]
    assert timeouts[0] == 0.12
    assert all(later < earlier for earlier, later in itertools.pairwise(timeouts))
    assert len(writer.received) < 10


def test_send_all_infinite_timeout_passed_through() -> None:
    writer = RecordingWriter(chunk=2)
    writer.send_all(b"abcdef", math.inf)
    assert all(t == math.inf for _, t in writer.calls)


@pytest.mark.parametrize("timeout", [-1.0, -math.inf, math.nan])
def test_send_all_bad_timeout_before_io(timeout: float) -> None:
    writer = RecordingWriter()
    with pytest.raises(ValueError, match="timeout"):
        writer.send_all(b"abc", timeout)
    assert writer.calls == []


def test_send_all_rejects_non_buffer() -> None:
    writer = RecordingWriter()
    with pytest.raises(TypeError):
        writer.send_all("text", math.inf)  # type: ignore[arg-type]


# send_all_from_iterable


def test_send_all_from_iterable_joins_in_order() -> None:
    writer = RecordingWriter(chunk=4)
    writer.send_all_from_iterable([b"ab", bytearray(b"cd"), memoryview(b"ef"), b""], math.inf)
    assert writer.received == b"abcdef"


def test_send_all_from_iterable_trailing_and_only_empty_chunks() -> None:
    writer = RecordingWriter()
    writer.send_all_from_iterable([b"", b"", b""], 1.0)
    assert writer.received == b""
    writer.send_all_from_iterable(iter([b"x", b"", b""]), 1.0)
    assert writer.received == b"x"


def test_send_all_from_iterable_bad_timeout_consumes_nothing() -> None:
    consumed: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        consumed.append(b"a")
        yield b"a"

    writer = RecordingWriter()
    with pytest.raises(ValueError, match="timeout"):
        writer.send_all_from_iterable(chunks(), -1)
    assert consumed == []


# recv built on recv_into


def test_recv_returns_data_then_eof() -> None:
    reader = MemoryReader(b"hello")
    assert reader.recv(3, math.inf) == b"hel"
    assert reader.recv(100, math.inf) == b"lo"
    assert reader.recv(100, math.inf) == b""


def test_recv_bufsize_zero_returns_empty_without_reading() -> None:
    reader = MemoryReader(b"hello")
    assert reader.recv(0, math.inf) == b""
    assert reader.source == b"hello"


def test_recv_negative_bufsize() -> None:
    with pytest.raises(ValueError, match="bufsize"):
        MemoryReader(b"x").recv(-1, math.inf)


@pytest.mark.parametrize("timeout", [-0.5, math.nan])
def test_recv_bad_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        MemoryReader(b"x").recv(0, timeout)


@pytest.mark.parametrize("count", [-1, 11])
def test_recv_impossible_count_is_runtime_error(count: int) -> None:
    with pytest.raises(RuntimeError):
        MemoryReader(b"x", result=count).recv(10, math.inf)


def test_recv_returns_bytes_type() -> None:
    data = MemoryReader(b"abc").recv(10, 0)
    assert type(data) is bytes


# ancillary defaults


class Duplex(StreamTransport):
    def __init__(self) -> None:
        self.closed = False

    def send(self, data: Buffer, timeout: float) -> int:
        return len(memoryview(data))

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        return 0

    def send_eof(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def is_closed(self) -> bool:
        return self.closed


def test_stream_ancillary_defaults_unsupported() -> None:
    from transports.abc import UnsupportedOperation

    t = Duplex()
    with pytest.raises(UnsupportedOperation):
        t.recv_with_ancillary(10, 10, 1.0)
    with pytest.raises(UnsupportedOperation):
        t.recv_with_ancillary_into(bytearray(10), 10, 1.0)
    with pytest.raises(UnsupportedOperation):
        t.send_all_with_ancillary([b"x"], [], 1.0)
    with pytest.raises(NotImplementedError):
        t.send_all_with_ancillary([b"x"], [], 1.0)


@pytest.mark.parametrize(("bufsize", "ancillary_bufsize"), [(-1, 10), (10, -1)])
def test_stream_ancillary_negative_sizes(bufsize: int, ancillary_bufsize: int) -> None:
    with pytest.raises(ValueError, match="bufsize"):
        Duplex().recv_with_ancillary(bufsize, ancillary_bufsize, 1.0)


def test_stream_ancillary_into_negative_size() -> None:
    with pytest.raises(ValueError, match="ancillary_bufsize"):
        Duplex().recv_with_ancillary_into(bytearray(1), -1, 1.0)


@pytest.mark.parametrize("timeout", [-1.0, math.nan])
def test_stream_ancillary_bad_timeout(timeout: float) -> None:
    t = Duplex()
    with pytest.raises(ValueError, match="timeout"):
        t.recv_with_ancillary(1, 1, timeout)
    with pytest.raises(ValueError, match="timeout"):
        t.recv_with_ancillary_into(bytearray(1), 1, timeout)
    with pytest.raises(ValueError, match="timeout"):
        t.send_all_with_ancillary([b""], None, timeout)


def test_abstract_stream_classes_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError):
        StreamTransport()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        StreamReadTransport()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        StreamWriteTransport()  # type: ignore[abstract]
