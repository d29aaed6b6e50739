"""SocketStreamTransport: a stream transport over a connected stream socket.

The hot paths
-------------
A plain socket program calls ``sock.recv()`` and ``sock.sendall()``. The
transport's blocking methods add a timeout and a retry loop on top; the
aim is that this costs next to nothing when the socket is ready, which
is the common case on a busy connection:

- ``recv``, ``recv_into``, ``send`` and ``send_all`` call the socket
  method FIRST, inline, with no closure, no exception translation and no
  clock read. Only on :exc:`BlockingIOError` do they build the
  non-blocking callback and go through the selector machinery
  (:meth:`SocketOwner._after_would_block`, which waits first, since the
  socket just said it is not ready, and then hands over to ``_retry``).
- With an infinite timeout (and no ``selector_factory``), ``recv``,
  ``recv_into``, ``send_all`` and ``send_all_from_iterable`` make the
  blocking system call a plain socket program makes: the wait happens in
  the kernel, and a close() from another thread ends it (see
  :mod:`._ownership`, "Non-blocking calls on a blocking descriptor").
  Every other call passes ``MSG_DONTWAIT``.
- A receive that waits first with a finite timeout of at least
  ``retry_interval`` (and no ``selector_factory``) polls and receives in
  C, through a second socket object in CPython's timeout mode (see
  "Timed waits in C" in :mod:`._ownership`).
- ``recv`` returns what ``socket.recv`` returns: no intermediate
  ``bytearray``, no copy.
- The closed check is the socket's own: a closed socket's methods raise
  ``OSError(EBADF)``, so there is no check to pay for on the way. (Only
  an empty result or an error looks at whether a close of another thread
  has begun: see "Closed, and closing" in :mod:`._ownership`.)
- ``send_all_from_iterable`` makes scatter/gather writes, at most
  ``IOV_MAX`` buffers per call, never joining or copying the chunks
  (:meth:`~transports.selector.SelectorStreamWriteTransport._send_all_vectored`).
  A write is ``pwritev`` with ``RWF_NOWAIT`` (the ``MSG_DONTWAIT`` of
  ``writev``), or a blocking ``writev`` for an infinite timeout, rather
  than ``sendmsg``: on a socket without control data they are the same
  call, and CPython parses every ``sendmsg`` buffer with ``PyArg_Parse``,
  so for many small buffers they cost about 15% less CPU (256 x 100 B on
  TCP: 23.4 us against 27.4 us per call). They take the descriptor
  *number*, so they hold it through the owner
  (:meth:`SocketOwner._holding_descriptor`): a close() from another thread
  then cannot free the number for another file while they run. Kernels
  whose sockets refuse ``RWF_NOWAIT`` get ``sendmsg`` with
  ``MSG_DONTWAIT``.
- ``send_file`` uses ``os.sendfile``: the file's bytes go from the page
  cache to the socket without passing through Python.

``EINTR`` is retried by Python itself (:pep:`475`) in every system call
made here, ``poll`` included, with the remaining timeout recomputed.
"""

from __future__ import annotations

__all__ = ["SocketStreamTransport"]

import contextlib
import errno
import os
import selectors
import socket
import stat
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from time import monotonic
from typing import IO, Any, Final, final

from typing_extensions import Buffer

from transports.abc import UnsupportedOperation, deadline_after, time_left, validate_timeout
from transports.abc._family import (
    BYTE_TYPES,
    all_sent,
    buffer_type_error,
    check_ancillary_bufsize,
    check_bufsize,
    refuse_subclasses,
    writable_nbytes,
)
from transports.selector import SelectorStreamTransport, WouldBlockOnRead, WouldBlockOnWrite
from transports.selector._family import IOV_MAX

from ._ancillary import ReceivedAncillaryData, raise_on_truncated_control
from ._constants import DONTWAIT, RECV, RECV_INTO, RECVMSG_FLAGS
from ._ownership import DESCRIPTOR_MODE_LOCK, SocketOwner
from ._raw import family_of

# os.sendfile sends at most this much per call on Linux anyway (0x7ffff000).
_SENDFILE_CHUNK: Final[int] = 1 << 30
# Errors of a first os.sendfile() meaning "not for this pair of files": fall back.
_SENDFILE_UNSUPPORTED: Final = frozenset(
    {errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EAFNOSUPPORT}
)
_FALLBACK_CHUNK: Final[int] = 256 * 1024
_RWF_NOWAIT: Final[int] = getattr(os, "RWF_NOWAIT", 0)
# Whether pwritev(RWF_NOWAIT) is the non-blocking gather write (see the module
# docstring); turned off for good the first time the kernel refuses it (a
# seccomp filter may answer EPERM).
_pwritev_nowait: bool = _RWF_NOWAIT != 0 and DONTWAIT != 0
_PWRITEV_REFUSED: Final = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS, errno.EPERM})
_SEND_EOF_IGNORED: Final = frozenset({errno.ENOTCONN, errno.EBADF})


@final
@refuse_subclasses
class SocketStreamTransport(SocketOwner, SelectorStreamTransport):
    """A stream transport over a connected ``SOCK_STREAM`` socket.

    TCP over IPv4 or IPv6, and ``AF_UNIX`` stream sockets. The transport
    owns the socket: :meth:`close` shuts it down and closes it, and an open transport that is
    garbage-collected emits :exc:`ResourceWarning` and closes it. Use the
    :class:`SocketAttribute` typed attributes (and the narrower
    :class:`INETSocketAttribute` / :class:`UNIXSocketAttribute`) for the
    socket's names and options.

    On ``AF_UNIX`` sockets, ancillary data (file descriptors, credentials)
    goes with ``recv_with_ancillary`` / ``send_all_with_ancillary``; on TCP
    those raise :exc:`~transports.abc.UnsupportedOperation`.

    On Linux the descriptor stays in blocking mode and every call that must
    not block passes ``MSG_DONTWAIT``, so that a wait without a deadline is
    one blocking system call, which :meth:`close` (a shutdown) ends; on TCP
    and Unix sockets ``SO_RCVTIMEO`` and ``SO_SNDTIMEO`` are cleared (other
    families get ``retry_interval``). Elsewhere the socket is switched to
    non-blocking mode.

    Parameters:
        sock: a connected ``SOCK_STREAM`` socket.
        retry_interval: the longest single wait, in seconds, before an
            operation is tried again (so that a close from another thread is
            noticed); :data:`math.inf` disables it.
        selector_factory: when given, makes the selector of every wait.

    Raises:
        TypeError: ``sock`` is not a :class:`socket.socket`, or is an
            :class:`ssl.SSLSocket`.
        ValueError: ``sock`` is not a ``SOCK_STREAM`` socket, or
            ``retry_interval`` is not positive.
        OSError: ``sock`` is closed.
    """

    __slots__ = ()

    _SHUTDOWN_ON_CLOSE = True

    def __init__(
        self,
        sock: socket.socket,
        retry_interval: float,
        *,
        selector_factory: Callable[[], selectors.BaseSelector] | None = None,
    ) -> None:
        # Named rather than found through super(): no proxy object to make on
        # every construction.
        SocketOwner.__init__(self, sock, socket.SOCK_STREAM, retry_interval, selector_factory)

    # ------------------------------------------------------------ reading --

    def recv(self, bufsize: int, timeout: float) -> bytes:
        """Read up to ``bufsize`` bytes, waiting at most ``timeout`` seconds.

        Raises:
            ValueError: ``bufsize`` is negative, or ``timeout`` is negative or NaN.
            TimeoutError: no data arrived in time.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF.
        """
        if timeout == self._blocking_timeout:
            try:
                data = self._sock.recv(bufsize)  # the wait is in the kernel
            except OSError as exc:
                return self._after_blocking_receive(exc, RECV, (bufsize, DONTWAIT))
            if not data:
                self._raise_if_closed()  # woken by a close() from another thread
            return data
        if timeout is not None and timeout > 0:
            waits_first = self._read_waits_first
            if waits_first < 0:
                try:
                    data = self._sock.recv(bufsize, DONTWAIT)
                except BlockingIOError:
                    return self._receive_after_would_block(self._sock.fileno(), RECV, (bufsize, DONTWAIT), timeout)
                if not data:
                    self._raise_if_closed()  # the shutdown of a close() from another thread
                return data
            if waits_first > 0 and bufsize > 0:
                self._read_waits_first = waits_first - 1
                if self._timed_waits and timeout >= self._retry_interval:
                    # The timed wait in C, inline: see "Timed waits in C" in ._ownership.
                    users, deadline = self._descriptor_users, monotonic() + timeout
                    try:
                        users.append(None)  # inside: see "Closing from another thread"
                        timed = self._timed_sock or self._timed_wait_socket()
                        result = timed.recv(bufsize, DONTWAIT)  # poll, then receive, in C
                    except TimeoutError as exc:
                        return self._after_timed_wait(exc, RECV, (bufsize, DONTWAIT), deadline)
                    finally:
                        users.pop()
                        if self._pending_close is not None:
                            self._release_descriptor()
                    if not result:
                        self._raise_if_closed()  # woken by a close() from another thread
                    return result
                return self._receive_waiting_first(self._sock.fileno(), RECV, (bufsize, DONTWAIT), timeout)
        return self._receive(self._sock.fileno(), RECV, (bufsize, DONTWAIT), timeout)

    def recv_noblock(self, bufsize: int) -> bytes:
        """Read up to ``bufsize`` bytes without blocking.

        Raises:
            ValueError: ``bufsize`` is negative.
            WouldBlockOnRead: no data yet.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF.
        """
        return self._receive_noblock(RECV, (bufsize, DONTWAIT))

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        """Read into ``buffer``, waiting at most ``timeout`` seconds.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: no data arrived in time.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means EOF.
        """
        if timeout == self._blocking_timeout:
            # (An empty buffer does not block: the kernel returns 0 at once.)
            try:
                nbytes = self._sock.recv_into(buffer)  # the wait is in the kernel
            except OSError as exc:
                return self._after_blocking_receive(exc, RECV_INTO, (buffer, 0, DONTWAIT))
            if not nbytes:
                self._raise_if_closed()  # woken by a close() from another thread
            return nbytes
        if timeout is not None and timeout > 0:
            waits_first = self._read_waits_first
            if waits_first < 0:
                try:
                    nbytes = self._sock.recv_into(buffer, 0, DONTWAIT)
                except BlockingIOError:
                    return self._receive_after_would_block(
                        self._sock.fileno(), RECV_INTO, (buffer, 0, DONTWAIT), timeout
                    )
                if not nbytes:
                    self._raise_if_closed()  # the shutdown of a close() from another thread
                return nbytes
            # (An empty buffer never waits: it reads nothing, at once.)
            if waits_first > 0 and writable_nbytes(buffer):
                self._read_waits_first = waits_first - 1
                if self._timed_waits and timeout >= self._retry_interval:
                    # The timed wait in C, inline: see "Timed waits in C" in ._ownership.
                    users, deadline = self._descriptor_users, monotonic() + timeout
                    try:
                        users.append(None)  # inside: see "Closing from another thread"
                        timed = self._timed_sock or self._timed_wait_socket()
                        result = timed.recv_into(buffer, 0, DONTWAIT)  # poll, then receive, in C
                    except TimeoutError as exc:
                        return self._after_timed_wait(exc, RECV_INTO, (buffer, 0, DONTWAIT), deadline)
                    finally:
                        users.pop()
                        if self._pending_close is not None:
                            self._release_descriptor()
                    if not result:
                        self._raise_if_closed()  # woken by a close() from another thread
                    return result
                return self._receive_waiting_first(self._sock.fileno(), RECV_INTO, (buffer, 0, DONTWAIT), timeout)
        return self._receive(self._sock.fileno(), RECV_INTO, (buffer, 0, DONTWAIT), timeout)

    def recv_noblock_into(self, buffer: Buffer) -> int:
        """Read into ``buffer`` without blocking.

        Raises:
            WouldBlockOnRead: no data yet.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means EOF.
        """
        return self._receive_noblock(RECV_INTO, (buffer, 0, DONTWAIT))

    def recv_noblock_with_ancillary(self, bufsize: int, ancillary_bufsize: int) -> tuple[bytes, ReceivedAncillaryData]:
        """Read up to ``bufsize`` bytes and the ancillary data that came with them.

        ``AF_UNIX`` only. Size ``ancillary_bufsize`` with
        :func:`ancillary_space_for_fds` / :func:`ancillary_space_for_credentials`.
        Received descriptors are close-on-exec and yours to close.

        Raises:
            ValueError: a size is negative.
            UnsupportedOperation: not an ``AF_UNIX`` socket.
            WouldBlockOnRead: no data yet.
            OSError: ``EMSGSIZE`` when the control data was cut (every
                descriptor that arrived is closed first, and the data bytes of
                this call are lost); ``EBADF`` once closed; any other socket
                error.

        Returns:
            The bytes (``b""`` for a positive ``bufsize`` means EOF) and the
            control messages as ``(level, type, data)`` tuples.
        """
        check_bufsize(bufsize)
        check_ancillary_bufsize(ancillary_bufsize)
        self._check_unix()
        sock = self._sock
        try:
            data, ancillary_data, msg_flags, _ = sock.recvmsg(bufsize, ancillary_bufsize, RECVMSG_FLAGS)
        except BlockingIOError:
            raise WouldBlockOnRead(sock.fileno()) from None
        raise_on_truncated_control(ancillary_data, msg_flags)
        if not data:
            self._raise_if_closed()  # the shutdown of a close() from another thread
        return data, ancillary_data

    def recv_noblock_with_ancillary_into(
        self, buffer: Buffer, ancillary_bufsize: int
    ) -> tuple[int, ReceivedAncillaryData]:
        """Read into ``buffer`` together with the ancillary data that came with the bytes.

        Same rules as :meth:`recv_noblock_with_ancillary`.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative.
            UnsupportedOperation: not an ``AF_UNIX`` socket.
            WouldBlockOnRead: no data yet.
            OSError: ``EMSGSIZE`` when the control data was cut (every
                descriptor that arrived is closed first); ``EBADF`` once
                closed; any other socket error.

        Returns:
            The number of bytes written (``0`` for a non-empty buffer means
            EOF) and the control messages as ``(level, type, data)`` tuples.
        """
        check_ancillary_bufsize(ancillary_bufsize)
        self._check_unix()
        sock = self._sock
        try:
            nbytes, ancillary_data, msg_flags, _ = sock.recvmsg_into([buffer], ancillary_bufsize, RECVMSG_FLAGS)
        except BlockingIOError:
            raise WouldBlockOnRead(sock.fileno()) from None
        raise_on_truncated_control(ancillary_data, msg_flags)
        if not nbytes:
            self._raise_if_closed()  # the shutdown of a close() from another thread
        return nbytes, ancillary_data

    def recv_with_ancillary(
        self, bufsize: int, ancillary_bufsize: int, timeout: float
    ) -> tuple[bytes, ReceivedAncillaryData]:
        """Retry :meth:`recv_noblock_with_ancillary` within ``timeout``.

        Raises:
            ValueError: a size is negative, or ``timeout`` is negative or NaN.
            UnsupportedOperation: not an ``AF_UNIX`` socket.
            TimeoutError: no data arrived in time.
            OSError: ``EMSGSIZE`` when the control data was cut (see
                :meth:`recv_noblock_with_ancillary`); ``EBADF`` once closed;
                any other socket error.
        """
        result: tuple[bytes, ReceivedAncillaryData] = super().recv_with_ancillary(bufsize, ancillary_bufsize, timeout)
        return result

    def recv_with_ancillary_into(
        self, buffer: Buffer, ancillary_bufsize: int, timeout: float
    ) -> tuple[int, ReceivedAncillaryData]:
        """Retry :meth:`recv_noblock_with_ancillary_into` within ``timeout``.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative, or ``timeout`` is
                negative or NaN.
            UnsupportedOperation: not an ``AF_UNIX`` socket.
            TimeoutError: no data arrived in time.
            OSError: ``EMSGSIZE`` when the control data was cut; ``EBADF``
                once closed; any other socket error.
        """
        result: tuple[int, ReceivedAncillaryData] = super().recv_with_ancillary_into(buffer, ancillary_bufsize, timeout)
        return result

    # ------------------------------------------------------------ writing --

    def send(self, data: Buffer, timeout: float) -> int:
        """Send some of ``data``, waiting at most ``timeout`` seconds for room.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: nothing could be sent in time.
            BrokenPipeError: the write side is shut down, or the peer is gone.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The number of bytes sent.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        try:
            return self._sock.send(data, DONTWAIT)
        except BlockingIOError:
            pass
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        except OSError:
            self._raise_if_closed()  # EPIPE from the shutdown of a close() from another thread
            raise
        return self._after_would_block(self._sock.fileno(), partial(self.send_noblock, data), True, timeout)[0]

    def send_noblock(self, data: Buffer) -> int:
        """Send some of ``data`` without blocking.

        Raises:
            WouldBlockOnWrite: no room in the send buffer.
            BrokenPipeError: the write side is shut down, or the peer is gone.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The number of bytes sent.
        """
        sock = self._sock
        try:
            return sock.send(data, DONTWAIT)
        except BlockingIOError:
            raise WouldBlockOnWrite(sock.fileno()) from None
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        except OSError:
            self._raise_if_closed()  # EPIPE from the shutdown of a close() from another thread
            raise

    def send_all(self, data: Buffer, timeout: float) -> None:
        """Send all of ``data`` within one budget of ``timeout`` seconds.

        The first ``send`` is tried at once; the clock is read only if it
        could not send everything. The data is never copied. On error there
        is no telling how much was sent.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``data`` is not a C-contiguous buffer.
            TimeoutError: the budget ran out before everything was sent.
            BrokenPipeError: the write side is shut down, or the peer is gone.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.
        """
        sock = self._sock
        try:
            if timeout == self._blocking_timeout:
                # With no deadline, as sendall() does: the kernel takes it
                # all, waiting for room. Not sendall() itself, which cannot
                # tell how much went if the descriptor stops blocking
                # part-way (a send_file(), another holder of the descriptor):
                # what a signal or that leaves goes below.
                sent = sock.send(data)
            else:
                if timeout is None or not timeout >= 0:
                    validate_timeout(timeout)
                sent = sock.send(data, DONTWAIT)
        except BlockingIOError:
            sent = 0
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        except OSError:
            self._raise_if_closed()  # woken by a close() from another thread
            raise
        if type(data) in BYTE_TYPES:
            if sent == len(data):  # type: ignore[arg-type]
                return
            view = memoryview(data)
        else:
            view = memoryview(data)
            if view.itemsize != 1 or view.ndim != 1:
                view = view.cast("B")
            if sent == len(view):
                return
        self._send_all_rest(sock.fileno(), view[sent:], timeout)

    def send_all_from_iterable(self, iterable_of_data: Iterable[Buffer], timeout: float) -> None:
        """Send every chunk in order with scatter/gather writes (``pwritev``/``writev``, or ``sendmsg``).

        At most ``IOV_MAX`` buffers per system call; chunks are never joined
        or copied (a chunk sent in part is resumed through a memoryview
        slice). Empty chunks anywhere are fine.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: the budget ran out before everything was sent.
            BrokenPipeError: the write side is shut down, or the peer is gone.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; any other socket error.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        buffers = iterable_of_data if type(iterable_of_data) is list else list(iterable_of_data)
        if len(buffers) <= IOV_MAX:
            # First try inline: most gathers fit the send buffer in one call.
            sock = self._sock
            try:
                if timeout == self._blocking_timeout:
                    # As in send_all(): the kernel does the waiting.
                    sent = self._holding_descriptor(os.writev, buffers)
                else:
                    sent = self._holding_descriptor(_write_vector_noblock, sock, buffers)
            except BlockingIOError:
                sent = 0
            except BufferError as exc:  # the writes check every buffer before they send any
                raise buffer_type_error(exc) from None
            if all_sent(buffers, sent):
                return
            self._send_all_vectored(self._write_vector_noblock, buffers, timeout, sent=sent)
            return
        self._send_all_vectored(self._write_vector_noblock, buffers, timeout)

    def _write_vector_noblock(self, buffers: Sequence[Buffer]) -> int:
        sock = self._sock
        try:
            return self._holding_descriptor(_write_vector_noblock, sock, buffers)
        except BlockingIOError:
            raise WouldBlockOnWrite(sock.fileno()) from None

    def send_all_noblock_with_ancillary(self, iterable_of_data: Iterable[Buffer], ancillary_data: Any) -> None:
        """Send all chunks and ``ancillary_data`` in ONE ``sendmsg`` call, without blocking.

        ``AF_UNIX`` only. ``ancillary_data`` is an iterable of
        ``(level, type, data)`` tuples, e.g. from :func:`fds_message`. A
        stream carries control data only along with at least one byte.

        Raises:
            ValueError: there is ancillary data but no byte to carry it.
            UnsupportedOperation: not an ``AF_UNIX`` socket.
            WouldBlockOnWrite: nothing can be sent now.
            OSError: ``EMSGSIZE`` when not all bytes went in that one call
                (the ancillary data and the first bytes did go); ``EBADF`` once
                closed; any other socket error.
        """
        self._check_unix()
        buffers = list(iterable_of_data)
        ancillary = list(ancillary_data)
        total = sum(memoryview(buffer).nbytes for buffer in buffers)
        if ancillary and not total:
            raise ValueError("Ancillary data needs at least one byte of data to go with it on a stream")
        sock = self._sock
        try:
            sent = sock.sendmsg(buffers, ancillary, DONTWAIT)
        except BlockingIOError:
            raise WouldBlockOnWrite(sock.fileno()) from None
        except OSError:
            self._raise_if_closed()  # EPIPE from the shutdown of a close() from another thread
            raise
        if sent != total:
            raise OSError(errno.EMSGSIZE, f"Only {sent} of {total} bytes could be sent with the ancillary data")

    def send_eof(self) -> None:
        """Shut the write side down: the peer reads EOF after the data sent.

        Does nothing when the transport is closed, or the socket is no
        longer connected.

        Raises:
            OSError: the system refused the shutdown for another reason.
        """
        sock = self._sock
        if sock.fileno() < 0:
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            if exc.errno not in _SEND_EOF_IGNORED:
                raise

    def send_file(self, file: IO[bytes], timeout: float, *, offset: int = 0, count: int | None = None) -> int:
        """Send the content of ``file`` from ``offset``, ``count`` bytes or to its end.

        With a regular file (one that has a descriptor), the bytes go from
        the kernel's page cache to the socket with :func:`os.sendfile`,
        never through Python. Otherwise (pipes, :class:`io.BytesIO`, systems
        without ``sendfile``) the file is read in chunks and sent with
        :meth:`send_all`. One budget of ``timeout`` seconds covers the whole
        transfer. Afterwards (also after an error) the file position of a
        seekable file is ``offset`` plus the bytes sent, so a caller can
        tell how far a failed transfer went, as with
        :meth:`socket.socket.sendfile`.

        Parameters:
            file: a file object open for reading in binary mode.
            timeout: the budget in seconds, for the whole transfer.
            offset: the position to start at (``0``: the beginning, or the
                current position of a file that cannot seek).
            count: how many bytes to send at most; :data:`None` to send up to
                the end of the file.

        Raises:
            TypeError: ``offset`` or ``count`` is not an int.
            ValueError: ``offset`` is negative, ``count`` is not positive, a
                non-zero ``offset`` is given for a file that cannot seek, or
                ``timeout`` is negative or NaN.
            TimeoutError: the budget ran out.
            BrokenPipeError: the write side is shut down, or the peer is gone.
            ConnectionResetError: the peer reset the connection.
            OSError: ``EBADF`` once closed; a read or socket error.

        Returns:
            The number of bytes sent (fewer than ``count`` when the file ended
            first).
        """
        _check_offset_and_count(offset, count)
        deadline = deadline_after(timeout)
        self._raise_if_closed()
        in_fd = _regular_file_descriptor(file)
        if in_fd is not None and hasattr(os, "sendfile"):
            sent = self._send_file_zero_copy(file, in_fd, offset, count, deadline)
            if sent is not None:
                return sent
        return self._send_file_by_copy(file, offset, count, deadline)

    def _send_file_zero_copy(
        self, file: IO[bytes], in_fd: int, offset: int, count: int | None, deadline: float
    ) -> int | None:
        # Returns None when sendfile() cannot be used for this pair (before
        # anything was sent), so that the caller falls back to copying.
        if count is None:
            count = max(os.fstat(in_fd).st_size - offset, 0)
        sock = self._sock
        # os.sendfile() takes no MSG_DONTWAIT: a blocking descriptor is made
        # non-blocking for the transfer. A blocking call of another thread
        # meanwhile gets EAGAIN and waits with poll instead. (The lock: a
        # first timed wait of another thread changes the mode too.)
        descriptor_blocks = sock.gettimeout() is None
        if descriptor_blocks:
            with DESCRIPTOR_MODE_LOCK:
                sock.setblocking(False)
        sent = 0
        try:
            while sent < count:
                send_chunk = partial(self._sendfile_noblock, in_fd, offset + sent, min(count - sent, _SENDFILE_CHUNK))
                if sent:  # the last call filled the send buffer: wait for room first
                    nbytes = self._after_would_block(self._sock.fileno(), send_chunk, True, time_left(deadline))[0]
                else:
                    nbytes = self._retry(send_chunk, time_left(deadline))[0]
                if nbytes == 0:  # the file is shorter than it was
                    break
                sent += nbytes
        except OSError as exc:
            if not sent and exc.errno in _SENDFILE_UNSUPPORTED:
                return None
            raise
        finally:
            # os.sendfile() leaves the file position alone; move it past what went.
            file.seek(offset + sent)
            if descriptor_blocks:
                with DESCRIPTOR_MODE_LOCK, contextlib.suppress(OSError):  # closed meanwhile by another thread
                    sock.settimeout(None)
        return sent

    def _sendfile_noblock(self, in_fd: int, position: int, size: int) -> int:
        try:
            return self._holding_descriptor(os.sendfile, in_fd, position, size)
        except BlockingIOError:
            raise WouldBlockOnWrite(self._sock.fileno()) from None

    def _send_file_by_copy(self, file: IO[bytes], offset: int, count: int | None, deadline: float) -> int:
        seekable = file.seekable()
        if seekable:
            file.seek(offset)
        elif offset:
            raise ValueError("A non-zero offset needs a file that can seek")
        sent = 0
        try:
            while count is None or sent < count:
                chunk = file.read(_FALLBACK_CHUNK if count is None else min(_FALLBACK_CHUNK, count - sent))
                if not chunk:
                    break
                self.send_all(chunk, time_left(deadline))
                sent += len(chunk)
        finally:
            if seekable:
                file.seek(offset + sent)
        return sent

    # -------------------------------------------------------------- other --

    def _check_unix(self) -> None:
        if family_of(self._sock) != socket.AF_UNIX:
            raise UnsupportedOperation("Ancillary data needs an AF_UNIX socket")


def _write_vector_noblock(fd: int, sock: socket.socket, buffers: Sequence[Buffer]) -> int:
    """One scatter/gather write of at most ``IOV_MAX`` buffers that does not block.

    ``fd`` is ``sock``'s descriptor number, held by the caller
    (:meth:`SocketOwner._holding_descriptor`).

    Raises:
        BlockingIOError: nothing could be written now.
        OSError: the socket's error (``EBADF`` once closed).
    """
    global _pwritev_nowait
    if _pwritev_nowait:
        try:
            return os.pwritev(fd, buffers, -1, _RWF_NOWAIT)
        except OSError as exc:
            if exc.errno not in _PWRITEV_REFUSED or sock.fileno() < 0:
                raise
        # Nothing was written. If sendmsg() works, the error was pwritev()'s
        # own, not the socket's: use sendmsg() from now on.
        sent = sock.sendmsg(buffers, (), DONTWAIT)
        _pwritev_nowait = False
        return sent
    return sock.sendmsg(buffers, (), DONTWAIT)


def _check_offset_and_count(offset: int, count: int | None) -> None:
    if not isinstance(offset, int):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be an int or None, not {type(count).__name__}")
        if count <= 0:
            raise ValueError(f"count must be positive, got {count}")


def _regular_file_descriptor(file: IO[bytes]) -> int | None:
    try:
        fd = file.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        return None
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return None
    return fd if stat.S_ISREG(mode) else None
