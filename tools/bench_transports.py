"""Benchmark: our transports against plain stdlib code and easynetwork 1.2.

    python tools/bench_transports.py                 # every row, 21 repetitions
    python tools/bench_transports.py --repeat 5 --rows tcp-pingpong,udp-pingpong
    tox -e bench                                     # the same, in its own environment

Every row is one job done by four clients, with the two endpoints in
separate processes on loopback (or over pipes to a child process):

- ``ours``: the transports of this repository;
- ``plain``: stdlib code doing the same job as one would write it by hand
  (a blocking socket with ``settimeout``; ``sendall``/``recv``; ``sendmsg``;
  ``ssl.SSLSocket``; ``os.read``/``os.write``);
- ``easynetwork``: easynetwork 1.2.0's synchronous transports, where it has
  an equivalent (it is installed in the benchmark environment only);
- ``control``: a second ``plain`` client on a connection of its own;
- ``floor`` (the rows of short connections and of line reads): the plain
  client's code inside the least a transport object can be, one that holds
  the socket, shuts it down on close and warns when dropped open, with no
  timeouts of its own (and, for lines, the least buffered reader stacked
  on it): what wrapping alone costs, which no transport can go below.

The clients run interleaved, in ``--repeat`` x ``--slices`` rounds (bulk
rows: ``--slices`` / 5, so that a slice outlasts the socket buffers): in
each round every client runs a slice of its operations in turn (in a
random order), and the slices of one round are the paired samples, so that
they share whatever mode the machine is in; the machine flips
between a fast and a slow scheduling mode that moves absolute figures by
about 3x, while ratios of runs made back to back hold. Every repetition
makes its clients anew (new connections), and the garbage collector is off
while the rounds of a repetition run. The report gives, per row and
timeout kind, the median of the paired ratios of wall time and of client
CPU time (user + system of the client process) per operation, with their
quartiles, which show how far one round's ratio moves, and for every budget
line a 95% interval of the median, resampled by repetition. Every row also
runs a second plain client, the control (``--no-control`` leaves it out):
how far it lands from the first is what the machine cannot tell apart.
With two CPUs or more, the client runs on the first and every server on
the second (``--no-pin`` turns this off), so the two ends never queue for
one CPU and each wakes the other the same way in every run.

Output: a markdown table on stdout (also written to ``--out/latest.md``),
a JSON file (``--out/latest.json``) and a PNG chart (``--chart``). Budget
lines (docs/performance.md) are checked and printed at the end; the
exit status is 1 when one fails and ``--strict`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import random
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FINITE = 30.0
RETRY_INTERVAL = 1.0
PING = b"p" * 64
CHUNK = os.urandom(64 * 1024)
GATHER = [os.urandom(100) for _ in range(256)]
DEV_MODE_WARNING = (
    " **Python's development mode was on (PYTHONDEVMODE / -X dev): its allocator"
    " hooks slow Python code more than C code, so these ratios are not ours.**"
)
BATCH_CHUNKS = 16  # bulk rows: the server acknowledges every this many chunks
BULK_SLICES_DIVISOR = 5  # bulk rows: --slices / 5 rounds per repetition (see Row.slices_divisor)

# ------------------------------------------------------------------ server side
# The peer of every row is plain stdlib code in another process, the same for
# all the clients: only the client side is measured.


def _serve_connection(conn: socket.socket, mode: str, tls: ssl.SSLContext | None) -> None:
    with contextlib.ExitStack() as stack:
        stack.enter_context(conn)
        if tls is not None:
            conn = stack.enter_context(tls.wrap_socket(conn, server_side=True))
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        if mode == "echo":
            while n := conn.recv_into(buffer):
                conn.sendall(view[:n])
        else:  # sink: count bytes; acknowledge each announced batch
            header = conn.recv(8)
            if len(header) != 8:
                return
            batch = int.from_bytes(header, "big")
            received = 0
            while n := conn.recv_into(buffer):
                received += n
                while received >= batch:
                    received -= batch
                    conn.sendall(b"k")


def pin_to(cpu: int | None) -> None:
    """Keep this process on one CPU (client and server on different ones)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


SERVER_CPU: int | None = None  # set by --pin; passed to every server process


def serve_command(kind: str, mode: str) -> list[str]:
    command = [sys.executable, __file__, "--serve", kind, "--mode", mode]
    return command if SERVER_CPU is None else [*command, "--cpu", str(SERVER_CPU)]


def _serve(kind: str, mode: str, cert: str | None, directory: str | None) -> None:
    tls: ssl.SSLContext | None = None
    if cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert)
    if kind == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            print(json.dumps(sock.getsockname()), flush=True)
            while True:
                data, sender = sock.recvfrom(65536)
                sock.sendto(data, sender)
    if kind == "connector":
        # The peer of the accept row: connects to the address given as --dir
        # ("host:port"), sends 64 B, reads the echo, closes; again and again.
        host, _, port = (directory or "").rpartition(":")
        while True:
            with socket.create_connection((host, int(port))) as conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.sendall(PING)
                got = 0
                while got < len(PING):
                    chunk = conn.recv(len(PING) - got)
                    if not chunk:
                        break
                    got += len(chunk)
    if kind == "pipe":
        while data := os.read(0, 1 << 20):
            view = memoryview(data)
            while view:
                view = view[os.write(1, view) :]
        return
    family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        if family == socket.AF_UNIX:
            assert directory is not None, "a Unix server needs --dir"
            path = os.path.join(directory, "s")
            listener.bind(path)
            address: Any = path
        else:  # AF_INET
            listener.bind(("127.0.0.1", 0))
            address = listener.getsockname()
        listener.listen(16)
        print(json.dumps(address), flush=True)
        while True:
            conn, _ = listener.accept()
            if family == socket.AF_INET:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_serve_connection, args=(conn, mode, tls), daemon=True).start()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    address: Any


@contextlib.contextmanager
def server(kind: str, mode: str, cert: str | None = None) -> Iterator[Server]:
    # The server is killed, so the directory of its Unix socket is made and
    # removed here.
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        command = [*serve_command(kind, mode), "--dir", directory]
        if cert:
            command += ["--cert", cert]
        process = subprocess.Popen(command, stdout=subprocess.PIPE)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            address = json.loads(line)
            yield Server(process, tuple(address) if isinstance(address, list) else address)
        finally:
            process.kill()
            process.wait(10)
            if process.stdout is not None:
                process.stdout.close()


# ------------------------------------------------------------------ client side


@dataclass
class Runner:
    """One client: ``run(n)`` performs n operations; ``close()`` ends it."""

    run: Callable[[int], None]
    close: Callable[[], None]


def connect(address: Any) -> socket.socket:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.connect(address)
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def expect(recv: Callable[[int], bytes], size: int) -> None:
    got = 0
    while got < size:
        data = recv(size - got)
        if not data:
            raise ConnectionError("server closed")
        got += len(data)


# Each client factory takes (sock, timeout) and returns the operations as a
# small object with send_all / recv / send_all_from_iterable / close. The
# implementations are spelt out so each is the natural code.


class PlainStream:
    def __init__(self, sock: socket.socket, timeout: float) -> None:
        sock.settimeout(None if timeout == math.inf else timeout)
        self.sock = sock

    def send_all(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, n: int) -> bytes:
        return self.sock.recv(n)

    def send_all_from_iterable(self, chunks: list[bytes]) -> None:
        sent = self.sock.sendmsg(chunks)
        total = sum(map(len, chunks))
        if sent < total:
            self.sock.sendall(b"".join(chunks)[sent:])

    def close(self) -> None:
        self.sock.close()


class TransportStream:
    """Adapter over any transports.abc-style stream transport (ours or easynetwork's)."""

    def __init__(self, transport: Any, timeout: float) -> None:
        self.transport = transport
        self.timeout = timeout

    def send_all(self, data: bytes) -> None:
        self.transport.send_all(data, self.timeout)

    def recv(self, n: int) -> bytes:
        # As short as PlainStream.recv: this adapter is part of the measured loop.
        return self.transport.recv(n, self.timeout)  # type: ignore[no-any-return]

    def send_all_from_iterable(self, chunks: list[bytes]) -> None:
        self.transport.send_all_from_iterable(chunks, self.timeout)

    def close(self) -> None:
        self.transport.close()


def ours_stream(sock: socket.socket, timeout: float) -> TransportStream:
    from transports.socket import SocketStreamTransport

    return TransportStream(SocketStreamTransport(sock, RETRY_INTERVAL), timeout)


def easynetwork_stream(sock: socket.socket, timeout: float) -> TransportStream:
    from easynetwork.lowlevel.api_sync.transports.socket import SocketStreamTransport

    return TransportStream(SocketStreamTransport(sock, RETRY_INTERVAL), timeout)


@dataclass
class TLSSetup:
    client_context: ssl.SSLContext
    cert_file: str


def plain_tls(tls: TLSSetup) -> Callable[[socket.socket, float], PlainStream]:
    def make(sock: socket.socket, timeout: float) -> PlainStream:
        sock.settimeout(10.0)
        wrapped = tls.client_context.wrap_socket(sock, server_hostname="localhost")
        return PlainStream(wrapped, timeout)

    return make


def ours_tls(tls: TLSSetup) -> Callable[[socket.socket, float], TransportStream]:
    def make(sock: socket.socket, timeout: float) -> TransportStream:
        from transports.socket import SSLStreamTransport

        transport = SSLStreamTransport(sock, tls.client_context, RETRY_INTERVAL, server_hostname="localhost")
        return TransportStream(transport, timeout)

    return make


def ours_membio_tls(tls: TLSSetup) -> Callable[[socket.socket, float], TransportStream]:
    def make(sock: socket.socket, timeout: float) -> TransportStream:
        from transports.composite import TLSStreamTransport
        from transports.socket import SocketStreamTransport

        inner = SocketStreamTransport(sock, RETRY_INTERVAL)
        return TransportStream(TLSStreamTransport(inner, tls.client_context, server_hostname="localhost"), timeout)

    return make


def easynetwork_tls(tls: TLSSetup) -> Callable[[socket.socket, float], TransportStream]:
    def make(sock: socket.socket, timeout: float) -> TransportStream:
        from easynetwork.lowlevel.api_sync.transports.socket import SSLStreamTransport

        transport = SSLStreamTransport(sock, tls.client_context, RETRY_INTERVAL, server_hostname="localhost")
        return TransportStream(transport, timeout)

    return make


def stream_pingpong(make: Callable[[socket.socket, float], Any], address: Any, timeout: float) -> Runner:
    client = make(connect(address), timeout)

    def run(n: int) -> None:
        send_all, recv = client.send_all, client.recv
        for _ in range(n):
            send_all(PING)
            expect(recv, 64)

    return Runner(run, client.close)


def stream_bulk(make: Callable[[socket.socket, float], Any], address: Any, timeout: float, batch: int) -> Runner:
    client = make(connect(address), timeout)
    client.send_all(batch.to_bytes(8, "big"))

    def run(n: int) -> None:
        send_all = client.send_all
        for _ in range(n):
            send_all(CHUNK)
        expect(client.recv, n * len(CHUNK) // batch)

    return Runner(run, client.close)


def stream_gather(make: Callable[[socket.socket, float], Any], address: Any, timeout: float) -> Runner:
    client = make(connect(address), timeout)
    client.send_all((100 * 256).to_bytes(8, "big"))

    def run(n: int) -> None:
        send = client.send_all_from_iterable
        for _ in range(n):
            send(GATHER)
        expect(client.recv, n)

    return Runner(run, client.close)


def udp_pingpong(impl: str, address: Any, timeout: float) -> Runner:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(address)
    if impl == "plain":
        sock.settimeout(None if timeout == math.inf else timeout)

        def run_plain(n: int) -> None:
            send, recv = sock.send, sock.recv
            for _ in range(n):
                send(PING)
                recv(65536)

        return Runner(run_plain, sock.close)
    if impl == "ours":
        from transports.socket import SocketDatagramTransport as Ours

        transport: Any = Ours(sock, RETRY_INTERVAL)
    else:
        from easynetwork.lowlevel.api_sync.transports.socket import SocketDatagramTransport as Theirs

        transport = Theirs(sock, RETRY_INTERVAL)

    def run(n: int) -> None:
        send, recv = transport.send, transport.recv
        for _ in range(n):
            send(PING, timeout)
            recv(timeout)

    return Runner(run, transport.close)


def pipe_pingpong(impl: str, timeout: float, stapled: bool = False) -> Runner:
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    child = subprocess.Popen(serve_command("pipe", "echo"), stdin=to_child_r, stdout=from_child_w)
    os.close(to_child_r)
    os.close(from_child_w)

    def finish(close: Callable[[], None]) -> Callable[[], None]:
        def close_all() -> None:
            close()
            child.wait(10)

        return close_all

    if impl == "plain":

        def run_plain(n: int) -> None:
            for _ in range(n):
                os.write(to_child_w, PING)
                got = 0
                while got < 64:
                    got += len(os.read(from_child_r, 64 - got))

        def close_plain() -> None:
            os.close(to_child_w)
            os.close(from_child_r)

        return Runner(run_plain, finish(close_plain))
    from transports.selector import PipeReadTransport, PipeWriteTransport

    writer = PipeWriteTransport(to_child_w, RETRY_INTERVAL)
    reader = PipeReadTransport(from_child_r, RETRY_INTERVAL)
    if stapled:
        from transports.composite import StapledStreamTransport

        both = StapledStreamTransport(writer, reader)
        send_all, recv, close = both.send_all, both.recv, both.close
    else:
        send_all, recv = writer.send_all, reader.recv

        def close() -> None:
            writer.close()
            reader.close()

    def run(n: int) -> None:
        for _ in range(n):
            send_all(PING, timeout)
            got = 0
            while got < 64:
                got += len(recv(64 - got, timeout))

    return Runner(run, finish(close))


LINE = b"l" * 63 + b"\n"
LINES_PER_OP = 8
LINE_LIMIT = 64 * 1024  # both clients refuse a longer line


def lines_recv_until(impl: str, address: Any, timeout: float) -> Runner:
    """A line protocol over the echo server: 8 lines of 64 B sent at once, read back one by one.

    ``ours`` reads them with ``BufferedStreamTransport.recv_until``; ``plain``
    with the loop one writes by hand over ``socket.recv``: a ``bytearray``,
    a ``find`` that skips what was searched, the same line limit.
    """
    sock = connect(address)
    batch = LINE * LINES_PER_OP
    if impl == "plain":
        sock.settimeout(None if timeout == math.inf else timeout)
        buffer = bytearray()

        def readline() -> bytes:
            searched = 0
            while (index := buffer.find(b"\n", searched)) < 0:
                if len(buffer) >= LINE_LIMIT:
                    raise ValueError("line too long")
                searched = len(buffer)
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed")
                buffer.extend(chunk)
            line = bytes(buffer[:index])
            del buffer[: index + 1]
            return line

        def run_plain(n: int) -> None:
            sendall = sock.sendall
            for _ in range(n):
                sendall(batch)
                for _ in range(LINES_PER_OP):
                    readline()

        return Runner(run_plain, sock.close)
    stream: Any
    if impl == "floor":
        sock.settimeout(None if timeout == math.inf else timeout)
        stream = FloorLineReader(FloorTransport(sock, RETRY_INTERVAL))
    else:
        from transports.composite import BufferedStreamTransport
        from transports.socket import SocketStreamTransport

        stream = BufferedStreamTransport(SocketStreamTransport(sock, RETRY_INTERVAL))

    def run(n: int) -> None:
        send_all, recv_until = stream.send_all, stream.recv_until
        for _ in range(n):
            send_all(batch, timeout)
            for _ in range(LINES_PER_OP):
                recv_until(b"\n", LINE_LIMIT, timeout)

    return Runner(run, stream.close)


def tcp_connect(impl: str, address: Any, timeout: float) -> Runner:
    """Open a TCP connection, make one 64 B round trip, close it: what a short-lived client does.

    ``plain`` is ``socket.create_connection`` with ``TCP_NODELAY`` and a
    timeout; ``ours`` is ``connect_tcp`` (which sets ``TCP_NODELAY``).
    """
    host, port = address
    if impl == "plain":
        plain_timeout = None if timeout == math.inf else timeout

        def run_plain(n: int) -> None:
            for _ in range(n):
                with socket.create_connection((host, port), plain_timeout) as sock:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sock.sendall(PING)
                    expect(sock.recv, len(PING))

        return Runner(run_plain, lambda: None)
    if impl == "floor":
        floor_timeout = None if timeout == math.inf else timeout

        def run_floor(n: int) -> None:
            for _ in range(n):
                sock = socket.create_connection((host, port), floor_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with FloorTransport(sock, RETRY_INTERVAL) as transport:
                    transport.send_all(PING, timeout)
                    got = 0
                    while got < len(PING):
                        got += len(transport.recv(len(PING) - got, timeout))

        return Runner(run_floor, lambda: None)
    from transports.socket import connect_tcp

    def run(n: int) -> None:
        for _ in range(n):
            with connect_tcp(host, port, timeout) as transport:
                transport.send_all(PING, timeout)
                got = 0
                while got < len(PING):
                    got += len(transport.recv(len(PING) - got, timeout))

    return Runner(run, lambda: None)


def _connecting_child(listening: socket.socket) -> Callable[[], None]:
    """Start a child process that connects to ``listening`` again and again; return what stops it."""
    host, port = listening.getsockname()[:2]
    child = subprocess.Popen([*serve_command("connector", "echo"), "--dir", f"{host}:{port}"])

    def stop() -> None:
        child.kill()
        child.wait(10)

    return stop


def _plain_accepts(listening: socket.socket, timeout: float) -> Callable[[int], None]:
    """The plain client of the server-side rows: ``socket.accept`` with a timeout, ``TCP_NODELAY``, an echo."""
    listening.settimeout(None if timeout == math.inf else timeout)

    def run_plain(n: int) -> None:
        for _ in range(n):
            conn, _ = listening.accept()
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.sendall(conn.recv(len(PING)))

    return run_plain


def tcp_accept(impl: str, timeout: float) -> Runner:
    """Accept a connection, make it a transport, answer its 64 B, close it: the server side of a short exchange.

    The peer is a child process that connects again and again. ``plain``
    is ``socket.accept`` with ``TCP_NODELAY``; ``ours`` is
    ``SocketListener.accept``; ``floor`` is the plain accept and the floor
    transport, the connection-churn row's floor client.
    """
    if impl == "floor":
        return connection_churn("floor", timeout)
    listening = socket.create_server(("127.0.0.1", 0), backlog=64)
    stop_child = _connecting_child(listening)
    if impl == "plain":

        def close_plain() -> None:
            stop_child()
            listening.close()

        return Runner(_plain_accepts(listening, timeout), close_plain)
    from transports.socket import SocketListener

    listener = SocketListener(listening, RETRY_INTERVAL)

    def close() -> None:
        stop_child()
        listener.close()

    def run(n: int) -> None:
        accept = listener.accept
        for _ in range(n):
            with accept(timeout) as transport:
                transport.send_all(transport.recv(len(PING), timeout), timeout)

    return Runner(run, close)


def connection_churn(impl: str, timeout: float) -> Runner:
    """Accept a connection, wrap it, answer its 64 B, close it: what a server pays per short-lived client.

    Every client takes its connections with the same plain
    ``socket.accept`` (with a timeout) and sets ``TCP_NODELAY``; then
    ``plain`` answers on the socket itself, ``ours`` and ``easynetwork``
    make it a stream transport of theirs and answer through it. The peer is
    a child process that connects again and again.
    """
    listening = socket.create_server(("127.0.0.1", 0), backlog=64)
    stop_child = _connecting_child(listening)

    def close() -> None:
        stop_child()
        listening.close()

    if impl == "plain":
        return Runner(_plain_accepts(listening, timeout), close)
    listening.settimeout(None if timeout == math.inf else timeout)
    if impl == "ours":
        from transports.socket import SocketStreamTransport as Transport
    elif impl == "floor":
        Transport = FloorTransport  # type: ignore[assignment,misc]
    else:
        from easynetwork.lowlevel.api_sync.transports.socket import (  # type: ignore[no-redef]
            SocketStreamTransport as Transport,
        )

    def run(n: int) -> None:
        for _ in range(n):
            conn, _ = listening.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with Transport(conn, RETRY_INTERVAL) as transport:
                transport.send_all(transport.recv(len(PING), timeout), timeout)

    return Runner(run, close)


class FloorTransport:
    """The least a transport object can be: the ``floor`` client of the short-connection rows.

    It holds the socket, calls its blocking methods with no timeout, shuts
    it down on close (which a close from another thread needs) and warns
    when it is dropped open. Nothing a real transport adds (timeouts, the
    waits, the checks, the state for closing from another thread) is here.
    """

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket, retry_interval: float) -> None:
        self._sock = sock

    def __enter__(self) -> FloorTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def recv(self, bufsize: int, timeout: float) -> bytes:
        return self._sock.recv(bufsize)

    def send_all(self, data: bytes, timeout: float) -> None:
        self._sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def __del__(self) -> None:
        if self._sock.fileno() >= 0:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)


class FloorLineReader:
    """The least a buffered reader stacked on a transport can be: the ``floor`` client of lines-recv-until.

    The plain client's line loop as a method, reading through the
    transport below with the call's timeout. Nothing a real one adds (one
    budget per call, the checks of its arguments, keeping its bytes on an
    error, closing from another thread) is here.
    """

    __slots__ = ("_buffer", "_transport")

    def __init__(self, transport: FloorTransport) -> None:
        self._transport = transport
        self._buffer = bytearray()

    def recv_until(self, delimiter: bytes, max_bytes: int, timeout: float) -> bytes:
        buffer = self._buffer
        searched = 0
        while (index := buffer.find(delimiter, searched)) < 0:
            if len(buffer) >= max_bytes:
                raise ValueError("line too long")
            searched = len(buffer)
            chunk = self._transport.recv(65536, timeout)
            if not chunk:
                raise ConnectionError("server closed")
            buffer.extend(chunk)
        line = bytes(buffer[:index])
        del buffer[: index + len(delimiter)]
        return line

    def send_all(self, data: bytes, timeout: float) -> None:
        self._transport.send_all(data, timeout)

    def close(self) -> None:
        self._transport.close()


def wrap_close(impl: str, timeout: float) -> Runner:
    """Make a socket pair, wrap both ends, close them: the cost of a transport's construction and close.

    In-process, no I/O. ``plain`` sets both ends non-blocking and closes
    them (``timeout`` is not used).
    """
    if impl == "plain":

        def run_plain(n: int) -> None:
            for _ in range(n):
                one, two = socket.socketpair()
                one.setblocking(False)
                two.setblocking(False)
                one.close()
                two.close()

        return Runner(run_plain, lambda: None)
    if impl == "ours":
        from transports.socket import SocketStreamTransport as Transport
    else:
        from easynetwork.lowlevel.api_sync.transports.socket import (  # type: ignore[no-redef]
            SocketStreamTransport as Transport,
        )

    def run(n: int) -> None:
        for _ in range(n):
            one, two = socket.socketpair()
            first = Transport(one, RETRY_INTERVAL)
            second = Transport(two, RETRY_INTERVAL)
            first.close()
            second.close()

    return Runner(run, lambda: None)


def udp_endpoint_pingpong(impl: str, address: Any, timeout: float) -> Runner:
    """64 B to the UDP echo server and back, on an unconnected socket: ``sendto`` and ``recvfrom``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    if impl == "plain":
        sock.settimeout(None if timeout == math.inf else timeout)

        def run_plain(n: int) -> None:
            sendto, recvfrom = sock.sendto, sock.recvfrom
            for _ in range(n):
                sendto(PING, address)
                recvfrom(65536)

        return Runner(run_plain, sock.close)
    from transports.socket import SocketDatagramEndpoint

    endpoint = SocketDatagramEndpoint(sock, RETRY_INTERVAL)

    def run(n: int) -> None:
        send_to, recv_from = endpoint.send_to, endpoint.recv_from
        for _ in range(n):
            send_to(PING, address, timeout)
            recv_from(timeout)

    return Runner(run, endpoint.close)


# ------------------------------------------------------------------ rows


@dataclass
class Row:
    name: str
    unit: str  # what one operation is
    ops: int  # operations per measured run
    kind: str  # budget family: pingpong, gather, bulk, tls-pingpong, tls-bulk
    server: tuple[str, str, bool] | None  # (kind, mode, tls) or None for pipes
    granule: int = 1  # a run's operations are a multiple of this (bulk: one acknowledged batch)
    # Divides --slices: a bulk slice must carry far more than the socket
    # buffers hold (4 MiB here), or it measures how fast the sender fills
    # empty buffers rather than the throughput.
    slices_divisor: int = 1
    clients: dict[str, Callable[[Any, float], Runner]] = field(default_factory=dict)


def build_rows(tls: TLSSetup, have_easynetwork: bool, control: bool = False) -> list[Row]:
    """Every row, with its clients: ours, plain and easynetwork's.

    With ``control``, every row also gets a second plain client, exactly
    like the first but on its own connection: how far the two land apart
    is what this machine cannot tell apart (an A/A test).
    """
    batch = BATCH_CHUNKS * len(CHUNK)
    rows = [
        Row("tcp-pingpong", "round trip of 64 B", 2000, "pingpong", ("tcp", "echo", False)),
        Row("unix-pingpong", "round trip of 64 B", 2000, "pingpong", ("unix", "echo", False)),
        Row("udp-pingpong", "round trip of 64 B", 2000, "pingpong", ("udp", "echo", False)),
        Row("tls-pingpong", "round trip of 64 B", 1000, "tls-pingpong", ("tcp", "echo", True)),
        Row("tcp-bulk", "64 KiB sent", 2048, "bulk", ("tcp", "sink", False), BATCH_CHUNKS, BULK_SLICES_DIVISOR),
        Row("tls-bulk", "64 KiB sent", 1024, "tls-bulk", ("tcp", "sink", True), BATCH_CHUNKS, BULK_SLICES_DIVISOR),
        Row("gather", "256 x 100 B sent", 500, "gather", ("tcp", "sink", False)),
        Row("pipe-pingpong", "round trip of 64 B", 2000, "pipe", None),
        Row("stapled-pipe-pingpong", "round trip of 64 B", 2000, "pipe", None),
        Row("membio-tls-pingpong", "round trip of 64 B", 1000, "membio", ("tcp", "echo", True)),
        Row("membio-tls-bulk", "64 KiB sent", 256, "membio", ("tcp", "sink", True), BATCH_CHUNKS, BULK_SLICES_DIVISOR),
        Row("lines-recv-until", "8 lines of 64 B echoed", 1000, "lines", ("tcp", "echo", False)),
        Row("tcp-connect", "connect, 64 B round trip, close", 300, "open", ("tcp", "echo", False)),
        Row("tcp-accept", "accept, 64 B round trip, close", 300, "open", None),
        Row("udp-endpoint-pingpong", "sendto and recvfrom of 64 B", 2000, "open", ("udp", "echo", False)),
        Row("connection-churn", "accept, wrap, 64 B round trip, close", 300, "churn", None),
        Row("wrap-close", "socket pair made, both ends wrapped and closed", 2000, "wrap", None),
    ]
    makers: dict[str, dict[str, Callable[[socket.socket, float], Any]]] = {
        "plain": {"stream": PlainStream, "tls": plain_tls(tls)},
        "ours": {"stream": ours_stream, "tls": ours_tls(tls), "membio": ours_membio_tls(tls)},
        "easynetwork": {"stream": easynetwork_stream, "tls": easynetwork_tls(tls)},
    }
    impls = ["ours", "plain"] + (["easynetwork"] if have_easynetwork else []) + (["control"] if control else [])
    for row in rows:
        for client in impls:
            impl = "plain" if client == "control" else client
            maker: Callable[[Any, float], Runner] | None = None
            if row.name == "udp-pingpong":
                maker = lambda address, timeout, impl=impl: udp_pingpong(impl, address, timeout)  # noqa: E731
            elif row.name in {"tcp-connect", "tcp-accept", "udp-endpoint-pingpong"}:
                if impl == "easynetwork":
                    continue  # no such function or class in its synchronous transports
                if row.name == "tcp-connect":
                    maker = lambda address, timeout, impl=impl: tcp_connect(impl, address, timeout)  # noqa: E731
                    if client == "ours":
                        row.clients["floor"] = lambda address, timeout: tcp_connect("floor", address, timeout)
                elif row.name == "tcp-accept":
                    maker = lambda address, timeout, impl=impl: tcp_accept(impl, timeout)  # noqa: E731
                    if client == "ours":
                        row.clients["floor"] = lambda address, timeout: tcp_accept("floor", timeout)
                else:
                    maker = lambda address, timeout, impl=impl: udp_endpoint_pingpong(impl, address, timeout)  # noqa: E731
            elif row.name == "connection-churn":
                maker = lambda address, timeout, impl=impl: connection_churn(impl, timeout)  # noqa: E731
                if client == "ours":
                    row.clients["floor"] = lambda address, timeout: connection_churn("floor", timeout)
            elif row.name == "wrap-close":
                maker = lambda address, timeout, impl=impl: wrap_close(impl, timeout)  # noqa: E731
            elif row.name == "lines-recv-until":
                if impl == "easynetwork":
                    continue  # no buffered reads in its transports
                maker = lambda address, timeout, impl=impl: lines_recv_until(impl, address, timeout)  # noqa: E731
                if client == "ours":
                    row.clients["floor"] = lambda address, timeout: lines_recv_until("floor", address, timeout)
            elif row.name in {"pipe-pingpong", "stapled-pipe-pingpong"}:
                if impl == "easynetwork":
                    continue
                stapled = row.name.startswith("stapled")
                maker = lambda address, timeout, impl=impl, s=stapled: pipe_pingpong(impl, timeout, s)  # noqa: E731
            else:
                family = "membio" if row.name.startswith("membio") else ("tls" if "tls" in row.name else "stream")
                if family == "membio" and impl != "ours":
                    family = "tls" if impl == "plain" else ""
                make = makers[impl].get(family)
                if make is None:
                    continue
                if row.name.endswith("pingpong"):
                    maker = lambda address, timeout, make=make: stream_pingpong(make, address, timeout)  # noqa: E731
                elif row.name.endswith("bulk"):
                    maker = lambda address, timeout, make=make: stream_bulk(make, address, timeout, batch)  # noqa: E731
                else:
                    maker = lambda address, timeout, make=make: stream_gather(make, address, timeout)  # noqa: E731
            row.clients[client] = maker
    return rows


# ------------------------------------------------------------------ measuring


@dataclass
class Sample:
    wall: float  # seconds per operation
    cpu: float


def measure(runner: Runner, ops: int) -> Sample:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    runner.run(ops)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    return Sample((wall1 - wall0) / ops, (cpu1 - cpu0) / ops)


def paired_ratios(samples: dict[str, list[Sample]], top: str, bottom: str, attr: str) -> list[float] | None:
    if top not in samples or bottom not in samples:
        return None
    return [getattr(a, attr) / getattr(b, attr) for a, b in zip(samples[top], samples[bottom], strict=True)]


def paired_ratio(samples: dict[str, list[Sample]], top: str, bottom: str, attr: str) -> float | None:
    ratios = paired_ratios(samples, top, bottom, attr)
    return None if ratios is None else statistics.median(ratios)


def quartiles(samples: dict[str, list[Sample]], top: str, bottom: str, attr: str) -> tuple[float, float] | None:
    """The first and third quartiles of the paired ratios: how much one round's ratio moves."""
    ratios = paired_ratios(samples, top, bottom, attr)
    if ratios is None or len(ratios) < 4:
        return None
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return q1, q3


def median_interval(
    samples: dict[str, list[Sample]], top: str, bottom: str, attr: str, slices: int
) -> tuple[float, float] | None:
    """A 95% confidence interval of the median paired ratio: how far the median itself may be off.

    The rounds of one repetition share their connections, so they are not
    independent samples: the interval resamples whole repetitions (a
    cluster bootstrap, 1000 resamples, percentile interval, fixed seed so
    that a report can be checked). :data:`None` below 5 repetitions.
    """
    ratios = paired_ratios(samples, top, bottom, attr)
    if ratios is None:
        return None
    clusters = [ratios[start : start + slices] for start in range(0, len(ratios), slices)]
    if len(clusters) < 5:
        return None
    draw = random.Random(0).choices
    medians = sorted(
        statistics.median([ratio for cluster in draw(clusters, k=len(clusters)) for ratio in cluster])
        for _ in range(1000)
    )
    return medians[24], medians[975]


def row_slices(slices: int, divisor: int) -> int:
    """The rounds per repetition of a row whose ``slices_divisor`` is ``divisor``, for ``--slices``."""
    return max(1, slices // divisor)


def run_row(row: Row, timeout: float, repeat: int, tls: TLSSetup, scale: float, slices: int) -> dict[str, list[Sample]]:
    """Measure ``repeat`` x ``slices`` rounds; each round runs one slice of every client, back to back.

    The samples of one round are the pairs: made within milliseconds of each
    other, they share the machine's mode, and a burst of load from outside
    spoils one pair (which the median then drops), not a whole repetition.
    The clients of a round run in a random order (seeded by the row and
    timeout). Every repetition makes its clients anew (new connections, new
    server threads), so that what one connection gets by chance, such as
    the buffer sizes TCP grows for it, favours no client for a whole row:
    two identical clients on connections kept for a whole row measured up
    to 1% apart in bulk throughput. The garbage collector is off while a
    repetition's rounds run and collects once before them: a collection
    walks every object, which we take to evict the caches for the client
    that runs next, and one before every slice took more than half a run.
    """
    slices = row_slices(slices, row.slices_divisor)
    per_slice = max(row.granule, int(row.ops * scale) // slices // row.granule * row.granule)
    warm_up = max(row.granule, per_slice * slices // 10 // row.granule * row.granule)
    samples: dict[str, list[Sample]] = {impl: [] for impl in row.clients}
    order = list(row.clients)
    # A new order every round: with a fixed rotation, each client would mostly
    # follow the same other client, and run on the caches that one left.
    shuffle = random.Random(f"{row.name} {timeout}").shuffle
    with contextlib.ExitStack() as stack:
        address = None
        if row.server is not None:
            kind, mode, use_tls = row.server
            address = stack.enter_context(server(kind, mode, tls.cert_file if use_tls else None)).address
        for _ in range(repeat):
            with contextlib.ExitStack() as clients:
                runners = {}
                for impl, make in row.clients.items():
                    runner = make(address, timeout)
                    clients.callback(runner.close)
                    runner.run(warm_up)
                    runners[impl] = runner
                gc.collect()
                gc.disable()
                try:
                    for _ in range(slices):
                        shuffle(order)
                        for impl in order:
                            samples[impl].append(measure(runners[impl], per_slice))
                finally:
                    gc.enable()
    return samples


# ------------------------------------------------------------------ budget


def budget_checks(results: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """The budget lines (docs/performance.md): each median against its limit.

    A line holds when the median paired ratio is within the limit, as the
    issue states it. Each line also prints the 95% interval of that median
    (see :func:`median_interval`), so that a reader can tell a miss within
    the noise from a clear one; the interval does not change the verdict.
    """
    checks: list[tuple[str, bool, str]] = []

    def check(label: str, r: dict[str, Any], key: str, limit: float, higher_is_better: bool = False) -> None:
        value = r[key]
        if value is None:
            return
        ok = value >= limit if higher_is_better else value <= limit
        detail = f"{value:.3f}"
        interval = r.get(f"{key}_interval")
        if interval is not None:
            detail += f" (95% interval {interval[0]:.3f}-{interval[1]:.3f})"
        sign = ">=" if higher_is_better else "<="
        checks.append((label, ok, f"{detail}; budget {sign} {limit:.3g}"))

    for r in results:
        name = f"{r['row']} [{r['timeout']}]"
        if r["kind"] == "pingpong":
            check(f"{name}: CPU ours/plain", r, "cpu_ours_plain", 1.15)
            check(f"{name}: wall ours/plain", r, "wall_ours_plain", 1.05)
            check(f"{name}: CPU easynetwork/ours", r, "cpu_easynetwork_ours", 1.4, higher_is_better=True)
        elif r["kind"] == "gather":
            check(f"{name}: CPU ours/plain", r, "cpu_ours_plain", 1.0)
            check(f"{name}: wall ours/plain", r, "wall_ours_plain", 1.0)
        elif r["kind"] == "bulk":
            check(f"{name}: wall ours/plain (throughput)", r, "wall_ours_plain", 1.0)
            check(f"{name}: CPU ours/plain", r, "cpu_ours_plain", 1.1)
        elif r["kind"] == "tls-bulk":
            check(f"{name}: wall ours/plain (throughput >= 0.98x)", r, "wall_ours_plain", 1 / 0.98)
        elif r["kind"] in {"tls-pingpong", "open", "lines"}:
            check(f"{name}: CPU ours/plain", r, "cpu_ours_plain", 1.15)
        elif r["kind"] == "churn":
            check(f"{name}: CPU ours/plain", r, "cpu_ours_plain", 1.10)
            check(f"{name}: CPU easynetwork/ours", r, "cpu_easynetwork_ours", 1.0, higher_is_better=True)
        elif r["kind"] == "wrap":
            check(f"{name}: CPU ours/plain", r, "cpu_ours_plain", 2.0)
    return checks


# ------------------------------------------------------------------ output


def fmt(value: float | None, spread: tuple[float, float] | None = None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if spread is None:
        return f"{value:.{digits}f}x"
    return f"{value:.{digits}f}x [{spread[0]:.{digits}f}-{spread[1]:.{digits}f}]"


def markdown(results: list[dict[str, Any]], checks: list[tuple[str, bool, str]], meta: dict[str, Any]) -> str:
    pinned = "" if meta["pinned"] is None else ", client on CPU {} and servers on CPU {}".format(*meta["pinned"])
    control = any(r["wall_control_plain"] is not None for r in results)
    lines = [
        f"Benchmark of {meta['date']} on {meta['machine']}, Python {meta['python']}, "
        f"{meta['repeat']} x {meta['slices']} rounds of interleaved slices (bulk rows "
        f"{meta['repeat']} x {row_slices(meta['slices'], BULK_SLICES_DIVISOR)}){pinned}; "
        "ratios are medians of the rounds' paired ratios." + (DEV_MODE_WARNING if meta["dev_mode"] else ""),
        "",
        "| row | operation | timeout | wall ours/plain [quartiles] | CPU ours/plain [quartiles] "
        "| CPU easynetwork/plain | CPU easynetwork/ours | ours CPU per op |"
        + (" wall control/plain [95%] | CPU control/plain [95%] |" if control else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|---|" if control else ""),
    ]
    for r in results:
        line = (
            f"| {r['row']} | {r['unit']} | {r['timeout']} | {fmt(r['wall_ours_plain'], r['wall_quartiles'])} "
            f"| {fmt(r['cpu_ours_plain'], r['cpu_quartiles'])} "
            f"| {fmt(r['cpu_easynetwork_plain'])} | {fmt(r['cpu_easynetwork_ours'])} | {r['ours_cpu_us']:.1f} us |"
        )
        if control:
            line += (
                f" {fmt(r['wall_control_plain'], r['wall_control_plain_interval'], 3)} "
                f"| {fmt(r['cpu_control_plain'], r['cpu_control_plain_interval'], 3)} |"
            )
        lines.append(line)
    floors = [r for r in results if r.get("cpu_floor_plain") is not None]
    if floors:
        lines += ["", "The floor of wrapping a socket (the `floor` client, CPU floor/plain):", ""]
        lines += [f"- {r['row']} [{r['timeout']}]: {fmt(r['cpu_floor_plain'])}" for r in floors]
    lines += ["", "Budget:", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'} {label}: {detail}" for label, ok, detail in checks]
    return "\n".join(lines) + "\n"


def chart(results: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return False
    labels = [f"{r['row']}\n[{r['timeout']}]" for r in results]
    ours = [r["cpu_ours_plain"] or 0.0 for r in results]
    theirs = [r["cpu_easynetwork_plain"] or 0.0 for r in results]
    fig, ax = plt.subplots(figsize=(max(8, len(labels) * 0.75), 5), dpi=110)
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], ours, width=0.4, label="transports (ours)", color="#2b7bba")
    ax.bar([x + 0.2 for x in xs], theirs, width=0.4, label="easynetwork 1.2.0", color="#d9822b")
    ax.axhline(1.0, color="black", linewidth=1, label="plain stdlib code = 1.0")
    ax.set_xticks(list(xs), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("client CPU per operation, ratio to plain code")
    ax.set_title("Client CPU per operation relative to plain socket/ssl code (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def make_tls(directory: Path) -> TLSSetup:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file = directory / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return TLSSetup(context, str(cert_file))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the client on the first CPU and every server on the second (default: on, with 2+ CPUs)",
    )
    parser.add_argument("--repeat", type=int, default=21, help="repetitions per row (default 21)")
    parser.add_argument("--slices", type=int, default=40, help="rounds (paired samples) per repetition (default 40)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the operations per run")
    parser.add_argument("--rows", help="comma-separated row names (default: all)")
    parser.add_argument("--timeouts", default="finite,inf", help="finite, inf or both (default)")
    parser.add_argument("--out", type=Path, default=ROOT / "tools" / "bench-results")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "performance.png")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget line fails")
    parser.add_argument(
        "--control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add a second plain client to every row, to show how far identical clients land apart (default: on)",
    )
    args = parser.parse_args(argv)
    if args.serve:
        pin_to(args.cpu)
        _serve(args.serve, args.mode, args.cert, args.dir)
        return 0
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned: list[int] | None = None
    if args.pin and len(cpus) >= 2:
        global SERVER_CPU
        pinned = cpus[:2]
        pin_to(pinned[0])
        SERVER_CPU = pinned[1]
    if sys.flags.dev_mode:
        print(DEV_MODE_WARNING.strip(), file=sys.stderr)
    try:
        import easynetwork  # noqa: F401

        have_easynetwork = True
    except ImportError:
        have_easynetwork = False
        print("easynetwork is not installed: its columns are n/a", file=sys.stderr)
    with tempfile.TemporaryDirectory() as directory:
        tls = make_tls(Path(directory))
        rows = build_rows(tls, have_easynetwork, args.control)
        if args.rows:
            wanted = set(args.rows.split(","))
            rows = [row for row in rows if row.name in wanted]
        timeouts = {"finite": FINITE, "inf": math.inf}
        results: list[dict[str, Any]] = []
        for row in rows:
            for label in args.timeouts.split(","):
                if row.kind == "wrap" and label != "finite":
                    continue  # no call takes a timeout: one run says it all
                started = time.perf_counter()
                slices = row_slices(args.slices, row.slices_divisor)
                samples = run_row(row, timeouts[label], args.repeat, tls, args.scale, args.slices)
                result = {
                    "row": row.name,
                    "unit": row.unit,
                    "kind": row.kind,
                    "timeout": label,
                    "slices": slices,
                    "wall_ours_plain": paired_ratio(samples, "ours", "plain", "wall"),
                    "cpu_ours_plain": paired_ratio(samples, "ours", "plain", "cpu"),
                    "wall_quartiles": quartiles(samples, "ours", "plain", "wall"),
                    "cpu_quartiles": quartiles(samples, "ours", "plain", "cpu"),
                    "wall_ours_plain_interval": median_interval(samples, "ours", "plain", "wall", slices),
                    "cpu_ours_plain_interval": median_interval(samples, "ours", "plain", "cpu", slices),
                    "cpu_easynetwork_plain": paired_ratio(samples, "easynetwork", "plain", "cpu"),
                    "cpu_easynetwork_ours": paired_ratio(samples, "easynetwork", "ours", "cpu"),
                    "cpu_easynetwork_ours_interval": median_interval(samples, "easynetwork", "ours", "cpu", slices),
                    "wall_control_plain": paired_ratio(samples, "control", "plain", "wall"),
                    "wall_control_plain_interval": median_interval(samples, "control", "plain", "wall", slices),
                    "cpu_control_plain": paired_ratio(samples, "control", "plain", "cpu"),
                    "cpu_control_plain_interval": median_interval(samples, "control", "plain", "cpu", slices),
                    "wall_easynetwork_ours": paired_ratio(samples, "easynetwork", "ours", "wall"),
                    "cpu_floor_plain": paired_ratio(samples, "floor", "plain", "cpu"),
                    "ours_cpu_us": statistics.median(s.cpu for s in samples["ours"]) * 1e6,
                    "samples": {impl: [vars(s) for s in values] for impl, values in samples.items()},
                }
                results.append(result)
                print(
                    f"{row.name} [{label}]: CPU ours/plain {fmt(result['cpu_ours_plain'])}, "
                    f"wall {fmt(result['wall_ours_plain'])}, CPU easynetwork/ours "
                    f"{fmt(result['cpu_easynetwork_ours'])}"
                    + (f", CPU floor/plain {fmt(result['cpu_floor_plain'])}" if result["cpu_floor_plain"] else "")
                    + f" ({time.perf_counter() - started:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    checks = budget_checks(results)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(),
        "repeat": args.repeat,
        "slices": args.slices,
        "pinned": pinned,  # [client CPU, server CPU], or None
        "dev_mode": sys.flags.dev_mode,
    }
    table = markdown(results, checks, meta)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(table)
    (args.out / "latest.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    if chart(results, args.chart):
        print(f"chart: {args.chart}")
    failed = [label for label, ok, _ in checks if not ok]
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
