"""Exceptions shared by every transport layer."""

from __future__ import annotations

__all__ = ["TypedAttributeLookupError", "UnsupportedOperation"]


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
