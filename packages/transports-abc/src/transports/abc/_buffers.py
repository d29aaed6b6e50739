"""Seeing any buffer as bytes, without copying."""

from __future__ import annotations

__all__ = ["byte_view"]

from typing_extensions import Buffer


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
