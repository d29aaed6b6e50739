"""Argument checks shared by the default methods of the ABCs."""

from __future__ import annotations

__all__ = ["check_ancillary_bufsize", "check_bufsize"]


def check_bufsize(bufsize: int) -> None:
    if bufsize < 0:
        raise ValueError("bufsize must not be negative")


def check_ancillary_bufsize(ancillary_bufsize: int) -> None:
    if ancillary_bufsize < 0:
        raise ValueError("ancillary_bufsize must not be negative")
