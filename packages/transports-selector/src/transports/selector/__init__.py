"""Transports that drive non-blocking descriptors, and pipe transports.

The ``Selector*`` bases turn non-blocking operations (``*_noblock``, which
raise :class:`WouldBlockOnRead` / :class:`WouldBlockOnWrite`) into the
blocking, timeout-taking methods of :mod:`transports.abc`.
"""

from __future__ import annotations

__all__ = [
    "PipeAttribute",
    "PipeReadTransport",
    "PipeWriteTransport",
    "SelectorBaseTransport",
    "SelectorDatagramReadTransport",
    "SelectorDatagramTransport",
    "SelectorDatagramWriteTransport",
    "SelectorStreamReadTransport",
    "SelectorStreamTransport",
    "SelectorStreamWriteTransport",
    "WouldBlockOnRead",
    "WouldBlockOnWrite",
]

from ._base import SelectorBaseTransport as SelectorBaseTransport
from ._datagram import SelectorDatagramReadTransport as SelectorDatagramReadTransport
from ._datagram import SelectorDatagramTransport as SelectorDatagramTransport
from ._datagram import SelectorDatagramWriteTransport as SelectorDatagramWriteTransport
from ._exceptions import WouldBlockOnRead as WouldBlockOnRead
from ._exceptions import WouldBlockOnWrite as WouldBlockOnWrite
from ._pipes import PipeAttribute as PipeAttribute
from ._pipes import PipeReadTransport as PipeReadTransport
from ._pipes import PipeWriteTransport as PipeWriteTransport
from ._stream import SelectorStreamReadTransport as SelectorStreamReadTransport
from ._stream import SelectorStreamTransport as SelectorStreamTransport
from ._stream import SelectorStreamWriteTransport as SelectorStreamWriteTransport
