"""Stapled transports: one transport made of a send part and a receive part.

:class:`StapledStreamTransport` and :class:`StapledDatagramTransport` route
every send-side call to one part and every receive-side call to the other,
for instance to speak over a child process's stdin and stdout as one
stream. Depends on ``transports-abc`` only.
"""

from __future__ import annotations

__all__ = ["StapledDatagramTransport", "StapledStreamTransport"]

from ._datagram import StapledDatagramTransport as StapledDatagramTransport
from ._stream import StapledStreamTransport as StapledStreamTransport
