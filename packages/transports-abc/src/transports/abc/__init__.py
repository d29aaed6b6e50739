"""Transport interfaces: the contract every ``transports`` layer implements.

Install ``transports-abc`` alone to type-check against these interfaces or
to write a transport of your own.
"""

from __future__ import annotations

__all__ = [
    "BaseTransport",
    "DatagramReadTransport",
    "DatagramTransport",
    "DatagramWriteTransport",
    "StreamReadTransport",
    "StreamTransport",
    "StreamWriteTransport",
    "TLSAttribute",
    "TypedAttributeLookupError",
    "TypedAttributeProvider",
    "TypedAttributeSet",
    "UnsupportedOperation",
    "deadline_after",
    "time_left",
    "timeout_error",
    "typed_attribute",
    "validate_timeout",
]

from ._base import BaseTransport as BaseTransport
from ._datagram import DatagramReadTransport as DatagramReadTransport
from ._datagram import DatagramTransport as DatagramTransport
from ._datagram import DatagramWriteTransport as DatagramWriteTransport
from ._exceptions import TypedAttributeLookupError as TypedAttributeLookupError
from ._exceptions import UnsupportedOperation as UnsupportedOperation
from ._stream import StreamReadTransport as StreamReadTransport
from ._stream import StreamTransport as StreamTransport
from ._stream import StreamWriteTransport as StreamWriteTransport
from ._timeouts import deadline_after as deadline_after
from ._timeouts import time_left as time_left
from ._timeouts import timeout_error as timeout_error
from ._timeouts import validate_timeout as validate_timeout
from ._tls_attributes import TLSAttribute as TLSAttribute
from ._typed_attributes import TypedAttributeProvider as TypedAttributeProvider
from ._typed_attributes import TypedAttributeSet as TypedAttributeSet
from ._typed_attributes import typed_attribute as typed_attribute
