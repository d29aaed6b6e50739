"""The conformance checks of datagram transports."""

from __future__ import annotations

__all__ = ["DatagramPairFactory", "check_datagram_transport"]

import errno
import math
import time
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, Protocol

from transports.abc._datagram import DatagramTransport

from ._support import (
    INVALID_TIMEOUTS,
    Background,
    check,
    check_after_close,
    check_attributes,
    elapsed,
    expect,
    failures_as_assertions,
)
from ._support import (
    after_a_while as _after_a_while,
)


class DatagramPairFactory(Protocol):
    """Makes a connected pair ``(a, b)`` of datagram transports, as a context manager.

    Packets ``a`` sends, ``b`` receives, and the other way round. Leaving
    the context closes both (they may already be closed) and whatever else
    it made. A function decorated with :func:`contextlib.contextmanager`
    that yields the pair is one.
    """

    def __call__(self) -> AbstractContextManager[tuple[DatagramTransport, DatagramTransport]]: ...


_DATA_TIMEOUT = 10.0
_SLACK = 2.0


def _check_nothing_arrives(transport: DatagramTransport, what: str) -> None:
    expect(TimeoutError, lambda: transport.recv(0.2), f"{what}: a packet arrived", errno_value=errno.ETIMEDOUT)


@failures_as_assertions
def check_datagram_transport(
    make_pair: DatagramPairFactory,
    *,
    too_big: int | None,
    close_ends_blocked_calls_within: float | None = 1.0,
) -> None:
    """Run every datagram check on pairs from ``make_pair``.

    Packets keep their boundaries and order both ways (loopback and local
    sockets do not lose or reorder them); a packet of ``too_big`` bytes is
    refused with ``OSError(EMSGSIZE)`` and nothing of it arrives
    (:data:`None` skips that check); timeouts behave as for streams;
    ``close()`` is idempotent, later calls raise ``OSError(EBADF)``, and a
    close from another thread ends a blocked ``recv`` within
    ``close_ends_blocked_calls_within`` seconds (:data:`None` skips that).

    Raises:
        AssertionError: the first difference from the contract.
    """
    with make_pair() as (a, b):
        for sender, receiver, name in ((a, b, "a to b"), (b, a, "b to a")):
            packets = [name.encode(), b"x" * 1000, bytes(range(256)) * 32, b"last"]
            for packet in packets:
                sender.send(packet, _DATA_TIMEOUT)
            got = [receiver.recv(_DATA_TIMEOUT) for _ in packets]
            check(got == packets, f"{name}: packets arrived as {[len(p) for p in got]} bytes")
        a.send(memoryview(b"--view--")[2:6], _DATA_TIMEOUT)
        check(b.recv(_DATA_TIMEOUT) == b"view", "a memoryview slice was not sent as its bytes")
        if too_big is not None:
            too_big_packet = partial(a.send, bytes(too_big), _DATA_TIMEOUT)
            expect(OSError, too_big_packet, "send() of too big a packet", errno_value=errno.EMSGSIZE)
            _check_nothing_arrives(b, "after the refused packet")
        check_attributes(a)

        expect(TimeoutError, lambda: b.recv(0), "recv(timeout=0) with nothing to read", errno_value=errno.ETIMEDOUT)
        started = time.monotonic()
        expect(TimeoutError, lambda: b.recv(0.2), "recv(timeout=0.2) with nothing to read")
        took = elapsed(started)
        check(0.15 <= took < 0.2 + _SLACK, f"recv(timeout=0.2) gave up after {took:.3f} s")
        a.send(b"kept", _DATA_TIMEOUT)
        for timeout, exception in INVALID_TIMEOUTS:
            expect(exception, partial(b.recv, timeout), f"recv(timeout={timeout!r})")
            expect(exception, partial(a.send, b"lost", timeout), f"send(timeout={timeout!r})")
        check(b.recv(_DATA_TIMEOUT) == b"kept", "a refused call took or sent a packet")
        _check_nothing_arrives(b, "after the refused sends")
        later = Background(partial(_after_a_while, a.send, b"late", _DATA_TIMEOUT), "late-sender")
        check(b.recv(math.inf) == b"late", "recv(timeout=inf) missed a late packet")
        later.result(_DATA_TIMEOUT)

    with make_pair() as (a, _b):
        with a:
            check(not a.is_closed(), "is_closed() is true before close()")
        check(a.is_closed(), "leaving the context did not close the transport")
        check_after_close(a, {"recv": lambda: a.recv(1.0), "send": lambda: a.send(b"x", 1.0)})
    if close_ends_blocked_calls_within is None:
        return
    limit = close_ends_blocked_calls_within
    with make_pair() as (a, _b):
        blocked = Background(lambda: a.recv(60.0), "blocked-recv")
        check(not blocked.finished_within(0.2), "recv did not block")
        started = time.monotonic()
        a.close()
        error: Any = blocked.error(limit + _SLACK)
        took = elapsed(started)
        check(took < limit + _SLACK, f"recv ended {took:.3f} s after close() from another thread")
        check(
            isinstance(error, OSError) and error.errno == errno.EBADF,
            f"recv ended by a close from another thread raised {error!r}, not OSError(EBADF)",
        )
