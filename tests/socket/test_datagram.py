"""SocketDatagramTransport over real UDP (IPv4, IPv6) and AF_UNIX datagram sockets."""

from __future__ import annotations

import errno
import gc
import math
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from transports.abc import TypedAttributeLookupError, UnsupportedOperation
from transports.selector import WouldBlockOnRead
from transports.socket import (
    MAX_DATAGRAM_BUFSIZE,
    INETSocketAttribute,
    SocketAttribute,
    SocketDatagramTransport,
    UNIXSocketAttribute,
)

SocketPair = tuple[socket.socket, socket.socket]
PairFactory = Callable[[str], SocketPair]
Spawn = Callable[..., Future[Any]]

KINDS = ["udp4", "udp6", "unix"]
RETRY_INTERVAL = 0.1


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def pair(datagram_pair: PairFactory, kind: str) -> Iterator[tuple[SocketDatagramTransport, socket.socket]]:
    ours, peer = datagram_pair(kind)
    with SocketDatagramTransport(ours, RETRY_INTERVAL) as transport:
        yield transport, peer


def send_later(sock: socket.socket, data: bytes, delay: float) -> None:
    time.sleep(delay)
    sock.send(data)


def test_echo(pair: tuple[SocketDatagramTransport, socket.socket]) -> None:
    transport, peer = pair
    transport.send(b"ping", 5.0)
    assert peer.recv(100) == b"ping"
    peer.send(b"pong")
    assert transport.recv(5.0) == b"pong"


def test_packets_keep_their_boundaries(pair: tuple[SocketDatagramTransport, socket.socket]) -> None:
    transport, peer = pair
    for payload in (b"one", b"", b"three", bytearray(b"four"), memoryview(b"five")):
        transport.send(payload, 5.0)
        assert peer.recv(100) == bytes(payload)
    for payload in (b"a", b"bb", b"ccc"):
        peer.send(payload)
    assert [transport.recv(5.0) for _ in range(3)] == [b"a", b"bb", b"ccc"]


def test_long_packets_are_cut_to_max_datagram_size(datagram_pair: PairFactory, kind: str) -> None:
    ours, peer = datagram_pair(kind)
    with SocketDatagramTransport(ours, RETRY_INTERVAL, max_datagram_size=10) as transport:
        peer.send(b"0123456789abcdef")
        assert transport.recv(5.0) == b"0123456789"
        peer.send(b"next")
        assert transport.recv(5.0) == b"next"


def test_default_max_datagram_size_takes_the_largest_udp_packet(datagram_pair: PairFactory) -> None:
    assert MAX_DATAGRAM_BUFSIZE == 65536
    ours, peer = datagram_pair("udp4")
    with SocketDatagramTransport(ours, RETRY_INTERVAL) as transport:
        payload = bytes(range(256)) * 255 + b"x" * 227  # 65507 bytes: the IPv4 UDP maximum
        peer.send(payload)
        assert transport.recv(5.0) == payload


def test_oversize_send_is_emsgsize(pair: tuple[SocketDatagramTransport, socket.socket], kind: str) -> None:
    transport, _peer = pair
    size = 70000 if kind != "unix" else 4 << 20
    with pytest.raises(OSError) as caught:
        transport.send(b"x" * size, 5.0)
    assert caught.value.errno == errno.EMSGSIZE


def test_noblock(pair: tuple[SocketDatagramTransport, socket.socket]) -> None:
    transport, peer = pair
    with pytest.raises(WouldBlockOnRead):
        transport.recv_noblock()
    transport.send_noblock(b"direct")
    assert peer.recv(100) == b"direct"


def test_recv_timeouts(pair: tuple[SocketDatagramTransport, socket.socket], spawn: Spawn) -> None:
    transport, peer = pair
    start = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        transport.recv(0)
    assert caught.value.errno == errno.ETIMEDOUT
    for _ in range(2):  # the second call starts in "wait first" mode
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            transport.recv(0.25)
        assert 0.24 <= time.monotonic() - start < 2.0
    sender = spawn(send_later, peer, b"late", 0.15)
    assert transport.recv(math.inf) == b"late"
    sender.result(10.0)
    with pytest.raises(ValueError, match="timeout"):
        transport.recv(-1)
    with pytest.raises(ValueError, match="timeout"):
        transport.send(b"x", math.nan)


def test_unconnected_socket(cleanup: Callable[[Any], Any]) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    transport = cleanup(SocketDatagramTransport(receiver, RETRY_INTERVAL))
    sender = cleanup(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sender.sendto(b"to anyone listening", transport.extra(INETSocketAttribute.sockname))
    assert transport.recv(5.0) == b"to anyone listening"
    with pytest.raises(TypedAttributeLookupError):
        transport.extra(SocketAttribute.peername)
    with pytest.raises(OSError) as caught:
        transport.send(b"where to?", 5.0)
    assert caught.value.errno == errno.EDESTADDRREQ


def test_attributes(pair: tuple[SocketDatagramTransport, socket.socket], kind: str) -> None:
    transport, peer = pair
    assert transport.extra(SocketAttribute.family) == peer.family
    assert transport.extra(SocketAttribute.peername) == peer.getsockname()
    assert transport.extra(SocketAttribute.socket).type == socket.SOCK_DGRAM
    if kind == "unix":
        assert transport.extra(UNIXSocketAttribute.sockname) == ""
    else:
        assert transport.extra(SocketAttribute.sockname) == peer.getpeername()
        assert transport.extra(INETSocketAttribute.sockname) == peer.getpeername()[:2]
    transport.close()
    with pytest.raises(TypedAttributeLookupError):
        transport.extra(SocketAttribute.sockname)
    with pytest.raises(TypedAttributeLookupError):
        transport.extra(SocketAttribute.family)


@pytest.mark.parametrize("size", [0, -1])
def test_bad_max_datagram_size(cleanup: Callable[[Any], Any], size: int) -> None:
    sock = cleanup(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with pytest.raises(ValueError, match="max_datagram_size"):
        SocketDatagramTransport(sock, RETRY_INTERVAL, max_datagram_size=size)
    assert sock.getblocking()


def test_close_and_operations_after_close(pair: tuple[SocketDatagramTransport, socket.socket]) -> None:
    transport, _peer = pair
    transport.close()
    transport.close()
    assert transport.is_closed()
    for call in (
        lambda: transport.recv(math.inf),
        lambda: transport.recv(0),
        lambda: transport.send(b"x", math.inf),
        lambda: transport.recv_noblock(),
    ):
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == errno.EBADF


# Waiting in recv() itself, and in the timed wait in C of a receive that waits first.
@pytest.mark.parametrize(("timeout", "waiting_first"), [(math.inf, False), (60.0, True)])
def test_closing_from_another_thread_ends_a_blocked_recv(
    datagram_pair: PairFactory, spawn: Spawn, timeout: float, waiting_first: bool
) -> None:
    ours, _peer = datagram_pair("udp4")
    retry_interval = 0.2
    transport = SocketDatagramTransport(ours, retry_interval)
    if waiting_first:
        with pytest.raises(TimeoutError):
            transport.recv(0)
    blocked = spawn(transport.recv, timeout)
    time.sleep(0.1)
    assert not blocked.done()
    start = time.monotonic()
    transport.close()  # does not wake a poll() on Linux: the retry interval does
    with pytest.raises(OSError) as caught:
        blocked.result(5.0)
    assert caught.value.errno == errno.EBADF
    assert time.monotonic() - start < retry_interval + 0.5


def test_garbage_collected_transport_warns_and_closes(datagram_pair: PairFactory) -> None:
    ours, _peer = datagram_pair("unix")
    transport = SocketDatagramTransport(ours, RETRY_INTERVAL)
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        del transport
        gc.collect()
    assert ours.fileno() == -1


def test_ancillary_needs_a_supported_family(cleanup: Callable[[Any], Any]) -> None:
    packet = getattr(socket, "AF_PACKET", None)
    if packet is None:
        pytest.skip("needs AF_PACKET")
    try:
        sock = cleanup(socket.socket(packet, socket.SOCK_DGRAM, 0))
    except PermissionError:
        pytest.skip("AF_PACKET needs CAP_NET_RAW")
    transport = cleanup(SocketDatagramTransport(sock, RETRY_INTERVAL))
    with pytest.raises(UnsupportedOperation):
        transport.recv_noblock_with_ancillary(100)
    with pytest.raises(UnsupportedOperation):
        transport.send_with_ancillary(b"x", [], 1.0)


def test_concurrent_receivers_get_each_packet_once(datagram_pair: PairFactory, spawn: Spawn) -> None:
    # Two threads waiting on one transport are both woken by one packet: the
    # loser must go back to waiting, not fail or duplicate. (A selector per
    # wait: the default shared poll object refuses concurrent waits.)
    ours, peer = datagram_pair("unix")
    with SocketDatagramTransport(ours, RETRY_INTERVAL, selector_factory=selectors.PollSelector) as transport:

        def receive_until_stop() -> list[bytes]:
            got = []
            while (packet := transport.recv(5.0)) != b"stop":
                got.append(packet)
            return got

        receivers = [spawn(receive_until_stop) for _ in range(2)]
        sent = [i.to_bytes(2, "big") for i in range(300)]
        for packet in sent:
            peer.send(packet)
            if int.from_bytes(packet, "big") % 10 == 0:
                time.sleep(0.001)
        peer.send(b"stop")
        peer.send(b"stop")
        received = receivers[0].result(10.0) + receivers[1].result(10.0)
        assert sorted(received) == sent


def test_closed_port_is_reported_on_a_connected_udp_socket(cleanup: Callable[[Any], Any]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        address = gone.getsockname()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(address)
    transport = cleanup(SocketDatagramTransport(sock, RETRY_INTERVAL))
    transport.send(b"anyone?", 5.0)
    with pytest.raises(ConnectionRefusedError):
        transport.recv(5.0)
