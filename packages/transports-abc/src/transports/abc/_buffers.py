"""Seeing any buffer as bytes, without copying."""

from __future__ import annotations

__all__ = ["BYTE_TYPES", "all_sent", "buffer_type_error", "byte_buffers", "byte_view", "writable_nbytes"]

from typing import Final

from typing_extensions import Buffer

#: The buffer types whose len() is their size in bytes, checked on hot paths
#: with ``type(data) in BYTE_TYPES`` (exact types: a subclass may redefine len).
BYTE_TYPES: Final = (bytes, bytearray)
_BYTE_TYPE_SET: Final = frozenset(BYTE_TYPES)

# bytes.__sizeof__(x) is x's header plus its length, read from the object
# itself (a subclass's __len__ cannot change it), and a TypeError for any
# other type: summing it over a list of bytes counts their bytes in one
# C-speed pass, about as fast as sum(map(len, ...)) and with the type check
# included. Checked here, once, on the running interpreter.
_bytes_size: Final = bytes.__sizeof__


def _bytes_header() -> int | None:
    """``bytes.__sizeof__(b"")``, or :data:`None` where sizes are not header plus length."""
    try:
        header = _bytes_size(b"")
        if all(_bytes_size(b"x" * n) - header == n for n in (1, 100, 65536)):
            return header
    except Exception:  # an interpreter whose bytes.__sizeof__ does not work so
        pass
    return None


_BYTES_HEADER: Final = _bytes_header()


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


def buffer_type_error(exc: BufferError) -> TypeError:
    """The :exc:`TypeError` to raise for a buffer that a system call refused.

    ``os`` and ``socket`` functions raise :exc:`BufferError` for a buffer
    that is not C-contiguous (or, to read into, not writable), where the
    transports document a :exc:`TypeError`, as for any other unusable
    argument: every transport catches the former and raises this instead.
    Private to the family.
    """
    return TypeError(f"A C-contiguous buffer is required (writable, to receive into): {exc}")


def writable_nbytes(buffer: Buffer) -> int:
    """Return the size in bytes of ``buffer``, a receive's destination, checked first.

    For receives that wait before their first read: the read would refuse
    a read-only or non-contiguous buffer, but only after the wait. Private
    to the family.

    Raises:
        TypeError: ``buffer`` is not a buffer, is read-only, or is not
            C-contiguous.
    """
    view = memoryview(buffer)
    if view.readonly or not view.c_contiguous:
        raise TypeError(f"A writable C-contiguous buffer is required, not this {type(buffer).__name__}")
    return view.nbytes


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


def all_sent(buffers: list[Buffer], sent: int) -> bool:
    """Whether ``sent`` bytes are all the bytes of ``buffers``.

    For the check after a gather write. When every chunk is ``bytes`` and
    all were sent, one C-speed pass over the list answers (see
    ``_bytes_size`` above): a subclass with a bigger header can only make
    the sum larger, so an equal sum proves that everything went. Otherwise
    the chunks are counted exactly through :func:`byte_buffers`.

    Raises:
        TypeError: a chunk is not a C-contiguous buffer.
    """
    if _BYTES_HEADER is not None:
        try:
            if sum(map(_bytes_size, buffers)) - _BYTES_HEADER * len(buffers) == sent:
                return True
        except TypeError:  # a chunk that is not bytes
            pass
    return sum(map(len, byte_buffers(buffers))) == sent
