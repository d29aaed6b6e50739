"""Leaks: thousands of open/use/close cycles leave nothing behind.

For every transport kind, many cycles of opening a connected pair, moving a
few bytes both ways and closing it, then as many cycles where both ends are
dropped without ``close()`` (each emits a ``ResourceWarning`` and its
finalizer closes what it owns), must leave the open descriptors
(``/proc/self/fd``) and the live transport objects where they were.
"""

from __future__ import annotations

import contextlib
import gc
import os
import warnings
from collections.abc import Callable, Iterator

import pytest

from transports.abc import DatagramTransport, StreamTransport

StreamPair = tuple[StreamTransport, StreamTransport]
DatagramPair = tuple[DatagramTransport, DatagramTransport]
OpenStreamPair = Callable[[str], contextlib.AbstractContextManager[StreamPair]]
OpenDatagramPair = Callable[[str], contextlib.AbstractContextManager[DatagramPair]]
Figures = Callable[..., None]

# ``TRANSPORTS_LEAK_CYCLES=N`` runs N cycles of every kind, TLS included.
FULL_CYCLES = os.environ.get("TRANSPORTS_LEAK_CYCLES")
CYCLES = int(FULL_CYCLES or 10_000)
# By default, fewer cycles where each one costs more: a TLS cycle makes two
# full handshakes (some 3 ms of CPU, 6 ms for TLS in TLS), and a child
# process takes tens of milliseconds to start (its transports are those of
# the stapled pipes kind, which runs the full count).
TLS_CYCLES = int(FULL_CYCLES or 300)
CHILD_PROCESS_CYCLES = int(FULL_CYCLES or 30)
# A tenth of the pairs are also dropped without close().
DROPPED_SHARE = 10


def cycles_of(kind: str) -> int:
    if "child" in kind:
        return CHILD_PROCESS_CYCLES
    if "TLS" in kind or "SSL" in kind:
        return TLS_CYCLES
    return CYCLES


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def live_transports() -> int:
    gc.collect()
    return sum(isinstance(thing, (StreamTransport, DatagramTransport)) for thing in gc.get_objects())


@contextlib.contextmanager
def nothing_left(figures: Figures, **values: int) -> Iterator[None]:
    descriptors_before, transports_before = open_descriptors(), live_transports()
    yield
    transports_after = live_transports()
    # /proc/self/fd itself is opened while listing: compare sets, not counts.
    descriptors_after = open_descriptors()
    figures(
        **values,
        descriptors_before=len(descriptors_before),
        descriptors_after=len(descriptors_after),
        transports_before=transports_before,
        transports_after=transports_after,
    )
    assert descriptors_after == descriptors_before, "descriptors left open"
    assert transports_after == transports_before, "transport objects still alive"


def stream_cycle(pair: StreamPair) -> None:
    a, b = pair
    a.send_all(b"ping", 5.0)
    assert b.recv(4, 5.0) == b"ping"
    b.send_all(b"pong", 5.0)
    assert a.recv(4, 5.0) == b"pong"


def dropped_pairs_warn(make_pair: Callable[[], tuple[object, object]], use: Callable[..., None], count: int) -> None:
    """Make ``count`` pairs, use them, and drop them without ``close()``: each end must warn."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(count):
            use(make_pair())
        gc.collect()
    unclosed = sum(issubclass(w.category, ResourceWarning) for w in caught)
    assert unclosed >= 2 * count, f"{unclosed} ResourceWarnings for {count} pairs dropped without close()"


@pytest.mark.timeout(600)
def test_stream_cycles(
    stream_kind: str,
    open_stream_pair: OpenStreamPair,
    make_stream_pair: Callable[[str], StreamPair],
    figures: Figures,
) -> None:
    cycles = cycles_of(stream_kind)
    # Pipes to child processes are made by a context manager only: the stapled pipes kind drops its own.
    dropped = 0 if "child" in stream_kind else cycles // DROPPED_SHARE
    with nothing_left(figures, cycles=cycles, dropped_without_close=dropped):
        for _ in range(cycles):
            with open_stream_pair(stream_kind) as pair:
                stream_cycle(pair)
            del pair
        dropped_pairs_warn(lambda: make_stream_pair(stream_kind), stream_cycle, dropped)


def datagram_cycle(pair: DatagramPair) -> None:
    a, b = pair
    a.send(b"ping", 5.0)
    assert b.recv(5.0) == b"ping"


@pytest.mark.timeout(600)
def test_datagram_cycles(
    datagram_kind: str,
    open_datagram_pair: OpenDatagramPair,
    make_datagram_pair: Callable[[str], DatagramPair],
    figures: Figures,
) -> None:
    dropped = CYCLES // DROPPED_SHARE
    with nothing_left(figures, cycles=CYCLES, dropped_without_close=dropped):
        for _ in range(CYCLES):
            with open_datagram_pair(datagram_kind) as pair:
                datagram_cycle(pair)
            del pair
        dropped_pairs_warn(lambda: make_datagram_pair(datagram_kind), datagram_cycle, dropped)
