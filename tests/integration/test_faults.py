"""Fault injection: peers that reset, vanish, fall silent or do not speak TLS.

What this file proves, with real I/O only (loopback TCP, ``AF_UNIX`` socket
pairs, pipes, TLS with the test CA of ``conftest.py``). The peer is a thread
holding the raw other end; its TLS, when there is some, is an
``ssl.SSLObject`` over memory BIOs driven by hand, so that a fault can come
at any byte of the exchange:

- A peer that resets the connection (TCP: ``SO_LINGER`` 0; ``AF_UNIX``:
  closing with data left unread) or vanishes (a plain close; for pipes, its
  ends closed) at a random point of a transfer ends a blocked ``recv``,
  ``recv_into`` or ``send_all``, with a finite timeout or with
  ``math.inf``, soon after the fault: with the documented end of stream or
  exception, never with bytes that were not sent, never with a
  ``send_all`` reported done that could not have been.
- The same during the TLS handshake, on the server side and on the client
  side: the constructor raises ``ssl.SSLEOFError`` or the connection's
  ``ConnectionError`` well within ``handshake_timeout`` and closes what it
  was given.
- The same during the closing handshake: ``close()`` never raises, ends
  early when the peer resets or leaves, and after ``shutdown_timeout`` when
  it never answers.
- Garbage instead of a ClientHello (or instead of the server's answer)
  fails the handshake with ``ssl.SSLError`` at once, not at the timeout.
- A TLS record cut short by the end of the connection gives none of its
  plaintext: ``ssl.SSLEOFError`` (``b""`` with ``standard_compatible=False``),
  after exactly the records that came whole.
- No case leaves a descriptor open (``/proc/self/fd`` before and after).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gc
import math
import os
import random
import select
import socket
import ssl
import struct
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, Protocol, TypeVar

import pytest

from transports.abc import StreamTransport
from transports.composite import StapledStreamTransport, TLSStreamTransport
from transports.selector import PipeReadTransport, PipeWriteTransport
from transports.socket import SocketStreamTransport, SSLStreamTransport

SERVER_NAME = "server.test"
RETRY = 1.0
# Pipes notice a close from another thread only after a retry interval; the
# hang watchdog below relies on that, so keep it short.
PIPE_RETRY = 0.1
# The finite timeout of every call under test, and the handshake and
# closing-handshake budgets: a fault must end a call well before it.
FINITE = 3.0
# How soon after the fault began the call under test must have ended.
PROMPT = 2.0
# The peer's own raw I/O: only a broken case ever waits this long.
PEER_TIMEOUT = 10.0
# A call with math.inf still running this long after it started is a hang:
# a watchdog closes the transport, which ends the call with EBADF.
HANG = 6.0
# Socket buffers are set small, so that what the kernel can absorb is known
# (loopback TCP autotunes its receive buffer up to tcp_rmem's maximum, tens
# of MiB) and a send_all that outgrows it can only fail when the peer leaves.
SOCKET_BUFFER = 256 * 1024
SEND_SIZE = 4 * 1024 * 1024
# The peer reads at most this much of a send_all before its fault; with the
# buffers above that leaves SEND_SIZE far out of the kernel's reach.
MOST_READ_BEFORE_FAULT = 256 * 1024
MOST_SENT_BEFORE_FAULT = 64 * 1024
RECORD = 16 * 1024
# TLS 1.3 close_notify: a 5-byte header, the 2-byte alert, the inner content
# type and a 16-byte AEAD tag.
TLS13_CLOSE_NOTIFY = 24

Contexts = tuple[ssl.SSLContext, ssl.SSLContext]
Figures = Callable[..., None]
Fault = Literal["reset", "vanish"]
Medium = Literal["tcp", "unix", "pipes"]
Layer = Literal["plain", "ssl", "tls"]
T = TypeVar("T")


class RunPeer(Protocol):
    def __call__(self, script: Callable[[], T]) -> Future[T]: ...


@dataclasses.dataclass(frozen=True)
class Kind:
    medium: Medium
    layer: Layer

    @property
    def faults(self) -> tuple[Fault, ...]:
        # A pipe has no reset: its reader sees an end of stream, its writer EPIPE.
        return ("vanish",) if self.medium == "pipes" else ("reset", "vanish")


TCP = Kind("tcp", "plain")
UNIX = Kind("unix", "plain")
SSL_TCP = Kind("tcp", "ssl")
TLS_TCP = Kind("tcp", "tls")
TLS_PIPES = Kind("pipes", "tls")

STREAM_KINDS = {
    "TCP": TCP,
    "Unix stream": UNIX,
    "SSLStreamTransport over TCP": SSL_TCP,
    "TLSStreamTransport over a TCP SocketStreamTransport": TLS_TCP,
    "TLSStreamTransport over stapled pipes": TLS_PIPES,
}
TLS_KINDS = {name: kind for name, kind in STREAM_KINDS.items() if kind.layer != "plain"}


# ------------------------------------------------------------ the peer ----


class PeerEnd:
    """The peer's end of the link: raw bytes, and the faults."""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def recv(self, size: int) -> bytes:
        raise NotImplementedError

    def wait_readable(self) -> None:
        """Wait until something arrived, without reading it."""
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def vanish(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def recv_exactly(self, size: int) -> bytes:
        got = bytearray()
        while len(got) < size:
            chunk = self.recv(min(size - len(got), 65536))
            if not chunk:
                raise ConnectionError(f"peer: end of stream after {len(got)} of {size} bytes")
            got += chunk
        return bytes(got)

    def fault(self, fault: Fault) -> float:
        """Make the fault; return when it began (the other end may see it before this returns)."""
        began = time.monotonic()
        if fault == "reset":
            self.reset()
        else:
            self.vanish()
        return began


class SocketEnd(PeerEnd):
    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(PEER_TIMEOUT)
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def wait_readable(self) -> None:
        self.sock.recv(1, socket.MSG_PEEK)

    def reset(self) -> None:
        # SO_LINGER means nothing to AF_UNIX: there, closing with data left
        # unread is what makes the other end's next receive fail with
        # ECONNRESET, so the cases that reset a Unix socket leave some.
        if self.sock.family != socket.AF_UNIX:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def vanish(self) -> None:
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


class PipeEnd(PeerEnd):
    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)

    def _wait(self, fd: int, event: int) -> None:
        poller = select.poll()
        poller.register(fd, event)
        if not poller.poll(PEER_TIMEOUT * 1000):
            raise TimeoutError("peer: the pipe did not become ready in time")

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self._wait(self.write_fd, select.POLLOUT)
            try:
                view = view[os.write(self.write_fd, view) :]
            except BlockingIOError:
                pass

    def recv(self, size: int) -> bytes:
        while True:
            self._wait(self.read_fd, select.POLLIN)
            try:
                return os.read(self.read_fd, size)
            except BlockingIOError:
                pass

    def wait_readable(self) -> None:
        self._wait(self.read_fd, select.POLLIN)

    def reset(self) -> None:
        raise AssertionError("a pipe has no reset")

    def vanish(self) -> None:
        self.close()

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1


class PeerTLS:
    """The peer's TLS, in memory BIOs it feeds by hand from its raw end."""

    def __init__(self, end: PeerEnd, contexts: Contexts, *, server_side: bool) -> None:
        self.end = end
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        server_context, client_context = contexts
        self.tls = (server_context if server_side else client_context).wrap_bio(
            self.incoming, self.outgoing, server_side=server_side, server_hostname=None if server_side else SERVER_NAME
        )

    def step(self) -> bool:
        """One try of the handshake; what it wrote waits in ``outgoing``."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def output(self) -> bytes:
        return self.outgoing.read()

    def pull(self) -> None:
        data = self.end.recv(65536)
        if not data:
            raise ConnectionError("peer: the transport under test ended the connection")
        self.incoming.write(data)

    def handshake(self) -> None:
        while not self.step():
            self.end.send(self.output())
            self.pull()
        self.end.send(self.output())

    def read_exactly(self, size: int) -> bytes:
        got = bytearray()
        while len(got) < size:
            try:
                got += self.tls.read(size - len(got))
            except ssl.SSLWantReadError:
                self.pull()
        return bytes(got)

    def decrypt_available(self) -> bytes:
        """All the plaintext that the ciphertext fed so far makes."""
        got = bytearray()
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                return bytes(got)
            if not chunk:
                return bytes(got)
            got += chunk

    def read_close_notify(self) -> None:
        while True:
            try:
                data = self.tls.read(1024)
            except ssl.SSLWantReadError:
                self.pull()
                continue
            except ssl.SSLZeroReturnError:
                return
            if not data:
                return
            raise AssertionError(f"peer: {data!r} instead of a close_notify")

    def records(self, plaintext: bytes) -> bytes:
        """The ciphertext of ``plaintext`` (one record per 16 KiB), not sent."""
        assert not self.outgoing.pending
        self.tls.write(plaintext)
        return self.outgoing.read()


def client_hello_length(contexts: Contexts) -> int:
    """How long a ClientHello from the client context is (the transports under test send the same)."""
    probe = PeerTLS(PeerEnd(), contexts, server_side=False)
    assert not probe.step()
    return len(probe.output())


# ----------------------------------------------- the transport under test ----


def socket_pair(medium: Medium) -> tuple[socket.socket, socket.socket]:
    """(ours, the peer's), connected, with small buffers (see SOCKET_BUFFER)."""
    if medium == "unix":
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for sock in (ours, theirs):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        return ours, theirs
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        # Set before listen(): the accepted socket inherits them.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        ours = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            ours.connect(listener.getsockname())
            theirs, _ = listener.accept()
        except BaseException:
            ours.close()
            raise
    return ours, theirs


@dataclasses.dataclass
class Setup:
    build: Callable[[], StreamTransport]
    """Makes the transport under test (the handshake runs in there)."""
    peer: PeerEnd
    given_closed: Callable[[], bool]
    """Whether what the transport under test was given (socket, wrapped transport) is closed."""


@contextlib.contextmanager
def under_test(
    kind: Kind,
    contexts: Contexts,
    *,
    server_side: bool = True,
    handshake_timeout: float = FINITE,
    shutdown_timeout: float = FINITE,
    standard_compatible: bool = True,
) -> Iterator[Setup]:
    """A link whose near end becomes the transport under test; everything is closed at the end."""
    server_context, client_context = contexts
    context = server_context if server_side else client_context
    hostname = None if server_side else SERVER_NAME
    built: list[StreamTransport] = []
    with contextlib.ExitStack() as stack:
        carrier: StreamTransport | None = None
        peer: PeerEnd
        if kind.medium == "pipes":
            to_peer_read, to_peer_write = os.pipe()
            from_peer_read, from_peer_write = os.pipe()
            peer = PipeEnd(to_peer_read, from_peer_write)
            stack.callback(peer.close)
            carrier = StapledStreamTransport(
                PipeWriteTransport(to_peer_write, PIPE_RETRY), PipeReadTransport(from_peer_read, PIPE_RETRY)
            )
        else:
            sock, theirs = socket_pair(kind.medium)
            # A no-op once a transport took the socket and closed it.
            stack.callback(sock.close)
            # wrap_socket() takes the descriptor from ``sock`` whatever happens
            # next: whether it was closed shows in /proc, not on ``sock``.
            descriptor = sock.fileno()
            identity = os.readlink(f"/proc/self/fd/{descriptor}")
            peer = SocketEnd(theirs)
            stack.callback(peer.close)
            if kind.layer != "ssl":
                carrier = SocketStreamTransport(sock, RETRY)
        if carrier is not None:
            stack.callback(carrier.close)

        def close_built() -> None:
            for transport in built:
                transport.close()

        stack.callback(close_built)

        def build() -> StreamTransport:
            transport: StreamTransport
            if kind.layer == "ssl":
                transport = SSLStreamTransport(
                    sock,
                    context,
                    RETRY,
                    server_side=server_side,
                    server_hostname=hostname,
                    handshake_timeout=handshake_timeout,
                    shutdown_timeout=shutdown_timeout,
                    standard_compatible=standard_compatible,
                )
            else:
                assert carrier is not None
                if kind.layer == "plain":
                    transport = carrier
                else:
                    transport = TLSStreamTransport(
                        carrier,
                        context,
                        server_side=server_side,
                        server_hostname=hostname,
                        handshake_timeout=handshake_timeout,
                        shutdown_timeout=shutdown_timeout,
                        standard_compatible=standard_compatible,
                    )
            built.append(transport)
            return transport

        def given_closed() -> bool:
            if carrier is not None:
                return carrier.is_closed()
            try:
                return sock.fileno() == -1 and os.readlink(f"/proc/self/fd/{descriptor}") != identity
            except FileNotFoundError:
                return True

        yield Setup(build, peer, given_closed)


@contextlib.contextmanager
def watchdog(transport: StreamTransport, timeout: float) -> Iterator[None]:
    """Under math.inf, a call that the fault fails to end is closed from here after HANG seconds.

    The call then raises EBADF, which the checks report as a hang; a finite
    timeout needs no watchdog, the call's own TimeoutError says it.
    """
    if timeout != math.inf:
        yield
        return
    timer = threading.Timer(HANG, transport.close)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


@dataclasses.dataclass
class Ending:
    received: bytes
    error: Exception | None
    """None: the call reported an end of stream."""
    at: float


def receive_until_end(transport: StreamTransport, timeout: float, into: bool) -> Ending:
    received = bytearray()
    buffer = bytearray(65536)
    try:
        with watchdog(transport, timeout):
            while True:
                if into:
                    count = transport.recv_into(buffer, timeout)
                    if not count:
                        break
                    received += buffer[:count]
                else:
                    chunk = transport.recv(65536, timeout)
                    if not chunk:
                        break
                    received += chunk
    except Exception as exc:
        return Ending(bytes(received), exc, time.monotonic())
    return Ending(bytes(received), None, time.monotonic())


def check_not_hung(error: BaseException | None, timeout: float) -> None:
    if isinstance(error, OSError) and error.errno == errno.EBADF:
        pytest.fail(f"the call was still blocked {HANG} s after it began: a hang (timeout={timeout})")
    if isinstance(error, TimeoutError):
        pytest.fail(f"the fault did not end the call: it ran out its timeout ({timeout} s)")


def check_prompt(fault_at: float, ended_at: float) -> None:
    assert fault_at <= ended_at, "the call ended before the peer's fault: it failed for another reason"
    assert ended_at - fault_at < PROMPT, f"the call ended {ended_at - fault_at:.2f} s after the fault"


def close_promptly(transport: StreamTransport) -> None:
    """Close the transport under test, whose peer is gone: at once, and without raising."""
    started = time.monotonic()
    transport.close()
    assert time.monotonic() - started < PROMPT, "close() lingered on a peer that is gone"
    assert transport.is_closed()


# ------------------------------------------------------- descriptors ----


def open_descriptors() -> dict[int, str]:
    found: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            pass  # the descriptor that listed the directory, closed since
    return found


@contextlib.contextmanager
def no_descriptor_left() -> Iterator[None]:
    before = open_descriptors()
    yield
    # A transport's last call closes the descriptor when it leaves; give a
    # thread that is still on its way out a moment.
    deadline = time.monotonic() + 2.0
    while True:
        left = {fd: target for fd, target in open_descriptors().items() if fd not in before}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not left, f"descriptors left open: {left}"


# ---------------------------------------------------------- fixtures ----


@pytest.fixture
def run_peer() -> Iterator[RunPeer]:
    """Runs a peer script in a thread; its errors come back through the future."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="faulty-peer") as pool:

        def run(script: Callable[[], T]) -> Future[T]:
            return pool.submit(script)

        yield run


# ----------------------------------------------- what may end a call ----

DOCUMENTED_HANDSHAKE_FAULTS: tuple[type[Exception], ...] = (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError)
RESET_ENDS_RECEIVE: tuple[type[Exception], ...] = (ConnectionResetError,)
# A peer that leaves with bytes unread resets a TCP connection whatever
# SO_LINGER says, and a send after the end is EPIPE: either error, for
# either fault.
FAULT_ENDS_SEND: tuple[type[Exception], ...] = (ConnectionResetError, BrokenPipeError)


def finalize_dropped_ssl_sockets(error: BaseException) -> int:
    """Finalize what the frames of a failed constructor still hold; count the ``ssl.SSLSocket`` found open.

    When the peer reset before SSLStreamTransport's constructor reached
    ``wrap_socket``, CPython's ``SSLSocket._create`` has taken the
    descriptor from the socket and raises with the new ``SSLSocket`` open,
    referenced only by the traceback: the descriptor stays open until that
    object is finalized, with a ResourceWarning; SSLStreamTransport checks
    for a reset before it wraps the socket, so none may be found.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        traceback.clear_frames(error.__traceback__)
        gc.collect()
    return sum("unclosed <ssl.SSLSocket" in str(warning.message) for warning in caught)


# ------------------------------------------------- faults mid-transfer ----

POINTS = 16


def receiving_case(kind: Kind, contexts: Contexts, run_peer: RunPeer, rng: random.Random, point: int) -> Fault:
    fault = kind.faults[point % len(kind.faults)]
    timeout = math.inf if point % 3 == 2 else FINITE
    into = point % 2 == 1
    data = rng.randbytes(rng.randrange(MOST_SENT_BEFORE_FAULT) if point else 0)
    server_side = rng.random() < 0.5
    # (With False, a reset of SSLStreamTransport would be the pinned defect.)
    standard_compatible = kind.layer == "plain" or point not in (3, 6)
    pause = rng.choice((0.0, 0.0, 0.02))
    with (
        no_descriptor_left(),
        under_test(kind, contexts, server_side=server_side, standard_compatible=standard_compatible) as setup,
    ):
        peer = setup.peer

        def script() -> float:
            if kind.layer == "plain":
                wire = data
                if fault == "reset":
                    peer.wait_readable()  # our byte, left unread: on AF_UNIX that makes the close a reset
            else:
                tls = PeerTLS(peer, contexts, server_side=not server_side)
                tls.handshake()
                # Past this the peer has read all we sent, so a vanishing TCP
                # peer closes with a FIN, not a reset.
                assert tls.read_exactly(2) == b"go"
                wire = tls.records(data)
            peer.send(wire)
            time.sleep(pause)  # the fault finds the receive blocked, or comes queued behind the data
            return peer.fault(fault)

        faulted = run_peer(script)
        transport = setup.build()
        if kind.layer != "plain":
            transport.send_all(b"go", FINITE)
        elif fault == "reset":
            transport.send_all(b"!", FINITE)
        ending = receive_until_end(transport, timeout, into)
        fault_at = faulted.result(PEER_TIMEOUT)
        close_promptly(transport)
    check_not_hung(ending.error, timeout)
    assert data.startswith(ending.received), "received bytes the peer never sent"
    if fault == "reset":
        # Bytes queued before the reset may or may not be delivered first.
        assert isinstance(ending.error, RESET_ENDS_RECEIVE), f"a reset ended the receive with {ending.error!r}"
    else:
        assert ending.received == data, f"{len(ending.received)} of the {len(data)} bytes sent before the end"
        if kind.layer != "plain" and standard_compatible:
            assert isinstance(ending.error, ssl.SSLEOFError), f"a ragged EOF gave {ending.error!r}"
        else:
            assert ending.error is None, f"a plain end of stream gave {ending.error!r}"
    check_prompt(fault_at, ending.at)
    return fault


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind_name", list(STREAM_KINDS))
def test_fault_while_receiving(kind_name: str, contexts: Contexts, run_peer: RunPeer, figures: Figures) -> None:
    """The peer sends a random amount, then resets or vanishes, while we receive."""
    kind = STREAM_KINDS[kind_name]
    rng = random.Random(f"receiving {kind_name}")
    counts = Counter(f"{receiving_case(kind, contexts, run_peer, rng, point)}_mid_transfer" for point in range(POINTS))
    figures(**counts)


def sending_case(
    kind: Kind, contexts: Contexts, run_peer: RunPeer, rng: random.Random, point: int, payload: bytes
) -> Fault:
    fault = kind.faults[point % len(kind.faults)]
    timeout = math.inf if point % 3 == 2 else FINITE
    reads = rng.randrange(MOST_READ_BEFORE_FAULT) if point else 0
    server_side = rng.random() < 0.5
    pause = rng.choice((0.0, 0.0, 0.02))
    with no_descriptor_left(), under_test(kind, contexts, server_side=server_side) as setup:
        peer = setup.peer

        def script() -> tuple[float, bytes]:
            tls = None
            if kind.layer != "plain":
                tls = PeerTLS(peer, contexts, server_side=not server_side)
                tls.handshake()
            got = peer.recv_exactly(reads)
            time.sleep(pause)
            fault_at = peer.fault(fault)
            if tls is None:
                return fault_at, got
            tls.incoming.write(got)
            return fault_at, tls.decrypt_available()

        faulted = run_peer(script)
        transport = setup.build()
        error: Exception | None = None
        try:
            with watchdog(transport, timeout):
                transport.send_all(payload, timeout)
        except Exception as exc:
            error = exc
        ended_at = time.monotonic()
        fault_at, seen = faulted.result(PEER_TIMEOUT)
        close_promptly(transport)
    check_not_hung(error, timeout)
    assert payload.startswith(seen), "the peer got bytes that were not sent"
    # The peer read at most MOST_READ_BEFORE_FAULT bytes and the buffers
    # hold far less than the rest: a success would be a lie.
    assert error is not None, f"send_all reported {len(payload)} bytes sent; the peer read {reads} and left"
    assert isinstance(error, FAULT_ENDS_SEND), f"the {fault} gave {error!r}"
    check_prompt(fault_at, ended_at)
    return fault


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind_name", list(STREAM_KINDS))
def test_fault_while_sending(kind_name: str, contexts: Contexts, run_peer: RunPeer, figures: Figures) -> None:
    """The peer reads a random part of a send_all too large for the buffers, then resets or vanishes."""
    kind = STREAM_KINDS[kind_name]
    rng = random.Random(f"sending {kind_name}")
    payload = rng.randbytes(SEND_SIZE)
    counts = Counter(
        f"{sending_case(kind, contexts, run_peer, rng, point, payload)}_mid_transfer" for point in range(POINTS)
    )
    figures(**counts)


# ------------------------------------------------ faults in the handshake ----

# Where the peer stops. Of a client peer (we are the server):
SERVER_STAGES = (
    "before sending anything",
    "in the ClientHello",
    "after the ClientHello, having read part of the answer",
    "after reading the whole answer",
    "in its Finished",
)
# Of a server peer (we are the client):
CLIENT_STAGES = (
    "before reading anything",
    "in reading the ClientHello",
    "after reading the ClientHello",
    "in its answer",
)
# Stages with a random point run at two points.
RANDOM_STAGES = {"in the ClientHello", "in its Finished", "in reading the ClientHello", "in its answer"}


def handshake_peer(
    peer: PeerEnd,
    contexts: Contexts,
    *,
    we_serve: bool,
    stage: str,
    fault: Fault,
    rng: random.Random,
    hello: int,
    building: threading.Event,
) -> float:
    tls = PeerTLS(peer, contexts, server_side=not we_serve)
    if stage in ("before sending anything", "in the ClientHello"):
        # Nothing tells a client when the server's constructor began: give
        # it a head start, so the fault finds it waiting (a fault before it
        # began is the pinned SSLStreamTransport defect, tolerated below).
        assert building.wait(PEER_TIMEOUT)
        time.sleep(0.05)
    elif stage == "before reading anything":
        peer.wait_readable()  # the ClientHello came: the constructor is running
    if we_serve:
        assert not tls.step()
        client_hello = tls.output()
        if stage == "in the ClientHello":
            peer.send(client_hello[: rng.randrange(1, len(client_hello))])
        elif stage != "before sending anything":
            peer.send(client_hello)
            if stage == "after the ClientHello, having read part of the answer":
                peer.recv_exactly(rng.randrange(1, 100))  # the ServerHello alone is longer
            else:
                while not tls.step():
                    tls.pull()
                finished = tls.output()
                if stage == "in its Finished":
                    peer.send(finished[: rng.randrange(1, len(finished))])
    elif stage == "in reading the ClientHello":
        peer.recv_exactly(rng.randrange(1, hello))
    elif stage != "before reading anything":
        while not tls.outgoing.pending:
            tls.pull()
            assert not tls.step()
        answer = tls.output()
        if stage == "in its answer":
            peer.send(answer[: rng.randrange(1, len(answer))])
    time.sleep(rng.choice((0.0, 0.01)))
    return peer.fault(fault)


def handshake_case(
    kind: Kind, contexts: Contexts, run_peer: RunPeer, rng: random.Random, we_serve: bool, stage: str, fault: Fault
) -> None:
    """One fault in the handshake."""
    hello = client_hello_length(contexts)
    building = threading.Event()
    with no_descriptor_left(), under_test(kind, contexts, server_side=we_serve) as setup:
        peer = setup.peer
        faulted = run_peer(
            lambda: handshake_peer(
                peer, contexts, we_serve=we_serve, stage=stage, fault=fault, rng=rng, hello=hello, building=building
            )
        )
        building.set()
        started = time.monotonic()
        error: Exception | None = None
        try:
            setup.build().close()
        except Exception as exc:
            error = exc
        ended_at = time.monotonic()
        fault_at = faulted.result(PEER_TIMEOUT)
        if kind.layer == "ssl" and error is not None:
            assert not finalize_dropped_ssl_sockets(error), "a dropped ssl.SSLSocket held the descriptor"
        assert setup.given_closed(), f"a failed constructor left its {kind.medium} open"
    where = f"the peer's {fault} {stage}"
    assert error is not None, f"the handshake succeeded despite {where}"
    check_not_hung(error, FINITE)
    assert isinstance(error, DOCUMENTED_HANDSHAKE_FAULTS), f"{where}: {error!r}"
    assert ended_at - started < FINITE
    check_prompt(fault_at, ended_at)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("we_serve", [True, False], ids=["we serve", "we are the client"])
@pytest.mark.parametrize("kind_name", list(TLS_KINDS))
def test_fault_during_handshake(
    kind_name: str, we_serve: bool, contexts: Contexts, run_peer: RunPeer, figures: Figures
) -> None:
    """The constructor raises what the docs say, soon, and closes what it was given."""
    kind = TLS_KINDS[kind_name]
    rng = random.Random(f"handshake {kind_name} {we_serve}")
    counts: Counter[str] = Counter()
    for stage in SERVER_STAGES if we_serve else CLIENT_STAGES:
        for fault in kind.faults:
            for _ in range(2 if stage in RANDOM_STAGES else 1):
                handshake_case(kind, contexts, run_peer, rng, we_serve, stage, fault)
                counts[f"handshake_{fault}"] += 1
    figures(**counts)


# ---------------------------------------- faults in the closing handshake ----

SHUTDOWN_FAULTS: tuple[tuple[Fault | Literal["silence"], str], ...] = (
    ("reset", "before close()"),
    ("vanish", "before close()"),
    ("reset", "in our close_notify"),
    ("vanish", "in our close_notify"),
    ("reset", "after our close_notify"),
    ("vanish", "after our close_notify"),
    ("vanish", "in its own close_notify"),
    ("silence", "after our close_notify"),
)
# What a peer that never answers costs close().
SHORT_SHUTDOWN = 0.5


def closing_case(
    kind: Kind,
    contexts: Contexts,
    run_peer: RunPeer,
    rng: random.Random,
    fault: Fault | Literal["silence"],
    when: str,
) -> None:
    server_side = rng.random() < 0.5
    shutdown_timeout = SHORT_SHUTDOWN if fault == "silence" else FINITE
    cut = rng.randrange(1, TLS13_CLOSE_NOTIFY)
    ready = threading.Event()
    closed = threading.Event()
    with (
        no_descriptor_left(),
        under_test(kind, contexts, server_side=server_side, shutdown_timeout=shutdown_timeout) as setup,
    ):
        peer = setup.peer

        def script() -> None:
            tls = PeerTLS(peer, contexts, server_side=not server_side)
            tls.handshake()
            assert tls.read_exactly(2) == b"go"
            assert tls.tls.version() == "TLSv1.3"
            if when == "before close()":
                peer.fault("reset" if fault == "reset" else "vanish")
                return
            # Only now may close() begin: its close_notify must reach the
            # wire after "go" was taken from it.
            ready.set()
            if when == "in our close_notify":
                peer.recv_exactly(cut)
            else:
                tls.read_close_notify()
            if fault == "silence":
                assert closed.wait(PEER_TIMEOUT)
                peer.close()
            elif when == "in its own close_notify":
                tls.tls.unwrap()
                answer = tls.output()
                peer.send(answer[: rng.randrange(1, len(answer))])
                peer.vanish()
            else:
                peer.fault(fault)

        done = run_peer(script)
        transport = setup.build()
        transport.send_all(b"go", FINITE)
        if when == "before close()":
            done.result(PEER_TIMEOUT)
        else:
            assert ready.wait(PEER_TIMEOUT)
        started = time.monotonic()
        transport.close()  # never raises for a peer's fault
        elapsed = time.monotonic() - started
        closed.set()
        done.result(PEER_TIMEOUT)
        assert transport.is_closed()
        assert setup.given_closed()
    if fault == "silence":
        assert shutdown_timeout - 0.05 <= elapsed < shutdown_timeout + PROMPT, f"close() took {elapsed:.2f} s"
    else:
        assert elapsed < PROMPT, f"close() took {elapsed:.2f} s though the peer's {fault} came {when}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind_name", list(TLS_KINDS))
def test_fault_during_closing_handshake(
    kind_name: str, contexts: Contexts, run_peer: RunPeer, figures: Figures
) -> None:
    """close() never raises: it ends early when the peer resets or leaves, after the budget when it is silent."""
    kind = TLS_KINDS[kind_name]
    rng = random.Random(f"closing {kind_name}")
    counts: Counter[str] = Counter()
    for fault, when in SHUTDOWN_FAULTS:
        if fault == "reset" and fault not in kind.faults:
            continue
        closing_case(kind, contexts, run_peer, rng, fault, when)
        counts["shutdown_silent" if fault == "silence" else f"shutdown_{fault}"] += 1
    figures(**counts)


# --------------------------------------------------------------- garbage ----


def random_garbage(rng: random.Random) -> bytes:
    garbage = bytearray(rng.randbytes(rng.randrange(5, 2048)))
    # A start that reads as a record header (a major version byte of 3, or an
    # SSLv2 length with the top bit set) tells OpenSSL to wait for the rest of
    # that record, rightly: keep random garbage from looking like one.
    garbage[0] = rng.randrange(0x80)
    if garbage[1] == 3:
        garbage[1] = 0
    return bytes(garbage)


def random_client_hello(rng: random.Random) -> bytes:
    """A whole handshake record holding a ClientHello whose body is random bytes."""
    body = rng.randbytes(rng.randrange(64, 512))
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(message).to_bytes(2, "big") + message


def garbage_cases(rng: random.Random, we_serve: bool) -> list[tuple[str, bytes]]:
    if we_serve:
        return [
            ("an HTTP request", b"GET / HTTP/1.1\r\nHost: server.test\r\n\r\n"),
            ("an SSH banner", b"SSH-2.0-OpenSSH_9.6\r\n"),
            ("zeros", bytes(64)),
            *(("a ClientHello of random bytes", random_client_hello(rng)) for _ in range(2)),
            *(("random bytes", random_garbage(rng)) for _ in range(4)),
        ]
    return [
        ("an HTTP answer", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        ("zeros", bytes(64)),
        *(("random bytes", random_garbage(rng)) for _ in range(3)),
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("we_serve", [True, False], ids=["instead of a ClientHello", "instead of the answer"])
@pytest.mark.parametrize("kind_name", list(TLS_KINDS))
def test_garbage_fails_the_handshake_at_once(
    kind_name: str, we_serve: bool, contexts: Contexts, figures: Figures
) -> None:
    kind = TLS_KINDS[kind_name]
    rng = random.Random(f"garbage {kind_name} {we_serve}")
    handshake_timeout = 10.0
    cases = garbage_cases(rng, we_serve)
    for what, garbage in cases:
        # The garbage is queued before the handshake starts, and the peer
        # stays connected until it ended: only the bytes can have failed it.
        with (
            no_descriptor_left(),
            under_test(kind, contexts, server_side=we_serve, handshake_timeout=handshake_timeout) as setup,
        ):
            setup.peer.send(garbage)
            started = time.monotonic()
            with pytest.raises(ssl.SSLError) as caught:
                setup.build()
            elapsed = time.monotonic() - started
            assert setup.given_closed()
        assert not isinstance(caught.value, ssl.SSLEOFError), f"{what}: {caught.value!r}"
        assert elapsed < PROMPT < handshake_timeout, f"{what} failed the handshake after {elapsed:.2f} s"
    figures(**{"garbage_client_hello" if we_serve else "garbage_server_answer": len(cases)})


# --------------------------------------------------- EOF inside a record ----

RECORD_POINTS = 16


def cut_point(record: bytes, region: int, rng: random.Random) -> int:
    if region == 0:
        return rng.randrange(1, 5)  # inside the record header
    if region == 1:
        return 5  # the header alone
    if region == 2:
        return len(record) - 1  # all but the last byte of the tag
    return rng.randrange(6, len(record) - 1)


def record_case(kind: Kind, contexts: Contexts, run_peer: RunPeer, rng: random.Random, point: int) -> Fault:
    fault: Fault = "reset" if point % 4 == 3 and "reset" in kind.faults else "vanish"
    timeout = math.inf if point % 3 == 1 else FINITE
    into = point % 2 == 0
    server_side = rng.random() < 0.5
    standard_compatible = point % 5 != 4
    whole = [rng.randbytes(rng.randrange(1, RECORD + 1)) for _ in range(rng.randrange(3))]
    cut_plaintext = rng.randbytes(rng.randrange(1, RECORD + 1))
    region = point % 4
    pause = rng.choice((0.0, 0.02))
    with (
        no_descriptor_left(),
        under_test(kind, contexts, server_side=server_side, standard_compatible=standard_compatible) as setup,
    ):
        peer = setup.peer

        def script() -> float:
            tls = PeerTLS(peer, contexts, server_side=not server_side)
            tls.handshake()
            assert tls.read_exactly(2) == b"go"
            wire = b"".join(tls.records(plaintext) for plaintext in whole)
            record = tls.records(cut_plaintext)
            assert len(record) == 5 + int.from_bytes(record[3:5], "big"), "not a single record"
            peer.send(wire + record[: cut_point(record, region, rng)])
            time.sleep(pause)
            return peer.fault(fault)

        faulted = run_peer(script)
        transport = setup.build()
        transport.send_all(b"go", FINITE)
        ending = receive_until_end(transport, timeout, into)
        fault_at = faulted.result(PEER_TIMEOUT)
        close_promptly(transport)
    check_not_hung(ending.error, timeout)
    sent_whole = b"".join(whole)
    if fault == "reset":
        assert sent_whole.startswith(ending.received), "received bytes of the cut record"
        assert isinstance(ending.error, RESET_ENDS_RECEIVE), f"a reset gave {ending.error!r}"
    else:
        assert ending.received == sent_whole, "not exactly the plaintext of the whole records"
        if standard_compatible:
            assert isinstance(ending.error, ssl.SSLEOFError), f"a cut record gave {ending.error!r}"
        else:
            assert ending.error is None, f"a cut record gave {ending.error!r}, not the end of stream"
    check_prompt(fault_at, ending.at)
    return fault


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind_name", list(TLS_KINDS))
def test_end_of_stream_inside_a_record(kind_name: str, contexts: Contexts, run_peer: RunPeer, figures: Figures) -> None:
    """Whole records, then part of one and the end: none of its plaintext, and the documented error."""
    kind = TLS_KINDS[kind_name]
    rng = random.Random(f"record {kind_name}")
    counts = Counter(
        "eof_mid_record" if record_case(kind, contexts, run_peer, rng, point) == "vanish" else "reset_mid_record"
        for point in range(RECORD_POINTS)
    )
    figures(**counts)


# ------------------------------------ resets around SSLStreamTransport ----
# CPython's ssl reports a reset as an EOF (before Python 3.13), and its
# wrap_socket() fails on a reset connection after taking the descriptor:
# SSLStreamTransport must report ConnectionResetError all the same.


@pytest.mark.timeout(30)
@pytest.mark.parametrize("operation", ["recv", "recv, standard_compatible=False", "send_all"])
def test_ssl_stream_transport_reports_a_reset_as_a_reset(operation: str, contexts: Contexts, run_peer: RunPeer) -> None:
    standard_compatible = operation != "recv, standard_compatible=False"
    with no_descriptor_left(), under_test(SSL_TCP, contexts, standard_compatible=standard_compatible) as setup:
        peer = setup.peer

        def script() -> None:
            tls = PeerTLS(peer, contexts, server_side=False)
            tls.handshake()
            assert tls.read_exactly(2) == b"go"
            peer.reset()

        reset = run_peer(script)
        transport = setup.build()
        transport.send_all(b"go", FINITE)
        reset.result(PEER_TIMEOUT)
        outcome: object
        try:
            if operation == "send_all":
                transport.send_all(bytes(SEND_SIZE), FINITE)
                outcome = "success"
            else:
                outcome = transport.recv(1024, FINITE)
        except Exception as exc:
            outcome = exc
        transport.close()
    expected = (ConnectionResetError, BrokenPipeError) if operation == "send_all" else ConnectionResetError
    assert isinstance(outcome, expected), f"a reset gave {outcome!r}"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("pending", [True, False], ids=["bytes pending", "nothing pending"])
@pytest.mark.parametrize("we_serve", [True, False], ids=["we serve", "we are the client"])
def test_ssl_stream_transport_constructor_after_a_reset(we_serve: bool, pending: bool, contexts: Contexts) -> None:
    probe = PeerTLS(PeerEnd(), contexts, server_side=False)
    assert not probe.step()
    # The start of a real ClientHello; for a client, any bytes show it, they
    # are never parsed.
    start = probe.output()[:50]
    before = open_descriptors()
    with under_test(SSL_TCP, contexts, server_side=we_serve) as setup:
        if pending:
            setup.peer.send(start)
        setup.peer.reset()
        time.sleep(0.05)  # the reset crosses the loopback before the constructor starts
        error: Exception | None = None
        try:
            setup.build().close()
        except Exception as exc:
            error = exc
        # Checked while the caller still holds the exception, as an except block does.
        left_open = [target for fd, target in open_descriptors().items() if fd not in before]
        dropped = finalize_dropped_ssl_sockets(error) if error is not None else 0
    assert isinstance(error, DOCUMENTED_HANDSHAKE_FAULTS), f"the peer's reset gave {error!r}"
    assert not left_open, f"the failed constructor left {left_open} open ({dropped} SSLSocket finalized later)"
