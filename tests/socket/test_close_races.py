"""close() from several threads at once, and very long waits."""

from __future__ import annotations

import math
import socket
import sys
import threading
from collections.abc import Iterator

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
