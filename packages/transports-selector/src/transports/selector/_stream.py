"""Selector-driven stream transports: blocking methods over non-blocking ones."""

from __future__ import annotations

__all__ = ["SelectorStreamReadTransport", "SelectorStreamTransport", "SelectorStreamWriteTransport"]

import os
from abc import abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from itertools import accumulate
from typing import Any, Final

from typing_extensions import Buffer

from transports.abc import (
    StreamReadTransport,
    StreamTransport,
    StreamWriteTransport,
    UnsupportedOperation,
    deadline_after,
    time_left,
    validate_timeout,
)

# Siblings are pinned to one exact version, so a layer may share the private
# helpers of the layer below it.
from transports.abc._family import byte_buffers, check_ancillary_bufsize, check_bufsize

from ._base import SelectorBaseTransport


def _iov_max() -> int:
    try:
        value = os.sysconf("SC_IOV_MAX")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - every POSIX system has it
        return 16  # the POSIX minimum
    # -1 means "no limit": any batch size works, so take Linux's.
    return value if value > 0 else 1024


#: The most buffers one scatter/gather system call takes (1024 on Linux).
IOV_MAX: Final[int] = _iov_max()


class SelectorStreamReadTransport(SelectorBaseTransport, StreamReadTransport):
    """A stream reader whose blocking methods retry non-blocking ones.

    Subclasses implement :meth:`recv_noblock_into`, raising
    :class:`WouldBlockOnRead` (or :class:`WouldBlockOnWrite`) instead of
    blocking.
    """

    __slots__ = ()

    def recv_noblock(self, bufsize: int) -> bytes:
        """Read up to ``bufsize`` bytes without blocking.

        The default calls :meth:`recv_noblock_into` with a new buffer.

        Raises:
            ValueError: ``bufsize`` is negative.
            WouldBlockOnRead: no data yet (also ``WouldBlockOnWrite``, e.g.
                for TLS renegotiation).
            RuntimeError: :meth:`recv_noblock_into` returned an impossible count.
            OSError: the transport failed, or is closed.

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF.
        """
        check_bufsize(bufsize)
        if bufsize == 0:
            return b""
        buffer = bytearray(bufsize)
        nbytes = self.recv_noblock_into(buffer)
        if not 0 <= nbytes <= bufsize:
            raise RuntimeError(f"recv_noblock_into() returned {nbytes} for a buffer of {bufsize} bytes")
        if nbytes != bufsize:
            del buffer[nbytes:]
        return bytes(buffer)

    @abstractmethod
    def recv_noblock_into(self, buffer: Buffer) -> int:
        """Read into ``buffer`` without blocking.

        Raises:
            WouldBlockOnRead: no data yet (also ``WouldBlockOnWrite``).
            OSError: the transport failed, or is closed.

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means EOF.
        """
        raise NotImplementedError

    def recv(self, bufsize: int, timeout: float) -> bytes:
        """Read up to ``bufsize`` bytes, retrying :meth:`recv_noblock`.

        Raises:
            ValueError: ``bufsize`` is negative, or ``timeout`` is negative or NaN.
            TimeoutError: no data arrived in time.
            OSError: the transport failed, or is closed.
        """
        return self._retry(lambda: self.recv_noblock(bufsize), timeout)[0]

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        """Read into ``buffer``, retrying :meth:`recv_noblock_into`.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: no data arrived in time.
            OSError: the transport failed, or is closed.
        """
        return self._retry(lambda: self.recv_noblock_into(buffer), timeout)[0]

    def recv_noblock_with_ancillary(self, bufsize: int, ancillary_bufsize: int) -> tuple[bytes, Any]:
        """Read up to ``bufsize`` bytes and ancillary data without blocking.

        Raises:
            ValueError: a size is negative.
            UnsupportedOperation: no ancillary data on this transport (default).
            WouldBlockOnRead: no data yet.
            OSError: the transport failed, or is closed.
        """
        check_bufsize(bufsize)
        check_ancillary_bufsize(ancillary_bufsize)
        raise UnsupportedOperation("This transport does not carry ancillary data")

    def recv_noblock_with_ancillary_into(self, buffer: Buffer, ancillary_bufsize: int) -> tuple[int, Any]:
        """Read into ``buffer`` with ancillary data, without blocking.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative.
            UnsupportedOperation: no ancillary data on this transport (default).
            WouldBlockOnRead: no data yet.
            OSError: the transport failed, or is closed.
        """
        check_ancillary_bufsize(ancillary_bufsize)
        raise UnsupportedOperation("This transport does not carry ancillary data")

    def recv_with_ancillary(self, bufsize: int, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        """Retry :meth:`recv_noblock_with_ancillary` within ``timeout``.

        Raises:
            ValueError: a size is negative, or ``timeout`` is negative or NaN.
            UnsupportedOperation: no ancillary data on this transport.
            TimeoutError: no data arrived in time.
            OSError: the transport failed, or is closed.
        """
        return self._retry(lambda: self.recv_noblock_with_ancillary(bufsize, ancillary_bufsize), timeout)[0]

    def recv_with_ancillary_into(self, buffer: Buffer, ancillary_bufsize: int, timeout: float) -> tuple[int, Any]:
        """Retry :meth:`recv_noblock_with_ancillary_into` within ``timeout``.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative, or ``timeout`` is
                negative or NaN.
            UnsupportedOperation: no ancillary data on this transport.
            TimeoutError: no data arrived in time.
            OSError: the transport failed, or is closed.
        """
        return self._retry(lambda: self.recv_noblock_with_ancillary_into(buffer, ancillary_bufsize), timeout)[0]


class SelectorStreamWriteTransport(SelectorBaseTransport, StreamWriteTransport):
    """A stream writer whose blocking methods retry non-blocking ones.

    Subclasses implement :meth:`send_noblock`, raising
    :class:`WouldBlockOnWrite` (or :class:`WouldBlockOnRead`) instead of
    blocking.
    """

    __slots__ = ()

    @abstractmethod
    def send_noblock(self, data: Buffer) -> int:
        """Send some of ``data`` without blocking.

        Raises:
            WouldBlockOnWrite: nothing can be sent now (also ``WouldBlockOnRead``).
            OSError: the transport failed, or is closed.

        Returns:
            The number of bytes sent.
        """
        raise NotImplementedError

    def send(self, data: Buffer, timeout: float) -> int:
        """Send some of ``data``, retrying :meth:`send_noblock`.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: nothing could be sent in time.
            OSError: the transport failed, or is closed.
        """
        return self._retry(lambda: self.send_noblock(data), timeout)[0]

    def send_all_noblock_with_ancillary(self, iterable_of_data: Iterable[Buffer], ancillary_data: Any) -> None:
        """Send all chunks and ``ancillary_data`` in one call, without blocking.

        Raises:
            UnsupportedOperation: no ancillary data on this transport (default).
            WouldBlockOnWrite: nothing can be sent now.
            OSError: ``EMSGSIZE`` when not everything could go at once; or the
                transport failed, or is closed.
        """
        raise UnsupportedOperation("This transport does not carry ancillary data")

    def send_all_with_ancillary(self, iterable_of_data: Iterable[Buffer], ancillary_data: Any, timeout: float) -> None:
        """Retry :meth:`send_all_noblock_with_ancillary` within ``timeout``.

        One-shot iterators (of data or of ancillary items) are read into
        lists first, so that a retry sends the same thing.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            UnsupportedOperation: no ancillary data on this transport.
            TimeoutError: nothing could be sent in time.
            OSError: ``EMSGSIZE`` when not everything could go at once; or the
                transport failed, or is closed.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        chunks = list(iterable_of_data)
        if isinstance(ancillary_data, Iterator):
            ancillary_data = list(ancillary_data)
        self._retry(lambda: self.send_all_noblock_with_ancillary(chunks, ancillary_data), timeout)

    def _send_all_rest(self, fileno: int, view: memoryview, timeout: float) -> None:
        """Send ``view`` after a first try of the caller's that sent only part.

        The send buffer is full, so each further try waits for room first
        (on ``fileno``) rather than failing once more; one budget of
        ``timeout`` seconds (already validated) covers them all.

        Raises:
            TimeoutError: the budget ran out.
            OSError: the transport failed, or is closed.
        """
        deadline = deadline_after(timeout)
        while True:
            sent = self._after_would_block(fileno, partial(self.send_noblock, view), True, time_left(deadline))[0]
            if sent == len(view):
                return
            view = view[sent:]

    def _send_all_vectored(
        self,
        send_vectored_noblock: Callable[[Sequence[Buffer]], int],
        iterable_of_data: Iterable[Buffer],
        timeout: float,
        *,
        sent: int = 0,
        max_buffers: int = IOV_MAX,
    ) -> None:
        """Send every chunk with a scatter/gather primitive, one budget.

        For subclasses with a vectored write (``sendmsg``, ``writev``).
        ``send_vectored_noblock(buffers)`` sends from at most ``max_buffers``
        buffers without blocking and returns the byte count, or raises
        ``WouldBlockOnWrite``. Chunks are never joined or copied: after a
        partial send, the next call starts at a slice of the chunk where the
        last one stopped. Finding that chunk is a binary search over the
        cumulative lengths, not a Python loop over the chunks sent.

        ``sent``: bytes of the chunks a first try of the caller's own already
        sent; sending resumes after them.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: a chunk is not a C-contiguous buffer.
            TimeoutError: the budget ran out before everything was sent.
            OSError: the transport failed, or is closed.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        buffers = byte_buffers(list(iterable_of_data))
        lengths = list(map(len, buffers))
        total = sum(lengths)
        position = sent
        if position == 0:
            batch = buffers if len(buffers) <= max_buffers else buffers[:max_buffers]
            position, timeout = self._retry(partial(send_vectored_noblock, batch), timeout)
        if position >= total:
            return
        ends = list(accumulate(lengths))
        while True:
            index = bisect_right(ends, position)
            offset = position - (ends[index] - lengths[index])
            head = memoryview(buffers[index])[offset:] if offset else buffers[index]
            batch = [head, *buffers[index + 1 : index + max_buffers]]
            sent, timeout = self._retry(partial(send_vectored_noblock, batch), timeout)
            position += sent
            if position >= total:
                return


class SelectorStreamTransport(SelectorStreamWriteTransport, SelectorStreamReadTransport, StreamTransport):
    """A stream transport whose blocking methods retry non-blocking ones."""

    __slots__ = ()
