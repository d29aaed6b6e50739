"""Stream and datagram transports over non-blocking sockets.

:class:`SocketStreamTransport` (TCP, ``AF_UNIX`` stream) and
:class:`SocketDatagramTransport` (UDP, ``AF_UNIX`` datagram) own their
socket; the :class:`SocketAttribute` typed attributes describe it through a
:class:`SocketProxy`. :class:`SSLStreamTransport` runs TLS on a stream
socket, described by the :class:`TLSAttribute` typed attributes too (the
``transports.abc`` class, re-exported here). Ancillary data travels as
``(level, type, data)`` tuples; the helpers here build and decode file
descriptors and credentials (Unix domain sockets) and packet info, TOS /
traffic class and receive timestamps (UDP). :func:`connect_tcp`,
:func:`connect_tls` and :func:`connect_unix` open connections within one
timeout budget. :class:`SocketDatagramEndpoint` sends to and receives from
any peer over one unconnected datagram socket; :func:`open_udp` opens
it, or a UDP transport connected to one peer. :class:`SocketListener`
(made by :func:`create_tcp_listener` or :func:`create_unix_listener`) and
:class:`TLSListener` accept connections; :func:`serve` serves each in a
thread of its own.
"""

from __future__ import annotations

__all__ = [
    "IP_PKTINFO",
    "MAX_DATAGRAM_BUFSIZE",
    "SCM_TIMESTAMPNS",
    "SO_TIMESTAMPNS",
    "Credentials",
    "INETSocketAttribute",
    "PacketInfo",
    "SSLStreamTransport",
    "SocketAttribute",
    "SocketDatagramEndpoint",
    "SocketDatagramTransport",
    "SocketListener",
    "SocketProxy",
    "SocketStreamTransport",
    "TLSAttribute",
    "TLSListener",
    "UNIXSocketAttribute",
    "ancillary_space_for_credentials",
    "ancillary_space_for_fds",
    "ancillary_space_for_ip_info",
    "connect_tcp",
    "connect_tls",
    "connect_unix",
    "create_tcp_listener",
    "create_unix_listener",
    "credentials_message",
    "fds_message",
    "open_udp",
    "packet_info_message",
    "read_credentials",
    "read_fds",
    "read_packet_info",
    "read_timestamp_ns",
    "read_traffic_class",
    "serve",
    "traffic_class_message",
]

from transports.abc import TLSAttribute as TLSAttribute

from ._ancillary import Credentials as Credentials
from ._ancillary import ancillary_space_for_credentials as ancillary_space_for_credentials
from ._ancillary import ancillary_space_for_fds as ancillary_space_for_fds
from ._ancillary import credentials_message as credentials_message
from ._ancillary import fds_message as fds_message
from ._ancillary import read_credentials as read_credentials
from ._ancillary import read_fds as read_fds
from ._attributes import INETSocketAttribute as INETSocketAttribute
from ._attributes import SocketAttribute as SocketAttribute
from ._attributes import UNIXSocketAttribute as UNIXSocketAttribute
from ._connect import connect_tcp as connect_tcp
from ._connect import connect_tls as connect_tls
from ._connect import connect_unix as connect_unix
from ._constants import IP_PKTINFO as IP_PKTINFO
from ._constants import MAX_DATAGRAM_BUFSIZE as MAX_DATAGRAM_BUFSIZE
from ._constants import SCM_TIMESTAMPNS as SCM_TIMESTAMPNS
from ._constants import SO_TIMESTAMPNS as SO_TIMESTAMPNS
from ._datagram import SocketDatagramTransport as SocketDatagramTransport
from ._endpoint import SocketDatagramEndpoint as SocketDatagramEndpoint
from ._endpoint import open_udp as open_udp
from ._ip_ancillary import PacketInfo as PacketInfo
from ._ip_ancillary import ancillary_space_for_ip_info as ancillary_space_for_ip_info
from ._ip_ancillary import packet_info_message as packet_info_message
from ._ip_ancillary import read_packet_info as read_packet_info
from ._ip_ancillary import read_timestamp_ns as read_timestamp_ns
from ._ip_ancillary import read_traffic_class as read_traffic_class
from ._ip_ancillary import traffic_class_message as traffic_class_message
from ._listeners import SocketListener as SocketListener
from ._listeners import TLSListener as TLSListener
from ._listeners import create_tcp_listener as create_tcp_listener
from ._listeners import create_unix_listener as create_unix_listener
from ._listeners import serve as serve
from ._proxy import SocketProxy as SocketProxy
from ._stream import SocketStreamTransport as SocketStreamTransport
from ._tls import SSLStreamTransport as SSLStreamTransport
