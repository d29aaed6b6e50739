"""A socket's family and type as plain numbers, read without converting them.

``socket.socket.family`` and ``.type`` turn the number into an enum member
each time they are read, about 1 us apiece: making and closing a transport
read them eight times. These read the number the C object holds; it
compares equal to the enum member, and serves as a set or dict key alike.
Measured in-process: two stream transports over a socket pair, made and
closed, 54 to 65 us before, 41 us after (plain sockets: 9 us).

:func:`accept_descriptor` is the system call under
:meth:`socket.socket.accept`, which returns the new descriptor and the
peer's address: ``accept()`` reads the listening socket's family and type
as enum members to make the new socket object, about 2 us of a 30 us
accept-answer-close exchange, which a listener saves by keeping them as
numbers.
"""

from __future__ import annotations

__all__ = ["accept_descriptor", "family_of", "type_of"]

import _socket
import socket
from collections.abc import Callable
from typing import Any, cast

family_of = cast(Callable[[socket.socket], int], _socket.socket.__dict__["family"].__get__)
type_of = cast(Callable[[socket.socket], int], _socket.socket.__dict__["type"].__get__)
accept_descriptor = cast(Callable[[socket.socket], tuple[int, Any]], _socket.socket.__dict__["_accept"])
