"""Receives that wait first with a finite timeout: the timed wait in C.

Once a receive would block, the next ones wait for readiness first. With a
timeout of at least ``retry_interval`` (and no ``selector_factory``) that
wait is made by a second socket object on the same descriptor, in CPython's
timeout mode, whose ``recv`` polls and receives in C. These tests pin what
must not change with it: timeouts end on time, across several
``retry_interval`` waits and across signals; data that comes late is
received; and the second object never closes the descriptor itself. (A
close from another thread during such a wait: test_stream.py and
test_datagram.py, ``test_closing_from_another_thread_ends_a_blocked_recv``.)

Every receive here first times out once with ``timeout=0``, which puts the
transport in the waiting-first mode.
"""

from __future__ import annotations

import errno
import gc
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from transports.socket import SocketAttribute, SocketDatagramTransport, SocketStreamTransport

SocketPair = tuple[socket.socket, socket.socket]
PairFactory = Callable[[str], SocketPair]
Spawn = Callable[..., Future[Any]]
Transport = SocketStreamTransport | SocketDatagramTransport

# (kind of transport, kind of socket pair, receive method)
RECEIVES = [
    ("stream", "tcp4", "recv"),
    ("stream", "unix", "recv_into"),
    ("datagram", "udp4", "recv"),
    ("datagram", "unix", "recv"),
]


def make_transport(
    stream_pair: PairFactory, datagram_pair: PairFactory, transport_kind: str, kind: str, retry_interval: float
) -> tuple[Transport, socket.socket]:
    if transport_kind == "stream":
        ours, peer = stream_pair(kind)
        return SocketStreamTransport(ours, retry_interval), peer
    ours, peer = datagram_pair(kind)
    return SocketDatagramTransport(ours, retry_interval), peer


def receiver(transport: Transport, method: str) -> Callable[[float], bytes]:
    """A call ``receive(timeout)`` that returns the bytes of one receive."""
    if isinstance(transport, SocketDatagramTransport):
        return transport.recv
    if method == "recv":
        return lambda timeout: transport.recv(100, timeout)
    buffer = bytearray(100)
    return lambda timeout: bytes(buffer[: transport.recv_into(buffer, timeout)])


def start_waiting_first(receive: Callable[[float], bytes]) -> None:
    with pytest.raises(TimeoutError):
        receive(0)


def send_later(sock: socket.socket, data: bytes, delay: float) -> None:
    time.sleep(delay)
    sock.send(data)


@pytest.mark.parametrize(("transport_kind", "kind", "method"), RECEIVES)
@pytest.mark.parametrize(
    ("retry_interval", "timeout"),
    [(0.1, 0.35), (0.25, 0.6), (0.35, 0.35), (1.0, 0.35), (math.inf, 0.35)],  # waits in C, then in Python
)
def test_timeout_ends_on_time(
    stream_pair: PairFactory,
    datagram_pair: PairFactory,
    transport_kind: str,
    kind: str,
    method: str,
    retry_interval: float,
    timeout: float,
) -> None:
    transport, _peer = make_transport(stream_pair, datagram_pair, transport_kind, kind, retry_interval)
    with transport:
        receive = receiver(transport, method)
        start_waiting_first(receive)
        for _ in range(2):
            start = time.monotonic()
            with pytest.raises(TimeoutError) as caught:
                receive(timeout)
            elapsed = time.monotonic() - start
            assert caught.value.errno == errno.ETIMEDOUT  # ours, not CPython's bare "timed out"
            # (At (0.25, 0.6), a budget started again after the first wait would end at 0.85 s.)
            assert timeout - 0.01 <= elapsed < timeout + 0.2


@pytest.mark.parametrize(("transport_kind", "kind", "method"), RECEIVES)
def test_late_data_is_received(
    spawn: Spawn, stream_pair: PairFactory, datagram_pair: PairFactory, transport_kind: str, kind: str, method: str
) -> None:
    transport, peer = make_transport(stream_pair, datagram_pair, transport_kind, kind, 0.05)
    with transport:
        receive = receiver(transport, method)
        start_waiting_first(receive)
        for delay in (0.0, 0.02, 0.2):  # at once, within one wait, after several
            sender = spawn(send_later, peer, b"late %f" % delay, delay)
            assert receive(5.0) == b"late %f" % delay
            sender.result(5.0)


@pytest.mark.parametrize(("transport_kind", "kind", "method"), RECEIVES)
def test_signals_do_not_stretch_the_timeout(
    spawn: Spawn, stream_pair: PairFactory, datagram_pair: PairFactory, transport_kind: str, kind: str, method: str
) -> None:
    # A wait restarted after each signal with its full length would never end:
    # the wait in C recomputes what is left of the timeout.
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    transport, _peer = make_transport(stream_pair, datagram_pair, transport_kind, kind, 0.3)
    handled: list[int] = []
    main = threading.get_ident()
    receiving = threading.Event()
    done = threading.Event()

    def interrupt_every_20_ms() -> None:
        receiving.wait(5.0)
        for _ in range(200):  # bounded: 4 s at most
            if done.wait(0.02):
                return
            signal.pthread_kill(main, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: handled.append(signum))
    try:
        with transport:
            receive = receiver(transport, method)
            start_waiting_first(receive)
            interrupter = spawn(interrupt_every_20_ms)
            receiving.set()
            start = time.monotonic()
            try:
                with pytest.raises(TimeoutError):
                    receive(0.5)
                elapsed = time.monotonic() - start
            finally:
                done.set()
                interrupter.result(5.0)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(handled) >= 10  # the wait was interrupted, many times
    assert 0.49 <= elapsed < 1.0


@pytest.mark.parametrize(("transport_kind", "kind", "method"), RECEIVES)
def test_after_close_a_receive_never_reads_a_file_that_took_the_number(
    stream_pair: PairFactory, datagram_pair: PairFactory, transport_kind: str, kind: str, method: str
) -> None:
    transport, _peer = make_transport(stream_pair, datagram_pair, transport_kind, kind, 0.1)
    with transport:
        receive = receiver(transport, method)
        start_waiting_first(receive)  # the next receive waits through the second object
        fd = transport.extra(SocketAttribute.socket).fileno()
        stranger, stranger_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with stranger, stranger_peer:
            transport.close()
            os.dup2(stranger.fileno(), fd)  # another file takes the number
            try:
                stranger_peer.send(b"not yours")
                with pytest.raises(OSError) as caught:
                    receive(5.0)
                assert caught.value.errno == errno.EBADF
                assert stranger.recv(100) == b"not yours"  # still there: nobody read it
            finally:
                os.close(fd)


@pytest.mark.parametrize("transport_kind", ["stream", "datagram"])
def test_a_number_taken_after_close_survives_the_transport(
    stream_pair: PairFactory, datagram_pair: PairFactory, transport_kind: str
) -> None:
    transport, _peer = make_transport(stream_pair, datagram_pair, transport_kind, "unix", 0.1)
    receive = receiver(transport, "recv")
    start_waiting_first(receive)
    with pytest.raises(TimeoutError):
        receive(0.2)  # a wait made by the second object
    fd = transport.extra(SocketAttribute.socket).fileno()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:  # on another number
        transport.close()
        with pytest.raises(OSError) as caught:
            os.fstat(fd)  # closed, by the transport
        assert caught.value.errno == errno.EBADF
        # Another file takes the number; collecting the transport (and the
        # second object) must leave it open.
        os.dup2(other.fileno(), fd)
        try:
            del transport, receive
            gc.collect()
            with socket.socket(fileno=os.dup(fd)) as check:  # fails with EBADF if fd was closed
                assert check.getsockname() == other.getsockname()
        finally:
            os.close(fd)


def test_finalising_the_second_socket_object_leaves_the_descriptor_open(stream_pair: PairFactory) -> None:
    # What the transport relies on when it is collected, whatever the order
    # of the finalisers: the second object only ever detaches.
    from transports.socket._ownership import _TimedWaitSocket

    ours, peer = stream_pair("unix")
    second = _TimedWaitSocket(ours.family, ours.type, ours.proto, fileno=ours.fileno())
    del second
    gc.collect()  # an "unclosed socket" ResourceWarning would fail the test
    ours.sendall(b"still open")
    assert peer.recv(100) == b"still open"


def test_garbage_collected_open_transport_closes_the_descriptor_once(
    stream_pair: PairFactory, open_fd_count: Callable[[], int]
) -> None:
    ours, _peer = stream_pair("unix")
    before = open_fd_count()
    transport = SocketStreamTransport(ours, 0.1)
    start_waiting_first(receiver(transport, "recv"))
    assert open_fd_count() == before  # the second object holds no descriptor of its own
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        del transport
        gc.collect()
    assert ours.fileno() == -1
    assert open_fd_count() == before - 1


@pytest.mark.parametrize("made_non_blocking", [False, True])
@pytest.mark.parametrize(("transport_kind", "kind", "method"), RECEIVES)
def test_the_first_timed_wait_leaves_the_descriptor_mode_as_it_was(
    stream_pair: PairFactory,
    datagram_pair: PairFactory,
    transport_kind: str,
    kind: str,
    method: str,
    made_non_blocking: bool,
) -> None:
    # The second object is made on the first timed wait, and setting its
    # timeout switches the shared descriptor to non-blocking mode: the
    # transport switches it back, or infinite waits would spin on EAGAIN.
    # A descriptor made non-blocking behind CPython's back (gettimeout()
    # still says None) stays so: other holders of the same file may rely on it.
    transport, peer = make_transport(stream_pair, datagram_pair, transport_kind, kind, 0.1)
    with transport:
        fd = transport.extra(SocketAttribute.socket).fileno()
        if made_non_blocking:
            os.set_blocking(fd, False)
        blocking = os.get_blocking(fd)
        receive = receiver(transport, method)
        start_waiting_first(receive)
        with pytest.raises(TimeoutError):
            receive(0.15)  # made by the second object
        assert os.get_blocking(fd) == blocking
        peer.send(b"after")
        assert receive(math.inf) == b"after"


@pytest.mark.parametrize("kind", ["tcp4", "unix"])
def test_a_stream_socket_handed_over_in_timeout_mode(
    spawn: Spawn, stream_pair: PairFactory, open_fd_count: Callable[[], int], kind: str
) -> None:
    # A socket in CPython's timeout mode (connect_tcp() connects within a
    # finite budget that way) has a non-blocking descriptor: the transport
    # makes its second object at once, and puts the descriptor in blocking
    # mode, so that infinite receives still wait in the kernel.
    ours, peer = stream_pair(kind)
    ours.settimeout(3.0)
    before = open_fd_count()
    transport = SocketStreamTransport(ours, 0.05)
    fd = ours.fileno()
    assert ours.gettimeout() is None
    assert os.get_blocking(fd)
    assert open_fd_count() == before  # the second object holds no descriptor of its own
    receive = receiver(transport, "recv")
    start_waiting_first(receive)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        receive(0.2)  # several waits of retry_interval, through the second object
    assert 0.19 <= time.monotonic() - start < 0.6
    assert os.get_blocking(fd)
    sender = spawn(send_later, peer, b"late", 0.1)
    assert receive(5.0) == b"late"
    sender.result(5.0)
    peer.send(b"now")
    assert receive(math.inf) == b"now"
    start_waiting_first(receive)
    waiter = spawn(receive, 5.0)
    time.sleep(0.05)
    began = time.monotonic()
    transport.close()  # from another thread than the receive's
    with pytest.raises(OSError) as caught:
        waiter.result(2.0)
    assert caught.value.errno == errno.EBADF
    assert time.monotonic() - began < 1.0
    assert open_fd_count() == before - 1


@pytest.mark.parametrize(("transport_kind", "kind", "method"), RECEIVES)
def test_a_close_racing_the_first_timed_wait_always_ends_it_with_ebadf(
    spawn: Spawn, stream_pair: PairFactory, datagram_pair: PairFactory, transport_kind: str, kind: str, method: str
) -> None:
    # The second object is made by the receive itself, on its first timed
    # wait: a close() from another thread may come before, during or after
    # that. Each round closes at a different moment; the receive must end
    # with EBADF, promptly (well before its 5 s budget: the stream shutdown
    # wakes it at once, a datagram wait within retry_interval).
    for round_number in range(150):
        retry_interval = 0.05 if transport_kind == "stream" else 0.01  # datagrams: 150 waits of it
        transport, _peer = make_transport(stream_pair, datagram_pair, transport_kind, kind, retry_interval)
        receive = receiver(transport, method)
        start_waiting_first(receive)
        started = threading.Event()

        def receive_after_start(receive: Callable[[float], bytes], started: threading.Event) -> bytes:
            started.set()
            return receive(5.0)

        waiter = spawn(receive_after_start, receive, started)
        started.wait(2.0)
        time.sleep((round_number % 15) * 20e-6)
        began = time.monotonic()
        transport.close()
        with pytest.raises(OSError) as caught:
            waiter.result(2.0)
        assert caught.value.errno == errno.EBADF
        assert time.monotonic() - began < 1.0


def test_a_first_timed_wait_during_send_file_leaves_send_file_its_timeout(
    spawn: Spawn, stream_pair: PairFactory, tmp_path: Any
) -> None:
    # send_file makes the descriptor non-blocking (os.sendfile takes no
    # MSG_DONTWAIT); the first timed wait of another thread, which makes the
    # second socket object and puts the descriptor's mode back, must not
    # make it blocking under send_file's feet, or os.sendfile would wait in
    # the kernel past the timeout.
    ours, _peer = stream_pair("unix")  # the peer never reads: the send buffer fills up
    path = tmp_path / "payload"
    path.write_bytes(b"x" * (32 << 20))
    with SocketStreamTransport(ours, 0.1) as transport, path.open("rb") as file:
        receive = receiver(transport, "recv")
        start_waiting_first(receive)

        def send_file_timed() -> tuple[str, float]:
            began = time.monotonic()
            try:
                transport.send_file(file, 1.0)
            except TimeoutError:
                return "timeout", time.monotonic() - began
            return "returned", time.monotonic() - began

        sender = spawn(send_file_timed)
        time.sleep(0.2)  # the send buffer is full: send_file waits for room
        with pytest.raises(TimeoutError):
            receive(0.3)  # the first timed wait in C, during the transfer
        outcome, elapsed = sender.result(10.0)
        assert outcome == "timeout"
        assert elapsed < 2.0


def test_two_first_timed_waits_at_once_make_one_object_and_both_time_out(
    spawn: Spawn, stream_pair: PairFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two readers of one stream reach their first timed wait together. The
    # thread switch that could show the second one a half-made object (no
    # timeout set yet: an immediate EAGAIN) is forced with a pause inside
    # settimeout: a mock, since no real resource times a thread switch.
    from transports.socket._ownership import _TimedWaitSocket

    made: list[object] = []
    real_settimeout = _TimedWaitSocket.settimeout

    def slow_settimeout(self: socket.socket, value: float | None) -> None:
        made.append(self)
        time.sleep(0.05)
        real_settimeout(self, value)

    monkeypatch.setattr(_TimedWaitSocket, "settimeout", slow_settimeout)
    ours, _peer = stream_pair("unix")
    with SocketStreamTransport(ours, 0.1) as transport:
        receive = receiver(transport, "recv")
        start_waiting_first(receive)

        def receive_times_out() -> None:
            with pytest.raises(TimeoutError):
                receive(0.3)

        readers = [spawn(receive_times_out) for _ in range(2)]
        for reader in readers:
            reader.result(5.0)  # each raised TimeoutError, nothing else
        assert len(made) == 1
