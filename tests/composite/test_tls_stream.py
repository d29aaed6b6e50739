"""TLSStreamTransport's own data path: records, budgets, stuck sends, wrapped transports.

Real TLS (certificates from the session's trustme CA) over socket pairs,
once per TLS version; the peer is another TLSStreamTransport or a plain
``ssl.SSLSocket`` in a thread. The fixtures are in conftest.py. What both
TLS transports share (echo, bulk, buffers, timeouts, attributes, the
common argument checks, sessions, client certificates) is checked once
for both by the conformance kit and in tests/integration/test_tls_contract.py.
"""

from __future__ import annotations

import array
import math
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import pytest
from typing_extensions import Buffer

from transports.abc import (
    StreamReadTransport,
    StreamTransport,
    TLSAttribute,
    TypedAttributeLookupError,
    TypedAttributeSet,
    typed_attribute,
)
from transports.composite import TLSStreamTransport

TLS = TLSStreamTransport[StreamTransport]
TLSPairFactory = Callable[..., tuple[TLS, TLS]]
InnerFactory = Callable[..., tuple[StreamTransport, socket.socket]]
RunInThread = Callable[[Callable[[], Any]], Future[Any]]

SERVER_NAME = "server.test"  # conftest.TLS_SERVER_NAME


def recv_exactly(transport: StreamReadTransport, size: int, timeout: float = 10.0) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = transport.recv(size - len(received), timeout)
        assert chunk, f"EOF after {len(received)} of {size} bytes"
        received += chunk
    return bytes(received)


def close_together(run_in_thread: RunInThread, *transports: StreamTransport) -> None:
    """Close every transport at once, so each closing handshake is answered."""
    closing = [run_in_thread(transport.close) for transport in transports]
    for future in closing:
        future.result(10.0)


# ------------------------------------------------------------- records


def test_recv_returns_at_most_one_record_and_recv_into_takes_all_that_arrived(
    make_tls_pair: TLSPairFactory,
) -> None:
    client, server = make_tls_pair()
    payload = os.urandom(48 * 1024)  # three full 16 KiB records
    server.send_all(payload, 5.0)
    time.sleep(0.2)  # let every record reach the client's socket
    # recv hands over one decrypted record as it is (no copy, no joining).
    assert client.recv(1024 * 1024, 5.0) == payload[:16384]
    # recv_into goes on with the records already read from the socket.
    buffer = bytearray(1024 * 1024)
    assert client.recv_into(buffer, 5.0) == 32768
    assert buffer[:32768] == payload[16384:]
    # A fresh batch: one read of the socket brings all three records.
    server.send_all(payload, 5.0)
    time.sleep(0.2)
    assert client.recv_into(buffer, 5.0) == len(payload)
    assert buffer[: len(payload)] == payload


def test_send_all_from_iterable_with_mixed_buffers_and_large_chunks(
    make_tls_pair: TLSPairFactory, run_in_thread: RunInThread
) -> None:
    client, server = make_tls_pair()
    big = os.urandom(600 * 1024)
    numbers = array.array("i", range(1000))
    chunks: list[Buffer] = [b"head", memoryview(big), bytearray(b"mid"), numbers, b"", big[:300_000]]
    expected = b"head" + big + b"mid" + numbers.tobytes() + big[:300_000]
    reader = run_in_thread(lambda: recv_exactly(server, len(expected)))
    client.send_all_from_iterable(chunks, 10.0)
    assert reader.result(10.0) == expected


# --------------------------------------------------------------- timeouts


def test_one_budget_for_all_the_reads_of_one_recv(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    socket_stream: Callable[..., StreamTransport],
) -> None:
    # The server's transport hands over 4 bytes every 20 ms, so the client's
    # recv reads its transport many times before a record is complete: the
    # 0.3 s budget must cover all those reads, not each of them.
    inner, peer_sock = make_inner()

    def dribbling_server() -> int:
        transport = socket_stream(peer_sock)
        with TLSStreamTransport(transport, server_context, shutdown_timeout=1.0) as server:
            setattr(transport, "send_limit", 4)  # noqa: B010
            setattr(transport, "send_delay", 0.02)  # noqa: B010
            try:
                server.send_all(b"x" * 200, 10.0)  # ~230 bytes of record: ~1.2 s
            except BrokenPipeError:  # the client gave up first, as it should
                pass
            return int(getattr(transport, "sent"))  # noqa: B009

    peer = run_in_thread(dribbling_server)
    with TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, shutdown_timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.recv(1000, 0.3)
        elapsed = time.monotonic() - started
        client.wrapped_transport.close()  # no closing handshake: stop the dribble now
    assert 0.3 <= elapsed < 0.3 + 0.25
    # Many pieces arrived within the budget, each one a read of the transport.
    assert peer.result(10.0) > 1000


# ---------------------------------------- receiving while a send is stuck
# An earlier send_all ran out of time against a peer that does not read: an
# unsent tail is left. Receiving must neither wait for it nor fail because
# of it, and never lose what OpenSSL already decrypted.

STALL_BYTE = b"s"


def stall_the_send_direction(client: TLS) -> None:
    """Leave an unsent tail: the peer does not read, a send_all runs out of time."""
    with pytest.raises(TimeoutError):
        client.send_all(STALL_BYTE * (4 * 1024 * 1024), 0.3)


def recv_until(transport: StreamReadTransport, marker: bytes, timeout: float = 10.0) -> bytes:
    received = bytearray()
    while not received.endswith(marker):
        chunk = transport.recv(65536, timeout)
        assert chunk, f"EOF after {len(received)} bytes"
        received += chunk
    return bytes(received)


def unstall_and_check_the_stream(client: TLS, server: TLS, run_in_thread: RunInThread, marker: bytes) -> None:
    """The peer reads again: it gets the stalled bytes, then ``marker``, intact."""
    reader = run_in_thread(lambda: recv_until(server, marker))
    client.send_all(marker, 10.0)
    received = reader.result(20.0)
    assert received[: -len(marker)].strip(STALL_BYTE) == b""
    assert len(received) > len(marker)


@pytest.mark.parametrize("method", ["recv", "recv_into"])
def test_a_stuck_send_neither_loses_nor_delays_received_data(
    make_tls_pair: TLSPairFactory, run_in_thread: RunInThread, method: str
) -> None:
    # Regression: the receive path flushed the unsent tail with the recv's
    # budget after OpenSSL had decrypted the data; the flush timed out and
    # the decrypted bytes were dropped (the next recv returned later bytes).
    client, server = make_tls_pair()
    server.send_all(bytes(range(100)), 5.0)  # one record
    assert client.recv(10, 5.0) == bytes(range(10))  # 90 bytes stay decrypted in OpenSSL
    stall_the_send_direction(client)
    started = time.monotonic()
    if method == "recv":
        assert client.recv(10, 0.5) == bytes(range(10, 20))
    else:
        buffer = bytearray(10)
        assert client.recv_into(buffer, 0.5) == 10
        assert buffer == bytes(range(10, 20))
    assert time.monotonic() - started < 0.25  # at once, not after the budget
    # A record that arrives while the tail is still stuck is read too.
    server.send_all(bytes(range(100, 200)), 5.0)
    assert recv_exactly(client, 180, 2.0) == bytes(range(20, 200))
    unstall_and_check_the_stream(client, server, run_in_thread, b"<END>")


def test_recv_without_timeout_returns_the_data_there_while_a_send_is_stuck(
    make_tls_pair: TLSPairFactory, run_in_thread: RunInThread
) -> None:
    # Regression: with an infinite budget, recv waited for the SEND
    # direction (the peer to read the unsent tail) before reading.
    client, server = make_tls_pair()
    server.send_all(b"warm-up", 5.0)  # TLS 1.3 session tickets are read here
    assert recv_exactly(client, 7) == b"warm-up"
    stall_the_send_direction(client)
    server.send_all(bytes(range(100)), 5.0)
    # Only ciphertext in the socket: recv must read it without sending first.
    assert run_in_thread(lambda: client.recv(10, math.inf)).result(2.0) == bytes(range(10))
    # The rest is decrypted already: recv must return it without sending first.
    assert run_in_thread(lambda: client.recv(100, math.inf)).result(2.0) == bytes(range(10, 100))
    buffer = bytearray(100)
    server.send_all(b"into", 5.0)
    assert run_in_thread(lambda: client.recv_into(buffer, math.inf)).result(2.0) == 4
    assert buffer[:4] == b"into"
    unstall_and_check_the_stream(client, server, run_in_thread, b"<END>")


# ---------------------------------------------------------- attributes


class InnerAttribute(TypedAttributeSet):
    label: str = typed_attribute()
    overridden: str = typed_attribute()


class LabelledTransport(StreamTransport):
    """A user's own transport: delegates to another one and adds attributes."""

    def __init__(self, inner: StreamTransport) -> None:
        self.inner = inner

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        return self.inner.recv_into(buffer, timeout)

    def send(self, data: Buffer, timeout: float) -> int:
        return self.inner.send(data, timeout)

    def send_eof(self) -> None:
        self.inner.send_eof()

    def close(self) -> None:
        self.inner.close()

    def is_closed(self) -> bool:
        return self.inner.is_closed()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            InnerAttribute.label: lambda: "inner",
            TLSAttribute.tls_version: lambda: "not TLS",  # the TLS layer's own value wins
        }


def test_the_wrapped_transports_attributes_show_through(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    tls_version: ssl.TLSVersion,
) -> None:
    # The TLS attributes themselves are the contract of both TLS transports
    # (tests/integration/test_tls_contract.py); here, how they mix with
    # those of a wrapped transport of one's own.
    inner, peer_sock = make_inner()
    peer = run_in_thread(lambda: echo_over_ssl_socket(server_context, peer_sock))
    client = TLSStreamTransport(
        LabelledTransport(inner), client_context, server_hostname=SERVER_NAME, shutdown_timeout=5.0
    )
    expected_version = "TLSv1.3" if tls_version == ssl.TLSVersion.TLSv1_3 else "TLSv1.2"
    assert client.extra(TLSAttribute.tls_version) == expected_version  # not the wrapped one's "not TLS"
    assert client.extra(InnerAttribute.label) == "inner"
    with pytest.raises(TypedAttributeLookupError):
        client.extra(InnerAttribute.overridden)

    client.close()
    assert inner.is_closed()
    with pytest.raises(TypedAttributeLookupError):
        client.extra(TLSAttribute.tls_version)
    assert client.extra(InnerAttribute.label) == "inner"  # the inner transport's own getters decide
    peer.result(10.0)


def echo_over_ssl_socket(server_context: ssl.SSLContext, sock: socket.socket) -> None:
    with server_context.wrap_socket(sock, server_side=True) as tls_sock:
        while data := tls_sock.recv(65536):
            tls_sock.sendall(data)


def test_properties_and_repr(make_tls_pair: TLSPairFactory, run_in_thread: RunInThread) -> None:
    client, server = make_tls_pair()
    assert isinstance(client.wrapped_transport, StreamTransport)
    assert client.wrapped_transport is not server.wrapped_transport
    assert "open" in repr(client)
    close_together(run_in_thread, client, server)
    assert "closed" in repr(client)


# ------------------------------------------------------ constructor argument


def test_a_wrapped_object_that_is_no_stream_transport_is_refused(server_context: ssl.SSLContext) -> None:
    with pytest.raises(TypeError, match="StreamTransport"):
        TLSStreamTransport(object(), server_context)  # type: ignore[type-var]


# ------------------------------------- a sender that needs to read first


class WantsReadBeforeWriting:
    """Stands in for the transport's SSLObject: writes ask for incoming
    ciphertext until some arrives, as OpenSSL's do during a renegotiation
    started by the peer (which Python cannot start, hence this stand-in)."""

    def __init__(self, transport: TLS) -> None:
        self.transport = transport
        self.real: ssl.SSLObject = getattr(transport, SSL_OBJECT)
        self.feeds_before = self.feeds()

    def feeds(self) -> int:
        return int(getattr(self.transport, FEEDS))

    def write(self, data: Buffer) -> int:
        if self.feeds() == self.feeds_before:
            raise ssl.SSLWantReadError("renegotiation in progress")
        return self.real.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


# Private attributes: these tests reach into the engine.
SSL_OBJECT = "_TLSStreamTransport__ssl_object"
FEEDS = "_TLSStreamTransport__feeds"  # how many reads of the wrapped transport fed OpenSSL


def make_writes_want_read(client: TLS, server: TLS) -> None:
    # A round trip first, so that no TLS 1.3 session ticket is still on its way.
    server.send_all(b"warm-up", 5.0)
    assert recv_exactly(client, 7) == b"warm-up"
    setattr(client, SSL_OBJECT, WantsReadBeforeWriting(client))


def test_a_sender_that_needs_incoming_data_reads_it_and_loses_nothing(
    make_tls_pair: TLSPairFactory, run_in_thread: RunInThread
) -> None:
    # No thread is receiving: the sender reads the wrapped transport itself.
    client, server = make_tls_pair()
    make_writes_want_read(client, server)

    def late_reply() -> None:
        time.sleep(0.2)
        server.send_all(b"meanwhile", 5.0)

    replying = run_in_thread(late_reply)
    started = time.monotonic()
    client.send_all(b"request", 5.0)
    assert time.monotonic() - started >= 0.15  # it did wait for the peer's data
    replying.result(5.0)
    assert recv_exactly(server, 7) == b"request"
    assert recv_exactly(client, 9) == b"meanwhile"  # read by the sender, kept for recv


def test_a_sender_that_needs_incoming_data_waits_for_the_receiving_thread(
    make_tls_pair: TLSPairFactory, run_in_thread: RunInThread
) -> None:
    # Another thread is blocked in recv: the sender must not read in its
    # place, but wait for it to feed the ciphertext in, then write.
    client, server = make_tls_pair()
    make_writes_want_read(client, server)
    receiving = run_in_thread(lambda: client.recv(100, 5.0))
    time.sleep(0.1)  # the receiver is now waiting in the wrapped transport
    sending = run_in_thread(lambda: client.send_all(b"request", 5.0))
    time.sleep(0.3)
    assert not sending.done()  # waiting for incoming data
    server.send_all(b"meanwhile", 5.0)
    sending.result(5.0)
    assert receiving.result(5.0) == b"meanwhile"
    assert recv_exactly(server, 7) == b"request"


def test_a_sender_waiting_for_incoming_data_respects_its_budget(make_tls_pair: TLSPairFactory) -> None:
    client, server = make_tls_pair()
    make_writes_want_read(client, server)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.send_all(b"request", 0.3)
    assert 0.3 <= time.monotonic() - started < 0.3 + 0.25


class WritesBeforeReading:
    """Stands in for the transport's SSLObject: the first read writes a
    record and then asks for incoming ciphertext until some arrives, as
    OpenSSL does when it answers a renegotiation request while reading (the
    peer sends nothing more until it has the answer)."""

    def __init__(self, transport: TLS, message: bytes) -> None:
        self.transport = transport
        self.real: ssl.SSLObject = getattr(transport, SSL_OBJECT)
        self.message = message
        self.feeds_after_writing: int | None = None

    def feeds(self) -> int:
        return int(getattr(self.transport, FEEDS))

    def read(self, *args: Any) -> Any:
        if self.feeds_after_writing is None:
            self.real.write(self.message)
            self.feeds_after_writing = self.feeds()
        if self.feeds() == self.feeds_after_writing:
            raise ssl.SSLWantReadError("waiting for the answer to our records")
        return self.real.read(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_receiver_sends_the_records_the_peer_waits_for_even_behind_a_stuck_tail(
    make_tls_pair: TLSPairFactory, run_in_thread: RunInThread
) -> None:
    # The one case where receiving must send: OpenSSL wrote records while
    # reading and waits for the peer's answer to them. They are queued
    # behind an unsent tail; the receive sends both (within its budget) as
    # the peer reads, instead of waiting for an answer that cannot come.
    client, server = make_tls_pair()
    server.send_all(b"warm-up", 5.0)
    assert recv_exactly(client, 7) == b"warm-up"
    stall_the_send_direction(client)
    setattr(client, SSL_OBJECT, WritesBeforeReading(client, b"<question>"))

    def answer_once_asked() -> bytes:
        time.sleep(0.3)  # the receive has started and found the peer not reading
        received = recv_until(server, b"<question>")
        server.send_all(b"answer", 5.0)
        return received

    peer = run_in_thread(answer_once_asked)
    assert client.recv(100, 10.0) == b"answer"
    received = peer.result(10.0)
    assert received[: -len(b"<question>")].strip(STALL_BYTE) == b""
