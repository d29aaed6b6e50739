"""Stream (byte-oriented, reliable, ordered) transport interfaces."""

from __future__ import annotations

__all__ = ["StreamReadTransport", "StreamTransport", "StreamWriteTransport"]

import math
from abc import abstractmethod
from collections.abc import Iterable
from time import monotonic
from typing import Any

from typing_extensions import Buffer

from ._base import BaseTransport
from ._buffers import byte_view
from ._exceptions import UnsupportedOperation
from ._timeouts import time_left, validate_timeout
from ._validation import check_ancillary_bufsize, check_bufsize


class StreamReadTransport(BaseTransport):
    """A transport that reads a continuous stream of bytes."""

    __slots__ = ()

    def recv(self, bufsize: int, timeout: float) -> bytes:
        """Read and return up to ``bufsize`` bytes.

        The default implementation calls :meth:`recv_into` with a new buffer.

        Parameters:
            bufsize: the most bytes to return; ``0`` returns ``b""`` at once.
            timeout: seconds to wait for data (``0``: do not block,
                :data:`math.inf`: wait forever).

        Raises:
            ValueError: ``bufsize`` is negative, or ``timeout`` is negative or NaN.
            TimeoutError: no data arrived in time.
            RuntimeError: :meth:`recv_into` returned an impossible count.
            OSError: the transport failed, or is closed.

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF.
        """
        check_bufsize(bufsize)
        if bufsize == 0:
            validate_timeout(timeout)
            return b""
        buffer = bytearray(bufsize)
        nbytes = self.recv_into(buffer, timeout)
        if not 0 <= nbytes <= bufsize:
            raise RuntimeError(f"recv_into() returned {nbytes} for a buffer of {bufsize} bytes")
        if nbytes != bufsize:
            del buffer[nbytes:]
        return bytes(buffer)

    @abstractmethod
    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        """Read into ``buffer``.

        Parameters:
            buffer: a writable buffer.
            timeout: seconds to wait for data.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: no data arrived in time.
            OSError: the transport failed, or is closed.

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means EOF.
        """
        raise NotImplementedError

    def recv_with_ancillary(self, bufsize: int, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        """Read up to ``bufsize`` bytes together with ancillary data.

        Parameters:
            bufsize: the most bytes to return.
            ancillary_bufsize: the most bytes of ancillary data to accept.
            timeout: seconds to wait for data.

        Raises:
            ValueError: a size is negative, or ``timeout`` is negative or NaN.
            UnsupportedOperation: the transport carries no ancillary data
                (the default).
            TimeoutError: no data arrived in time.
            OSError: the transport failed, or is closed.

        Returns:
            The bytes read (``b""`` for a positive ``bufsize`` means EOF)
            and the ancillary data, in a form the transport documents.
        """
        check_bufsize(bufsize)
        check_ancillary_bufsize(ancillary_bufsize)
        validate_timeout(timeout)
        raise UnsupportedOperation("This transport does not carry ancillary data")

    def recv_with_ancillary_into(self, buffer: Buffer, ancillary_bufsize: int, timeout: float) -> tuple[int, Any]:
        """Read into ``buffer`` together with ancillary data.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative, or ``timeout`` is
                negative or NaN.
            UnsupportedOperation: the transport carries no ancillary data
                (the default).
            TimeoutError: no data arrived in time.
            OSError: the transport failed, or is closed.

        Returns:
            The number of bytes written (``0`` for a non-empty buffer means
            EOF) and the ancillary data.
        """
        check_ancillary_bufsize(ancillary_bufsize)
        validate_timeout(timeout)
        raise UnsupportedOperation("This transport does not carry ancillary data")


class StreamWriteTransport(BaseTransport):
    """A transport that writes a continuous stream of bytes."""

    __slots__ = ()

    @abstractmethod
    def send(self, data: Buffer, timeout: float) -> int:
        """Send some of ``data``, waiting at most ``timeout`` seconds.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: nothing could be sent in time.
            OSError: the transport failed, or is closed.

        Returns:
            The number of bytes sent, which may be fewer than ``len(data)``.
        """
        raise NotImplementedError

    def send_all(self, data: Buffer, timeout: float) -> None:
        """Send all of ``data``, calling :meth:`send` as often as needed.

        One budget of ``timeout`` seconds covers every call. ``data`` may be
        any C-contiguous buffer; items larger than a byte are sent as their
        bytes. Empty data still calls :meth:`send` once. The data is never
        copied. On error there is no telling how much was sent.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``data`` is not a C-contiguous buffer.
            TimeoutError: the budget ran out before everything was sent.
            RuntimeError: :meth:`send` returned an impossible count.
            OSError: the transport failed, or is closed.
        """
        # The clock is read only when a first partial send forces a loop;
        # time spent in that first send is still charged to the budget.
        start = 0.0 if validate_timeout(timeout) == math.inf else monotonic()
        view = byte_view(data)
        total = len(view)
        sent = self.send(view, timeout)
        if sent == total:
            return
        deadline = math.inf if timeout == math.inf else start + timeout
        while True:
            if not 0 <= sent <= total:
                raise RuntimeError(f"send() returned {sent} for {total} bytes")
            if sent == total:
                return
            view = view[sent:]
            total -= sent
            sent = self.send(view, time_left(deadline))

    def send_all_from_iterable(self, iterable_of_data: Iterable[Buffer], timeout: float) -> None:
        """Send every chunk of ``iterable_of_data`` in order.

        The default joins the chunks and calls :meth:`send_all`. Empty
        chunks, trailing ones included, are allowed.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: the budget ran out before everything was sent.
            OSError: the transport failed, or is closed.
        """
        validate_timeout(timeout)
        self.send_all(b"".join(iterable_of_data), timeout)

    def send_all_with_ancillary(self, iterable_of_data: Iterable[Buffer], ancillary_data: Any, timeout: float) -> None:
        """Send all chunks and ``ancillary_data`` in ONE system call.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            UnsupportedOperation: the transport carries no ancillary data
                (the default).
            OSError: with :data:`errno.EMSGSIZE` when not everything could be
                sent at once; or the transport failed, or is closed.
            TimeoutError: nothing could be sent in time.
        """
        validate_timeout(timeout)
        raise UnsupportedOperation("This transport does not carry ancillary data")


class StreamTransport(StreamWriteTransport, StreamReadTransport):
    """A transport that reads and writes a continuous stream of bytes."""

    __slots__ = ()

    @abstractmethod
    def send_eof(self) -> None:
        """Close the write side once pending data is sent.

        Does nothing when the transport is closed.

        Raises:
            UnsupportedOperation: the transport cannot half-close.
            OSError: the transport failed.
        """
        raise NotImplementedError
