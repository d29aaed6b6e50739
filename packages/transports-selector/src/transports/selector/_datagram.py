"""Selector-driven datagram transports: blocking methods over non-blocking ones."""

from __future__ import annotations

__all__ = ["SelectorDatagramReadTransport", "SelectorDatagramTransport", "SelectorDatagramWriteTransport"]

from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

from typing_extensions import Buffer

from transports.abc import (
    DatagramReadTransport,
    DatagramTransport,
    DatagramWriteTransport,
    UnsupportedOperation,
    validate_timeout,
)
from transports.abc._family import check_ancillary_bufsize

from ._base import SelectorBaseTransport


class SelectorDatagramReadTransport(SelectorBaseTransport, DatagramReadTransport):
    """A packet reader whose blocking methods retry non-blocking ones."""

    __slots__ = ()

    @abstractmethod
    def recv_noblock(self) -> bytes:
        """Read the next packet without blocking.

        Raises:
            WouldBlockOnRead: no packet yet.
            OSError: the transport failed, or is closed.
        """
        raise NotImplementedError

    def recv(self, timeout: float) -> bytes:
        """Read the next packet, retrying :meth:`recv_noblock`.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: no packet arrived in time.
            OSError: the transport failed, or is closed.
        """
        return self._retry(self.recv_noblock, timeout)[0]

    def recv_noblock_with_ancillary(self, ancillary_bufsize: int) -> tuple[bytes, Any]:
        """Read the next packet and its ancillary data without blocking.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative.
            UnsupportedOperation: no ancillary data on this transport (default).
            WouldBlockOnRead: no packet yet.
            OSError: the transport failed, or is closed.
        """
        check_ancillary_bufsize(ancillary_bufsize)
        raise UnsupportedOperation("This transport does not carry ancillary data")

    def recv_with_ancillary(self, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        """Retry :meth:`recv_noblock_with_ancillary` within ``timeout``.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative, or ``timeout`` is
                negative or NaN.
            UnsupportedOperation: no ancillary data on this transport.
            TimeoutError: no packet arrived in time.
            OSError: the transport failed, or is closed.
        """
        return self._retry(lambda: self.recv_noblock_with_ancillary(ancillary_bufsize), timeout)[0]


class SelectorDatagramWriteTransport(SelectorBaseTransport, DatagramWriteTransport):
    """A packet writer whose blocking methods retry non-blocking ones."""

    __slots__ = ()

    @abstractmethod
    def send_noblock(self, data: Buffer) -> None:
        """Send ``data`` as one packet without blocking.

        Raises:
            WouldBlockOnWrite: the packet cannot be sent now.
            OSError: ``EMSGSIZE`` when too big for one packet; or the
                transport failed, or is closed.
        """
        raise NotImplementedError

    def send(self, data: Buffer, timeout: float) -> None:
        """Send one packet, retrying :meth:`send_noblock`.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: the packet could not be sent in time.
            OSError: ``EMSGSIZE`` when too big for one packet; or the
                transport failed, or is closed.
        """
        self._retry(lambda: self.send_noblock(data), timeout)

    def send_noblock_with_ancillary(self, data: Buffer, ancillary_data: Any) -> None:
        """Send one packet with ``ancillary_data`` without blocking.

        Raises:
            UnsupportedOperation: no ancillary data on this transport (default).
            WouldBlockOnWrite: the packet cannot be sent now.
            OSError: the transport failed, or is closed.
        """
        raise UnsupportedOperation("This transport does not carry ancillary data")

    def send_with_ancillary(self, data: Buffer, ancillary_data: Any, timeout: float) -> None:
        """Retry :meth:`send_noblock_with_ancillary` within ``timeout``.

        A one-shot iterator of ancillary items is read into a list first, so
        that a retry sends the same thing.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            UnsupportedOperation: no ancillary data on this transport.
            TimeoutError: the packet could not be sent in time.
            OSError: the transport failed, or is closed.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        if isinstance(ancillary_data, Iterator):
            ancillary_data = list(ancillary_data)
        self._retry(lambda: self.send_noblock_with_ancillary(data, ancillary_data), timeout)


class SelectorDatagramTransport(SelectorDatagramWriteTransport, SelectorDatagramReadTransport, DatagramTransport):
    """A datagram transport whose blocking methods retry non-blocking ones."""

    __slots__ = ()
