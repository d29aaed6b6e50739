"""Datagram (packet-oriented, unreliable) transport interfaces."""

from __future__ import annotations

__all__ = ["DatagramReadTransport", "DatagramTransport", "DatagramWriteTransport"]

from abc import abstractmethod
from typing import Any

from typing_extensions import Buffer

from ._base import BaseTransport
from ._exceptions import UnsupportedOperation
from ._timeouts import validate_timeout
from ._validation import check_ancillary_bufsize


class DatagramReadTransport(BaseTransport):
    """A transport that reads whole packets."""

    __slots__ = ()

    @abstractmethod
    def recv(self, timeout: float) -> bytes:
        """Read and return the next packet.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: no packet arrived in time.
            OSError: the transport failed, or is closed.
        """
        raise NotImplementedError

    def recv_with_ancillary(self, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        """Read the next packet together with its ancillary data.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative, or ``timeout`` is
                negative or NaN.
            UnsupportedOperation: the transport carries no ancillary data
                (the default).
            TimeoutError: no packet arrived in time.
            OSError: the transport failed, or is closed.
        """
        check_ancillary_bufsize(ancillary_bufsize)
        validate_timeout(timeout)
        raise UnsupportedOperation("This transport does not carry ancillary data")


class DatagramWriteTransport(BaseTransport):
    """A transport that writes whole packets."""

    __slots__ = ()

    @abstractmethod
    def send(self, data: Buffer, timeout: float) -> None:
        """Send ``data`` as one packet.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: the packet could not be sent in time.
            OSError: with :data:`errno.EMSGSIZE` when ``data`` is too big for
                one packet; or the transport failed, or is closed.
        """
        raise NotImplementedError

    def send_with_ancillary(self, data: Buffer, ancillary_data: Any, timeout: float) -> None:
        """Send ``data`` as one packet together with ``ancillary_data``.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            UnsupportedOperation: the transport carries no ancillary data
                (the default).
            TimeoutError: the packet could not be sent in time.
            OSError: the transport failed, or is closed.
        """
        validate_timeout(timeout)
        raise UnsupportedOperation("This transport does not carry ancillary data")


class DatagramTransport(DatagramWriteTransport, DatagramReadTransport):
    """A transport that reads and writes whole packets."""

    __slots__ = ()
