"""BufferedStreamTransport: exact and delimited reads over real socket pairs.

The wrapped transports are the minimal socket transports of conftest.py
(the composite tests may not use transports.socket), under
:class:`ScriptedReads`, which counts the reads that reach the socket and
can cut each one to a given size: how the bytes are cut into reads is
then the test's choice, not the scheduler's. Every blocking call is
bounded.
"""

from __future__ import annotations

import array
import contextlib
import errno
import itertools
import math
import pickle
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typing_extensions import Buffer

from transports.abc import (
    StreamReadTransport,
    StreamTransport,
    TypedAttributeSet,
    UnsupportedOperation,
    typed_attribute,
)
from transports.abc.testing import check_stream_transport
from transports.composite import (
    BufferedStreamTransport,
    DelimiterNotFoundError,
    IncompleteReadError,
    StapledStreamTransport,
    TLSStreamTransport,
)

SocketPairFactory = Callable[[int], tuple[socket.socket, socket.socket]]
SocketStreamClass = Callable[..., StreamTransport]
ShutdownWrapper = Callable[[StreamTransport, socket.socket], StreamTransport]
RunInThread = Callable[[Callable[[], Any]], Future[Any]]
TLS = TLSStreamTransport[StreamTransport]
TLSPairFactory = Callable[..., tuple[TLS, TLS]]

SERVER_NAME = "server.test"  # conftest.TLS_SERVER_NAME
WAIT = 10.0  # the timeout of calls that are expected to succeed
# How late a timed call may end, on a loaded machine; an implementation
# that gave each read a budget of its own would end seconds later.
SLACK = 0.5
# A call blocked in another thread must end this soon after close().
PROMPT = 1.0


class ReadsAttribute(TypedAttributeSet):
    reads: int = typed_attribute()


class ScriptedReads(StreamTransport):
    """Delegates to ``inner``; counts reads and cuts each one to the next of ``sizes``.

    Once ``sizes`` is exhausted, reads are passed on whole. Provides
    :attr:`ReadsAttribute.reads`, to check that typed attributes come
    through the buffered layer.
    """

    def __init__(self, inner: StreamTransport, sizes: Iterable[int] = ()) -> None:
        self.inner = inner
        self.sizes = iter(sizes)
        self.reads = 0

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        self.reads += 1
        size = next(self.sizes, None)
        if size is None:
            return self.inner.recv_into(buffer, timeout)
        with memoryview(buffer) as view:
            return self.inner.recv_into(view[:size], timeout)

    def send(self, data: Buffer, timeout: float) -> int:
        return self.inner.send(data, timeout)

    def send_eof(self) -> None:
        self.inner.send_eof()

    def close(self) -> None:
        self.inner.close()

    def is_closed(self) -> bool:
        return self.inner.is_closed()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {ReadsAttribute.reads: lambda: self.reads}


class ShutdownOnly(StreamTransport):
    """Delegates to ``inner`` over ``sock``; ``close()`` only shuts ``sock`` down.

    Reads then report an end of stream, deterministically (the socket is
    closed at teardown): what a wrapped transport whose own close looks
    like the peer's may do.
    """

    def __init__(self, inner: StreamTransport, sock: socket.socket) -> None:
        self.inner = inner
        self.sock = sock
        self.closed = False

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        return self.inner.recv_into(buffer, timeout)

    def send(self, data: Buffer, timeout: float) -> int:
        return self.inner.send(data, timeout)

    def send_eof(self) -> None:
        self.inner.send_eof()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def is_closed(self) -> bool:
        return self.closed


class ImpossibleCounts(ScriptedReads):
    """Reads for real, then reports ``count`` bytes."""

    def __init__(self, inner: StreamTransport, count: int) -> None:
        super().__init__(inner)
        self.count = count

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        super().recv_into(buffer, timeout)
        return self.count


Buffered = BufferedStreamTransport[ScriptedReads]


@dataclass
class Pair:
    buffered: Buffered
    scripted: ScriptedReads
    peer: socket.socket  # the other end, a plain blocking socket (10 s timeout)


PairFactory = Callable[..., Pair]


@pytest.fixture
def make_pair(
    make_socketpair: SocketPairFactory, socket_stream: SocketStreamClass, shutdown_on_close_wrapper: ShutdownWrapper
) -> PairFactory:
    """``make(sizes=(), shutdown_only=False)``: a buffered transport over a socket, and the peer's socket.

    ``close()`` shuts the socket down, which wakes a blocked read, then
    closes it; with ``shutdown_only``, it only shuts it down (see
    :class:`ShutdownOnly`). Either way the buffered layer must tell that
    from the peer's doing.
    """

    def make(sizes: Iterable[int] = (), *, shutdown_only: bool = False) -> Pair:
        ours, theirs = make_socketpair(socket.SOCK_STREAM)
        closing = ShutdownOnly if shutdown_only else shutdown_on_close_wrapper
        scripted = ScriptedReads(closing(socket_stream(ours), ours), sizes)
        return Pair(BufferedStreamTransport(scripted), scripted, theirs)

    return make


def dribble(peer: socket.socket, data: bytes, interval: float) -> None:
    """Send ``data`` one byte at a time, ``interval`` seconds apart."""
    for byte in data:
        peer.sendall(bytes([byte]))
        time.sleep(interval)


def read_to_eof(transport: StreamReadTransport) -> bytes:
    received = bytearray()
    while chunk := transport.recv(65536, WAIT):
        received += chunk
    return bytes(received)


def elapsed(started: float) -> float:
    return time.monotonic() - started


# --------------------------------------------------------- answers


def test_exact_and_delimited_reads_from_a_peer_sending_one_byte_at_a_time(
    make_pair: PairFactory, run_in_thread: RunInThread
) -> None:
    pair = make_pair()
    body = b"hello, world"
    stream = len(body).to_bytes(2, "big") + body + b"HELO there\r\n" + b"\r\n" + b"last\n"
    sending = run_in_thread(lambda: dribble(pair.peer, stream, 0.001))
    buffered = pair.buffered
    size = int.from_bytes(buffered.recv_exactly(2, WAIT), "big")
    assert buffered.recv_exactly(size, WAIT) == body
    assert buffered.recv_until(b"\r\n", 100, WAIT) == b"HELO there"
    assert buffered.recv_until(b"\r\n", 100, WAIT) == b""  # an empty line
    assert buffered.recv_until(b"\n", 100, WAIT) == b"last"
    sending.result(WAIT)
    assert buffered.recv_exactly(0, 0) == b""


@pytest.mark.parametrize("read_size", [1, 2, 3, 5, 7, 65536])
def test_a_delimiter_split_across_reads_is_found(make_pair: PairFactory, read_size: int) -> None:
    pair = make_pair(itertools.repeat(read_size))
    # Every cut of the seven-byte delimiter happens at one of these read sizes.
    pair.peer.sendall(b"first--END--" + b"--END--" + b"third -END- still--END--" + b"rest")
    pair.peer.shutdown(socket.SHUT_WR)
    buffered = pair.buffered
    assert buffered.recv_until(b"--END--", 100, WAIT) == b"first"
    assert buffered.recv_until(b"--END--", 100, WAIT) == b""
    assert buffered.recv_until(b"--END--", 100, WAIT) == b"third -END- still"
    with pytest.raises(IncompleteReadError) as caught:
        buffered.recv_until(b"--END--", 100, WAIT)
    assert caught.value.partial == b"rest"


@pytest.mark.parametrize(
    ("stream", "delimiter", "answer"),
    [
        (b"aaab", b"aab", b"a"),  # a false start overlapping the real delimiter
        (b"abababc", b"ababc", b"ab"),
        (b"x\r\r\n", b"\r\n", b"x\r"),
        (b"\n\n\nz", b"\n\n", b""),
    ],
)
def test_multi_byte_delimiters_match_their_first_occurrence(
    make_pair: PairFactory, stream: bytes, delimiter: bytes, answer: bytes
) -> None:
    pair = make_pair(itertools.repeat(1))  # one byte per read: every resumed search is tested
    pair.peer.sendall(stream)
    assert pair.buffered.recv_until(delimiter, 100, WAIT) == answer
    rest = stream[len(answer) + len(delimiter) :]
    assert pair.buffered.recv_exactly(len(rest), WAIT) == rest


def test_bytes_read_past_the_answer_are_kept_for_the_next_call(make_pair: PairFactory) -> None:
    pair = make_pair()
    pair.peer.sendall(b"one\ntwo\nthree\n\x00\x03end")
    buffered = pair.buffered
    assert buffered.recv_until(b"\n", 100, WAIT) == b"one"
    assert pair.scripted.reads == 1  # one read took everything
    assert buffered.recv_until(b"\n", 100, 0) == b"two"
    assert buffered.recv_until(b"\n", 100, 0) == b"three"
    assert buffered.recv_exactly(int.from_bytes(buffered.recv_exactly(2, 0), "big"), 0) == b"end"
    assert pair.scripted.reads == 1


# --------------------------------------------------------- max_bytes


def test_max_bytes_counts_the_delimiter_and_bytes_stay_buffered(make_pair: PairFactory) -> None:
    pair = make_pair()
    pair.peer.sendall(b"0123456789\r\nnext\r\n")
    buffered = pair.buffered
    for max_bytes in (2, 8, 11):  # the answer takes 12 bytes, delimiter included
        with pytest.raises(DelimiterNotFoundError) as caught:
            buffered.recv_until(b"\r\n", max_bytes, WAIT)
        assert caught.value.max_bytes == max_bytes
    assert buffered.recv_until(b"\r\n", 12, WAIT) == b"0123456789"
    assert buffered.recv_until(b"\r\n", 6, WAIT) == b"next"


def test_delimiter_not_found_leaves_the_bytes_readable(make_pair: PairFactory) -> None:
    pair = make_pair(itertools.repeat(3))
    pair.peer.sendall(b"a line far too long for the limit\n")
    with pytest.raises(DelimiterNotFoundError):
        pair.buffered.recv_until(b"\n", 10, WAIT)
    # Only what the limit needed was read: 4 reads of 3 bytes.
    assert pair.scripted.reads == 4
    assert pair.buffered.recv(100, 0) == b"a line far t"
    assert pair.buffered.recv_until(b"\n", 100, WAIT) == b"oo long for the limit"


# --------------------------------------------------------- end of stream


@pytest.mark.parametrize("how", ["exactly", "until"])
def test_end_of_stream_mid_answer_keeps_the_partial_bytes(make_pair: PairFactory, how: str) -> None:
    pair = make_pair(itertools.repeat(2))
    pair.peer.sendall(b"abcde")
    pair.peer.shutdown(socket.SHUT_WR)
    buffered = pair.buffered

    def call() -> bytes:
        return buffered.recv_exactly(8, WAIT) if how == "exactly" else buffered.recv_until(b"\n", 100, WAIT)

    for _ in range(2):  # the end of stream repeats, and so does the error
        with pytest.raises(IncompleteReadError) as caught:
            call()
        assert caught.value.partial == b"abcde"
        assert caught.value.expected == (8 if how == "exactly" else None)
        assert isinstance(caught.value, EOFError)
    assert buffered.recv(3, 0) == b"abc"
    assert buffered.recv(100, WAIT) == b"de"
    assert buffered.recv(100, WAIT) == b""
    with pytest.raises(IncompleteReadError) as caught:
        buffered.recv_exactly(1, WAIT)
    assert caught.value.partial == b""


def test_exceptions_carry_their_fields_and_pickle() -> None:
    incomplete = IncompleteReadError(b"ab", 5)
    assert str(incomplete) == "The stream ended after 2 of 5 bytes"
    copy = pickle.loads(pickle.dumps(incomplete))
    assert (type(copy), copy.partial, copy.expected) == (IncompleteReadError, b"ab", 5)
    assert "before the delimiter" in str(IncompleteReadError(b"", None))
    not_found = pickle.loads(pickle.dumps(DelimiterNotFoundError(42)))
    assert (type(not_found), not_found.max_bytes) == (DelimiterNotFoundError, 42)
    assert issubclass(DelimiterNotFoundError, ValueError)
    assert issubclass(IncompleteReadError, EOFError)


# --------------------------------------------------------- timeouts


@pytest.mark.parametrize("how", ["exactly", "until"])
def test_a_timeout_keeps_the_bytes_received(make_pair: PairFactory, how: str) -> None:
    pair = make_pair()
    buffered = pair.buffered
    pair.peer.sendall(b"abc")
    call = buffered.recv_exactly if how == "exactly" else lambda _, timeout: buffered.recv_until(b"\n", 100, timeout)
    with pytest.raises(TimeoutError) as caught:
        call(6, 0.1)
    assert caught.value.errno == errno.ETIMEDOUT
    pair.peer.sendall(b"def\n")
    assert call(6, WAIT) == b"abcdef"


def test_timeout_zero_never_waits_but_reads_what_is_there(make_pair: PairFactory) -> None:
    pair = make_pair()
    buffered = pair.buffered
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        buffered.recv_until(b"\n", 100, 0)
    with pytest.raises(TimeoutError):
        buffered.recv_exactly(1, 0)
    assert elapsed(started) < SLACK
    pair.peer.sendall(b"ready\n")
    time.sleep(0.05)
    assert buffered.recv_until(b"\n", 100, 0) == b"ready"


@pytest.mark.parametrize("how", ["exactly", "until"])
def test_one_budget_for_the_whole_call_against_a_dribbling_peer(
    make_pair: PairFactory, run_in_thread: RunInThread, how: str
) -> None:
    pair = make_pair()
    buffered = pair.buffered
    count = 30  # a byte every 50 ms: 1.5 s in all, five times the budget
    sending = run_in_thread(lambda: dribble(pair.peer, b"x" * count + b"\n", 0.05))
    call = buffered.recv_exactly if how == "exactly" else lambda _, timeout: buffered.recv_until(b"\n", 1000, timeout)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        call(count, 0.3)
    took = elapsed(started)
    assert 0.29 <= took < 0.3 + SLACK
    # Nothing received before the timeout was lost.
    assert call(count, WAIT) == b"x" * count
    sending.result(WAIT)


def test_an_answer_already_buffered_is_returned_whatever_the_timeout(make_pair: PairFactory) -> None:
    pair = make_pair()
    pair.peer.sendall(b"one\ntwo\n")
    pair.buffered.recv_until(b"\n", 100, WAIT)
    pair.peer.close()  # nothing more will come: the answers are all buffered
    assert pair.buffered.recv_until(b"\n", 100, 0) == b"two"


# --------------------------------------------------------- plain reads


def test_recv_and_recv_into_serve_buffered_bytes_without_reading(make_pair: PairFactory) -> None:
    pair = make_pair()
    pair.peer.sendall(b"line\n0123456789")
    buffered = pair.buffered
    assert buffered.recv_until(b"\n", 100, WAIT) == b"line"
    reads = pair.scripted.reads
    assert buffered.recv(3, 0) == b"012"
    assert buffered.recv(0, 0) == b""
    assert buffered.recv_into(bytearray(), 0) == 0
    target = bytearray(b"--------")
    assert buffered.recv_into(memoryview(target)[2:6], 0) == 4
    assert target == b"--3456--"
    ints = array.array("i", [0, 0, 0, 0])  # wider items: filled as bytes
    assert buffered.recv_into(ints, math.inf) == 3
    assert ints.tobytes()[:3] == b"789"
    assert pair.scripted.reads == reads  # all from the buffer
    with pytest.raises(TimeoutError):
        buffered.recv(10, 0)  # nothing buffered: the wrapped transport's turn
    assert pair.scripted.reads == reads + 1
    pair.peer.sendall(b"direct")
    assert buffered.recv(100, WAIT) == b"direct"


# --------------------------------------------------------- longer streams


def test_long_pipelined_lines_through_every_buffer_path(make_pair: PairFactory, run_in_thread: RunInThread) -> None:
    """Lines far longer than a read, lines far shorter, one longer than the 1 MiB kept."""
    rng = random.Random(20240611)
    lines = [rng.randbytes(rng.randrange(0, 400)).replace(b"\n", b" ") for _ in range(3000)]
    lines[100] = b"y" * 200_000  # the buffer grows past 64 KiB
    lines[2000] = b"z" * 1_500_000  # and past 1 MiB: given back once empty
    stream = b"".join(line + b"\n" for line in lines)

    def send_in_random_pieces() -> None:
        view = memoryview(stream)
        while view:
            step = rng.randint(1, 100_000)
            pair.peer.sendall(view[:step])
            view = view[step:]
        pair.peer.shutdown(socket.SHUT_WR)

    pair = make_pair()
    sending = run_in_thread(send_in_random_pieces)
    for index, line in enumerate(lines):
        assert pair.buffered.recv_until(b"\n", 2_000_000, WAIT) == line, f"line {index}"
    with pytest.raises(IncompleteReadError):
        pair.buffered.recv_until(b"\n", 2_000_000, WAIT)
    sending.result(WAIT)


def test_long_length_prefixed_frames(make_pair: PairFactory, run_in_thread: RunInThread) -> None:
    rng = random.Random(7)
    frames = [rng.randbytes(rng.choice([0, 1, 3, 100, 5000, 70_000, 3_000_000])) for _ in range(60)]
    stream = b"".join(len(frame).to_bytes(4, "big") + frame for frame in frames)
    pair = make_pair()
    sending = run_in_thread(lambda: pair.peer.sendall(stream))
    for frame in frames:
        size = int.from_bytes(pair.buffered.recv_exactly(4, WAIT), "big")
        assert pair.buffered.recv_exactly(size, WAIT) == frame
    sending.result(WAIT)


# --------------------------------------------------------- properties

BYTES = [b"a", b"a", b"a", b"b", b"\n"]  # few kinds of bytes: delimiters occur, often overlapping


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stream=st.lists(st.sampled_from(BYTES), max_size=2000).map(b"".join),
    delimiter=st.lists(st.sampled_from(BYTES), min_size=1, max_size=3).map(b"".join),
    cuts=st.lists(st.integers(1, 64), min_size=1, max_size=30),
    max_bytes=st.integers(1, 80),
)
def test_recv_until_returns_what_split_gives_however_the_bytes_arrive(
    socket_stream: SocketStreamClass, stream: bytes, delimiter: bytes, cuts: list[int], max_bytes: int
) -> None:
    """The pieces between delimiters, whole; the limit and the end of stream as documented."""
    max_bytes = max(max_bytes, len(delimiter))
    pieces = stream.split(delimiter)
    ours, theirs = socket.socketpair()
    with theirs, BufferedStreamTransport(ScriptedReads(socket_stream(ours), itertools.cycle(cuts))) as buffered:
        theirs.sendall(stream)  # small enough for the socket buffers
        theirs.shutdown(socket.SHUT_WR)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            if (len(piece) >= max_bytes) if last else (len(piece) + len(delimiter) > max_bytes):
                with pytest.raises(DelimiterNotFoundError):
                    buffered.recv_until(delimiter, max_bytes, WAIT)
                # Nothing was lost: the rest of the stream is all there.
                assert read_to_eof(buffered) == delimiter.join(pieces[index:])
                return
            if last:
                with pytest.raises(IncompleteReadError) as caught:
                    buffered.recv_until(delimiter, max_bytes, WAIT)
                assert caught.value.partial == piece
                assert read_to_eof(buffered) == piece
            else:
                assert buffered.recv_until(delimiter, max_bytes, WAIT) == piece


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 300), max_size=20),
    extra=st.integers(0, 50),
    cuts=st.lists(st.integers(1, 97), min_size=1, max_size=20),
    data=st.randoms(use_true_random=False),
)
def test_recv_exactly_returns_consecutive_slices_however_the_bytes_arrive(
    socket_stream: SocketStreamClass, sizes: list[int], extra: int, cuts: list[int], data: random.Random
) -> None:
    stream = data.randbytes(sum(sizes) + extra)
    ours, theirs = socket.socketpair()
    with theirs, BufferedStreamTransport(ScriptedReads(socket_stream(ours), itertools.cycle(cuts))) as buffered:
        theirs.sendall(stream)
        theirs.shutdown(socket.SHUT_WR)
        position = 0
        for size in sizes:
            assert buffered.recv_exactly(size, WAIT) == stream[position : position + size]
            position += size
        with pytest.raises(IncompleteReadError) as caught:
            buffered.recv_exactly(extra + 1, WAIT)
        assert caught.value.partial == stream[position:]
        assert caught.value.expected == extra + 1


# --------------------------------------------------------- arguments

# The transport is typed Any: these calls are wrong on purpose.
Invalid = list[tuple[str, Callable[[Any], Any], type[Exception]]]
INVALID_WITH_NOTHING_BUFFERED: Invalid = [
    ("negative n", lambda t: t.recv_exactly(-1, WAIT), ValueError),
    ("float n", lambda t: t.recv_exactly(2.0, WAIT), TypeError),
    ("str n", lambda t: t.recv_exactly("2", WAIT), TypeError),
    ("exactly, negative timeout", lambda t: t.recv_exactly(1, -1.0), ValueError),
    ("exactly, NaN timeout", lambda t: t.recv_exactly(1, math.nan), ValueError),
    ("exactly, None timeout", lambda t: t.recv_exactly(1, None), TypeError),
    ("empty delimiter", lambda t: t.recv_until(b"", 10, WAIT), ValueError),
    ("str delimiter", lambda t: t.recv_until("\n", 10, WAIT), TypeError),
    ("bytearray delimiter", lambda t: t.recv_until(bytearray(b"\n"), 10, WAIT), TypeError),
    ("max_bytes under the delimiter", lambda t: t.recv_until(b"\r\n", 1, WAIT), ValueError),
    ("negative max_bytes", lambda t: t.recv_until(b"\n", -5, WAIT), ValueError),
    ("float max_bytes", lambda t: t.recv_until(b"\n", 10.0, WAIT), TypeError),
    ("until, negative timeout", lambda t: t.recv_until(b"\n", 10, -math.inf), ValueError),
    ("until, NaN timeout", lambda t: t.recv_until(b"\n", 10, math.nan), ValueError),
    ("until, None timeout", lambda t: t.recv_until(b"\n", 10, None), TypeError),
]
INVALID_WITH_BYTES_BUFFERED: Invalid = [
    *INVALID_WITH_NOTHING_BUFFERED,
    ("negative bufsize", lambda t: t.recv(-1, WAIT), ValueError),
    ("recv, NaN timeout", lambda t: t.recv(1, math.nan), ValueError),
    ("recv, None timeout", lambda t: t.recv(1, None), TypeError),
    ("read-only buffer", lambda t: t.recv_into(b"read-only", WAIT), TypeError),
    ("non-contiguous buffer", lambda t: t.recv_into(memoryview(bytearray(8))[::2], WAIT), TypeError),
    ("recv_into, negative timeout", lambda t: t.recv_into(bytearray(4), -1.0), ValueError),
]


@pytest.mark.parametrize("buffered_first", [False, True], ids=["nothing-buffered", "bytes-buffered"])
def test_invalid_arguments_are_refused_before_any_io(make_pair: PairFactory, buffered_first: bool) -> None:
    pair = make_pair()
    buffered = pair.buffered
    pair.peer.sendall(b"line\nkept")
    time.sleep(0.05)
    if buffered_first:
        assert buffered.recv_until(b"\n", 100, WAIT) == b"line"
    reads = pair.scripted.reads
    cases = INVALID_WITH_BYTES_BUFFERED if buffered_first else INVALID_WITH_NOTHING_BUFFERED
    for name, call, exception in cases:
        with pytest.raises(exception):
            call(buffered)
        assert pair.scripted.reads == reads, name
    expected = b"kept" if buffered_first else b"line\nkept"
    assert buffered.recv_exactly(len(expected), 0) == expected


# --------------------------------------------------------- closing


@pytest.mark.parametrize("shutdown_only", [False, True], ids=["shutdown-and-close", "shutdown-only"])
@pytest.mark.parametrize("call", ["recv_until", "recv_exactly", "recv", "recv_into"])
def test_close_from_another_thread_ends_a_blocked_read(
    make_pair: PairFactory, run_in_thread: RunInThread, call: str, shutdown_only: bool
) -> None:
    pair = make_pair(shutdown_only=shutdown_only)
    buffered = pair.buffered
    if call in {"recv_until", "recv_exactly"}:
        pair.peer.sendall(b"partial")  # buffered when the close comes
    calls: dict[str, Callable[[], Any]] = {
        "recv_until": lambda: buffered.recv_until(b"\n", 1000, 30.0),
        "recv_exactly": lambda: buffered.recv_exactly(1000, 30.0),
        "recv": lambda: buffered.recv(10, 30.0),
        "recv_into": lambda: buffered.recv_into(bytearray(10), 30.0),
    }
    blocked = run_in_thread(calls[call])
    time.sleep(0.2)
    assert not blocked.done()
    started = time.monotonic()
    buffered.close()
    # The wrapped transport reports its own close as an error or as an end
    # of stream: the buffered layer knows better, and says EBADF.
    error = blocked.exception(PROMPT + SLACK)
    assert elapsed(started) < PROMPT
    assert isinstance(error, OSError)
    assert error.errno == errno.EBADF


@pytest.mark.parametrize("call", ["send", "send_all", "send_all_from_iterable"])
def test_close_from_another_thread_ends_a_blocked_send(
    make_pair: PairFactory, run_in_thread: RunInThread, call: str
) -> None:
    pair = make_pair()  # the peer does not read
    buffered = pair.buffered
    data = bytes(64 * 1024 * 1024)
    calls: dict[str, Callable[[], Any]] = {
        "send": lambda: [buffered.send(data, 30.0) for _ in range(100)],  # fills the socket buffers, then blocks
        "send_all": lambda: buffered.send_all(data, 30.0),
        "send_all_from_iterable": lambda: buffered.send_all_from_iterable([data], 30.0),
    }
    blocked = run_in_thread(calls[call])
    time.sleep(0.2)
    assert not blocked.done()
    started = time.monotonic()
    buffered.close()
    error = blocked.exception(PROMPT + SLACK)
    assert elapsed(started) < PROMPT
    assert isinstance(error, OSError)
    assert error.errno == errno.EBADF


@pytest.mark.parametrize("count", [-1, 65537])
def test_a_wrapped_transport_returning_impossible_counts_is_an_error(
    make_socketpair: SocketPairFactory, socket_stream: SocketStreamClass, count: int
) -> None:
    ours, theirs = make_socketpair(socket.SOCK_STREAM)
    theirs.sendall(b"data")
    buffered = BufferedStreamTransport(ImpossibleCounts(socket_stream(ours), count))
    with buffered, pytest.raises(RuntimeError, match=f"returned {count} for"):
        buffered.recv_until(b"\n", 100, WAIT)


def test_every_call_after_close_raises_ebadf_even_with_bytes_buffered(make_pair: PairFactory) -> None:
    pair = make_pair()
    buffered = pair.buffered
    pair.peer.sendall(b"one\ntwo\n")
    assert buffered.recv_until(b"\n", 100, WAIT) == b"one"
    assert not buffered.is_closed()
    with buffered:
        pass
    buffered.close()  # again: nothing
    assert buffered.is_closed()
    assert pair.scripted.is_closed()
    calls: list[Callable[[], Any]] = [
        lambda: buffered.recv_until(b"\n", 100, WAIT),
        lambda: buffered.recv_exactly(1, WAIT),
        lambda: buffered.recv_exactly(0, WAIT),
        lambda: buffered.recv(10, WAIT),
        lambda: buffered.recv_into(bytearray(10), WAIT),
        lambda: buffered.send(b"x", WAIT),
        lambda: buffered.send_all(b"x", WAIT),
        lambda: buffered.send_all_from_iterable([b"x"], WAIT),
        lambda: buffered.send_all_with_ancillary([b"x"], None, WAIT),
    ]
    for call in calls:
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == errno.EBADF
    buffered.send_eof()  # nothing once closed


def test_is_closed_follows_the_wrapped_transport(make_pair: PairFactory) -> None:
    pair = make_pair()
    pair.scripted.close()
    assert pair.buffered.is_closed()


# --------------------------------------------------------- delegation


def test_the_sending_side_and_attributes_are_the_wrapped_transports(make_pair: PairFactory) -> None:
    pair = make_pair()
    buffered = pair.buffered
    assert buffered.wrapped_transport is pair.scripted
    assert buffered.send(b"ab", WAIT) == 2
    buffered.send_all(b"cd", WAIT)
    buffered.send_all_from_iterable([b"", b"e", bytearray(b"f"), b""], WAIT)
    buffered.send_eof()
    pair.peer.settimeout(WAIT)
    received = bytearray()
    while chunk := pair.peer.recv(100):
        received += chunk
    assert received == b"abcdef"
    # Half-closed: receiving goes on.
    pair.peer.sendall(b"after eof\n")
    assert buffered.recv_until(b"\n", 100, WAIT) == b"after eof"
    assert buffered.extra(ReadsAttribute.reads) == pair.scripted.reads == 1
    with pytest.raises(UnsupportedOperation):
        buffered.send_all_with_ancillary([b"x"], [], WAIT)
    with pytest.raises(UnsupportedOperation):
        buffered.recv_with_ancillary(10, 100, WAIT)


def test_final_slotted_and_checks_its_argument(make_pair: PairFactory, socket_stream: SocketStreamClass) -> None:
    with pytest.raises(TypeError, match="final"):
        type("Sub", (BufferedStreamTransport,), {})
    pair = make_pair()
    assert not hasattr(pair.buffered, "__dict__")
    assert "buffered=0" in repr(pair.buffered)
    with pytest.raises(TypeError, match="StreamTransport"):
        BufferedStreamTransport(pair.peer)  # type: ignore[type-var]


# --------------------------------------------------------- stacking


def test_over_tls(make_tls_pair: TLSPairFactory, run_in_thread: RunInThread) -> None:
    client, server = make_tls_pair()
    lines = [b"short", b"x" * 20_000, b"", b"y" * 100_000, b"end"]  # across TLS records of 16 KiB
    sending = run_in_thread(lambda: client.send_all(b"".join(line + b"\r\n" for line in lines), WAIT))
    buffered = BufferedStreamTransport(server)  # not closed here: the fixture closes both TLS ends together
    for line in lines:
        assert buffered.recv_until(b"\r\n", 200_000, WAIT) == line
    sending.result(WAIT)
    buffered.send_all(b"ok", WAIT)
    assert client.recv(10, WAIT) == b"ok"


def test_tls_over_a_buffered_transport_gets_the_bytes_read_ahead(
    make_pair: PairFactory,
    socket_stream: SocketStreamClass,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    """STARTTLS: a line, then the TLS handshake on the same stream, read ahead with the line."""
    pair = make_pair()

    def client() -> bytes:
        peer = socket_stream(pair.peer)
        peer.send_all(b"STARTTLS\r\n", WAIT)
        with TLSStreamTransport(
            peer, client_context, server_hostname=SERVER_NAME, handshake_timeout=WAIT, shutdown_timeout=5.0
        ) as tls:
            tls.send_all(b"secret\n", WAIT)
            return tls.recv(100, WAIT)

    answer = run_in_thread(client)
    time.sleep(0.3)  # the ClientHello arrives behind the command: one read takes both
    assert pair.buffered.recv_until(b"\r\n", 100, WAIT) == b"STARTTLS"
    tls = TLSStreamTransport(pair.buffered, server_context, handshake_timeout=WAIT, shutdown_timeout=5.0)
    with BufferedStreamTransport(tls) as lines:  # and buffered again, over TLS
        assert lines.recv_until(b"\n", 100, WAIT) == b"secret"
        lines.send_all(b"ok", WAIT)
    # Both closing handshakes run at once: the client closes after reading.
    assert answer.result(WAIT) == b"ok"


def test_over_another_buffered_transport_and_a_stapled_one(
    make_socketpair: SocketPairFactory, socket_stream: SocketStreamClass
) -> None:
    to_us, from_peer = make_socketpair(socket.SOCK_STREAM)
    from_us, to_peer = make_socketpair(socket.SOCK_STREAM)
    stapled = StapledStreamTransport(socket_stream(from_us), socket_stream(to_us))
    inner = BufferedStreamTransport(stapled)
    outer = BufferedStreamTransport(inner)
    from_peer.sendall(b"one\ntwo\nthree\n")
    assert inner.recv_until(b"\n", 100, WAIT) == b"one"  # the inner layer keeps the rest
    assert outer.recv_until(b"\n", 100, WAIT) == b"two"  # the outer one reads it from there
    # The outer layer took all the inner one had: what is left is buffered outside.
    with pytest.raises(TimeoutError):
        inner.recv(100, 0)
    assert outer.recv_until(b"\n", 100, 0) == b"three"
    outer.send_all(b"reply", WAIT)
    assert to_peer.recv(100) == b"reply"
    outer.close()
    assert inner.is_closed()
    assert stapled.is_closed()


# --------------------------------------------------------- conformance


@pytest.mark.timeout(180)
@pytest.mark.parametrize("layers", [1, 2])
def test_the_conformance_kit(
    make_socketpair: SocketPairFactory,
    socket_stream: SocketStreamClass,
    shutdown_on_close_wrapper: ShutdownWrapper,
    layers: int,
) -> None:
    def wrap(sock: socket.socket) -> StreamTransport:
        transport: StreamTransport = shutdown_on_close_wrapper(socket_stream(sock), sock)
        for _ in range(layers):
            transport = BufferedStreamTransport(transport)
        return transport

    @contextlib.contextmanager
    def pair() -> Iterator[tuple[StreamTransport, StreamTransport]]:
        left, right = make_socketpair(socket.SOCK_STREAM)
        with wrap(left) as a, wrap(right) as b:
            yield a, b

    check_stream_transport(pair, half_close=True)
