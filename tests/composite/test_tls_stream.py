"""TLSStreamTransport moves data: echo, bulk, records, threads, attributes, arguments.

Real TLS (certificates from the session's trustme CA) over socket pairs,
once per TLS version; the peer is another TLSStreamTransport or a plain
``ssl.SSLSocket`` in a thread. The fixtures are in conftest.py.
"""

from __future__ import annotations

import array
import errno
import hashlib
import math
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pytest
from typing_extensions import Buffer

from transports.abc import (
    StreamReadTransport,
    StreamTransport,
    TLSAttribute,
    TypedAttributeLookupError,
    TypedAttributeSet,
    UnsupportedOperation,
    typed_attribute,
)
from transports.composite import TLSStreamTransport

if TYPE_CHECKING:
    import trustme

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


def echo_until_eof(transport: StreamTransport) -> int:
    """Send back everything received until EOF, then close; return the byte count."""
    total = 0
    buffer = bytearray(65536)
    with transport:
        while count := transport.recv_into(buffer, 10.0):
            transport.send_all(memoryview(buffer)[:count], 10.0)
            total += count
    return total


def close_together(run_in_thread: RunInThread, *transports: StreamTransport) -> None:
    """Close every transport at once, so each closing handshake is answered."""
    closing = [run_in_thread(transport.close) for transport in transports]
    for future in closing:
        future.result(10.0)


# ----------------------------------------------------------------- echo


def test_echo_both_directions(make_tls_pair: TLSPairFactory) -> None:
    client, server = make_tls_pair()
    client.send_all(b"ping", 5.0)
    assert recv_exactly(server, 4) == b"ping"
    server.send_all(b"pong!", 5.0)
    buffer = bytearray(16)
    assert client.recv_into(buffer, 5.0) == 5
    assert buffer[:5] == b"pong!"
    assert server.send(b"partial?", 5.0) == 8
    assert recv_exactly(client, 8) == b"partial?"


def test_echo_with_an_ssl_socket_server(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    tls_version: ssl.TLSVersion,
) -> None:
    inner, peer_sock = make_inner()

    def ssl_socket_echo_server() -> int:
        with server_context.wrap_socket(peer_sock, server_side=True) as tls_sock:
            total = 0
            while data := tls_sock.recv(65536):
                tls_sock.sendall(data)
                total += len(data)
            return total

    peer = run_in_thread(ssl_socket_echo_server)
    payload = os.urandom(300_000)
    with TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, shutdown_timeout=5.0) as client:
        assert (
            client.extra(TLSAttribute.tls_version)
            == {
                ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                ssl.TLSVersion.TLSv1_3: "TLSv1.3",
            }[tls_version]
        )
        for start in range(0, len(payload), 50_000):  # interleaved, so no buffer ever fills
            client.send_all(payload[start : start + 50_000], 5.0)
            assert recv_exactly(client, 50_000) == payload[start : start + 50_000]
    # close() sent a close_notify: the SSLSocket read it as EOF.
    assert peer.result(10.0) == len(payload)


def test_echo_with_an_ssl_socket_client(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    inner, peer_sock = make_inner()

    def ssl_socket_client() -> bytes:
        with client_context.wrap_socket(peer_sock, server_hostname=SERVER_NAME) as tls_sock:
            tls_sock.sendall(b"hello over TLS")
            reply = bytearray()
            while data := tls_sock.recv(1024):
                reply += data
            return bytes(reply)

    peer = run_in_thread(ssl_socket_client)
    # server_side=None and no server_hostname: the server end.
    with TLSStreamTransport(inner, server_context, shutdown_timeout=5.0) as server:
        assert recv_exactly(server, 14) == b"hello over TLS"
        server.send_all(b"HELLO BACK", 5.0)
    assert peer.result(10.0) == b"HELLO BACK"


# ------------------------------------------------------- bulk and records


def test_a_few_mebibytes_both_ways_with_checksums(make_tls_pair: TLSPairFactory, run_in_thread: RunInThread) -> None:
    client, server = make_tls_pair()
    payload = os.urandom(8 * 1024 * 1024)

    def server_side() -> str:
        digest = hashlib.sha256(recv_exactly(server, len(payload)))
        server.send_all(payload[::-1], 20.0)
        return digest.hexdigest()

    peer = run_in_thread(server_side)
    client.send_all(payload, 20.0)
    assert recv_exactly(client, len(payload)) == payload[::-1]
    assert peer.result(20.0) == hashlib.sha256(payload).hexdigest()


def test_one_thread_receives_while_another_sends(make_tls_pair: TLSPairFactory, run_in_thread: RunInThread) -> None:
    # Full duplex on ONE transport: the echo comes back while the sending
    # thread is still sending, which needs the send and receive locks to
    # be independent (a single lock would deadlock once buffers fill).
    client, server = make_tls_pair()
    payload = os.urandom(6 * 1024 * 1024)
    echo = run_in_thread(lambda: echo_until_eof(server))

    def send_then_close_notify() -> None:
        client.send_all(payload, 20.0)

    sender = run_in_thread(send_then_close_notify)
    echoed = recv_exactly(client, len(payload), 20.0)
    sender.result(20.0)
    assert echoed == payload
    client.close()  # the server reads the close_notify as EOF
    assert echo.result(20.0) == len(payload)


def test_send_takes_at_most_64_kib_and_delivers_it(make_tls_pair: TLSPairFactory) -> None:
    client, server = make_tls_pair()
    payload = os.urandom(1024 * 1024)
    sent = client.send(payload, 5.0)
    assert sent == 64 * 1024
    assert recv_exactly(server, sent) == payload[:sent]
    assert client.send(b"", 5.0) == 0


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


def test_send_all_from_iterable_joins_small_chunks_into_few_records(make_tls_pair: TLSPairFactory) -> None:
    client, server = make_tls_pair()
    inner = client.wrapped_transport
    assert isinstance(inner, StreamTransport)
    sent_before: int = getattr(inner, "sent")  # noqa: B009 (BlockingSocketStream counts bytes sent)
    chunks: list[Buffer] = [b"", *(bytes([n % 256]) * 10 for n in range(1000)), b""]
    client.send_all_from_iterable(iter(chunks), 5.0)
    assert recv_exactly(server, 10_000) == b"".join(bytes(c) for c in chunks)
    overhead = getattr(inner, "sent") - sent_before - 10_000  # noqa: B009
    # One record costs 5 to 29 bytes of framing: 1000 records would cost > 5000.
    assert 0 < overhead < 100


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


def test_send_all_accepts_any_buffer_and_empty_data(make_tls_pair: TLSPairFactory) -> None:
    client, server = make_tls_pair()
    numbers = array.array("H", [1, 2, 3])
    client.send_all(numbers, 5.0)
    client.send_all(b"", 5.0)
    client.send_all(bytearray(b"!"), 5.0)
    assert recv_exactly(server, 7) == numbers.tobytes() + b"!"


# --------------------------------------------------------------- timeouts


def test_recv_with_zero_timeout_does_not_block(make_tls_pair: TLSPairFactory) -> None:
    client, server = make_tls_pair()
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        client.recv(10, 0)
    assert caught.value.errno == errno.ETIMEDOUT
    assert time.monotonic() - started < 0.2
    server.send_all(b"now", 5.0)
    time.sleep(0.1)
    assert client.recv(10, 0) == b"now"


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


def test_send_all_budget_against_a_peer_that_does_not_read(make_tls_pair: TLSPairFactory) -> None:
    client, _server = make_tls_pair()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.send_all(b"z" * (16 * 1024 * 1024), 0.3)
    assert 0.3 <= time.monotonic() - started < 0.3 + 0.25


def test_a_send_interrupted_mid_record_leaves_the_stream_intact(
    make_tls_pair: TLSPairFactory, run_in_thread: RunInThread
) -> None:
    # The timeout strikes while a group of records is half sent: the tail is
    # kept and sent first next time, so the peer decrypts a valid stream
    # (a prefix of the first payload, then the second one).
    client, server = make_tls_pair()
    payload = os.urandom(16 * 1024 * 1024)
    with pytest.raises(TimeoutError):
        client.send_all(payload, 0.2)

    def read_until_marker() -> bytes:
        received = bytearray()
        while not received.endswith(b"<END>"):
            chunk = server.recv(65536, 10.0)
            assert chunk
            received += chunk
        return bytes(received)

    reader = run_in_thread(read_until_marker)
    client.send_all(b"<END>", 10.0)
    received = reader.result(20.0)
    prefix = received[: -len(b"<END>")]
    assert len(prefix) > 0
    assert payload.startswith(prefix)


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


def test_invalid_arguments_are_refused_before_any_io(make_tls_pair: TLSPairFactory) -> None:
    client, _server = make_tls_pair()
    with pytest.raises(ValueError, match="bufsize"):
        client.recv(-1, 1.0)
    for timeout in (-1.0, math.nan):
        with pytest.raises(ValueError, match="timeout"):
            client.recv(10, timeout)
        with pytest.raises(ValueError, match="timeout"):
            client.recv_into(bytearray(10), timeout)
        with pytest.raises(ValueError, match="timeout"):
            client.send(b"x", timeout)
        with pytest.raises(ValueError, match="timeout"):
            client.send_all(b"x", timeout)
        with pytest.raises(ValueError, match="timeout"):
            client.send_all_from_iterable([b"x"], timeout)
    assert client.recv(0, 1.0) == b""
    assert client.recv_into(bytearray(), 1.0) == 0
    with pytest.raises(TypeError):
        client.recv_into(b"read-only", 1.0)


# ------------------------------------------------- client certificates


def test_client_certificate_authentication(
    make_tls_pair: TLSPairFactory,
    tls_ca: trustme.CA,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    server_context.verify_mode = ssl.CERT_REQUIRED
    tls_ca.configure_trust(server_context)
    tls_ca.issue_cert("client@example.test").configure_cert(client_context)
    client, server = make_tls_pair()
    client.send_all(b"authenticated", 5.0)
    assert recv_exactly(server, 13) == b"authenticated"
    peercert = server.extra(TLSAttribute.peercert)
    assert peercert is not None
    assert "client@example.test" in str(peercert["subjectAltName"])


def test_a_client_without_the_required_certificate_is_refused(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    tls_ca: trustme.CA,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    tls_version: ssl.TLSVersion,
    socket_stream: Callable[..., StreamTransport],
) -> None:
    server_context.verify_mode = ssl.CERT_REQUIRED
    tls_ca.configure_trust(server_context)
    inner, peer_sock = make_inner()

    def server() -> None:
        TLSStreamTransport(socket_stream(peer_sock), server_context, handshake_timeout=5.0)

    peer = run_in_thread(server)
    if tls_version == ssl.TLSVersion.TLSv1_2:
        # The server's alert ends the client's handshake.
        with pytest.raises(ssl.SSLError, match=r"(?i)alert"):
            TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, shutdown_timeout=1.0)
    else:
        # TLS 1.3: the client's handshake ends first; the alert fails its first read.
        with (
            TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, shutdown_timeout=1.0) as client,
            pytest.raises(ssl.SSLError, match=r"(?i)certificate"),
        ):
            client.recv(10, 5.0)
    with pytest.raises(ssl.SSLError, match=r"(?i)certificate"):
        peer.result(10.0)
    assert inner.is_closed()


# ------------------------------------------------------------ sessions


def test_session_is_resumed_on_a_second_tls12_connection(
    make_tls_pair: TLSPairFactory,
    tls_context_factory: Callable[[ssl.Purpose, ssl.TLSVersion], ssl.SSLContext],
    tls_ca: trustme.CA,
    tls_server_cert: trustme.LeafCert,
) -> None:
    server_ctx = tls_context_factory(ssl.Purpose.CLIENT_AUTH, ssl.TLSVersion.TLSv1_2)
    tls_server_cert.configure_cert(server_ctx)
    client_ctx = tls_context_factory(ssl.Purpose.SERVER_AUTH, ssl.TLSVersion.TLSv1_2)
    tls_ca.configure_trust(client_ctx)

    first_client, first_server = make_tls_pair(client_ctx=client_ctx, server_ctx=server_ctx)
    assert not first_client.session_reused
    session = first_client.session
    assert session is not None
    first_client.send_all(b"1", 5.0)
    assert recv_exactly(first_server, 1) == b"1"

    second_client, second_server = make_tls_pair(
        client_ctx=client_ctx, server_ctx=server_ctx, client_options={"session": session}
    )
    assert second_client.session_reused
    assert second_server.session_reused
    assert second_client.session is not None
    assert second_client.session.id == session.id
    second_client.send_all(b"2", 5.0)
    assert recv_exactly(second_server, 1) == b"2"


def test_session_is_resumed_with_tls13_once_the_ticket_arrived(
    make_tls_pair: TLSPairFactory,
    tls_context_factory: Callable[[ssl.Purpose, ssl.TLSVersion], ssl.SSLContext],
    tls_ca: trustme.CA,
    tls_server_cert: trustme.LeafCert,
) -> None:
    server_ctx = tls_context_factory(ssl.Purpose.CLIENT_AUTH, ssl.TLSVersion.TLSv1_3)
    tls_server_cert.configure_cert(server_ctx)
    client_ctx = tls_context_factory(ssl.Purpose.SERVER_AUTH, ssl.TLSVersion.TLSv1_3)
    tls_ca.configure_trust(client_ctx)

    first_client, first_server = make_tls_pair(client_ctx=client_ctx, server_ctx=server_ctx)
    first_server.send_all(b"1", 5.0)
    assert recv_exactly(first_client, 1) == b"1"  # the tickets came before this record
    session = first_client.session
    assert session is not None
    assert session.has_ticket

    second_client, second_server = make_tls_pair(
        client_ctx=client_ctx, server_ctx=server_ctx, client_options={"session": session}
    )
    assert second_client.session_reused
    assert second_server.session_reused


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


def test_attributes_before_and_after_close(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    tls_version: ssl.TLSVersion,
) -> None:
    inner, peer_sock = make_inner()
    peer = run_in_thread(lambda: echo_over_ssl_socket(server_context, peer_sock))
    client = TLSStreamTransport(
        LabelledTransport(inner), client_context, server_hostname=SERVER_NAME, shutdown_timeout=5.0
    )
    expected_version = "TLSv1.3" if tls_version == ssl.TLSVersion.TLSv1_3 else "TLSv1.2"
    assert client.extra(TLSAttribute.sslcontext) is client_context
    assert client.extra(TLSAttribute.tls_version) == expected_version
    name, protocol, bits = client.extra(TLSAttribute.cipher)
    assert name
    assert protocol == expected_version
    assert bits >= 128
    with pytest.raises(TypedAttributeLookupError):  # no compression in use
        client.extra(TLSAttribute.compression)
    assert client.extra(TLSAttribute.compression, None) is None
    assert client.extra(TLSAttribute.standard_compatible) is True
    peercert = client.extra(TLSAttribute.peercert)
    assert peercert is not None
    assert ("DNS", SERVER_NAME) in peercert["subjectAltName"]
    assert client.extra(InnerAttribute.label) == "inner"
    with pytest.raises(TypedAttributeLookupError):
        client.extra(InnerAttribute.overridden)

    client.close()
    assert client.is_closed()
    assert inner.is_closed()
    tls_attributes = [getattr(TLSAttribute, name) for name in TLSAttribute.__annotations__]
    assert len(tls_attributes) == 6
    for attribute in tls_attributes:
        with pytest.raises(TypedAttributeLookupError):
            client.extra(attribute)
        assert client.extra(attribute, "gone") == "gone"
    assert client.extra(InnerAttribute.label) == "inner"  # the inner transport's own getters decide
    peer.result(10.0)


def echo_over_ssl_socket(server_context: ssl.SSLContext, sock: socket.socket) -> None:
    with server_context.wrap_socket(sock, server_side=True) as tls_sock:
        while data := tls_sock.recv(65536):
            tls_sock.sendall(data)


def test_a_server_without_client_certificate_has_no_peercert(make_tls_pair: TLSPairFactory) -> None:
    client, server = make_tls_pair(client_options={"standard_compatible": False})
    with pytest.raises(TypedAttributeLookupError):
        server.extra(TLSAttribute.peercert)
    assert server.extra(TLSAttribute.peercert, None) is None
    assert client.extra(TLSAttribute.standard_compatible) is False
    assert server.extra(TLSAttribute.standard_compatible) is True


def test_properties_and_repr(make_tls_pair: TLSPairFactory, run_in_thread: RunInThread) -> None:
    client, server = make_tls_pair()
    assert isinstance(client.wrapped_transport, StreamTransport)
    assert client.wrapped_transport is not server.wrapped_transport
    assert "open" in repr(client)
    close_together(run_in_thread, client, server)
    assert "closed" in repr(client)
    assert isinstance(client.session, ssl.SSLSession)  # still there, to resume later
    assert client.session_reused is False


# ------------------------------------------------------ closed / unsupported


def test_context_manager_closes_both_layers(make_tls_pair: TLSPairFactory, run_in_thread: RunInThread) -> None:
    client, server = make_tls_pair()
    with client as entered:
        assert entered is client
        assert not client.is_closed()
        server_closing = run_in_thread(server.close)  # answers the client's close_notify
    server_closing.result(10.0)
    assert client.is_closed()
    assert client.wrapped_transport.is_closed()


def test_operations_after_close_raise_ebadf(make_tls_pair: TLSPairFactory, run_in_thread: RunInThread) -> None:
    client, server = make_tls_pair()
    close_together(run_in_thread, client, server)
    client.close()  # idempotent
    client.send_eof()  # a no-op once closed
    calls: list[Callable[[], object]] = [
        lambda: client.recv(10, 1.0),
        lambda: client.recv(0, 1.0),
        lambda: client.recv_into(bytearray(10), 1.0),
        lambda: client.send(b"x", 1.0),
        lambda: client.send_all(b"x", 1.0),
        lambda: client.send_all_from_iterable([b"x"], 1.0),
    ]
    for call in calls:
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == errno.EBADF


def test_send_eof_is_unsupported_and_the_connection_stays_usable(make_tls_pair: TLSPairFactory) -> None:
    client, server = make_tls_pair()
    with pytest.raises(UnsupportedOperation, match="half-close"):
        client.send_eof()
    client.send_all(b"still open", 5.0)
    assert recv_exactly(server, 10) == b"still open"


def test_ancillary_data_is_unsupported(make_tls_pair: TLSPairFactory) -> None:
    client, _server = make_tls_pair()
    with pytest.raises(UnsupportedOperation):
        client.recv_with_ancillary(10, 10, 1.0)
    with pytest.raises(UnsupportedOperation):
        client.recv_with_ancillary_into(bytearray(10), 10, 1.0)
    with pytest.raises(UnsupportedOperation):
        client.send_all_with_ancillary([b"x"], [], 1.0)


# ------------------------------------------------------ constructor arguments


def constructor_failures(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, session: ssl.SSLSession | None
) -> Iterator[tuple[type[Exception], str, Callable[[StreamTransport], object]]]:
    yield TypeError, "SSLContext", lambda t: TLSStreamTransport(t, "not a context")  # type: ignore[arg-type]
    yield ValueError, "timeout", lambda t: TLSStreamTransport(t, server_context, handshake_timeout=-1.0)
    yield ValueError, "timeout", lambda t: TLSStreamTransport(t, server_context, shutdown_timeout=math.nan)
    yield (
        ValueError,
        "server_hostname",
        lambda t: TLSStreamTransport(t, server_context, server_side=True, server_hostname=SERVER_NAME),
    )
    yield ValueError, "check_hostname", lambda t: TLSStreamTransport(t, client_context, server_side=False)
    if session is not None:
        yield ValueError, "(?i)session", lambda t: TLSStreamTransport(t, server_context, session=session)


def test_constructor_errors_close_the_wrapped_transport(
    make_tls_pair: TLSPairFactory,
    make_inner: InnerFactory,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    reference_client, _ = make_tls_pair()
    session = reference_client.session
    for error, message, build in constructor_failures(server_context, client_context, session):
        inner, _peer_sock = make_inner()
        with pytest.raises(error, match=message):
            build(inner)
        assert inner.is_closed(), message


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
