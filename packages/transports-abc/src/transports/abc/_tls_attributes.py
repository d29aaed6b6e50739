"""Typed attributes of TLS transports.

They live in the lowest layer because two layers provide them: the TLS
socket transport of ``transports.socket`` and the TLS-over-any-stream
transport of ``transports.composite``. Code that only reads them can
type-check against ``transports-abc`` alone.
"""

from __future__ import annotations

__all__ = ["TLSAttribute"]

from typing import TYPE_CHECKING, Any

from ._typed_attributes import TypedAttributeSet, typed_attribute

if TYPE_CHECKING:
    import ssl


class TLSAttribute(TypedAttributeSet):
    """Typed attributes of a TLS connection.

    Each getter raises :exc:`TypedAttributeLookupError` once the transport
    is closed, and when the attribute has no value (no peer certificate,
    no compression): ``extra(attribute, default)`` gives the default then.
    """

    sslcontext: ssl.SSLContext = typed_attribute()
    """The :class:`ssl.SSLContext` the connection was made with."""

    peercert: dict[str, Any] = typed_attribute()
    """The peer's certificate as :meth:`ssl.SSLSocket.getpeercert` decodes it;
    none (:exc:`TypedAttributeLookupError`) when the peer sent none or it was
    not verified."""

    cipher: tuple[str, str, int] = typed_attribute()
    """The cipher in use: (name, protocol version, secret bits)."""

    compression: str = typed_attribute()
    """The compression algorithm in use; none (:exc:`TypedAttributeLookupError`)
    when there is none, as with every OpenSSL build of today."""

    tls_version: str = typed_attribute()
    """The negotiated protocol version, e.g. ``"TLSv1.3"``."""

    standard_compatible: bool = typed_attribute()
    """Whether the transport performs, and demands, the closing handshake."""
