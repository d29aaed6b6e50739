"""close() from another thread ends every wait, even when a new file takes the number at once.

A wait in ``poll`` (finite timeouts, the ancillary receive, ``send_file``,
any ``selector_factory``) and a timed wait in C are woken by close()'s
shutdown, and the kernel then looks the descriptor *number* up again. Had
close() released the number already, a file opened by another thread in
that moment would take it, and the wait would go on, on that file, until
its own timeout. Here the closing thread opens sockets right after close(),
as such a thread would, and every blocked call must end within a second.
"""

from __future__ import annotations

import errno
import math
import os
import selectors
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from transports.socket import SocketStreamTransport, ancillary_space_for_fds

TRIALS = 20
# Each blocked call would wait at least this long if the close were missed.
LONG = 60.0


def block_in_poll_with_a_finite_timeout(transport: SocketStreamTransport, tmp_path: Path) -> Any:
    return transport.recv(100, LONG)


def block_in_a_timed_wait_in_c(transport: SocketStreamTransport, tmp_path: Path) -> Any:
    with pytest.raises(TimeoutError):  # receives wait first from now on
        transport.recv(100, 0)
    return transport.recv(100, LONG)


def block_in_an_ancillary_receive(transport: SocketStreamTransport, tmp_path: Path) -> Any:
    return transport.recv_with_ancillary(100, ancillary_space_for_fds(1), LONG)


def block_in_a_send_with_a_finite_timeout(transport: SocketStreamTransport, tmp_path: Path) -> Any:
    transport.send_all(b"x" * (64 * 1024 * 1024), LONG)  # nobody reads


def block_in_send_file(transport: SocketStreamTransport, tmp_path: Path) -> Any:
    path = tmp_path / "big.bin"
    with path.open("wb") as file:
        file.truncate(64 * 1024 * 1024)
    with path.open("rb") as file:
        return transport.send_file(file, LONG)


CASES: dict[str, tuple[Callable[[SocketStreamTransport, Path], Any], dict[str, Any]]] = {
    "poll, finite timeout": (block_in_poll_with_a_finite_timeout, {"retry_interval": math.inf}),
    "timed wait in C": (block_in_a_timed_wait_in_c, {"retry_interval": LONG}),
    "ancillary receive": (block_in_an_ancillary_receive, {"retry_interval": math.inf}),
    "selector_factory": (
        block_in_poll_with_a_finite_timeout,
        {"retry_interval": math.inf, "selector_factory": selectors.DefaultSelector},
    ),
    "send, finite timeout": (block_in_a_send_with_a_finite_timeout, {"retry_interval": math.inf}),
    "send_file": (block_in_send_file, {"retry_interval": math.inf}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_close_ends_the_wait_whatever_takes_the_number(case: str, tmp_path: Path) -> None:
    block, options = CASES[case]
    retry_interval = options.pop("retry_interval")
    for _ in range(TRIALS):
        ours, peer = socket.socketpair()
        transport = SocketStreamTransport(ours, retry_interval, **options)
        fd = ours.fileno()
        outcome: list[BaseException | None] = []

        def run(transport: SocketStreamTransport = transport, outcome: list[BaseException | None] = outcome) -> None:
            try:
                block(transport, tmp_path)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        blocked = threading.Thread(target=run)
        blocked.start()
        blocked.join(0.05)  # let it block
        transport.close()
        taken = [end for _ in range(8) for end in socket.socketpair()]  # the lowest free numbers
        blocked.join(1.0)
        still_blocked = blocked.is_alive()
        for sock in (*taken, peer):
            sock.close()  # ends the wait of a missed close, on the file that took the number
        blocked.join(10.0)
        assert not still_blocked, f"{case}: the close was missed"
        assert len(outcome) == 1
        assert isinstance(outcome[0], OSError), outcome
        assert outcome[0].errno == errno.EBADF, outcome
        with pytest.raises(OSError):  # the last call out closed the number
            os.fstat(fd)
