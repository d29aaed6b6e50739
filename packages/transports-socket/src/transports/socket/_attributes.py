"""Typed attributes of socket transports, and the getters that serve them.

:class:`SocketAttribute` names four attributes every socket transport
provides. :class:`INETSocketAttribute` and :class:`UNIXSocketAttribute`
do not add keys: they re-declare the SAME markers with narrower types, so
``transport.extra(INETSocketAttribute.peername)`` finds the value stored
under ``SocketAttribute.peername`` and is typed as an IP address tuple.
Pick the set that matches the family you created the socket with.

:func:`socket_attributes` builds the getters for any transport that owns a
socket (the TLS transport reuses it and adds its own): each getter raises
:exc:`~transports.abc.TypedAttributeLookupError` once the socket is
closed, or when the value does not exist (the peer of an unconnected
socket).
"""

from __future__ import annotations

__all__ = ["INETSocketAttribute", "SocketAttribute", "UNIXSocketAttribute", "socket_attributes"]

import socket
from collections.abc import Callable
from typing import Any, Literal

from transports.abc import TypedAttributeLookupError, TypedAttributeSet, typed_attribute

from ._proxy import SocketProxy


class SocketAttribute(TypedAttributeSet):
    """Typed attributes of every socket transport.

    Each getter raises :exc:`~transports.abc.TypedAttributeLookupError`
    once the transport is closed.
    """

    socket: SocketProxy = typed_attribute()
    """A :class:`SocketProxy` of the socket: options and names, no I/O."""

    family: int = typed_attribute()
    """The address family (a :class:`socket.AddressFamily` when known)."""

    sockname: str | bytes | tuple[Any, ...] = typed_attribute()
    """The socket's own address, as :meth:`socket.socket.getsockname` gives it."""

    peername: str | bytes | tuple[Any, ...] = typed_attribute()
    """The connected peer's address; unavailable when not connected."""


class INETSocketAttribute(SocketAttribute):
    """:class:`SocketAttribute` typed for ``AF_INET`` / ``AF_INET6`` sockets.

    The keys are the very markers of :class:`SocketAttribute`; only their
    types are narrower.
    """

    family: Literal[socket.AddressFamily.AF_INET, socket.AddressFamily.AF_INET6]
    """:data:`socket.AF_INET` or :data:`socket.AF_INET6`."""

    sockname: tuple[str, int] | tuple[str, int, int, int]
    """``(host, port)``, or ``(host, port, flowinfo, scope_id)`` for IPv6."""

    peername: tuple[str, int] | tuple[str, int, int, int]
    """``(host, port)``, or ``(host, port, flowinfo, scope_id)`` for IPv6."""


class UNIXSocketAttribute(SocketAttribute):
    """:class:`SocketAttribute` typed for ``AF_UNIX`` sockets.

    The keys are the very markers of :class:`SocketAttribute`; only their
    types are narrower.
    """

    family: Literal[socket.AddressFamily.AF_UNIX]
    """:data:`socket.AF_UNIX`."""

    sockname: str | bytes
    """The path; ``""`` when unbound; :class:`bytes` for an abstract name."""

    peername: str | bytes
    """The peer's path; ``""`` when it is unbound (a :func:`socket.socketpair`)."""


def socket_attributes(sock: socket.socket, proxy: SocketProxy) -> dict[Any, Callable[[], Any]]:
    """Return the getters of the :class:`SocketAttribute` keys for ``sock``.

    Parameters:
        sock: the owned socket; a getter called once it is closed raises
            :exc:`~transports.abc.TypedAttributeLookupError`.
        proxy: what :attr:`SocketAttribute.socket` gives.
    """

    def get_proxy() -> SocketProxy:
        _check_open(sock)
        return proxy

    def get_family() -> int:
        _check_open(sock)
        return sock.family

    def get_sockname() -> Any:
        _check_open(sock)
        try:
            return sock.getsockname()
        except OSError as exc:
            raise TypedAttributeLookupError(f"The socket has no name: {exc}") from exc

    def get_peername() -> Any:
        _check_open(sock)
        try:
            return sock.getpeername()
        except OSError as exc:
            raise TypedAttributeLookupError(f"The socket is not connected: {exc}") from exc

    return {
        SocketAttribute.socket: get_proxy,
        SocketAttribute.family: get_family,
        SocketAttribute.sockname: get_sockname,
        SocketAttribute.peername: get_peername,
    }


def _check_open(sock: socket.socket) -> None:
    if sock.fileno() < 0:
        raise TypedAttributeLookupError("The transport is closed")
