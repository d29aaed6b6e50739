"""TLS over any stream transport, driven through a pair of memory BIOs.

Why memory BIOs
===============

:meth:`ssl.SSLContext.wrap_socket` only wraps a real socket, because OpenSSL
then reads and writes the file descriptor itself. :meth:`ssl.SSLContext.wrap_bio`
cuts that link: the :class:`ssl.SSLObject` it returns reads ciphertext from
an *incoming* :class:`ssl.MemoryBIO` and writes ciphertext into an
*outgoing* one, and never performs any I/O of its own. Moving bytes between
those two buffers and the wrapped transport is our job, which is what lets
TLS run over anything with ``send`` and ``recv_into``: a stapled pair of
pipes, a socket transport, a user's own transport.

The want-read / want-write loop
===============================

Every TLS operation (handshake, read, write, closing handshake) runs in one
loop, ``__drive``:

1. call the :class:`~ssl.SSLObject` method;
2. whatever it did, send what it put in the outgoing BIO: handshake
   messages, records, alerts, the close_notify (how hard it tries depends on
   the direction, see "Receiving never waits for sending" below);
3. if it raised :exc:`ssl.SSLWantReadError`, OpenSSL needs ciphertext we do
   not have yet: read once from the wrapped transport, write the bytes into
   the incoming BIO (or mark the BIO's EOF when the transport reported EOF),
   and go back to 1;
4. otherwise return its result.

:exc:`ssl.SSLWantWriteError` cannot happen, since a memory BIO grows without
bound; were it raised anyway, step 2 already did what it asks for and the
operation is simply retried. Neither "want" exception ever reaches the
caller. Any other :exc:`ssl.SSLError` is final: OpenSSL may have queued an
alert telling the peer why, so that alert is sent on a best-effort basis
(one attempt that does not block), and the error is raised.

One budget per call
===================

A single ``recv`` may read the wrapped transport several times (a record
arriving in pieces), a handshake does a dozen reads and writes, ``send_all``
one write per group of records. The ``timeout`` of the public method is one
budget for all of them: the method turns it into a deadline once
(:func:`~transports.abc.deadline_after`) and each step of the loop gets only
what is left (:func:`~transports.abc.time_left`). When it runs out, the step
in progress is tried once more without blocking and then raises
:exc:`TimeoutError`, so a peer that dribbles one byte at a time cannot
stretch a 1-second ``recv`` into a minute. Waiting for the locks described
below is charged to the same budget.

Data is never lost
==================

- Ciphertext read from the wrapped transport is written into the incoming
  BIO in full, at once; the BIO keeps whatever OpenSSL has not consumed yet
  for the next operation.
- Ciphertext taken out of the outgoing BIO is sent with the wrapped
  transport's ``send`` (never ``send_all``, whose failures do not say how
  much was sent), advancing through it by the counts ``send`` returns. If
  the budget runs out (or the transport fails) half-way through, the unsent
  tail is kept and the next operation that sends sends it first, so the
  peer never sees a torn record followed by the start of another one. A
  ``send`` or ``send_all`` returns only once the records of its data have
  all been handed to the wrapped transport.
- Plaintext that OpenSSL returned is returned to the caller, always: once
  :meth:`ssl.SSLObject.read` returned some, nothing that follows in the
  same call may raise (see below), not even a close() from another thread.
  OpenSSL does not give plaintext twice, so an error raised at that point
  would lose it.

Receiving never waits for sending
=================================

An earlier ``send`` that ran out of time leaves an unsent tail, and a peer
that does not read keeps it unsent for as long as it likes. A receive must
not depend on that: the peer may well be sending us data while it does not
read ours. So without the send lock, step 2 of the loop is one attempt that
does not block, whose errors (a timeout, a broken pipe, a closed
descriptor) are swallowed: the records stay queued for the next operation
that sends, which reports a lasting failure itself. A ``recv`` returns the
data that is there, promptly, even with an infinite timeout and a stuck
send direction.

There is one exception, where the receive must send to make progress:
OpenSSL wrote records while reading (a TLS 1.2 renegotiation message, a
TLS 1.3 key update or post-handshake authentication answer) and then asks
for more ciphertext, which the peer may send only once it has those
records. Such records are *owed*, and before reading the wrapped transport
the receive sends them (the unsent tail first, for the order), within its
own budget. No plaintext is at stake then: OpenSSL returned none, so a
failure loses nothing. The handshake in the constructor always sends what
it must, and so does a sender: its records are its data.

Threads
=======

One thread may receive while another one sends, as with a socket. Three
locks make that safe without ever holding a lock across two blocking steps
in opposite directions, so that they cannot deadlock:

- the *state* lock guards the :class:`~ssl.SSLObject` and both BIOs; it is
  held only while OpenSSL runs, never during I/O;
- the *send* lock is held by whoever sends on the wrapped transport (the
  order of ciphertext is the order of the outgoing BIO);
- the *receive* lock is held by whoever reads from it.

``send`` takes the send lock, ``recv`` the receive lock. A receiver that
finds ciphertext to send (a TLS 1.3 key update answer, an alert) never
waits for the send lock: when a sender holds it, that sender sends the
receiver's records too, because a sender looks at the outgoing BIO once
more after releasing the lock. A sender that needs incoming ciphertext in
mid-write (a TLS 1.2 renegotiation started by the peer) reads it itself if
no receiver is active, and otherwise waits on a condition the receiver
signals after each read, and whenever it leaves records for the sender to
send; every 0.1 s it checks whether the receiver has left, to read in its
place. Blocking waits for a lock are bounded by the budget of the call.
:meth:`~TLSStreamTransport.close` waits for no lock at all (see "Closing from
another thread").

Closing
=======

With ``standard_compatible=True`` (the default), :meth:`~TLSStreamTransport.close`
performs the closing handshake: it sends a close_notify alert and waits for
the peer's, at most ``shutdown_timeout`` seconds. The wait is bounded
because many TLS 1.3 peers never answer, and it ends early when the wrapped
transport reports EOF or the peer sends something else. Application data
that arrived but was not read yet (the rest of a record a ``recv`` read in
part, records a receiving thread took in) makes OpenSSL fail the handshake
at once, since it will not read past it; the close_notify it queued is sent
all the same, so the peer still sees a clean close. Every error during
that handshake is swallowed: the peer may already be gone, and closing must
not fail because of it. The wrapped transport is closed in every case.

Conversely, a peer that closes its side of the wrapped transport without a
close_notify (a "ragged EOF", which a truncation attack looks like) makes
``recv`` raise :exc:`ssl.SSLEOFError`. Beware that a context with
:data:`ssl.OP_IGNORE_UNEXPECTED_EOF` asks OpenSSL to report a ragged EOF as
a clean close.

With ``standard_compatible=False``, ``close`` sends nothing and a ragged
EOF reads as ``b""``, as many HTTP-era peers expect.

A received close_notify reads as ``b""`` from then on, and ``send`` raises
:exc:`ConnectionResetError`: the peer closed the TLS connection.

Closing from another thread
===========================

``close`` never waits for another thread. If one is receiving, the wait
for the peer's close_notify is skipped. If one is sending, possibly for
ever (``timeout=math.inf`` towards a peer that does not read), no
close_notify could go out before its records: the closing handshake is
skipped, and closing the wrapped transport makes that send fail.

Either way the other thread's call ends with ``OSError(EBADF)``, as a call
of any other transport of the project does when another thread closes it.
What the close did to it varies: the closed wrapped transport fails (or,
shut down, reports an EOF the peer never sent), or OpenSSL, which has
queued our close_notify, refuses the application data that keeps coming
and fails the connection. Left as they are, those would read as a broken
peer: an :exc:`ssl.SSLEOFError` that looks like a truncation attack, a
``b""`` for a stream the peer did not end. So every step of a call runs in
``__drive``, and there an :exc:`OSError` raised once the transport is
closed becomes EBADF, whatever it was. Plaintext OpenSSL had already
returned is still returned (a ``recv`` that got data just before the close
returns it, and the next call raises EBADF): see "Data is never lost".

Why no ``send_eof``
===================

OpenSSL itself would allow a half-close: :meth:`ssl.SSLObject.unwrap` sends
a close_notify, and with memory BIOs the object can still read what the
peer sends afterwards. It is still refused (:exc:`~transports.abc.UnsupportedOperation`)
because it cannot be made to work reliably at the protocol level: TLS 1.2
(RFC 5246, 7.2.1) makes the receiver of a close_notify answer with its own
and stop writing, only TLS 1.3 allows writing on, and the version is
negotiated by the peer; and this project's own TLS transports treat a
received close_notify as the end of the connection (``send`` then raises
:exc:`ConnectionResetError`), so a half-closed peer of the same family
could not answer anyway. A half-close that works only towards some peers
is worse than a clear refusal.

Failure modes this module defends against
=========================================

- a silent or slow peer during the handshake, a receive, a send or the
  closing handshake: one budget per call, default 60 s for the handshake
  and 30 s for the closing handshake;
- a TLS 1.3 peer that never answers a close_notify: the bounded wait;
- a peer that vanishes: the wrapped transport's error ends the operation,
  and ``close`` swallows it and still closes the wrapped transport;
- a peer that speaks something else than TLS: OpenSSL's error is raised,
  never turned into a wait for more data;
- an EOF that OpenSSL asks to read past: reported as
  :exc:`ssl.SSLEOFError` instead of reading the ended transport forever;
- a certificate or hostname mismatch, or any other handshake failure: the
  wrapped transport is closed before the constructor raises, so no
  descriptor leaks;
- a timeout in the middle of a record: the unsent tail is kept, the TLS
  stream stays intact;
- a peer that sends but does not read: receiving goes on, neither delayed
  nor failed by the unsent tail, and no decrypted byte is lost;
- a ``close`` from another thread while a send is stuck: it returns
  without waiting for that send, which fails once the wrapped transport
  is closed;
- a ``close`` from another thread while a receive or a send runs: that
  call raises ``OSError(EBADF)``, never a TLS error or a false EOF;
- unread application data when ``close`` runs: the close_notify still
  goes out;
- a wrapped transport returning impossible counts: :exc:`RuntimeError`.
"""

from __future__ import annotations

__all__ = ["TLSStreamTransport"]

import errno
import math
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Generic, TypeVar, cast, final

from typing_extensions import Buffer

from transports.abc import (
    BaseTransport,
    StreamTransport,
    TypedAttributeLookupError,
    UnsupportedOperation,
    deadline_after,
    time_left,
    timeout_error,
)
from transports.abc._family import (
    TLS_SEND_LIMIT,
    closed_error,
    peer_closed_error,
    refuse_subclasses,
    tls_attributes,
    tls_options,
)

_T = TypeVar("_T")
_T_Transport = TypeVar("_T_Transport", bound=StreamTransport)

# The plaintext send_all() and send_all_from_iterable() encrypt between two
# flushes: sixteen full records, sent to the wrapped transport at once.
_SEND_GROUP: Final = 256 * 1024
# The most ciphertext read from the wrapped transport at once.
_RECV_CHUNK: Final = 256 * 1024
# How often a sender waiting for a receiving thread's reads checks whether
# that thread is gone (then it reads itself).
_RECEIVER_POLL_INTERVAL: Final = 0.1
_CLOSED_DURING_CALL: Final = "The TLS transport was closed during the call"


def _write_nothing() -> None:
    """The OpenSSL operation of a step that only sends what is already queued."""


def _acquire(lock: threading.Lock, deadline: float) -> None:
    """Take ``lock``, waiting at most until ``deadline``.

    Raises:
        TimeoutError: the lock could not be had in time.
    """
    if lock.acquire(blocking=False):
        return
    timeout = time_left(deadline)
    if timeout == math.inf:
        lock.acquire()
        return
    if timeout > 0.0 and lock.acquire(timeout=min(timeout, threading.TIMEOUT_MAX)):
        return
    raise timeout_error("Another thread is using the TLS transport")


@final
@refuse_subclasses
class TLSStreamTransport(StreamTransport, Generic[_T_Transport]):
    """A TLS connection running over any :class:`~transports.abc.StreamTransport`.

    The TLS protocol runs in memory (:meth:`ssl.SSLContext.wrap_bio`); the
    wrapped transport only carries the ciphertext. So TLS works over a
    stapled pair of pipes, a socket transport, or a transport of your own.
    The handshake runs in the constructor.

    The transport owns the wrapped one: :meth:`close` closes it, and so does
    every failure of the constructor (whatever it is). One thread may
    receive while another one sends.

    Parameters:
        transport: the stream transport to run TLS over.
        ssl_context: the :class:`ssl.SSLContext` of the connection.
        handshake_timeout: seconds the handshake may take, in total;
            60 s when :data:`None`.
        shutdown_timeout: seconds :meth:`close` waits for the closing
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
            handshake is done and such an EOF reads as ``b""``.
        session: a :class:`ssl.SSLSession` of an earlier connection to
            resume (client side).

    Raises:
        TypeError: ``transport`` is not a
            :class:`~transports.abc.StreamTransport`, or ``ssl_context`` is
            not an :class:`ssl.SSLContext`.
        ValueError: a timeout is negative or NaN; ``server_hostname`` was
            given for a server; a client has no ``server_hostname`` while
            ``ssl_context.check_hostname`` is set; or ``session`` cannot be
            used (server side, or from another context).
        TimeoutError: the handshake did not finish within ``handshake_timeout``.
        ssl.SSLCertVerificationError: the peer's certificate was refused
            (untrusted, expired, wrong host name).
        ssl.SSLEOFError: the peer ended the connection during the handshake.
        ssl.SSLError: any other handshake failure, such as a peer that does
            not speak TLS, or an alert from the peer.
        OSError: the wrapped transport failed (for instance
            :exc:`ConnectionResetError`).
    """

    __slots__ = (
        "__closed",
        "__eof",
        "__feeds",
        "__incoming",
        "__outgoing",
        "__owed",
        "__peer_closed",
        "__recv_buffer",
        "__recv_lock",
        "__send_lock",
        "__shutdown_timeout",
        "__ssl_object",
        "__standard_compatible",
        "__state",
        "__transport",
        "__transport_eof",
        "__unsent",
    )

    __transport: _T_Transport
    __ssl_object: ssl.SSLObject
    __incoming: ssl.MemoryBIO
    __outgoing: ssl.MemoryBIO
    __state: threading.Condition
    __send_lock: threading.Lock
    __recv_lock: threading.Lock
    __recv_buffer: memoryview
    __unsent: memoryview
    __feeds: int
    __closed: bool
    __eof: bool
    __transport_eof: bool
    __peer_closed: bool
    __owed: bool
    __standard_compatible: bool
    __shutdown_timeout: float

    def __init__(
        self,
        transport: _T_Transport,
        ssl_context: ssl.SSLContext,
        *,
        handshake_timeout: float | None = None,
        shutdown_timeout: float | None = None,
        server_side: bool | None = None,
        server_hostname: str | None = None,
        standard_compatible: bool = True,
        session: ssl.SSLSession | None = None,
    ) -> None:
        self.__transport = transport
        self.__closed = True  # until the handshake starts, and again if anything fails
        try:
            if not isinstance(transport, StreamTransport):
                raise TypeError(f"Expected a StreamTransport, got {type(transport).__qualname__}")
            handshake_timeout, self.__shutdown_timeout, server_side = tls_options(
                ssl_context, handshake_timeout, shutdown_timeout, server_side, server_hostname
            )
            self.__standard_compatible = bool(standard_compatible)
            self.__eof = False
            self.__transport_eof = False
            self.__peer_closed = False
            self.__owed = False
            self.__feeds = 0
            self.__unsent = memoryview(b"")
            self.__recv_buffer = memoryview(bytearray(_RECV_CHUNK))
            self.__state = threading.Condition(threading.Lock())
            self.__send_lock = threading.Lock()
            self.__recv_lock = threading.Lock()
            self.__incoming = ssl.MemoryBIO()
            self.__outgoing = ssl.MemoryBIO()
            self.__ssl_object = ssl_context.wrap_bio(
                self.__incoming,
                self.__outgoing,
                server_side=server_side,
                server_hostname=server_hostname,
                session=session,
            )
            # Open while the handshake runs: its failures are its own, and
            # __drive turns those of a closed transport into EBADF.
            self.__closed = False
            self.__handshake(deadline_after(handshake_timeout))
        except BaseException:
            self.__closed = True
            if isinstance(transport, BaseTransport):
                try:
                    transport.close()
                except Exception:
                    pass  # the reason the constructor failed matters more
            raise

    def __handshake(self, deadline: float) -> None:
        try:
            # Nobody else can see the object yet: this thread owns both directions.
            self.__drive(self.__ssl_object.do_handshake, deadline, sender=True, receiver=True)
        except TimeoutError as exc:
            raise timeout_error("The TLS handshake did not finish in time") from exc
        except (ssl.SSLZeroReturnError, ssl.SSLSyscallError) as exc:
            # What OpenSSL reports for an EOF depends on the context's options
            # (OP_IGNORE_UNEXPECTED_EOF gives a "clean" close); during a
            # handshake any EOF is a failure, reported in one way.
            if self.__transport_eof:
                raise ssl.SSLEOFError(
                    ssl.SSL_ERROR_EOF, "The peer closed the connection during the TLS handshake"
                ) from exc
            raise

    def __repr__(self) -> str:
        state = "closed" if self.__closed else "open"
        return f"<{type(self).__name__} ({state}) transport={self.__transport!r}>"

    # -------------------------------------------------------- properties

    @property
    def wrapped_transport(self) -> _T_Transport:
        """The transport carrying the ciphertext (read-only).

        Reading or writing it directly corrupts the TLS stream.
        """
        return self.__transport

    @property
    def session(self) -> ssl.SSLSession | None:
        """The TLS session, to resume in a later connection (``session=``).

        Still available after :meth:`close`. With TLS 1.3 the server sends
        the session tickets after the handshake, so a client has a resumable
        session only once it has received some data.
        """
        return self.__ssl_object.session

    @property
    def session_reused(self) -> bool:
        """Whether the handshake resumed an earlier session."""
        return self.__ssl_object.session_reused

    # ----------------------------------------------------------- closing

    def close(self) -> None:
        """Close the TLS connection, then the wrapped transport.

        With ``standard_compatible=True``, first send a close_notify and wait
        for the peer's, in all at most ``shutdown_timeout`` seconds; every
        error of that closing handshake (a peer that is gone, a timeout, a
        TLS error) is swallowed. Other threads are never waited for: if one
        is receiving, the wait for the peer's close_notify is skipped; if
        one is sending (perhaps stuck on a peer that does not read), the
        whole closing handshake is skipped. Such a call of another thread
        ends with ``OSError(EBADF)`` (as soon as the wrapped transport
        notices it was closed, or OpenSSL refuses to go on), never with a
        TLS error or an EOF; data it had already received is returned. The
        wrapped transport is closed in every case. Idempotent.

        Raises:
            Exception: whatever the wrapped transport's ``close()`` raises.
        """
        with self.__state:
            if self.__closed:
                return
            self.__closed = True
        try:
            if self.__standard_compatible:
                try:
                    self.__closing_handshake(deadline_after(self.__shutdown_timeout))
                except OSError:  # ssl.SSLError and TimeoutError included
                    pass
        finally:
            self.__transport.close()

    def __closing_handshake(self, deadline: float) -> None:
        if not self.__send_lock.acquire(blocking=False):
            # A sender is busy, maybe for ever (send(timeout=math.inf) to a
            # peer that does not read): a close_notify could only follow its
            # records, so none is sent, and closing the wrapped transport
            # ends that send.
            return
        try:
            self.__flush_owned(deadline)  # the tail of an interrupted send goes first
            with self.__state:
                try:
                    self.__ssl_object.unwrap()
                except ssl.SSLWantReadError:
                    wait = True
                except ssl.SSLError:
                    # Application data not read yet (taken in by a receiving
                    # thread, or the rest of a record a recv() read in part)
                    # follows our close_notify: OpenSSL refuses to read past
                    # it and the connection is dead, but the close_notify is
                    # queued all the same, and the peer should get it.
                    wait = False
                else:
                    wait = False  # the peer's close_notify had already arrived
            self.__flush_owned(deadline)
        finally:
            self.__send_lock.release()
        if not wait or self.__transport_eof:
            return  # answered already, or it never will be
        if not self.__recv_lock.acquire(blocking=False):
            return  # a receiving thread will see the peer's answer
        try:
            self.__drive(self.__ssl_object.unwrap, deadline, sender=False, receiver=True)
        finally:
            self.__recv_lock.release()

    def is_closed(self) -> bool:
        """Return :data:`True` once :meth:`close` has been called."""
        return self.__closed

    def send_eof(self) -> None:
        """Refuse to half-close: TLS half-close is not supported.

        A close_notify is a full close for TLS 1.2 peers (RFC 5246) and for
        this project's TLS transports; see the module documentation. Does
        nothing when the transport is closed.

        Raises:
            UnsupportedOperation: always, unless the transport is closed.
        """
        if self.__closed:
            return
        raise UnsupportedOperation("TLS half-close (send_eof) is not supported; close the transport instead")

    # ---------------------------------------------------------- receiving

    def recv(self, bufsize: int, timeout: float) -> bytes:
        """Read and return up to ``bufsize`` bytes of plaintext.

        Returns at most one TLS record's worth (16 KiB), without copying it
        again after OpenSSL decrypted it. Records left unsent by an earlier
        :meth:`send` that ran out of time neither delay nor fail it, unless
        OpenSSL needs records of its own to reach the peer before it can
        read on (a renegotiation).

        Parameters:
            bufsize: the most bytes to return; ``0`` returns ``b""`` at once.
            timeout: seconds for the whole call, however many reads of the
                wrapped transport it takes.

        Raises:
            ValueError: ``bufsize`` is negative, or ``timeout`` is negative or NaN.
            TimeoutError: no complete record arrived in time.
            ssl.SSLEOFError: the peer ended the connection without a
                close_notify and ``standard_compatible`` is :data:`True`.
            ssl.SSLError: the TLS connection failed (a corrupt record, an
                alert from the peer).
            OSError: the wrapped transport failed, or the transport is
                closed, before or during the call (:data:`errno.EBADF`).

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF: a
            close_notify, or with ``standard_compatible=False`` any EOF.
        """
        if bufsize < 0:
            raise ValueError("bufsize must not be negative")
        deadline = deadline_after(timeout)
        self.__check_open()
        if bufsize == 0:
            return b""
        _acquire(self.__recv_lock, deadline)
        try:
            self.__check_open()  # closed by another thread while we waited?
            if self.__eof:
                return b""
            ssl_object = self.__ssl_object
            data = self.__read(lambda: ssl_object.read(bufsize), deadline)
        finally:
            self.__recv_lock.release()
        return b"" if data is None else data

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        """Read plaintext into ``buffer``.

        Waits for the first record, then also takes whatever more is already
        decrypted or received, without blocking, until ``buffer`` is full.

        Parameters:
            buffer: a writable, C-contiguous buffer.
            timeout: seconds for the whole call, however many reads of the
                wrapped transport it takes.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``buffer`` is not a writable C-contiguous buffer.
            TimeoutError: no complete record arrived in time.
            ssl.SSLEOFError: the peer ended the connection without a
                close_notify and ``standard_compatible`` is :data:`True`.
            ssl.SSLError: the TLS connection failed.
            OSError: the wrapped transport failed, or the transport is
                closed, before or during the call (:data:`errno.EBADF`).

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means
            EOF (see :meth:`recv`).
        """
        deadline = deadline_after(timeout)
        with memoryview(buffer) as raw, raw.cast("B") as view:
            self.__check_open()
            size = len(view)
            if size == 0:
                return 0
            _acquire(self.__recv_lock, deadline)
            try:
                self.__check_open()
                if self.__eof:
                    return 0
                return self.__read_into(view, size, deadline)
            finally:
                self.__recv_lock.release()

    def __read_into(self, view: memoryview, size: int, deadline: float) -> int:
        ssl_object = self.__ssl_object
        # typeshed says read() returns bytes; given a buffer, it returns a count.
        count = self.__read(lambda: cast(int, ssl_object.read(size, view)), deadline)
        if count is None:
            return 0
        state = self.__state
        while count < size:
            with state:
                try:
                    more = cast(int, ssl_object.read(size - count, view[count:]))
                except ssl.SSLError:
                    # Nothing more for now (want-read), or an EOF or failure
                    # that the next call reports: these bytes are delivered first.
                    break
                finally:
                    if self.__outgoing.pending:
                        self.__owed = True  # sent by the next operation
            if more == 0:
                break
            count += more
        return count

    def __read(self, operation: Callable[[], _T], deadline: float) -> _T | None:
        """Run a read; :data:`None` means EOF (now remembered)."""
        try:
            result = self.__drive(operation, deadline, sender=False, receiver=True)
        except ssl.SSLZeroReturnError:
            clean = True
        except ssl.SSLEOFError:
            if self.__standard_compatible:
                raise
            clean = False
        else:
            if result:
                return result
            clean = True  # OpenSSL reads a close_notify as zero bytes
        self.__eof = True
        if clean:
            self.__peer_closed = True
        return None

    # ------------------------------------------------------------ sending

    def send(self, data: Buffer, timeout: float) -> int:
        """Encrypt and send the first bytes of ``data``, at most 64 KiB.

        Those bytes become TLS records that are all handed to the wrapped
        transport before this returns. Empty data only sends what an
        earlier interrupted call left unsent.

        Parameters:
            data: a C-contiguous buffer.
            timeout: seconds for the whole call.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``data`` is not a C-contiguous buffer.
            TimeoutError: the budget ran out before any of ``data`` was
                taken (while an earlier call's records were still being
                sent, or the wrapped transport took nothing).
            ConnectionResetError: the peer sent a close_notify.
            ssl.SSLError: the TLS connection failed.
            OSError: the wrapped transport failed, or the transport is
                closed, before or during the call (:data:`errno.EBADF`).

        Returns:
            The number of bytes of ``data`` taken. They are encrypted and
            handed to the wrapped transport before this returns, except
            when the budget runs out part-way through their records: the
            rest of those records then goes out first on the next call that
            sends (or :meth:`close`), and the count is returned all the
            same, since that data can no longer be taken back.
        """
        deadline = deadline_after(timeout)
        with memoryview(data) as raw, raw.cast("B") as view:
            self.__check_writable()
            _acquire(self.__send_lock, deadline)
            try:
                self.__check_writable()
                self.__send_tail(deadline)
                chunk = view[:TLS_SEND_LIMIT]
                sent = self.__write_some(chunk, deadline) if chunk else 0
            finally:
                self.__send_lock.release()
        self.__after_send(deadline)
        return sent

    def send_all(self, data: Buffer, timeout: float) -> None:
        """Encrypt and send all of ``data``.

        Encrypts up to 256 KiB (sixteen full records) at a time and sends
        them together, with one budget for the whole call. The data is not
        copied before encryption.

        Parameters:
            data: a C-contiguous buffer; items larger than a byte are sent
                as their bytes.
            timeout: seconds for the whole call.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``data`` is not a C-contiguous buffer.
            TimeoutError: the budget ran out; there is no telling how much
                was sent, but the TLS stream stays intact (see :meth:`send`).
            ConnectionResetError: the peer sent a close_notify.
            ssl.SSLError: the TLS connection failed.
            OSError: the wrapped transport failed, or the transport is
                closed, before or during the call (:data:`errno.EBADF`).
        """
        deadline = deadline_after(timeout)
        with memoryview(data) as raw, raw.cast("B") as view:
            self.__check_writable()
            _acquire(self.__send_lock, deadline)
            try:
                self.__check_writable()
                self.__send_tail(deadline)
                for start in range(0, len(view), _SEND_GROUP):
                    self.__check_writable()
                    self.__write_all(view[start : start + _SEND_GROUP], deadline)
            finally:
                self.__send_lock.release()
        self.__after_send(deadline)

    def send_all_from_iterable(self, iterable_of_data: Iterable[Buffer], timeout: float) -> None:
        """Encrypt and send every chunk, in order, in as few records as possible.

        Small chunks are joined (up to 256 KiB at a time) before they are
        encrypted, so many small writes do not become many small records;
        large chunks are encrypted in place. The iterable is consumed as it
        is sent. Empty chunks are allowed anywhere.

        Parameters:
            iterable_of_data: the chunks, each a C-contiguous buffer.
            timeout: seconds for the whole call.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: a chunk is not a C-contiguous buffer.
            TimeoutError: the budget ran out; there is no telling how much
                was sent, but the TLS stream stays intact (see :meth:`send`).
            ConnectionResetError: the peer sent a close_notify.
            ssl.SSLError: the TLS connection failed.
            OSError: the wrapped transport failed, or the transport is
                closed, before or during the call (:data:`errno.EBADF`).
        """
        deadline = deadline_after(timeout)
        self.__check_writable()
        _acquire(self.__send_lock, deadline)
        try:
            self.__check_writable()
            self.__send_tail(deadline)
            group = bytearray()
            for chunk in iterable_of_data:
                with memoryview(chunk) as raw, raw.cast("B") as view:
                    while view:
                        if not group and len(view) >= _SEND_GROUP:
                            self.__write_all(view[:_SEND_GROUP], deadline)
                            view = view[_SEND_GROUP:]
                            continue
                        room = _SEND_GROUP - len(group)
                        group += view[:room]
                        view = view[room:]
                        if len(group) == _SEND_GROUP:
                            self.__write_all(group, deadline)
                            group.clear()
                self.__check_writable()
            if group:
                self.__write_all(group, deadline)
        finally:
            self.__send_lock.release()
        self.__after_send(deadline)

    def __check_open(self) -> None:
        if self.__closed:
            raise closed_error("The TLS transport is closed")

    def __check_writable(self) -> None:
        if self.__closed:
            raise closed_error("The TLS transport is closed")
        if self.__peer_closed:
            raise peer_closed_error()

    def __write_all(self, data: memoryview | bytearray, deadline: float) -> int:
        """Encrypt all of ``data`` and send the records; the send lock is held."""
        total = len(data)
        written = self.__encrypt(data, deadline)
        if written != total:
            # Without SSL_MODE_ENABLE_PARTIAL_WRITE (CPython does not set it)
            # OpenSSL takes everything at once; this is only a guard.
            with memoryview(data) as view:
                while 0 < written < total:
                    written += self.__encrypt(view[written:], deadline)
            if written != total:
                raise RuntimeError(f"SSLObject.write() took {written} of {total} bytes")
        return total

    def __write_some(self, data: memoryview, deadline: float) -> int:
        """Encrypt ``data`` and send the records; the count taken, even if the budget ends mid-records.

        A TimeoutError would tell the caller that nothing was taken, and a
        caller that sends the same bytes again (an inner TLS layer, for
        one) would then corrupt the stream: once OpenSSL has taken the
        plaintext, the count is returned and the rest of its records goes
        out first on the next call that sends. The send lock is held.
        """
        ssl_object = self.__ssl_object
        taken = 0

        def write() -> int:
            nonlocal taken
            taken = ssl_object.write(data)
            return taken

        try:
            return self.__drive(write, deadline, sender=True, receiver=False)
        except TimeoutError as exc:
            if not taken or self.__closed or exc.errno != errno.ETIMEDOUT:  # not the budget: a signal handler's
                raise
            return taken

    def __send_tail(self, deadline: float) -> None:
        """Send what an interrupted send left queued, before new plaintext is taken; the send lock is held.

        Driven like any other step of a call (with an operation that writes
        nothing), so that a close() from another thread ends it as it ends
        the others; skipped, with its lock and loop, in the usual case of
        nothing left (records a receiving thread queues meanwhile go out
        with the next write's flush).
        """
        if self.__unsent or self.__outgoing.pending:
            self.__drive(_write_nothing, deadline, sender=True, receiver=False)

    def __encrypt(self, data: memoryview | bytearray, deadline: float) -> int:
        ssl_object = self.__ssl_object
        return self.__drive(lambda: ssl_object.write(data), deadline, sender=True, receiver=False)

    def __after_send(self, deadline: float) -> None:
        """Send what a receiver queued while this sender held the send lock.

        The caller's data is already sent, so a failure here is not its
        failure: the records stay queued for the next operation.
        """
        try:
            self.__flush_shared(deadline)
        except OSError:
            pass

    # -------------------------------------------------------- the engine

    def __drive(self, operation: Callable[[], _T], deadline: float, *, sender: bool, receiver: bool) -> _T:
        """Run ``operation`` until OpenSSL stops asking for more ciphertext.

        ``sender`` / ``receiver`` tell whether the calling thread holds the
        send / receive lock (both are true during the handshake, when no
        other thread can see the object).

        Without the send lock (a read, the closing handshake's wait), the
        outgoing direction is never waited for, nor allowed to fail the
        call, unless the records OpenSSL wrote while reading are owed to
        the peer and OpenSSL now waits for its answer: see "Receiving never
        waits for sending" in the module documentation.

        Every step of a ``recv*`` or ``send*`` call runs in here, so this is
        where a call ended by :meth:`close` becomes ``OSError(EBADF)``: an
        :exc:`OSError` (:exc:`ssl.SSLError` and :exc:`TimeoutError`
        included) raised once the transport is closed, or an empty read
        (an end of stream) returned then. Plaintext OpenSSL returned is
        returned, closed or not. The closing handshake's own wait ends in
        EBADF too, which :meth:`close` swallows like its other errors.
        """
        state = self.__state
        try:
            while True:
                try:
                    with state:
                        feeds = self.__feeds
                        try:
                            result = operation()
                        finally:
                            if not sender and self.__outgoing.pending:
                                self.__owed = True
                except ssl.SSLWantReadError:
                    want_read = True
                except ssl.SSLWantWriteError:
                    want_read = False  # a memory BIO is never full; flush and retry
                except ssl.SSLError:
                    self.__try_flush(sender)  # the alert OpenSSL queued, if any
                    raise
                else:
                    if sender:
                        self.__flush_owned(deadline)
                    else:
                        # OpenSSL handed over the plaintext: it is the caller's
                        # now, and nothing the send direction does may lose it.
                        self.__try_flush(sender)
                    if result or sender or not self.__closed:
                        return result
                    # Nothing read, once close() was called: an end of stream
                    # the close made (a wrapped transport reporting its own
                    # shutdown as EOF, which OpenSSL takes for a close_notify
                    # under OP_IGNORE_UNEXPECTED_EOF), not one the peer sent.
                    break
                if sender:
                    self.__flush_owned(deadline)
                elif self.__owed or not want_read:
                    self.__flush_shared(deadline)  # no plaintext at stake yet
                else:
                    self.__try_flush(sender)
                if want_read:
                    if receiver:
                        self.__fill_owned(deadline)
                    else:
                        self.__fill_shared(deadline, feeds)
        except OSError as exc:
            if self.__closed:
                # close() was called while this call ran. Whatever that made
                # of the step in progress (the wrapped transport failing or
                # reporting an EOF, OpenSSL refusing to go on after the
                # close_notify close() queued, a wait running out), the call
                # ended because the transport was closed.
                raise closed_error(_CLOSED_DURING_CALL) from exc
            raise
        raise closed_error(_CLOSED_DURING_CALL)

    def __try_flush(self, sender: bool) -> None:
        """Best effort: one attempt to send queued records that does not block.

        Every error is swallowed: the records stay queued for the next
        operation that sends, which reports a lasting failure itself.
        """
        try:
            if sender:
                self.__flush_owned(deadline_after(0.0))
            else:
                self.__flush_shared(deadline_after(0.0))
        except Exception:
            pass

    def __flush_owned(self, deadline: float) -> None:
        """Send all queued ciphertext; the caller holds the send lock."""
        pending = self.__unsent
        send = self.__transport.send
        while True:
            if not pending:
                with self.__state:
                    if not self.__outgoing.pending:
                        self.__unsent = pending
                        self.__owed = False
                        return
                    pending = memoryview(self.__outgoing.read())
            try:
                sent = send(pending, time_left(deadline))
            except BaseException:
                self.__unsent = pending
                raise
            if not 0 <= sent <= len(pending):
                self.__unsent = pending
                raise RuntimeError(f"send() of the wrapped transport returned {sent} for {len(pending)} bytes")
            if sent == 0 and time_left(deadline) == 0.0:
                # A transport that reports "nothing sent" instead of raising:
                # do not spin on it once the budget is spent.
                self.__unsent = pending
                raise timeout_error("The wrapped transport took no data in time")
            pending = pending[sent:]

    def __has_unsent(self) -> bool:
        with self.__state:
            return bool(self.__unsent) or self.__outgoing.pending > 0

    def __flush_shared(self, deadline: float) -> None:
        """Send queued ciphertext unless a sender holds the send lock.

        That sender sends it: a sender looks at the outgoing BIO again
        after releasing the lock (:meth:`__after_send`).
        """
        while self.__has_unsent():
            if not self.__send_lock.acquire(blocking=False):
                with self.__state:
                    # A sender waiting in __fill_shared() for our progress
                    # wakes up and sends these records.
                    self.__state.notify_all()
                return
            try:
                self.__flush_owned(deadline)
            finally:
                self.__send_lock.release()

    def __fill_owned(self, deadline: float) -> None:
        """Read ciphertext once into the incoming BIO; the caller holds the receive lock."""
        if self.__transport_eof:
            # OpenSSL wants more after the EOF it was told of: never read an
            # ended transport in a loop, report the EOF.
            raise ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "EOF occurred in violation of protocol")
        buffer = self.__recv_buffer
        count = self.__transport.recv_into(buffer, time_left(deadline))
        if not 0 <= count <= len(buffer):
            raise RuntimeError(f"recv_into() of the wrapped transport returned {count} for {len(buffer)} bytes")
        with self.__state:
            if count:
                self.__incoming.write(buffer[:count])
            else:
                self.__transport_eof = True
                self.__incoming.write_eof()
            self.__feeds += 1
            self.__state.notify_all()

    def __fill_shared(self, deadline: float, feeds: int) -> None:
        """Get more ciphertext for a sender: read it, or wait for the receiver to.

        Returning without progress is fine: the operation is retried and
        comes back here, which tries the receive lock again (the receiver
        may have left in the meantime).
        """
        if self.__recv_lock.acquire(blocking=False):
            try:
                self.__fill_owned(deadline)
            finally:
                self.__recv_lock.release()
            return
        state = self.__state
        with state:
            progress = state.wait_for(
                lambda: self.__feeds != feeds or self.__outgoing.pending > 0,
                min(time_left(deadline), _RECEIVER_POLL_INTERVAL),
            )
        if not progress and time_left(deadline) == 0.0:
            raise timeout_error("No data from the peer in time")

    # ---------------------------------------------------- typed attributes

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The wrapped transport's attributes and the :class:`~transports.abc.TLSAttribute` ones.

        The TLS getters raise :exc:`~transports.abc.TypedAttributeLookupError`
        once the transport is closed, and ``TLSAttribute.peercert``
        (``compression``) also when the peer sent no certificate or it was
        not verified (when no compression is in use).
        """
        return {
            **self.__transport.extra_attributes,
            **tls_attributes(self.__open_ssl_object, self.__standard_compatible),
        }

    def __open_ssl_object(self) -> ssl.SSLObject:
        if self.__closed:
            raise TypedAttributeLookupError("The TLS transport is closed")
        return self.__ssl_object
