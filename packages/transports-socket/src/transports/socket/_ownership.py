"""Owning a socket: taking it, closing it, noticing when it leaks.

Every socket transport of this package (and the TLS one, which reuses all
of this) follows the same rules, kept here in one place:

- **Taking the socket.** The constructor checks the argument before it
  changes anything: not a socket, or an :class:`ssl.SSLSocket`, is a
  :exc:`TypeError`; the wrong socket type is a :exc:`ValueError`. On any
  such error the socket is left alone and stays the caller's. Once
  checked, the transport owns it.

- **Non-blocking calls on a blocking descriptor.** On Linux, the plain
  socket transports leave the descriptor in blocking mode (the socket's
  timeout is :data:`None`) and pass ``MSG_DONTWAIT`` to every system call
  that must not block: every ``*_noblock`` method and every first try.
  An operation with an infinite timeout and no ``selector_factory`` can
  then wait inside its system call, as a blocking socket does: one
  ``recv`` instead of ``poll`` plus ``recv``, about 20% less CPU per
  request/response round trip (docs/performance.md). On datagram
  sockets ``SO_RCVTIMEO`` and ``SO_SNDTIMEO`` are set to
  ``retry_interval``, so such a call still returns after at most
  ``retry_interval`` to be tried again (and notice a close), and falls
  back to ``poll`` waits when it did. TCP and Unix stream sockets need no
  such bound, since close() shuts them down, which wakes a blocked call
  at once: their ``SO_RCVTIMEO`` and ``SO_SNDTIMEO`` are left as they
  are. A new socket has none (which spares the kernel a timer per sleep:
  3% to 4% of the CPU of a Unix-socket round trip); a bound the caller
  set makes such a call end with ``EAGAIN`` now and then, and go on with
  ``poll`` waits. Other stream families keep the bound.
  Elsewhere, and for TLS (OpenSSL's reads and writes take no flags), the
  descriptor is switched to non-blocking mode.

- **Closed, and closing.** A transport is closed when its socket's
  descriptor is ``-1`` (:meth:`SocketOwner.is_closed`): every socket
  method called on a closed socket already raises ``OSError(EBADF)``, so
  the hot paths need no check of their own and cannot hang (a wait on
  descriptor ``-1`` raises ``EBADF`` as well). ``_closing`` says that a
  close() has begun: it is set first, and checked where a call may have
  met that close() half-way (below). A close() after another has finished
  returns at once. Two close() calls of different threads may both shut
  the socket down and close it, so that neither returns before the socket
  is closed: the close is atomic in CPython, and the shutdown, like every
  method of a socket object, reads the descriptor at the last moment, in
  C. (A lock to let only one go on cost 0.3 us per close, in-process.)

- **Closing from another thread.** On Linux, closing a descriptor does not
  wake a thread that polls it, or that waits in a system call on it; a
  shutdown does. For stream sockets, ``close()`` marks the transport as
  closing, shuts the connection down, and closes the descriptor. A call
  that the shutdown ends (woken in the kernel, or made between the
  shutdown and the close) gets an end of stream or an error (``EPIPE``),
  and checks that mark before it reports either: it raises ``EBADF``
  instead. Every receive and send of a stream socket makes that check
  where it has an empty result or an error, which costs nothing on the
  paths that move data. A call that uses the descriptor *number* rather than
  the socket object registers first, and the number is closed only when
  the last such call returns ("Closing from another thread" in
  :mod:`transports.selector`'s base class;
  :meth:`SocketOwner._holding_descriptor` here): an ``os`` function
  (gather writes, ``send_file``) must not act on another file that took
  the number, and a wait (``poll``, or a timed wait in C) looks the number
  up again when the shutdown wakes it, and would otherwise go on waiting
  on whatever file took the number in the meantime. When such a call is
  registered, ``close()`` first *detaches* the descriptor from the socket
  object, so that the woken call's next try on the object raises
  ``EBADF`` rather than reading the shutdown as an end of stream, and
  shuts it down through a bare socket object that the last call to leave
  closes. Without a registered call, the socket is shut down and closed
  as it is: no detach, no second object (0.7 us less per close,
  in-process). Datagram sockets have no shutdown; a blocked waiter
  notices the close after at most ``retry_interval`` seconds.

- **Receiving: try first, or wait first.** See
  :class:`~transports.selector.SelectorBaseTransport`: receives switch
  between the two, because a would-block costs far more than a ``poll``.

- **Timed waits in C.** A receive that waits first with a finite timeout
  of at least ``retry_interval`` goes through a second socket object on
  the same descriptor (:class:`_TimedWaitSocket`; a stream's is made on
  the first such wait, :meth:`SocketOwner._timed_wait_socket`, or in the
  constructor when the socket comes in CPython's timeout mode with a
  positive timeout; a
  datagram transport's in the constructor), kept in CPython's
  timeout mode with ``retry_interval`` as its timeout: its ``recv`` polls
  and then receives (``MSG_DONTWAIT``) in C, as a plain socket with
  ``settimeout`` does, instead of a ``poll`` made from Python. After a
  signal, C recomputes the time left, so the wait still ends on time; a
  wait of ``retry_interval`` without data raises CPython's own
  :exc:`TimeoutError`, and the operation goes on in Python with what is
  left of its budget. Python code is slow right after a wake-up on these
  machines, and the Python around a ``poll`` cost about 6% of the client
  CPU of a finite-timeout round trip (in-process, paired; see
  docs/performance.md). A kernel
  ``ETIMEDOUT`` (which has an ``errno``) is the socket's error and is
  raised as such. That object never closes the descriptor: close()
  detaches it first (a thread waiting in it then fails with ``EBADF``),
  and finalising it only detaches.
  The wait holds the descriptor number as :meth:`_holding_descriptor`
  does, written out, with no ``_closing`` check: close() detaches the
  object before it looks at the registrations, so a wait registered after
  that fails with ``EBADF`` at once. These lines are written out in each
  of the four socket receives that wait this way: as a call of its own
  (the receive engine's ``_receive_waiting_first``), they cost 5% to 9%
  of the client CPU of a finite-timeout round trip (bench, paired).

- **Leaks.** A transport garbage-collected while open emits
  :exc:`ResourceWarning` (the warning names the transport, not just a
  socket) and closes the socket, without a shutdown: a finalizer should do
  as little as possible.
"""

from __future__ import annotations

__all__ = [
    "DESCRIPTOR_MODE_LOCK",
    "SocketOwner",
    "check_socket",
]

import _socket
import contextlib
import errno
import math
import os
import selectors
import socket
import struct
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeVar

from transports.abc import time_left
from transports.abc._family import closed_error
from transports.selector import SelectorBaseTransport, WouldBlockOnRead

from ._attributes import socket_attributes
from ._constants import DONTWAIT
from ._proxy import SocketProxy
from ._raw import family_of, type_of

try:
    from ssl import SSLSocket as _SSLSocket
except ImportError:  # pragma: no cover - Python built without OpenSSL
    _SSLSocket = None  # type: ignore[assignment,misc]

_T_Return = TypeVar("_T_Return")

#: Held while a descriptor's blocking mode changes after construction (the
#: first timed wait in C of a stream, ``send_file``), so that one change
#: never undoes another. Such changes are rare: one lock for all transports.
DESCRIPTOR_MODE_LOCK: Final = threading.Lock()
_T_Socket = TypeVar("_T_Socket", bound=socket.socket)

# Where the descriptor may stay in blocking mode: MSG_DONTWAIT exists, and
# SO_RCVTIMEO / SO_SNDTIMEO can bound blocking calls where a close would not
# end them (see _bound_calls).
_BLOCKING_DESCRIPTOR: Final[bool] = sys.platform == "linux" and DONTWAIT != 0

# The longest SO_RCVTIMEO / SO_SNDTIMEO we set, and the longest retry_interval
# that timed waits in C take: a day, as for poll waits.
_LONGEST_CALL_TIMEOUT: Final[float] = 86400.0

_SOCKET_TYPE_NAMES: dict[int, str] = {socket.SOCK_STREAM: "SOCK_STREAM", socket.SOCK_DGRAM: "SOCK_DGRAM"}

# The stream families whose shutdown wakes every call blocked on the socket
# (TCP even when it reports ENOTCONN; AF_UNIX always). Blocking calls on
# other stream families stay bounded by retry_interval, as on datagrams.
_SHUTDOWN_WAKES_FAMILIES: Final = frozenset({socket.AF_INET, socket.AF_INET6, socket.AF_UNIX})


def _bound_calls(sock: socket.socket, seconds: float) -> bool:
    """Make a blocking system call on ``sock`` return ``EAGAIN`` after ``seconds``.

    :data:`math.inf` makes the calls unbounded (a zero ``timeval``, the
    system's default), whatever was set before. Returns :data:`False`,
    changing nothing, when the option cannot be read as bytes (AF_VSOCK)
    or its layout is not a known ``struct timeval`` (two 32-bit or two
    64-bit integers: the second on 32-bit systems built with a 64-bit
    ``time_t``).

    Raises:
        OSError: ``sock`` is closed.
    """
    try:
        size = len(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 64))
    except OSError:
        if sock.fileno() < 0:
            raise
        return False  # CPython reads AF_VSOCK options as integers only
    layout = {8: "@ii", 16: "@qq"}.get(size)
    if layout is None:
        return False
    if seconds == math.inf:
        whole = micro = 0
    else:
        seconds = min(seconds, _LONGEST_CALL_TIMEOUT)
        whole = int(seconds)
        # At least one microsecond: a zero timeval would mean "no timeout".
        micro = max(math.ceil((seconds - whole) * 1_000_000), 0 if whole else 1)
        if micro >= 1_000_000:
            whole, micro = whole + 1, 0
    timeval = struct.pack(layout, whole, micro)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    return True


class _TimedWaitSocket(_socket.socket):
    """A second socket object on a transport's descriptor, for timed waits in C.

    Its timeout is the transport's ``retry_interval``: every call polls for
    at most that long, then makes its system call, both in C. It does not
    own the descriptor: the transport detaches it before it closes its own
    socket, and finalising it only detaches, so it never closes a number
    that another file may have taken meanwhile.
    """

    # (On the C type, not socket.socket: no Python constructor to run, and a
    # detach in C. 3% of the client CPU of a connect, round trip and close
    # with a finite timeout, whose one wait makes it.)
    __slots__ = ()

    def __del__(self) -> None:
        self.detach()


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
    if type_of(sock) != sock_type:
        expected = _SOCKET_TYPE_NAMES.get(sock_type, str(sock_type))
        raise ValueError(f"A {expected} socket is required, got {sock.type!s}")


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

    __slots__ = (
        "_blocking_timeout",
        "_extra",
        "_sock",
        "_timed_sock",
        "_timed_waits",
    )

    _RECEIVE_TARGET = "_sock"

    #: Whether :meth:`close` shuts the connection down before closing.
    _SHUTDOWN_ON_CLOSE: ClassVar[bool] = False

    #: Whether the descriptor may stay in blocking mode, every call that must
    #: not block passing :data:`DONTWAIT` ("Non-blocking calls" above).
    _BLOCKING_DESCRIPTOR_OK: ClassVar[bool] = True

    #: Whether receives wait through :class:`_TimedWaitSocket` ("Timed waits in C").
    _TIMED_WAITS_IN_C: ClassVar[bool] = True

    _sock: socket.socket
    #: The timeout with which an operation waits inside its system call:
    #: :data:`math.inf`, or NaN (equal to no timeout) when none does. One
    #: comparison on the hot paths both finds that case and validates it.
    _blocking_timeout: float
    #: The socket object of timed waits in C, on the same descriptor; None
    #: until it is made, in the constructor or on the first such wait
    #: (:meth:`_timed_wait_socket`).
    _timed_sock: _socket.socket | None
    #: Whether receives with a timeout of at least ``retry_interval`` wait
    #: through :attr:`_timed_sock`.
    _timed_waits: bool
    #: The attribute getters, made on first use (:meth:`_attribute_getters`).
    _extra: Mapping[Any, Callable[[], Any]] | None

    def __init__(
        self,
        sock: socket.socket,
        sock_type: int,
        retry_interval: float,
        selector_factory: Callable[[], selectors.BaseSelector] | None,
    ) -> None:
        if type(sock) is not socket.socket or type_of(sock) != sock_type:
            check_socket(sock, sock_type)  # a subclass to accept, or an error to report
        # Named rather than found through super(): no proxy object to make on
        # every construction. No class between the two defines __init__.
        SelectorBaseTransport.__init__(self, retry_interval, selector_factory)
        self._timed_sock = None
        self._timed_waits = (
            self._TIMED_WAITS_IN_C and selector_factory is None and self._retry_interval <= _LONGEST_CALL_TIMEOUT
        )
        # None: blocking mode as far as CPython knows (a new, accepted or
        # connected socket); 0.0: non-blocking; else timeout mode.
        sock_timeout = sock.gettimeout()
        if self._timed_waits and (sock_timeout or not self._SHUTDOWN_ON_CLOSE) and sock.fileno() >= 0:
            # The second object is made here, before any call can run, and
            # not on the first wait (see _timed_wait_socket), in two cases. A
            # close() that does not shut down closes the number at once,
            # whoever waits on it. A socket in CPython's timeout mode with a
            # positive timeout (as connect_tcp() connects one address within
            # a finite budget) is used by code that waits with timeouts, and
            # its descriptor is non-blocking already, so the object costs no
            # mode to put back: 3% to 4% of the client CPU of a
            # connect, 64 B round trip and close with a finite timeout (bench,
            # four A/B pairs: 1.24x -> 1.20x plain).
            # Its settimeout makes the descriptor non-blocking; the mode is set below.
            timed = _TimedWaitSocket(family_of(sock), type_of(sock), sock.proto, fileno=sock.fileno())
            timed.settimeout(self._retry_interval)
            self._timed_sock = timed
        self._extra = None
        # Whether the descriptor stays in blocking mode ("Non-blocking calls" above).
        if not (_BLOCKING_DESCRIPTOR and self._BLOCKING_DESCRIPTOR_OK):
            blocking = False
        elif self._SHUTDOWN_ON_CLOSE and family_of(sock) in _SHUTDOWN_WAKES_FAMILIES:
            # close() shuts these down, which wakes a blocked call: their
            # blocking calls need no bound, and SO_RCVTIMEO / SO_SNDTIMEO are
            # left as they are. A new socket has none, and clearing them cost
            # two setsockopt calls and a getsockopt, about 6 us of every
            # construction; a bound the caller set makes a blocking call end
            # with EAGAIN, which goes on with poll waits, as after any wake-up
            # without data. Other families get retry_interval (_bound_calls).
            if sock.fileno() < 0:
                raise OSError(errno.EBADF, f"{os.strerror(errno.EBADF)}: the socket is closed")
            blocking = True
        else:
            blocking = _bound_calls(sock, self._retry_interval)
        if blocking:
            # A socket whose timeout is None is in blocking mode as far as
            # CPython knows (a new, accepted or connected socket is): the mode
            # is set only when it must change. A descriptor made non-blocking
            # behind CPython's back stays so; infinite receives then wait with
            # poll after each EAGAIN, with the same results.
            if sock_timeout is not None or self._timed_sock is not None:
                sock.settimeout(None)
            # A selector_factory must make every wait: then no call waits.
            self._blocking_timeout = math.inf if selector_factory is None else math.nan
        else:
            sock.setblocking(False)
            self._blocking_timeout = math.nan
        self._sock = sock

    def _wrap_socket(self, wrap: Callable[[socket.socket], _T_Socket]) -> _T_Socket:
        """Hand the owned socket to ``wrap`` and own what it returns instead.

        For a subclass whose socket object changes after construction: the
        TLS transport's ``ssl.SSLContext.wrap_socket`` moves the descriptor
        to a new :class:`ssl.SSLSocket`. Call it before any I/O; the
        descriptor mode set by the constructor stays (it belongs to the
        descriptor). From then on, :meth:`close` closes the new object.

        Raises:
            Whatever ``wrap`` raises. The owner then still holds the old
            object; if ``wrap`` took the descriptor before it failed, the new
            object must close it (``wrap_socket`` does, for the failures its
            caller has not ruled out beforehand).
        """
        wrapped = wrap(self._sock)
        self._sock = wrapped
        self._extra = None  # the attributes are those of the new object
        return wrapped

    def _timed_wait_socket(self) -> _socket.socket:
        """The socket object of timed waits in C of a stream, made on the first such wait.

        Made lazily on streams: most short connections never wait that way,
        and the object cost about 3 us of every construction (in-process,
        two transports made and closed). (A socket handed over in CPython's
        timeout mode, with a positive timeout, gets it in the constructor
        instead.) The caller holds
        the descriptor number (a stream's close() then keeps it open until
        the caller leaves), and the object is made under
        :data:`DESCRIPTOR_MODE_LOCK`: one thread makes it, and it is
        published only once its timeout is set. Setting that timeout
        switches the shared descriptor to non-blocking mode; the mode it had
        is put back (a ``send_file`` running, which needs non-blocking mode,
        changes the mode under the same lock). A close() that began before
        the object was stored may have missed it: then it is detached here,
        before any call on it.

        Raises:
            OSError: ``EBADF`` once closed, or once a close has begun.
        """
        with DESCRIPTOR_MODE_LOCK:
            timed = self._timed_sock
            if timed is not None:  # another thread made it meanwhile
                return timed
            sock = self._sock
            fd = sock.fileno()
            if fd < 0 or self._closing:
                raise closed_error()
            timed = _TimedWaitSocket(family_of(sock), type_of(sock), sock.proto, fileno=fd)
            # (The mode put back with one ioctl, not two fcntl calls. Read
            # from the descriptor, not from the socket's timeout: a descriptor
            # made non-blocking behind CPython's back stays so.)
            blocking = os.get_blocking(fd)
            timed.settimeout(self._retry_interval)
            if blocking:
                sock.setblocking(True)
            self._timed_sock = timed
        # (Read again: another thread's close() may have set it since.)
        if self._closing:  # close() may have looked for it before it was stored
            timed.detach()  # type: ignore[unreachable]
            raise closed_error()
        return timed

    def close(self) -> None:
        """Close the socket (a stream socket is shut down first). Idempotent.

        A call of another thread that holds the descriptor number (a wait,
        a gather write, ``send_file``) keeps the number from being closed
        until it returns, so that no other file can take it meanwhile; the
        shutdown ends such a call at once.

        Raises:
            OSError: the system refused to close the descriptor (never for a
                transport already closed; when the call still holding the
                number closes it, that call ignores such an error).
        """
        if self._closing and self._sock.fileno() < 0:
            return  # closed already
        self._closing = True  # first: see "Closing from another thread" in transports.selector
        timed = self._timed_sock
        if timed is not None:
            timed.detach()  # first: a thread waiting in it must find it closed
        sock = self._sock
        if not self._SHUTDOWN_ON_CLOSE:
            sock.close()  # idempotent
            return
        if not self._descriptor_users:
            # No call holds the number, and one that registers from here on
            # finds _closing set and never uses it: shut down (which wakes a
            # call blocked in the kernel; it finds _closing set too, see
            # _raise_if_closed) and close the socket itself. The C methods,
            # not the Python ones: an ssl.SSLSocket's shutdown() would drop
            # its OpenSSL object first.
            try:
                _socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass  # not connected, reset already, or closed already
            finally:
                _socket.socket.close(sock)
            return
        # A call holds the number (a wait, a gather write, send_file): the
        # descriptor moves to a bare shell first, so that the call, woken by
        # the shutdown, finds the transport's socket closed when it tries
        # again, and the last one to leave closes the shell. Family, type and
        # protocol given, making the shell takes no system call to look them
        # up (CPython still checks the descriptor with getsockname).
        family, sock_type, proto = family_of(sock), type_of(sock), sock.proto
        fd = sock.detach()
        if fd < 0:  # closed already, behind the transport's back
            return
        shell = _socket.socket(family, sock_type, proto, fd)
        try:
            shell.shutdown(socket.SHUT_RDWR)  # wakes every call blocked on the socket
        except OSError:
            pass  # not connected, or reset already
        except BaseException:  # KeyboardInterrupt: still wake blocked calls, then close
            with contextlib.suppress(OSError):
                shell.shutdown(socket.SHUT_RDWR)
            shell.close()
            raise
        self._pending_close = shell
        self._release_descriptor(raise_errors=True)

    # ------------------------------------------------- the receive engine --

    def _receive_noblock(self, call: Callable[..., _T_Return], args: tuple[Any, ...]) -> _T_Return:
        # The receive engine's one try (see transports.selector): ``call`` on
        # the socket, with MSG_DONTWAIT among ``args``.
        sock = self._sock
        try:
            result = call(sock, *args)
        except BlockingIOError:
            raise WouldBlockOnRead(sock.fileno()) from None
        except OSError:
            self._raise_if_closed()  # the shutdown of a close() from another thread
            raise
        if not result:
            self._raise_if_closed()  # the same, read as an end of stream
        return result

    def _after_blocking_receive(
        self, error: OSError, call: Callable[..., _T_Return], args: tuple[Any, ...]
    ) -> _T_Return:
        """The end of a receive that waited in the kernel (infinite timeout) and failed with ``error``.

        ``EAGAIN`` means the wait was cut short (``SO_RCVTIMEO``, or the
        descriptor non-blocking for a moment): the receive goes on with
        ``poll`` waits. Any other error of a socket that a close() from
        another thread shuts down is ``EBADF`` once closed.

        Raises:
            OSError: ``error``, or ``EBADF`` once closed.
        """
        if isinstance(error, BlockingIOError):
            return self._retry(partial(self._receive_noblock, call, args), math.inf)[0]
        if self._SHUTDOWN_ON_CLOSE:
            self._raise_if_closed()
        raise error

    def _raise_if_closed(self) -> None:
        """Raise ``OSError(EBADF)`` once a close has begun.

        For a blocking call that ended with an error or an end of stream: a
        close() from another thread shuts the socket down, which ends such a
        call that way, and the caller must see ``EBADF`` instead. (The mark,
        not the descriptor: the shutdown comes before the descriptor is
        closed.)

        Raises:
            OSError: ``EBADF``, once a close has begun.
        """
        if self._closing:
            raise closed_error() from None

    def _after_timed_wait(
        self, timed_out: TimeoutError, call: Callable[..., _T_Return], args: tuple[Any, ...], deadline: float
    ) -> _T_Return:
        """Go on with a receive whose timed wait in C saw no data for ``retry_interval``.

        See "Timed waits in C" in the module docstring. ``timed_out`` is
        what the wait raised: CPython's own timeout (no ``errno``), or the
        socket's ``ETIMEDOUT``, which is re-raised. The receive goes on as
        ``call(socket, *args)``; ``deadline`` is the budget's
        :func:`time.monotonic` deadline.

        Raises:
            TimeoutError: the budget ran out, or the connection timed out.
            OSError: ``EBADF`` once closed; anything ``call`` raises.
        """
        # A signal handler's own TimeoutError has no errno either, but it was
        # raised in a Python frame below this call's: it goes on up.
        if timed_out.errno is not None or (timed_out.__traceback__ and timed_out.__traceback__.tb_next):
            raise timed_out
        return self._retry(partial(self._receive_noblock, call, args), time_left(deadline))[0]

    def _holding_descriptor(self, function: Callable[..., _T_Return], *args: Any) -> _T_Return:
        """Return ``function(fd, *args)``, with the descriptor number ``fd`` held.

        For calls that use the number rather than the socket object, ``os``
        functions (the poll waits of the base class, and the timed waits in
        C of the stream transport, hold it the same way, written out).
        While one runs, a :meth:`close` of another thread
        shuts the socket down but leaves the number open, and the call
        closes it when it returns (:meth:`_release_descriptor`), so the
        number cannot name another file meanwhile. Once a close has begun,
        the function is not called, and an error of a call that such a close
        met (the shutdown's ``EPIPE``, say) is ``EBADF``.

        Raises:
            OSError: ``EBADF`` once a close has begun; whatever ``function``
                raises.
        """
        users = self._descriptor_users
        try:
            users.append(None)  # inside: see "Closing from another thread"
            if self._closing:  # close() may have looked for holders already
                raise closed_error()
            return function(self._sock.fileno(), *args)
        except OSError:
            self._raise_if_closed()  # the shutdown of a close() that began meanwhile
            raise
        finally:
            users.pop()
            if self._pending_close is not None:
                self._release_descriptor()

    def is_closed(self) -> bool:
        """Return :data:`True` once the transport (its socket) is closed."""
        return self._sock.fileno() < 0

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The :class:`SocketAttribute` getters: ``socket``, ``family``, ``sockname``, ``peername``."""
        extra = self._extra
        if extra is None:
            # Made on first use: the closures cost about 2.5 us of every
            # construction, and most connections never ask.
            extra = self._extra = MappingProxyType(self._attribute_getters())
        return extra

    def _attribute_getters(self) -> dict[Any, Callable[[], Any]]:
        """The getters of :attr:`extra_attributes`, made when first asked for."""
        return socket_attributes(self._sock, SocketProxy(self._sock))

    def __del__(self, *, _warn: Callable[..., None] = warnings.warn) -> None:
        try:
            sock = self._sock
        except AttributeError:  # the constructor failed before taking the socket
            return
        # A close() left for a call that an exception (KeyboardInterrupt)
        # stopped between its registration and its release: no call runs now.
        shell = self._pending_close
        if shell is not None:
            self._pending_close = None
            with contextlib.suppress(OSError):
                shell.close()
        if sock.fileno() >= 0:  # no call can be running: it would hold the transport
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
