"""A stream transport stapled together from a write part and a read part."""

from __future__ import annotations

__all__ = ["StapledStreamTransport"]

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, final

from typing_extensions import Buffer

from transports.abc import StreamReadTransport, StreamTransport, StreamWriteTransport
from transports.abc._family import refuse_subclasses

from ._parts import check_part, close_both

_T_SendStreamTransport = TypeVar("_T_SendStreamTransport", bound=StreamWriteTransport)
_T_ReceiveStreamTransport = TypeVar("_T_ReceiveStreamTransport", bound=StreamReadTransport)


@final
@refuse_subclasses
class StapledStreamTransport(StreamTransport, Generic[_T_SendStreamTransport, _T_ReceiveStreamTransport]):
    """A stream transport made of two parts: one to send, one to receive.

    Every send-side method calls :attr:`send_transport`, every receive-side
    method calls :attr:`receive_transport`, with the same arguments, and
    returns what the part returned. Typical use: a child process's stdin
    (write end) and stdout (read end) seen as one bidirectional stream.

    The stapled transport owns both parts: :meth:`close` closes both.

    Its :attr:`extra_attributes` merge those of both parts; the receive
    part wins when both provide the same attribute.

    The class is generic over the two part types, so a type checker sees
    ``StapledStreamTransport[PipeWriteTransport, PipeReadTransport]`` and
    the exact type of each part.

    Parameters:
        send_transport: the part that sends.
        receive_transport: the part that receives. It may be the same
            object as ``send_transport``.

    Raises:
        TypeError: ``send_transport`` is not a
            :class:`~transports.abc.StreamWriteTransport`, or
            ``receive_transport`` is not a
            :class:`~transports.abc.StreamReadTransport`.
    """

    __slots__ = ("__receive_transport", "__send_transport")

    def __init__(self, send_transport: _T_SendStreamTransport, receive_transport: _T_ReceiveStreamTransport) -> None:
        check_part("send_transport", send_transport, StreamWriteTransport)
        check_part("receive_transport", receive_transport, StreamReadTransport)
        self.__send_transport: _T_SendStreamTransport = send_transport
        self.__receive_transport: _T_ReceiveStreamTransport = receive_transport

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} send_transport={self.__send_transport!r}"
            f" receive_transport={self.__receive_transport!r}>"
        )

    @property
    def send_transport(self) -> _T_SendStreamTransport:
        """The part that sends (read-only)."""
        return self.__send_transport

    @property
    def receive_transport(self) -> _T_ReceiveStreamTransport:
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

    def send_eof(self) -> None:
        """Close the sending direction.

        Calls ``send_transport.send_eof()`` when the send part is a
        :class:`~transports.abc.StreamTransport`. When it is not (a
        write-only part, such as the write end of a pipe), or when its
        ``send_eof()`` raises :exc:`NotImplementedError` (which includes
        :exc:`~transports.abc.UnsupportedOperation`), calls
        ``send_transport.close()`` instead: closing a write-only channel is
        how its reader gets an EOF. The receive part is never touched.

        Raises:
            OSError: whatever the send part's ``send_eof()`` or ``close()``
                raises (other than :exc:`NotImplementedError`, which
                triggers the fallback).
        """
        send_transport = self.__send_transport
        if isinstance(send_transport, StreamTransport):
            try:
                send_transport.send_eof()
            except NotImplementedError:
                pass
            else:
                return
        send_transport.close()

    # -------------------------------------------------------- sending side

    def send(self, data: Buffer, timeout: float) -> int:
        """Call ``send_transport.send(data, timeout)``.

        Raises:
            Exception: whatever the send part raises (see
                :meth:`StreamWriteTransport.send <transports.abc.StreamWriteTransport.send>`).

        Returns:
            The number of bytes the send part sent.
        """
        return self.__send_transport.send(data, timeout)

    def send_all(self, data: Buffer, timeout: float) -> None:
        """Call ``send_transport.send_all(data, timeout)``.

        The send part's own implementation runs (a socket part's, say),
        not the default loop of the ABC.

        Raises:
            Exception: whatever the send part raises (see
                :meth:`StreamWriteTransport.send_all <transports.abc.StreamWriteTransport.send_all>`).
        """
        self.__send_transport.send_all(data, timeout)

    def send_all_from_iterable(self, iterable_of_data: Iterable[Buffer], timeout: float) -> None:
        """Call ``send_transport.send_all_from_iterable(iterable_of_data, timeout)``.

        The iterable is passed on as it is, neither joined nor consumed here.

        Raises:
            Exception: whatever the send part raises (see
                :meth:`StreamWriteTransport.send_all_from_iterable
                <transports.abc.StreamWriteTransport.send_all_from_iterable>`).
        """
        self.__send_transport.send_all_from_iterable(iterable_of_data, timeout)

    def send_all_with_ancillary(self, iterable_of_data: Iterable[Buffer], ancillary_data: Any, timeout: float) -> None:
        """Call ``send_transport.send_all_with_ancillary(iterable_of_data, ancillary_data, timeout)``.

        Raises:
            UnsupportedOperation: the send part carries no ancillary data.
            Exception: whatever else the send part raises (see
                :meth:`StreamWriteTransport.send_all_with_ancillary
                <transports.abc.StreamWriteTransport.send_all_with_ancillary>`).
        """
        self.__send_transport.send_all_with_ancillary(iterable_of_data, ancillary_data, timeout)

    # ------------------------------------------------------ receiving side

    def recv(self, bufsize: int, timeout: float) -> bytes:
        """Call ``receive_transport.recv(bufsize, timeout)``.

        Raises:
            Exception: whatever the receive part raises (see
                :meth:`StreamReadTransport.recv <transports.abc.StreamReadTransport.recv>`).

        Returns:
            The bytes the receive part returned; ``b""`` for a positive
            ``bufsize`` means EOF.
        """
        return self.__receive_transport.recv(bufsize, timeout)

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        """Call ``receive_transport.recv_into(buffer, timeout)``.

        Raises:
            Exception: whatever the receive part raises (see
                :meth:`StreamReadTransport.recv_into <transports.abc.StreamReadTransport.recv_into>`).

        Returns:
            The number of bytes the receive part wrote into ``buffer``.
        """
        return self.__receive_transport.recv_into(buffer, timeout)

    def recv_with_ancillary(self, bufsize: int, ancillary_bufsize: int, timeout: float) -> tuple[bytes, Any]:
        """Call ``receive_transport.recv_with_ancillary(bufsize, ancillary_bufsize, timeout)``.

        Raises:
            UnsupportedOperation: the receive part carries no ancillary data.
            Exception: whatever else the receive part raises (see
                :meth:`StreamReadTransport.recv_with_ancillary
                <transports.abc.StreamReadTransport.recv_with_ancillary>`).

        Returns:
            What the receive part returned: the bytes and the ancillary data.
        """
        return self.__receive_transport.recv_with_ancillary(bufsize, ancillary_bufsize, timeout)

    def recv_with_ancillary_into(self, buffer: Buffer, ancillary_bufsize: int, timeout: float) -> tuple[int, Any]:
        """Call ``receive_transport.recv_with_ancillary_into(buffer, ancillary_bufsize, timeout)``.

        Raises:
            UnsupportedOperation: the receive part carries no ancillary data.
            Exception: whatever else the receive part raises (see
                :meth:`StreamReadTransport.recv_with_ancillary_into
                <transports.abc.StreamReadTransport.recv_with_ancillary_into>`).

        Returns:
            What the receive part returned: the byte count and the
            ancillary data.
        """
        return self.__receive_transport.recv_with_ancillary_into(buffer, ancillary_bufsize, timeout)

    # ---------------------------------------------------- typed attributes

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The attributes of both parts; the receive part's win on conflicts.

        Built anew on each access, so it follows the parts' own mappings.
        """
        return {**self.__send_transport.extra_attributes, **self.__receive_transport.extra_attributes}
