"""Fixtures shared by the transports.composite tests."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

SocketPairFactory = Callable[[int], tuple[socket.socket, socket.socket]]


@pytest.fixture
def make_socketpair() -> Iterator[SocketPairFactory]:
    """Build connected AF_UNIX socket pairs (``SOCK_STREAM`` or ``SOCK_DGRAM``).

    Every socket made is closed at teardown, whatever the test did with it,
    so a failing test never leaks one (a leak would fail the next test
    through the ResourceWarning turned into an error).
    """
    made: list[socket.socket] = []

    def make(sock_type: int) -> tuple[socket.socket, socket.socket]:
        left, right = socket.socketpair(socket.AF_UNIX, sock_type)
        made.extend((left, right))
        # Bound every blocking call of the test helpers, so a bug fails the
        # test instead of hanging until pytest-timeout.
        left.settimeout(10.0)
        right.settimeout(10.0)
        return left, right

    yield make
    for sock in made:
        sock.close()
