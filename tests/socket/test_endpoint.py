"""SocketDatagramEndpoint and open_udp over real loopback UDP (IPv4, IPv6) and AF_UNIX datagram sockets.

All traffic goes to loopback addresses or to socket files in a temporary
directory; every port is chosen by the system.
"""

from __future__ import annotations

import array
import errno
import gc
import itertools
import math
import os
import re
import selectors
import socket
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typing_extensions import Buffer

from transports.abc import TypedAttributeLookupError
from transports.selector import WouldBlockOnRead
from transports.socket import (
    IP_PKTINFO,
    INETSocketAttribute,
    SocketAttribute,
    SocketDatagramEndpoint,
    SocketDatagramTransport,
    UNIXSocketAttribute,
    ancillary_space_for_fds,
    ancillary_space_for_ip_info,
    fds_message,
    open_udp,
    packet_info_message,
    read_fds,
    read_packet_info,
)

pytestmark = pytest.mark.timeout(60)

Spawn = Callable[..., Future[Any]]
Bound = Callable[[str], socket.socket]

KINDS = ["udp4", "udp6", "unix"]
HOSTS = {"udp4": (socket.AF_INET, "127.0.0.1"), "udp6": (socket.AF_INET6, "::1")}
RETRY_INTERVAL = 0.1
PEER_TIMEOUT = 10.0
# Bigger than any packet of the kind: over the UDP maximum, over the AF_UNIX send buffer.
OVERSIZE = {"udp4": 70000, "udp6": 70000, "unix": 4 << 20}
ROOT = Path(__file__).resolve().parents[2]


LINUX = sys.platform == "linux"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest, require_kind: Callable[[str], None]) -> str:
    value: str = request.param
    require_kind(value)
    return value


@pytest.fixture
def bound(cleanup: Callable[[Any], Any], short_tmp_dir: str, require_kind: Callable[[str], None]) -> Bound:
    """Make a bound, unconnected datagram socket of a kind, closed at teardown.

    A blocking socket with a timeout of PEER_TIMEOUT, until an endpoint takes it.
    """
    numbers = itertools.count()

    def make(kind: str) -> socket.socket:
        if kind == "unix":
            sock: socket.socket = cleanup(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
            sock.bind(os.path.join(short_tmp_dir, f"s{next(numbers)}"))
        else:
            require_kind(kind)
            family, host = HOSTS[kind]
            sock = cleanup(socket.socket(family, socket.SOCK_DGRAM))
            sock.bind((host, 0))
        sock.settimeout(PEER_TIMEOUT)
        return sock

    return make


@pytest.fixture
def endpoint(bound: Bound, kind: str) -> Iterator[SocketDatagramEndpoint]:
    with SocketDatagramEndpoint(bound(kind), RETRY_INTERVAL) as made:
        yield made


def address_of(endpoint: SocketDatagramEndpoint) -> Any:
    return endpoint.extra(SocketAttribute.sockname)


def send_later(sock: socket.socket, data: bytes, address: Any, delay: float) -> None:
    time.sleep(delay)
    sock.sendto(data, address)


def assert_nothing_sent(endpoint: SocketDatagramEndpoint, peer: socket.socket) -> None:
    """The next packet ``peer`` gets is a marker sent now: nothing went before it."""
    endpoint.send_to(b"marker", peer.getsockname(), 5.0)
    assert peer.recvfrom(100)[0] == b"marker"


# ------------------------------------------------------------ exchanges --


def test_server_answers_several_clients(endpoint: SocketDatagramEndpoint, bound: Bound, kind: str) -> None:
    clients = [bound(kind) for _ in range(4)]
    server_address = address_of(endpoint)
    for round_number in range(2):
        for number, client in enumerate(clients):
            client.sendto(b"request %d.%d" % (round_number, number), server_address)
        answered = {}
        for _ in clients:
            request, address = endpoint.recv_from(5.0)
            answered[address] = request
            endpoint.send_to(b"reply to " + request, address, 5.0)
        assert answered == {
            client.getsockname(): b"request %d.%d" % (round_number, n) for n, client in enumerate(clients)
        }
        for number, client in enumerate(clients):
            reply, source = client.recvfrom(100)
            assert reply == b"reply to request %d.%d" % (round_number, number)
            assert source == server_address


def test_noblock_forms(endpoint: SocketDatagramEndpoint, bound: Bound, kind: str) -> None:
    peer = bound(kind)
    with pytest.raises(WouldBlockOnRead):
        endpoint.recv_noblock_from()
    with pytest.raises(WouldBlockOnRead):
        endpoint.recv_noblock_from_with_ancillary(100)
    endpoint.send_noblock_to(b"direct", peer.getsockname())
    assert peer.recvfrom(100) == (b"direct", address_of(endpoint))
    endpoint.send_noblock_to_with_ancillary(b"with nothing", [], peer.getsockname())
    assert peer.recv(100) == b"with nothing"
    peer.sendto(b"back", address_of(endpoint))
    deadline = time.monotonic() + 5.0
    while True:
        try:
            assert endpoint.recv_noblock_from() == (b"back", peer.getsockname())
            break
        except WouldBlockOnRead:
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_packets_keep_their_boundaries_and_buffer_types(
    endpoint: SocketDatagramEndpoint, bound: Bound, kind: str
) -> None:
    peer = bound(kind)
    payloads: list[Buffer] = [b"one", b"", bytearray(b"three"), memoryview(b"four"), array.array("i", [1, 2])]
    for payload in payloads:
        endpoint.send_to(payload, peer.getsockname(), 5.0)
    assert [peer.recv(100) for _ in payloads] == [bytes(payload) for payload in payloads]


def test_long_packets_are_cut_to_max_datagram_size(bound: Bound, kind: str) -> None:
    peer = bound(kind)
    with SocketDatagramEndpoint(bound(kind), RETRY_INTERVAL, max_datagram_size=10) as endpoint:
        peer.sendto(b"0123456789abcdef", address_of(endpoint))
        assert endpoint.recv_from(5.0) == (b"0123456789", peer.getsockname())
        peer.sendto(b"next", address_of(endpoint))
        assert endpoint.recv_from(5.0) == (b"next", peer.getsockname())


@pytest.mark.parametrize("kind", ["unix"])
def test_path_like_and_bytes_unix_addresses(endpoint: SocketDatagramEndpoint, bound: Bound, kind: str) -> None:
    peer = bound(kind)
    path = peer.getsockname()
    endpoint.send_to(b"path", Path(path), 5.0)
    endpoint.send_to(b"bytes", os.fsencode(path), 5.0)
    endpoint.send_to_with_ancillary(b"path, ancillary", [], Path(path), 5.0)
    assert [peer.recv(100) for _ in range(3)] == [b"path", b"bytes", b"path, ancillary"]


@pytest.mark.parametrize("kind", ["unix"])
def test_an_unbound_unix_sender_cannot_be_answered(endpoint: SocketDatagramEndpoint, kind: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as anonymous:
        anonymous.sendto(b"who am I?", address_of(endpoint))
        data, address = endpoint.recv_from(5.0)
    assert (data, address) == (b"who am I?", None)
    with pytest.raises(TypeError, match="unbound AF_UNIX sender"):
        endpoint.send_to(b"nobody", address, 5.0)


# ---------------------------------------------------------- packet info --


def loopback_index() -> int:
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        pytest.skip("no interface named lo")


@pytest.mark.skipif(not LINUX, reason="IP_PKTINFO as Linux has it")
def test_replies_come_from_the_address_each_request_was_sent_to(cleanup: Callable[[Any], Any]) -> None:
    # One endpoint on every local IPv4 address; all packets go to 127.0.0.1
    # and 127.0.0.2 only. Each client is connected to the address it writes
    # to, so it takes only replies from that very address.
    with open_udp(local_address=("0.0.0.0", 0)) as server:
        server.extra(SocketAttribute.socket).setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        port = server.extra(INETSocketAttribute.sockname)[1]
        clients = [cleanup(open_udp(remote_address=(f"127.0.0.{1 + n % 2}", port))) for n in range(4)]
        for number, client in enumerate(clients):
            client.send(b"request %d" % number, 5.0)
        for _ in clients:
            request, ancillary, address = server.recv_from_with_ancillary(ancillary_space_for_ip_info(), 5.0)
            destination = read_packet_info(ancillary)
            assert destination is not None
            assert destination.interface == loopback_index()
            server.send_to_with_ancillary(
                b"%s from %s" % (request, destination.address.encode()),
                [packet_info_message(destination.address)],
                address,
                5.0,
            )
        for number, client in enumerate(clients):
            assert client.recv(5.0) == b"request %d from 127.0.0.%d" % (number, 1 + number % 2)


@pytest.mark.skipif(not LINUX, reason="IPV6_PKTINFO as Linux has it")
def test_ipv6_replies_with_packet_info(bound: Bound) -> None:
    client = bound("udp6")  # skips without an IPv6 loopback
    with SocketDatagramEndpoint(bound("udp6"), RETRY_INTERVAL) as server:
        server.extra(SocketAttribute.socket).setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        client.connect(address_of(server))
        client.send(b"v6?")
        request, ancillary, address = server.recv_from_with_ancillary(ancillary_space_for_ip_info(), 5.0)
        assert request == b"v6?"
        destination = read_packet_info(ancillary)
        assert destination is not None
        assert destination.address == "::1"
        server.send_to_with_ancillary(b"v6!", iter([packet_info_message(*destination)]), address, 5.0)
        assert client.recv(100) == b"v6!"


@pytest.mark.skipif(not LINUX, reason="IP_PKTINFO as Linux has it")
def test_cut_ip_control_data_raises(bound: Bound) -> None:
    peer = bound("udp4")
    with SocketDatagramEndpoint(bound("udp4"), RETRY_INTERVAL) as server:
        server.extra(SocketAttribute.socket).setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        peer.sendto(b"cut", address_of(server))
        with pytest.raises(OSError) as caught:
            server.recv_from_with_ancillary(socket.CMSG_LEN(0), 5.0)
        assert caught.value.errno == errno.EMSGSIZE


# -------------------------------------------------- AF_UNIX descriptors --


def test_descriptors_travel_with_the_sender_address(bound: Bound) -> None:
    client = bound("unix")
    with (
        SocketDatagramEndpoint(bound("unix"), RETRY_INTERVAL) as server,
        SocketDatagramEndpoint(client, RETRY_INTERVAL) as sender,
    ):
        read_end, write_end = os.pipe()
        try:
            sender.send_to_with_ancillary(b"a pipe", [fds_message([write_end])], address_of(server), 5.0)
        finally:
            os.close(write_end)
        try:
            data, ancillary, address = server.recv_from_with_ancillary(ancillary_space_for_fds(1), 5.0)
            assert (data, address) == (b"a pipe", address_of(sender))
            (passed,) = read_fds(ancillary)
            os.write(passed, b"through")
            os.close(passed)
            assert os.read(read_end, 100) == b"through"
        finally:
            os.close(read_end)


def test_cut_descriptors_are_closed(bound: Bound, open_fd_count: Callable[[], int]) -> None:
    peer = bound("unix")
    with SocketDatagramEndpoint(bound("unix"), RETRY_INTERVAL) as server:
        read_end, write_end = os.pipe()
        try:
            before = open_fd_count()
            peer.sendmsg([b"four"], [fds_message([read_end, write_end, read_end, write_end])], 0, address_of(server))
            with pytest.raises(OSError) as caught:
                server.recv_from_with_ancillary(ancillary_space_for_fds(1), 5.0)
            assert caught.value.errno == errno.EMSGSIZE
            assert open_fd_count() == before
        finally:
            os.close(read_end)
            os.close(write_end)


# ------------------------------------------------------------- failures --


def test_oversize_packet_is_emsgsize_and_nothing_is_sent(
    endpoint: SocketDatagramEndpoint, bound: Bound, kind: str
) -> None:
    peer = bound(kind)
    big = b"x" * OVERSIZE[kind]
    sends: list[Callable[[], None]] = [
        lambda: endpoint.send_to(big, peer.getsockname(), 5.0),
        lambda: endpoint.send_noblock_to(big, peer.getsockname()),
        lambda: endpoint.send_to_with_ancillary(big, [], peer.getsockname(), 5.0),
        lambda: endpoint.send_noblock_to_with_ancillary(big, [], peer.getsockname()),
    ]
    for send in sends:
        with pytest.raises(OSError) as caught:
            send()
        assert caught.value.errno == errno.EMSGSIZE
    assert_nothing_sent(endpoint, peer)


BAD_ADDRESSES: list[tuple[str, Any, type[Exception], str]] = [
    ("udp4", "127.0.0.1", TypeError, "AF_INET address"),
    ("udp4", ("127.0.0.1",), TypeError, "AF_INET address"),
    ("udp4", ("127.0.0.1", 1, 2), TypeError, "AF_INET address"),
    ("udp4", (b"127.0.0.1", 1), TypeError, "host must be a str"),
    ("udp4", ("127.0.0.1", "1"), TypeError, "port must be an int"),
    ("udp4", ("127.0.0.1", 65536), ValueError, "0 to 65535"),
    ("udp4", ("127.0.0.1", -1), ValueError, "0 to 65535"),
    ("udp4", ("localhost", 1), ValueError, "not an IPv4 address"),  # no resolver inside a send
    ("udp4", ("", 1), ValueError, "not an IPv4 address"),
    ("udp4", ("<broadcast>", 1), ValueError, "not an IPv4 address"),
    ("udp4", ("::1", 1), ValueError, "not an IPv4 address"),
    ("udp4", ("127.0.0.1\0", 1), ValueError, "not an IPv4 address"),
    ("udp4", None, TypeError, "AF_INET address"),
    ("udp6", ("127.0.0.1", 1), ValueError, "::ffff:"),
    ("udp6", ("fe80::1%lo", 1), ValueError, "scope"),
    ("udp6", ("::1", 1, 0, 0, 0), TypeError, "AF_INET6 address"),
    ("udp6", ("::1", 1, 1 << 21), ValueError, "flowinfo"),
    ("udp6", ("localhost", 1), ValueError, "not an IPv6 address"),
    ("unix", None, TypeError, "unbound AF_UNIX sender"),
    ("unix", 5, TypeError, "AF_UNIX address"),
    ("unix", ("127.0.0.1", 1), TypeError, "AF_UNIX address"),
]

SENDS: dict[str, Callable[[SocketDatagramEndpoint, Any], None]] = {
    "send_to": lambda endpoint, address: endpoint.send_to(b"no", address, 5.0),
    "send_noblock_to": lambda endpoint, address: endpoint.send_noblock_to(b"no", address),
    "send_to_with_ancillary": lambda endpoint, address: endpoint.send_to_with_ancillary(b"no", [], address, 5.0),
    "send_noblock_to_with_ancillary": lambda endpoint, address: endpoint.send_noblock_to_with_ancillary(
        b"no", [], address
    ),
}


@pytest.mark.parametrize("send", list(SENDS))
@pytest.mark.parametrize(("kind", "address", "error", "match"), BAD_ADDRESSES)
def test_bad_addresses_fail_before_any_io(
    endpoint: SocketDatagramEndpoint,
    bound: Bound,
    kind: str,
    address: Any,
    error: type[Exception],
    match: str,
    send: str,
) -> None:
    peer = bound(kind)
    with pytest.raises(error, match=match):
        SENDS[send](endpoint, address)
    assert_nothing_sent(endpoint, peer)


@pytest.mark.parametrize("send", list(SENDS))
def test_a_bad_port_for_a_known_host_is_a_value_error(bound: Bound, send: str) -> None:
    peer = bound("udp4")
    with SocketDatagramEndpoint(bound("udp4"), RETRY_INTERVAL) as endpoint:
        endpoint.send_to(b"known", peer.getsockname(), 5.0)  # the host passed the check once
        assert peer.recv(100) == b"known"
        with pytest.raises(ValueError, match="0-65535"):
            SENDS[send](endpoint, ("127.0.0.1", 65536))
        with pytest.raises(TypeError):
            SENDS[send](endpoint, ("127.0.0.1", "1"))
        assert_nothing_sent(endpoint, peer)


@pytest.mark.parametrize("send", list(SENDS))
@pytest.mark.parametrize("kind", ["unix"])
def test_unix_path_errors(endpoint: SocketDatagramEndpoint, bound: Bound, kind: str, send: str) -> None:
    peer = bound(kind)
    with pytest.raises(OSError) as caught:
        SENDS[send](endpoint, "/tmp/" + "x" * 200)
    assert caught.value.errno == errno.ENAMETOOLONG
    with pytest.raises(FileNotFoundError):
        SENDS[send](endpoint, os.path.join(os.path.dirname(peer.getsockname()), "nobody"))
    assert_nothing_sent(endpoint, peer)


def test_bad_timeouts_and_buffers_fail_before_any_io(endpoint: SocketDatagramEndpoint, bound: Bound, kind: str) -> None:
    peer = bound(kind)
    target = peer.getsockname()
    for timeout, error in ((-1.0, ValueError), (math.nan, ValueError), (None, TypeError)):
        with pytest.raises(error, match="timeout"):
            endpoint.send_to(b"no", target, timeout)  # type: ignore[arg-type]
        with pytest.raises(error, match="timeout"):
            endpoint.send_to_with_ancillary(b"no", [], target, timeout)  # type: ignore[arg-type]
        with pytest.raises(error, match="timeout"):
            endpoint.recv_from(timeout)  # type: ignore[arg-type]
        with pytest.raises(error, match="timeout"):
            endpoint.recv_from_with_ancillary(0, timeout)  # type: ignore[arg-type]
    strided = memoryview(bytearray(b"not contiguous"))[::2]
    with pytest.raises(TypeError, match="C-contiguous"):
        endpoint.send_to(strided, target, 5.0)
    with pytest.raises(TypeError, match="C-contiguous"):
        endpoint.send_noblock_to(strided, target)
    with pytest.raises(TypeError, match="C-contiguous"):
        endpoint.send_to_with_ancillary(strided, [], target, 5.0)
    with pytest.raises(ValueError, match="ancillary_bufsize"):
        endpoint.recv_from_with_ancillary(-1, 5.0)
    assert_nothing_sent(endpoint, peer)


def test_recv_from_timeouts(bound: Bound, kind: str, spawn: Spawn) -> None:
    for retry_interval in (0.1, 1.0):  # timed waits in C; poll waits from Python
        peer = bound(kind)
        with SocketDatagramEndpoint(bound(kind), retry_interval) as endpoint:
            with pytest.raises(TimeoutError) as caught:
                endpoint.recv_from(0)
            assert caught.value.errno == errno.ETIMEDOUT
            for receive in (
                lambda: endpoint.recv_from(0.25),
                lambda: endpoint.recv_from(0.25),  # waits first by now
                lambda: endpoint.recv_from_with_ancillary(100, 0.25),
            ):
                start = time.monotonic()
                with pytest.raises(TimeoutError):
                    receive()
                assert 0.24 <= time.monotonic() - start < 2.0
            late = spawn(send_later, peer, b"late", address_of(endpoint), 0.15)
            assert endpoint.recv_from(math.inf) == (b"late", peer.getsockname())
            late.result(10.0)


# Each blocked call would wait a minute if the close were missed.
BLOCKED_CALLS: dict[str, tuple[Callable[[SocketDatagramEndpoint], Any], dict[str, Any]]] = {
    "infinite, in the system call": (lambda endpoint: endpoint.recv_from(math.inf), {}),
    "timed wait in C": (lambda endpoint: endpoint.recv_from(60.0), {"wait_first": True}),
    "poll wait, finite": (lambda endpoint: endpoint.recv_from(60.0), {}),
    "ancillary": (lambda endpoint: endpoint.recv_from_with_ancillary(100, 60.0), {}),
    "selector_factory": (
        lambda endpoint: endpoint.recv_from(60.0),
        {"selector_factory": selectors.DefaultSelector},
    ),
}


@pytest.mark.parametrize("case", list(BLOCKED_CALLS))
def test_close_from_another_thread_ends_a_blocked_receive(bound: Bound, spawn: Spawn, case: str) -> None:
    block, options = BLOCKED_CALLS[case]
    retry_interval = 0.2
    for _ in range(5):
        endpoint = SocketDatagramEndpoint(
            bound("udp4"), retry_interval, selector_factory=options.get("selector_factory")
        )
        if options.get("wait_first"):
            with pytest.raises(TimeoutError):
                endpoint.recv_from(0)
        blocked = spawn(block, endpoint)
        time.sleep(0.1)
        assert not blocked.done()
        start = time.monotonic()
        endpoint.close()
        with pytest.raises(OSError) as caught:
            blocked.result(5.0)
        assert caught.value.errno == errno.EBADF
        assert time.monotonic() - start < retry_interval + 0.5


def test_every_call_on_a_closed_endpoint_is_ebadf(endpoint: SocketDatagramEndpoint, bound: Bound, kind: str) -> None:
    target = bound(kind).getsockname()
    endpoint.close()
    endpoint.close()
    assert endpoint.is_closed()
    for call in (
        lambda: endpoint.recv_from(math.inf),
        lambda: endpoint.recv_from(0),
        lambda: endpoint.recv_from(1.0),
        lambda: endpoint.recv_noblock_from(),
        lambda: endpoint.recv_from_with_ancillary(100, 1.0),
        lambda: endpoint.send_to(b"x", target, math.inf),
        lambda: endpoint.send_noblock_to(b"x", target),
        lambda: endpoint.send_to_with_ancillary(b"x", [], target, 1.0),
    ):
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == errno.EBADF
    with pytest.raises(TypedAttributeLookupError):
        endpoint.extra(SocketAttribute.sockname)


def test_garbage_collected_endpoint_warns_and_closes(bound: Bound) -> None:
    sock = bound("unix")
    endpoint = SocketDatagramEndpoint(sock, RETRY_INTERVAL)
    with pytest.warns(ResourceWarning, match="unclosed transport <SocketDatagramEndpoint"):
        del endpoint
        gc.collect()
    assert sock.fileno() == -1


# ---------------------------------------------------------- constructor --


def test_attributes(endpoint: SocketDatagramEndpoint, kind: str) -> None:
    proxy = endpoint.extra(SocketAttribute.socket)
    assert proxy.type == socket.SOCK_DGRAM
    assert endpoint.extra(SocketAttribute.family) == proxy.family
    if kind == "unix":
        assert endpoint.extra(UNIXSocketAttribute.sockname) == proxy.getsockname()
    else:
        assert endpoint.extra(INETSocketAttribute.sockname)[0] == HOSTS[kind][1]
    with pytest.raises(TypedAttributeLookupError):
        endpoint.extra(SocketAttribute.peername)
    assert "SocketDatagramEndpoint fd=" in repr(endpoint)


def test_constructor_refuses_and_leaves_the_socket_alone(
    cleanup: Callable[[Any], Any], bound: Bound, open_fd_count: Callable[[], int]
) -> None:
    connected = bound("udp4")
    connected.connect(bound("udp4").getsockname())
    stream = cleanup(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    unconnected = bound("udp4")
    before = open_fd_count()
    with pytest.raises(ValueError, match="connected"):
        SocketDatagramEndpoint(connected, RETRY_INTERVAL)
    with pytest.raises(ValueError, match="SOCK_DGRAM"):
        SocketDatagramEndpoint(stream, RETRY_INTERVAL)
    with pytest.raises(TypeError, match="socket"):
        SocketDatagramEndpoint(object(), RETRY_INTERVAL)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_datagram_size"):
        SocketDatagramEndpoint(unconnected, RETRY_INTERVAL, max_datagram_size=0)
    with pytest.raises(TypeError, match="max_datagram_size"):
        SocketDatagramEndpoint(unconnected, RETRY_INTERVAL, max_datagram_size="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry_interval"):
        SocketDatagramEndpoint(unconnected, 0)
    assert open_fd_count() == before
    for sock in (connected, unconnected):
        assert sock.gettimeout() == PEER_TIMEOUT  # untouched
    assert stream.getblocking()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        pass
    with pytest.raises(OSError):
        SocketDatagramEndpoint(closed, RETRY_INTERVAL)


def test_an_unbound_udp_endpoint_sends_from_an_ephemeral_port(bound: Bound) -> None:
    peer = bound("udp4")
    with SocketDatagramEndpoint(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), RETRY_INTERVAL) as endpoint:
        endpoint.send_to(b"hello", peer.getsockname(), 5.0)
        data, source = peer.recvfrom(100)
        assert data == b"hello"
        peer.sendto(b"answer", source)
        assert endpoint.recv_from(5.0) == (b"answer", peer.getsockname())


@pytest.mark.timeout(120)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(packets=st.lists(st.binary(max_size=65536), min_size=1, max_size=8))
def test_unix_packets_round_trip_whole(bound: Bound, packets: list[bytes]) -> None:
    with (
        SocketDatagramEndpoint(bound("unix"), RETRY_INTERVAL) as left,
        SocketDatagramEndpoint(bound("unix"), RETRY_INTERVAL) as right,
    ):
        for packet in packets:
            left.send_to(packet, address_of(right), 5.0)
            assert right.recv_from(5.0) == (packet, address_of(left))
            right.send_to(packet[::-1], address_of(left), 5.0)
            assert left.recv_from(5.0) == (packet[::-1], address_of(right))


# ------------------------------------------------------------- open_udp --


@pytest.fixture(params=["udp4", "udp6"])
def ip_kind(request: pytest.FixtureRequest, require_kind: Callable[[str], None]) -> str:
    value: str = request.param
    require_kind(value)
    return value


def test_open_udp_both_forms(ip_kind: str) -> None:
    host = HOSTS[ip_kind][1]
    with open_udp(local_address=(host, 0)) as server:
        assert isinstance(server, SocketDatagramEndpoint)
        server_address = server.extra(INETSocketAttribute.sockname)
        with (
            open_udp(remote_address=(host, server_address[1])) as client,
            open_udp(
                local_address=(host, 0), remote_address=(host, server_address[1]), max_datagram_size=5
            ) as bound_client,
        ):
            assert isinstance(client, SocketDatagramTransport)
            assert client.extra(INETSocketAttribute.peername) == server_address
            assert bound_client.extra(INETSocketAttribute.sockname)[0] == host
            for transport in (client, bound_client):
                transport.send(b"question", 5.0)
                request, address = server.recv_from(5.0)
                assert (request, address) == (b"question", transport.extra(SocketAttribute.sockname))
                server.send_to(b"answer", address, 5.0)
            assert client.recv(5.0) == b"answer"
            assert bound_client.recv(5.0) == b"answe"  # max_datagram_size


def test_open_udp_resolves_localhost_and_wildcards() -> None:
    with open_udp(local_address=("localhost", 0), timeout=10.0) as server:
        host, port = server.extra(INETSocketAttribute.sockname)[:2]
        assert host in ("127.0.0.1", "::1")
        family = socket.AddressFamily(server.extra(SocketAttribute.family))
        with open_udp(remote_address=("localhost", port), family=family) as client:
            client.send(b"by name", 5.0)
            assert server.recv_from(5.0)[0] == b"by name"
    with open_udp(local_address=("", 0), family=socket.AF_INET) as wildcard:
        assert wildcard.extra(INETSocketAttribute.sockname)[0] == "0.0.0.0"


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_open_udp_reuse_port(cleanup: Callable[[Any], Any]) -> None:
    first = cleanup(open_udp(local_address=("127.0.0.1", 0), reuse_port=True))
    port = first.extra(INETSocketAttribute.sockname)[1]
    second = cleanup(open_udp(local_address=("127.0.0.1", port), reuse_port=True))
    assert second.extra(INETSocketAttribute.sockname)[1] == port
    with pytest.raises(OSError) as caught:
        open_udp(local_address=("127.0.0.1", port))
    assert caught.value.errno == errno.EADDRINUSE


def test_open_udp_failures_leak_nothing(cleanup: Callable[[Any], Any], open_fd_count: Callable[[], int]) -> None:
    taken = cleanup(open_udp(local_address=("127.0.0.1", 0)))
    port = taken.extra(INETSocketAttribute.sockname)[1]
    before = open_fd_count()
    with pytest.raises(OSError) as caught:
        open_udp(local_address=("127.0.0.1", port))
    assert caught.value.errno == errno.EADDRINUSE
    assert "127.0.0.1" in str(caught.value)
    assert isinstance(caught.value.__cause__, ExceptionGroup)
    with pytest.raises(OSError) as caught:
        open_udp(local_address=("127.0.0.1", 0), remote_address=("::1", port))
    assert caught.value.errno == errno.EAFNOSUPPORT
    bad_calls: list[tuple[Callable[[], Any], type[Exception], str]] = [
        (lambda: open_udp(), TypeError, "local_address"),  # type: ignore[call-overload]
        (lambda: open_udp(local_address="127.0.0.1:1"), TypeError, "local_address"),  # type: ignore[call-overload]
        (lambda: open_udp(remote_address=("127.0.0.1", "1")), TypeError, "port"),  # type: ignore[arg-type]
        (lambda: open_udp(local_address=("127.0.0.1", 65536)), ValueError, "port"),
        (lambda: open_udp(local_address=("127.0.0.1", 0), family=socket.AF_UNIX), ValueError, "family"),
        (lambda: open_udp(local_address=("127.0.0.1", 0), retry_interval=0), ValueError, "retry_interval"),
        (lambda: open_udp(local_address=("127.0.0.1", 0), max_datagram_size=0), ValueError, "max_datagram_size"),
        (lambda: open_udp(local_address=("127.0.0.1", 0), timeout=-1), ValueError, "timeout"),
    ]
    for call, error, match in bad_calls:
        with pytest.raises(error, match=match):
            call()
    assert open_fd_count() == before


# ----------------------------------------------------------------- docs --


def docs_section_blocks() -> list[str]:
    text = (ROOT / "docs" / "socket.md").read_text()
    section = re.search(r"^## Unconnected datagrams\n(.*?)(?=^## )", text, flags=re.DOTALL | re.MULTILINE)
    assert section is not None, "docs/socket.md lost its 'Unconnected datagrams' section"
    blocks = re.findall(r"```python\n(.*?)```", section.group(1), flags=re.DOTALL)
    # The examples import what they use; the other blocks are signatures.
    return [block for block in blocks if block.startswith(("from ", "import "))]


@pytest.mark.skipif(not LINUX, reason="the packet-info example needs Linux")
def test_the_documented_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = docs_section_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "docs/socket.md", "exec"), {"__name__": "docs_example"})
    printed = capsys.readouterr().out
    assert "b'HELLO FROM CLIENT 0'" in printed
    assert "b'pong from 127.0.0.1'" in printed
