"""Ancillary data on AF_UNIX sockets: file descriptors, credentials, MSG_CTRUNC."""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from transports.abc import UnsupportedOperation
from transports.socket import (
    Credentials,
    SocketAttribute,
    SocketDatagramTransport,
    SocketStreamTransport,
    ancillary_space_for_credentials,
    ancillary_space_for_fds,
    credentials_message,
    fds_message,
    read_credentials,
    read_fds,
)

SocketPair = tuple[socket.socket, socket.socket]
PairFactory = Callable[[str], SocketPair]
Transports = (
    tuple[SocketStreamTransport, SocketStreamTransport] | tuple[SocketDatagramTransport, SocketDatagramTransport]
)

RETRY_INTERVAL = 0.1
HAS_PASSCRED = hasattr(socket, "SO_PASSCRED")


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.fixture(params=["stream", "datagram"])
def unix_pair(request: pytest.FixtureRequest, stream_pair: PairFactory, datagram_pair: PairFactory) -> Iterator[Any]:
    """Two transports over a connected AF_UNIX pair of the parametrized type."""
    if request.param == "stream":
        left, right = stream_pair("unix")
        with SocketStreamTransport(left, RETRY_INTERVAL) as a, SocketStreamTransport(right, RETRY_INTERVAL) as b:
            yield a, b
    else:
        left, right = datagram_pair("unix")
        with SocketDatagramTransport(left, RETRY_INTERVAL) as c, SocketDatagramTransport(right, RETRY_INTERVAL) as d:
            yield c, d


def send_with(transport: Any, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> None:
    if isinstance(transport, SocketStreamTransport):
        transport.send_all_with_ancillary([data], ancillary, 5.0)
    else:
        transport.send_with_ancillary(data, ancillary, 5.0)


def recv_with(transport: Any, ancillary_bufsize: int) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    if isinstance(transport, SocketStreamTransport):
        result: tuple[bytes, list[tuple[int, int, bytes]]] = transport.recv_with_ancillary(100, ancillary_bufsize, 5.0)
    else:
        result = transport.recv_with_ancillary(ancillary_bufsize, 5.0)
    return result


def test_passed_descriptor_works(unix_pair: Transports, pipe: tuple[int, int]) -> None:
    sender, receiver = unix_pair
    read_end, write_end = pipe
    send_with(sender, b"here is a pipe", [fds_message([write_end])])
    data, ancillary = recv_with(receiver, ancillary_space_for_fds(1))
    assert data == b"here is a pipe"
    (received,) = read_fds(ancillary)
    try:
        assert received != write_end
        assert not os.get_inheritable(received)  # MSG_CMSG_CLOEXEC
        os.write(received, b"written through the received descriptor")
    finally:
        os.close(received)
    assert os.read(read_end, 100) == b"written through the received descriptor"


def test_stream_recv_with_ancillary_into(stream_pair: PairFactory, pipe: tuple[int, int]) -> None:
    left, right = stream_pair("unix")
    with (
        SocketStreamTransport(left, RETRY_INTERVAL) as sender,
        SocketStreamTransport(right, RETRY_INTERVAL) as receiver,
    ):
        read_end, write_end = pipe
        # One-shot iterators: a retry must resend the same thing.
        sender.send_all_with_ancillary(iter([b"two ", b"chunks"]), iter([fds_message([read_end, write_end])]), 5.0)
        buffer = bytearray(100)
        nbytes, ancillary = receiver.recv_with_ancillary_into(buffer, ancillary_space_for_fds(2), 5.0)
        assert buffer[:nbytes] == b"two chunks"
        fds = read_fds(ancillary)
        assert len(fds) == 2
        os.write(fds[1], b"!")
        assert os.read(fds[0], 1) == b"!"
        for fd in fds:
            os.close(fd)


def test_noblock_forms(stream_pair: PairFactory) -> None:
    from transports.selector import WouldBlockOnRead

    left, right = stream_pair("unix")
    with (
        SocketStreamTransport(left, RETRY_INTERVAL) as sender,
        SocketStreamTransport(right, RETRY_INTERVAL) as receiver,
    ):
        with pytest.raises(WouldBlockOnRead):
            receiver.recv_noblock_with_ancillary(10, 100)
        with pytest.raises(WouldBlockOnRead):
            receiver.recv_noblock_with_ancillary_into(bytearray(10), 100)
        sender.send_all_noblock_with_ancillary([b"plain"], [])
        assert receiver.recv_with_ancillary(10, 100, 5.0) == (b"plain", [])


@pytest.mark.parametrize("ancillary_bufsize", [0, socket.CMSG_SPACE(4)])
def test_cut_control_message_closes_what_arrived(
    unix_pair: Transports,
    pipe: tuple[int, int],
    open_fd_count: Callable[[], int],
    ancillary_bufsize: int,
) -> None:
    sender, receiver = unix_pair
    read_end, write_end = pipe
    before = open_fd_count()
    send_with(sender, b"too many", [fds_message([read_end, write_end, read_end, write_end])])
    with pytest.raises(OSError) as caught:
        recv_with(receiver, ancillary_bufsize)
    assert caught.value.errno == errno.EMSGSIZE
    assert "MSG_CTRUNC" in str(caught.value)
    arrived = max(ancillary_bufsize - socket.CMSG_LEN(0), 0) // 4  # as many whole ints as fit
    assert f"{arrived} received file descriptor(s) were closed" in str(caught.value)
    assert open_fd_count() == before
    # The transport still works afterwards.
    send_with(sender, b"fine", [])
    assert recv_with(receiver, 100) == (b"fine", [])


@pytest.mark.skipif(not HAS_PASSCRED, reason="SO_PASSCRED is Linux only")
def test_credentials_of_the_sender(unix_pair: Transports) -> None:
    sender, receiver = unix_pair
    receiver.extra(SocketAttribute.socket).setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    send_with(sender, b"who am I?", [])
    data, ancillary = recv_with(receiver, ancillary_space_for_credentials())
    assert data == b"who am I?"
    assert read_credentials(ancillary) == Credentials(os.getpid(), os.getuid(), os.getgid())
    # Sent explicitly, too.
    send_with(sender, b"me", [credentials_message(os.getpid(), os.getuid(), os.getgid())])
    data, ancillary = recv_with(receiver, ancillary_space_for_credentials())
    assert read_credentials(ancillary) == (os.getpid(), os.getuid(), os.getgid())


def test_stream_ancillary_needs_a_byte(stream_pair: PairFactory, pipe: tuple[int, int]) -> None:
    left, _right = stream_pair("unix")
    with SocketStreamTransport(left, RETRY_INTERVAL) as sender, pytest.raises(ValueError, match="at least one byte"):
        sender.send_all_with_ancillary([b"", b""], [fds_message([pipe[0]])], 5.0)


def test_stream_ancillary_send_is_one_call(stream_pair: PairFactory, pipe: tuple[int, int]) -> None:
    left, _right = stream_pair("unix")
    with SocketStreamTransport(left, RETRY_INTERVAL) as sender:
        with pytest.raises(OSError) as caught:  # more than the socket buffer takes at once
            sender.send_all_with_ancillary([b"x" * (16 << 20)], [fds_message([pipe[0]])], 5.0)
        assert caught.value.errno == errno.EMSGSIZE


def test_tcp_has_no_ancillary_data(stream_pair: PairFactory) -> None:
    ours, _peer = stream_pair("tcp4")
    with SocketStreamTransport(ours, RETRY_INTERVAL) as transport:
        with pytest.raises(UnsupportedOperation):
            transport.recv_with_ancillary(10, 100, 1.0)
        with pytest.raises(UnsupportedOperation):
            transport.recv_with_ancillary_into(bytearray(10), 100, 1.0)
        with pytest.raises(UnsupportedOperation):
            transport.send_all_with_ancillary([b"x"], [], 1.0)
        with pytest.raises(ValueError, match="ancillary_bufsize"):
            transport.recv_noblock_with_ancillary(10, -1)


def test_ancillary_after_close(unix_pair: Transports) -> None:
    sender, receiver = unix_pair
    sender.close()
    receiver.close()
    with pytest.raises(OSError) as caught:
        send_with(sender, b"x", [])
    assert caught.value.errno == errno.EBADF
    with pytest.raises(OSError) as caught:
        recv_with(receiver, 100)
    assert caught.value.errno == errno.EBADF


# --------------------------------------------------------------- helpers --


def test_fds_message_round_trip() -> None:
    level, kind, data = fds_message([3, 4, 5])
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    assert data == struct.pack("=3i", 3, 4, 5)
    other = (socket.SOL_SOCKET, socket.SCM_CREDENTIALS, b"\0" * 12)
    assert read_fds([other, (level, kind, data), fds_message([7])]) == [3, 4, 5, 7]
    assert read_fds([(level, kind, data[:-2])]) == [3, 4]  # a cut int is not a descriptor
    assert read_fds([]) == []


def test_ancillary_sizes() -> None:
    assert ancillary_space_for_fds(0) == socket.CMSG_SPACE(0)
    assert ancillary_space_for_fds(3) == socket.CMSG_SPACE(12)
    assert ancillary_space_for_credentials() == socket.CMSG_SPACE(12)
    with pytest.raises(ValueError, match="negative"):
        ancillary_space_for_fds(-1)


def test_credentials_round_trip() -> None:
    message = credentials_message(1234, 1000, 100)
    assert message[:2] == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)
    assert read_credentials([message]) == Credentials(pid=1234, uid=1000, gid=100)
    assert read_credentials([fds_message([1])]) is None
    with pytest.raises(ValueError, match="SCM_CREDENTIALS"):
        read_credentials([(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, b"\0" * 8)])
