"""Owning a socket: taking it, closing it, noticing when it leaks.

Every socket transport of this package (and the TLS one, which reuses all
of this) follows the same rules, kept here in one place:

- **Taking the socket.** The constructor checks the argument before it
  changes anything: not a socket, or an :class:`ssl.SSLSocket`, is a
  :exc:`TypeError`; the wrong socket type is a :exc:`ValueError`. On any
  such error the socket is left alone and stays the caller's. Once
  checked, it is switched to non-blocking mode and the transport owns it.

- **One source of truth for "closed".** A transport is closed when its
  socket's descriptor is ``-1``. Nothing else is stored, so there is no
  flag to fall out of step, and every socket method called on a closed
  socket already raises ``OSError(EBADF)``: the hot paths need no check
  of their own and cannot hang (a wait on descriptor ``-1`` raises
  ``EBADF`` as well).

- **Closing from another thread.** On Linux, closing a descriptor does not
  wake a thread that polls it. For stream sockets, ``close()`` first
  *detaches* the descriptor from the socket object (so every later call on
  the object, including the woken thread's next try, raises ``EBADF``),
  then shuts the connection down, which does wake pollers, then closes
  it. Without the detach, the woken thread could read the shutdown as an
  end of stream (``b""``) instead of failing. Datagram sockets have no
  shutdown; a blocked waiter notices the close after at most
  ``retry_interval`` seconds.

- **Receiving: try first, or wait first.** A non-blocking receive that
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

- **Leaks.** A transport garbage-collected while open emits
  :exc:`ResourceWarning` (the warning names the transport, not just a
  socket) and closes the socket, without a shutdown: a finalizer should do
  as little as possible.
"""

from __future__ import annotations

__all__ = ["MAX_WAIT_FIRST_CALLS", "WAIT_FIRST_CALLS", "SocketOwner", "check_socket", "close_socket", "closed_error"]

import errno
import math
import selectors
import socket
import warnings
from collections.abc import Callable, Mapping
from time import monotonic
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeVar

from transports.abc import time_left, timeout_error
from transports.selector import SelectorBaseTransport

from ._attributes import socket_attributes
from ._proxy import SocketProxy

try:
    from ssl import SSLSocket as _SSLSocket
except ImportError:  # pragma: no cover - Python built without OpenSSL
    _SSLSocket = None  # type: ignore[assignment,misc]

_T_Return = TypeVar("_T_Return")

#: After a receive would block, this many receive calls wait for readiness
#: before they try (at first; see "Receiving" above).
WAIT_FIRST_CALLS: Final[int] = 8

#: The longest run of waiting-first receives between two probes.
MAX_WAIT_FIRST_CALLS: Final[int] = 1024

_SOCKET_TYPE_NAMES: dict[int, str] = {socket.SOCK_STREAM: "SOCK_STREAM", socket.SOCK_DGRAM: "SOCK_DGRAM"}


def closed_error() -> OSError:
    """The error of an operation on a closed transport: ``OSError(EBADF)``."""
    return OSError(errno.EBADF, "The transport is closed")


def check_socket(sock: socket.socket, sock_type: int) -> None:
    """Check that ``sock`` is a plain socket of type ``sock_type``.

    Raises:
        TypeError: ``sock`` is not a :class:`socket.socket`, or is an
            :class:`ssl.SSLSocket`.
        ValueError: its type is not ``sock_type``.
    """
    if not isinstance(sock, socket.socket):
        raise TypeError(f"Expected a socket.socket, got {type(sock).__name__}")
    if _SSLSocket is not None and isinstance(sock, _SSLSocket):
        raise TypeError("ssl.SSLSocket is not supported: pass the plain socket and an SSL context to the TLS transport")
    if sock.type != sock_type:
        expected = _SOCKET_TYPE_NAMES.get(sock_type, str(sock_type))
        raise ValueError(f"A {expected} socket is required, got {sock.type!s}")


def close_socket(sock: socket.socket, *, shutdown: bool) -> None:
    """Close ``sock``; with ``shutdown``, shut the connection down first.

    Idempotent. Errors of the shutdown (not connected, already reset) are
    ignored. The descriptor is detached from ``sock`` before the shutdown,
    so that a thread woken by it finds the socket closed.

    Raises:
        OSError: the system refused to close the descriptor.
    """
    if sock.fileno() < 0:
        return
    if not shutdown:
        sock.close()
        return
    family, sock_type, proto = sock.family, sock.type, sock.proto
    fd = sock.detach()
    if fd < 0:  # another thread's close() got there first
        return
    # A bare shell owns the descriptor from here: giving family, type and
    # protocol spares the system calls that would look them up.
    shell = socket.socket(family, sock_type, proto, fileno=fd)
    try:
        shell.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        shell.close()


class SocketOwner(SelectorBaseTransport):
    """Base of the transports that own a socket.

    Holds the socket (``_sock``), answers :meth:`close`, :meth:`is_closed`
    and :attr:`extra_attributes` (the :class:`SocketAttribute` set), warns
    when garbage-collected open, and offers :meth:`_after_would_block`, the
    slow path of operations whose first non-blocking try would block.

    Parameters:
        sock: the socket to own.
        sock_type: the socket type the subclass needs.
        retry_interval: see :class:`~transports.selector.SelectorBaseTransport`.
        selector_factory: see :class:`~transports.selector.SelectorBaseTransport`.

    Raises:
        TypeError: ``sock`` is not a socket, or is an :class:`ssl.SSLSocket`.
        ValueError: ``sock`` is not of type ``sock_type``; or
            ``retry_interval`` is not positive.
        OSError: ``sock`` is closed.
    """

    __slots__ = ("_extra", "_proxy", "_read_wait_run", "_read_waits_first", "_sock")

    #: Whether :meth:`close` shuts the connection down before closing.
    _SHUTDOWN_ON_CLOSE: ClassVar[bool] = False

    _sock: socket.socket

    def __init__(
        self,
        sock: socket.socket,
        sock_type: int,
        retry_interval: float,
        selector_factory: Callable[[], selectors.BaseSelector] | None,
    ) -> None:
        check_socket(sock, sock_type)
        super().__init__(retry_interval, selector_factory)
        sock.setblocking(False)
        self._sock = sock
        # "Receiving" in the module docstring: receive calls left that wait
        # first (> 0), the next one is a probe (0), or try first (< 0); and
        # the length of the next run of waiting-first calls.
        self._read_waits_first = -1
        self._read_wait_run = WAIT_FIRST_CALLS
        self._proxy = SocketProxy(sock)
        self._extra: Mapping[Any, Callable[[], Any]] = MappingProxyType(socket_attributes(sock, self._proxy))

    def close(self) -> None:
        """Close the socket (a stream socket is shut down first). Idempotent.

        Raises:
            OSError: the system refused to close the descriptor (never for a
                transport already closed).
        """
        close_socket(self._sock, shutdown=self._SHUTDOWN_ON_CLOSE)

    def is_closed(self) -> bool:
        """Return :data:`True` once the transport (its socket) is closed."""
        return self._sock.fileno() < 0

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The :class:`SocketAttribute` getters: ``socket``, ``family``, ``sockname``, ``peername``."""
        return self._extra

    def _after_would_block(
        self,
        callback: Callable[[], _T_Return],
        want_write: bool,
        timeout: float,
    ) -> tuple[_T_Return, float]:
        """Finish an operation whose first non-blocking try would block.

        Waits for the socket (at most ``min(timeout, retry_interval)``), then
        hands over to :meth:`_retry` with what is left of the budget.
        ``callback`` is the operation's ``*_noblock`` form. ``timeout`` must
        already be validated; ``0`` raises :exc:`TimeoutError` at once (the
        one try was made).

        Raises:
            TimeoutError: the budget ran out.
            OSError: ``EBADF`` when the transport is closed; anything
                ``callback`` raises.

        Returns:
            The callback's result and the time left of the budget.
        """
        if timeout <= 0.0:
            raise timeout_error()
        retry_interval = self._retry_interval
        if timeout == math.inf:
            self._wait(self._sock.fileno(), want_write, retry_interval)
            return self._retry(callback, math.inf)
        deadline = monotonic() + timeout
        self._wait(self._sock.fileno(), want_write, timeout if timeout < retry_interval else retry_interval)
        return self._retry(callback, time_left(deadline))

    def _read_would_block(self) -> None:
        """A receive that tried first would block: start a run of waiting first."""
        run = self._read_wait_run
        self._read_waits_first = run
        self._read_wait_run = run * 2 if run < MAX_WAIT_FIRST_CALLS else MAX_WAIT_FIRST_CALLS

    def _read_probe_found_data(self) -> None:
        """A probe found data at once: receives try first again."""
        self._read_waits_first = -1
        self._read_wait_run = WAIT_FIRST_CALLS

    def _wait_readable(self, timeout: float) -> float:
        """Wait (at most ``min(timeout, retry_interval)``) until the socket is readable.

        The wait-first receive path: ``timeout`` must be validated and
        positive. Returns the budget's deadline (:data:`math.inf` for an
        infinite budget, which reads no clock), for a retry that follows.

        Raises:
            OSError: ``EBADF`` when the transport is closed.
        """
        retry_interval = self._retry_interval
        if timeout == math.inf:
            self._wait(self._sock.fileno(), False, retry_interval)
            return math.inf
        deadline = monotonic() + timeout
        self._wait(self._sock.fileno(), False, timeout if timeout < retry_interval else retry_interval)
        return deadline

    def __del__(self, *, _warn: Callable[..., None] = warnings.warn) -> None:
        try:
            sock = self._sock
        except AttributeError:  # the constructor failed before taking the socket
            return
        if sock.fileno() >= 0:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            try:
                sock.close()
            except OSError:
                pass

    def __repr__(self) -> str:
        try:
            sock = self._sock
        except AttributeError:
            return f"<{type(self).__name__} (not initialised)>"
        fd = sock.fileno()
        if fd < 0:
            return f"<{type(self).__name__} closed>"
        family = sock.family
        return f"<{type(self).__name__} fd={fd} family={getattr(family, 'name', family)}>"
