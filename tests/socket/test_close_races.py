"""close() from several threads at once, and very long waits."""

from __future__ import annotations

import errno
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from transports.socket import SocketDatagramTransport, SocketStreamTransport


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


@pytest.mark.usefixtures("fast_thread_switching")
@pytest.mark.parametrize("kind", ["stream", "datagram"])
def test_concurrent_close_never_raises(kind: str) -> None:
    for _ in range(300):
        if kind == "stream":
            left, right = socket.socketpair()
            transport: SocketStreamTransport | SocketDatagramTransport = SocketStreamTransport(left, 1.0)
        else:
            left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            transport = SocketDatagramTransport(left, 1.0)
        barrier = threading.Barrier(3)
        errors: list[BaseException] = []

        def close_it(
            barrier: threading.Barrier = barrier, transport: object = transport, errors: list[BaseException] = errors
        ) -> None:
            barrier.wait()
            try:
                transport.close()  # type: ignore[attr-defined]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=close_it) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        right.close()
        assert errors == []
        assert transport.is_closed()


def test_year_long_retry_interval_and_month_long_timeout() -> None:
    """poll() takes an int of milliseconds; valid long waits must not overflow it."""
    left, right = socket.socketpair()
    with right, SocketStreamTransport(left, 365 * 86400.0) as transport:
        timer = threading.Timer(0.1, right.sendall, args=(b"late",))
        timer.start()
        try:
            assert transport.recv(10, math.inf) == b"late"
        finally:
            timer.join()
        timer = threading.Timer(0.1, right.sendall, args=(b"later",))
        timer.start()
        try:
            assert transport.recv(10, 30 * 86400.0) == b"later"
        finally:
            timer.join()


@pytest.mark.usefixtures("fast_thread_switching")
@pytest.mark.parametrize(("kind", "timeout"), [("unix", math.inf), ("unix", 30.0), ("tcp4", math.inf), ("tcp4", 30.0)])
def test_close_racing_a_receive_never_reads_as_the_end_of_the_stream(
    stream_pair: Callable[[str], tuple[socket.socket, socket.socket]], kind: str, timeout: float
) -> None:
    """A receive that a close() of another thread overlaps fails with EBADF, wherever the close lands.

    The peer sends nothing and stays open: an empty result could only come
    from the close's own shutdown, read as an end of stream. The close lands
    before the receive starts, while it waits in the kernel or in poll, or
    as it registers its wait; half of the receives wait first.
    """
    for attempt in range(300):
        ours, _peer = stream_pair(kind)
        transport = SocketStreamTransport(ours, 30.0)  # only the shutdown may end the wait
        if attempt % 2:
            with pytest.raises(TimeoutError):
                transport.recv(10, 0)  # the next receives wait first
        result: list[object] = []

        def receive(transport: SocketStreamTransport = transport, result: list[object] = result) -> None:
            try:
                result.append(transport.recv(10, timeout))
            except OSError as exc:
                result.append(exc)

        reader = threading.Thread(target=receive)
        reader.start()
        if attempt % 3:
            time.sleep(0.0005 * (attempt % 5))
        transport.close()
        reader.join(10)
        assert not reader.is_alive(), "the close did not end the receive"
        (outcome,) = result
        assert isinstance(outcome, OSError), f"the receive returned {outcome!r}"
        assert outcome.errno == errno.EBADF
