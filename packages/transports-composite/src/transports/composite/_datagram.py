"""A datagram transport stapled together from a write part and a read part."""

from __future__ import annotations

__all__ = ["StapledDatagramTransport"]

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar, final

from typing_extensions import Buffer

from transports.abc import DatagramReadTransport, DatagramTransport, DatagramWriteTransport
from transports.abc._family import refuse_subclasses

from ._parts import check_part, close_both

_T_SendDatagramTransport = TypeVar("_T_SendDatagramTransport", bound=DatagramWriteTransport)
_T_ReceiveDatagramTransport = TypeVar("_T_ReceiveDatagramTransport", bound=DatagramReadTransport)


@final
@refuse_subclasses
class StapledDatagramTransport(DatagramTransport, Generic[_T_SendDatagramTransport, _T_ReceiveDatagramTransport]):
    """A datagram transport made of two parts: one to send, one to receive.

    Every send-side method calls :attr:`send_transport`, every receive-side
    method calls :attr:`receive_transport`, with the same arguments, and
    returns what the part returned.

    The stapled transport owns both parts: :meth:`close` closes both.

    Its :attr:`extra_attributes` merge those of both parts; the receive
    part wins when both provide the same attribute.

    The class is generic over the two part types, so a type checker sees
    the exact type of each part.

    Parameters:
        send_transport: the part that sends.
        receive_transport: the part that receives. It may be the same
            object as ``send_transport``.

    Raises:
        TypeError: ``send_transport`` is not a
            :class:`~transports.abc.DatagramWriteTransport`, or
            ``receive_transport`` is not a
            :class:`~transports.abc.DatagramReadTransport`.
    """

    __slots__ = ("__receive_transport", "__send_transport")

    def __init__(
        self, send_transport: _T_SendDatagramTransport, receive_transport: _T_ReceiveDatagramTransport
    ) -> None:
        check_part("send_transport", send_transport, DatagramWriteTransport)
        check_part("receive_transport", receive_transport, DatagramReadTransport)
        self.__send_transport: _T_SendDatagramTransport = send_transport
        self.__receive_transport: _T_ReceiveDatagramTransport = receive_transport

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} send_transport={self.__send_transport!r}"
            f" receive_transport={self.__receive_transport!r}>"
        )

    @property
    def send_transport(self) -> _T_SendDatagramTransport:
        """The part that sends (read-only)."""
        return self.__send_transport

    @property
    def receive_transport(self) -> _T_ReceiveDatagramTransport:
        """The part that receives (read-only)."""
        return self.__receive_transport

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        """Close both parts: :attr:`send_transport` first, then :attr:`receive_transport`.

        The receive part is closed even when closing the send part raises.
        Idempotent as long as the parts are (the ABC requires it).

        Raises:
            BaseException: whatever the one part that failed to close
                raised, re-raised unchanged.
            BaseExceptionGroup: both parts failed to close. The group
                (an :exc:`ExceptionGroup` when both errors are
                :exc:`Exception` instances) holds the send part's error,
                then the receive part's.
        """
        close_both(self.__send_transport, self.__receive_transport)

    def is_closed(self) -> bool:
        """Return :data:`True` when both parts are closed.

        Raises:
            Exception: whatever a part's ``is_closed()`` raises.
        """
        return self.__send_transport.is_closed() and self.__receive_transport.is_closed()

    # -------------------------------------------------------- sending side

    def send(self, data: Buffer, timeout: float) -> None:
        """Call ``send_transport.send(data, timeout)``.

        Raises:
            Exception: whatever the send part raises (see
                :meth:`DatagramWriteTransport.send <transports.abc.DatagramWriteTransport.send>`).
        """
        self.__send_transport.send(data, timeout)

    def send_with_ancillary(self, data: Buffer, ancillary_data: Any, timeout: float) -> None:
        """Call ``send_transport.send_with_ancillary(data, ancillary_data, timeout)``.

        Raises:
            UnsupportedOperation: the send part carries no ancillary data.
            Exception: whatever else the send part raises (see
                :meth:`DatagramWriteTransport.send_with_ancillary
                <transports.abc.DatagramWriteTransport.send_with_ancillary>`).
        """
        self.__send_transport.send_with_ancillary(data, ancillary_data, timeout)

    # ------------------------------------------------------ receiving side

    def recv(self, timeout: float) -> bytes:
        """Call ``receive_transport.recv(timeout)``.

        Raises:
            Exception: whatever the receive part raises (see
                :meth:`DatagramReadTransport.recv <transports.abc.DatagramReadTransport.recv>`).

        Returns:
            The packet the receive part returned.
        """
        return self.__receive_transport.recv(timeout)

    def recv_with_ancillary(self, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        """Call ``receive_transport.recv_with_ancillary(ancillary_bufsize, timeout)``.

        Raises:
            UnsupportedOperation: the receive part carries no ancillary data.
            Exception: whatever else the receive part raises (see
                :meth:`DatagramReadTransport.recv_with_ancillary
                <transports.abc.DatagramReadTransport.recv_with_ancillary>`).

        Returns:
            What the receive part returned: the packet and the ancillary data.
        """
        return self.__receive_transport.recv_with_ancillary(ancillary_bufsize, timeout)

    # ---------------------------------------------------- typed attributes

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The attributes of both parts; the receive part's win on conflicts.

        Built anew on each access, so it follows the parts' own mappings.
        """
        return {**self.__send_transport.extra_attributes, **self.__receive_transport.extra_attributes}
