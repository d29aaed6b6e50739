"""SocketProxy: what a transport lets its users see of its socket.

A transport owns its socket: it sets the descriptor's mode, it
decides when it is closed, and its buffering (TLS records, for instance)
assumes nobody else reads or writes. Handing out the socket itself would
let callers break all of that by accident. The proxy exposes the
harmless part only: the descriptor number, options, names and the
address family, type and protocol. It has no I/O, blocking-mode or
closing methods at all (not even ones that raise), so a mistake fails
loudly with :exc:`AttributeError` and type checkers catch it first.
"""

from __future__ import annotations

__all__ = ["SocketProxy"]

import socket
from typing import Any, final, overload

from typing_extensions import Buffer

from transports.abc._family import refuse_subclasses


@final
@refuse_subclasses
class SocketProxy:
    """A read-mostly view of a transport's socket, without any I/O.

    Offers :meth:`fileno`, :meth:`getsockopt`, :meth:`setsockopt`,
    :meth:`getsockname`, :meth:`getpeername` and the :attr:`family`,
    :attr:`type` and :attr:`proto` properties, which behave as the
    :class:`socket.socket` methods of the same names. Once the transport is
    closed, :meth:`fileno` returns ``-1`` and the other methods raise
    :exc:`OSError` (``EBADF``).

    Parameters:
        sock: the socket to expose.
    """

    __slots__ = ("__sock", "__weakref__")

    def __init__(self, sock: socket.socket) -> None:
        self.__sock = sock

    def __repr__(self) -> str:
        sock = self.__sock
        family, kind = sock.family, sock.type
        family_name = getattr(family, "name", family)
        kind_name = getattr(kind, "name", kind)
        return f"<SocketProxy fd={sock.fileno()} family={family_name} type={kind_name} proto={sock.proto}>"

    def fileno(self) -> int:
        """The socket's file descriptor, or ``-1`` once it is closed."""
        return self.__sock.fileno()

    @overload
    def getsockopt(self, level: int, optname: int, /) -> int: ...

    @overload
    def getsockopt(self, level: int, optname: int, buflen: int, /) -> bytes: ...

    def getsockopt(self, level: int, optname: int, buflen: int | None = None, /) -> int | bytes:
        """Return the value of a socket option, as :meth:`socket.socket.getsockopt`.

        Raises:
            OSError: the option is unknown, or the socket is closed.
        """
        if buflen is None:
            return self.__sock.getsockopt(level, optname)
        return self.__sock.getsockopt(level, optname, buflen)

    @overload
    def setsockopt(self, level: int, optname: int, value: int | Buffer, /) -> None: ...

    @overload
    def setsockopt(self, level: int, optname: int, value: None, optlen: int, /) -> None: ...

    def setsockopt(self, level: int, optname: int, value: int | Buffer | None, optlen: int | None = None, /) -> None:
        """Set a socket option, as :meth:`socket.socket.setsockopt`.

        Raises:
            TypeError: ``optlen`` given with a value other than :data:`None`,
                or a :data:`None` value without ``optlen``.
            OSError: the option or value is refused, or the socket is closed.
        """
        if optlen is None:
            if value is None:
                raise TypeError("setsockopt() needs optlen when value is None")
            self.__sock.setsockopt(level, optname, value)
        else:
            if value is not None:
                raise TypeError("setsockopt() takes optlen only when value is None")
            self.__sock.setsockopt(level, optname, None, optlen)

    def getsockname(self) -> Any:
        """The socket's own address, as :meth:`socket.socket.getsockname`.

        Raises:
            OSError: the socket is closed.
        """
        return self.__sock.getsockname()

    def getpeername(self) -> Any:
        """The address of the connected peer, as :meth:`socket.socket.getpeername`.

        Raises:
            OSError: ``ENOTCONN`` when not connected; ``EBADF`` once closed.
        """
        return self.__sock.getpeername()

    @property
    def family(self) -> socket.AddressFamily:
        """The address family, e.g. :data:`socket.AF_INET`."""
        return self.__sock.family

    @property
    def type(self) -> socket.SocketKind:
        """The socket type, e.g. :data:`socket.SOCK_STREAM`."""
        return self.__sock.type

    @property
    def proto(self) -> int:
        """The protocol number."""
        return self.__sock.proto
