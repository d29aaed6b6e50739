"""Property-based checks, on real I/O, that data goes through whole or fails loudly.

Hypothesis draws the inputs; every exchange runs over real socketpairs,
loopback sockets, pipes and TLS. What is proved, for every input drawn:

- Chunk shapes: ``send_all_from_iterable`` (of a list or of a one-shot
  iterator), ``send_all`` and ``send`` deliver exactly the bytes of the
  chunks, in order, whatever their types (``bytes``, ``bytearray``,
  ``memoryview`` slices, ``array`` of wide items and views of it, casts,
  2-D views) and wherever empty chunks come, also past ``IOV_MAX`` chunks
  in one gather; the receiving side reads them with ``recv`` and
  ``recv_into`` of random sizes into buffers of random types and item
  formats, counting bytes (not items), writing nothing past the count,
  and losing nothing. On a Unix socketpair, loopback TCP,
  ``SSLStreamTransport``, ``TLSStreamTransport`` over a socket transport
  and over stapled pipes, and stapled pipes.
- Unusable buffers (not C-contiguous, not buffers at all, or read-only to
  receive into) raise ``TypeError`` at once: a receive takes nothing, and
  of a gather no more than a prefix of the good chunks before the bad one
  goes.
- Timeouts: any value is either valid (a real number, not negative, not
  NaN) and then behaves (``0`` and tiny ones raise ``TimeoutError`` with
  ``ETIMEDOUT`` when nothing is there, huge ones wait for late data, empty
  reads return at once), or is refused with ``ValueError`` (negative,
  NaN) or ``TypeError`` (not a number) at once, and the refused call
  neither reads nor sends a byte.
- Datagrams: packets of random sizes, types and contents arrive whole,
  one per ``recv``, in order on ``AF_UNIX``, nothing more.
- Descriptors (``SCM_RIGHTS``) over ``AF_UNIX`` stream and datagram
  transports: any set of open pipe ends, in one or several messages,
  arrives with the data, in order, as close-on-exec descriptors of the
  same files that work.
- Malformed control messages (not triples, wrong types, ints out of
  range, unknown ``SOL_SOCKET`` types, bad sizes, more than
  ``SCM_MAX_FD`` descriptors, invalid or closed descriptors, no byte to
  carry them on a stream) raise ``TypeError``, ``OverflowError``,
  ``ValueError`` or ``OSError`` with the system's errno, and the peer
  receives nothing of that call; what the system accepts instead (a level
  other than ``SOL_SOCKET``, a trailing part of an int) delivers the data
  and only whole descriptors, all of them closed.
- Cut control data (``MSG_CTRUNC``): a receive whose ancillary buffer is
  too small raises ``OSError(EMSGSIZE)`` naming the number of descriptors
  it closed, and leaves none open; one just big enough gets them all.
- No leak: every test ends with the descriptors it started with (and the
  ancillary ones check that after every example).

The number of examples each property ran is printed at the end of the run
("reliability figures"). Hypothesis runs derandomized and without its
example database, so every run (and CI) tries the same inputs.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import itertools
import math
import os
import random
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from functools import partial
from time import monotonic
from typing import Any, Literal, NamedTuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typing_extensions import Buffer

from transports.abc import BaseTransport, DatagramTransport, StreamTransport
from transports.socket import (
    SocketDatagramTransport,
    SocketStreamTransport,
    ancillary_space_for_fds,
    fds_message,
    read_fds,
)

StreamPair = tuple[StreamTransport, StreamTransport]
DatagramPair = tuple[DatagramTransport, DatagramTransport]
OpenStreamPair = Callable[[str], contextlib.AbstractContextManager[StreamPair]]
OpenDatagramPair = Callable[[str], contextlib.AbstractContextManager[DatagramPair]]
Figures = Callable[..., None]

# Every blocking call is bounded: a lost byte fails the example, never hangs it.
TIMEOUT = 5.0
# Timeouts up to this wait for nothing that is not there yet: TimeoutError.
SHORT = 0.02
# Timeouts from this up are given data that arrives LATE_BY seconds later.
LONG = 1.0
LATE_BY = 0.01
# A receive with a drawn timeout that still waits after this is stuck.
WATCHDOG = 2 * TIMEOUT
# A call refused for its arguments returns well within this.
AT_ONCE = 1.0

# Sender and receiver share one thread: all that one example sends must fit
# the kernel buffers (a pipe holds 64 KiB) before anything is read.
MAX_CHUNK = 2048
MAX_CHUNKS = 12
GATHER_LIMIT = 24 * 1024
IOV_MAX = 1024

Format = Literal["H", "h", "I", "i", "L", "q", "Q", "f", "d"]
WIDE_FORMATS: tuple[Format, ...] = ("H", "h", "I", "i", "L", "q", "Q", "f", "d")
GUARD = 0xA5
MARKER = b"\x00\xffend of example\xff\x00"

SCM_MAX_FD = 253  # Linux: the most descriptors one sendmsg() may pass
INT_SIZE = array.array("i").itemsize
FD_DIR = "/proc/self/fd"

pytestmark = pytest.mark.skipif(not os.path.isdir(FD_DIR), reason="counts descriptors in /proc/self/fd")


def bounded(examples: int) -> settings:
    """Hypothesis settings for I/O properties: a fixed budget, the same inputs on every run."""
    # deadline=None: a TLS example that meets a scheduler hiccup is slow, not wrong.
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None)


# ------------------------------------------------------------ descriptors --


def open_descriptors() -> dict[int, str]:
    """This process's open descriptors and what each refers to."""
    found: dict[int, str] = {}
    for name in os.listdir(FD_DIR):
        try:
            found[int(name)] = os.readlink(f"{FD_DIR}/{name}")
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            pass
    return found


def assert_same_descriptors(before: dict[int, str], after: dict[int, str]) -> None:
    leaked = {fd: target for fd, target in after.items() if before.get(fd) != target}
    lost = {fd: target for fd, target in before.items() if after.get(fd) != target}
    assert not leaked, f"descriptors left open: {leaked}"
    assert not lost, f"descriptors closed that were not ours: {lost}"


@contextlib.contextmanager
def no_descriptor_leak() -> Iterator[None]:
    """The block must close every descriptor it opens (checked only when it succeeds)."""
    before = open_descriptors()
    yield
    assert_same_descriptors(before, open_descriptors())


@contextlib.contextmanager
def pipe_pool(count: int) -> Iterator[list[tuple[int, int]]]:
    """``count`` pipes ``(read end, write end)`` to pass around, closed at the end."""
    pipes: list[tuple[int, int]] = []
    try:
        for _ in range(count):
            read_end, write_end = os.pipe()
            pipes.append((read_end, write_end))
            os.set_blocking(read_end, False)  # a missing byte must fail the read, not hang it
        yield pipes
    finally:
        for pipe in pipes:
            for fd in pipe:
                os.close(fd)


def identity(fd: int) -> tuple[int, int, int]:
    """What makes a descriptor the same open pipe end: device, inode, and direction."""
    status = os.fstat(fd)
    return status.st_dev, status.st_ino, fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE


def close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


# ---------------------------------------------------------------- buffers --


@st.composite
def buffers(draw: st.DrawFn, max_size: int = MAX_CHUNK) -> tuple[Buffer, bytes]:
    """A buffer of some type, item format and shape, and the bytes it holds."""
    raw = draw(st.binary(max_size=max_size))
    shape = draw(st.sampled_from(("bytes", "bytearray", "view slice", "array", "array view", "cast", "2-D")))
    if shape == "bytes":
        return raw, raw
    if shape == "bytearray":
        return bytearray(raw), raw
    if shape == "view slice":
        head, tail = draw(st.integers(0, 7)), draw(st.integers(0, 7))
        return memoryview(b"\xee" * head + raw + b"\xee" * tail)[head : head + len(raw)], raw
    if shape == "2-D":
        rows = draw(st.integers(1, 4))
        kept = raw[: len(raw) - len(raw) % rows]
        if not kept:  # a view with a zero in its shape cannot be made by a cast
            return memoryview(kept), kept
        return memoryview(kept).cast("B", (rows, len(kept) // rows)), kept
    fmt = draw(st.sampled_from(WIDE_FORMATS))
    width = array.array(fmt).itemsize
    kept = raw[: len(raw) - len(raw) % width]
    if shape == "array":
        return array.array(fmt, kept), kept
    if shape == "array view":
        items = len(kept) // width
        start = draw(st.integers(0, items))
        stop = draw(st.integers(start, items))
        return memoryview(array.array(fmt, kept))[start:stop], kept[start * width : stop * width]
    return memoryview(bytearray(kept)).cast(fmt), kept


READ_SHAPES = ("recv", "bytearray", "array", "cast", "view slice", "2-D")
ReadStep = tuple[str, int, Format]
read_steps = st.tuples(st.sampled_from(READ_SHAPES), st.integers(0, 4096), st.sampled_from(WIDE_FORMATS))


def destination(shape: str, size: int, fmt: Format) -> tuple[Buffer, memoryview, int, int]:
    """A writable buffer of about ``size`` bytes filled with GUARD: ``(buffer, all its bytes, start, nbytes)``.

    ``all its bytes`` covers guard bytes around the window for the "view
    slice" shape, to see that nothing is written outside it.
    """
    if shape in ("array", "cast"):
        width = array.array(fmt).itemsize
        nbytes = size // width * width
        if shape == "array":
            items = array.array(fmt, bytes([GUARD]) * nbytes)
            return items, memoryview(items).cast("B"), 0, nbytes
        backing = bytearray([GUARD]) * nbytes
        return memoryview(backing).cast(fmt), memoryview(backing), 0, nbytes
    if shape == "view slice":
        backing = bytearray([GUARD]) * (size + 16)
        return memoryview(backing)[8 : 8 + size], memoryview(backing), 8, size
    if shape == "2-D" and size >= 2:
        nbytes = size // 2 * 2
        backing = bytearray([GUARD]) * nbytes
        return memoryview(backing).cast("B", (2, nbytes // 2)), memoryview(backing), 0, nbytes
    backing = bytearray([GUARD]) * size
    return backing, memoryview(backing), 0, size


def read_once(transport: StreamTransport, step: ReadStep) -> bytes:
    """One ``recv``/``recv_into`` as ``step`` says, checked; the bytes it gave."""
    shape, size, fmt = step
    if shape == "recv":
        data = transport.recv(size, TIMEOUT)
        assert len(data) <= size
        assert data or not size, "recv() reported an end of stream that did not happen"
        return data
    buffer, whole, start, nbytes = destination(shape, size, fmt)
    count = transport.recv_into(buffer, TIMEOUT)
    assert 0 <= count <= nbytes, f"recv_into() returned {count} for {nbytes} bytes of {shape} {fmt}"
    assert count or not nbytes, "recv_into() reported an end of stream that did not happen"
    guard = GUARD.to_bytes(1, sys.byteorder)
    assert whole[:start] == guard * start, "recv_into() wrote before its buffer"
    untouched = len(whole) - start - count
    assert whole[start + count :] == guard * untouched, "recv_into() wrote past the count it returned"
    return bytes(whole[start : start + count])


def receive_with_plan(transport: StreamTransport, plan: list[ReadStep], expected: bytes) -> None:
    """Read ``expected`` following ``plan`` round and round; then nothing more must be there."""
    received = 0
    idle = 0
    for step in itertools.cycle(plan):
        if received == len(expected):
            break
        if idle > len(plan):  # a plan of empty reads only: finish with plain reads
            step = ("recv", 65536, "H")
        piece = read_once(transport, step)
        assert piece == expected[received : received + len(piece)], f"wrong bytes at offset {received}"
        received += len(piece)
        idle = 0 if piece else idle + 1
    assert_nothing_pending(transport)


def receive_exactly(transport: StreamTransport, nbytes: int) -> bytes:
    data = bytearray()
    while len(data) < nbytes:
        piece = transport.recv(nbytes - len(data), TIMEOUT)
        assert piece, "end of stream before all the bytes came"
        data += piece
    return bytes(data)


def assert_nothing_pending(transport: StreamTransport) -> None:
    with pytest.raises(TimeoutError):
        transport.recv(1, 0)


def send_piecewise(transport: StreamTransport, chunk: Buffer) -> None:
    """``send`` the chunk itself, then the rest as byte slices, checking every count."""
    whole = memoryview(chunk).cast("B")
    done = 0
    sent = transport.send(chunk, TIMEOUT)  # counts bytes, whatever the item format
    while True:
        assert 0 <= sent <= len(whole) - done, f"send() returned {sent} with {len(whole) - done} bytes to go"
        done += sent
        if done == len(whole):
            return
        assert sent, "send() returned 0 for data it had room for"
        sent = transport.send(whole[done:], TIMEOUT)


# --------------------------------------------------------- chunk shapes --

CHUNK_KINDS = [
    "Unix stream",
    "TCP over IPv4",
    "SSLStreamTransport over Unix",
    "TLSStreamTransport over a socket",
    "TLSStreamTransport over stapled pipes",
    "stapled pipes",
]
SEND_WAYS = ("gather list", "gather one-shot iterator", "send_all each", "send each")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", CHUNK_KINDS)
def test_chunks_arrive_whole_and_in_order(kind: str, open_stream_pair: OpenStreamPair, figures: Figures) -> None:
    examples = chunk_count = byte_count = biggest_gather = 0
    with no_descriptor_leak(), open_stream_pair(kind) as pair:

        @bounded(40)
        @given(
            drawn=st.lists(buffers(), max_size=MAX_CHUNKS),
            repeat=st.sampled_from((1, 1, 1, 2, 3 * IOV_MAX)),
            way=st.sampled_from(SEND_WAYS),
            plan=st.lists(read_steps, min_size=1, max_size=6),
            backwards=st.booleans(),
        )
        # Always at least one gather of more chunks than a system call takes.
        @example(
            drawn=[(memoryview(array.array("I", [1, 2])), bytes(array.array("I", [1, 2]))), (b"", b"")],
            repeat=3 * IOV_MAX,
            way="gather list",
            plan=[("recv", 4096, "H")],
            backwards=False,
        )
        def exchange(
            drawn: list[tuple[Buffer, bytes]], repeat: int, way: str, plan: list[ReadStep], backwards: bool
        ) -> None:
            nonlocal examples, chunk_count, byte_count, biggest_gather
            examples += 1
            sender, receiver = reversed(pair) if backwards else pair
            total = sum(len(raw) for _, raw in drawn)
            # The same chunk objects again and again: a gather of more than
            # IOV_MAX buffers when the chunks are small, within what fits.
            repeat = max(1, min(repeat, GATHER_LIMIT // max(total, 1))) if way.startswith("gather") else 1
            chunks = [chunk for chunk, _ in drawn] * repeat
            expected = b"".join(raw for _, raw in drawn) * repeat
            if way == "gather list":
                sender.send_all_from_iterable(chunks, TIMEOUT)
            elif way == "gather one-shot iterator":
                sender.send_all_from_iterable(iter(chunks), TIMEOUT)
            elif way == "send_all each":
                for chunk in chunks:
                    sender.send_all(chunk, TIMEOUT)
            else:
                for chunk in chunks:
                    send_piecewise(sender, chunk)
            receive_with_plan(receiver, plan, expected)
            chunk_count += len(chunks)
            byte_count += len(expected)
            biggest_gather = max(biggest_gather, len(chunks))

        exchange()
    assert biggest_gather > IOV_MAX, "no example gathered more chunks than one system call takes"
    figures(examples=examples, chunks=chunk_count, bytes=byte_count, biggest_gather=biggest_gather)


@st.composite
def unusable_buffers(draw: st.DrawFn, *, writable: bool) -> object:
    """Something that is not a C-contiguous buffer, or, to receive into, not a writable one."""
    raw = draw(st.binary(min_size=4, max_size=64))
    step = draw(st.integers(2, 3))  # at least two items apart: a view of one item is contiguous
    choices: list[object] = [
        memoryview(bytearray(raw))[::step],  # not contiguous
        raw.decode("latin-1"),
        len(raw),
        None,
        list(raw),
    ]
    if writable:
        choices += [raw, memoryview(raw), memoryview(bytearray(raw)).toreadonly()]
    return choices[draw(st.integers(0, len(choices) - 1))]  # (sampled_from would hash them)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", CHUNK_KINDS)
def test_unusable_buffers_fail_with_type_error_and_lose_nothing(
    kind: str, open_stream_pair: OpenStreamPair, figures: Figures
) -> None:
    tally = {"examples": 0, "sends": 0, "receives": 0}
    with no_descriptor_leak(), open_stream_pair(kind) as pair:

        @bounded(30)
        @given(
            before=st.lists(buffers(max_size=256), max_size=4),
            bad=unusable_buffers(writable=False),
            bad_destination=unusable_buffers(writable=True),
            after=st.lists(buffers(max_size=256), max_size=4),
            way=st.sampled_from(("gather", "send_all", "send")) | st.just("recv_into"),
            pending=st.booleans(),
            backwards=st.booleans(),
        )
        def misuse(
            before: list[tuple[Buffer, bytes]],
            bad: Any,
            bad_destination: Any,
            after: list[tuple[Buffer, bytes]],
            way: str,
            pending: bool,
            backwards: bool,
        ) -> None:
            tally["examples"] += 1
            sender, receiver = reversed(pair) if backwards else pair
            if way == "recv_into":
                payload = b"".join(raw for _, raw in before) or b"payload"
                if pending:
                    sender.send_all(payload, TIMEOUT)
                start = monotonic()
                with guarded(receiver), pytest.raises(TypeError):
                    receiver.recv_into(bad_destination, TIMEOUT)
                assert monotonic() - start < AT_ONCE, "refused only after a wait"
                if pending:  # the refused call took nothing
                    assert receive_exactly(receiver, len(payload)) == payload
                assert_nothing_pending(receiver)
                tally["receives"] += 1
                return
            if way == "gather":
                chunks = [*(chunk for chunk, _ in before), bad, *(chunk for chunk, _ in after)]
                with pytest.raises(TypeError):
                    sender.send_all_from_iterable(chunks, TIMEOUT)
            elif way == "send_all":
                with pytest.raises(TypeError):
                    sender.send_all(bad, TIMEOUT)
            else:
                with pytest.raises(TypeError):
                    sender.send(bad, TIMEOUT)
            # No telling how much of a failed send went, but only the good
            # chunks before the bad one may have: what came before the marker
            # sent next is a prefix of theirs (on TCP it may still be on its way).
            good = b"".join(raw for _, raw in before) if way == "gather" else b""
            sender.send_all(MARKER, TIMEOUT)
            arrived = bytearray()
            while not arrived.endswith(MARKER):
                piece = receiver.recv(65536, TIMEOUT)
                assert piece, "end of stream before the marker came"
                arrived += piece
            assert good.startswith(arrived[: -len(MARKER)])
            assert_nothing_pending(receiver)
            tally["sends"] += 1

        misuse()
    figures(**tally)


# --------------------------------------------------------------- timeouts --

# Valid timeouts: real numbers, not negative, not NaN, with their edges.
# Integers stay within the range of a float, which every deadline is.
valid_timeouts = st.one_of(
    st.floats(min_value=0.0, max_value=SHORT),
    st.floats(min_value=0.0, allow_infinity=True),
    st.sampled_from([0, 0.0, -0.0, 5e-324, math.inf, sys.float_info.max, 1e300, 10**30, True, False]),
    st.integers(min_value=0, max_value=10**30),
    st.fractions(min_value=0, max_value=10**6, max_denominator=10**6),
)
# Refused ones: negative or NaN numbers, and things that are not numbers.
refused_timeouts = st.one_of(
    st.floats(max_value=-5e-324, allow_infinity=True),
    st.sampled_from([math.nan, -math.nan, -math.inf, -5e-324, -1, -(10**30)]),
    st.integers(min_value=-(10**30), max_value=-1),
    st.fractions(max_value=Fraction(-1, 10**6), min_value=-(10**6), max_denominator=10**6),
    st.none(),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.complex_numbers(max_magnitude=10.0),
    st.lists(st.floats(), max_size=1),
    st.builds(object),
)
timeouts = st.one_of(valid_timeouts, refused_timeouts)


def refusal_of(timeout: object) -> type[Exception] | None:
    """What the contract says a call given ``timeout`` raises before any I/O (None: nothing)."""
    if isinstance(timeout, (int, float, Fraction)):  # bool is an int: 0 or 1 second
        return ValueError if timeout != timeout or timeout < 0 else None
    return TypeError


class Wait(NamedTuple):
    """How a valid timeout is put to the test."""

    pending: bool  # the data is there before the call
    late: bool  # the data comes LATE_BY seconds into the call


def plan_wait(timeout: object, pending: bool) -> Wait:
    seconds = float(timeout)  # type: ignore[arg-type]  # a valid timeout is a real number
    if pending or SHORT < seconds < LONG:  # too short to wait for late data, too long to time out quickly
        return Wait(pending=True, late=False)
    return Wait(pending=False, late=seconds >= LONG)


@contextlib.contextmanager
def guarded(receiver: BaseTransport, late: Callable[[], object] | None = None) -> Iterator[None]:
    """Bound a receive made with a drawn timeout, which may be infinite.

    ``late`` runs in a thread LATE_BY seconds in. A receive still waiting
    WATCHDOG seconds in has ignored its data or its timeout: the receiver is
    closed under it (which ends it, by the contract), so that the example
    fails instead of hanging the run.
    """
    overdue: list[bool] = []

    def rescue() -> None:
        overdue.append(True)
        receiver.close()

    timers = [threading.Timer(WATCHDOG, rescue)]
    if late is not None:
        timers.append(threading.Timer(LATE_BY, late))
    for timer in timers:
        timer.start()
    try:
        yield
    finally:
        for timer in timers:
            timer.cancel()
            timer.join(TIMEOUT)
        if overdue:
            raise AssertionError(f"a receive was still waiting after {WATCHDOG} s; its transport was closed")


STREAM_TIMEOUT_KINDS = [
    "Unix stream",
    "SSLStreamTransport over Unix",
    "TLSStreamTransport over a socket",
    "stapled pipes",
]
STREAM_RECEIVES = ("recv", "recv_into")
STREAM_SENDS = ("send", "send_all", "send_all_from_iterable")
UNIX_STREAM_RECEIVES = ("recv_with_ancillary", "recv_with_ancillary_into")
UNIX_STREAM_SENDS = ("send_all_with_ancillary",)


def stream_receive(transport: StreamTransport, operation: str, size: int, ancillary_size: int, timeout: Any) -> bytes:
    """Run one receive of ``operation``; the bytes it gave."""
    if operation == "recv":
        return transport.recv(size, timeout)
    if operation == "recv_with_ancillary":
        data, ancillary = transport.recv_with_ancillary(size, ancillary_size, timeout)
        assert ancillary == []
        return bytes(data)
    buffer = bytearray(max(size, 0))
    if operation == "recv_into":
        count = transport.recv_into(buffer, timeout)
    else:
        count, ancillary = transport.recv_with_ancillary_into(buffer, ancillary_size, timeout)
        assert ancillary == []
    assert 0 <= count <= len(buffer)
    return bytes(buffer[:count])


def stream_send(transport: StreamTransport, operation: str, payload: bytes, timeout: Any) -> bytes:
    """Run one send of ``operation``; the bytes it says it sent."""
    if operation == "send":
        count = transport.send(payload, timeout)
        assert 0 <= count <= len(payload)
        return payload[:count]
    if operation == "send_all":
        transport.send_all(payload, timeout)
    else:
        middle = len(payload) // 2
        chunks: list[Buffer] = [payload[:middle], b"", memoryview(payload)[middle:]]
        if operation == "send_all_from_iterable":
            transport.send_all_from_iterable(chunks, timeout)
        else:
            transport.send_all_with_ancillary(chunks, [], timeout)
    return payload


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", STREAM_TIMEOUT_KINDS)
def test_stream_timeouts_are_kept_or_refused_before_any_io(
    kind: str, open_stream_pair: OpenStreamPair, figures: Figures
) -> None:
    tally = {"examples": 0, "refused": 0, "timed_out": 0, "late_data": 0, "data": 0}
    receive_operations: tuple[str, ...] = STREAM_RECEIVES
    send_operations: tuple[str, ...] = STREAM_SENDS
    if kind == "Unix stream":
        receive_operations += UNIX_STREAM_RECEIVES
        send_operations += UNIX_STREAM_SENDS
    with no_descriptor_leak(), open_stream_pair(kind) as pair:

        @bounded(50)
        @given(
            timeout=timeouts,
            operation=st.sampled_from(receive_operations) | st.sampled_from(send_operations),
            payload=st.binary(min_size=1, max_size=64),
            size=st.integers(-2, 96),
            ancillary_size=st.integers(-2, 64),
            pending=st.booleans(),
            backwards=st.booleans(),
        )
        # Each way a valid timeout is met, at least once: nothing there, late data.
        @example(timeout=0, operation="recv", payload=b"x", size=1, ancillary_size=0, pending=False, backwards=False)
        @example(
            timeout=math.inf, operation="recv", payload=b"x", size=9, ancillary_size=0, pending=False, backwards=True
        )
        @example(
            timeout=1e300,
            operation="recv_into",
            payload=b"xy",
            size=1,
            ancillary_size=0,
            pending=False,
            backwards=False,
        )
        def call(
            timeout: Any, operation: str, payload: bytes, size: int, ancillary_size: int, pending: bool, backwards: bool
        ) -> None:
            tally["examples"] += 1
            sender, receiver = reversed(pair) if backwards else pair
            refusals: set[type[Exception]] = set()
            refusal = refusal_of(timeout)
            if refusal is not None:
                refusals.add(refusal)
            receives = operation in STREAM_RECEIVES + UNIX_STREAM_RECEIVES
            if receives and size < 0 and operation in ("recv", "recv_with_ancillary"):
                refusals.add(ValueError)
            elif operation == "recv_into":
                size = max(size, 0)  # a buffer, not a size: an empty one at most
            elif operation in UNIX_STREAM_RECEIVES:
                # Only recv() and recv_into() promise to return at once for an
                # empty read; an ancillary receive of no byte waits for data.
                size = max(size, 1)
            if receives and ancillary_size < 0:
                if operation in UNIX_STREAM_RECEIVES:
                    refusals.add(ValueError)
                else:
                    ancillary_size = 0

            if refusals:
                if receives and pending:
                    sender.send_all(payload, TIMEOUT)
                attempt = (
                    partial(stream_receive, receiver, operation, size, ancillary_size, timeout)
                    if receives
                    else partial(stream_send, sender, operation, payload, timeout)
                )
                start = monotonic()
                with pytest.raises(tuple(refusals)):
                    attempt()
                assert monotonic() - start < AT_ONCE
                if receives and pending:  # the refused call took nothing
                    assert receive_exactly(receiver, len(payload)) == payload
                assert_nothing_pending(receiver)  # and a refused send sent nothing
                tally["refused"] += 1
                return

            if not receives:
                expected = stream_send(sender, operation, payload, timeout)
                assert receive_exactly(receiver, len(expected)) == expected
                assert_nothing_pending(receiver)
                tally["data"] += 1
                return

            if size == 0:  # an empty read returns at once, whatever the timeout
                start = monotonic()
                with guarded(receiver):
                    assert stream_receive(receiver, operation, size, ancillary_size, timeout) == b""
                assert monotonic() - start < AT_ONCE
                assert_nothing_pending(receiver)
                tally["data"] += 1
                return
            wait = plan_wait(timeout, pending)
            if wait.pending:
                sender.send_all(payload, TIMEOUT)
            elif not wait.late:
                start = monotonic()
                with guarded(receiver), pytest.raises(TimeoutError) as caught:
                    stream_receive(receiver, operation, size, ancillary_size, timeout)
                assert caught.value.errno == errno.ETIMEDOUT
                assert monotonic() - start < float(timeout) + AT_ONCE
                tally["timed_out"] += 1
                return
            with guarded(receiver, partial(sender.send_all, payload, TIMEOUT) if wait.late else None):
                first = stream_receive(receiver, operation, size, ancillary_size, timeout)
            assert first, "a valid timeout gave an end of stream"
            assert payload.startswith(first)
            assert first + receive_exactly(receiver, len(payload) - len(first)) == payload
            assert_nothing_pending(receiver)
            tally["late_data" if wait.late else "data"] += 1

        call()
    figures(**tally)


DATAGRAM_TIMEOUT_KINDS = ["Unix datagram", "UDP over IPv4"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", DATAGRAM_TIMEOUT_KINDS)
def test_datagram_timeouts_are_kept_or_refused_before_any_io(
    kind: str, open_datagram_pair: OpenDatagramPair, figures: Figures
) -> None:
    tally = {"examples": 0, "refused": 0, "timed_out": 0, "late_data": 0, "data": 0}
    with no_descriptor_leak(), open_datagram_pair(kind) as pair:

        def receive(transport: DatagramTransport, operation: str, ancillary_size: int, timeout: Any) -> bytes:
            if operation == "recv":
                return transport.recv(timeout)
            data, ancillary = transport.recv_with_ancillary(ancillary_size, timeout)
            assert ancillary == []
            return bytes(data)

        def send(transport: DatagramTransport, operation: str, payload: bytes, timeout: Any) -> None:
            if operation == "send":
                transport.send(payload, timeout)
            else:
                transport.send_with_ancillary(payload, [], timeout)

        def assert_no_packet(transport: DatagramTransport) -> None:
            with pytest.raises(TimeoutError):
                transport.recv(0)

        @bounded(50)
        @given(
            timeout=timeouts,
            operation=st.sampled_from(("recv", "recv_with_ancillary"))
            | st.sampled_from(("send", "send_with_ancillary")),
            payload=st.binary(max_size=64),
            ancillary_size=st.integers(-2, 64),
            pending=st.booleans(),
            backwards=st.booleans(),
        )
        # Each way a valid timeout is met, at least once: nothing there, late data.
        @example(timeout=0, operation="recv", payload=b"x", ancillary_size=0, pending=False, backwards=False)
        @example(timeout=math.inf, operation="recv", payload=b"x", ancillary_size=0, pending=False, backwards=True)
        @example(
            timeout=10**30,
            operation="recv_with_ancillary",
            payload=b"",
            ancillary_size=0,
            pending=False,
            backwards=False,
        )
        def call(
            timeout: Any, operation: str, payload: bytes, ancillary_size: int, pending: bool, backwards: bool
        ) -> None:
            tally["examples"] += 1
            sender, receiver = reversed(pair) if backwards else pair
            receives = operation.startswith("recv")
            refusals: set[type[Exception]] = set()
            refusal = refusal_of(timeout)
            if refusal is not None:
                refusals.add(refusal)
            if operation == "recv_with_ancillary" and ancillary_size < 0:
                refusals.add(ValueError)

            if refusals:
                if receives and pending:
                    sender.send(payload, TIMEOUT)
                attempt = (
                    partial(receive, receiver, operation, ancillary_size, timeout)
                    if receives
                    else partial(send, sender, operation, payload, timeout)
                )
                start = monotonic()
                with pytest.raises(tuple(refusals)):
                    attempt()
                assert monotonic() - start < AT_ONCE
                if receives and pending:  # the packet is still there, whole
                    assert receiver.recv(TIMEOUT) == payload
                assert_no_packet(receiver)
                tally["refused"] += 1
                return

            if not receives:
                send(sender, operation, payload, timeout)
                assert receiver.recv(TIMEOUT) == payload
                assert_no_packet(receiver)
                tally["data"] += 1
                return
            wait = plan_wait(timeout, pending)
            if wait.pending:
                sender.send(payload, TIMEOUT)
            elif not wait.late:
                start = monotonic()
                with guarded(receiver), pytest.raises(TimeoutError) as caught:
                    receive(receiver, operation, ancillary_size, timeout)
                assert caught.value.errno == errno.ETIMEDOUT
                assert monotonic() - start < float(timeout) + AT_ONCE
                tally["timed_out"] += 1
                return
            with guarded(receiver, partial(sender.send, payload, TIMEOUT) if wait.late else None):
                assert receive(receiver, operation, ancillary_size, timeout) == payload
            assert_no_packet(receiver)
            tally["late_data" if wait.late else "data"] += 1

        call()
    figures(**tally)


# -------------------------------------------------------------- datagrams --

# What one batch sends before anything is read: it fits the sender's buffer
# (212992 bytes by default, counted with overheads). The batch of 8 packets at
# most stays within the receive queue of an AF_UNIX datagram socket (10).
BATCH_LIMIT = 100_000

# kind: (largest packet drawn, order kept). UDP does not promise order, even
# on loopback; its packets stay small so that none is dropped for room.
DATAGRAM_KINDS = {
    "Unix datagram": (60_000, True),
    "stapled datagram pairs": (60_000, True),
    "UDP over IPv4": (4096, False),
}


@st.composite
def packets(draw: st.DrawFn, largest: int) -> tuple[Buffer, bytes]:
    """A packet: a buffer of some shape, now and then a large one of random bytes."""
    if draw(st.integers(0, 9)) == 0:
        raw = random.Random(draw(st.integers(0, 2**32))).randbytes(draw(st.integers(0, largest)))
        return memoryview(raw), raw
    return draw(buffers(max_size=min(largest, MAX_CHUNK)))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", list(DATAGRAM_KINDS))
def test_packets_keep_their_boundaries(kind: str, open_datagram_pair: OpenDatagramPair, figures: Figures) -> None:
    largest, ordered = DATAGRAM_KINDS[kind]
    examples = packet_count = byte_count = 0
    with no_descriptor_leak(), open_datagram_pair(kind) as pair:

        @bounded(40)
        @given(
            batch=st.lists(packets(largest), min_size=1, max_size=8),
            with_ancillary=st.lists(st.booleans(), min_size=8, max_size=8),
            backwards=st.booleans(),
        )
        def exchange(batch: list[tuple[Buffer, bytes]], with_ancillary: list[bool], backwards: bool) -> None:
            nonlocal examples, packet_count, byte_count
            examples += 1
            sender, receiver = reversed(pair) if backwards else pair
            sizes = itertools.accumulate(len(raw) for _, raw in batch)
            batch = [packet for packet, size in zip(batch, sizes, strict=True) if size <= BATCH_LIMIT] or batch[:1]
            for (packet, _), ancillary in zip(batch, with_ancillary, strict=False):
                if ancillary:
                    sender.send_with_ancillary(packet, [], TIMEOUT)
                else:
                    sender.send(packet, TIMEOUT)
            received: list[bytes] = []
            for ancillary in with_ancillary[: len(batch)]:
                if ancillary:
                    data, control = receiver.recv_with_ancillary(64, TIMEOUT)
                    assert control == []
                    received.append(bytes(data))
                else:
                    received.append(receiver.recv(TIMEOUT))
            with pytest.raises(TimeoutError):  # nothing more: no packet split or doubled
                receiver.recv(0)
            sent = [raw for _, raw in batch]
            if ordered:
                assert received == sent
            else:
                assert sorted(received) == sorted(sent)
            packet_count += len(batch)
            byte_count += sum(map(len, sent))

        exchange()
    figures(examples=examples, packets=packet_count, bytes=byte_count)


# ------------------------------------------------------ ancillary data --


class UnixEnds:
    """An AF_UNIX pair of either kind behind one interface, for the ancillary properties."""

    def __init__(self, sender: object, receiver: object) -> None:
        self.streams: tuple[SocketStreamTransport, SocketStreamTransport] | None = None
        self.datagrams: tuple[SocketDatagramTransport, SocketDatagramTransport] | None = None
        if isinstance(sender, SocketStreamTransport) and isinstance(receiver, SocketStreamTransport):
            self.streams = sender, receiver
        elif isinstance(sender, SocketDatagramTransport) and isinstance(receiver, SocketDatagramTransport):
            self.datagrams = sender, receiver
        else:
            raise AssertionError(f"not a pair of socket transports: {sender!r}, {receiver!r}")
        self.stream = self.streams is not None

    def send(self, chunks: list[bytes], ancillary: Any) -> None:
        if self.streams is not None:
            self.streams[0].send_all_with_ancillary(chunks, ancillary, TIMEOUT)
        else:
            assert self.datagrams is not None
            self.datagrams[0].send_with_ancillary(b"".join(chunks), ancillary, TIMEOUT)

    def receive(self, nbytes: int, ancillary_size: int, *, into: bool = False) -> tuple[bytes, list[int]]:
        """The next ``nbytes`` bytes (on a stream) or packet, and the descriptors that came with them.

        A receive that fails leaves nothing open: the transport closes what
        it received (MSG_CTRUNC), and so does this when a check fails.
        """
        fds: list[int] = []
        try:
            if self.streams is None:
                assert self.datagrams is not None
                data, ancillary = self.datagrams[1].recv_with_ancillary(ancillary_size, TIMEOUT)
                fds += read_fds(ancillary)
                return data, fds
            receiver = self.streams[1]
            received = bytearray()
            while True:
                if into:  # a buffer of 4-byte items: the count is in bytes
                    items = array.array("I", bytes(4 * (max(nbytes - len(received), 1) // 4 + 2)))
                    count, ancillary = receiver.recv_with_ancillary_into(items, ancillary_size, TIMEOUT)
                    assert 0 <= count <= len(items) * items.itemsize
                    piece = items.tobytes()[:count]
                else:
                    piece, ancillary = receiver.recv_with_ancillary(4096, ancillary_size, TIMEOUT)
                fds += read_fds(ancillary)
                assert piece, "end of stream before all the bytes came"
                received += piece
                if len(received) >= nbytes:
                    return bytes(received), fds
        except BaseException:
            close_all(fds)
            raise

    def assert_nothing_pending(self) -> None:
        if self.streams is not None:
            with pytest.raises(TimeoutError):
                self.streams[1].recv_with_ancillary(1, 4096, 0)
        else:
            assert self.datagrams is not None
            with pytest.raises(TimeoutError):
                self.datagrams[1].recv_with_ancillary(4096, 0)


@contextlib.contextmanager
def unix_ends(
    socket_type: str, open_stream_pair: OpenStreamPair, open_datagram_pair: OpenDatagramPair
) -> Iterator[UnixEnds]:
    if socket_type == "stream":
        with open_stream_pair("Unix stream") as (a, b):
            yield UnixEnds(a, b)
    else:
        with open_datagram_pair("Unix datagram") as (c, d):
            yield UnixEnds(c, d)


def check_passed(received: list[int], sent: list[int]) -> None:
    """The received descriptors are new ones, close-on-exec, for the same pipe ends in the same order."""
    assert len(received) == len(sent), f"{len(sent)} descriptors sent, {len(received)} received"
    for new, old in zip(received, sent, strict=True):
        assert new not in sent
        assert not os.get_inheritable(new)  # MSG_CMSG_CLOEXEC
        assert identity(new) == identity(old)


def check_usable(received: list[int], pipes: list[tuple[int, int]]) -> None:
    """Write through every received write end; the bytes come out of the pipe's read end."""
    write_ends = {identity(write_end): read_end for read_end, write_end in pipes}
    written: dict[int, int] = {}
    for fd in received:
        read_end = write_ends.get(identity(fd))
        if read_end is not None:
            os.write(fd, b"w")
            written[read_end] = written.get(read_end, 0) + 1
    for read_end, count in written.items():
        assert os.read(read_end, 1000) == b"w" * count


SOCKET_TYPES = ["stream", "datagram"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("socket_type", SOCKET_TYPES)
def test_passed_descriptors_arrive_usable_and_are_closed(
    socket_type: str, open_stream_pair: OpenStreamPair, open_datagram_pair: OpenDatagramPair, figures: Figures
) -> None:
    examples = passed = most = 0
    with (
        no_descriptor_leak(),
        pipe_pool(4) as pipes,
        unix_ends(socket_type, open_stream_pair, open_datagram_pair) as ends,
    ):
        pool = [fd for pipe in pipes for fd in pipe]

        @bounded(40)
        @given(
            messages=st.lists(st.lists(st.sampled_from(pool), max_size=SCM_MAX_FD // 3), max_size=3),
            chunks=st.lists(st.binary(max_size=300), max_size=4),
            spare=st.integers(0, 64),
            into=st.booleans(),
        )
        @example(messages=[pool * 31, pool[:5]], chunks=[b"the most at once"], spare=0, into=False)
        def exchange(messages: list[list[int]], chunks: list[bytes], spare: int, into: bool) -> None:
            nonlocal examples, passed, most
            examples += 1
            if ends.stream and not any(chunks):
                chunks = [*chunks, b"!"]  # a stream carries control data only with bytes
            sent = [fd for message in messages for fd in message]
            before = open_descriptors()
            ends.send(chunks, [fds_message(message) for message in messages])
            payload = b"".join(chunks)
            data, received = ends.receive(len(payload), ancillary_space_for_fds(len(sent)) + spare, into=into)
            try:
                assert data == payload
                check_passed(received, sent)
                check_usable(received, pipes)
            finally:
                close_all(received)
            ends.assert_nothing_pending()
            assert_same_descriptors(before, open_descriptors())
            passed += len(received)
            most = max(most, len(received))

        exchange()
    figures(examples=examples, descriptors_passed=passed, most_in_one_call=most)


class Malformed(NamedTuple):
    """A bad control message (or a bad ancillary argument as a whole), and what it must do."""

    label: str
    items: list[Any] | None  # to put among good messages; None: ``whole`` is the argument
    whole: Any
    refusals: tuple[type[Exception], ...]
    errnos: frozenset[int]  # that an OSError may carry
    accepted_fds: list[int] | None  # None: must be refused; else the system may take it, and then these go


SOL, RIGHTS, CREDENTIALS = socket.SOL_SOCKET, socket.SCM_RIGHTS, socket.SCM_CREDENTIALS
EINVAL, EBADF = frozenset({errno.EINVAL}), frozenset({errno.EBADF})
NO_BYTE = "no byte to carry it"


def refused(label: str, items: list[Any], refusal: type[Exception], errnos: frozenset[int] = frozenset()) -> Malformed:
    return Malformed(label, items, None, (refusal,), errnos, None)


def not_iterable(value: Any) -> Malformed:
    return Malformed("not an iterable of messages", None, value, (TypeError,), frozenset(), None)


def not_a_triple(item: Any) -> Malformed:
    return refused("not a (level, type, data) triple", [item], TypeError)


def not_an_int(value: Any, other: int, swap: bool) -> Malformed:
    return refused(
        "a level or type that is not an int", [(other, value, b"") if swap else (value, other, b"")], TypeError
    )


def out_of_range(value: int, other: int, swap: bool) -> Malformed:
    item = (other, value, b"") if swap else (value, other, b"")
    return refused("a level or type out of C int range", [item], OverflowError)


def not_a_buffer(data: Any) -> Malformed:
    return refused("data that is not a buffer", [(SOL, RIGHTS, data)], TypeError)


def unknown_type(kind: int, data: bytes) -> Malformed:
    return refused("an unknown SOL_SOCKET type", [(SOL, kind, data)], OSError, EINVAL)


def credentials_size(data: bytes) -> Malformed:
    return refused("SCM_CREDENTIALS of the wrong size", [(SOL, CREDENTIALS, data)], OSError, EINVAL)


def too_many(pool: list[int], count: int, split: int) -> Malformed:
    fds = [pool[i % len(pool)] for i in range(count)]
    items = [fds_message(fds[:split]), fds_message(fds[split:])]  # one message or two: the total counts
    return refused("more than SCM_MAX_FD descriptors", items, OSError, EINVAL)


def invalid_fd(good: list[int], bad: int, more: list[int]) -> Malformed:
    return refused("an invalid descriptor", [fds_message([*good, bad, *more])], OSError, EBADF)


def cut_int(fds: list[int], junk: bytes) -> Malformed:
    data = array.array("i", fds).tobytes() + junk
    label = "SCM_RIGHTS data not a whole number of ints"
    return Malformed(label, [(SOL, RIGHTS, data)], None, (OSError,), EINVAL, fds)


def foreign_level(level: int, kind: int, data: bytes) -> Malformed:
    return Malformed("a level other than SOL_SOCKET", [(level, kind, data)], None, (OSError,), EINVAL, [])


def no_byte(pool: list[int]) -> Malformed:
    return refused(NO_BYTE, [fds_message(pool[:1])], ValueError)


def malformed_messages(pool: list[int], closed: int, stream: bool) -> st.SearchStrategy[Malformed]:
    """Every kind of bad ancillary argument, around the open descriptors of ``pool``."""
    c_int = st.integers(-(2**31), 2**31 - 1)
    some_fds = st.lists(st.sampled_from(pool), max_size=8)
    cases = [
        st.builds(not_iterable, st.one_of(st.none(), st.integers(), st.floats())),
        st.builds(
            not_a_triple,
            st.one_of(
                st.binary(max_size=4),
                st.none(),
                st.integers(),
                st.tuples(c_int, c_int),
                st.tuples(c_int, c_int, st.binary(max_size=4), c_int),
            ),
        ),
        st.builds(
            not_an_int,
            st.one_of(st.text(max_size=2), st.floats(), st.none(), st.binary(max_size=2)),
            c_int,
            st.booleans(),
        ),
        st.builds(
            out_of_range, st.integers(min_value=2**31) | st.integers(max_value=-(2**31) - 1), c_int, st.booleans()
        ),
        st.builds(
            not_a_buffer,
            st.one_of(st.text(min_size=1, max_size=4), st.integers(), st.none(), st.lists(st.integers(0, 255))),
        ),
        st.builds(unknown_type, c_int.filter(lambda kind: kind not in (RIGHTS, CREDENTIALS)), st.binary(max_size=16)),
        st.builds(credentials_size, st.binary(max_size=32).filter(lambda data: len(data) != 12)),
        st.builds(too_many, st.just(pool), st.integers(SCM_MAX_FD + 1, 4 * SCM_MAX_FD), st.integers(0, SCM_MAX_FD)),
        st.builds(
            invalid_fd,
            some_fds,
            st.one_of(st.integers(-(2**31), -1), st.integers(2**30, 2**31 - 1), st.just(closed)),
            some_fds,
        ),
        st.builds(cut_int, some_fds, st.binary(min_size=1, max_size=INT_SIZE - 1)),
        st.builds(foreign_level, c_int.filter(lambda level: level != SOL), c_int, st.binary(max_size=16)),
    ]
    if stream:
        cases.append(st.just(no_byte(pool)))
    return st.one_of(cases)


def typical_malformed(pool: list[int], closed: int, stream: bool) -> list[Malformed]:
    """One plain case of every kind above, so that each kind runs whatever hypothesis draws."""
    cases = [
        not_iterable(5),
        not_a_triple((SOL, RIGHTS)),
        not_an_int("1", RIGHTS, swap=False),
        out_of_range(2**31, SOL, swap=True),
        not_a_buffer("fd"),
        unknown_type(3, bytes(4)),
        credentials_size(bytes(8)),
        too_many(pool, SCM_MAX_FD + 1, SCM_MAX_FD + 1),
        invalid_fd(pool[:1], -1, []),
        invalid_fd([], closed, pool[:1]),
        cut_int(pool[:1], b"\0"),
        foreign_level(socket.IPPROTO_IP, socket.IP_TOS, bytes(4)),
    ]
    return [*cases, no_byte(pool)] if stream else cases


@pytest.mark.timeout(60)
@pytest.mark.parametrize("socket_type", SOCKET_TYPES)
def test_malformed_control_messages_fail_clearly_and_send_nothing(
    socket_type: str, open_stream_pair: OpenStreamPair, open_datagram_pair: OpenDatagramPair, figures: Figures
) -> None:
    tally = {"examples": 0, "refused": 0, "taken_by_the_system": 0}
    labels: set[str] = set()
    with (
        no_descriptor_leak(),
        pipe_pool(3) as pipes,
        unix_ends(socket_type, open_stream_pair, open_datagram_pair) as ends,
    ):
        pool = [fd for pipe in pipes for fd in pipe]
        # A descriptor number that was open a moment ago. Nothing opens
        # another before the examples use it: they run in this thread, and a
        # listing of /proc/self/fd takes the lowest free number, the pipe's
        # read end, not this one.
        closed_read, closed_write = os.pipe()
        os.close(closed_read)
        os.close(closed_write)

        def send_malformed(case: Malformed, before: list[list[int]], after: list[list[int]], payload: bytes) -> None:
            tally["examples"] += 1
            labels.add(case.label)
            chunks = [] if case.label == NO_BYTE else [payload]
            if case.items is None:
                ancillary: Any = case.whole
            else:
                ancillary = [*map(fds_message, before), *case.items, *map(fds_message, after)]
            opened = open_descriptors()
            refusal: Exception | None = None
            try:
                ends.send(chunks, ancillary)
            except case.refusals as exc:
                refusal = exc
            if refusal is not None:
                if isinstance(refusal, OSError):
                    assert refusal.errno in case.errnos, f"{case.label}: {refusal!r}"
                # Nothing of that call arrives: the next bytes are the marker's.
                ends.send([b"marker"], [])
                data, fds = ends.receive(len(b"marker"), 4096)
                close_all(fds)
                assert (data, fds) == (b"marker", []), f"{case.label}: a refused call sent something"
                tally["refused"] += 1
            else:
                assert case.accepted_fds is not None, f"{case.label} was not refused: {case.items!r}"
                sent = [fd for message in before for fd in message]
                sent += case.accepted_fds
                sent += [fd for message in after for fd in message]
                data, received = ends.receive(len(payload), ancillary_space_for_fds(len(sent)) + 64)
                try:
                    assert data == payload
                    check_passed(received, sent)  # whole descriptors only, the good ones around it too
                finally:
                    close_all(received)
                tally["taken_by_the_system"] += 1
            ends.assert_nothing_pending()
            assert_same_descriptors(opened, open_descriptors())

        typical = typical_malformed(pool, closed_write, ends.stream)
        for case in typical:
            send_malformed = example(case=case, before=[pool[:2]], after=[], payload=b"payload")(send_malformed)
        bounded(80)(
            given(
                case=malformed_messages(pool, closed_write, ends.stream),
                before=st.lists(st.lists(st.sampled_from(pool), max_size=4), max_size=2),
                after=st.lists(st.lists(st.sampled_from(pool), max_size=4), max_size=2),
                payload=st.binary(min_size=1, max_size=200),
            )(send_malformed)
        )()
    assert labels == {case.label for case in typical}
    figures(**tally, kinds=len(labels))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("socket_type", SOCKET_TYPES)
def test_cut_control_data_closes_every_descriptor_that_came(
    socket_type: str, open_stream_pair: OpenStreamPair, open_datagram_pair: OpenDatagramPair, figures: Figures
) -> None:
    tally = {"examples": 0, "cut": 0, "whole": 0, "closed_by_the_transport": 0}
    with (
        no_descriptor_leak(),
        pipe_pool(3) as pipes,
        unix_ends(socket_type, open_stream_pair, open_datagram_pair) as ends,
    ):
        pool = [fd for pipe in pipes for fd in pipe]

        @bounded(50)
        @given(
            fds=st.lists(st.sampled_from(pool), min_size=1, max_size=40),
            payload=st.binary(min_size=1, max_size=300),
            cut=st.booleans(),
            share=st.floats(min_value=0.0, max_value=1.0),
            into=st.booleans(),
        )
        @example(fds=pool[:2], payload=b"cut", cut=True, share=0.0, into=False)
        @example(fds=pool[:2], payload=b"just enough", cut=False, share=0.0, into=True)
        def receive_cut(fds: list[int], payload: bytes, cut: bool, share: float, into: bool) -> None:
            tally["examples"] += 1
            # The kernel installs as many descriptors as whole ints fit after
            # the header: all of them from CMSG_LEN (not CMSG_SPACE) up.
            needed = socket.CMSG_LEN(len(fds) * INT_SIZE)
            if cut:  # from no room at all to one byte short
                ancillary_size = min(int(share * needed), needed - 1)
            else:  # from just enough to a little more than CMSG_SPACE
                ancillary_size = needed + int(share * (ancillary_space_for_fds(len(fds)) + 16 - needed))
            fit = max(ancillary_size - socket.CMSG_LEN(0), 0) // INT_SIZE
            opened = open_descriptors()
            ends.send([payload], [fds_message(fds)])
            if fit < len(fds):
                with pytest.raises(OSError) as caught:
                    ends.receive(len(payload), ancillary_size, into=into)
                assert caught.value.errno == errno.EMSGSIZE
                named = re.search(r"(\d+) received file descriptor", str(caught.value))
                assert named is not None, str(caught.value)
                assert int(named.group(1)) == fit
                tally["cut"] += 1
                tally["closed_by_the_transport"] += fit
                # The data of the cut message went with it; the pair still works.
                ends.send([b"after"], [])
                data, more = ends.receive(len(b"after"), 4096)
                close_all(more)
                assert (data, more) == (b"after", [])
            else:
                data, received = ends.receive(len(payload), ancillary_size, into=into)
                try:
                    assert data == payload
                    check_passed(received, fds)
                finally:
                    close_all(received)
                tally["whole"] += 1
            ends.assert_nothing_pending()
            assert_same_descriptors(opened, open_descriptors())

        receive_cut()
    assert tally["cut"], "no example cut the control data"
    assert tally["whole"], "no example made room for every descriptor"
    figures(**tally)
