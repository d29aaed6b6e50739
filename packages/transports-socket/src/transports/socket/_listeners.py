"""Listeners: accepting TCP, Unix and TLS connections, and serving them in threads.

A :class:`SocketListener` owns a listening ``SOCK_STREAM`` socket and turns
each connection it accepts into a :class:`SocketStreamTransport`;
:class:`TLSListener` owns a :class:`SocketListener` and makes the TLS
handshake of each connection, giving :class:`SSLStreamTransport` s.
:func:`create_tcp_listener` and :func:`create_unix_listener` make the
socket; :func:`serve` runs a handler in a thread per connection.

How close() from another thread ends a blocked accept
-----------------------------------------------------
The listening socket is non-blocking, and ``accept`` waits with ``poll``
through the selector base's machinery (``SelectorBaseTransport._retry``,
with every wait registered in ``_descriptor_users``). Each listener also
owns a *waker*, an ``eventfd`` (a pipe where there is none), which every
wait polls beside the listening socket. :meth:`SocketListener.close`
detaches the descriptor from the socket object (so the woken thread's
next ``accept`` fails with ``EBADF``), then signals the waker, which ends
every wait at once, whatever the timeout and ``retry_interval``. The
descriptors (the socket's and the waker's) are closed by the last call to
leave, as for the stream transports, so no file opened meanwhile can take
their numbers from under a wait.

Why not shut the socket down, as the stream transports do? ``shutdown``
acts on the socket, not on one descriptor: a listening socket shared with
child processes (a pre-forked server) would stop listening in all of
them when any one closed its copy. (It also does not wake pollers on
every system.) The waker costs one descriptor per listener. In a child
made by :func:`os.fork`, every listener gets a waker of its own, so that
a close in one process never wakes the waits of another.

The Unix socket file
--------------------
:func:`create_unix_listener` refuses to bind where a file already exists
(``EADDRINUSE``) unless ``remove_stale=True``, and then removes the file
only if it is a socket on which nobody listens (a connection attempt is
refused), never another kind of file. :meth:`SocketListener.close` removes
the file that :func:`create_unix_listener` created, in the process that
created it, and only if the path still names that very file (same device
and inode): a newer server that took the path over keeps its socket. A
listener made from your own socket never removes anything.

serve()
-------
:func:`serve` accepts in a loop and hands each connection to a new
thread, which (for a :class:`TLSListener`) makes the handshake, runs the
handler and closes the transport. The accept loop itself never waits for
a client: a client that never completes its handshake holds up its own
thread only. Failures of a connection (a handshake that fails or times
out, a handler that raises) are reported and never end the loop. When the
listener is closed (from another thread, or a handler), :func:`serve`
stops accepting, waits for the handler threads still running, and
returns.
"""

from __future__ import annotations

__all__ = ["SocketListener", "TLSListener", "create_tcp_listener", "create_unix_listener", "serve"]

import contextlib
import errno
import logging
import math
import os
import select
import socket
import ssl
import stat
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final, final, overload

from transports.abc import BaseTransport, StreamTransport, validate_timeout
from transports.abc._family import closed_error, refuse_subclasses, tls_options

from ._attributes import INETSocketAttribute, SocketAttribute, UNIXSocketAttribute
from ._constants import DEFAULT_RETRY_INTERVAL
from ._ownership import SocketOwner, check_socket
from ._raw import accept_descriptor, family_of, type_of
from ._stream import SocketStreamTransport
from ._tls import SSLStreamTransport

DEFAULT_BACKLOG: Final = 128

_POLLIN: Final[int] = getattr(select, "POLLIN", 0)

# Errors of accept() that concern one connection only, which went away before
# it was taken (ECONNABORTED), or, on Linux, errors already pending on it: the
# next connection may be fine, so they read as "nothing to accept yet".
_ACCEPT_TRANSIENT: Final = frozenset(
    code
    for code in (
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.ENETDOWN,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        getattr(errno, "ENONET", None),
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ENETUNREACH,
    )
    if code is not None
)
# Errors of accept() meaning "out of resources": the connection stays queued.
_ACCEPT_EXHAUSTED: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# How long serve() pauses after such an error, so that it does not spin.
_EXHAUSTED_PAUSE: Final = 0.1

_logger = logging.getLogger("transports.socket")


# ----------------------------------------------------------------- waker --


# What wakes a waker: an eventfd takes a native 8-byte count; a pipe, any bytes.
_ONE: Final = (1).to_bytes(8, sys.byteorder)


class _Waker:
    """A descriptor that a close() makes readable, to end the waits of accept.

    An ``eventfd`` on Linux, a pipe elsewhere; both ends non-blocking and
    close-on-exec. :meth:`close` is idempotent and safe when two threads
    call it at once (each number is popped from a list, atomically).
    """

    __slots__ = ("_fds", "read_fd", "write_fd")

    def __init__(self) -> None:
        eventfd = getattr(os, "eventfd", None)
        if eventfd is not None:
            fd: int = eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self.read_fd = self.write_fd = fd
            self._fds = [fd]
        else:  # pragma: no cover - systems without eventfd
            read_fd, write_fd = os.pipe()  # close-on-exec, as Python makes every descriptor
            self._fds = [read_fd, write_fd]
            try:
                os.set_blocking(read_fd, False)
                os.set_blocking(write_fd, False)
            except BaseException:
                self.close()
                raise
            self.read_fd, self.write_fd = read_fd, write_fd

    def wake(self) -> None:
        """Make :attr:`read_fd` readable (for good: nobody reads it)."""
        try:
            os.write(self.write_fd, _ONE)
        except OSError:
            pass  # already readable (a full pipe, a counter at its limit)

    def close(self) -> None:
        """Close the descriptors. Idempotent."""
        fds = self._fds
        while fds:
            try:
                fd = fds.pop()
            except IndexError:  # another thread took the last one
                return
            with contextlib.suppress(OSError):
                os.close(fd)


class _Closing:
    """What close() leaves to the last call holding the descriptors: the socket and the waker."""

    __slots__ = ("_shell", "_waker")

    def __init__(self, shell: socket.socket, waker: _Waker | None) -> None:
        self._shell = shell
        self._waker = waker

    def close(self) -> None:
        try:
            self._shell.close()  # idempotent
        finally:
            if self._waker is not None:
                self._waker.close()


# What a listening socket's attributes leave out: it has no peer.
_PEER_ATTRIBUTES: Final = (
    SocketAttribute.peername,
    INETSocketAttribute.peername,
    INETSocketAttribute.remote_host,
    INETSocketAttribute.remote_port,
    UNIXSocketAttribute.peername,
)

# The open listeners, for the fork handler below.
_LISTENERS: weakref.WeakSet[SocketListener] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for listener in list(_LISTENERS):
        listener._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _accept(sock: socket.socket, family: int, sock_type: int, proto: int) -> tuple[socket.socket, Any]:
    """Take a waiting connection of the listening ``sock``: a new socket object and the peer's address.

    The receive call of the listeners (see the receive engine of
    :class:`~transports.selector.SelectorBaseTransport`). An error that
    concerns the one connection it took (:data:`_ACCEPT_TRANSIENT`) reads as
    :exc:`BlockingIOError`, "nothing to accept yet".

    Raises:
        BlockingIOError: no connection is waiting.
        OSError: ``EBADF`` once closed; ``EMFILE``/``ENFILE``; any other
            error of ``accept``.
    """
    try:
        fd, address = accept_descriptor(sock)
    except BlockingIOError:
        raise
    except OSError as exc:
        if exc.errno in _ACCEPT_TRANSIENT:
            raise BlockingIOError(errno.EAGAIN, f"the connection went away: {exc.strerror}") from None
        raise
    # Family, type and protocol given, making the object takes no system call
    # to look them up (CPython only checks the descriptor with getsockname).
    return socket.socket(family, sock_type, proto, fileno=fd), address


# -------------------------------------------------------- SocketListener --


@final
@refuse_subclasses
class SocketListener(SocketOwner):
    """A listening ``SOCK_STREAM`` socket (TCP or Unix) that accepts connections.

    The listener owns the socket: :meth:`close` closes it, and one that is
    garbage-collected open emits :exc:`ResourceWarning` and closes it. A
    :meth:`close` from another thread ends a blocked :meth:`accept` at once
    with ``OSError(EBADF)``, whatever its timeout and ``retry_interval``,
    without shutting the socket down (so processes that share it keep
    listening). Use :func:`create_tcp_listener` or
    :func:`create_unix_listener` to make one, or give it a socket of your
    own that is already listening.

    Typed attributes: :attr:`SocketAttribute.socket`,
    :attr:`SocketAttribute.family` and :attr:`SocketAttribute.sockname`;
    ``peername`` is not provided
    (:exc:`~transports.abc.TypedAttributeLookupError`).

    Parameters:
        sock: a bound ``SOCK_STREAM`` socket on which ``listen()`` was
            called; switched to non-blocking mode.
        retry_interval: the longest single wait, in seconds, of
            :meth:`accept` (a close from another thread does not need it);
            also the ``retry_interval`` of every accepted transport.
            :data:`math.inf` disables it.
        nodelay: set ``TCP_NODELAY`` on every accepted TCP connection, as
            :func:`connect_tcp` does on its own; ignored for other families.

    Raises:
        TypeError: ``sock`` is not a :class:`socket.socket`, or is an
            :class:`ssl.SSLSocket`.
        ValueError: ``sock`` is not a ``SOCK_STREAM`` socket, or is not
            listening; ``retry_interval`` is not positive.
        OSError: ``sock`` is closed (``EBADF``); no descriptor is left for
            the waker (``EMFILE``). On any of these errors the socket is
            left untouched and stays yours.
    """

    __slots__ = ("_family", "_nodelay", "_proto", "_type", "_unlink_target", "_waker")

    # The listening socket is never shut down (see the module docstring), and
    # accept() takes no MSG_DONTWAIT: the descriptor is non-blocking.
    _SHUTDOWN_ON_CLOSE = False
    _BLOCKING_DESCRIPTOR_OK = False
    _TIMED_WAITS_IN_C = False

    _waker: _Waker | None
    #: The listening socket's family, type and protocol, as numbers: those of
    #: every accepted socket.
    _family: int
    _type: int
    _proto: int
    _nodelay: bool
    #: (absolute path, st_dev, st_ino) of a socket file to remove on close().
    _unlink_target: tuple[str | bytes, int, int] | None

    def __init__(self, sock: socket.socket, retry_interval: float, *, nodelay: bool = True) -> None:
        check_socket(sock, socket.SOCK_STREAM)
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):  # EBADF when closed
            raise ValueError("The socket is not listening: call listen() first")
        waker = _Waker()
        try:
            super().__init__(sock, socket.SOCK_STREAM, retry_interval, None)
        except BaseException:
            waker.close()
            raise
        self._waker = waker
        self._family, self._type, self._proto = family_of(sock), type_of(sock), sock.proto
        self._nodelay = bool(nodelay) and self._family in (socket.AF_INET, socket.AF_INET6)
        self._unlink_target = None
        _LISTENERS.add(self)

    # ------------------------------------------------------------ accept --

    def accept(self, timeout: float) -> SocketStreamTransport:
        """Wait at most ``timeout`` seconds for a connection and return it as a transport.

        Parameters:
            timeout: seconds; ``0`` takes a connection only if one is
                waiting; :data:`math.inf` waits as long as it takes.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``timeout`` is not a number.
            TimeoutError: no connection came in time.
            OSError: ``EBADF`` when the listener is closed, before or
                during the wait; ``EMFILE``/``ENFILE`` when the process or
                system is out of descriptors (the connection stays queued);
                any other error of ``accept`` or of setting ``TCP_NODELAY``.

        Returns:
            A :class:`SocketStreamTransport` owning the connected socket
            (with ``TCP_NODELAY`` set on TCP unless ``nodelay=False``).
        """
        sock = self._accept_socket(timeout)[0]
        return self._finish(sock)

    def _accept_socket(self, timeout: float) -> tuple[socket.socket, Any]:
        """Accept a connection within ``timeout``: the connected socket (now the caller's) and its address.

        The whole call is registered in ``_descriptor_users``, so that a
        close() of another thread keeps the descriptor number open until
        the ``accept`` system call has returned. Accepts try first or wait
        first by the rule receives follow (see
        :class:`~transports.selector.SelectorBaseTransport`): a server that
        takes connections one at a time mostly finds none waiting, and a
        failed ``accept`` costs an exception, more than a ``poll``.

        Raises:
            As :meth:`accept`.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)  # before anything else, a closed listener included
        fd = self._sock.fileno()
        args = (self._family, self._type, self._proto)
        users = self._descriptor_users
        try:
            users.append(None)  # inside: see "Closing from another thread" in transports.selector
            if self._closing:
                raise closed_error()
            # A receive of a connection, by the receive engine's rule.
            if timeout is not None and timeout > 0:
                waits_first = self._read_waits_first
                if waits_first < 0:
                    try:
                        return _accept(self._sock, *args)
                    except BlockingIOError:
                        return self._receive_after_would_block(fd, _accept, args, timeout)
                if waits_first > 0:
                    self._read_waits_first = waits_first - 1
                    return self._receive_waiting_first(fd, _accept, args, timeout)
            return self._receive(fd, _accept, args, timeout)
        finally:
            users.pop()
            if self._pending_close is not None:
                self._release_descriptor()

    def _prepare(self, sock: socket.socket) -> None:
        """Set the options of an accepted connection. The caller closes ``sock`` if this raises."""
        if self._nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _finish(self, sock: socket.socket) -> SocketStreamTransport:
        """The transport of an accepted connection; ``sock`` is closed if that fails."""
        try:
            self._prepare(sock)
            return SocketStreamTransport(sock, self._retry_interval)
        except BaseException:
            sock.close()
            raise

    def _new_read_poller(self, fileno: int) -> select.poll:
        # The waits of accept poll the waker too, so that close() ends them at once.
        poller = super()._new_read_poller(fileno)
        if self._waker is not None:
            poller.register(self._waker.read_fd, _POLLIN)
        return poller

    # ----------------------------------------------------------- closing --

    def close(self) -> None:
        """Stop listening and close the socket. Idempotent.

        A call of another thread blocked in :meth:`accept` ends at once
        with ``OSError(EBADF)``. The socket is not shut down: a process that
        shares it (a child made by :func:`os.fork`, for instance) goes on
        listening. The socket file of a listener made by
        :func:`create_unix_listener` is removed, if the path still names it.

        Raises:
            OSError: the system refused to close the descriptor (never for a
                listener already closed).
        """
        self._closing = True  # first: see "Closing from another thread" in transports.selector
        sock = self._sock
        family, sock_type, proto = sock.family, sock.type, sock.proto
        fd = sock.detach()  # first: a woken accept must find the socket closed
        if fd < 0:  # closed already, or another thread's close() got there first
            return
        # The shell owns the descriptor from here; family, type and protocol
        # given, it makes no system call.
        shell = socket.socket(family, sock_type, proto, fileno=fd)
        waker = self._waker
        if waker is not None:
            waker.wake()
        self._forget_path()
        self._pending_close = _Closing(shell, waker)
        self._release_descriptor(raise_errors=True)

    def _forget_path(self) -> None:
        """Remove the socket file of :func:`create_unix_listener`, if the path still names it."""
        target = self._unlink_target
        self._unlink_target = None
        if target is not None:
            _remove_if_same(target)

    def _after_fork(self) -> None:
        """In a child made by fork(): a waker of its own, and no claim on the socket file."""
        self._unlink_target = None
        # Only the forking thread lives on in the child: no call holds the descriptors.
        self._descriptor_users.clear()
        if self._pending_close is not None:
            self._release_descriptor()
        old = self._waker
        if old is None:
            return
        try:
            self._waker = _Waker() if self._sock.fileno() >= 0 else None
        except OSError:
            self._waker = None  # waits then notice a close within retry_interval
        self._read_poller = None  # it polls the old waker
        old.close()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The :class:`SocketAttribute` getters: ``socket``, ``family``, ``sockname``."""
        return super().extra_attributes

    def _attribute_getters(self) -> dict[Any, Callable[[], Any]]:
        # A listening socket has no peer: that attribute is absent, not unavailable.
        getters = super()._attribute_getters()
        for key in _PEER_ATTRIBUTES:
            getters.pop(key, None)
        return getters

    # (mypy reads the parameters of a dunder method as positional-only, and so
    # sees two different signatures where there is one.)
    def __del__(self, *, _warn: Callable[..., None] = warnings.warn) -> None:  # type: ignore[override]
        super().__del__(_warn=_warn)  # type: ignore[call-arg]  # warns, and closes the socket
        try:
            waker = self._waker
        except AttributeError:  # the constructor failed
            return
        try:
            self._forget_path()
            if waker is not None:
                waker.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


# ----------------------------------------------------------- TLSListener --


@final
@refuse_subclasses
class TLSListener(BaseTransport):
    """A listener whose connections are TLS: a :class:`SocketListener` plus an SSL context.

    Owns the :class:`SocketListener`: :meth:`close` closes it. Each
    connection makes its server-side handshake with its own budget,
    ``handshake_timeout``, separate from the wait for the connection; a
    failed handshake closes that connection and leaves the listener as it
    was. :func:`serve` makes the handshakes in the connections' threads,
    so that a slow client cannot hold up the others.

    Typed attributes: those of the :class:`SocketListener`.

    Parameters:
        listener: the :class:`SocketListener` to take over.
        ssl_context: the server's :class:`ssl.SSLContext`, with its
            certificate chain loaded (``ssl.create_default_context(
            ssl.Purpose.CLIENT_AUTH)``, then ``load_cert_chain``).
        handshake_timeout: seconds each handshake may take, in total; 60 s
            when :data:`None`.
        shutdown_timeout, standard_compatible: given to each
            :class:`SSLStreamTransport`.

    Raises:
        TypeError: ``listener`` is not a :class:`SocketListener`;
            ``ssl_context`` is not an :class:`ssl.SSLContext`; a timeout is
            not a number.
        ValueError: a timeout is negative or NaN. On these errors the
            listener is left untouched and stays yours.
    """

    __slots__ = (
        "_closed",
        "_context",
        "_handshake_timeout",
        "_handshakes",
        "_listener",
        "_lock",
        "_shutdown_timeout",
        "_standard_compatible",
    )

    _listener: SocketListener
    #: A duplicate descriptor of each connection whose handshake runs, so that
    #: close() can shut it down (which ends that handshake) while its number
    #: is certainly still that connection's. Guarded by _lock.
    _handshakes: set[socket.socket]

    def __init__(
        self,
        listener: SocketListener,
        ssl_context: ssl.SSLContext,
        *,
        handshake_timeout: float | None = None,
        shutdown_timeout: float | None = None,
        standard_compatible: bool = True,
    ) -> None:
        if not isinstance(listener, SocketListener):
            raise TypeError(f"listener must be a SocketListener, not {type(listener).__name__}")
        self._handshake_timeout, self._shutdown_timeout, _ = tls_options(
            ssl_context, handshake_timeout, shutdown_timeout, True, None
        )
        self._context = ssl_context
        self._standard_compatible = bool(standard_compatible)
        self._lock = threading.Lock()
        self._handshakes = set()
        self._closed = False
        self._listener = listener

    def accept(self, timeout: float) -> SSLStreamTransport:
        """Wait at most ``timeout`` seconds for a connection, then make its TLS handshake.

        The handshake has a budget of its own, ``handshake_timeout``. When
        it fails, the connection is closed and the error raised; the
        listener stays usable.

        Parameters:
            timeout: seconds to wait for a connection (the handshake not
                included); ``0`` takes one only if it is waiting;
                :data:`math.inf` waits as long as it takes.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``timeout`` is not a number.
            TimeoutError: no connection came in time; or the handshake did
                not finish within ``handshake_timeout`` (the message says
                which).
            ssl.SSLError: the handshake failed (a client that does not speak
                TLS, an alert; :exc:`ssl.SSLCertVerificationError` for a
                refused client certificate).
            OSError: ``EBADF`` when the listener is closed, before or during
                the wait or the handshake; the client left during the
                handshake (:exc:`ConnectionResetError`, ...); as for
                :meth:`SocketListener.accept`.

        Returns:
            An :class:`SSLStreamTransport` owning the connection, its
            handshake done.
        """
        if self._closed:
            raise closed_error()
        sock = self._listener._accept_socket(timeout)[0]
        return self._finish(sock)

    def _finish(self, sock: socket.socket) -> SSLStreamTransport:
        """The TLS transport of an accepted connection, its handshake done; ``sock`` closed on failure."""
        try:
            self._listener._prepare(sock)
            twin = sock.dup()
        except BaseException:
            sock.close()
            raise
        with self._lock:
            closed = self._closed
            if not closed:
                self._handshakes.add(twin)
        if closed:
            twin.close()
            sock.close()
            raise closed_error()
        try:
            transport = SSLStreamTransport(
                sock,
                self._context,
                self._listener._retry_interval,
                handshake_timeout=self._handshake_timeout,
                shutdown_timeout=self._shutdown_timeout,
                server_side=True,
                standard_compatible=self._standard_compatible,
            )
        except OSError as exc:  # ssl.SSLError and TimeoutError included
            if self._closed:
                raise closed_error() from exc
            raise
        finally:
            with self._lock:
                self._handshakes.discard(twin)
                twin.close()
                closed = self._closed
        if closed:
            # close() may have shut the connection down after its handshake:
            # the call ends as if the close had come a moment sooner.
            transport.close()
            raise closed_error()
        return transport

    def close(self) -> None:
        """Close the listener. Idempotent.

        A blocked :meth:`accept` of another thread ends at once with
        ``OSError(EBADF)``, also when it is in a handshake, and so does
        every handshake under way in the threads of :func:`serve`.
        Connections already made are not touched.

        Raises:
            OSError: the system refused to close the listening socket.
        """
        with self._lock:
            self._closed = True
            for twin in self._handshakes:
                with contextlib.suppress(OSError):
                    twin.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def is_closed(self) -> bool:
        """Return :data:`True` once the listener is closed."""
        return self._closed or self._listener.is_closed()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The typed attributes of the :class:`SocketListener`."""
        return self._listener.extra_attributes

    def __repr__(self) -> str:
        return f"<TLSListener {self._listener!r}>"


# ----------------------------------------------------------------- create --


def create_tcp_listener(
    host: str | None = None,
    port: int = 0,
    *,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    dual_stack: bool = True,
    nodelay: bool = True,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
) -> SocketListener:
    """Listen for TCP connections on ``host``:``port``.

    ``SO_REUSEADDR`` is set (except on Windows), so that a restarted server
    can bind while connections of its previous run linger in ``TIME_WAIT``.

    Parameters:
        host: an IPv4 or IPv6 address, or a name (resolved, and its first
            address used). :data:`None` or ``""``: every interface; with
            ``family=AF_UNSPEC`` that is one IPv6 socket that takes IPv4
            connections too (dual stack) where the system supports it, and
            IPv4 only otherwise.
        port: ``0`` to ``65535``; ``0`` lets the system choose (read it
            from :attr:`SocketAttribute.sockname`).
        family: :data:`socket.AF_INET` or :data:`socket.AF_INET6` to keep to
            that family.
        backlog: how many connections the system queues before
            :meth:`~SocketListener.accept` takes them.
        reuse_port: set ``SO_REUSEPORT``, so that several listeners (of this
            process or others of the same user) bind the same port and the
            system spreads the connections among them.
        dual_stack: on an IPv6 socket, take IPv4 connections too (clear
            ``IPV6_V6ONLY``) where the system supports it; when
            :data:`False`, ``IPV6_V6ONLY`` is set, and ``host=None`` listens
            on IPv4 only.
        nodelay, retry_interval: given to the :class:`SocketListener`.

    Raises:
        TypeError: ``host`` is not a string or :data:`None`; ``port`` or
            ``backlog`` is not an integer.
        ValueError: ``port`` out of range; a negative ``backlog``; ``family``
            other than ``AF_UNSPEC``, ``AF_INET``, ``AF_INET6``;
            ``retry_interval`` not positive; ``reuse_port`` where the system
            has no ``SO_REUSEPORT``. (These come before any socket is made.)
        socket.gaierror: ``host`` does not resolve (or not in ``family``).
        OSError: ``EADDRINUSE`` when the address is in use;
            :exc:`PermissionError` for a port the process may not use; any
            other error of the system (``SO_REUSEPORT`` refused, ...). No
            socket is left open.

    Returns:
        The listener, owning its socket.
    """
    if host is not None and not isinstance(host, str):
        raise TypeError(f"host must be a string or None, not {type(host).__name__}")
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"port must be an integer, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0 to 65535, not {port}")
    if family not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
        raise ValueError(f"family must be AF_UNSPEC, AF_INET or AF_INET6, not {family!r}")
    _check_backlog(backlog)
    _check_retry_interval(retry_interval)
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port: this system has no SO_REUSEPORT")
    address_family, address = _tcp_address(host or None, port, family, dual_stack)
    sock = socket.socket(address_family, socket.SOCK_STREAM)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if address_family == socket.AF_INET6:
            both = dual_stack and socket.has_dualstack_ipv6()
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if both else 1)
        _bind(sock, address)
        sock.listen(backlog)
        return SocketListener(sock, retry_interval, nodelay=nodelay)
    except BaseException:
        sock.close()
        raise


def create_unix_listener(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    *,
    backlog: int = DEFAULT_BACKLOG,
    remove_stale: bool = False,
    mode: int | None = None,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
) -> SocketListener:
    """Listen for connections on a Unix stream socket at ``path``.

    The socket file is created; :meth:`SocketListener.close` removes it
    again if the path still names that file (see below). A name starting
    with a NUL character or byte is in Linux's abstract namespace: no file
    at all.

    Parameters:
        path: a file system path (``str``, ``bytes`` or path-like), or an
            abstract name.
        backlog: how many connections the system queues before
            :meth:`~SocketListener.accept` takes them.
        remove_stale: when a file exists at ``path``, remove it if it is a
            socket on which nobody listens (a connection attempt to it is
            refused), and bind again. A socket somebody listens on, and
            any file that is not a socket, are left alone (``EADDRINUSE``).
            (The check and the removal are two steps: two servers starting
            at once on one path should hold a lock of their own.)
        mode: permission bits for the socket file (``0o600``: the owner
            only may connect), set before the socket listens, so that no
            connection is taken under wider permissions. By default the
            umask decides.
        retry_interval: given to the :class:`SocketListener`.

    Raises:
        TypeError: ``path`` is not a string, bytes or path-like; ``backlog``
            or ``mode`` is not an integer.
        ValueError: an empty ``path``; a negative ``backlog``; ``mode``
            outside ``0`` to ``0o7777``, or given with an abstract name;
            ``retry_interval`` not positive. (These come before any socket
            is made.)
        OSError: ``EADDRINUSE`` when a file exists at ``path`` (and
            ``remove_stale`` is false, or the file is not a stale socket),
            or the abstract name is taken; :exc:`FileNotFoundError` when the
            directory does not exist; :exc:`PermissionError`; ``OSError``
            for a path longer than the system allows. No socket is left
            open, and no file left behind.

    Returns:
        The listener, owning its socket (and the socket file).
    """
    address = os.fspath(path)
    if not isinstance(address, (str, bytes)):
        raise TypeError(f"path must be a string, bytes or a path-like object, not {type(path).__name__}")
    if not address:
        raise ValueError("path must not be empty")
    abstract = address[:1] in ("\0", b"\0")
    _check_backlog(backlog)
    if mode is not None:
        if not isinstance(mode, int) or isinstance(mode, bool):
            raise TypeError(f"mode must be an integer or None, not {type(mode).__name__}")
        if not 0 <= mode <= 0o7777:
            raise ValueError(f"mode must be 0 to 0o7777, not {mode:#o}")
        if abstract:
            raise ValueError("mode cannot be set on an abstract socket name: there is no file")
    _check_retry_interval(retry_interval)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    created: tuple[str | bytes, int, int] | None = None
    try:
        _bind_unix(sock, address, remove_stale, abstract)
        if not abstract:
            found = os.lstat(address)
            created = (os.path.abspath(address), found.st_dev, found.st_ino)
            if mode is not None:
                os.chmod(address, mode)  # before listen(): nobody can connect yet
        sock.listen(backlog)
        listener = SocketListener(sock, retry_interval)
    except BaseException:
        sock.close()
        if created is not None:
            _remove_if_same(created)
        raise
    listener._unlink_target = created
    return listener


# ------------------------------------------------------------------ serve --


@overload
def serve(
    listener: SocketListener,
    handler: Callable[[SocketStreamTransport], object],
    *,
    on_error: Callable[[Exception, SocketStreamTransport | None], object] | None = None,
) -> None: ...


@overload
def serve(
    listener: TLSListener,
    handler: Callable[[SSLStreamTransport], object],
    *,
    on_error: Callable[[Exception, SSLStreamTransport | None], object] | None = None,
) -> None: ...


def serve(
    listener: SocketListener | TLSListener,
    handler: Callable[[Any], object],
    *,
    on_error: Callable[[Exception, Any], object] | None = None,
) -> None:
    """Accept connections until ``listener`` is closed, and serve each with ``handler`` in a thread of its own.

    Each connection gets a new thread, which makes the TLS handshake (for a
    :class:`TLSListener`), calls ``handler(transport)`` and then closes the
    transport, whatever the handler did. The accept loop never waits for a
    client, so a slow or silent client holds up its own thread only.

    Stop it by closing the listener (from another thread, or from a
    handler): :func:`serve` then stops accepting, waits for the handler
    threads still running, and returns. Give handlers finite timeouts, or
    close their transports, if that wait must be bounded. (Closing a
    :class:`TLSListener` also ends the handshakes under way.)

    Failures of a connection never end the loop; they go to ``on_error``:

    - ``on_error(exc, None)``: the connection failed before there was a
      transport (the TLS handshake failed or timed out, for instance), or
      ``accept`` ran out of descriptors or threads (the loop then pauses
      for 0.1 s and goes on);
    - ``on_error(exc, transport)``: ``handler`` raised ``exc`` (the
      transport is still open: its attributes can be read), or closing the
      transport afterwards failed.

    ``on_error`` runs in the connection's thread, or in the accept loop for
    accept failures (an exception it raises there ends :func:`serve`). By
    default failures are logged to the ``"transports.socket"`` logger:
    handler exceptions at ``ERROR`` with their traceback, accept failures
    at ``ERROR``, and failed connections (handshakes) at ``DEBUG``, since
    any client can cause them.

    Handler threads are not daemon threads: the interpreter waits for them
    at exit. When :func:`serve` raises (``KeyboardInterrupt``, an accept
    error it cannot go on after), it does not wait for them.

    Parameters:
        listener: a :class:`SocketListener` or a :class:`TLSListener`; not
            owned (close it yourself, as a ``with`` block does).
        handler: called with each connection's transport, in that
            connection's thread.
        on_error: see above.

    Raises:
        TypeError: ``listener`` is not a listener of this package, or
            ``handler`` or ``on_error`` is not callable.
        OSError: ``accept`` failed with an error other than a close of the
            listener or an exhaustion of resources (the listener stays open).

    Returns:
        :data:`None`, once the listener is closed and every handler thread
        has finished.
    """
    if not isinstance(listener, (SocketListener, TLSListener)):
        raise TypeError(f"listener must be a SocketListener or a TLSListener, not {type(listener).__name__}")
    if not callable(handler):
        raise TypeError("handler must be callable")
    if on_error is not None and not callable(on_error):
        raise TypeError("on_error must be callable or None")
    accepting = listener._listener if isinstance(listener, TLSListener) else listener
    running: set[threading.Thread] = set()
    while True:
        try:
            sock, address = accepting._accept_socket(math.inf)
        except OSError as exc:
            if listener.is_closed():
                break
            if exc.errno not in _ACCEPT_EXHAUSTED:
                raise
            _report_accept_failure(on_error, exc)
            time.sleep(_EXHAUSTED_PAUSE)
            continue
        thread = threading.Thread(
            target=_serve_connection,
            args=(listener, sock, address, handler, on_error, running),
            name=f"transports serving {address!r}",
        )
        running.add(thread)
        try:
            thread.start()
        except BaseException as exc:
            running.discard(thread)
            sock.close()
            if not isinstance(exc, RuntimeError):  # "can't start new thread"
                raise
            _report_accept_failure(on_error, exc)
            time.sleep(_EXHAUSTED_PAUSE)
    for thread in list(running):
        thread.join()


def _serve_connection(
    listener: SocketListener | TLSListener,
    sock: socket.socket,
    address: Any,
    handler: Callable[[Any], object],
    on_error: Callable[[Exception, Any], object] | None,
    running: set[threading.Thread],
) -> None:
    """One connection of :func:`serve`: handshake, handler, close; failures reported."""
    try:
        try:
            transport: StreamTransport = listener._finish(sock)
        except Exception as exc:
            # A close of the listener ended the handshake: nothing to report.
            if not (isinstance(exc, OSError) and exc.errno == errno.EBADF and listener.is_closed()):
                if on_error is not None:
                    on_error(exc, None)
                else:
                    _logger.debug("Connection from %r failed before the handler ran: %r", address, exc)
            return
        try:
            handler(transport)
        except Exception as exc:
            _report_handler_failure(on_error, exc, transport, address)
        finally:
            try:
                transport.close()
            except Exception as exc:
                _report_handler_failure(on_error, exc, transport, address)
    finally:
        running.discard(threading.current_thread())


def _report_handler_failure(
    on_error: Callable[[Exception, Any], object] | None, exc: Exception, transport: StreamTransport, address: Any
) -> None:
    if on_error is not None:
        on_error(exc, transport)
    else:
        _logger.error("Connection handler failed for %r", address, exc_info=exc)


def _report_accept_failure(on_error: Callable[[Exception, Any], object] | None, exc: Exception) -> None:
    if on_error is not None:
        on_error(exc, None)
    else:
        _logger.error("Accepting a connection failed (retrying in %s s): %r", _EXHAUSTED_PAUSE, exc)


# ------------------------------------------------------------------- help --


def _check_backlog(backlog: object) -> None:
    if not isinstance(backlog, int) or isinstance(backlog, bool):
        raise TypeError(f"backlog must be an integer, not {type(backlog).__name__}")
    if backlog < 0:
        raise ValueError(f"backlog must not be negative, not {backlog}")


def _check_retry_interval(retry_interval: float) -> None:
    if not retry_interval > 0:
        raise ValueError(f"retry_interval must be positive, not {retry_interval!r}")


def _tcp_address(
    host: str | None, port: int, family: socket.AddressFamily, dual_stack: bool
) -> tuple[socket.AddressFamily, Any]:
    """The family and address to bind: every interface for ``host=None``, else ``host``'s first address."""
    if host is None:
        if family == socket.AF_UNSPEC:
            family = socket.AF_INET6 if dual_stack and socket.has_dualstack_ipv6() else socket.AF_INET
        return family, ("::", port, 0, 0) if family == socket.AF_INET6 else ("0.0.0.0", port)
    found = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    if not found:  # pragma: no cover - getaddrinfo raises rather than answer nothing
        raise socket.gaierror(socket.EAI_NONAME, f"no address for {host!r}")
    address_family, _, _, _, address = found[0]
    return address_family, address


def _bind(sock: socket.socket, address: Any) -> None:
    """``sock.bind(address)``, its error naming the address."""
    try:
        sock.bind(address)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise OSError(exc.errno, f"cannot listen on {address!r}: {exc.strerror}") from None


def _bind_unix(sock: socket.socket, address: str | bytes, remove_stale: bool, abstract: bool) -> None:
    """Bind ``sock`` to ``address``; with ``remove_stale``, replace a stale socket file first."""
    try:
        sock.bind(address)
        return
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not remove_stale or abstract:
            if exc.errno is None:
                raise
            in_use = exc.errno == errno.EADDRINUSE and not abstract and not remove_stale
            hint = " (remove_stale=True replaces a socket file nobody listens on)" if in_use else ""
            raise OSError(exc.errno, f"cannot listen on {address!r}: {exc.strerror}{hint}") from None
    _remove_stale_socket_file(address)
    _bind(sock, address)


def _remove_stale_socket_file(address: str | bytes) -> None:
    """Remove the socket file at ``address`` if nobody listens on it; else raise ``EADDRINUSE``."""
    try:
        before = os.lstat(address)
    except FileNotFoundError:
        return  # gone meanwhile: the next bind may succeed
    if not stat.S_ISSOCK(before.st_mode):
        raise OSError(errno.EADDRINUSE, f"cannot listen on {address!r}: a file that is not a socket is there")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        try:
            probe.connect(address)
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # stale (or gone)
        except BlockingIOError:
            raise OSError(errno.EADDRINUSE, f"cannot listen on {address!r}: a process listens on it") from None
        except OSError as exc:
            raise OSError(
                errno.EADDRINUSE, f"cannot listen on {address!r}: cannot tell whether it is stale ({exc.strerror})"
            ) from exc
        else:
            raise OSError(errno.EADDRINUSE, f"cannot listen on {address!r}: a process listens on it")
    finally:
        probe.close()
    try:
        after = os.lstat(address)
    except FileNotFoundError:
        return
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        raise OSError(errno.EADDRINUSE, f"cannot listen on {address!r}: the file was replaced while it was checked")
    try:
        os.unlink(address)
    except FileNotFoundError:
        pass


def _remove_if_same(target: tuple[str | bytes, int, int]) -> None:
    """Remove the file ``(path, st_dev, st_ino)`` if the path still names it; errors ignored."""
    path, device, inode = target
    try:
        found = os.lstat(path)
        if (found.st_dev, found.st_ino) == (device, inode):
            os.unlink(path)
    except OSError:
        pass
