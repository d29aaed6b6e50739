"""Calls of another thread that meet a stream transport's close() half-way raise EBADF.

``close()`` of a TCP or Unix stream transport shuts the connection down,
then closes the descriptor. A call made between the two finds a socket
that is still open but shut down: a receive would read an end of stream,
a send would get ``EPIPE``, a call that takes the descriptor number would
use a number that the close frees a moment later. Each of them must raise
``OSError(EBADF)`` instead, and nothing may reach a file that takes the
number afterwards.

The moment is made on purpose: the closing thread stops right after its
shutdown system call returns (a profile hook in that thread only), while
this thread makes the call.
"""

from __future__ import annotations

import errno
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from transports.socket import SocketStreamTransport

SocketPair = tuple[socket.socket, socket.socket]


@contextmanager
def close_stopped_after_its_shutdown(
    transport: SocketStreamTransport, go_on: threading.Event | None = None, done: threading.Event | None = None
) -> Iterator[None]:
    """Run ``transport.close()`` in a thread that waits right after its shutdown.

    It goes on when the block ends, or when ``go_on`` is set; ``done`` is
    set once the close has returned.
    """
    stopped = threading.Event()
    go_on = threading.Event() if go_on is None else go_on

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_return" and getattr(arg, "__name__", "") == "shutdown" and not stopped.is_set():
            stopped.set()
            go_on.wait(10)

    def close() -> None:
        sys.setprofile(profile)
        try:
            transport.close()
        finally:
            sys.setprofile(None)
            if done is not None:
                done.set()

    closer = threading.Thread(target=close)
    closer.start()
    try:
        assert stopped.wait(10), "close() made no shutdown"
        yield
    finally:
        go_on.set()
        closer.join(10)
    assert not closer.is_alive()
    assert transport.is_closed()


def nothing_arrived(socks: list[socket.socket]) -> bool:
    for sock in socks:
        try:
            if sock.recv(100, socket.MSG_DONTWAIT):
                return False
        except BlockingIOError:
            continue
    return True


CALLS: dict[str, Callable[[SocketStreamTransport, Path], object]] = {
    "recv, trying first": lambda t, _: t.recv(100, 5.0),
    # (retry_interval is 30 s: a shorter timeout waits with poll, a longer one in C.)
    "recv, waiting first with poll": lambda t, _: t.recv(100, 5.0),
    "recv, waiting first in C": lambda t, _: t.recv(100, 60.0),
    "recv_into": lambda t, _: t.recv_into(bytearray(100), 5.0),
    "recv_noblock": lambda t, _: t.recv_noblock(100),
    "recv_noblock_into": lambda t, _: t.recv_noblock_into(bytearray(100)),
    "send": lambda t, _: t.send(b"SECRET", 5.0),
    "send_noblock": lambda t, _: t.send_noblock(b"SECRET"),
    "send_all": lambda t, _: t.send_all(b"SECRET", 5.0),
    "send_all_from_iterable": lambda t, _: t.send_all_from_iterable([b"SEC", b"RET"], 5.0),
    "send_file": lambda t, path: send_file(t, path),
}


def send_file(transport: SocketStreamTransport, path: Path) -> int:
    with path.open("rb") as file:
        return transport.send_file(file, 5.0)


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("kind", ["unix", "tcp4"])
def test_a_call_during_a_close_raises_ebadf_and_uses_no_number(
    stream_pair: Callable[[str], SocketPair], call: str, kind: str, tmp_path: Path
) -> None:
    ours, peer = stream_pair(kind)
    path = tmp_path / "file.bin"
    path.write_bytes(b"SECRET-FILE" * 100)
    transport = SocketStreamTransport(ours, 30.0)
    if "waiting first" in call:
        with pytest.raises(TimeoutError):
            transport.recv(100, 0)  # the next receives wait first
    opened: list[socket.socket] = []
    try:
        with close_stopped_after_its_shutdown(transport):
            with pytest.raises(OSError) as caught:
                CALLS[call](transport, path)
            assert caught.value.errno == errno.EBADF, repr(caught.value)
        # The number is free now: new sockets take it, and must get nothing.
        for _ in range(4):
            opened.extend(socket.socketpair())
        assert nothing_arrived(opened)
        assert peer.recv(100) == b""  # the peer saw the shutdown, and none of the data
    finally:
        for sock in opened:
            sock.close()


class NumberRacingSocket(socket.socket):
    """A socket whose next fileno(), once armed, lets the close finish and new sockets take the number."""

    armed: Callable[[], None] | None = None

    def fileno(self) -> int:
        fd = super().fileno()
        action, NumberRacingSocket.armed = NumberRacingSocket.armed, None
        if action is not None:
            action()  # as a thread switch at the worst time would
        return fd


@pytest.mark.parametrize("timeout", [5.0, float("inf")])
def test_a_gather_write_that_starts_during_a_close_never_writes_to_the_freed_number(
    stream_pair: Callable[[str], SocketPair], timeout: float
) -> None:
    # A gather write takes the descriptor number. It registers first; a
    # close() that already looked for registered calls must not let it read
    # the number, which that close frees a moment later for any file to take.
    left, peer = stream_pair("unix")
    racing = NumberRacingSocket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=left.detach())
    transport = SocketStreamTransport(racing, 30.0)
    opened: list[socket.socket] = []
    release = threading.Event()

    def finish_the_close_and_reopen() -> None:
        release.set()
        closer_done.wait(10)
        for _ in range(4):  # new sockets take the lowest free numbers, as any open() would
            opened.extend(socket.socketpair())

    closer_done = threading.Event()
    try:
        with close_stopped_after_its_shutdown(transport, release, closer_done):
            NumberRacingSocket.armed = finish_the_close_and_reopen
            with pytest.raises(OSError) as caught:
                transport.send_all_from_iterable([b"SECRET", b"-DATA"], timeout)
            assert caught.value.errno == errno.EBADF
        assert nothing_arrived(opened)
    finally:
        NumberRacingSocket.armed = None
        for sock in (racing, *opened):
            sock.close()
    assert peer.recv(100) == b""


@pytest.mark.parametrize("kind", ["unix", "tcp4"])
def test_a_second_close_returns_only_once_the_socket_is_closed(
    stream_pair: Callable[[str], SocketPair], kind: str
) -> None:
    # Another thread's close() that is half-way does not make this one return
    # early: after any close() returns, the transport is closed.
    ours, peer = stream_pair(kind)
    transport = SocketStreamTransport(ours, 30.0)
    with close_stopped_after_its_shutdown(transport):
        transport.close()
        assert transport.is_closed()
        assert ours.fileno() == -1
    assert peer.recv(100) == b""
    transport.close()  # and again, once both have returned
    assert transport.is_closed()
