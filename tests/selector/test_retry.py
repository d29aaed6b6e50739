"""SelectorBaseTransport._retry and the waits under it, on real descriptors."""

from __future__ import annotations

import errno
import itertools
import math
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from transports.selector import PipeReadTransport, SelectorBaseTransport, WouldBlockOnRead, WouldBlockOnWrite

# A wait may end a little late on a loaded 2-core machine; never early.
LATE_MARGIN = 0.25


class Bare(SelectorBaseTransport):
    """Just enough of a transport to call _retry on."""

    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False


@pytest.fixture
def idle_pipe() -> Iterator[tuple[int, int]]:
    """A pipe that nobody writes to: its read end never becomes readable."""
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def would_block_on(fd: int, calls: list[float]) -> Callable[[], None]:
    def callback() -> None:
        calls.append(time.monotonic())
        raise WouldBlockOnRead(fd)

    return callback


def test_would_block_exceptions_carry_the_descriptor() -> None:
    assert WouldBlockOnRead(7).fileno == 7
    assert WouldBlockOnWrite(9).fileno == 9
    assert not issubclass(WouldBlockOnRead, OSError)


def test_success_on_first_try_does_no_waiting(counting_factory: Callable[[], selectors.BaseSelector]) -> None:
    transport = Bare(1.0, counting_factory)
    result, remaining = transport._retry(lambda: "done", 5.0)
    assert result == "done"
    assert remaining == 5.0
    assert counting_factory.made == []  # type: ignore[attr-defined]


def test_timeout_is_respected(idle_pipe: tuple[int, int]) -> None:
    calls: list[float] = []
    start = time.monotonic()
    with pytest.raises(TimeoutError) as exc_info:
        Bare(math.inf)._retry(would_block_on(idle_pipe[0], calls), 0.2)
    elapsed = time.monotonic() - start
    assert exc_info.value.errno == errno.ETIMEDOUT
    assert 0.2 <= elapsed < 0.2 + LATE_MARGIN


def test_timeout_zero_tries_exactly_once(idle_pipe: tuple[int, int]) -> None:
    calls: list[float] = []
    with pytest.raises(TimeoutError):
        Bare(1.0)._retry(would_block_on(idle_pipe[0], calls), 0)
    assert len(calls) == 1


@pytest.mark.parametrize("timeout", [-0.1, -math.inf, math.nan])
def test_bad_timeout_raises_before_any_call(timeout: float) -> None:
    calls: list[float] = []
    with pytest.raises(ValueError, match="timeout"):
        Bare(1.0)._retry(lambda: calls.append(0.0), timeout)
    assert calls == []


def test_infinite_timeout_waits_until_ready(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = socket_pair
    left.setblocking(False)

    def recv() -> bytes:
        try:
            return left.recv(10)
        except BlockingIOError:
            raise WouldBlockOnRead(left.fileno()) from None

    timer = threading.Timer(0.1, right.send, args=(b"ping",))
    timer.start()
    try:
        result, remaining = Bare(math.inf)._retry(recv, math.inf)
    finally:
        timer.join()
    assert result == b"ping"
    assert remaining == math.inf


def test_remaining_budget_is_returned(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = socket_pair
    left.setblocking(False)

    def recv() -> bytes:
        try:
            return left.recv(10)
        except BlockingIOError:
            raise WouldBlockOnRead(left.fileno()) from None

    timer = threading.Timer(0.1, right.send, args=(b"x",))
    timer.start()
    try:
        _, remaining = Bare(1.0)._retry(recv, 5.0)
    finally:
        timer.join()
    assert 5.0 - 1.0 < remaining <= 5.0 - 0.09


def test_given_selector_factory_is_used_for_every_wait(
    idle_pipe: tuple[int, int], counting_factory: Callable[[], selectors.BaseSelector]
) -> None:
    calls: list[float] = []
    with pytest.raises(TimeoutError):
        Bare(0.05, counting_factory)._retry(would_block_on(idle_pipe[0], calls), 0.3)
    made = counting_factory.made  # type: ignore[attr-defined]
    registrations = counting_factory.registrations  # type: ignore[attr-defined]
    # One selector per wait, each waiting for the read end to be readable;
    # a call after every wait but a last one cut short by the budget.
    assert len(calls) - 1 <= len(made) <= len(calls)
    assert len(made) >= 3
    assert set(registrations) == {(idle_pipe[0], selectors.EVENT_READ)}


def test_write_waits_register_for_writing(counting_factory: Callable[[], selectors.BaseSelector]) -> None:
    r, w = os.pipe()
    try:
        os.set_blocking(w, False)
        tries = 0

        def write() -> int:
            nonlocal tries
            tries += 1
            if tries == 1:
                raise WouldBlockOnWrite(w)
            return os.write(w, b"x")

        assert Bare(1.0, counting_factory)._retry(write, 1.0)[0] == 1
        assert counting_factory.registrations == [(w, selectors.EVENT_WRITE)]  # type: ignore[attr-defined]
    finally:
        os.close(r)
        os.close(w)


def test_retry_interval_bounds_a_single_wait(idle_pipe: tuple[int, int]) -> None:
    calls: list[float] = []
    with pytest.raises(TimeoutError):
        Bare(0.05)._retry(would_block_on(idle_pipe[0], calls), 0.5)
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert len(calls) >= 5
    assert max(gaps) < 0.05 + LATE_MARGIN
    # The last wait is cut short by the end of the budget, the others are not.
    assert min(gaps[:-1]) >= 0.045


def test_waiting_on_a_closed_descriptor_is_ebadf() -> None:
    calls: list[float] = []
    with pytest.raises(OSError) as exc_info:
        Bare(1.0)._retry(would_block_on(-1, calls), math.inf)
    assert exc_info.value.errno == errno.EBADF


def test_waiting_on_a_descriptor_that_is_not_open_is_ebadf() -> None:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    calls: list[float] = []
    start = time.monotonic()
    with pytest.raises(OSError) as exc_info:
        Bare(math.inf)._retry(would_block_on(r, calls), math.inf)
    assert exc_info.value.errno == errno.EBADF
    assert time.monotonic() - start < 1.0


def test_close_from_another_thread_ends_a_blocked_recv() -> None:
    r, w = os.pipe()
    transport = PipeReadTransport(r, retry_interval=0.1)
    closed_at: list[float] = []

    def close_later() -> None:
        time.sleep(0.2)
        closed_at.append(time.monotonic())
        transport.close()

    closer = threading.Thread(target=close_later)
    closer.start()
    try:
        with pytest.raises(OSError) as exc_info:
            transport.recv(10, math.inf)
        ended = time.monotonic()
    finally:
        closer.join()
        os.close(w)
    assert exc_info.value.errno == errno.EBADF
    assert ended - closed_at[0] < 0.1 + LATE_MARGIN


@pytest.mark.parametrize("interval", [0, -1.0, math.nan, -math.inf])
def test_bad_retry_interval(interval: float) -> None:
    with pytest.raises(ValueError, match="retry_interval"):
        Bare(interval)


def test_retry_interval_must_be_a_number() -> None:
    with pytest.raises(TypeError):
        Bare("1")  # type: ignore[arg-type]


def test_other_exceptions_from_the_callback_propagate() -> None:
    def fail() -> None:
        raise ConnectionResetError(errno.ECONNRESET, "reset")

    with pytest.raises(ConnectionResetError):
        Bare(1.0)._retry(fail, math.inf)


@pytest.mark.parametrize("factory", [None, selectors.PollSelector], ids=["reused poll", "selector_factory"])
def test_a_wait_the_budget_cut_short_is_not_followed_by_a_call(
    idle_pipe: tuple[int, int], factory: Callable[[], selectors.BaseSelector] | None
) -> None:
    transport = Bare(10.0, factory)  # every wait here is limited by the budget, not the interval
    calls: list[float] = []
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        transport._retry(would_block_on(idle_pipe[0], calls), 0.2)
    assert len(calls) == 1  # the first try; the wait ran the budget out
    assert time.monotonic() - started >= 0.19
    calls.clear()
    with pytest.raises(TimeoutError):
        transport._after_would_block(idle_pipe[0], would_block_on(idle_pipe[0], calls), False, 0.2)
    assert calls == []
    with pytest.raises(TimeoutError):  # the wait-first receive path too
        transport._wait_readable(idle_pipe[0], 0.2)
