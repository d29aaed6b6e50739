"""Typed attributes of socket transports, and the getters that serve them.

:class:`SocketAttribute` names four attributes every socket transport
provides, with the values the socket module gives. :class:`INETSocketAttribute`
and :class:`UNIXSocketAttribute` name attributes of their own, typed for
their family and provided only by sockets of that family: asked of another
socket, they raise :exc:`~transports.abc.TypedAttributeLookupError`. So
``host, port = transport.extra(INETSocketAttribute.peername)`` type
checks, and cannot quietly unpack a Unix socket's path.

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
from socket import AddressFamily
from typing import Any, Literal

from transports.abc import TypedAttributeLookupError, TypedAttributeSet, typed_attribute

from ._proxy import SocketProxy
from ._raw import family_of


class SocketAttribute(TypedAttributeSet):
    """Typed attributes of every socket transport.

    Each getter raises :exc:`~transports.abc.TypedAttributeLookupError`
    once the transport is closed.
    """

    socket: SocketProxy = typed_attribute()
    """A :class:`SocketProxy` of the socket: options and names, no I/O."""

    family: AddressFamily = typed_attribute()
    """The address family."""

    sockname: str | bytes | tuple[Any, ...] = typed_attribute()
    """The socket's own address, as :meth:`socket.socket.getsockname` gives it."""

    peername: str | bytes | tuple[Any, ...] = typed_attribute()
    """The peer's address, as :meth:`socket.socket.getpeername` gives it; unavailable when not connected."""


class INETSocketAttribute(SocketAttribute):
    """Attributes of ``AF_INET`` and ``AF_INET6`` sockets only.

    ``socket`` is :attr:`SocketAttribute.socket`; the others are markers of
    their own, which other families do not provide. Addresses are
    ``(host, port)`` for both families (an IPv6 socket's flow info and
    scope id are in :attr:`SocketAttribute.sockname` and
    :attr:`SocketAttribute.peername`); the peer's are unavailable when the
    socket is not connected.
    """

    family: Literal[AddressFamily.AF_INET, AddressFamily.AF_INET6] = typed_attribute()
    """:data:`socket.AF_INET` or :data:`socket.AF_INET6`."""

    sockname: tuple[str, int] = typed_attribute()
    """``(host, port)`` the socket is bound to."""

    peername: tuple[str, int] = typed_attribute()
    """``(host, port)`` of the connected peer."""

    local_host: str = typed_attribute()
    """The address the socket is bound to."""

    local_port: int = typed_attribute()
    """The port the socket is bound to."""

    remote_host: str = typed_attribute()
    """The connected peer's address."""

    remote_port: int = typed_attribute()
    """The connected peer's port."""


class UNIXSocketAttribute(SocketAttribute):
    """Attributes of ``AF_UNIX`` sockets only.

    ``socket`` is :attr:`SocketAttribute.socket`; the others are markers of
    their own, which other families do not provide.
    """

    family: Literal[AddressFamily.AF_UNIX] = typed_attribute()
    """:data:`socket.AF_UNIX`."""

    sockname: str | bytes = typed_attribute()
    """The path; ``""`` when unbound; :class:`bytes` for an abstract name."""

    peername: str | bytes = typed_attribute()
    """The peer's path; ``""`` when it is unbound (a :func:`socket.socketpair`); unavailable when not connected."""


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

    def get_family() -> AddressFamily:
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

    getters: dict[Any, Callable[[], Any]] = {
        SocketAttribute.socket: get_proxy,
        SocketAttribute.family: get_family,
        SocketAttribute.sockname: get_sockname,
        SocketAttribute.peername: get_peername,
    }
    family = family_of(sock)
    if family in (socket.AF_INET, socket.AF_INET6):
        getters.update(
            {
                INETSocketAttribute.family: get_family,
                INETSocketAttribute.sockname: lambda: get_sockname()[:2],
                INETSocketAttribute.peername: lambda: get_peername()[:2],
                INETSocketAttribute.local_host: lambda: get_sockname()[0],
                INETSocketAttribute.local_port: lambda: get_sockname()[1],
                INETSocketAttribute.remote_host: lambda: get_peername()[0],
                INETSocketAttribute.remote_port: lambda: get_peername()[1],
            }
        )
    elif family == socket.AF_UNIX:
        getters.update(
            {
                UNIXSocketAttribute.family: get_family,
                UNIXSocketAttribute.sockname: get_sockname,
                UNIXSocketAttribute.peername: get_peername,
            }
        )
    return getters


def _check_open(sock: socket.socket) -> None:
    if sock.fileno() < 0:
        raise TypedAttributeLookupError("The transport is closed")
