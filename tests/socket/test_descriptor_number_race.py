"""A close() from another thread never lets a new file take a descriptor number still in use.

Gather writes and ``send_file`` hand the socket's descriptor *number* to
``os`` functions, read a moment before the system call. If another thread
closed the transport in that moment, any ``open()`` or ``socket()`` in the
process could take the number and receive the bytes. ``close()`` therefore
leaves the number open (shut down) until such a call returns.

The moment is made deterministic: a socket subclass whose ``fileno()`` hands
out the number and then, before returning it, lets another thread close the
transport and open new sockets, as a thread switch at the worst time would.
"""

from __future__ import annotations

import errno
import math
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from transports.socket import SocketStreamTransport
from transports.socket import _stream as stream_module


class RacingSocket(socket.socket):
    """A socket whose ``calls_before_race``-th fileno() races a close()."""

    calls_before_race = 0
    transport: SocketStreamTransport | None = None
    opened: list[socket.socket]

    def fileno(self) -> int:
        fd = super().fileno()
        if self.calls_before_race and fd >= 0:
            RacingSocket.calls_before_race -= 1
            if not self.calls_before_race:
                thread = threading.Thread(target=self._close_and_reopen)
                thread.start()
                thread.join(10.0)
        return fd

    def _close_and_reopen(self) -> None:
        assert self.transport is not None
        self.transport.close()
        # New sockets take the lowest free numbers, as any open() would.
        for _ in range(4):
            self.opened.extend(socket.socketpair())


@pytest.fixture
def racing_pair() -> Iterator[tuple[RacingSocket, socket.socket]]:
    left, right = socket.socketpair()
    racing = RacingSocket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=left.detach())
    RacingSocket.opened = []
    yield racing, right
    for sock in (racing, right, *RacingSocket.opened):
        sock.close()
    RacingSocket.calls_before_race = 0
    RacingSocket.transport = None


def nothing_leaked() -> bool:
    for sock in RacingSocket.opened:
        try:
            data = sock.recv(100, socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        if data:
            return False
    return True


@pytest.mark.parametrize("timeout", [5.0, math.inf])
def test_gather_write_racing_a_close(racing_pair: tuple[RacingSocket, socket.socket], timeout: float) -> None:
    racing, _peer = racing_pair
    transport = RacingSocket.transport = SocketStreamTransport(racing, 1.0)
    fd = racing.fileno()
    RacingSocket.calls_before_race = 1  # the number read for the write itself
    saved = stream_module._pwritev_nowait
    stream_module._pwritev_nowait = True  # the path that reads the number, even where the kernel refuses it
    try:
        with pytest.raises(OSError) as caught:
            transport.send_all_from_iterable([b"SECRET", b"-DATA"], timeout)
    finally:
        stream_module._pwritev_nowait = saved
    assert caught.value.errno == errno.EBADF
    assert RacingSocket.opened, "the race did not happen"
    assert nothing_leaked()
    assert all(sock.fileno() != fd for sock in RacingSocket.opened)
    assert transport.is_closed()
    with pytest.raises(OSError):  # and the number was closed once the write returned
        os.fstat(fd)


def test_send_file_racing_a_close(racing_pair: tuple[RacingSocket, socket.socket], tmp_path: Path) -> None:
    racing, _peer = racing_pair
    path = tmp_path / "file.bin"
    path.write_bytes(b"SECRET-FILE" * 100)
    transport = RacingSocket.transport = SocketStreamTransport(racing, 1.0)
    fd = racing.fileno()
    RacingSocket.calls_before_race = 1  # the number for os.sendfile()
    with path.open("rb") as file, pytest.raises(OSError):
        transport.send_file(file, 5.0)
    assert RacingSocket.opened, "the race did not happen"
    assert nothing_leaked()
    assert all(sock.fileno() != fd for sock in RacingSocket.opened)
    assert transport.is_closed()
