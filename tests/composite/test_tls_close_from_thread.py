"""TLSStreamTransport closed by one thread while another one is inside a call.

A receive or a send that a ``close()`` from another thread ends must fail
with ``OSError(EBADF)``, as with every other transport of the project: never
with an ``ssl.SSLError`` (to the caller, a TLS error means an attack or a
broken peer) and never with a ``b""`` (the peer did not end the stream).
What it got before the close is returned, never lost.

The race is real I/O over a socket pair: the peer keeps sending (or
reading), the main thread closes after a random 0-10 ms, many times over.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from transports.abc import StreamTransport
from transports.composite import TLSStreamTransport

TLS = TLSStreamTransport[StreamTransport]
SocketPairFactory = Callable[[int], tuple[socket.socket, socket.socket]]
RunInThread = Callable[[Callable[[], Any]], Future[Any]]

SERVER_NAME = "server.test"  # conftest.TLS_SERVER_NAME
REPETITIONS = 200
CALL_TIMEOUT = 2.0
# A thread still inside a call this long after close() is stuck: the peer
# keeps the connection busy, so the call must notice the close at once.
PROMPT = 1.0


@pytest.fixture(params=[False, True], ids=["plain-close", "shutdown-on-close"])
def shutdown_on_close(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


@pytest.fixture(params=[True, False], ids=["standard", "lenient"])
def standard_compatible(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


PairFactory = Callable[..., tuple[TLS, TLS]]


@pytest.fixture
def connect(
    make_socketpair: SocketPairFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    socket_stream: Callable[..., StreamTransport],
    shutdown_on_close: bool,
    standard_compatible: bool,
    shutdown_on_close_wrapper: Callable[[StreamTransport, socket.socket], StreamTransport],
) -> PairFactory:
    """Build ``(client, server)``; the caller closes both before the next pair.

    Not :func:`make_tls_pair`, which keeps every pair until teardown: a few
    hundred pairs would hold a few hundred receive buffers.
    ``make(ignore_unexpected_eof=True)`` sets
    :data:`ssl.OP_IGNORE_UNEXPECTED_EOF` on the client's context.
    """

    def make(*, ignore_unexpected_eof: bool = False) -> tuple[TLS, TLS]:
        if ignore_unexpected_eof:
            client_context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
        ours, theirs = make_socketpair(socket.SOCK_STREAM)
        inner = socket_stream(ours)
        server_future: Future[TLS] = run_in_thread(
            lambda: TLSStreamTransport(socket_stream(theirs), server_context, shutdown_timeout=1.0)
        )
        try:
            client: TLS = TLSStreamTransport(
                shutdown_on_close_wrapper(inner, ours) if shutdown_on_close else inner,
                client_context,
                server_hostname=SERVER_NAME,
                standard_compatible=standard_compatible,
                handshake_timeout=10.0,
                shutdown_timeout=1.0,
            )
        except BaseException:
            try:
                server_future.result(15.0).close()
            except Exception:
                pass  # the server's handshake failed too
            raise
        try:
            return client, server_future.result(15.0)
        except BaseException:
            client.close()
            raise

    return make


def start(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def join_all(threads: list[threading.Thread], until: float) -> list[str]:
    """Join every thread by the monotonic time ``until``; return the names of those still running."""
    for thread in threads:
        thread.join(max(0.0, until - time.monotonic()))
    return [thread.name for thread in threads if thread.is_alive()]


def open_fds() -> int | None:
    """How many descriptors this process has open; :data:`None` without ``/proc``."""
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


def describe(outcome: object) -> str:
    if isinstance(outcome, BaseException):
        return f"{type(outcome).__name__}({outcome})"
    return repr(outcome)


def ended_by_close(outcome: object) -> bool:
    return isinstance(outcome, OSError) and not isinstance(outcome, ssl.SSLError) and outcome.errno == errno.EBADF


Body = Callable[[TLS, TLS, threading.Event, random.Random], Callable[[], None]]


def peer_sends(client: TLS, server: TLS, stop: threading.Event, rng: random.Random) -> Callable[[], None]:
    def run() -> None:
        try:
            while not stop.is_set():
                server.send_all(rng.randbytes(rng.randint(10, 20_000)), CALL_TIMEOUT)
        except OSError:
            pass  # our side is closed: the peer's job is done

    return run


def peer_receives(client: TLS, server: TLS, stop: threading.Event, rng: random.Random) -> Callable[[], None]:
    def run() -> None:
        try:
            while not stop.is_set() and server.recv(65536, CALL_TIMEOUT):
                pass
        except OSError:
            pass  # whatever our close made of the stream: not under test here
        finally:
            server.close()  # answers our close_notify, if it came: no wait in close()

    return run


def receive_until_it_ends(client: TLS, last: list[object]) -> Callable[[], None]:
    def run() -> None:
        while True:
            try:
                data = client.recv(4096, CALL_TIMEOUT)
            except BaseException as exc:
                last.append(exc)
                return
            if not data:
                last.append(data)  # an EOF the peer never sent
                return

    return run


def send_until_it_ends(client: TLS, last: list[object]) -> Callable[[], None]:
    rng = random.Random()

    def run() -> None:
        while True:
            try:
                client.send_all(rng.randbytes(rng.randint(10, 20_000)), CALL_TIMEOUT)
            except BaseException as exc:
                last.append(exc)
                return

    return run


def check_calls_end_with_ebadf(
    connect: PairFactory,
    peer: Body,
    call: Callable[[TLS, list[object]], Callable[[], None]],
    **options: bool,
) -> None:
    """Close while a thread is inside calls that the peer keeps busy, many times over."""
    rng = random.Random()
    failures: list[str] = []
    fds_before = open_fds()
    for repetition in range(REPETITIONS):
        client, server = connect(**options)
        stop = threading.Event()
        last: list[object] = []
        threads = [start(peer(client, server, stop, rng), "tls-peer"), start(call(client, last), "tls-caller")]
        try:
            time.sleep(rng.uniform(0.0, 0.01))
            closing = time.monotonic()
            client.close()
            stuck = join_all(threads[1:], closing + PROMPT)
        finally:
            stop.set()
            client.close()
            server.close()  # its closing handshake ends at once: our socket is closed
            still_running = join_all(threads, time.monotonic() + 2 * CALL_TIMEOUT)
        assert not stuck, f"repetition {repetition}: {stuck} still inside a call {PROMPT} s after close() began"
        assert not still_running, f"repetition {repetition}: {still_running} never ended"
        if not ended_by_close(last[0]):
            failures.append(f"repetition {repetition}: {describe(last[0])}")
    assert open_fds() == fds_before, "descriptors leaked"
    assert not failures, f"{len(failures)} of {REPETITIONS} calls did not end with EBADF:\n" + "\n".join(failures)


def test_a_receive_ended_by_close_raises_ebadf(connect: PairFactory) -> None:
    check_calls_end_with_ebadf(connect, peer_sends, receive_until_it_ends)


@pytest.mark.parametrize("shutdown_on_close", [True], ids=["shutdown-on-close"], indirect=True)
@pytest.mark.parametrize("standard_compatible", [False], ids=["lenient"], indirect=True)
def test_a_close_made_eof_never_reads_as_eof_even_when_ignoring_unexpected_eofs(connect: PairFactory) -> None:
    # The shutdown wakes the receiver with an EOF, which OpenSSL then takes
    # for a close_notify: a read that returns nothing, instead of an error.
    check_calls_end_with_ebadf(connect, peer_sends, receive_until_it_ends, ignore_unexpected_eof=True)


def test_a_send_ended_by_close_raises_ebadf(connect: PairFactory) -> None:
    check_calls_end_with_ebadf(connect, peer_receives, send_until_it_ends)
