"""Stream transports over the two ends of a pipe.

A :class:`PipeReadTransport` owns a readable descriptor (the read end of
``os.pipe()``, a child process's stdout), a :class:`PipeWriteTransport` a
writable one (a child's stdin). Staple the two with
``transports.composite.StapledStreamTransport`` for a full-duplex stream to
a child process.

Both switch the descriptor to non-blocking mode. That flag belongs to the
open file description, so it is seen by every process sharing it: hand
these transports descriptors that are yours alone (``os.pipe()`` ends kept
by the parent are), not a terminal shared with other programs.
"""

from __future__ import annotations

__all__ = ["PipeAttribute", "PipeReadTransport", "PipeWriteTransport"]

import errno
import os
import selectors
import stat
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from typing_extensions import Buffer

from transports.abc import TypedAttributeLookupError, TypedAttributeSet, typed_attribute, validate_timeout
from transports.abc._family import (
    BYTE_TYPES,
    buffer_type_error,
    byte_view,
    check_bufsize,
    closed_error,
    writable_nbytes,
)

from ._base import SelectorBaseTransport
from ._exceptions import WouldBlockOnRead, WouldBlockOnWrite
from ._stream import SelectorStreamReadTransport, SelectorStreamWriteTransport

_T = TypeVar("_T")


class PipeAttribute(TypedAttributeSet):
    """Typed attributes of pipe transports."""

    fileno: int = typed_attribute()
    """The file descriptor; unavailable once the transport is closed."""


def _take_descriptor(fd: int, *, want_read: bool) -> int:
    """Check ``fd`` and make it non-blocking; return it."""
    if not isinstance(fd, int) or isinstance(fd, bool):
        raise TypeError(f"Expected a file descriptor (int), got {type(fd).__name__}")
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)):
        raise ValueError("Expected a pipe, FIFO, character device or socket (regular files never block)")
    access = _access_mode(fd)
    if want_read and access == os.O_WRONLY:
        raise ValueError("The descriptor is not open for reading")
    if not want_read and access == os.O_RDONLY:
        raise ValueError("The descriptor is not open for writing")
    os.set_blocking(fd, False)
    return fd


def _access_mode(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE


class _PipeEnd(SelectorBaseTransport):
    """Descriptor ownership shared by both ends: close, attributes, leaks."""

    __slots__ = ("_close_lock", "_fd")

    def __init__(
        self,
        fd: int,
        retry_interval: float,
        selector_factory: Callable[[], selectors.BaseSelector] | None,
        *,
        want_read: bool,
    ) -> None:
        self._fd = -1
        super().__init__(retry_interval, selector_factory)
        self._close_lock = threading.Lock()
        self._fd = _take_descriptor(fd, want_read=want_read)

    def close(self) -> None:
        """Close the descriptor. Idempotent.

        Raises:
            OSError: the system refused to close it (never for an already
                closed transport, nor for a descriptor closed behind its back).
        """
        # Two threads closing at once must not both close the number: the
        # second close could hit a descriptor just reused by someone else.
        with self._close_lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise

    def is_closed(self) -> bool:
        """Return :data:`True` once :meth:`close` has been called."""
        return self._fd < 0

    def fileno(self) -> int:
        """The file descriptor, or ``-1`` once closed."""
        return self._fd

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """:attr:`PipeAttribute.fileno`."""
        return {PipeAttribute.fileno: self._attribute_fileno}

    def _attribute_fileno(self) -> int:
        fd = self._fd
        if fd < 0:
            raise TypedAttributeLookupError("The transport is closed")
        return fd

    def __del__(self, *, _warn: Callable[..., None] = warnings.warn, _close: Callable[[int], None] = os.close) -> None:
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            message = f"unclosed transport {self!r}"  # names the descriptor: before it is -1
            self._fd = -1
            _warn(message, ResourceWarning, source=self)
            try:
                _close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self._fd}>"


class PipeReadTransport(_PipeEnd, SelectorStreamReadTransport):
    """A stream transport reading from a pipe's read end.

    Parameters:
        fd: the descriptor; the transport owns it from now on and closes it.
        retry_interval: the longest single wait before retrying (see
            :class:`SelectorBaseTransport`); :data:`math.inf` to disable.
        selector_factory: makes the selector of every wait, if given.

    Raises:
        TypeError: ``fd`` is not an int.
        ValueError: ``fd`` is negative, not a pipe/FIFO/character
            device/socket, or not open for reading; or ``retry_interval`` is
            not positive.
        OSError: ``fd`` is not an open descriptor.
    """

    __slots__ = ()

    _RECEIVE_TARGET = "_fd"

    def __init__(
        self,
        fd: int,
        retry_interval: float,
        *,
        selector_factory: Callable[[], selectors.BaseSelector] | None = None,
    ) -> None:
        super().__init__(fd, retry_interval, selector_factory, want_read=True)

    def recv(self, bufsize: int, timeout: float) -> bytes:
        """Read up to ``bufsize`` bytes, waiting at most ``timeout`` seconds.

        Tries first, or waits first after reads that would have blocked (see
        :class:`SelectorBaseTransport`); the result is the same either way.

        Raises:
            ValueError: ``bufsize`` is negative, or ``timeout`` is negative or NaN.
            TimeoutError: no data arrived in time.
            OSError: ``EBADF`` once closed; any read error.

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF.
        """
        check_bufsize(bufsize)
        fd = self._fd
        if timeout is not None and timeout > 0:
            waits_first = self._read_waits_first
            if waits_first < 0:
                try:
                    return os.read(fd, bufsize)
                except BlockingIOError:
                    return self._receive_after_would_block(fd, os.read, (bufsize,), timeout)
            if waits_first > 0 and bufsize:
                self._read_waits_first = waits_first - 1
                return self._receive_waiting_first(fd, os.read, (bufsize,), timeout)
        return self._receive(fd, os.read, (bufsize,), timeout)

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        """Read into ``buffer``, waiting at most ``timeout`` seconds.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: no data arrived in time.
            OSError: ``EBADF`` once closed; any read error.

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means EOF.
        """
        fd = self._fd
        if timeout is not None and timeout > 0:
            waits_first = self._read_waits_first
            if waits_first < 0:
                try:
                    return os.readv(fd, [buffer])
                except BlockingIOError:
                    return self._receive_after_would_block(fd, os.readv, ([buffer],), timeout)
                except BufferError as exc:
                    raise buffer_type_error(exc) from None
            if waits_first > 0 and writable_nbytes(buffer):
                self._read_waits_first = waits_first - 1
                return self._receive_waiting_first(fd, os.readv, ([buffer],), timeout)
        writable_nbytes(buffer)  # a buffer that cannot take bytes: TypeError before any I/O
        return self._receive(fd, os.readv, ([buffer],), timeout)

    def recv_noblock(self, bufsize: int) -> bytes:
        """Read up to ``bufsize`` bytes without blocking.

        Raises:
            ValueError: ``bufsize`` is negative.
            WouldBlockOnRead: no data yet.
            OSError: ``EBADF`` once closed; any read error.

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF (every
            write end is closed).
        """
        check_bufsize(bufsize)
        return self._receive_noblock(os.read, (bufsize,))

    def recv_noblock_into(self, buffer: Buffer) -> int:
        """Read into ``buffer`` without blocking.

        Raises:
            WouldBlockOnRead: no data yet.
            OSError: ``EBADF`` once closed; any read error.

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means EOF.
        """
        try:
            return self._receive_noblock(os.readv, ([buffer],))
        except BufferError as exc:
            raise buffer_type_error(exc) from None

    def _receive_noblock(self, call: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        # The receive engine's one try (see SelectorBaseTransport): ``call``
        # on the descriptor, read again on every try (-1 once closed).
        fd = self._fd
        if fd < 0:
            raise closed_error()
        try:
            return call(fd, *args)
        except BlockingIOError:
            raise WouldBlockOnRead(fd) from None


class PipeWriteTransport(_PipeEnd, SelectorStreamWriteTransport):
    """A stream transport writing to a pipe's write end.

    Writing after the reader has gone raises :exc:`BrokenPipeError` (Python
    ignores ``SIGPIPE``, so the process is not killed).

    Parameters:
        fd: the descriptor; the transport owns it from now on and closes it.
        retry_interval: the longest single wait before retrying;
            :data:`math.inf` to disable.
        selector_factory: makes the selector of every wait, if given.

    Raises:
        TypeError: ``fd`` is not an int.
        ValueError: ``fd`` is negative, not a pipe/FIFO/character
            device/socket, or not open for writing; or ``retry_interval`` is
            not positive.
        OSError: ``fd`` is not an open descriptor.
    """

    __slots__ = ()

    def __init__(
        self,
        fd: int,
        retry_interval: float,
        *,
        selector_factory: Callable[[], selectors.BaseSelector] | None = None,
    ) -> None:
        super().__init__(fd, retry_interval, selector_factory, want_read=False)

    def send(self, data: Buffer, timeout: float) -> int:
        """Write some of ``data``, waiting at most ``timeout`` seconds for room.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: nothing could be written in time.
            BrokenPipeError: no reader is left.
            OSError: ``EBADF`` once closed; any write error.

        Returns:
            The number of bytes written.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        fd = self._fd
        try:
            return os.write(fd, data)
        except BlockingIOError:
            pass
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        return self._after_would_block(fd, partial(self.send_noblock, data), True, timeout)[0]

    def send_all(self, data: Buffer, timeout: float) -> None:
        """Write all of ``data`` within one budget of ``timeout`` seconds.

        The first write is tried at once; the clock is read only if it could
        not write everything. The data is never copied.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``data`` is not a C-contiguous buffer.
            TimeoutError: the budget ran out before everything was written.
            BrokenPipeError: no reader is left.
            OSError: ``EBADF`` once closed; any write error.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        fd = self._fd
        try:
            sent = os.write(fd, data)
        except BlockingIOError:
            sent = 0
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        if type(data) in BYTE_TYPES and sent == len(data):  # type: ignore[arg-type]  # bytes or bytearray
            return
        view = byte_view(data)
        if sent != len(view):
            self._send_all_rest(fd, view[sent:], timeout)

    def send_noblock(self, data: Buffer) -> int:
        """Write some of ``data`` without blocking.

        Raises:
            WouldBlockOnWrite: the pipe is full.
            BrokenPipeError: no reader is left.
            OSError: ``EBADF`` once closed; any write error.

        Returns:
            The number of bytes written.
        """
        fd = self._fd
        if fd < 0:
            raise closed_error()
        try:
            return os.write(fd, data)
        except BlockingIOError:
            raise WouldBlockOnWrite(fd) from None
        except BufferError as exc:
            raise buffer_type_error(exc) from None

    def send_all_from_iterable(self, iterable_of_data: Iterable[Buffer], timeout: float) -> None:
        """Write every chunk in order with ``writev``: no joining, no copies.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: the budget ran out before everything was written.
            BrokenPipeError: no reader is left.
            OSError: ``EBADF`` once closed; any write error.
        """
        self._send_all_vectored(self._writev_noblock, iterable_of_data, timeout)

    def _writev_noblock(self, buffers: Sequence[Buffer]) -> int:
        fd = self._fd
        if fd < 0:
            raise closed_error()
        try:
            return os.writev(fd, buffers)
        except BlockingIOError:
            raise WouldBlockOnWrite(fd) from None

    def send_eof(self) -> None:
        """Signal EOF to the reader by closing the write end (same as :meth:`close`).

        Does nothing when already closed.

        Raises:
            OSError: the system refused to close the descriptor.
        """
        self.close()
