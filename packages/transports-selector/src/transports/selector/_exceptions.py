"""The signals a non-blocking operation raises instead of blocking."""

from __future__ import annotations

__all__ = ["WouldBlockOnRead", "WouldBlockOnWrite"]


# The constructor is BaseException's own (C code): these are raised on every
# would-block, so a Python-level __init__ would cost on the hot path.
class WouldBlockOnRead(Exception):
    """The operation would block until ``fileno`` is readable.

    Constructed with the file descriptor: ``WouldBlockOnRead(fd)``.
    """

    @property
    def fileno(self) -> int:
        """The file descriptor to wait for."""
        fileno: int = self.args[0]
        return fileno


class WouldBlockOnWrite(Exception):
    """The operation would block until ``fileno`` is writable.

    Constructed with the file descriptor: ``WouldBlockOnWrite(fd)``.
    """

    @property
    def fileno(self) -> int:
        """The file descriptor to wait for."""
        fileno: int = self.args[0]
        return fileno
