"""SSLStreamTransport: TLS on a socket, with OpenSSL reading and writing it.

Why wrap the socket, not a memory BIO
=====================================

``transports.composite.TLSStreamTransport`` runs TLS over any stream
transport by moving ciphertext between two memory BIOs and the wrapped
transport: one more copy each way and a Python loop per record. When the
transport *is* a socket, :meth:`ssl.SSLContext.wrap_socket` lets OpenSSL
read and write the descriptor itself. This transport does that, in
non-blocking mode, and adds what a plain :class:`ssl.SSLSocket` lacks:
timeouts with one budget per call, a bounded handshake and closing
handshake, the typed attributes, and the ownership rules of the other
socket transports (``_ownership.py``), which it reuses.

The want-read / want-write loop
===============================

In non-blocking mode every :class:`ssl.SSLSocket` operation may raise
:exc:`ssl.SSLWantReadError` or :exc:`ssl.SSLWantWriteError`: OpenSSL needs
the socket to become readable or writable before it can go on. Either can
come from either operation: a read may have to write (a TLS 1.2
renegotiation, an alert), a write may have to read. The transport turns
them into :class:`~transports.selector.WouldBlockOnRead` /
:class:`~transports.selector.WouldBlockOnWrite` on the socket's descriptor
and waits for that direction (``SelectorBaseTransport._retry``); neither
ever reaches the caller. Every other error is final and propagates at
once: an :exc:`ssl.SSLError` (a corrupt record, an alert, a peer that does
not speak TLS), an :exc:`ssl.SSLSyscallError`, a :exc:`ConnectionResetError`.
None of them is turned into a wait.

Two OpenSSL facts shape the hot paths:

- A readable socket does not mean a record is complete: after a wait,
  ``SSL_read`` may still want to read (half a record arrived, or only a
  session ticket). The transport simply waits again, within the budget.
- Decrypted data may already sit in OpenSSL's buffer (``pending()``) while
  the socket has nothing to read: a record larger than the caller's
  buffer. The "wait first" mode of receives (see ``_ownership.py``) must
  never wait then; it asks ``pending()`` before it waits.

The hot paths
=============

As in ``SocketStreamTransport``, ``recv``, ``recv_into``, ``send`` and
``send_all`` try the operation first, with no closure, no clock read and
no lock (only the registration that "Threads" explains), on the
connection's OpenSSL object itself (``read``, ``write``: what the
:class:`ssl.SSLSocket` methods call). A failed non-blocking TLS call is
expensive (CPython builds an :exc:`ssl.SSLWantReadError` with a formatted
message, several microseconds), so receives adapt between trying first
and waiting first exactly as the plain socket transport does. ``recv``
returns what OpenSSL's read returns (at most one record, never copied
again); it asks for 64 KiB at most, since a read of ``n`` bytes
allocates them before it reads one record of 16 KiB at most.

A write that OpenSSL has started must be finished
=================================================

``SSL_write`` is all or nothing for the caller, but not for the socket:
when it raises a "want" error it may already have encrypted and sent some
records, and keeps the rest of the current record. It must then be called
again with the same data (CPython allows a moved buffer, not different
contents). Otherwise the next write is spliced onto the old one, or fails
with "bad write retry". The retry loops here always retry with the same
buffer. When a blocking send gives up half-way (a timeout), the transport
keeps a copy of that write and finishes it first, before the next write
and before the close_notify, so the peer never sees a torn stream. As for
any failed ``send_all``, there is no telling how much of the data the peer
will get; here, the write in progress is taken. ``send`` and ``send_all``
hand OpenSSL at most 64 KiB / 1 MiB at a time, which bounds that copy.

``send_noblock`` keeps OpenSSL's own rule: after it raised
``WouldBlockOn*``, call it again with the same object.

Closing
=======

With ``standard_compatible=True`` (the default), :meth:`~SSLStreamTransport.close`
finishes an interrupted write, sends a close_notify and waits for the
peer's (``SSLSocket.unwrap()``, retried on want-read / want-write), all
within ``shutdown_timeout``: many TLS 1.3 peers never answer. Every error
of that exchange is swallowed (the peer may be gone); the socket is closed
in every case. A peer that ends the connection without a close_notify (a
"ragged EOF", which a truncation attack looks like) makes ``recv`` raise
:exc:`ssl.SSLEOFError`: the socket is wrapped with
``suppress_ragged_eofs=False``. (A context with
:data:`ssl.OP_IGNORE_UNEXPECTED_EOF` asks OpenSSL to report such an EOF as
a clean close.) With ``standard_compatible=False``, ``close`` sends
nothing and a ragged EOF reads as ``b""``.

A received close_notify reads as ``b""``; after any end of the stream,
``send`` raises :exc:`ConnectionResetError` (OpenSSL itself would still
encrypt data for a peer that said it is gone).

Closing the socket, after the closing handshake, follows the stream
sockets' rule (``SocketOwner.close``): the connection is shut down, which
wakes a thread polling it, and the descriptor is closed once no call of
another thread is inside the transport (see "Threads"). While such a call
runs, the :class:`ssl.SSLSocket` first gives up its descriptor (and its
reference to the OpenSSL object, which the transport keeps for that
call). The shutdown and the close are those of the socket itself, not the
:class:`ssl.SSLSocket` methods, which would drop the OpenSSL object first.

Why no ``send_eof``
===================

Refused with :exc:`~transports.abc.UnsupportedOperation`, for the reasons
``TLSStreamTransport`` gives: TLS 1.2 (RFC 5246, 7.2.1) makes the receiver
of a close_notify answer with its own and stop writing, only TLS 1.3
allows writing on, the version is the peer's choice as much as ours, and
this project's TLS transports read a close_notify as the end of the
connection. A half-close that works towards some peers only is worse than
a clear refusal.

Threads
=======

One thread may receive while another sends. OpenSSL does not serialise
the two: on a non-blocking socket a read and a write running at once
share state (what the connection waits for, the error of the last call),
and 4 of 5 transfers of 4 MiB each way, one thread sending and one
receiving at each end, failed with a bad record MAC or a false EOF (a
plain :class:`ssl.SSLSocket` with a timeout fails the same way, less
often). So each read and write of the OpenSSL object holds a lock, only
for the length of that non-blocking call, never while the thread waits
for the socket: a receiver waiting for data never holds up a sender. It
costs about 7% of the client CPU of a TLS round trip (the benchmark's
ping-pong, against plain ``ssl``: 0.97x/1.08x without the lock and
1.04x/1.17x with it, finite/infinite timeout, 11 repetitions, one
session), the price of a connection that does not corrupt.

:meth:`~SSLStreamTransport.close` from another thread is the case that
matters: "close to stop a blocked reader" is what ``retry_interval`` is
for. Two threads inside OpenSSL on one connection corrupt its memory: a
closing handshake (``SSL_shutdown``) alongside a reader's ``SSL_read``
crashed the interpreter within a few dozen tries, and so would freeing
the OpenSSL object under a running call. So every public call registers
itself for its whole length, not only while it waits (a deque append and
pop, in the same ``_descriptor_users`` as the waits of the base class),
and ``close`` makes the closing handshake only when no call is
registered. Otherwise it shuts the socket down, which ends
every call inside with ``EBADF``, and the last call to leave closes the
socket. The descriptor number therefore stays this connection's as long
as any call may use it: a wait woken by the shutdown never finds another
file under that number. The handshake that cannot be made is the price:
the peer sees the end without a close_notify. Who checks what, in which
order, is written at ``SSLStreamTransport.__guarded``.

What the registration costs is won back on the hot paths: they call the
connection's OpenSSL object (``SSLSocket._sslobj``) directly, not through
the :class:`ssl.SSLSocket` methods, which are two Python frames per
receive. In the benchmark's TLS ping-pong, client CPU against plain
``ssl`` went from 1.08x to 1.14x with the registration alone (through
the :class:`ssl.SSLSocket` methods and a registration frame), and is
1.08x with both (tools/bench_transports.py, 11 repetitions, one session).
"""

from __future__ import annotations

__all__ = ["SSLStreamTransport"]

import errno
import selectors
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from ssl import SSLEOFError, SSLError, SSLWantReadError, SSLWantWriteError, SSLZeroReturnError
from typing import Any, Final, Protocol, TypeVar, cast, final, overload

from typing_extensions import Buffer

from transports.abc import (
    TypedAttributeLookupError,
    UnsupportedOperation,
    deadline_after,
    time_left,
    timeout_error,
    validate_timeout,
)
from transports.abc._family import (
    BYTE_TYPES,
    TLS_SEND_LIMIT,
    buffer_type_error,
    byte_view,
    closed_error,
    peer_closed_error,
    refuse_subclasses,
    tls_attributes,
    tls_options,
    writable_nbytes,
)
from transports.selector import SelectorStreamTransport, WouldBlockOnRead, WouldBlockOnWrite

from ._attributes import socket_attributes
from ._constants import DONTWAIT
from ._ownership import SocketOwner
from ._proxy import SocketProxy

# The most plaintext one recv() asks OpenSSL for. SSL_read returns one record
# (16 KiB) at most, but SSLSocket.recv(n) allocates n bytes first: a larger
# size would only cost a large allocation per call.
_RECV_LIMIT: Final = 64 * 1024
# The most plaintext send_all() hands to OpenSSL in one SSL_write.
_WRITE_CHUNK: Final = 1024 * 1024
_WANT: Final = (SSLWantReadError, SSLWantWriteError)
_T = TypeVar("_T")
# SSLStreamTransport.__guarded's marker of a missing second or third argument.
_NO_ARGUMENT: Any = object()
# What recv() passes for the buffer of recv_into(): the read returns bytes.
# (Not None: recv_into(None) must fail as any other non-buffer does.)
_NO_BUFFER: Any = object()


class _Connection(Protocol):
    """What the hot paths use of an OpenSSL connection (``SSLSocket._sslobj``)."""

    @property
    def session(self) -> ssl.SSLSession | None: ...
    @property
    def session_reused(self) -> bool: ...
    @overload
    def read(self, len: int, /) -> bytes: ...
    @overload
    def read(self, len: int, buffer: Buffer, /) -> int: ...
    def write(self, data: Buffer, /) -> int: ...
    def pending(self) -> int: ...


# OpenSSL 3 names the reason of every EOF it reports; an SSLEOFError without
# one comes from a read or write that failed (CPython before 3.13 reports an
# ECONNRESET that way). Older OpenSSL reports a plain EOF without a reason
# too: there, the kernel is asked whether the TCP connection was reset.
_OPENSSL_NAMES_EVERY_EOF = ssl.OPENSSL_VERSION_INFO >= (3, 0)
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None)
_TCP_CLOSE = 7  # tcpi_state after a reset (a FIN leaves CLOSE_WAIT)


def _was_reset(exc: SSLEOFError, sock: socket.socket) -> bool:
    """Whether ``exc``, an SSLEOFError, reports a reset connection."""
    if getattr(exc, "reason", None) is not None:  # typeshed types it str; CPython leaves it None
        return False
    if _OPENSSL_NAMES_EVERY_EOF:
        return True
    if _TCP_INFO is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1)[0] == _TCP_CLOSE
    except OSError:
        return False


def _reset_error() -> ConnectionResetError:
    return ConnectionResetError(errno.ECONNRESET, "The peer reset the connection")


def _check_wrap_arguments(server_hostname: object, session: object) -> None:
    """Refuse what ``wrap_socket`` would refuse only after taking the descriptor.

    It checks the host name's encoding and the session's type after moving
    the descriptor to the new SSLSocket, and its failure then leaves that
    object to the garbage collector, open.

    Raises:
        TypeError: ``session`` is not an :class:`ssl.SSLSession`;
            ``server_hostname`` is neither text nor bytes.
        ValueError: ``server_hostname`` has no IDNA encoding (a label over
            63 characters, for one).
    """
    if session is not None and not isinstance(session, ssl.SSLSession):
        raise TypeError(f"session must be an ssl.SSLSession, not {type(session).__name__}")
    if server_hostname is None:
        return
    if isinstance(server_hostname, str):
        try:
            server_hostname.encode("idna")
        except UnicodeError as exc:
            raise ValueError(f"server_hostname {server_hostname!r} has no IDNA encoding: {exc}") from None
    elif isinstance(server_hostname, bytes):
        try:
            server_hostname.decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"server_hostname {server_hostname!r} is not ASCII: {exc}") from None
    else:
        raise TypeError(f"server_hostname must be str or bytes, not {type(server_hostname).__name__}")


def _refuse_a_reset_socket(sock: socket.socket) -> None:
    """Raise ConnectionResetError if the peer reset ``sock``'s connection already.

    ``wrap_socket`` would fail then too, but after taking the descriptor
    from ``sock`` and leaving it in an object nobody closes, or with an
    error that reads as "the peer does not speak TLS".
    """
    try:
        sock.getpeername()
        return
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            raise
    try:
        pending = sock.recv(1, socket.MSG_PEEK | DONTWAIT)
    except ConnectionResetError:
        raise _reset_error() from None
    except OSError as exc:
        if exc.errno in (errno.ENOTCONN, errno.EINVAL):
            return  # never connected: the handshake reports it
        # A connect still in progress, for one: wrap_socket would fail too,
        # after taking the descriptor.
        raise OSError(errno.ENOTCONN, f"The socket is not connected: {exc}") from exc
    if pending:  # bytes arrived, then the connection went
        raise _reset_error()


@final
@refuse_subclasses
class SSLStreamTransport(SocketOwner, SelectorStreamTransport):
    """A TLS connection over a connected ``SOCK_STREAM`` socket.

    The constructor wraps the plain socket with ``ssl_context.wrap_socket``
    (non-blocking) and performs the handshake, within ``handshake_timeout``.
    From the call on, the transport owns the socket: :meth:`close` closes
    it, and so does every failure of the constructor, whatever it is
    (argument errors included), so a refused certificate leaks no
    descriptor. An open transport that is garbage-collected emits
    :exc:`ResourceWarning` and closes the socket.

    Typed attributes: the :class:`~transports.abc.TLSAttribute` set and the
    socket's :class:`SocketAttribute` set; every getter raises
    :exc:`~transports.abc.TypedAttributeLookupError` once the transport is
    closed.

    Parameters:
        sock: a connected ``SOCK_STREAM`` socket (TCP, or ``AF_UNIX``); not
            an :class:`ssl.SSLSocket`.
        ssl_context: the :class:`ssl.SSLContext` of the connection.
        retry_interval: the longest single wait, in seconds, before an
            operation is tried again (so that a close from another thread is
            noticed); :data:`math.inf` disables it.
        handshake_timeout: seconds the handshake may take, in total; 60 s
            when :data:`None`.
        shutdown_timeout: seconds :meth:`close` may spend on the closing
            handshake, in total; 30 s when :data:`None`.
        server_side: :data:`True` for the server end of the handshake. When
            :data:`None`, the transport is a server unless
            ``server_hostname`` is given.
        server_hostname: the host name the server's certificate must match
            (and the SNI sent); client side only.
        standard_compatible: when :data:`True` (the default), :meth:`close`
            sends a close_notify and waits for the peer's, and a peer that
            ends the connection without one makes :meth:`recv` raise
            :exc:`ssl.SSLEOFError`. When :data:`False`, no closing
            handshake is done and such an end reads as ``b""``.
        session: a :class:`ssl.SSLSession` of an earlier connection to
            resume (client side).
        selector_factory: when given, makes the selector of every wait.

    Raises:
        TypeError: ``sock`` is not a :class:`socket.socket` or is an
            :class:`ssl.SSLSocket`; ``ssl_context`` is not an
            :class:`ssl.SSLContext`.
        ValueError: ``sock`` is not a ``SOCK_STREAM`` socket;
            ``retry_interval`` is not positive; a timeout is negative or
            NaN; ``server_hostname`` was given to a server; a client has no
            ``server_hostname`` while ``ssl_context.check_hostname`` is set;
            or ``session`` was given to a server.
        TimeoutError: the handshake did not finish within ``handshake_timeout``.
        ssl.SSLCertVerificationError: the peer's certificate was refused
            (untrusted, expired, wrong host name).
        ssl.SSLEOFError: the peer ended the connection during the handshake.
        ssl.SSLError: any other handshake failure, such as a peer that does
            not speak TLS, or an alert from the peer.
        OSError: the socket failed (for instance :exc:`ConnectionResetError`
            or :exc:`BrokenPipeError` when the peer left, ``ENOTCONN`` for an
            unconnected socket), or is closed.
    """

    __slots__ = (
        "__closed",
        "__openssl",
        "__peer_closed",
        "__shutdown_timeout",
        "__sslobj",
        "__sslsock",
        "__standard_compatible",
        "__unfinished",
    )

    # OpenSSL reads and writes the descriptor itself, without MSG_DONTWAIT,
    # and its receives wait with their own poll.
    _BLOCKING_DESCRIPTOR_OK = False
    # close() (after the closing handshake) is that of the stream sockets:
    # shut down, and close once no call holds the descriptor.
    _SHUTDOWN_ON_CLOSE = True
    _TIMED_WAITS_IN_C = False

    __sslsock: ssl.SSLSocket
    __unfinished: Buffer | None
    __peer_closed: bool
    __closed: bool
    # Held around every read and write of the OpenSSL object (never while
    # waiting): see "Threads". A with statement, although acquire() and
    # release() in a try cost a third as much (145 ns against 430 ns on
    # Python 3.11): an exception raised by a signal handler right after
    # acquire() returns would leave the lock held for ever, and a with
    # statement has no such gap.
    __openssl: threading.Lock
    __standard_compatible: bool
    __shutdown_timeout: float
    # The connection's OpenSSL object (CPython's ``SSLSocket._sslobj``). The
    # hot paths call it directly: the SSLSocket methods in between are two
    # Python frames per receive, more than the registration of every call
    # costs (see "Threads"). Kept after close() (which, when a call of
    # another thread holds the descriptor, drops it from the SSLSocket), so
    # that ``session`` and ``session_reused`` still answer; no call reaches
    # its read or write then (__guarded). Reading a session leaks native memory in several
    # CPython releases (about 7 KiB a read): close() must not read one on
    # the caller's behalf, so it is read only when asked for.
    __sslobj: _Connection

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext,
        retry_interval: float,
        *,
        handshake_timeout: float | None = None,
        shutdown_timeout: float | None = None,
        server_side: bool | None = None,
        server_hostname: str | None = None,
        standard_compatible: bool = True,
        session: ssl.SSLSession | None = None,
        selector_factory: Callable[[], selectors.BaseSelector] | None = None,
    ) -> None:
        self.__closed = False
        self.__openssl = threading.Lock()
        self.__unfinished = None
        self.__peer_closed = False
        try:
            # Checks the socket, switches it to non-blocking mode, sets up the
            # waits; from here the owner closes whichever object holds the
            # descriptor, the plain socket or the SSLSocket.
            super().__init__(sock, socket.SOCK_STREAM, retry_interval, selector_factory)
            handshake_timeout, self.__shutdown_timeout, server_side = tls_options(
                ssl_context, handshake_timeout, shutdown_timeout, server_side, server_hostname
            )
            self.__standard_compatible = bool(standard_compatible)
            _check_wrap_arguments(server_hostname, session)
            _refuse_a_reset_socket(sock)
            sslsock = self._wrap_socket(
                partial(
                    ssl_context.wrap_socket,
                    server_side=server_side,
                    server_hostname=server_hostname,
                    do_handshake_on_connect=False,
                    suppress_ragged_eofs=False,
                    session=session,
                )
            )
            self.__sslsock = sslsock
            # (None for an unconnected socket, whose handshake fails below.)
            self.__sslobj = cast(_Connection, sslsock._sslobj)  # type: ignore[attr-defined]
            self.__handshake(handshake_timeout)
        except BaseException:
            self.__close_after_failure(sock)
            raise

    def __handshake(self, timeout: float) -> None:
        try:
            self._retry(self.__handshake_noblock, timeout)
        except TimeoutError as exc:
            raise timeout_error("The TLS handshake did not finish in time") from exc

    def __handshake_noblock(self) -> None:
        sslsock = self.__sslsock
        try:
            sslsock.do_handshake()
        except SSLWantReadError:
            raise WouldBlockOnRead(sslsock.fileno()) from None
        except SSLWantWriteError:
            raise WouldBlockOnWrite(sslsock.fileno()) from None
        except SSLZeroReturnError as exc:
            # With OP_IGNORE_UNEXPECTED_EOF, OpenSSL reports an EOF as a clean
            # close; during a handshake any EOF is the same failure.
            raise SSLEOFError(ssl.SSL_ERROR_EOF, "The peer closed the connection during the TLS handshake") from exc

    def __close_after_failure(self, sock: Any) -> None:
        if not hasattr(self, "_sock"):
            # Refused before the owner took it: the caller's object holds it.
            if isinstance(sock, socket.socket):
                try:
                    sock.close()
                except OSError:
                    pass
            return
        try:
            SocketOwner.close(self)  # the plain socket, or the SSLSocket once wrapped
        except OSError:
            pass  # the reason the constructor failed matters more

    def __guarded(
        self, operation: Callable[..., _T], first: Any, second: Any = _NO_ARGUMENT, third: Any = _NO_ARGUMENT
    ) -> _T:
        """Run ``operation(first[, second[, third]])``, one public call, in step with :meth:`close`.

        Raises:
            OSError: ``EBADF`` when the transport was closed before or
                during the call; whatever ``operation`` raises otherwise.

        The rule that keeps two threads out of OpenSSL's hands at once when
        one of them closes: every call registers in ``_descriptor_users``
        and then checks ``__closed``; :meth:`close` sets ``__closed`` and
        then checks the registrations. Whatever the interleaving, either the
        call sees the close (and fails with ``EBADF`` before touching
        OpenSSL), or the close sees the call (and makes no closing
        handshake). The socket is closed by whoever leaves last, so the
        descriptor number stays this connection's while a call may use it.

        A call that a close overlapped ends with ``EBADF``: its error, end
        of stream or empty result came from the shutdown, not from the
        peer. Data it received is returned.

        (Positional arguments rather than ``*args``: a call with an
        unpacked tuple costs more than this whole registration.)
        """
        users = self._descriptor_users
        try:
            users.append(None)  # inside: see "Closing from another thread"
            if self.__closed:
                raise closed_error()
            if second is _NO_ARGUMENT:
                result = operation(first)
            elif third is _NO_ARGUMENT:
                result = operation(first, second)
            else:
                result = operation(first, second, third)
        except OSError as exc:  # ssl.SSLError and TimeoutError included
            if self.__closed:
                raise closed_error() from exc
            if type(exc) is SSLEOFError and not self.__peer_closed and _was_reset(exc, self._sock):
                raise _reset_error() from exc
            raise
        finally:
            users.pop()
            if self._pending_close is not None:
                self._release_descriptor()
        if not result and result is not None and self.__closed:
            raise closed_error()
        return result

    # -------------------------------------------------------- properties

    @property
    def session(self) -> ssl.SSLSession | None:
        """The TLS session, to resume in a later connection (``session=``).

        Still available after :meth:`close`. With TLS 1.3 the server sends
        the session tickets after the handshake, so a client has a resumable
        session only once it has received some data. Read it from the
        thread that uses the transport: OpenSSL may replace it while another
        thread receives. (In several CPython releases, 3.11's among them,
        each read of a session leaks a few KiB of native memory; the
        transport itself never reads it.)
        """
        session: ssl.SSLSession | None = self.__sslobj.session
        return session

    @property
    def session_reused(self) -> bool:
        """Whether the handshake resumed an earlier session (also after :meth:`close`)."""
        return bool(self.__sslobj.session_reused)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The :class:`~transports.abc.TLSAttribute` and :class:`SocketAttribute` getters.

        Every getter raises :exc:`~transports.abc.TypedAttributeLookupError`
        once closed, and ``TLSAttribute.peercert`` (``compression``) also
        when the peer sent no certificate or it was not verified (when no
        compression is in use).
        """
        return super().extra_attributes

    def _attribute_getters(self) -> dict[Any, Callable[[], Any]]:
        sslsock = self.__sslsock
        getters = socket_attributes(sslsock, SocketProxy(sslsock))
        getters.update(tls_attributes(_opener(sslsock), self.__standard_compatible))
        return getters

    # ----------------------------------------------------------- closing

    def close(self) -> None:
        """Close the TLS connection and the socket. Idempotent.

        With ``standard_compatible=True``, first finish a write that a
        timeout interrupted, send a close_notify and wait for the peer's, in
        all at most ``shutdown_timeout`` seconds; every error of that
        closing handshake (a peer that is gone, a timeout, a TLS error) is
        swallowed. The socket is shut down and closed in every case, which
        wakes a thread blocked on it.

        If another thread is inside a call of this transport (blocked or
        not), there is no closing handshake, which must not run in OpenSSL
        alongside that call: ``close()`` only shuts the socket down, which
        ends that call with ``OSError(EBADF)``, and returns at once; the
        last call to leave closes the descriptor (and ignores an error of
        that close). The peer then sees the connection end without a
        close_notify. So a close from another thread that lands between two
        calls of a receiving loop makes the whole closing handshake (and
        may take up to ``shutdown_timeout``), one that lands inside a call
        makes none.

        Raises:
            OSError: the system refused to close the descriptor (never for a
                transport already closed).
        """
        if self.__closed:
            return
        self.__closed = True  # first: see __guarded
        if self.__sslsock.fileno() < 0:
            return
        try:
            if self.__standard_compatible and not self._descriptor_users:
                try:
                    self.__closing_handshake(self.__shutdown_timeout)
                except (OSError, ValueError):  # ssl.SSLError and TimeoutError included
                    pass
        finally:
            # The stream sockets' close: shut down, and close once no call
            # holds the descriptor (__sslobj stays, for a call still running).
            super().close()

    def __closing_handshake(self, timeout: float) -> None:
        deadline = deadline_after(timeout)
        unfinished = self.__unfinished
        if unfinished is not None and not self.__peer_closed:
            self._retry(partial(self.__send_noblock, unfinished), timeout)
        self._retry(self.__unwrap_noblock, time_left(deadline))

    def __unwrap_noblock(self) -> None:
        sslsock = self.__sslsock
        try:
            sslsock.unwrap()
        except SSLWantReadError:
            raise WouldBlockOnRead(sslsock.fileno()) from None
        except SSLWantWriteError:
            raise WouldBlockOnWrite(sslsock.fileno()) from None

    def is_closed(self) -> bool:
        """Return :data:`True` once :meth:`close` has been called."""
        return self.__closed or self.__sslsock.fileno() < 0

    def send_eof(self) -> None:
        """Refuse to half-close: TLS half-close is not supported.

        A close_notify is a full close for TLS 1.2 peers (RFC 5246) and for
        this project's TLS transports; see the module documentation. Does
        nothing when the transport is closed.

        Raises:
            UnsupportedOperation: always, unless the transport is closed.
        """
        if self.is_closed():
            return
        raise UnsupportedOperation("TLS half-close (send_eof) is not supported; close the transport instead")

    # --------------------------------------------------------- receiving

    def __end_of_stream(self, exc: SSLError) -> bool:
        """Whether ``exc`` from a read is an end of stream that reads as ``b""``.

        Every end of the stream, clean or not, makes later sends raise
        :exc:`ConnectionResetError`.
        """
        if isinstance(exc, SSLZeroReturnError):
            self.__peer_closed = True
            return True
        if isinstance(exc, SSLEOFError):
            # Only the first end is a reset: what OpenSSL reports after it (an
            # alert it sent to the closed peer is answered by a reset) is not.
            reset = not self.__peer_closed and _was_reset(exc, self._sock)
            self.__peer_closed = True
            if reset:
                raise _reset_error() from exc
            return not self.__standard_compatible
        return False

    def recv(self, bufsize: int, timeout: float) -> bytes:
        """Read up to ``bufsize`` bytes of plaintext, waiting at most ``timeout`` seconds.

        Returns at most one TLS record's worth (16 KiB), as OpenSSL
        decrypted it.

        Raises:
            ValueError: ``bufsize`` is negative, or ``timeout`` is negative or NaN.
            TimeoutError: no complete record arrived in time.
            ssl.SSLEOFError: the peer ended the connection without a
                close_notify and ``standard_compatible`` is :data:`True`.
            ssl.SSLError: the TLS connection failed (a corrupt record, an
                alert from the peer).
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF: a
            close_notify, or with ``standard_compatible=False`` any EOF.
        """
        data: bytes = self.__guarded(self.__receive, bufsize, _NO_BUFFER, timeout)
        return data

    def recv_noblock(self, bufsize: int) -> bytes:
        """Read up to ``bufsize`` bytes of plaintext without blocking.

        Raises:
            ValueError: ``bufsize`` is negative.
            WouldBlockOnRead: no complete record yet.
            WouldBlockOnWrite: OpenSSL must write first (renegotiation).
            ssl.SSLEOFError: the peer ended the connection without a
                close_notify and ``standard_compatible`` is :data:`True`.
            ssl.SSLError: the TLS connection failed.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF.
        """
        data: bytes = self.__guarded(self.__receive_noblock, bufsize, _NO_BUFFER)
        return data

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        """Read plaintext into ``buffer``, waiting at most ``timeout`` seconds.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``buffer`` is not a writable buffer.
            TimeoutError: no complete record arrived in time.
            ssl.SSLEOFError: the peer ended the connection without a
                close_notify and ``standard_compatible`` is :data:`True`.
            ssl.SSLError: the TLS connection failed.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means
            EOF (see :meth:`recv`).
        """
        nbytes: int = self.__guarded(self.__receive, 0, buffer, timeout)
        return nbytes

    def recv_noblock_into(self, buffer: Buffer) -> int:
        """Read plaintext into ``buffer`` without blocking.

        Raises:
            TypeError: ``buffer`` is not a writable buffer.
            WouldBlockOnRead: no complete record yet.
            WouldBlockOnWrite: OpenSSL must write first (renegotiation).
            ssl.SSLEOFError: the peer ended the connection without a
                close_notify and ``standard_compatible`` is :data:`True`.
            ssl.SSLError: the TLS connection failed.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means EOF.
        """
        nbytes: int = self.__guarded(self.__receive_noblock, 0, buffer)
        return nbytes

    # The receives are on the receive engine (see transports.selector): the
    # call is one read of the OpenSSL object under its lock, with the
    # arguments of ``SSLObject.read``: ``(size,)`` for recv, ``(0, buffer)``
    # for recv_into. "Want" errors say it would block. (The size and the
    # buffer go separately, not as one tuple of arguments, up to the read:
    # the tuple and ``read(*args)`` measured 1% to 2% more client CPU per
    # TLS round trip, bench, tls-pingpong.)

    def __receive(self, size: int, buffer: Buffer, timeout: float) -> Any:
        if size > _RECV_LIMIT:
            size = _RECV_LIMIT
        if timeout is not None and timeout > 0:
            waits_first = self._read_waits_first
            if waits_first < 0:
                try:
                    return self.__read(None, size, buffer)
                except SSLWantReadError:
                    return self._receive_after_would_block(self._sock.fileno(), self.__read, (size, buffer), timeout)
                except SSLWantWriteError:
                    return self._receive_after_would_block(
                        self._sock.fileno(), self.__read, (size, buffer), timeout, want_write=True
                    )
            if waits_first > 0 and (size > 0 if buffer is _NO_BUFFER else writable_nbytes(buffer)):
                self._read_waits_first = waits_first - 1
                # After a close_notify the socket may never become readable
                # again (the peer waits for ours), yet the next read answers at
                # once; and OpenSSL may hold decrypted bytes the socket no
                # longer shows: then the read tries first.
                if not self.__sslobj.pending() and not self.__peer_closed:
                    # _receive_waiting_first() written out, as the socket
                    # transports write out their timed waits: with the
                    # engine's call and the helper, the TLS round trip cost 7%
                    # more client CPU (bench, tls-pingpong, paired).
                    deadline = self._wait_readable(self._sock.fileno(), timeout)
                    try:
                        with self.__openssl:
                            result = (
                                self.__sslobj.read(size) if buffer is _NO_BUFFER else self.__sslobj.read(size, buffer)
                            )
                    except _WANT as exc:
                        # (Part of a record came: wait for the rest, or for room to write.)
                        retry = partial(self._receive_noblock, self.__read, (size, buffer))
                        want_write = type(exc) is SSLWantWriteError
                        return self._after_would_block(self._sock.fileno(), retry, want_write, time_left(deadline))[0]
                    except SSLError as exc:
                        return self.__read_failed(exc, buffer)
                    if not result:
                        self.__read_nothing(size, buffer)
                    return result
        return self._receive(self._sock.fileno(), self.__read, (size, buffer), timeout)

    def __receive_noblock(self, size: int, buffer: Buffer) -> Any:
        if size > _RECV_LIMIT:
            size = _RECV_LIMIT
        return self._receive_noblock(self.__read, (size, buffer))

    def __read(self, _sock: object, size: int, buffer: Buffer) -> Any:
        # The engine's receive call (``_sock``, the engine's target, is not
        # needed: the OpenSSL object is this transport's).
        try:
            with self.__openssl:
                result = self.__sslobj.read(size) if buffer is _NO_BUFFER else self.__sslobj.read(size, buffer)
        except _WANT:
            raise
        except SSLError as exc:
            return self.__read_failed(exc, buffer)
        if not result:
            self.__read_nothing(size, buffer)
        return result

    def __read_failed(self, exc: SSLError, buffer: Buffer) -> Any:
        """What a read that failed with ``exc`` returns: an end of stream, or ``exc`` raised."""
        if self.__end_of_stream(exc):
            return b"" if buffer is _NO_BUFFER else 0
        raise exc

    def __read_nothing(self, size: int, buffer: Buffer) -> None:
        # A read of at least one byte that gave none: a close_notify.
        if size > 0 if buffer is _NO_BUFFER else writable_nbytes(buffer):
            self.__peer_closed = True

    def _receive_noblock(self, call: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        # The engine's one try: OpenSSL's "want" errors as the engine's.
        try:
            return call(self._sock, *args)
        except SSLWantReadError:
            raise WouldBlockOnRead(self._sock.fileno()) from None
        except SSLWantWriteError:
            raise WouldBlockOnWrite(self._sock.fileno()) from None

    # ----------------------------------------------------------- sending

    def send_noblock(self, data: Buffer) -> int:
        """Encrypt and send ``data`` without blocking.

        OpenSSL takes all of ``data`` or raises: after ``WouldBlockOn*``,
        call again with the same object (OpenSSL may already have sent part
        of it), as with a non-blocking :class:`ssl.SSLSocket`.

        Raises:
            WouldBlockOnWrite: no room in the socket's send buffer.
            WouldBlockOnRead: OpenSSL must read first (renegotiation).
            ConnectionResetError: the peer closed the TLS connection, or reset
                the socket.
            ssl.SSLError: the TLS connection failed.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The number of bytes sent: ``len(data)`` in bytes.
        """
        return self.__guarded(self.__send_noblock, data)

    def __send_noblock(self, data: Buffer) -> int:
        if self.__peer_closed:
            raise peer_closed_error()
        unfinished = self.__unfinished
        if unfinished is not None and unfinished is not data:
            # A write given up earlier goes first (see the module documentation).
            self.__send_noblock(unfinished)
        sslsock = self.__sslsock
        try:
            with self.__openssl:
                sent = self.__sslobj.write(data)
        except SSLWantWriteError:
            self.__unfinished = data
            raise WouldBlockOnWrite(sslsock.fileno()) from None
        except SSLWantReadError:
            self.__unfinished = data
            raise WouldBlockOnRead(sslsock.fileno()) from None
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        self.__unfinished = None
        return sent

    def __before_send(self, timeout: float) -> float:
        """Refuse to write after the peer closed; finish an interrupted write.

        Returns what is left of ``timeout``.
        """
        if self.__peer_closed:
            raise peer_closed_error()
        unfinished = self.__unfinished
        if unfinished is None:
            return timeout
        return self._retry(partial(self.__send_noblock, unfinished), timeout)[1]

    def __finish_write(self, chunk: Buffer, want_write: bool, timeout: float) -> int:
        """Retry the write of ``chunk`` that OpenSSL has started, until it is done.

        Called after a first try raised a want error. If this gives up (a
        timeout), a copy of ``chunk`` is kept, for the next write or
        :meth:`close` to finish.
        """
        self.__unfinished = chunk
        try:
            return self._after_would_block(
                self._sock.fileno(), partial(self.__send_noblock, chunk), want_write, timeout
            )[0]
        except BaseException:
            if self.__unfinished is chunk:
                self.__unfinished = bytes(chunk)  # the caller gets its buffer back
            raise

    def send(self, data: Buffer, timeout: float) -> int:
        """Encrypt and send the first bytes of ``data``, at most 64 KiB.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``data`` is not a C-contiguous buffer.
            TimeoutError: none of ``data`` could be taken in time (an
                earlier interrupted write was still being finished).
            ConnectionResetError: the peer closed the TLS connection, or reset
                the socket.
            ssl.SSLError: the TLS connection failed.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The number of bytes of ``data`` taken. When the budget runs out
            once OpenSSL has begun to write them, the count is returned all
            the same (that data can no longer be taken back), and the rest of
            the write goes out first on the next send (or :meth:`close`).
        """
        return self.__guarded(self.__send, data, timeout)

    def __send(self, data: Buffer, timeout: float) -> int:
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        if self.__unfinished is not None or self.__peer_closed:
            timeout = self.__before_send(timeout)
        if type(data) in BYTE_TYPES and len(data) <= TLS_SEND_LIMIT:  # type: ignore[arg-type]
            chunk: Buffer = data
        else:
            chunk = byte_view(data)[:TLS_SEND_LIMIT]
        try:
            with self.__openssl:
                return self.__sslobj.write(chunk)
        except SSLWantWriteError:
            want_write = True
        except SSLWantReadError:
            want_write = False
        try:
            return self.__finish_write(chunk, want_write, timeout)
        except TimeoutError as exc:
            if self.__unfinished is None or exc.errno != errno.ETIMEDOUT:  # not the budget: a signal handler's
                raise
            # OpenSSL began this write: it is finished, with a copy of the
            # chunk, before anything else is written. A TimeoutError would
            # say "nothing taken", and a caller sending the chunk again (an
            # inner TLS layer, for one) would corrupt the stream.
            return memoryview(chunk).nbytes

    def send_all(self, data: Buffer, timeout: float) -> None:
        """Encrypt and send all of ``data`` within one budget of ``timeout`` seconds.

        The first write is tried at once; the clock is read only if it
        cannot finish. OpenSSL gets at most 1 MiB per write. The data is
        never copied before encryption.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``data`` is not a C-contiguous buffer.
            TimeoutError: the budget ran out before everything was sent; the
                write in progress is finished by the next send (or
                :meth:`close`), the TLS stream stays intact, but there is no
                telling how much of ``data`` the peer will get.
            ConnectionResetError: the peer closed the TLS connection, or reset
                the socket.
            ssl.SSLError: the TLS connection failed.
            OSError: ``EBADF`` once closed; any other socket error.
        """
        return self.__guarded(self.__send_all, data, timeout)

    def __send_all(self, data: Buffer, timeout: float) -> None:
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        if self.__unfinished is not None or self.__peer_closed:
            timeout = self.__before_send(timeout)
        if type(data) in BYTE_TYPES and len(data) <= _WRITE_CHUNK:  # type: ignore[arg-type]
            try:
                with self.__openssl:
                    sent = self.__sslobj.write(data)
            except SSLWantWriteError:
                want_write = True
            except SSLWantReadError:
                want_write = False
            else:
                if sent == len(data):  # type: ignore[arg-type]
                    return
                self.__send_rest(memoryview(data), sent, timeout)
                return
            deadline = deadline_after(timeout)
            sent = self.__finish_write(data, want_write, timeout)
            self.__send_rest(memoryview(data), sent, time_left(deadline))
            return
        self.__send_rest(byte_view(data), 0, timeout)

    def __send_rest(self, view: memoryview, sent: int, timeout: float) -> None:
        total = len(view)
        if sent >= total and total:
            return
        deadline = deadline_after(timeout)
        write = self.__sslobj.write
        while True:
            chunk = view[sent : sent + _WRITE_CHUNK]
            try:
                with self.__openssl:
                    count = write(chunk)
            except SSLWantWriteError:
                count = self.__finish_write(chunk, True, time_left(deadline))
            except SSLWantReadError:
                count = self.__finish_write(chunk, False, time_left(deadline))
            sent += count
            if sent >= total:
                return

    def send_all_from_iterable(self, iterable_of_data: Iterable[Buffer], timeout: float) -> None:
        """Join the chunks and send them with one :meth:`send_all`.

        Joining first makes full TLS records of many small chunks, instead
        of one record (and its overhead) per chunk. Empty chunks are fine.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: a chunk is not a C-contiguous buffer.
            TimeoutError: the budget ran out before everything was sent.
            ConnectionResetError: the peer closed the TLS connection, or reset
                the socket.
            ssl.SSLError: the TLS connection failed.
            OSError: ``EBADF`` once closed; any other socket error.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        self.send_all(b"".join(iterable_of_data), timeout)


def _opener(sslsock: ssl.SSLSocket) -> Callable[[], ssl.SSLSocket]:
    """``sslsock`` for the attribute getters, while it is open."""

    def open_socket() -> ssl.SSLSocket:
        if sslsock.fileno() < 0:
            raise TypedAttributeLookupError("The transport is closed")
        return sslsock

    return open_socket
