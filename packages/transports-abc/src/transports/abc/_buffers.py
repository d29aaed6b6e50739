"""Seeing any buffer as bytes, without copying."""

from __future__ import annotations

__all__ = ["BYTE_TYPES", "byte_buffers", "byte_view"]

from typing import Final

from typing_extensions import Buffer

#: The buffer types whose len() is their size in bytes, checked on hot paths
#: with ``type(data) in BYTE_TYPES`` (exact types: a subclass may redefine len).
BYTE_TYPES: Final = (bytes, bytearray)
_BYTE_TYPE_SET: Final = frozenset(BYTE_TYPES)


def byte_view(data: Buffer) -> memoryview:
    """Return a one-dimensional view of ``data``'s bytes, without copying.

    Items wider than a byte (``array('i')``) and several dimensions are
    cast to plain bytes. Private to the family: every layer that counts or
    slices the bytes of a caller's buffer uses it.

    Raises:
        TypeError: ``data`` is not a buffer, or is not C-contiguous.
    """
    view = memoryview(data)
    if not view.c_contiguous:
        raise TypeError("A C-contiguous buffer is required")
    if view.itemsize != 1 or view.ndim != 1:
        view = view.cast("B")
    return view


def byte_buffers(buffers: list[Buffer]) -> list[bytes | bytearray | memoryview]:
    """``buffers`` with every chunk's len() counting bytes, without copying data.

    The list itself when every chunk is ``bytes`` or ``bytearray`` (one
    C-speed pass over the types, no allocation); otherwise a new list of
    :func:`byte_view` views, since len() of other buffers may count items.

    Raises:
        TypeError: a chunk is not a C-contiguous buffer.
    """
    if _BYTE_TYPE_SET.issuperset(map(type, buffers)):
        return buffers  # type: ignore[return-value]  # checked just above
    return list(map(byte_view, buffers))
