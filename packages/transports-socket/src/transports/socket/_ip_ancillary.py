"""Control messages of IP datagram sockets: packet info, traffic class, timestamps.

Beyond the reference (which carries ancillary data on Unix sockets only),
:class:`SocketDatagramTransport` passes control messages on UDP sockets
too. The caller enables what it wants with ``setsockopt`` as usual, reads
the messages with ``recv_with_ancillary`` and decodes them here:

====================  ====================================  ===========================
what                  enable (IPv4 / IPv6)                  decode
====================  ====================================  ===========================
destination, iface    ``IPPROTO_IP, IP_PKTINFO`` /          :func:`read_packet_info`
                      ``IPPROTO_IPV6, IPV6_RECVPKTINFO``
TOS / traffic class   ``IPPROTO_IP, IP_RECVTOS`` /          :func:`read_traffic_class`
                      ``IPPROTO_IPV6, IPV6_RECVTCLASS``
kernel receive time   ``SOL_SOCKET, SO_TIMESTAMPNS``        :func:`read_timestamp_ns`
====================  ====================================  ===========================

To send, :func:`packet_info_message` picks the source address (and
interface) of one packet and :func:`traffic_class_message` its TOS /
traffic class. :func:`ancillary_space_for_ip_info` sizes a receive buffer
for all three messages at once.

``IP_PKTINFO`` and ``SO_TIMESTAMPNS`` come from :mod:`transports.socket`
(Python 3.11 lacks the first, every version the second); the others are in
:mod:`socket`.
"""

from __future__ import annotations

__all__ = [
    "PacketInfo",
    "ancillary_space_for_ip_info",
    "packet_info_message",
    "read_packet_info",
    "read_timestamp_ns",
    "read_traffic_class",
    "traffic_class_message",
]

import socket
import struct
from collections.abc import Iterable
from typing import Final, NamedTuple

from typing_extensions import Buffer

from ._constants import IP_PKTINFO, SCM_TIMESTAMPNS

_IPV6_PKTINFO: Final[int] = getattr(socket, "IPV6_PKTINFO", -1)
_IP_TOS: Final[int] = getattr(socket, "IP_TOS", -1)
_IPV6_TCLASS: Final[int] = getattr(socket, "IPV6_TCLASS", -1)

# struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst; struct in_addr ipi_addr; }
_IN_PKTINFO: Final = struct.Struct("=i4s4s")
# struct in6_pktinfo { struct in6_addr ipi6_addr; unsigned int ipi6_ifindex; }
_IN6_PKTINFO: Final = struct.Struct("=16sI")
_INT: Final = struct.Struct("=i")
# struct timespec { time_t tv_sec; long tv_nsec; } as this system lays it out.
_TIMESPEC: Final = struct.Struct("@ll")


class PacketInfo(NamedTuple):
    """An IP address and an interface index, from or for ``IP_PKTINFO`` / ``IPV6_PKTINFO``.

    Received (:func:`read_packet_info`): the packet's destination address
    (the address the peer sent to, e.g. which of several local addresses of
    a wildcard-bound socket) and the index of the interface it arrived on.

    Sent (:func:`packet_info_message`): the source address to send from,
    and the outgoing interface (``0``: let the routing table decide).
    """

    address: str
    """An IPv4 or IPv6 address in text form."""

    interface: int
    """An interface index (see :func:`socket.if_nametoindex`)."""


def read_packet_info(ancillary_data: Iterable[tuple[int, int, Buffer]]) -> PacketInfo | None:
    """Return the ``IP_PKTINFO`` / ``IPV6_PKTINFO`` of a received packet, or :data:`None`.

    Parameters:
        ancillary_data: ``(level, type, data)`` tuples from a receive.

    Raises:
        ValueError: a packet-info message has the wrong size.
    """
    for level, kind, data in ancillary_data:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
            interface, _local, destination = _IN_PKTINFO.unpack(_exact(data, _IN_PKTINFO.size, "IP_PKTINFO"))
            return PacketInfo(socket.inet_ntop(socket.AF_INET, destination), interface)
        if level == socket.IPPROTO_IPV6 and kind == _IPV6_PKTINFO:
            address, interface = _IN6_PKTINFO.unpack(_exact(data, _IN6_PKTINFO.size, "IPV6_PKTINFO"))
            return PacketInfo(socket.inet_ntop(socket.AF_INET6, address), interface)
    return None


def packet_info_message(address: str, interface: int = 0) -> tuple[int, int, bytes]:
    """Build the control message that sends one packet from ``address``.

    The family follows the address: an IPv4 address gives
    ``(IPPROTO_IP, IP_PKTINFO, ...)``, an IPv6 one
    ``(IPPROTO_IPV6, IPV6_PKTINFO, ...)``. The address must be one of this
    host's (or the socket needs ``IP_FREEBIND``/``IP_TRANSPARENT``);
    ``"0.0.0.0"`` / ``"::"`` leave the choice to the system.

    Parameters:
        address: the source address.
        interface: the outgoing interface index; ``0`` for any.

    Raises:
        ValueError: ``address`` is not an IPv4 or IPv6 address, or
            ``interface`` is negative.
    """
    if interface < 0:
        raise ValueError("interface must not be negative")
    try:
        packed = socket.inet_pton(socket.AF_INET, address)
    except OSError:
        pass
    else:
        # ipi_spec_dst chooses the source; ipi_addr is ignored when sending.
        return socket.IPPROTO_IP, IP_PKTINFO, _IN_PKTINFO.pack(interface, packed, bytes(4))
    try:
        packed = socket.inet_pton(socket.AF_INET6, address)
    except OSError:
        raise ValueError(f"Not an IPv4 or IPv6 address: {address!r}") from None
    return socket.IPPROTO_IPV6, _IPV6_PKTINFO, _IN6_PKTINFO.pack(packed, interface)


def read_traffic_class(ancillary_data: Iterable[tuple[int, int, Buffer]]) -> int | None:
    """Return the IPv4 TOS byte or IPv6 traffic class of a packet, or :data:`None`.

    Both carry the DSCP (upper six bits) and ECN (lower two bits) fields.

    Parameters:
        ancillary_data: ``(level, type, data)`` tuples from a receive.

    Raises:
        ValueError: a TOS / traffic-class message has the wrong size.
    """
    for level, kind, data in ancillary_data:
        if (level == socket.IPPROTO_IP and kind == _IP_TOS) or (level == socket.IPPROTO_IPV6 and kind == _IPV6_TCLASS):
            view = memoryview(data).cast("B")
            if len(view) == 1:  # Linux sends IP_TOS as one byte
                return view[0]
            (value,) = _INT.unpack(_exact(view, _INT.size, "IP_TOS/IPV6_TCLASS"))
            return int(value)
    return None


def traffic_class_message(traffic_class: int, family: int = socket.AF_INET) -> tuple[int, int, bytes]:
    """Build the control message that sets one packet's TOS / traffic class.

    Parameters:
        traffic_class: ``0`` to ``255`` (DSCP in the upper six bits, ECN in
            the lower two).
        family: :data:`socket.AF_INET` (``IP_TOS``) or
            :data:`socket.AF_INET6` (``IPV6_TCLASS``).

    Raises:
        ValueError: ``traffic_class`` is out of range, or ``family`` is
            neither.
    """
    if not 0 <= traffic_class <= 255:
        raise ValueError("traffic_class must be in 0..255")
    if family == socket.AF_INET:
        return socket.IPPROTO_IP, _IP_TOS, _INT.pack(traffic_class)
    if family == socket.AF_INET6:
        return socket.IPPROTO_IPV6, _IPV6_TCLASS, _INT.pack(traffic_class)
    raise ValueError(f"family must be AF_INET or AF_INET6, got {family!r}")


def read_timestamp_ns(ancillary_data: Iterable[tuple[int, int, Buffer]]) -> int | None:
    """Return when the kernel received the packet, or :data:`None`.

    Reads the ``SCM_TIMESTAMPNS`` message that ``SO_TIMESTAMPNS`` enables.

    Parameters:
        ancillary_data: ``(level, type, data)`` tuples from a receive.

    Raises:
        ValueError: a timestamp message has the wrong size.

    Returns:
        Nanoseconds since the Unix epoch, comparable with :func:`time.time_ns`.
    """
    for level, kind, data in ancillary_data:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
            seconds, nanoseconds = _TIMESPEC.unpack(_exact(data, _TIMESPEC.size, "SCM_TIMESTAMPNS"))
            return int(seconds) * 1_000_000_000 + int(nanoseconds)
    return None


def ancillary_space_for_ip_info() -> int:
    """A receive-buffer size for packet info, traffic class and timestamp together.

    Enough for one of each message this module reads, for IPv4 or IPv6.
    """
    return (
        socket.CMSG_SPACE(max(_IN_PKTINFO.size, _IN6_PKTINFO.size))
        + socket.CMSG_SPACE(_INT.size)
        + socket.CMSG_SPACE(_TIMESPEC.size)
    )


def _exact(data: Buffer, size: int, what: str) -> memoryview:
    view = memoryview(data).cast("B")
    if len(view) != size:
        raise ValueError(f"{what} data of {len(view)} bytes, expected {size}")
    return view
