"""Exceptions shared by every transport layer."""

from __future__ import annotations

__all__ = ["TypedAttributeLookupError", "UnsupportedOperation", "closed_error"]

import errno
import os


class UnsupportedOperation(NotImplementedError):
    """The transport cannot perform this operation.

    Raised, for example, by the default ancillary-data methods and by
    ``send_eof()`` of transports that cannot half-close. It subclasses
    :exc:`NotImplementedError`, so code written against the standard
    library's convention catches it too.
    """


class TypedAttributeLookupError(LookupError):
    """A typed attribute is not provided, or its value cannot be had now.

    Raised by :meth:`TypedAttributeProvider.extra` when the attribute is
    absent, and by an attribute's getter when the value is unavailable
    (for instance the peer name of a closed socket).
    """


def closed_error(message: str | None = None) -> OSError:
    """Build the ``OSError(EBADF)`` of an operation on a closed transport.

    Private to the family (the layers are pinned to one version): every
    layer raises the same error, as a closed socket's methods do.
    """
    return OSError(errno.EBADF, message or os.strerror(errno.EBADF))
