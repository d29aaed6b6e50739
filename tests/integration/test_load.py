"""Load: many connections of mixed kinds moving data both ways at once.

Each connection carries one stream in each direction. Every byte of a
stream is known in advance (position ``i`` holds ``POOL[(start + i) % len(POOL)]``
for a random ``start``, and the pool's length is prime), so the receiver
compares every chunk against the bytes expected at its position: a lost,
duplicated, reordered or crossed byte fails at the first wrong position. A
CRC-32 of everything sent and of everything received must also agree.

Both ends of a connection send and receive at the same time, each direction
in its own thread, in chunks of random sizes, with random finite timeouts.
Receives also use short timeouts and start again after ``TimeoutError``: a
receive that times out must lose nothing.

Soak mode: with ``TRANSPORTS_SOAK_MINUTES=N`` in the environment,
``test_soak`` runs rounds of the load for N minutes and prints the figures
of each round (run it with ``-s``); it is skipped otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from transports.abc import StreamTransport

StreamPair = tuple[StreamTransport, StreamTransport]
OpenStreamPair = Callable[[str], contextlib.AbstractContextManager[StreamPair]]
Figures = Callable[..., None]

KINDS = ["TCP over IPv4", "Unix stream", "SSLStreamTransport over TCP", "TLSStreamTransport over stapled pipes"]
CONNECTIONS = 64
STREAM_SIZE = 16 * 1024 * 1024
MAX_CHUNK = 256 * 1024
# Long enough that a healthy transfer never runs a budget out on a loaded
# machine, so any TimeoutError from them is a failure.
LONG_TIMEOUTS = (10.0, 60.0)

POOL_SIZE = 1_000_003  # prime: a stream never lines up with itself at another start
_pool_bytes = random.Random(20261206).randbytes(POOL_SIZE)
# Twice over, plus a chunk, so any chunk at any position is one slice.
POOL = memoryview(_pool_bytes + _pool_bytes + _pool_bytes[:MAX_CHUNK])


def expected(start: int, position: int, size: int) -> memoryview:
    offset = (start + position) % POOL_SIZE
    return POOL[offset : offset + size]


@dataclass
class Direction:
    """One direction of a connection: what was sent and received, and how."""

    start: int
    size: int
    sent_crc: int = 0
    received_crc: int = 0
    received: int = 0
    sends: int = 0
    receives: int = 0
    receive_timeouts: int = 0
    errors: list[str] = field(default_factory=list)


def send_stream(transport: StreamTransport, direction: Direction, rng: random.Random) -> None:
    position = 0
    while position < direction.size:
        size = min(rng.randint(1, MAX_CHUNK), direction.size - position)
        data = expected(direction.start, position, size)
        timeout = rng.uniform(*LONG_TIMEOUTS)
        how = rng.randrange(3)
        if how == 0:
            transport.send_all(data, timeout)
        elif how == 1:
            # Cut at random points, with empty chunks in between.
            cuts = sorted(rng.randrange(size + 1) for _ in range(rng.randrange(4)))
            edges = [0, *cuts, size]
            transport.send_all_from_iterable((data[a:b] for a, b in itertools.pairwise(edges)), timeout)
        else:
            size = transport.send(data, timeout)
            data = data[:size]
        direction.sent_crc = zlib.crc32(data, direction.sent_crc)
        direction.sends += 1
        position += size


def receive_stream(transport: StreamTransport, direction: Direction, rng: random.Random) -> None:
    buffer = bytearray(MAX_CHUNK)
    view = memoryview(buffer)
    while direction.received < direction.size:
        size = rng.randint(1, MAX_CHUNK)
        choice = rng.random()
        # A quarter of the receives may time out (and start again); the rest
        # never should.
        timeout = rng.choice((0.0, rng.uniform(0.0, 0.05))) if choice < 0.25 else rng.uniform(*LONG_TIMEOUTS)
        try:
            if rng.random() < 0.5:
                data: bytes | memoryview = transport.recv(size, timeout)
            else:
                data = view[: transport.recv_into(view[:size], timeout)]
        except TimeoutError:
            if timeout >= LONG_TIMEOUTS[0]:
                raise
            direction.receive_timeouts += 1
            continue
        if not data:
            raise AssertionError(f"end of stream after {direction.received:,} of {direction.size:,} bytes")
        if data != expected(direction.start, direction.received, len(data)):
            raise AssertionError(f"wrong bytes at position {direction.received:,} (chunk of {len(data):,})")
        direction.received_crc = zlib.crc32(data, direction.received_crc)
        direction.received += len(data)
        direction.receives += 1
    # Nothing more than the stream: the next receive finds no data.
    with contextlib.suppress(TimeoutError):
        extra = transport.recv(1, 0.0)
        raise AssertionError(f"bytes after the end of the stream: {extra!r}")


@dataclass
class LoadFigures:
    connections: int = 0
    streams: int = 0
    bytes_moved: int = 0
    sends: int = 0
    receives: int = 0
    receive_timeouts: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, int | float | str]:
        return {
            "connections": self.connections,
            "streams": self.streams,
            "bytes_moved": self.bytes_moved,
            "sends": self.sends,
            "receives": self.receives,
            "receive_timeouts_retried": self.receive_timeouts,
            "seconds": round(self.seconds, 1),
        }


def run_load(open_pair: OpenStreamPair, connections: int, stream_size: int, seed: int) -> LoadFigures:
    """Open ``connections`` pairs of mixed kinds and move ``stream_size`` bytes each way on each."""
    rng = random.Random(seed)
    directions: list[Direction] = []
    threads: list[threading.Thread] = []
    failures: list[str] = []
    started = time.monotonic()

    def run(name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")

    with contextlib.ExitStack() as stack:
        for number in range(connections):
            kind = KINDS[number % len(KINDS)]
            a, b = stack.enter_context(open_pair(kind))
            for sender, receiver, way in ((a, b, "a->b"), (b, a, "b->a")):
                direction = Direction(start=rng.randrange(POOL_SIZE), size=stream_size)
                directions.append(direction)
                name = f"connection {number} ({kind}) {way}"
                send_rng, receive_rng = random.Random(rng.random()), random.Random(rng.random())

                def send(t: StreamTransport = sender, d: Direction = direction, r: random.Random = send_rng) -> None:
                    send_stream(t, d, r)

                def receive(
                    t: StreamTransport = receiver, d: Direction = direction, r: random.Random = receive_rng
                ) -> None:
                    receive_stream(t, d, r)

                threads.append(threading.Thread(target=run, args=(f"{name} send", send), daemon=True))
                threads.append(threading.Thread(target=run, args=(f"{name} receive", receive), daemon=True))
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 240.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = sum(thread.is_alive() for thread in threads)
        if stuck:
            # Closing the pairs (on leaving this block) ends the stuck calls.
            failures.append(f"{stuck} threads still blocked after 240 s: a deadlock")
    for thread in threads:
        thread.join(30.0)
    assert not failures, "\n".join(failures[:10])
    for direction in directions:
        assert direction.received == direction.size
        assert direction.received_crc == direction.sent_crc
    return LoadFigures(
        connections=connections,
        streams=len(directions),
        bytes_moved=sum(d.received for d in directions),
        sends=sum(d.sends for d in directions),
        receives=sum(d.receives for d in directions),
        receive_timeouts=sum(d.receive_timeouts for d in directions),
        seconds=time.monotonic() - started,
    )


@contextlib.contextmanager
def descriptors_kept() -> Iterator[None]:
    before = set(os.listdir("/proc/self/fd"))
    yield
    # Closing threads may still be finishing their last close.
    for _ in range(100):
        if set(os.listdir("/proc/self/fd")) <= before:
            return
        time.sleep(0.05)
    assert set(os.listdir("/proc/self/fd")) <= before, "descriptors left open"


@pytest.mark.timeout(300)
def test_64_connections_of_mixed_kinds_move_16_mib_each_way(open_stream_pair: OpenStreamPair, figures: Figures) -> None:
    with descriptors_kept():
        result = run_load(open_stream_pair, CONNECTIONS, STREAM_SIZE, seed=1)
    figures(**result.as_dict())


@pytest.mark.skipif("TRANSPORTS_SOAK_MINUTES" not in os.environ, reason="soak mode: set TRANSPORTS_SOAK_MINUTES=N")
@pytest.mark.timeout(0)
def test_soak(open_stream_pair: OpenStreamPair, figures: Figures) -> None:
    minutes = float(os.environ["TRANSPORTS_SOAK_MINUTES"])
    total = LoadFigures()
    end = time.monotonic() + minutes * 60.0
    rounds = 0
    with descriptors_kept():
        while rounds == 0 or time.monotonic() < end:
            result = run_load(open_stream_pair, CONNECTIONS, STREAM_SIZE, seed=1000 + rounds)
            rounds += 1
            print(f"soak round {rounds}: {result.as_dict()}", flush=True)
            for name in ("connections", "streams", "bytes_moved", "sends", "receives", "receive_timeouts"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
            total.seconds += result.seconds
    print(f"soak total after {rounds} rounds: {total.as_dict()}", flush=True)
    figures(rounds=rounds, **total.as_dict())
