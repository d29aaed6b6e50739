"""Ancillary data on UDP sockets: packet info, TOS / traffic class, timestamps."""

from __future__ import annotations

import errno
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from transports.socket import (
    IP_PKTINFO,
    SO_TIMESTAMPNS,
    INETSocketAttribute,
    PacketInfo,
    SocketAttribute,
    SocketDatagramTransport,
    ancillary_space_for_ip_info,
    packet_info_message,
    read_packet_info,
    read_timestamp_ns,
    read_traffic_class,
    traffic_class_message,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the IP control messages tested are Linux's")

RETRY_INTERVAL = 0.1
PairFactory = Callable[[str], tuple[socket.socket, socket.socket]]


@pytest.fixture(params=["udp4", "udp6"])
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def pair(datagram_pair: PairFactory, kind: str) -> Iterator[tuple[SocketDatagramTransport, SocketDatagramTransport]]:
    left, right = datagram_pair(kind)
    right.settimeout(None)
    with SocketDatagramTransport(left, RETRY_INTERVAL) as a, SocketDatagramTransport(right, RETRY_INTERVAL) as b:
        yield a, b


def loopback_index() -> int:
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        pytest.skip("no interface named lo")


def enable(transport: SocketDatagramTransport, options: list[tuple[int, int]]) -> None:
    proxy = transport.extra(SocketAttribute.socket)
    for level, option in options:
        proxy.setsockopt(level, option, 1)


def test_linux_constants() -> None:
    assert IP_PKTINFO == 8
    if not platform.machine().lower().startswith(("parisc", "sparc")):
        assert SO_TIMESTAMPNS == 35


def test_packet_info_reports_the_destination(
    pair: tuple[SocketDatagramTransport, SocketDatagramTransport], kind: str
) -> None:
    sender, receiver = pair
    if kind == "udp4":
        enable(receiver, [(socket.IPPROTO_IP, IP_PKTINFO)])
        expected = "127.0.0.1"
    else:
        enable(receiver, [(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO)])
        expected = "::1"
    sender.send(b"where did I land?", 5.0)
    data, ancillary = receiver.recv_with_ancillary(ancillary_space_for_ip_info(), 5.0)
    assert data == b"where did I land?"
    assert read_packet_info(ancillary) == PacketInfo(expected, loopback_index())
    assert read_traffic_class(ancillary) is None
    assert read_timestamp_ns(ancillary) is None


def test_traffic_class(pair: tuple[SocketDatagramTransport, SocketDatagramTransport], kind: str) -> None:
    sender, receiver = pair
    family = socket.AF_INET if kind == "udp4" else socket.AF_INET6
    if kind == "udp4":
        enable(receiver, [(socket.IPPROTO_IP, socket.IP_RECVTOS)])
    else:
        enable(receiver, [(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS)])
    sender.send_with_ancillary(b"marked", [traffic_class_message(0x28, family)], 5.0)
    data, ancillary = receiver.recv_with_ancillary(ancillary_space_for_ip_info(), 5.0)
    assert data == b"marked"
    assert read_traffic_class(ancillary) == 0x28
    sender.send(b"plain", 5.0)
    _, ancillary = receiver.recv_with_ancillary(ancillary_space_for_ip_info(), 5.0)
    assert read_traffic_class(ancillary) == 0


def test_receive_timestamp(pair: tuple[SocketDatagramTransport, SocketDatagramTransport]) -> None:
    sender, receiver = pair
    enable(receiver, [(socket.SOL_SOCKET, SO_TIMESTAMPNS)])
    before = time.time_ns()
    sender.send(b"when?", 5.0)
    _, ancillary = receiver.recv_with_ancillary(ancillary_space_for_ip_info(), 5.0)
    after = time.time_ns()
    stamp = read_timestamp_ns(ancillary)
    assert stamp is not None
    assert before - 10_000_000 <= stamp <= after  # CLOCK_REALTIME on both sides


def test_everything_at_once_fits_the_advertised_space(
    pair: tuple[SocketDatagramTransport, SocketDatagramTransport], kind: str
) -> None:
    sender, receiver = pair
    if kind == "udp4":
        enable(receiver, [(socket.IPPROTO_IP, IP_PKTINFO), (socket.IPPROTO_IP, socket.IP_RECVTOS)])
    else:
        enable(
            receiver, [(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO), (socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS)]
        )
    enable(receiver, [(socket.SOL_SOCKET, SO_TIMESTAMPNS)])
    sender.send(b"all of it", 5.0)
    _, ancillary = receiver.recv_with_ancillary(ancillary_space_for_ip_info(), 5.0)
    assert len(ancillary) == 3
    assert read_packet_info(ancillary) is not None
    assert read_traffic_class(ancillary) == 0
    assert read_timestamp_ns(ancillary) is not None


def test_cut_ip_control_data_raises(pair: tuple[SocketDatagramTransport, SocketDatagramTransport], kind: str) -> None:
    sender, receiver = pair
    if kind == "udp4":
        enable(receiver, [(socket.IPPROTO_IP, IP_PKTINFO)])
    else:
        enable(receiver, [(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO)])
    sender.send(b"cut", 5.0)
    with pytest.raises(OSError) as caught:
        receiver.recv_with_ancillary(socket.CMSG_LEN(0), 5.0)
    assert caught.value.errno == errno.EMSGSIZE


def test_send_from_a_chosen_source_address(cleanup: Callable[[Any], Any]) -> None:
    server = cleanup(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind(("127.0.0.1", 0))
    server.settimeout(5.0)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect(server.getsockname())
    with SocketDatagramTransport(client, RETRY_INTERVAL) as transport:
        transport.send_with_ancillary(b"from elsewhere", [packet_info_message("127.0.0.2")], 5.0)
        data, (source, port) = server.recvfrom(100)
        assert data == b"from elsewhere"
        assert source == "127.0.0.2"
        assert port == transport.extra(INETSocketAttribute.sockname)[1]
        transport.send_with_ancillary(b"usual", [packet_info_message("0.0.0.0")], 5.0)
        assert server.recvfrom(100)[1][0] == "127.0.0.1"


def test_send_from_a_chosen_ipv6_source(datagram_pair: PairFactory) -> None:
    left, right = datagram_pair("udp6")
    with SocketDatagramTransport(left, RETRY_INTERVAL) as transport:
        transport.send_with_ancillary(b"v6", [packet_info_message("::1", loopback_index())], 5.0)
        data, address = right.recvfrom(100)
        assert (data, address[0]) == (b"v6", "::1")


# --------------------------------------------------------------- helpers --


def test_packet_info_message_layout() -> None:
    level, kind, data = packet_info_message("10.1.2.3", 7)
    assert (level, kind) == (socket.IPPROTO_IP, IP_PKTINFO)
    assert data == (7).to_bytes(4, sys.byteorder) + bytes([10, 1, 2, 3]) + bytes(4)
    level, kind, data = packet_info_message("fe80::1", 2)
    assert (level, kind) == (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO)
    assert data == socket.inet_pton(socket.AF_INET6, "fe80::1") + (2).to_bytes(4, sys.byteorder)
    with pytest.raises(ValueError, match="address"):
        packet_info_message("localhost")
    with pytest.raises(ValueError, match="interface"):
        packet_info_message("127.0.0.1", -1)


def test_readers_reject_wrong_sizes_and_skip_others() -> None:
    assert read_packet_info([]) is None
    assert read_packet_info([(socket.SOL_SOCKET, socket.SCM_RIGHTS, b"\0" * 4)]) is None
    with pytest.raises(ValueError, match="IP_PKTINFO"):
        read_packet_info([(socket.IPPROTO_IP, IP_PKTINFO, b"\0" * 5)])
    with pytest.raises(ValueError, match="IPV6_PKTINFO"):
        read_packet_info([(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, b"\0" * 5)])
    assert read_traffic_class([(socket.IPPROTO_IP, socket.IP_TOS, b"\x10")]) == 0x10
    assert read_traffic_class([(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, (0xB8).to_bytes(4, sys.byteorder))]) == 0xB8
    with pytest.raises(ValueError, match="IP_TOS"):
        read_traffic_class([(socket.IPPROTO_IP, socket.IP_TOS, b"\0\0")])
    with pytest.raises(ValueError, match="SCM_TIMESTAMPNS"):
        read_timestamp_ns([(socket.SOL_SOCKET, SO_TIMESTAMPNS, b"\0" * 3)])


def test_traffic_class_message_checks() -> None:
    assert traffic_class_message(0xB8)[:2] == (socket.IPPROTO_IP, socket.IP_TOS)
    assert traffic_class_message(0xB8, socket.AF_INET6)[:2] == (socket.IPPROTO_IPV6, socket.IPV6_TCLASS)
    with pytest.raises(ValueError, match="traffic_class"):
        traffic_class_message(256)
    with pytest.raises(ValueError, match="family"):
        traffic_class_message(0, socket.AF_UNIX)
