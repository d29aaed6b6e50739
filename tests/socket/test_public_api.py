"""The public surface of transports.socket: names, finality, slots."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

import transports.socket as public
from transports.abc import DatagramTransport, StreamTransport
from transports.selector import SelectorDatagramTransport, SelectorStreamTransport
from transports.socket import SocketDatagramEndpoint, SocketDatagramTransport, SocketProxy, SocketStreamTransport

EXPECTED = {
    "IP_PKTINFO",
    "MAX_DATAGRAM_BUFSIZE",
    "SCM_TIMESTAMPNS",
    "SO_TIMESTAMPNS",
    "Credentials",
    "INETSocketAttribute",
    "PacketInfo",
    "SocketAttribute",
    "SocketDatagramEndpoint",
    "SocketDatagramTransport",
    "SocketListener",
    "SocketProxy",
    "SocketStreamTransport",
    "SSLStreamTransport",
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
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(public.__all__) == EXPECTED
    assert len(public.__all__) == len(EXPECTED)
    public_names = {name for name in vars(public) if not name.startswith("_") and name != "annotations"}
    assert public_names == EXPECTED
    for name in EXPECTED:
        obj = getattr(public, name)
        if callable(obj):
            assert obj.__doc__, name


@pytest.mark.parametrize("cls", [SocketStreamTransport, SocketDatagramTransport, SocketDatagramEndpoint, SocketProxy])
def test_concrete_classes_are_final(cls: type) -> None:
    assert getattr(cls, "__final__", False) is True


def test_base_classes() -> None:
    assert issubclass(SocketStreamTransport, SelectorStreamTransport)
    assert issubclass(SocketStreamTransport, StreamTransport)
    assert issubclass(SocketDatagramTransport, SelectorDatagramTransport)
    assert issubclass(SocketDatagramTransport, DatagramTransport)


def test_instances_have_slots_only(cleanup: Callable[[Any], Any]) -> None:
    stream = cleanup(SocketStreamTransport(socket.socket(), 1.0))
    datagram = cleanup(SocketDatagramTransport(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 1.0))
    endpoint = cleanup(SocketDatagramEndpoint(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 1.0))
    for obj in (stream, datagram, endpoint, stream.extra(public.SocketAttribute.socket)):
        assert not hasattr(obj, "__dict__"), type(obj).__name__
