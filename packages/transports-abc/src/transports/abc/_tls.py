"""What the two TLS transports share: option checks and typed attributes.

``transports.socket.SSLStreamTransport`` (OpenSSL on a socket) and
``transports.composite.TLSStreamTransport`` (OpenSSL over memory BIOs on any
stream transport) take the same options and expose the same
:class:`TLSAttribute` values. This private module is the one place for
both; it is the lowest layer the two packages have in common. It imports
:mod:`ssl`, so ``transports.abc`` itself does not import it.
"""

from __future__ import annotations

__all__ = ["TLS_SEND_LIMIT", "TLSOptions", "peer_closed_error", "tls_attributes", "tls_options"]

import errno
import ssl
from collections.abc import Callable
from typing import Any, Final, NamedTuple, cast

from ._exceptions import TypedAttributeLookupError
from ._timeouts import validate_timeout
from ._tls_attributes import TLSAttribute

#: The most plaintext one ``send()`` of either TLS transport hands to
#: OpenSSL: four full records.
TLS_SEND_LIMIT: Final = 64 * 1024

DEFAULT_HANDSHAKE_TIMEOUT: Final = 60.0
DEFAULT_SHUTDOWN_TIMEOUT: Final = 30.0


def peer_closed_error() -> ConnectionResetError:
    """The error of a send after the peer's close_notify, in both TLS transports."""
    return ConnectionResetError(errno.ECONNRESET, "The peer closed the TLS connection (close_notify received)")


class TLSOptions(NamedTuple):
    handshake_timeout: float
    shutdown_timeout: float
    server_side: bool


def tls_options(
    ssl_context: ssl.SSLContext,
    handshake_timeout: float | None,
    shutdown_timeout: float | None,
    server_side: bool | None,
    server_hostname: str | None,
) -> TLSOptions:
    """Check the constructor options of a TLS transport and fill in defaults.

    ``server_side=None`` means a server when no ``server_hostname`` is given.

    Raises:
        TypeError: ``ssl_context`` is not an :class:`ssl.SSLContext`.
        ValueError: a timeout is negative or NaN; a server was given a
            ``server_hostname``; a client whose context checks host names
            was given none.
    """
    if not isinstance(ssl_context, ssl.SSLContext):
        raise TypeError(f"Expected an ssl.SSLContext, got {type(ssl_context).__qualname__}")
    handshake = validate_timeout(DEFAULT_HANDSHAKE_TIMEOUT if handshake_timeout is None else handshake_timeout)
    shutdown = validate_timeout(DEFAULT_SHUTDOWN_TIMEOUT if shutdown_timeout is None else shutdown_timeout)
    if server_side is None:
        server_side = server_hostname is None
    if server_side and server_hostname is not None:
        raise ValueError("server_hostname can only be given to a client (server_side=False)")
    if not server_side and server_hostname is None and ssl_context.check_hostname:
        raise ValueError("check_hostname requires server_hostname")
    return TLSOptions(handshake, shutdown, bool(server_side))


def tls_attributes(
    open_tls: Callable[[], ssl.SSLSocket | ssl.SSLObject],
    standard_compatible: bool,
) -> dict[Any, Callable[[], Any]]:
    """The getters of the :class:`TLSAttribute` keys.

    ``open_tls()`` returns the TLS object, or raises
    :exc:`TypedAttributeLookupError` once the transport is closed. The
    getters are closures, not methods: a transport may hold this mapping
    without a reference cycle through itself.
    """

    def get_sslcontext() -> ssl.SSLContext:
        return open_tls().context

    def get_peercert() -> dict[str, Any]:
        # getpeercert() gives {} for a certificate that was not verified.
        certificate = open_tls().getpeercert()
        if not certificate:
            raise TypedAttributeLookupError("The peer sent no certificate, or it was not verified")
        return cast("dict[str, Any]", certificate)

    def get_cipher() -> tuple[str, str, int]:
        cipher = open_tls().cipher()
        if cipher is None:
            raise TypedAttributeLookupError("No cipher negotiated")
        return cipher

    def get_compression() -> str:
        compression = open_tls().compression()
        if compression is None:
            raise TypedAttributeLookupError("No compression in use")
        return compression

    def get_tls_version() -> str:
        version = open_tls().version()
        if version is None:
            raise TypedAttributeLookupError("No TLS version negotiated")
        return version

    def get_standard_compatible() -> bool:
        open_tls()
        return standard_compatible

    return {
        TLSAttribute.sslcontext: get_sslcontext,
        TLSAttribute.peercert: get_peercert,
        TLSAttribute.cipher: get_cipher,
        TLSAttribute.compression: get_compression,
        TLSAttribute.tls_version: get_tls_version,
        TLSAttribute.standard_compatible: get_standard_compatible,
    }
