"""Run by test_signals.py in a child process: signals delivered to a blocked transport call.

Python runs signal handlers in the main thread only, between bytecodes:
a system call that a signal interrupts fails with ``EINTR``, CPython runs
the handler and, when it returns, restarts the call with what is left of
its own timeout (PEP 475). So here the main thread blocks in a transport
call while a helper thread sends it ``SIGUSR1`` every 20 ms
(``signal.pthread_kill``). Every blocking method of every transport kind
is checked three ways:

- **a**, a finite timeout and nothing comes: the call raises
  ``TimeoutError`` (``ETIMEDOUT``) after its budget, neither earlier nor
  later than a small slack, although the handler ran many times: no
  signal starts a wait over;
- **b**, a finite and an infinite timeout, and the data (or the room to
  send it, or the peer's handshake or close_notify) comes only once the
  handler has run three times during the call, 0.15 s at the earliest:
  the call returns exactly the right result;
- **c**, a finite and an infinite timeout, and the handler raises on the
  third signal that lands in the library's code: that very exception
  comes out of the call, and the transport is still usable afterwards (a
  receive then gets exactly what the peer sends, nothing lost or twice;
  after a send the peer reads what was sent before, a prefix of the
  interrupted data and then the next send, which is all the contract
  promises: "no telling how much was sent"), or, for the constructor's
  handshake and for ``close()``, closed with nothing leaked.

A receive that waits is checked both ways it can wait: trying first
(the call that meets an empty buffer), and waiting first (the receives
after one that would have blocked), which for socket transports with a
finite timeout of at least ``retry_interval`` is a wait made in C.

The ``handler-exceptions`` family raises other exception types from the
handler on the main wait paths: ``KeyboardInterrupt`` (what the default
``SIGINT`` handler raises), a ``RuntimeError`` subclass, and a
``TimeoutError`` of the handler's own (an alarm-style deadline). Cases
listed in ``KNOWN_DEFECTS`` fail for a reason found in the library; they
are reported as known defects, and a known defect that passes fails the
run, so that the list is trimmed once the library is fixed.

Each case runs on fresh connections and checks that no descriptor and no
thread outlives it. A case whose call ended more than the slack after its
budget, or saw too few signals, runs again, twice at most, and the re-runs
are counted: a budget that signals stretch is stretched every time, and a
call that keeps signals out keeps them out every time, whereas a machine
too busy to wake the call (or the thread that signals) in time seldom is
three times in a row. The cases of a family
are shared out among forked workers (their waits are what takes time, not
the CPU), and the parent prints one JSON summary.

Usage: ``python signals_child.py FAMILY`` (or ``--list``). Exits 0 when
every case passed (or failed as a known defect), 1 otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import fcntl
import gc
import json
import math
import os
import secrets
import select
import selectors
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from types import FrameType
from typing import Any, Protocol

import transports.abc
import transports.composite
import transports.selector
import transports.socket
from transports.abc import StreamTransport
from transports.composite import StapledStreamTransport, TLSStreamTransport
from transports.selector import PipeReadTransport, PipeWriteTransport
from transports.socket import (
    IP_PKTINFO,
    SocketAttribute,
    SocketDatagramTransport,
    SocketStreamTransport,
    SSLStreamTransport,
    ancillary_space_for_fds,
    ancillary_space_for_ip_info,
    fds_message,
    read_fds,
    read_packet_info,
)

SIGNAL_INTERVAL = 0.02
# The handler raises on this signal of a call (or the first one after it
# that lands in the library's code), about 60 ms into the call.
RAISE_ON = 3
# The budget of the "nothing comes" checks, and how far a timeout may end
# after it on a loaded two-core machine. A wait that each signal started
# over would never end while the signals go on.
SHORT = 0.3
SLACK = 0.25
EARLY = 0.01
# The earliest the data (or room, or the peer) comes in the "b" checks,
# which also wait for this many signals handled during the call.
DATA_DELAY = 0.15
SIGNALS_FIRST = 3
# The finite timeout of the "b" and "c" checks, and of the checks after them.
LONG = 2.0
# How long an interrupted call ("c") may take: the exception comes at once.
PROMPT = 1.0
# Retry intervals below and above SHORT: waits in pieces (and, for socket
# receives that wait first, waits in C), or one wait per call.
RETRY_SHORT = 0.1
RETRY_LONG = 1.0
# The exceptions checks wait this long at most when the handler's exception
# is lost, so that a known defect costs little time.
EXCEPTION_BUDGET = 0.5
# Their waits in C last this long (at most the budget, so the receive waits in C).
RETRY_IN_C = 0.45
# Signals stop after this long whatever happens, so a hang still ends.
SIGNAL_LIMIT = 6.0
JOIN = 5.0
BUSY_RERUNS = 2
WATCHDOG = 30.0
# A family's cases are shared out among workers of about this much waiting.
WORKER_SECONDS = 0.6
MAX_WORKERS = 32
SERVER_NAME = "server.test"
MARK = b"<after the interrupted call>"
END = b"<end>"
TLS_TAIL = 7


# ------------------------------------------------------------ failures ----


class Failed(Exception):
    """A check of a case did not hold."""


class Busy(Failed):
    """A check that a busy machine can fail too: a call that ended late, or too few signals handled.

    The case is run again (twice at most): a budget that signals stretch
    is stretched every time, and a call that keeps signals out keeps them
    out every time, whereas a busy moment seldom lasts.
    """


class SignalBoom(Exception):
    """The exception the raising handler raises: no library code has a reason to catch it."""


class SignalRuntimeError(RuntimeError):
    """A handler's ``RuntimeError``, which a library must not take for one of its own."""


EXCEPTION_KINDS: dict[str, Callable[[], BaseException]] = {
    "KeyboardInterrupt": lambda: KeyboardInterrupt("raised by the signal handler"),
    "RuntimeError": lambda: SignalRuntimeError("raised by the signal handler"),
    "TimeoutError": lambda: TimeoutError("raised by the signal handler (a deadline of its own)"),
}

# Cases that fail for a reason found in the library: name -> the reason
# (see the module docstring). None today.
KNOWN_DEFECTS: dict[str, str] = {}


# ------------------------------------------------------------- signals ----

LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__ or "")) + os.sep
    for module in (transports.abc, transports.selector, transports.socket, transports.composite)
)


class Handler:
    """The SIGUSR1 handler: counts, and raises once when armed."""

    def __init__(self) -> None:
        self.count = 0
        self.make: Callable[[], BaseException] | None = None
        self.raised: BaseException | None = None
        self.landed = ""
        # Which call under signals is running (or ran last), and whether it still runs.
        self.call = 0
        self.active = False

    def start(self, make: Callable[[], BaseException] | None) -> None:
        self.count = 0
        self.make = make
        self.raised = None
        self.landed = ""
        self.call += 1
        self.active = True

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        make = self.make
        if make is None or self.count < RAISE_ON or frame is None:
            return
        # Only while the library's code runs (blocked in it, in practice): an
        # exception raised in this file, before the call, would prove nothing.
        if not frame.f_code.co_filename.startswith(LIBRARY_DIRS):
            return
        self.make = None
        self.raised = exc = make()
        self.landed = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}"
        raise exc


HANDLER = Handler()


def _signal_main_thread(stop: threading.Event, main: int) -> None:
    give_up = time.monotonic() + SIGNAL_LIMIT
    while not stop.wait(SIGNAL_INTERVAL) and time.monotonic() < give_up:
        signal.pthread_kill(main, signal.SIGUSR1)


@dataclass
class Blocked:
    """How one call under signals ended."""

    result: Any
    error: BaseException | None
    elapsed: float
    signals: int
    raised: BaseException | None
    landed: str


@dataclass
class Tally:
    """What a case did, for the summary."""

    calls: int = 0
    signals: int = 0
    raising: int = 0
    overrun: float | None = None
    notes: list[str] = field(default_factory=list)


def under_signals(tally: Tally, call: Callable[[], Any], raising: Callable[[], BaseException] | None = None) -> Blocked:
    """Run ``call`` in the main thread while another thread signals it every 20 ms."""
    stop = threading.Event()
    signaller = threading.Thread(target=_signal_main_thread, args=(stop, threading.get_ident()), name="signaller")
    HANDLER.start(raising)
    signaller.start()
    start = time.monotonic()
    try:
        result, error = call(), None
    except BaseException as exc:  # KeyboardInterrupt too: the handler may raise it
        result, error = None, exc
    elapsed = time.monotonic() - start
    count = HANDLER.count
    # Disarmed first: a signal still pending must not raise outside the call.
    HANDLER.make = None
    HANDLER.active = False
    stop.set()
    signaller.join(JOIN)
    tally.calls += 1
    tally.signals += count
    if raising is not None:
        tally.raising += 1
    return Blocked(result, error, elapsed, count, HANDLER.raised, HANDLER.landed)


def describe(error: BaseException | None) -> str:
    return "nothing" if error is None else f"{type(error).__name__}: {error}"


def expect_timeout(tally: Tally, blocked: Blocked, budget: float) -> None:
    """Check an "a" call: ``TimeoutError`` after its budget, signals handled meanwhile."""
    if not isinstance(blocked.error, TimeoutError) or blocked.error.errno != errno.ETIMEDOUT:
        raise Failed(f"expected TimeoutError(ETIMEDOUT) after {budget} s, got {describe(blocked.error)}")
    expect_budget(tally, blocked, budget)


def expect_budget(tally: Tally, blocked: Blocked, budget: float) -> None:
    """The call gave up when its budget ran out, not earlier, not much later, with signals handled."""
    if blocked.elapsed < budget - EARLY:
        raise Failed(f"gave up after {blocked.elapsed:.3f} s, before the budget of {budget} s")
    if blocked.elapsed > budget + SLACK:
        raise Busy(f"gave up after {blocked.elapsed:.3f} s: the budget of {budget} s was stretched")
    if blocked.signals < SIGNALS_FIRST:
        raise Busy(f"only {blocked.signals} signals were handled during the call")
    overrun = blocked.elapsed - budget
    tally.overrun = overrun if tally.overrun is None else max(tally.overrun, overrun)


def expect_success(blocked: Blocked) -> Any:
    """Check a "b" call: it returned, after blocking through signals (see :func:`after_signals`)."""
    if blocked.error is not None:
        trace = "".join(traceback.format_exception(blocked.error))
        raise Failed(f"the call raised {describe(blocked.error)} after {blocked.elapsed:.3f} s\n{trace}")
    if blocked.signals < SIGNALS_FIRST:
        raise Busy(f"the call did not block through signals ({blocked.elapsed:.3f} s, {blocked.signals} signals)")
    return blocked.result


def expect_raised(tally: Tally, blocked: Blocked) -> None:
    """Check a "c" call: the handler's own exception came out of it, at once."""
    if blocked.raised is None:
        # Too few signals came for it to raise: a busy machine, or a call that kept them out.
        failure = Busy if blocked.signals < RAISE_ON else Failed
        raise failure(
            f"the handler never raised ({blocked.signals} signals); the call ended with {describe(blocked.error)} "
            f"after {blocked.elapsed:.3f} s"
        )
    if blocked.error is not blocked.raised:
        raise Failed(
            f"the handler raised {describe(blocked.raised)} in {blocked.landed}, but the call ended with "
            f"{describe(blocked.error)} after {blocked.elapsed:.3f} s"
        )
    if blocked.elapsed > PROMPT:
        raise Failed(f"the handler's exception came out after {blocked.elapsed:.3f} s")
    tally.notes.append(f"raised in {blocked.landed}")


# ------------------------------------------------------------- helpers ----


class Helper:
    """A helper thread whose failure fails the case."""

    def __init__(self, target: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, name="helper")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self._thread.join(JOIN)
        if self._thread.is_alive():
            raise Failed("a helper thread did not finish")
        if self.error is not None:
            raise Failed(f"a helper thread failed: {describe(self.error)}") from self.error


def after_signals(target: Callable[[], None]) -> Helper:
    """Run ``target`` in a helper once the next call under signals has waited through some.

    At least DATA_DELAY later, and not before the handler ran SIGNALS_FIRST
    times during that call: counted, not timed, so that a slow machine,
    which may start the call late, cannot make the data come before the
    signals.
    """
    call = HANDLER.call + 1

    def wait_then_run() -> None:
        time.sleep(DATA_DELAY)
        give_up = time.monotonic() + JOIN
        while time.monotonic() < give_up:
            if HANDLER.call == call and (HANDLER.count >= SIGNALS_FIRST or not HANDLER.active):
                break
            time.sleep(0.005)
        target()

    return Helper(wait_then_run)


def descriptor_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    import trustme  # here: the families without TLS do not pay for its import

    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SERVER_NAME).configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    for context in (server, client):
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return server, client


SERVER_CONTEXT: ssl.SSLContext
CLIENT_CONTEXT: ssl.SSLContext


def tcp_pair(*, small: bool) -> tuple[socket.socket, socket.socket]:
    """(ours, peer) over loopback TCP; ``small``: little room, so that sends block soon."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        if small:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the accepted socket inherits it
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        ours = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if small:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        ours.connect(listener.getsockname())
        peer, _ = listener.accept()
    return ours, peer


def unix_pair(*, small: bool, kind: int = socket.SOCK_STREAM) -> tuple[socket.socket, socket.socket]:
    ours, peer = socket.socketpair(socket.AF_UNIX, kind)
    if small:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return ours, peer


def stream_pair(kind: str, *, small: bool) -> tuple[socket.socket, socket.socket]:
    return tcp_pair(small=small) if kind in ("tcp", "ssl") else unix_pair(small=small)


def fill_socket(sock: socket.socket) -> bytes:
    """Send until the socket takes nothing more, even a byte; return what went."""
    sock.setblocking(False)
    sent = 0
    quiet = 0
    # Until 80 ms pass without room: TCP makes some when a delayed ACK comes (40 ms).
    while quiet < 4:
        before = sent
        for size in (65536, 4096, 256, 1):
            while True:
                try:
                    sent += sock.send(b"F" * size)
                except BlockingIOError:
                    break
        quiet = quiet + 1 if sent == before else 0
        time.sleep(0.02)
    return b"F" * sent


def fill_pipe(fd: int) -> bytes:
    os.set_blocking(fd, False)
    written = 0
    for size in (65536, 4096, 256, 1):
        while True:
            try:
                written += os.write(fd, b"F" * size)
            except BlockingIOError:
                break
    return b"F" * written


def small_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    return read_end, write_end


def read_records(sock: socket.socket, last_at_least: int) -> bytes:
    """TLS records from ``sock``, up to a whole one of at least ``last_at_least`` bytes.

    Records are counted by their headers, not by a quiet time, so a slow
    machine cannot cut the last one short. Smaller records before it
    (session tickets not relayed yet) come along.
    """
    data = bytearray()
    deadline = time.monotonic() + LONG
    sock.settimeout(LONG)
    try:
        while time.monotonic() < deadline:
            position = 0
            # A header is type (1), version (2), length (2).
            while len(data) - position >= 5:
                end = position + 5 + int.from_bytes(data[position + 3 : position + 5], "big")
                if end > len(data):
                    break
                if end == len(data) and end - position - 5 >= last_at_least:
                    return bytes(data)
                position = end
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.settimeout(None)
    raise Failed(f"the peer's record did not come whole ({len(data)} bytes)")


class Drain:
    """Reads the peer's end in a thread until the end of the stream (or of the packets)."""

    def __init__(self, read: Callable[[], bytes | None], *, packets: bool = False) -> None:
        self.read = read
        self.packets = packets
        self.chunks: list[bytes] = []
        self.ended = False
        self.helper: Helper | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self.helper = Helper(self._run)

    def stop(self) -> None:
        """End the reading early (a case that failed), before the ends are closed."""
        self._stop.set()
        if self.helper is not None:
            with contextlib.suppress(Failed):
                self.helper.join()

    def _run(self) -> None:
        deadline = time.monotonic() + LONG * 2
        while time.monotonic() < deadline and not self._stop.is_set():
            chunk = self.read()
            if chunk is None:
                continue
            if chunk == (END if self.packets else b""):
                self.ended = True
                return
            self.chunks.append(chunk)

    def result(self) -> list[bytes]:
        if self.helper is None:
            raise Failed("the peer never read")
        self.helper.join()
        if not self.ended:
            raise Failed(f"the peer saw no end after {sum(map(len, self.chunks))} bytes")
        return self.chunks


def socket_reader(sock: socket.socket, fds: list[int] | None = None) -> Callable[[], bytes | None]:
    """Read a raw socket a bit at a time; passed descriptors are counted and closed."""
    sock.setblocking(True)
    space = ancillary_space_for_fds(4)

    def read() -> bytes | None:
        if not select.select([sock], [], [], 0.2)[0]:
            return None
        data, ancillary, _, _ = sock.recvmsg(65536, space)
        for fd in read_fds(ancillary):
            os.close(fd)
            if fds is not None:
                fds.append(fd)
        return data

    return read


def pipe_reader(fd: int) -> Callable[[], bytes | None]:
    def read() -> bytes | None:
        if not select.select([fd], [], [], 0.2)[0]:
            return None
        return os.read(fd, 65536)

    return read


def transport_reader(transport: StreamTransport) -> Callable[[], bytes | None]:
    def read() -> bytes | None:
        try:
            return transport.recv(65536, 0.2)
        except TimeoutError:
            return None

    return read


def close_all(*things: Any) -> None:
    for thing in things:
        if isinstance(thing, int):
            with contextlib.suppress(OSError):
                os.close(thing)
        else:
            thing.close()


# ---------------------------------------------------------------- rigs ----
# A rig is one connection: the transport under test and the peer's end of
# it, made fresh for every check.


class ReceiveRig(Protocol):
    packets: bool

    def receive(self, timeout: float) -> bytes: ...
    def stage(self, payload: bytes) -> Callable[[], None]: ...
    def check(self, deliveries: int) -> None: ...
    def close(self) -> None: ...


class SendRig(Protocol):
    packets: bool
    filler: list[bytes]
    # Where each send_file() left its file.
    file_positions: list[int]

    def send(self, payload: bytes, timeout: float) -> bytes: ...
    def send_more(self, data: bytes, timeout: float) -> None: ...
    def start_drain(self) -> None: ...
    def finish(self) -> list[bytes]: ...
    def check(self, deliveries: int) -> None: ...
    def close(self) -> None: ...


class PlainReceiveRig:
    """A transport that receives, and a raw peer end that sends (socket or pipe)."""

    packets = False

    def __init__(
        self,
        receive: Callable[[float], bytes],
        send: Callable[[bytes], None],
        closers: list[Any],
        *,
        packets: bool = False,
    ) -> None:
        self._receive = receive
        self._send = send
        self._closers = closers
        self.packets = packets
        self.fds_received: list[int] = []
        self.fds_expected_per_delivery = 0

    def receive(self, timeout: float) -> bytes:
        return self._receive(timeout)

    def stage(self, payload: bytes) -> Callable[[], None]:
        return lambda: self._send(payload)

    def check(self, deliveries: int) -> None:
        expected = deliveries * self.fds_expected_per_delivery
        if len(self.fds_received) != expected:
            raise Failed(f"{len(self.fds_received)} descriptors came with the data, {expected} were sent")

    def close(self) -> None:
        close_all(*self._closers)


def stream_receive_rig(kind: str, method: str, retry: float) -> PlainReceiveRig:
    ours, peer = stream_pair(kind, small=False)
    transport = SocketStreamTransport(ours, retry)
    passed_read, passed_write = os.pipe()  # what the ancillary checks pass along
    closers: list[Any] = [transport, peer, passed_read, passed_write]
    buffer = bytearray(65536)
    rig: PlainReceiveRig

    def take_fds(ancillary: list[tuple[int, int, bytes]]) -> None:
        for fd in read_fds(ancillary):
            os.close(fd)
            rig.fds_received.append(fd)

    def receive(timeout: float) -> bytes:
        if method == "recv":
            return transport.recv(65536, timeout)
        if method == "recv_into":
            return bytes(buffer[: transport.recv_into(buffer, timeout)])
        if method == "recv_with_ancillary":
            data, ancillary = transport.recv_with_ancillary(65536, ancillary_space_for_fds(2), timeout)
            take_fds(ancillary)
            return data
        count, ancillary = transport.recv_with_ancillary_into(buffer, ancillary_space_for_fds(2), timeout)
        take_fds(ancillary)
        return bytes(buffer[:count])

    def send(payload: bytes) -> None:
        if "ancillary" in method:
            peer.sendmsg([payload], [fds_message([passed_read])])
        else:
            peer.sendall(payload)

    rig = PlainReceiveRig(receive, send, closers)
    rig.fds_expected_per_delivery = 1 if "ancillary" in method else 0
    return rig


def datagram_receive_rig(kind: str, method: str, retry: float) -> PlainReceiveRig:
    if kind == "udp":
        ours = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ours.bind(("127.0.0.1", 0))
        peer.bind(("127.0.0.1", 0))
        ours.connect(peer.getsockname())
        peer.connect(ours.getsockname())
    else:
        ours, peer = unix_pair(small=False, kind=socket.SOCK_DGRAM)
    transport = SocketDatagramTransport(ours, retry)
    passed_read, passed_write = os.pipe()
    rig: PlainReceiveRig
    if kind == "udp" and method == "recv_with_ancillary":
        transport.extra(SocketAttribute.socket).setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)

    def receive(timeout: float) -> bytes:
        if method == "recv":
            return transport.recv(timeout)
        if kind == "udp":
            data, ancillary = transport.recv_with_ancillary(ancillary_space_for_ip_info(), timeout)
            info = read_packet_info(ancillary)
            if info is None or info.address != "127.0.0.1":
                raise Failed(f"the packet came with {ancillary!r}, not its IP_PKTINFO")
            return data
        data, ancillary = transport.recv_with_ancillary(ancillary_space_for_fds(2), timeout)
        for fd in read_fds(ancillary):
            os.close(fd)
            rig.fds_received.append(fd)
        return data

    def send(payload: bytes) -> None:
        if kind == "unix-dgram" and method == "recv_with_ancillary":
            peer.sendmsg([payload], [fds_message([passed_read])])
        else:
            peer.send(payload)

    rig = PlainReceiveRig(receive, send, [transport, peer, passed_read, passed_write], packets=True)
    rig.fds_expected_per_delivery = 1 if kind == "unix-dgram" and method == "recv_with_ancillary" else 0
    return rig


def pipe_receive_rig(kind: str, method: str, retry: float) -> PlainReceiveRig:
    read_end, write_end = os.pipe()
    reader = PipeReadTransport(read_end, retry)
    transport: StreamTransport | PipeReadTransport = reader
    closers: list[Any] = [reader, write_end]
    if kind == "stapled-pipes":
        # The send part is a pipe of its own, read by nobody here.
        other_read, other_write = os.pipe()
        transport = StapledStreamTransport(PipeWriteTransport(other_write, retry), reader)
        closers = [transport, write_end, other_read]
    buffer = bytearray(65536)

    def receive(timeout: float) -> bytes:
        if method == "recv":
            return transport.recv(65536, timeout)
        return bytes(buffer[: transport.recv_into(buffer, timeout)])

    def send(payload: bytes) -> None:
        view = memoryview(payload)
        while view:
            view = view[os.write(write_end, view) :]

    return PlainReceiveRig(receive, send, closers)


class Relay:
    """Copies bytes both ways between two raw sockets while a TLS handshake runs."""

    def __init__(self, left: socket.socket, right: socket.socket) -> None:
        self._ends = {left.fileno(): (left, right), right.fileno(): (right, left)}
        self._stop = threading.Event()
        self._helper = Helper(self._run)

    def _run(self) -> None:
        with selectors.PollSelector() as selector:
            for fd in self._ends:
                selector.register(fd, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(0.01):
                    source, target = self._ends[int(key.fd)]
                    data = source.recv(65536, socket.MSG_DONTWAIT)
                    if data:
                        target.sendall(data)

    def stop(self) -> None:
        self._stop.set()
        self._helper.join()


class TLSReceiveRig:
    """Our TLS client and a TLS server, with their ciphertext relayed by hand.

    Once the handshake is done, what the server sends is read from its raw
    end and written to ours in two parts: all but the last bytes of its
    last record at once, the rest when the check says. So the receive
    under test waits in the middle of a record.
    """

    packets = False

    def __init__(self, kind: str, method: str, retry: float) -> None:
        ours, self._ours_raw = stream_pair(kind, small=False)
        theirs, self._theirs_raw = stream_pair(kind, small=False)
        self._closers: list[Any] = [self._ours_raw, self._theirs_raw, ours, theirs]
        made: list[StreamTransport] = []
        relay = Relay(self._ours_raw, self._theirs_raw)
        try:
            server = Helper(lambda: made.append(tls_transport(kind, theirs, retry, server=True)))
            try:
                self.transport = tls_transport(kind, ours, retry, server=False)
            finally:
                server.join()
        except BaseException:
            close_all(*made, *self._closers)
            raise
        finally:
            relay.stop()
        self.peer = made[0]
        self._closers += [self.transport, self.peer]
        self._method = method
        self._buffer = bytearray(65536)

    def receive(self, timeout: float) -> bytes:
        if self._method == "recv":
            return self.transport.recv(65536, timeout)
        return bytes(self._buffer[: self.transport.recv_into(self._buffer, timeout)])

    def stage(self, payload: bytes) -> Callable[[], None]:
        self.peer.send_all(payload, LONG)
        ciphertext = read_records(self._theirs_raw, len(payload))
        self._ours_raw.sendall(ciphertext[:-TLS_TAIL])
        return lambda: self._ours_raw.sendall(ciphertext[-TLS_TAIL:])

    def check(self, deliveries: int) -> None:
        pass

    def close(self) -> None:
        # The raw ends first: then neither closing handshake waits for an answer.
        close_all(*self._closers)


def tls_transport(
    kind: str,
    sock: socket.socket,
    retry: float,
    *,
    server: bool,
    handshake_timeout: float = LONG,
    shutdown_timeout: float = LONG,
    standard_compatible: bool = True,
) -> StreamTransport:
    """Our TLS transport of ``kind`` on ``sock``; the handshake runs here."""
    options: dict[str, Any] = {
        "handshake_timeout": handshake_timeout,
        "shutdown_timeout": shutdown_timeout,
        "standard_compatible": standard_compatible,
    }
    context = SERVER_CONTEXT if server else CLIENT_CONTEXT
    if not server:
        options["server_hostname"] = SERVER_NAME
    if kind == "ssl":
        return SSLStreamTransport(sock, context, retry, **options)
    return TLSStreamTransport(SocketStreamTransport(sock, retry), context, **options)


class PlainSendRig:
    """A transport that sends, with a raw peer end that does not read until told to."""

    def __init__(
        self,
        send: Callable[[bytes, float], bytes],
        send_more: Callable[[bytes, float], None],
        filler: list[bytes],
        drain: Drain,
        end: Callable[[], None],
        closers: list[Any],
        *,
        packets: bool = False,
        fds: list[int] | None = None,
        fds_per_delivery: int = 0,
    ) -> None:
        self._send = send
        self._send_more = send_more
        self.filler = filler
        self._drain = drain
        self._end = end
        self._closers = closers
        self.packets = packets
        self._fds = fds
        self._fds_per_delivery = fds_per_delivery
        self.file_positions: list[int] = []

    def send(self, payload: bytes, timeout: float) -> bytes:
        return self._send(payload, timeout)

    def send_more(self, data: bytes, timeout: float) -> None:
        self._send_more(data, timeout)

    def start_drain(self) -> None:
        self._drain.start()

    def finish(self) -> list[bytes]:
        self._end()
        return self._drain.result()

    def check(self, deliveries: int) -> None:
        if self._fds is not None and len(self._fds) != deliveries * self._fds_per_delivery:
            raise Failed(f"the peer got {len(self._fds)} descriptors for {deliveries} sends carrying one")

    def close(self) -> None:
        self._drain.stop()
        close_all(*self._closers)


def chunks_of(payload: bytes) -> list[bytes]:
    # Empty chunks too, anywhere: the contract allows them.
    return [b"", *(payload[i : i + 10_000] for i in range(0, len(payload), 10_000)), b""]


def stream_send(
    transport: Any, method: str, passed: int, file_positions: list[int] | None = None
) -> Callable[[bytes, float], bytes]:
    """The send method under test, returning what it reports as sent."""

    def send(payload: bytes, timeout: float) -> bytes:
        if method == "send":
            return payload[: transport.send(payload, timeout)]
        if method == "send_file":
            with tempfile.TemporaryFile() as file:
                file.write(payload)
                file.seek(0)
                try:
                    return payload[: transport.send_file(file, timeout)]
                finally:
                    # Documented, also after an error: the position is past what was sent.
                    if file_positions is not None:
                        file_positions.append(file.tell())
        if method == "send_all":
            transport.send_all(payload, timeout)
        elif method == "send_all_from_iterable":
            transport.send_all_from_iterable(iter(chunks_of(payload)), timeout)
        else:
            transport.send_all_with_ancillary([payload], [fds_message([passed])], timeout)
        return payload

    return send


def stream_send_rig(kind: str, method: str, retry: float) -> PlainSendRig:
    ours, peer = stream_pair(kind, small=True)
    # The data of send_all() is larger than the buffers: part goes, then the call waits.
    filler = fill_socket(ours) if method in ("send", "send_all_with_ancillary") else b""
    transport = SocketStreamTransport(ours, retry)
    passed_read, passed_write = os.pipe()
    fds: list[int] = []
    drain = Drain(socket_reader(peer, fds))
    ancillary = "ancillary" in method
    file_positions: list[int] = []

    def send_more(data: bytes, timeout: float) -> None:
        if ancillary:
            transport.send_all_with_ancillary([data], [fds_message([passed_read])], timeout)
        else:
            transport.send_all(data, timeout)

    rig = PlainSendRig(
        stream_send(transport, method, passed_read, file_positions),
        send_more,
        [filler],
        drain,
        transport.close,
        [transport, peer, passed_read, passed_write],
        fds=fds,
        fds_per_delivery=1 if ancillary else 0,
    )
    rig.file_positions = file_positions
    return rig


def pipe_send_rig(kind: str, method: str, retry: float) -> PlainSendRig:
    read_end, write_end = small_pipe()
    filler = fill_pipe(write_end) if method == "send" else b""
    writer = PipeWriteTransport(write_end, retry)
    transport: StreamTransport | PipeWriteTransport = writer
    closers: list[Any] = [writer, read_end]
    if kind == "stapled-pipes":
        other_read, other_write = os.pipe()
        transport = StapledStreamTransport(writer, PipeReadTransport(other_read, retry))
        closers = [transport, read_end, other_write]
    return PlainSendRig(
        stream_send(transport, method, -1),
        transport.send_all,
        [filler],
        Drain(pipe_reader(read_end)),
        writer.close,
        closers,
    )


def datagram_send_rig(kind: str, method: str, retry: float) -> PlainSendRig:
    ours, peer = unix_pair(small=True, kind=socket.SOCK_DGRAM)
    ours.setblocking(False)
    filler: list[bytes] = []
    while True:
        packet = b"F%d" % len(filler)
        try:
            ours.send(packet)
        except BlockingIOError:
            break
        filler.append(packet)
    transport = SocketDatagramTransport(ours, retry)
    passed_read, passed_write = os.pipe()
    fds: list[int] = []
    ancillary = method == "send_with_ancillary"

    def send(payload: bytes, timeout: float) -> bytes:
        if ancillary:
            transport.send_with_ancillary(payload, [fds_message([passed_read])], timeout)
        else:
            transport.send(payload, timeout)
        return payload

    def send_more(data: bytes, timeout: float) -> None:
        send(data, timeout)

    return PlainSendRig(
        send,
        send_more,
        filler,
        Drain(socket_reader(peer, fds), packets=True),
        lambda: transport.send(END, LONG),
        [transport, peer, passed_read, passed_write],
        packets=True,
        fds=fds,
        fds_per_delivery=1 if ancillary else 0,
    )


class TLSSendRig:
    """Our TLS client sending to a TLS server that does not read until told to.

    No filler: the data is larger than what the small socket buffers hold.
    The peer does not care for close_notify (``standard_compatible=False``)
    and closes as soon as it read to the end, so our closing handshake
    never waits for it.
    """

    packets = False

    def __init__(self, kind: str, method: str, retry: float) -> None:
        self.filler: list[bytes] = []
        self.file_positions: list[int] = []
        ours, theirs = stream_pair(kind, small=True)
        made: list[StreamTransport] = []
        server = Helper(lambda: made.append(tls_transport(kind, theirs, retry, server=True, standard_compatible=False)))
        try:
            self.transport = tls_transport(kind, ours, retry, server=False)
        finally:
            server.join()
        self.peer = made[0]
        self._send = stream_send(self.transport, method, -1)
        self._drain = Drain(transport_reader(self.peer))

    def send(self, payload: bytes, timeout: float) -> bytes:
        return self._send(payload, timeout)

    def send_more(self, data: bytes, timeout: float) -> None:
        self.transport.send_all(data, timeout)

    def start_drain(self) -> None:
        self._drain.start()

    def finish(self) -> list[bytes]:
        # Our close_notify ends the peer's reading; the peer then closes, which
        # ends our wait for its answer.
        closer = Helper(self.transport.close)
        try:
            received = self._drain.result()
        finally:
            self.peer.close()
            closer.join()
        return received

    def check(self, deliveries: int) -> None:
        pass

    def close(self) -> None:
        self._drain.stop()
        self.peer.close()
        self.transport.close()


# --------------------------------------------------------------- cases ----


@dataclass
class Case:
    name: str
    estimate: float
    run: Callable[[Tally], None]


def with_rig(make: Callable[[], Any], check: Callable[[Any], None]) -> None:
    rig = make()
    try:
        check(rig)
    finally:
        rig.close()


def prime_wait_first(rig: ReceiveRig) -> None:
    """A receive that would block: the next ones wait before they try.

    It waits a millisecond rather than not at all, so that the poll object
    exists and the next receive waits on it inline, not through ``_wait()``.
    """
    try:
        rig.receive(0.001)
    except TimeoutError:
        return
    raise Failed("a receive with nothing to read returned")


def read_rest(rig: ReceiveRig, first: bytes, payload: bytes) -> bytes:
    """What the peer sent, from ``first`` on: a stream may come in pieces."""
    received = bytearray(first)
    deadline = time.monotonic() + LONG
    while not rig.packets and len(received) < len(payload) and time.monotonic() < deadline:
        chunk = rig.receive(max(deadline - time.monotonic(), 0.0))
        if not chunk:
            break
        received += chunk
    return bytes(received)


def expect_nothing_more(rig: ReceiveRig) -> None:
    try:
        extra = rig.receive(0.05)
    except TimeoutError:
        return
    raise Failed(f"{len(extra)} bytes more than the peer sent came")


def receive_cases(
    family: str, kind: str, method: str, make: Callable[[float], ReceiveRig], *, modes: bool
) -> list[Case]:
    """a, b and c for one receive method of one kind."""
    payload = secrets.token_bytes(3000)
    prefix = f"{family}/{kind}/{method}"

    def timeout_case(wait_first: bool) -> Callable[[Tally], None]:
        def check(rig: ReceiveRig, tally: Tally) -> None:
            if wait_first:
                prime_wait_first(rig)
            rig.stage(payload)  # a TLS record that never ends; nothing at all for the others
            expect_timeout(tally, under_signals(tally, lambda: rig.receive(SHORT)), SHORT)

        # A retry interval below the budget: the wait-first receive of a socket waits in C.
        retry = RETRY_SHORT if wait_first else RETRY_LONG
        return lambda tally: with_rig(lambda: make(retry), lambda rig: check(rig, tally))

    def data_case(timeout: float) -> Callable[[Tally], None]:
        def check(rig: ReceiveRig, tally: Tally) -> None:
            release = rig.stage(payload)
            sender = after_signals(release)
            try:
                first = expect_success(under_signals(tally, lambda: rig.receive(timeout)))
            finally:
                sender.join()
            if read_rest(rig, first, payload) != payload:
                raise Failed("the data received is not the data sent")
            expect_nothing_more(rig)
            rig.check(1)

        return lambda tally: with_rig(lambda: make(RETRY_SHORT), lambda rig: check(rig, tally))

    def raising_case(timeout: float) -> Callable[[Tally], None]:
        def check(rig: ReceiveRig, tally: Tally) -> None:
            release = rig.stage(payload)
            expect_raised(tally, under_signals(tally, lambda: rig.receive(timeout), SignalBoom))
            release()
            if read_rest(rig, rig.receive(LONG), payload) != payload:
                raise Failed("after the handler's exception, the data received is not the data sent")
            expect_nothing_more(rig)
            rig.check(1)

        return lambda tally: with_rig(lambda: make(RETRY_SHORT), lambda rig: check(rig, tally))

    cases = [Case(f"{prefix}/a/try-first", SHORT + 0.05, timeout_case(False))]
    if modes:
        cases.append(Case(f"{prefix}/a/wait-first", SHORT + 0.05, timeout_case(True)))
    for label, timeout in (("finite", LONG), ("infinite", math.inf)):
        cases.append(Case(f"{prefix}/b/{label}", DATA_DELAY + 0.07, data_case(timeout)))
        cases.append(Case(f"{prefix}/c/{label}", 0.12, raising_case(timeout)))
    return cases


def check_prefix_then_mark(rig: SendRig, received: list[bytes], payload: bytes) -> str:
    """After an interrupted send and one more: what went before, part of the data, then the next send."""
    if rig.packets:
        if received[: len(rig.filler)] != rig.filler:
            raise Failed("the packets queued before the call were not received first")
        rest = received[len(rig.filler) :]
        if rest not in ([MARK], [payload, MARK]):
            raise Failed(f"after the interrupted send the peer got {len(rest)} packets, not the data and the mark")
        rig.check(len(rest))
        return f"the interrupted packet {'went' if len(rest) == 2 else 'did not go'}"
    stream = b"".join(received)
    before = b"".join(rig.filler)
    if not stream.startswith(before) or not stream.endswith(MARK):
        raise Failed("the peer's stream is not what was queued before, then part of the data, then the mark")
    middle = stream[len(before) : -len(MARK)]
    if payload[: len(middle)] != middle:
        raise Failed(f"the {len(middle)} bytes between are not a prefix of the data: lost or doubled bytes")
    if rig.file_positions and rig.file_positions[0] != len(middle):
        raise Failed(f"send_file() left its file at {rig.file_positions[0]}, but {len(middle)} bytes went")
    rig.check(2 if middle else 1)
    return f"{len(middle)} of {len(payload)} bytes of the interrupted call reached the peer"


def send_cases(
    family: str,
    kind: str,
    method: str,
    make: Callable[[float], SendRig],
    payload_size: int,
    *,
    taken_at_deadline: bool = False,
) -> list[Case]:
    """a, b and c for one send method of one kind.

    ``taken_at_deadline``: the method may return a count when its budget
    runs out (TLS ``send``: once OpenSSL began a write, its data is taken,
    and a ``TimeoutError`` would tell the caller to send it again).
    """
    payload = secrets.token_bytes(payload_size)
    prefix = f"{family}/{kind}/{method}"

    def timeout_case(tally: Tally) -> None:
        def check(rig: SendRig) -> None:
            blocked = under_signals(tally, lambda: rig.send(payload, SHORT))
            if not (taken_at_deadline and blocked.error is None):
                expect_timeout(tally, blocked, SHORT)
                return
            if not blocked.result or payload[: len(blocked.result)] != blocked.result:
                raise Failed("the send returned at its deadline without a prefix of the data taken")
            expect_budget(tally, blocked, SHORT)
            tally.notes.append(f"{len(blocked.result)} bytes taken when the budget ran out")

        with_rig(lambda: make(RETRY_SHORT), check)

    def room_case(timeout: float) -> Callable[[Tally], None]:
        def check(rig: SendRig, tally: Tally) -> None:
            reader = after_signals(rig.start_drain)
            try:
                sent = expect_success(under_signals(tally, lambda: rig.send(payload, timeout)))
            finally:
                reader.join()
            if not sent or payload[: len(sent)] != sent:
                raise Failed(f"the call reported {len(sent)} bytes sent, not a prefix of the data")
            received = rig.finish()
            expected = [*rig.filler, sent] if rig.packets else [b"".join(rig.filler) + sent]
            if (received if rig.packets else [b"".join(received)]) != expected:
                raise Failed("the peer did not receive exactly what was queued before and what the call sent")
            rig.check(1)
            tally.notes.append(f"sent {len(sent)} bytes")

        return lambda tally: with_rig(lambda: make(RETRY_SHORT), lambda rig: check(rig, tally))

    def raising_case(timeout: float) -> Callable[[Tally], None]:
        def check(rig: SendRig, tally: Tally) -> None:
            expect_raised(tally, under_signals(tally, lambda: rig.send(payload, timeout), SignalBoom))
            rig.start_drain()
            rig.send_more(MARK, LONG)
            tally.notes.append(check_prefix_then_mark(rig, rig.finish(), payload))

        return lambda tally: with_rig(lambda: make(RETRY_SHORT), lambda rig: check(rig, tally))

    cases = [Case(f"{prefix}/a/finite", SHORT + 0.05, timeout_case)]
    for label, timeout in (("finite", LONG), ("infinite", math.inf)):
        cases.append(Case(f"{prefix}/b/{label}", DATA_DELAY + 0.05, room_case(timeout)))
        cases.append(Case(f"{prefix}/c/{label}", 0.12, raising_case(timeout)))
    return cases


def peer_sees_end(sock: socket.socket) -> bool:
    """Whether the raw ``sock`` reads to an end (what was sent, then EOF) promptly."""
    sock.settimeout(0.05)
    deadline = time.monotonic() + PROMPT
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def close_both(first: StreamTransport, second: StreamTransport) -> None:
    """Close two TLS ends at once, so that each closing handshake is answered."""
    closer = Helper(second.close)
    try:
        first.close()
    finally:
        closer.join()


def handshake_cases(kind: str) -> list[Case]:
    """The constructor's handshake, against a peer silent for ever or for a while."""
    prefix = f"tls/{kind}/handshake"

    def connect(tally: Tally, timeout: float, peer_comes: bool, raising: bool) -> None:
        ours, peer = stream_pair(kind, small=False)
        made: list[StreamTransport] = []
        server = None
        if peer_comes:
            server = after_signals(lambda: made.append(tls_transport(kind, peer, RETRY_SHORT, server=True)))
        try:
            blocked = under_signals(
                tally,
                lambda: tls_transport(kind, ours, RETRY_SHORT, server=False, handshake_timeout=timeout),
                SignalBoom if raising else None,
            )
            if server is not None:
                server.join()
            if blocked.result is not None:
                client: StreamTransport = blocked.result
                try:
                    expect_success(blocked)
                    client.send_all(b"ping", LONG)
                    if made[0].recv(10, LONG) != b"ping":
                        raise Failed("the connection made under signals does not carry data")
                finally:
                    close_both(client, made[0])
                return
            if raising:
                expect_raised(tally, blocked)
            elif not peer_comes:
                expect_timeout(tally, blocked, timeout)
            else:
                raise Failed(f"the handshake failed: {describe(blocked.error)}")
            # The failed constructor closed its socket: the peer reads the hello, then the end.
            if not peer_sees_end(peer):
                raise Failed("the socket of the failed handshake was not closed")
        finally:
            close_all(*made, peer)

    cases = [Case(f"{prefix}/a/finite", SHORT + 0.1, lambda tally: connect(tally, SHORT, False, False))]
    for label, timeout in (("finite", LONG), ("infinite", math.inf)):
        cases.append(
            Case(
                f"{prefix}/b/{label}",
                DATA_DELAY + 0.1,
                partial(connect, timeout=timeout, peer_comes=True, raising=False),
            )
        )
        cases.append(
            Case(f"{prefix}/c/{label}", 0.15, partial(connect, timeout=timeout, peer_comes=False, raising=True))
        )
    return cases


def close_cases(kind: str) -> list[Case]:
    """close() waiting for the peer's close_notify, at most ``shutdown_timeout``."""
    prefix = f"tls/{kind}/close"

    def run(tally: Tally, shutdown_timeout: float, peer_answers: bool, raising: bool) -> None:
        ours, theirs = stream_pair(kind, small=False)
        made: list[StreamTransport] = []
        server = Helper(lambda: made.append(tls_transport(kind, theirs, RETRY_SHORT, server=True)))
        try:
            transport = tls_transport(kind, ours, RETRY_SHORT, server=False, shutdown_timeout=shutdown_timeout)
        finally:
            server.join()
        peer = made[0]
        answered: list[bytes] = []

        def answer() -> None:
            answered.append(peer.recv(100, LONG))  # our close_notify
            peer.close()  # sends the peer's

        try:
            answerer = after_signals(answer) if peer_answers else None
            blocked = under_signals(tally, transport.close, SignalBoom if raising else None)
            if answerer is not None:
                answerer.join()
            if raising:
                expect_raised(tally, blocked)
            elif blocked.error is not None:
                raise Failed(f"close() raised {describe(blocked.error)}")
            elif not peer_answers:
                expect_budget(tally, blocked, shutdown_timeout)
            else:
                expect_success(blocked)
                if answered != [b""]:
                    raise Failed(f"the peer read {answered!r} instead of our close_notify")
            if not transport.is_closed():
                raise Failed("the transport is not closed after close()")
            if not peer_answers and peer.recv(100, LONG) != b"":
                raise Failed("the peer did not get our close_notify")
        finally:
            close_all(peer, transport)

    cases = [Case(f"{prefix}/a/finite", SHORT + 0.1, lambda tally: run(tally, SHORT, False, False))]
    for label, timeout in (("finite", LONG), ("infinite", math.inf)):
        cases.append(
            Case(
                f"{prefix}/b/{label}",
                DATA_DELAY + 0.1,
                partial(run, shutdown_timeout=timeout, peer_answers=True, raising=False),
            )
        )
        cases.append(
            Case(f"{prefix}/c/{label}", 0.15, partial(run, shutdown_timeout=timeout, peer_answers=False, raising=True))
        )
    return cases


def stream_family() -> list[Case]:
    cases: list[Case] = []
    for kind in ("tcp", "unix"):
        ancillary = kind == "unix"  # on TCP the ancillary methods are unsupported
        receives = ["recv", "recv_into"] + (["recv_with_ancillary", "recv_with_ancillary_into"] if ancillary else [])
        for method in receives:
            make = partial(stream_receive_rig, kind, method)
            # The ancillary receives have no wait-first mode: they always retry through poll.
            cases += receive_cases("stream", kind, method, make, modes="ancillary" not in method)
        sends = ["send", "send_all", "send_all_from_iterable", "send_file"]
        if ancillary:
            sends.append("send_all_with_ancillary")
        for method in sends:
            # Ancillary data goes in one sendmsg, which must find room for all of it.
            size = 1000 if "ancillary" in method else 200_000
            cases += send_cases("stream", kind, method, partial(stream_send_rig, kind, method), size)
    return cases


def datagram_family() -> list[Case]:
    cases: list[Case] = []
    for kind in ("udp", "unix-dgram"):
        for method in ("recv", "recv_with_ancillary"):
            make = partial(datagram_receive_rig, kind, method)
            cases += receive_cases("datagram", kind, method, make, modes=method == "recv")
    # A UDP send never waits for room; a Unix datagram send waits while the peer's queue is full.
    for method in ("send", "send_with_ancillary"):
        cases += send_cases("datagram", "unix-dgram", method, partial(datagram_send_rig, "unix-dgram", method), 500)
    return cases


def pipe_family() -> list[Case]:
    cases: list[Case] = []
    for method in ("recv", "recv_into"):
        cases += receive_cases("pipe", "pipe", method, partial(pipe_receive_rig, "pipe", method), modes=True)
    for method in ("send", "send_all", "send_all_from_iterable"):
        cases += send_cases("pipe", "pipe", method, partial(pipe_send_rig, "pipe", method), 100_000)
    # Through StapledStreamTransport, which only forwards: one receive, one send.
    make = partial(pipe_receive_rig, "stapled-pipes", "recv")
    cases += receive_cases("pipe", "stapled-pipes", "recv", make, modes=False)
    cases += send_cases(
        "pipe", "stapled-pipes", "send_all", partial(pipe_send_rig, "stapled-pipes", "send_all"), 100_000
    )
    return cases


def tls_family(kind: str) -> list[Case]:
    cases: list[Case] = []
    for method in ("recv", "recv_into"):
        # The memory-BIO transport has no wait-first mode of its own.
        cases += receive_cases("tls", kind, method, partial(TLSReceiveRig, kind, method), modes=kind == "ssl")
    for method, size in (("send", 65536), ("send_all", 300_000), ("send_all_from_iterable", 300_000)):
        make = partial(TLSSendRig, kind, method)
        cases += send_cases("tls", kind, method, make, size, taken_at_deadline=method == "send")
    for case in cases:
        case.estimate += 0.08  # the handshake of the rig
    return cases + handshake_cases(kind) + close_cases(kind)


def exception_cases() -> list[Case]:
    """Other exception types from the handler, on each way a receive or a send waits."""
    payload = secrets.token_bytes(2000)
    big = secrets.token_bytes(100_000)

    def receive(tally: Tally, make: Callable[[], ReceiveRig], timeout: float, wait_first: bool, exception: str) -> None:
        def check(rig: ReceiveRig) -> None:
            if wait_first:
                prime_wait_first(rig)
            release = rig.stage(payload)
            expect_raised(tally, under_signals(tally, lambda: rig.receive(timeout), EXCEPTION_KINDS[exception]))
            release()
            if read_rest(rig, rig.receive(LONG), payload) != payload:
                raise Failed("after the handler's exception, the data received is not the data sent")
            expect_nothing_more(rig)

        with_rig(make, check)

    def send(tally: Tally, make: Callable[[], SendRig], exception: str) -> None:
        def check(rig: SendRig) -> None:
            expect_raised(
                tally, under_signals(tally, lambda: rig.send(big, EXCEPTION_BUDGET), EXCEPTION_KINDS[exception])
            )
            rig.start_drain()
            rig.send_more(MARK, LONG)
            tally.notes.append(check_prefix_then_mark(rig, rig.finish(), big))

        with_rig(make, check)

    budget = EXCEPTION_BUDGET
    # Each takes the tally, and the exception type by keyword.
    paths: dict[str, Callable[..., None]] = {
        # A poll from Python, after a first try that would block.
        "pipe/recv/try-first": partial(
            receive, make=partial(pipe_receive_rig, "pipe", "recv", RETRY_LONG), timeout=budget, wait_first=False
        ),
        # The wait-first receive's own poll.
        "pipe/recv/wait-first": partial(
            receive, make=partial(pipe_receive_rig, "pipe", "recv", RETRY_LONG), timeout=budget, wait_first=True
        ),
        "unix/recv/try-first": partial(
            receive, make=partial(stream_receive_rig, "unix", "recv", RETRY_LONG), timeout=budget, wait_first=False
        ),
        "unix/recv/wait-first-poll": partial(
            receive, make=partial(stream_receive_rig, "unix", "recv", RETRY_LONG), timeout=budget, wait_first=True
        ),
        # A budget of at least retry_interval: the wait is made in C.
        "unix/recv/wait-first-in-C": partial(
            receive, make=partial(stream_receive_rig, "unix", "recv", RETRY_IN_C), timeout=budget, wait_first=True
        ),
        # No budget: the wait is the kernel's, inside recv().
        "unix/recv/infinite": partial(
            receive, make=partial(stream_receive_rig, "unix", "recv", RETRY_SHORT), timeout=math.inf, wait_first=False
        ),
        "udp/recv/wait-first-in-C": partial(
            receive, make=partial(datagram_receive_rig, "udp", "recv", RETRY_IN_C), timeout=budget, wait_first=True
        ),
        "unix/send_all/finite": partial(send, make=partial(stream_send_rig, "unix", "send_all", RETRY_SHORT)),
        # Once OpenSSL began a write, a TLS send() returns its count when its budget runs out.
        "ssl/send/finite": partial(send, make=partial(TLSSendRig, "ssl", "send", RETRY_SHORT)),
        "tls/send/finite": partial(send, make=partial(TLSSendRig, "tls", "send", RETRY_SHORT)),
        "ssl/recv/try-first": partial(
            receive, make=partial(TLSReceiveRig, "ssl", "recv", RETRY_LONG), timeout=budget, wait_first=False
        ),
        # No budget: the wrapped socket transport waits in the kernel's recv(), where
        # each of these exceptions comes out; what is checked is the TLS layer around it.
        "tls/recv/wrapped-infinite": partial(
            receive, make=partial(TLSReceiveRig, "tls", "recv", RETRY_SHORT), timeout=math.inf, wait_first=False
        ),
    }
    cases: list[Case] = []
    for path, check in paths.items():
        for exception in EXCEPTION_KINDS:
            name = f"handler-exceptions/{path}/{exception}"
            estimate = EXCEPTION_BUDGET + 0.1 if name in KNOWN_DEFECTS else 0.15
            cases.append(Case(name, estimate, partial(check, exception=exception)))
    return cases


# The families that need certificates (made once, before the workers fork).
TLS_FAMILIES = ("ssl", "tls", "handler-exceptions")
FAMILIES: dict[str, Callable[[], list[Case]]] = {
    "stream": stream_family,
    "datagram": datagram_family,
    "pipe": pipe_family,
    "ssl": partial(tls_family, "ssl"),
    "tls": partial(tls_family, "tls"),
    "handler-exceptions": exception_cases,
}


# -------------------------------------------------------------- running ----


def run_case(case: Case) -> dict[str, Any]:
    gc.collect()
    descriptors = descriptor_count()
    started = time.monotonic()
    busy: list[str] = []
    failure: str | None = None
    while True:
        tally = Tally()
        failure = None
        try:
            case.run(tally)
        except Busy as exc:
            failure = str(exc)
            if len(busy) < BUSY_RERUNS:
                busy.append(failure)
                continue
        except Failed as exc:
            failure = str(exc)
        except BaseException as exc:  # whatever escaped, KeyboardInterrupt included, is a failure of the case
            failure = "".join(traceback.format_exception(exc))
        break
    tally.notes += [f"run again after: {reason}" for reason in busy]
    if failure is None:
        gc.collect()
        if descriptor_count() != descriptors:
            failure = f"{descriptor_count() - descriptors} descriptors more after the case than before"
        elif threading.active_count() != 1:
            failure = f"threads left running: {[t.name for t in threading.enumerate()]}"
    known = KNOWN_DEFECTS.get(case.name)
    status = "passed" if failure is None else "failed"
    if known is not None:
        # The defect is a handler's exception that the call lost; any other failure is one of its own.
        if failure is None:
            status = "known defect passed"
        elif failure.startswith("the handler raised"):
            status = "known defect"
    return {
        "case": case.name,
        "status": status,
        "seconds": round(time.monotonic() - started, 3),
        "calls": tally.calls,
        "signals": tally.signals,
        "raising_handlers": tally.raising,
        "overrun": None if tally.overrun is None else round(tally.overrun, 4),
        "reruns": len(busy),
        "notes": tally.notes,
        "failure": failure,
        "defect": known,
    }


UNRAISABLE: list[str] = []


def record_unraisable(unraisable: Any) -> None:
    UNRAISABLE.append(f"{unraisable.exc_type.__name__}: {unraisable.exc_value} ({unraisable.object!r})")


def work(cases: list[Case], output: int) -> None:
    """A forked worker: run ``cases`` one after the other, write the results as JSON."""
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    # What exists now lives as long as the worker: the collections of each
    # case (for the descriptor counts) then look at that case's objects only.
    gc.freeze()
    results = [run_case(case) for case in cases]
    if UNRAISABLE:
        results.append({"case": "(worker)", "status": "failed", "failure": "; ".join(UNRAISABLE)})
    data = json.dumps(results).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(output, view) :]
    os.close(output)


def share_out(cases: list[Case]) -> list[list[Case]]:
    """Longest first, each to the worker with the least waiting so far."""
    total = sum(case.estimate for case in cases)
    count = max(1, min(MAX_WORKERS, math.ceil(total / WORKER_SECONDS)))
    shares: list[list[Case]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for case in sorted(cases, key=lambda case: -case.estimate):
        index = loads.index(min(loads))
        shares[index].append(case)
        loads[index] += case.estimate
    return shares


def main(argv: list[str]) -> int:
    global SERVER_CONTEXT, CLIENT_CONTEXT
    if len(argv) != 2 or (argv[1] not in FAMILIES and argv[1] != "--list"):
        print(f"usage: {argv[0]} {{{','.join(FAMILIES)}}} | --list", file=sys.stderr)
        return 2
    if argv[1] == "--list":
        for family in FAMILIES.values():
            for case in family():
                print(case.name)
        return 0
    if argv[1] in TLS_FAMILIES:
        SERVER_CONTEXT, CLIENT_CONTEXT = contexts()
    warnings.simplefilter("error")  # a ResourceWarning from a finaliser then reaches the hook below
    sys.unraisablehook = record_unraisable
    signal.signal(signal.SIGUSR1, HANDLER)
    started = time.monotonic()
    shares = share_out(FAMILIES[argv[1]]())
    sys.stdout.flush()
    workers: list[tuple[int, int]] = []
    # Forked before any thread exists (the watchdog's included): the workers
    # share the imports and the certificates, and fork() has no thread to lose.
    for share in shares:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_end)
                work(share, write_end)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        workers.append((pid, read_end))
    faulthandler.dump_traceback_later(WATCHDOG + 10, exit=True)
    results: list[dict[str, Any]] = []
    for pid, read_end in workers:
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if data:
            results += json.loads(data)
        if status != 0 or not data:
            results.append({"case": f"(worker {pid})", "status": "failed", "failure": f"wait status {status}"})
    failures = [r for r in results if r["status"] in ("failed", "known defect passed")]
    summary = {
        "family": argv[1],
        "workers": len(shares),
        "seconds": round(time.monotonic() - started, 3),
        "cases": sum(1 for r in results if "calls" in r),
        "calls": sum(r.get("calls", 0) for r in results),
        "signals": sum(r.get("signals", 0) for r in results),
        "raising_handlers": sum(r.get("raising_handlers", 0) for r in results),
        "max_overrun": max((r["overrun"] for r in results if r.get("overrun") is not None), default=None),
        "reruns": sum(r.get("reruns", 0) for r in results),
        "known_defects": [r for r in results if r["status"] == "known defect"],
        "failures": failures,
        "results": results,
    }
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
