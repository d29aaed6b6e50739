"""SelectorBaseTransport: retry a non-blocking operation until it succeeds.

How waiting works, and why
--------------------------
Every blocking method of this layer is a loop: call a non-blocking
operation; if it raises :class:`WouldBlockOnRead` / :class:`WouldBlockOnWrite`,
wait until the named descriptor is ready, then call it again. The loop is
:meth:`SelectorBaseTransport._retry`.

- The first try is free: no clock read, no allocation. Most calls on a
  busy connection succeed at once, so that is the case to optimise.
- The budget starts at the first would-block. The non-blocking call does
  not block, so the time before it is negligible; each wait then gets what
  is left of the budget (:func:`transports.abc.time_left`).
- Without a ``selector_factory`` a transport keeps one ``select.poll``
  object per direction, created on the first wait and reused, instead of
  building a selector per wait (about 3 us against well under 1 us). Read
  and write waits use different poll objects, so one thread may read while
  another writes. With a factory, every wait uses a selector from it:
  callers rely on that to count waits or to wait on unusual descriptors.
- ``retry_interval`` bounds a single wait. On Linux, closing a descriptor
  that another thread is polling does not wake that thread; after at most
  ``retry_interval`` it tries the operation again, which then fails
  because the transport is closed (the operation reads the descriptor from
  the transport, never from the poll registration, so a reused descriptor
  number is never acted on).
- A descriptor of ``-1`` (a closed socket) or one that poll reports as
  invalid raises ``OSError(EBADF)`` instead of waiting forever.
- Receiving: try first, or wait first. A non-blocking receive that
  finds nothing costs far more than one that succeeds: CPython builds a
  :exc:`BlockingIOError` (about 3 us, against 0.1 us for the system call
  and 0.7 us for a ``poll``). On a busy connection data is usually there,
  so receives try first. In a request/response exchange it is usually
  not: the receive comes right after the request went out. So once a
  receive would block, the next :data:`WAIT_FIRST_CALLS` receives wait for
  readiness first (as a socket with a timeout does in C), and the one
  after that is a probe that tries first again. A probe that finds data
  brings back trying first; a probe that would block doubles the next run
  of waiting-first receives, up to :data:`MAX_WAIT_FIRST_CALLS`, so a
  steady ping-pong pays for a failed probe once in a thousand calls. A
  wrong guess costs one ``poll`` at most, and results, timeouts and errors
  are the same either way.
  The state and the helpers for it (:meth:`_read_would_block`,
  :meth:`_read_probe_found_data`, :meth:`_wait_readable`,
  :meth:`_after_would_block`) live here so that every layer's receive hot
  path uses the same rule.

Closing from another thread
---------------------------
A wait takes the descriptor *number*, and the kernel looks it up again
each time the wait wakes. A transport whose close() can wake its waiters
(a stream socket's shutdown) must not free the number before they have
left: a file opened by any thread in the meantime would take it, and the
woken wait would go on, on that file. So every wait registers in
``_descriptor_users`` (a deque: append and pop are atomic) and then checks
``_closing``; such a close() sets ``_closing``, wakes the waiters, and
then leaves its descriptor in ``_pending_close`` if any is registered.
Whatever the interleaving, either the wait sees ``_closing`` (and raises
``EBADF`` without waiting) or the close sees the wait; the last one to
leave closes the descriptor (:meth:`SelectorBaseTransport._release_descriptor`).
The append is the first statement inside the ``try`` whose ``finally``
pops: an exception that a signal handler raises as the append returns is
then still matched by the pop, and no registration outlives its call.
A transport whose close() cannot wake its waiters (a pipe) closes at once
and relies on ``retry_interval``, as above.
"""

from __future__ import annotations

__all__ = ["SelectorBaseTransport"]

import math
import select
import selectors
from collections import deque
from collections.abc import Callable
from functools import partial
from time import monotonic
from typing import Any, ClassVar, Final, Protocol, TypeVar

from transports.abc import BaseTransport, deadline_after, time_left, timeout_error, validate_timeout
from transports.abc._family import closed_error

from ._exceptions import WouldBlockOnRead, WouldBlockOnWrite

_T_Return = TypeVar("_T_Return")


def concurrent_poll(exc: RuntimeError) -> bool:
    """Whether ``exc`` is CPython refusing a second thread in one poll object's ``poll()``.

    Anything else (a signal handler's own RuntimeError, for one) goes on up.
    """
    return type(exc) is RuntimeError and exc.__traceback__ is not None and exc.__traceback__.tb_next is None


class _Closable(Protocol):
    def close(self) -> None: ...


_HAS_POLL = hasattr(select, "poll")
_POLLIN = getattr(select, "POLLIN", 0)
_POLLOUT = getattr(select, "POLLOUT", 0)
_POLLNVAL = getattr(select, "POLLNVAL", 0)

# The longest single poll: poll() and epoll take an int of milliseconds (about
# 24.8 days at most); a longer wait is several waits, which _retry does anyway.
_MAX_WAIT: Final[float] = 86400.0

#: After a receive would block, this many receive calls wait for readiness
#: before they try (at first; see "Receiving" above).
WAIT_FIRST_CALLS: Final[int] = 8

#: The longest run of waiting-first receives between two probes.
MAX_WAIT_FIRST_CALLS: Final[int] = 1024


class SelectorBaseTransport(BaseTransport):
    """Base class for transports that wait for descriptor readiness.

    Parameters:
        retry_interval: the longest single wait, in seconds, before the
            operation is tried again (so that a close from another thread is
            noticed); :data:`math.inf` disables it.
        selector_factory: a callable returning a
            :class:`selectors.BaseSelector`. When given, it makes the selector
            of every wait. When omitted, the transport waits however is
            fastest (a reused ``poll`` object), with identical behaviour.

    Raises:
        ValueError: ``retry_interval`` is zero, negative or NaN.
        TypeError: ``retry_interval`` is not a number.
    """

    __slots__ = (
        "_closing",
        "_descriptor_users",
        "_pending_close",
        "_read_fd",
        "_read_poller",
        "_read_wait_run",
        "_read_waits_first",
        "_retry_interval",
        "_retry_milliseconds",
        "_selector_factory",
        "_write_fd",
        "_write_poller",
    )

    def __init__(
        self,
        retry_interval: float,
        selector_factory: Callable[[], selectors.BaseSelector] | None = None,
    ) -> None:
        if not retry_interval > 0:
            if math.isnan(retry_interval):
                raise ValueError("retry_interval must not be NaN")
            raise ValueError("retry_interval must be positive")
        if selector_factory is None and not _HAS_POLL:
            selector_factory = selectors.DefaultSelector
        self._retry_interval: float = float(retry_interval)
        # What poll() takes for a wait of retry_interval (rounded up, as in _wait()).
        self._retry_milliseconds = math.ceil(self._retry_interval * 1000.0) if retry_interval <= _MAX_WAIT else -1
        self._selector_factory = selector_factory
        self._read_poller: select.poll | None = None
        self._read_fd = -1
        self._write_poller: select.poll | None = None
        self._write_fd = -1
        # "Receiving" in the module docstring: receive calls left that wait
        # first (> 0), the next one is a probe (0), or try first (< 0); and
        # the length of the next run of waiting-first calls.
        self._read_waits_first = -1
        self._read_wait_run = WAIT_FIRST_CALLS
        # "Closing from another thread" in the module docstring.
        self._closing = False
        self._descriptor_users: deque[None] = deque()
        self._pending_close: _Closable | None = None

    def _retry(self, callback: Callable[[], _T_Return], timeout: float) -> tuple[_T_Return, float]:
        """Call ``callback`` until it stops raising ``WouldBlockOn*``.

        Between tries, wait until the exception's descriptor is ready, at most
        ``min(time left, retry_interval)`` at a time. A wait that what is
        left of the budget cut short, and that ended with the descriptor not
        ready, raises :exc:`TimeoutError` without another call: the call
        could only fail, or worse, succeed after the deadline.

        Parameters:
            callback: the non-blocking operation.
            timeout: the budget in seconds; ``0`` tries exactly once.

        Raises:
            ValueError: ``timeout`` is negative or NaN (before any call).
            TimeoutError: the budget ran out.
            OSError: ``EBADF`` when the descriptor to wait for is closed;
                anything ``callback`` raises propagates.

        Returns:
            The callback's result and the time left of the budget.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        try:
            return callback(), timeout
        except WouldBlockOnRead as exc:
            fileno, want_write = exc.fileno, False
        except WouldBlockOnWrite as exc:
            fileno, want_write = exc.fileno, True
        deadline = deadline_after(timeout)
        retry_interval = self._retry_interval
        while True:
            left = time_left(deadline)
            if left <= 0.0:
                raise timeout_error()
            if left < retry_interval:
                if not self._wait(fileno, want_write, left):
                    raise timeout_error()  # the budget ran out waiting: no call more
            else:
                self._wait(fileno, want_write, retry_interval)
            try:
                return callback(), time_left(deadline)
            except WouldBlockOnRead as exc:
                fileno, want_write = exc.fileno, False
            except WouldBlockOnWrite as exc:
                fileno, want_write = exc.fileno, True

    def _after_would_block(
        self,
        fileno: int,
        callback: Callable[[], _T_Return],
        want_write: bool,
        timeout: float,
    ) -> tuple[_T_Return, float]:
        """Finish an operation whose first non-blocking try would block.

        Waits for ``fileno`` (at most ``min(timeout, retry_interval)``), then
        hands over to :meth:`_retry` with what is left of the budget.
        ``callback`` is the operation's ``*_noblock`` form. ``timeout`` must
        already be validated; ``0`` raises :exc:`TimeoutError` at once (the
        one try was made).

        Raises:
            TimeoutError: the budget ran out.
            OSError: ``EBADF`` when the descriptor is closed; anything
                ``callback`` raises.

        Returns:
            The callback's result and the time left of the budget.
        """
        if timeout <= 0.0:
            raise timeout_error()
        retry_interval = self._retry_interval
        if timeout == math.inf:
            self._wait(fileno, want_write, retry_interval)
            return self._retry(callback, math.inf)
        deadline = monotonic() + timeout
        if timeout < retry_interval:
            if not self._wait(fileno, want_write, timeout):
                raise timeout_error()  # the budget ran out waiting: no call more
        else:
            self._wait(fileno, want_write, retry_interval)
        return self._retry(callback, time_left(deadline))

    # ------------------------------------------------------ the receive engine --
    #
    # Every receive of every layer (pipes, socket streams and datagrams, the
    # datagram endpoint, TLS over a socket) is the same few lines around one
    # non-blocking call, named as ``call(target, *args)``: ``os.read`` with
    # ``(bufsize,)`` on a descriptor, ``socket.socket.recv`` with
    # ``(bufsize, MSG_DONTWAIT)`` on a socket, a read of OpenSSL's object.
    # The method itself makes the call on its two hot paths, with no Python
    # call in between: trying first, and the call right after a wait.
    # Everything else is here, once: the rule of trying or waiting first
    # (see "Receiving" in the module docstring), the wait, the retries, the
    # validation of the timeout. The skeleton of a receive:
    #
    #     if timeout is not None and timeout > 0:
    #         waits_first = self._read_waits_first
    #         if waits_first < 0:
    #             try:
    #                 return <the call>
    #             except BlockingIOError:
    #                 return self._receive_after_would_block(fileno, call, args, timeout)
    #         if waits_first > 0 and <it asks for at least one byte>:
    #             self._read_waits_first = waits_first - 1
    #             return self._receive_waiting_first(fileno, call, args, timeout)
    #     return self._receive(fileno, call, args, timeout)

    #: The attribute that holds what receive calls take as their first
    #: argument (a descriptor, a socket), read again after every wait: a
    #: close() during the wait may have changed it.
    _RECEIVE_TARGET: ClassVar[str] = ""

    def _receive(self, fileno: int, call: Callable[..., _T_Return], args: tuple[Any, ...], timeout: float) -> _T_Return:
        """A receive that neither tries first with a positive timeout nor waits first.

        The receive probing whether data comes at once again (see
        "Receiving"), one with a timeout of ``0``, one of zero bytes, one
        whose timeout is not valid. ``fileno`` is the descriptor to wait
        for.

        Raises:
            TypeError: ``timeout`` is not a number.
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: nothing came within ``timeout``.
            OSError: ``EBADF`` once closed; whatever ``call`` raises.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        try:
            result = self._receive_noblock(call, args)
        except WouldBlockOnRead:
            return self._receive_after_would_block(fileno, call, args, timeout)
        except WouldBlockOnWrite:  # OpenSSL must write first
            return self._receive_after_would_block(fileno, call, args, timeout, want_write=True)
        if not self._read_waits_first:
            self._read_probe_found_data()
        return result

    def _receive_after_would_block(
        self,
        fileno: int,
        call: Callable[..., _T_Return],
        args: tuple[Any, ...],
        timeout: float,
        *,
        want_write: bool = False,
    ) -> _T_Return:
        """Finish a receive whose first try would block: wait, then retry, within ``timeout``.

        ``timeout`` must be valid; ``0`` raises :exc:`TimeoutError` at
        once. The next receives wait first. With ``want_write`` (a TLS read
        that must write first), the wait is for room to write, and says
        nothing of when data comes: the next receives try first still.

        Raises:
            TimeoutError: nothing came within ``timeout``.
            OSError: ``EBADF`` once closed; whatever ``call`` raises.
        """
        if not want_write:
            self._read_would_block()
        return self._after_would_block(fileno, partial(self._receive_noblock, call, args), want_write, timeout)[0]

    def _receive_waiting_first(
        self, fileno: int, call: Callable[..., _T_Return], args: tuple[Any, ...], timeout: float
    ) -> _T_Return:
        """Wait until ``fileno`` is readable, then receive, within ``timeout`` (valid and positive).

        A transport with a faster way to wait and receive at once takes it
        before calling this (the socket transports receive in C with a
        timeout, when their timeout allows).

        Raises:
            TimeoutError: nothing came within ``timeout``.
            OSError: ``EBADF`` once closed; whatever ``call`` raises.
        """
        deadline = self._wait_readable(fileno, timeout)
        try:
            result = call(getattr(self, self._RECEIVE_TARGET), *args)
        except BlockingIOError:
            return self._retry(partial(self._receive_noblock, call, args), time_left(deadline))[0]
        except OSError:
            if self._closing:  # what a close() of another thread made of the wait
                raise closed_error() from None
            raise
        if not result and self._closing:  # the same: a shutdown read as an end of stream
            raise closed_error()
        return result

    def _receive_noblock(self, call: Callable[..., _T_Return], args: tuple[Any, ...]) -> _T_Return:
        """Make the receive ``call`` once, without blocking.

        Transports that use the receive engine override it.

        Raises:
            WouldBlockOnRead: nothing to receive yet.
            OSError: ``EBADF`` once closed; whatever ``call`` raises.
        """
        raise NotImplementedError

    def _read_would_block(self) -> None:
        """A receive that tried first would block: start a run of waiting first."""
        run = self._read_wait_run
        self._read_waits_first = run
        self._read_wait_run = run * 2 if run < MAX_WAIT_FIRST_CALLS else MAX_WAIT_FIRST_CALLS

    def _read_probe_found_data(self) -> None:
        """A probe found data at once: receives try first again."""
        self._read_waits_first = -1
        self._read_wait_run = WAIT_FIRST_CALLS

    def _wait_readable(self, fileno: int, timeout: float) -> float:
        """Wait (at most ``min(timeout, retry_interval)``) until ``fileno`` is readable.

        The wait-first receive path: ``timeout`` must be validated and
        positive. Returns the budget's deadline (:data:`math.inf` for an
        infinite budget, which reads no clock), for a retry that follows.

        Raises:
            TimeoutError: the wait used up the budget (``timeout`` was below
                ``retry_interval``) and the descriptor is not readable.
            OSError: ``EBADF`` when the descriptor is closed.
        """
        retry_interval = self._retry_interval
        if timeout == math.inf:
            deadline, wait = math.inf, retry_interval
        else:
            deadline = monotonic() + timeout
            wait = timeout if timeout < retry_interval else retry_interval
        # The usual case inline, for request/response exchanges: the reused
        # poll object is set up for this descriptor. Anything else: _wait().
        poller = self._read_poller
        if poller is None or fileno != self._read_fd or self._selector_factory is not None or wait > _MAX_WAIT:
            if not self._wait(fileno, False, wait) and wait < retry_interval:
                raise timeout_error()  # the budget ran out waiting: no call more
            return deadline
        users = self._descriptor_users
        try:
            users.append(None)  # inside: see "Closing from another thread"
            if self._closing:
                raise closed_error()
            events = poller.poll(self._retry_milliseconds if wait == retry_interval else math.ceil(wait * 1000.0))
        except RuntimeError as exc:  # another thread polls with it: _wait() makes one of its own
            if not concurrent_poll(exc):
                raise
            events = [(fileno, _POLLIN)] if self._wait(fileno, False, wait) else []
        finally:
            users.pop()
            if self._pending_close is not None:
                self._release_descriptor()
        if not events:
            if wait < retry_interval:
                raise timeout_error()  # the budget ran out waiting: no call more
        elif events[0][1] & _POLLNVAL:
            raise closed_error()
        return deadline

    def _wait(self, fileno: int, want_write: bool, timeout: float) -> bool:
        """Block until ``fileno`` is ready or ``timeout`` (> 0) seconds passed; whether it is ready.

        Subclasses may call it directly on hot paths that detect
        would-block without raising ``WouldBlockOn*``.

        Raises:
            OSError: ``EBADF`` when ``fileno`` is negative or not open.
        """
        if fileno < 0:
            raise closed_error()
        if timeout > _MAX_WAIT:
            timeout = _MAX_WAIT
        users = self._descriptor_users
        try:
            users.append(None)  # inside: see "Closing from another thread"
            if self._closing:
                raise closed_error()
            return self._wait_held(fileno, want_write, timeout)
        finally:
            users.pop()
            if self._pending_close is not None:
                self._release_descriptor()

    def _wait_held(self, fileno: int, want_write: bool, timeout: float) -> bool:
        # The wait of _wait(), with the descriptor number held.
        if self._selector_factory is not None:
            with self._selector_factory() as selector:
                selector.register(fileno, selectors.EVENT_WRITE if want_write else selectors.EVENT_READ)
                return bool(selector.select(None if timeout == math.inf else timeout))
        if want_write:
            poller = self._write_poller
            if poller is None or self._write_fd != fileno:
                poller = self._write_poller = select.poll()
                poller.register(fileno, _POLLOUT)
                self._write_fd = fileno
        else:
            poller = self._read_poller
            if poller is None or self._read_fd != fileno:
                poller = self._read_poller = self._new_read_poller(fileno)
                self._read_fd = fileno
        # poll() takes milliseconds; round up so a short wait is not a busy loop.
        milliseconds = None if timeout == math.inf else math.ceil(timeout * 1000.0)
        try:
            events = poller.poll(milliseconds)
        except RuntimeError as exc:
            # Another thread is waiting on the same poll object (two readers
            # of one transport): this wait gets a poll object of its own.
            if not concurrent_poll(exc):
                raise
            if want_write:
                poller = select.poll()
                poller.register(fileno, _POLLOUT)
            else:
                poller = self._new_read_poller(fileno)
            events = poller.poll(milliseconds)
        if events and events[0][1] & _POLLNVAL:
            raise closed_error()
        return bool(events)

    def _new_read_poller(self, fileno: int) -> select.poll:
        """A ``poll`` object for the read waits on ``fileno``.

        Made on the first such wait and kept in ``_read_poller`` for the
        next ones (set ``_read_poller`` to :data:`None` to have the next
        wait make a new one). Override it to wait on more descriptors at
        once: the socket listeners add a waker that their close() makes
        readable. A wait then ends when any of them is ready, and a wait of
        another thread that is running on it gets one of its own, made the
        same way.
        """
        poller = select.poll()
        poller.register(fileno, _POLLIN)
        return poller

    def _release_descriptor(self, *, raise_errors: bool = False) -> None:
        """Close what :meth:`close` left in ``_pending_close``, once no call holds the number.

        See "Closing from another thread" in the module docstring. Called
        by every call that held the number, when it leaves, and by the
        close() that left the descriptor; whichever finds no holder closes
        it. Errors of that close are ignored unless ``raise_errors``.

        Raises:
            OSError: the system refused to close the descriptor, with
                ``raise_errors``.
        """
        if self._descriptor_users:
            return
        pending = self._pending_close
        self._pending_close = None
        if pending is None:
            return
        try:
            pending.close()  # idempotent: two threads may both get here
        except OSError:
            if raise_errors:
                raise
