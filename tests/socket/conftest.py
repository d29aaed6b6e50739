"""Fixtures shared by the transports.socket tests.

Everything here works with real sockets on the loopback interface. Every
socket, transport, thread and temporary directory a fixture makes is
cleaned up at teardown, whatever the test did, so a failing test never
leaks a descriptor into the next one (a leak would surface as a
ResourceWarning, which the configuration turns into an error).

Test modules cannot import from each other or from this file (pytest runs
with ``--import-mode=importlib``), so helpers are handed out as fixtures.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

# Peer sockets never block longer than this: a bug fails the test, not the run.
PEER_TIMEOUT = 10.0

SocketPair = tuple[socket.socket, socket.socket]


def _ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6_LOOPBACK = _ipv6_loopback_works()


def require_kind(kind: str) -> None:
    """Skip the test cleanly when ``kind`` needs an IPv6 loopback that is missing."""
    if kind.endswith("6") and not IPV6_LOOPBACK:
        pytest.skip("no IPv6 loopback (::1) on this machine")


@pytest.fixture(name="require_kind")
def require_kind_fixture() -> Callable[[str], None]:
    """:func:`require_kind`, for test modules (a conftest is not imported by name)."""
    return require_kind


@pytest.fixture
def cleanup() -> Iterator[Callable[[Any], Any]]:
    """Register something with a ``close()`` method to close at teardown; returns it."""
    things: list[Any] = []

    def register(thing: Any) -> Any:
        things.append(thing)
        return thing

    yield register
    for thing in reversed(things):
        with contextlib.suppress(OSError):
            thing.close()


def _stream_pair(kind: str) -> SocketPair:
    if kind == "unix":
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    family, host = (socket.AF_INET, "127.0.0.1") if kind == "tcp4" else (socket.AF_INET6, "::1")
    with socket.create_server((host, 0), family=family) as listener:
        client = socket.create_connection(listener.getsockname()[:2], timeout=PEER_TIMEOUT)
        try:
            server, _ = listener.accept()
        except BaseException:
            client.close()
            raise
    return client, server


def _datagram_pair(kind: str) -> SocketPair:
    if kind == "unix":
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    family, host = (socket.AF_INET, "127.0.0.1") if kind == "udp4" else (socket.AF_INET6, "::1")
    left = socket.socket(family, socket.SOCK_DGRAM)
    right = socket.socket(family, socket.SOCK_DGRAM)
    try:
        left.bind((host, 0))
        right.bind((host, 0))
        left.connect(right.getsockname())
        right.connect(left.getsockname())
    except BaseException:
        left.close()
        right.close()
        raise
    return left, right


@pytest.fixture
def stream_pair(cleanup: Callable[[Any], Any]) -> Callable[[str], SocketPair]:
    """Make a connected ``SOCK_STREAM`` pair: ``"tcp4"``, ``"tcp6"`` or ``"unix"``.

    The second socket is the peer: blocking, with a timeout of PEER_TIMEOUT.
    """

    def make(kind: str) -> SocketPair:
        require_kind(kind)
        ours, peer = _stream_pair(kind)
        cleanup(ours)
        cleanup(peer)
        ours.settimeout(None)
        peer.settimeout(PEER_TIMEOUT)
        return ours, peer

    return make


@pytest.fixture
def datagram_pair(cleanup: Callable[[Any], Any]) -> Callable[[str], SocketPair]:
    """Make a connected ``SOCK_DGRAM`` pair: ``"udp4"``, ``"udp6"`` or ``"unix"``.

    The second socket is the peer: blocking, with a timeout of PEER_TIMEOUT.
    """

    def make(kind: str) -> SocketPair:
        require_kind(kind)
        ours, peer = _datagram_pair(kind)
        cleanup(ours)
        cleanup(peer)
        peer.settimeout(PEER_TIMEOUT)
        return ours, peer

    return make


@pytest.fixture
def spawn() -> Iterator[Callable[..., Future[Any]]]:
    """Run ``fn(*args)`` in a thread; returns its Future. Threads are joined at teardown."""
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="peer") as executor:
        yield executor.submit


@pytest.fixture
def short_tmp_dir() -> Iterator[str]:
    """A fresh directory with a short path, for AF_UNIX socket files (107-byte limit)."""
    path = tempfile.mkdtemp(prefix="ts-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def open_fd_count() -> Callable[[], int]:
    """Count the descriptors this process has open (Linux: /proc/self/fd)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")

    def count() -> int:
        # listdir itself opens a descriptor while it runs; it is counted every
        # time, so counts stay comparable.
        return len(os.listdir("/proc/self/fd"))

    return count
