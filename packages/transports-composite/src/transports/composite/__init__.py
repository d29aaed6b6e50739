"""Transports built from other transports.

:class:`StapledStreamTransport` and :class:`StapledDatagramTransport` route
every send-side call to one part and every receive-side call to the other,
for instance to speak over a child process's stdin and stdout as one
stream. :class:`TLSStreamTransport` runs TLS over any stream transport.
:class:`BufferedStreamTransport` adds a read buffer to any stream
transport: exact reads and reads up to a delimiter, one timeout budget
each. Depends on ``transports-abc`` only.
"""

from __future__ import annotations

__all__ = [
    "BufferedStreamTransport",
    "DelimiterNotFoundError",
    "IncompleteReadError",
    "StapledDatagramTransport",
    "StapledStreamTransport",
    "TLSStreamTransport",
]

from ._buffered import BufferedStreamTransport as BufferedStreamTransport
from ._buffered import DelimiterNotFoundError as DelimiterNotFoundError
from ._buffered import IncompleteReadError as IncompleteReadError
from ._datagram import StapledDatagramTransport as StapledDatagramTransport
from ._stream import StapledStreamTransport as StapledStreamTransport
from ._tls import TLSStreamTransport as TLSStreamTransport
