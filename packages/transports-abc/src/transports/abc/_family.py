"""What the other layers of the family may use of this one, besides its public names.

``transports.selector``, ``transports.socket`` and ``transports.composite``
import these helpers from here and from nowhere else in this package (a
repository test checks it), so that the modules behind them can move or
change without breaking a sibling. They are not public: their names, and
what they do, may change in any release. Each is documented where it is
defined.
"""

from __future__ import annotations

__all__ = [
    "BYTE_TYPES",
    "TLS_SEND_LIMIT",
    "all_sent",
    "buffer_type_error",
    "byte_buffers",
    "byte_view",
    "check_ancillary_bufsize",
    "check_bufsize",
    "closed_error",
    "peer_closed_error",
    "refuse_subclasses",
    "tls_attributes",
    "tls_options",
    "writable_nbytes",
]

from typing import TYPE_CHECKING, Any

from ._buffers import BYTE_TYPES, all_sent, buffer_type_error, byte_buffers, byte_view, writable_nbytes
from ._exceptions import closed_error
from ._final import refuse_subclasses
from ._validation import check_ancillary_bufsize, check_bufsize

# The TLS helpers import ssl, which the layers without TLS (pipes, plain
# sockets) should not pay for: they are loaded when first imported from here.
_TLS_NAMES = frozenset({"TLS_SEND_LIMIT", "peer_closed_error", "tls_attributes", "tls_options"})

if TYPE_CHECKING:
    from ._tls import TLS_SEND_LIMIT, peer_closed_error, tls_attributes, tls_options
else:

    def __getattr__(name: str) -> Any:
        if name in _TLS_NAMES:
            from . import _tls

            return getattr(_tls, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
