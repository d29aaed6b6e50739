"""The conformance checks of stream transports."""

from __future__ import annotations

__all__ = [
    "StreamPairFactory",
    "check_stream_bulk",
    "check_stream_closing",
    "check_stream_end_of_stream",
    "check_stream_exchange",
    "check_stream_send_shapes",
    "check_stream_timeouts",
    "check_stream_transport",
]

import errno
import hashlib
import math
import random
import time
from array import array
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, Protocol

from typing_extensions import Buffer

from transports.abc._exceptions import UnsupportedOperation
from transports.abc._stream import StreamTransport

from ._support import (
    INVALID_TIMEOUTS,
    Background,
    after_a_while,
    check,
    check_after_close,
    check_attributes,
    elapsed,
    expect,
    failures_as_assertions,
)


class StreamPairFactory(Protocol):
    """Makes a connected pair ``(a, b)`` of stream transports, as a context manager.

    What ``a`` sends, ``b`` receives, and the other way round. Leaving the
    context closes both (they may already be closed) and whatever else it
    made (threads, child processes). A function decorated with
    :func:`contextlib.contextmanager` that yields the pair is one.
    """

    def __call__(self) -> AbstractContextManager[tuple[StreamTransport, StreamTransport]]: ...


# Generous bounds: the checks run on loaded CI machines. A wait that must
# end on its own ends within its timeout plus SLACK.
_DATA_TIMEOUT = 10.0
_SLACK = 2.0
# Larger than the loopback socket buffers and any TLS buffering: a send of
# this much to a peer that does not read must block.
_BLOCKING_SEND = 64 * 1024 * 1024


def receive_exactly(transport: StreamTransport, size: int, timeout: float = _DATA_TIMEOUT) -> bytes:
    """Receive exactly ``size`` bytes in as many calls as it takes.

    Raises:
        AssertionError: the stream ended first.
        TimeoutError: a call found nothing within ``timeout``.
    """
    chunks = bytearray()
    while len(chunks) < size:
        chunk = transport.recv(size - len(chunks), timeout)
        check(bool(chunk), f"end of stream after {len(chunks)} of {size} bytes")
        chunks += chunk
    return bytes(chunks)


def _check_nothing_arrives(transport: StreamTransport, what: str) -> None:
    expect(TimeoutError, partial(transport.recv, 1, 0.2), f"{what}: bytes arrived", errno_value=errno.ETIMEDOUT)


@failures_as_assertions
def check_stream_exchange(make_pair: StreamPairFactory) -> None:
    """Bytes go both ways, whole and in order; sizes of zero and partial reads behave.

    Raises:
        AssertionError: a difference from the contract.
    """
    with make_pair() as (a, b):
        for sender, receiver, name in ((a, b, "a to b"), (b, a, "b to a")):
            sender.send_all(b"hello, " + name.encode(), _DATA_TIMEOUT)
            got = receive_exactly(receiver, 7 + len(name))
            check(got == b"hello, " + name.encode(), f"{name}: received {got!r}")
        # Partial reads: a small bufsize never gets more, the rest follows in order.
        payload = bytes(range(256)) * 4
        a.send_all(payload, _DATA_TIMEOUT)
        first = b.recv(10, _DATA_TIMEOUT)
        check(0 < len(first) <= 10, f"recv(10) returned {len(first)} bytes")
        rest = receive_exactly(b, len(payload) - len(first))
        check(first + rest == payload, "a partial read lost or reordered bytes")
        # Sizes of zero return at once, even with nothing to read.
        check(b.recv(0, 0) == b"", "recv(0) did not return b''")
        check(b.recv_into(bytearray(), 0) == 0, "recv_into() of an empty buffer did not return 0")
        expect(ValueError, lambda: b.recv(-1, _DATA_TIMEOUT), "recv() of a negative size")
        # recv_into writes into the buffer given, views included.
        a.send_all(b"0123456789", _DATA_TIMEOUT)
        target = bytearray(b"-" * 14)
        count = 0
        while count < 10:
            n = b.recv_into(memoryview(target)[2 + count : 12], _DATA_TIMEOUT)
            check(n > 0, "recv_into() reported an end of stream")
            count += n
        check(target == b"--0123456789--", f"recv_into() wrote {bytes(target)!r}")
        check_attributes(a)


@failures_as_assertions
def check_stream_send_shapes(make_pair: StreamPairFactory) -> None:
    """``send_all`` and ``send_all_from_iterable`` send exactly the bytes, whatever the chunks.

    Empty chunks anywhere (first, between, last), ``bytearray``,
    ``memoryview`` slices, multi-byte items (``array('i')``) and a
    two-dimensional view, a generator of chunks.

    Raises:
        AssertionError: a difference from the contract.
    """
    ints = array("i", range(64))
    matrix = memoryview(bytes(range(48))).cast("B", (6, 8))
    shapes: list[list[Any]] = [
        [],
        [b""],
        [b"", b"abc", b"", b"", b"def", b""],
        [bytearray(b"xyz"), memoryview(b"0123456789")[3:7], b""],
        [ints, matrix],
        [b"q" * 70_000, b"", memoryview(b"r" * 10_000)[1:]],
        [b"s"] * 2_000,  # more chunks than a scatter/gather call takes
    ]
    with make_pair() as (a, b):

        def exchange(send: Callable[[], None], expected: bytes, what: str) -> None:
            # The peer receives meanwhile: a pipe holds less than some shapes.
            receiving = Background(partial(receive_exactly, b, len(expected)), "shape-receiver")
            send()
            check(receiving.result(_DATA_TIMEOUT) == expected, f"{what} delivered other bytes")

        for index, chunks in enumerate(shapes):
            expected = b"".join(bytes(memoryview(chunk).cast("B")) for chunk in chunks)
            exchange(partial(a.send_all_from_iterable, chunks, _DATA_TIMEOUT), expected, f"shape {index}")
            # The same chunks from a one-shot iterator.
            exchange(partial(a.send_all_from_iterable, iter(chunks), _DATA_TIMEOUT), expected, f"iter(shape {index})")
        single: list[Buffer] = [b"", bytearray(b"ab"), memoryview(b"abcdef")[2:], ints, matrix]
        for index, data in enumerate(single):
            exchange(partial(a.send_all, data, _DATA_TIMEOUT), bytes(memoryview(data).cast("B")), f"send_all({index})")
        a.send_all(b"end", _DATA_TIMEOUT)
        check(receive_exactly(b, 3) == b"end", "bytes after the empty sends were lost")
        _check_nothing_arrives(b, "after the exact sends")


@failures_as_assertions
def check_stream_bulk(make_pair: StreamPairFactory, size: int = 8 * 1024 * 1024) -> None:
    """``size`` bytes in random chunks each way at once arrive whole and in order.

    Raises:
        AssertionError: bytes were lost, reordered or corrupted, or a side hung.
    """
    rng = random.Random()
    with make_pair() as (a, b):
        streams = {name: rng.randbytes(size) for name in ("a to b", "b to a")}

        def send(transport: StreamTransport, data: bytes) -> None:
            view = memoryview(data)
            position = 0
            while position < len(data):
                step = rng.randint(1, 256 * 1024)
                transport.send_all(view[position : position + step], _DATA_TIMEOUT)
                position += step

        def digest(transport: StreamTransport) -> str:
            hasher = hashlib.sha256()
            buffer = bytearray(128 * 1024)
            received = 0
            while received < size:
                count = transport.recv_into(memoryview(buffer)[: rng.randint(1, len(buffer))], _DATA_TIMEOUT)
                check(count > 0, f"end of stream after {received} of {size} bytes")
                hasher.update(memoryview(buffer)[:count])
                received += count
            return hasher.hexdigest()

        tasks = [
            Background(lambda: send(a, streams["a to b"]), "bulk-send-a"),
            Background(lambda: send(b, streams["b to a"]), "bulk-send-b"),
        ]
        at_b = Background(lambda: digest(b), "bulk-receive-b")
        at_a = digest(a)
        check(at_b.result(60.0) == hashlib.sha256(streams["a to b"]).hexdigest(), "a to b: bytes differ")
        check(at_a == hashlib.sha256(streams["b to a"]).hexdigest(), "b to a: bytes differ")
        for task in tasks:
            task.result(60.0)


@failures_as_assertions
def check_stream_timeouts(make_pair: StreamPairFactory) -> None:
    """Timeouts: ``0`` never blocks, a small one ends on time, invalid ones are refused before any I/O.

    Raises:
        AssertionError: a difference from the contract.
    """
    with make_pair() as (a, b):
        expect(TimeoutError, lambda: b.recv(10, 0), "recv(timeout=0) with nothing to read", errno_value=errno.ETIMEDOUT)
        started = time.monotonic()
        expect(TimeoutError, lambda: b.recv(10, 0.2), "recv(timeout=0.2) with nothing to read")
        took = elapsed(started)
        check(0.15 <= took < 0.2 + _SLACK, f"recv(timeout=0.2) gave up after {took:.3f} s")
        expect(TimeoutError, lambda: b.recv_into(bytearray(10), 0), "recv_into(timeout=0) with nothing to read")
        # Invalid timeouts are refused, and nothing is read or sent.
        a.send_all(b"kept", _DATA_TIMEOUT)
        for timeout, exception in INVALID_TIMEOUTS:
            expect(exception, partial(b.recv, 10, timeout), f"recv(timeout={timeout!r})")
            expect(exception, partial(b.recv_into, bytearray(10), timeout), f"recv_into(timeout={timeout!r})")
            expect(exception, partial(a.send, b"lost", timeout), f"send(timeout={timeout!r})")
            expect(exception, partial(a.send_all, b"lost", timeout), f"send_all(timeout={timeout!r})")
            expect(
                exception,
                partial(a.send_all_from_iterable, [b"lost"], timeout),
                f"send_all_from_iterable(timeout={timeout!r})",
            )
        check(receive_exactly(b, 4) == b"kept", "a refused call read or sent bytes")
        _check_nothing_arrives(b, "after the refused sends")
        # An infinite timeout waits until data comes.
        later = Background(partial(after_a_while, a.send_all, b"late", _DATA_TIMEOUT), "late-sender")
        check(receive_exactly(b, 4, math.inf) == b"late", "recv(timeout=inf) missed late data")
        later.result(_DATA_TIMEOUT)
    # One budget for the whole send_all, to a peer that does not read.
    with make_pair() as (a, _b):
        started = time.monotonic()
        expect(TimeoutError, lambda: a.send_all(bytes(_BLOCKING_SEND), 0.5), "send_all() to a peer that does not read")
        took = elapsed(started)
        check(0.4 <= took < 0.5 + _SLACK, f"send_all(timeout=0.5) gave up after {took:.3f} s")


@failures_as_assertions
def check_stream_end_of_stream(make_pair: StreamPairFactory, *, half_close: bool) -> None:
    """An end of stream after the peer closes; ``send_eof`` half-closes, or refuses to.

    With ``half_close``, ``a.send_eof()`` makes ``b`` read an end of stream
    after the bytes sent before it, and ``b`` can still send to ``a``.
    Without, ``send_eof`` raises :exc:`~transports.abc.UnsupportedOperation`.

    Raises:
        AssertionError: a difference from the contract.
    """
    with make_pair() as (a, b):
        a.send_all(b"last words", _DATA_TIMEOUT)
        # Closed in the background: a TLS close waits for the other side's answer.
        closing = Background(a.close, "close-a")
        check(receive_exactly(b, 10) == b"last words", "bytes sent before close() were lost")
        check(b.recv(10, _DATA_TIMEOUT) == b"", "no end of stream after the peer closed")
        check(b.recv(10, _DATA_TIMEOUT) == b"", "the end of stream was not repeated")
        b.close()
        closing.result(_DATA_TIMEOUT)
    with make_pair() as (a, b):
        if not half_close:
            expect(UnsupportedOperation, a.send_eof, "send_eof() of a transport that cannot half-close")
            return
        a.send_all(b"before eof", _DATA_TIMEOUT)
        a.send_eof()
        a.send_eof()  # again: nothing
        check(receive_exactly(b, 10) == b"before eof", "bytes sent before send_eof() were lost")
        check(b.recv(10, _DATA_TIMEOUT) == b"", "no end of stream after send_eof()")
        b.send_all(b"still open", _DATA_TIMEOUT)
        check(receive_exactly(a, 10) == b"still open", "the other direction stopped after send_eof()")


@failures_as_assertions
def check_stream_closing(make_pair: StreamPairFactory, *, close_ends_blocked_calls_within: float | None) -> None:
    """close() is idempotent, later calls raise ``OSError(EBADF)``, and it ends blocked calls.

    ``close_ends_blocked_calls_within``: the seconds within which a close
    from another thread must end a blocked ``recv`` and a blocked
    ``send_all`` with ``OSError(EBADF)``; :data:`None` skips that check
    (for a transport documented not to be woken, such as a pipe with no
    retry interval).

    Raises:
        AssertionError: a difference from the contract.
    """
    with make_pair() as (a, _b):
        with a:
            check(not a.is_closed(), "is_closed() is true before close()")
        check(a.is_closed(), "leaving the context did not close the transport")
        check_after_close(
            a,
            {
                "recv": lambda: a.recv(10, 1.0),
                "recv_into": lambda: a.recv_into(bytearray(10), 1.0),
                "send": lambda: a.send(b"x", 1.0),
                "send_all": lambda: a.send_all(b"x", 1.0),
                "send_all_from_iterable": lambda: a.send_all_from_iterable([b"x"], 1.0),
            },
        )
        a.send_eof()  # nothing once closed
    if close_ends_blocked_calls_within is None:
        return
    limit = close_ends_blocked_calls_within
    calls: dict[str, Callable[[StreamTransport], Any]] = {
        "recv": lambda transport: transport.recv(10, 60.0),
        "send_all": lambda transport: transport.send_all(bytes(_BLOCKING_SEND), 60.0),
    }
    for name, call in calls.items():
        with make_pair() as (a, _b):
            blocked = Background(partial(call, a), f"blocked-{name}")
            check(not blocked.finished_within(0.2), f"{name} did not block")
            started = time.monotonic()
            a.close()
            error = blocked.error(limit + _SLACK)
            took = elapsed(started)
            check(took < limit + _SLACK, f"{name} ended {took:.3f} s after close() from another thread")
            check(
                isinstance(error, OSError) and error.errno == errno.EBADF,
                f"{name} ended by a close from another thread raised {error!r}, not OSError(EBADF)",
            )


@failures_as_assertions
def check_stream_transport(
    make_pair: StreamPairFactory, *, half_close: bool, close_ends_blocked_calls_within: float | None = 1.0
) -> None:
    """Run every stream check on pairs from ``make_pair``.

    Parameters:
        make_pair: makes a connected pair (see :data:`StreamPairFactory`);
            called once per check.
        half_close: whether ``send_eof`` half-closes (else it must raise
            :exc:`~transports.abc.UnsupportedOperation`).
        close_ends_blocked_calls_within: see :func:`check_stream_closing`.

    Raises:
        AssertionError: the first difference from the contract, with what
            was expected and what happened.
    """
    check_stream_exchange(make_pair)
    check_stream_send_shapes(make_pair)
    check_stream_timeouts(make_pair)
    check_stream_end_of_stream(make_pair, half_close=half_close)
    check_stream_closing(make_pair, close_ends_blocked_calls_within=close_ends_blocked_calls_within)
    check_stream_bulk(make_pair)
