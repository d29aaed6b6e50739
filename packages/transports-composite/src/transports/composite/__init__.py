"""Transports built from other transports.

:class:`StapledStreamTransport` and :class:`StapledDatagramTransport` route
every send-side call to one part and every receive-side call to the other,
for instance to speak over a child process's stdin and stdout as one
stream. :class:`TLSStreamTransport` runs TLS over any stream transport.
Depends on ``transports-abc`` only.
"""

from __future__ import annotations

__all__ = ["StapledDatagramTransport", "StapledStreamTransport", "TLSStreamTransport"]

from ._datagram import StapledDatagramTransport as StapledDatagramTransport
from ._stream import StapledStreamTransport as StapledStreamTransport
from ._tls import TLSStreamTransport as TLSStreamTransport
