"""The TLS contract, written once for both TLS transports.

``transports.socket.SSLStreamTransport`` (OpenSSL driving a socket) and
``transports.composite.TLSStreamTransport`` (OpenSSL over memory BIOs, on
any stream transport) take the same options, report the same errors, give
the same typed attributes and end connections the same way (docs/tls.md).
Every test here runs on each TLS kind of connected pair that conftest.py
lists, and once per TLS version. What only one of them does (retry
intervals, descriptor races, the memory-BIO engine, wrapped transports of
one's own) stays with its package's tests.

The pairs come from ``open_stream_pair`` when the defaults fit. Tests that
need other options, a certificate the peer refuses, or a peer that is not
TLS at all build their transports with the local constructors below, over
carriers like those of conftest.py's kinds (see ``carriers``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import math
import os
import socket
import ssl
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import pytest
import trustme

from transports.abc import StreamTransport, TLSAttribute, TypedAttributeLookupError, UnsupportedOperation
from transports.abc.testing import check_stream_transport
from transports.composite import StapledStreamTransport, TLSStreamTransport
from transports.selector import PipeReadTransport, PipeWriteTransport
from transports.socket import SocketStreamTransport, SSLStreamTransport

# The TLS kinds of conftest.STREAM_KINDS (which a test module cannot import).
TLS_KINDS = [
    "SSLStreamTransport over TCP",
    "SSLStreamTransport over Unix",
    "TLSStreamTransport over a socket",
    "TLSStreamTransport over stapled pipes",
    "TLS in TLS",
]
# The kinds whose carrier is a socket: a plain ssl.SSLSocket can be the peer.
SOCKET_CARRIED_KINDS = TLS_KINDS[:3]

SERVER_NAME = "server.test"
RETRY = 1.0
SHORT_RETRY = 0.1
# Every call that must succeed gets this long: a bug fails the test instead of hanging it.
TIMEOUT = 10.0
# How late a timeout may fire on a loaded 2-core machine.
MARGIN = 0.5
MiB = 1024 * 1024
# More than the loopback socket buffers and any TLS buffering hold: a send
# of this much to a peer that does not read runs out of time.
BLOCKING_SEND = 32 * MiB

StreamPair = tuple[StreamTransport, StreamTransport]
OpenStreamPair = Callable[[str], contextlib.AbstractContextManager[StreamPair]]
Contexts = tuple[ssl.SSLContext, ssl.SSLContext]
RunInThread = Callable[[Callable[[], Any]], "Future[Any]"]
# What one end's TLS layer runs over: a plain socket for SSLStreamTransport,
# a stream transport for TLSStreamTransport.
Carrier = socket.socket | StreamTransport
TLSTransport = SSLStreamTransport | TLSStreamTransport[StreamTransport]

# Every TLSAttribute, also one added later.
TLS_ATTRIBUTES = [getattr(TLSAttribute, name) for name in TLSAttribute.__annotations__]
VERSION_NAMES = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}


# --------------------------------------------------------------- fixtures ----


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert(SERVER_NAME)


@pytest.fixture(scope="module")
def client_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("client@example.test")


@pytest.fixture(params=list(VERSION_NAMES), ids=list(VERSION_NAMES.values()))
def tls_version(request: pytest.FixtureRequest) -> ssl.TLSVersion:
    version: ssl.TLSVersion = request.param
    return version


def pinned_context(purpose: ssl.Purpose, version: ssl.TLSVersion) -> ssl.SSLContext:
    """A default context for ``purpose``, pinned to ``version``, seeing ragged EOFs."""
    context = ssl.create_default_context(purpose)
    context.minimum_version = context.maximum_version = version
    context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return context


@pytest.fixture
def contexts(ca: trustme.CA, server_cert: trustme.LeafCert, tls_version: ssl.TLSVersion) -> Contexts:
    """(server, client) contexts pinned to ``tls_version``, fresh for each test.

    Overrides conftest.py's session-wide pair in this module, so that
    ``open_stream_pair`` makes pairs of both TLS versions here, and a test
    may change its contexts (to require client certificates) safely.
    """
    server = pinned_context(ssl.Purpose.CLIENT_AUTH, tls_version)
    server_cert.configure_cert(server)
    client = pinned_context(ssl.Purpose.SERVER_AUTH, tls_version)
    ca.configure_trust(client)
    return server, client


@pytest.fixture
def run_in_thread() -> Iterator[RunInThread]:
    """Run a peer in a thread; every thread is joined at teardown (peers make bounded calls only)."""
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tls-contract")
    try:
        yield executor.submit
    finally:
        executor.shutdown(wait=True)


@pytest.fixture
def fd_count() -> Callable[[], int]:
    """How many descriptors this process has open (Linux ``/proc``)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    return lambda: len(os.listdir("/proc/self/fd"))


# ------------------------------------------------------ local constructors ----


def socket_pair(kind: str) -> tuple[socket.socket, socket.socket]:
    if "TCP" in kind:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            ours = socket.create_connection(listener.getsockname())
            theirs, _ = listener.accept()
        return ours, theirs
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def pipe_ends(write_fd: int, read_fd: int) -> StreamTransport:
    return StapledStreamTransport(PipeWriteTransport(write_fd, SHORT_RETRY), PipeReadTransport(read_fd, SHORT_RETRY))


def close_both(a: Any, b: Any) -> None:
    """Close both at once, so that each closing handshake is answered."""
    closer = threading.Thread(target=b.close)
    closer.start()
    try:
        a.close()
    finally:
        closer.join(30.0)


def handshake(make_server: Callable[[], Any], make_client: Callable[[], Any]) -> tuple[Any, Any]:
    """``(client, server)``, the server's handshake in a thread; if either fails, nothing is left open."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tls-handshake") as pool:
        serving = pool.submit(make_server)
        try:
            client = make_client()
        except BaseException:
            with contextlib.suppress(Exception):
                serving.result(30.0).close()
            raise
        try:
            server = serving.result(30.0)
        except BaseException:
            client.close()
            raise
    return client, server


@functools.cache
def outer_contexts() -> Contexts:
    """(server, client) contexts of the outer layer of TLS in TLS.

    Its own, of its own CA: tests change theirs (client certificates, EOF
    options), which must reach the layer under test only.
    """
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SERVER_NAME).configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return server, client


def carriers(kind: str) -> tuple[Carrier, Carrier]:
    """(client's, server's): what the two TLS layers of a pair of ``kind`` run over."""
    if kind.startswith("SSLStreamTransport"):
        return socket_pair(kind)
    if kind == "TLSStreamTransport over stapled pipes":
        a_to_b_read, a_to_b_write = os.pipe()
        b_to_a_read, b_to_a_write = os.pipe()
        return pipe_ends(a_to_b_write, b_to_a_read), pipe_ends(b_to_a_write, a_to_b_read)
    ours, theirs = socket.socketpair()
    plain: tuple[StreamTransport, StreamTransport] = (
        SocketStreamTransport(ours, RETRY),
        SocketStreamTransport(theirs, RETRY),
    )
    if kind == "TLSStreamTransport over a socket":
        return plain
    # TLS in TLS. The outer layer closes at once, without a closing
    # handshake, and reads an end without close_notify as b"": closing it
    # is closing a socket, so the timings of the inner layer stay its own.
    server_context, client_context = outer_contexts()
    options: dict[str, Any] = {"handshake_timeout": TIMEOUT, "standard_compatible": False}
    try:
        client, server = handshake(
            lambda: TLSStreamTransport(plain[1], server_context, **options),
            lambda: TLSStreamTransport(plain[0], client_context, server_hostname=SERVER_NAME, **options),
        )
    except BaseException:
        close_both(*plain)
        raise
    return client, server


def secure(carrier: Carrier, context: ssl.SSLContext, **options: Any) -> TLSTransport:
    """The kind's TLS transport over ``carrier``: 10 s for the handshake and the closing one by default."""
    options = {"handshake_timeout": TIMEOUT, "shutdown_timeout": TIMEOUT, **options}
    if isinstance(carrier, socket.socket):
        return SSLStreamTransport(carrier, context, RETRY, **options)
    return TLSStreamTransport(carrier, context, **options)


def as_stream(carrier: Carrier) -> StreamTransport:
    """The carrier as a plain stream transport, to send bytes that are not TLS (it owns a socket)."""
    return SocketStreamTransport(carrier, RETRY) if isinstance(carrier, socket.socket) else carrier


def carrier_closed(carrier: Carrier) -> bool:
    # SSLStreamTransport takes the socket's descriptor over: the socket object says -1 at once.
    return carrier.fileno() == -1 if isinstance(carrier, socket.socket) else carrier.is_closed()


@contextlib.contextmanager
def open_carriers(kind: str) -> Iterator[tuple[Carrier, Carrier]]:
    """The carriers of a pair whose handshake the test makes (or fails) itself; both closed at the end."""
    ours, theirs = carriers(kind)
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


class Connection(NamedTuple):
    client: TLSTransport
    server: TLSTransport
    client_carrier: Carrier
    server_carrier: Carrier


@contextlib.contextmanager
def connected(
    kind: str,
    contexts: Contexts,
    *,
    client: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
) -> Iterator[Connection]:
    """A connected pair of ``kind`` with constructor options of the test's choosing; closed at the end."""
    server_context, client_context = contexts
    with open_carriers(kind) as (ours, theirs):
        client_end, server_end = handshake(
            lambda: secure(theirs, server_context, **(server or {})),
            lambda: secure(ours, client_context, server_hostname=SERVER_NAME, **(client or {})),
        )
        try:
            yield Connection(client_end, server_end, ours, theirs)
        finally:
            close_both(client_end, server_end)


def receive_exactly(transport: StreamTransport, size: int, timeout: float = TIMEOUT) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = transport.recv(size - len(received), timeout)
        assert chunk, f"end of stream after {len(received)} of {size} bytes"
        received += chunk
    return bytes(received)


def sha256_of_stream(transport: StreamTransport, size: int) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(256 * 1024)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = transport.recv_into(view[: min(len(buffer), size - received)], TIMEOUT)
        assert count, f"end of stream after {received} of {size} bytes"
        digest.update(view[:count])
        received += count
    return digest.hexdigest()


def drain_then_close(transport: StreamTransport) -> bytes:
    """Read up to a clean end of stream (a ragged one raises), then close, answering the close_notify."""
    received = bytearray()
    while chunk := transport.recv(256 * 1024, TIMEOUT):
        received += chunk
    transport.close()
    return bytes(received)


def timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


# -------------------------------------------------------------- the kit ----


@pytest.mark.timeout(180)
@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2], ids=["TLSv1.2"])
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_the_conformance_kit_over_tls12(tls_kind: str, open_stream_pair: OpenStreamPair) -> None:
    # test_conformance.py runs the kit with conftest.py's contexts, which
    # negotiate TLS 1.3; the exchange, buffer, timeout, closing and
    # full-duplex checks must hold with TLS 1.2 as well.
    with open_stream_pair(tls_kind) as (client, _):
        assert client.extra(TLSAttribute.tls_version) == "TLSv1.2"
    check_stream_transport(lambda: open_stream_pair(tls_kind), half_close=False)


# ------------------------------------------------------- typed attributes ----


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_tls_attributes_while_open(tls_kind: str, contexts: Contexts, tls_version: ssl.TLSVersion) -> None:
    assert len(TLS_ATTRIBUTES) == 6  # the six checked below
    server_context, client_context = contexts
    with connected(tls_kind, contexts, server={"standard_compatible": False}) as (client, server, _, _):
        assert client.extra(TLSAttribute.sslcontext) is client_context
        assert server.extra(TLSAttribute.sslcontext) is server_context
        peercert = client.extra(TLSAttribute.peercert)
        assert peercert["subjectAltName"] == (("DNS", SERVER_NAME),)
        with pytest.raises(TypedAttributeLookupError):  # the client sent no certificate
            server.extra(TLSAttribute.peercert)
        assert server.extra(TLSAttribute.peercert, None) is None
        for end in (client, server):
            name, protocol, bits = end.extra(TLSAttribute.cipher)
            assert name
            assert protocol == VERSION_NAMES[tls_version]
            assert bits >= 128
            with pytest.raises(TypedAttributeLookupError):  # no compression in use
                end.extra(TLSAttribute.compression)
            assert end.extra(TLSAttribute.compression, "none") == "none"
            assert end.extra(TLSAttribute.tls_version) == VERSION_NAMES[tls_version]
            assert set(TLS_ATTRIBUTES) <= set(end.extra_attributes)
        assert client.extra(TLSAttribute.standard_compatible) is True
        assert server.extra(TLSAttribute.standard_compatible) is False


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_tls_attributes_after_close(tls_kind: str, open_stream_pair: OpenStreamPair) -> None:
    with open_stream_pair(tls_kind) as (client, server):
        close_both(client, server)
        for end in (client, server):
            for attribute in TLS_ATTRIBUTES:
                with pytest.raises(TypedAttributeLookupError):
                    end.extra(attribute)
                assert end.extra(attribute, "gone") == "gone"


# ------------------------------------------------------------- handshake ----


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_session_resumption(tls_kind: str, contexts: Contexts, tls_version: ssl.TLSVersion) -> None:
    with connected(tls_kind, contexts) as (first, first_server, _, _):
        assert not first.session_reused
        assert not first_server.session_reused
        # TLS 1.3 servers send their tickets after the handshake: the client
        # has a resumable session once it has read something.
        first_server.send_all(b"1", TIMEOUT)
        assert first.recv(1, TIMEOUT) == b"1"
        session = first.session
        assert session is not None
        if tls_version == ssl.TLSVersion.TLSv1_3:
            assert session.has_ticket
        close_both(first, first_server)
        kept = first.session  # still there after close(), to resume
        assert kept is not None
        assert kept.id == session.id
        assert not first.session_reused
    with connected(tls_kind, contexts, client={"session": kept}) as (second, second_server, _, _):
        assert second.session_reused
        assert second_server.session_reused
        if tls_version == ssl.TLSVersion.TLSv1_2:
            resumed = second.session
            assert resumed is not None
            assert resumed.id == session.id
        second.send_all(b"2", TIMEOUT)
        assert second_server.recv(1, TIMEOUT) == b"2"
        close_both(second, second_server)
        assert second.session_reused  # also after close()


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_client_certificate_authentication(
    tls_kind: str, contexts: Contexts, ca: trustme.CA, client_cert: trustme.LeafCert
) -> None:
    server_context, client_context = contexts
    server_context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_context)
    client_cert.configure_cert(client_context)
    with connected(tls_kind, contexts) as (client, server, _, _):
        client.send_all(b"authenticated", TIMEOUT)
        assert receive_exactly(server, 13) == b"authenticated"
        assert ("email", "client@example.test") in server.extra(TLSAttribute.peercert)["subjectAltName"]
        assert client.extra(TLSAttribute.peercert)["subjectAltName"] == (("DNS", SERVER_NAME),)


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_a_client_without_the_required_certificate_is_refused(
    tls_kind: str, contexts: Contexts, ca: trustme.CA, tls_version: ssl.TLSVersion, run_in_thread: RunInThread
) -> None:
    server_context, client_context = contexts
    server_context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_context)
    with open_carriers(tls_kind) as (ours, theirs):
        server = run_in_thread(lambda: secure(theirs, server_context))
        if tls_version == ssl.TLSVersion.TLSv1_2:
            # The server's alert ends the client's handshake.
            with pytest.raises(ssl.SSLError, match=r"(?i)alert"):
                secure(ours, client_context, server_hostname=SERVER_NAME)
        else:
            # TLS 1.3: the client's handshake ends first; the alert fails its first read.
            with (
                secure(ours, client_context, server_hostname=SERVER_NAME) as client,
                pytest.raises(ssl.SSLError, match=r"(?i)certificate"),
            ):
                client.recv(10, TIMEOUT)
        with pytest.raises(ssl.SSLError, match=r"(?i)certificate"):
            server.result(TIMEOUT)
        assert carrier_closed(ours)
        assert carrier_closed(theirs)


@pytest.mark.parametrize("hostname", ["other.test", "server.test.evil"])
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_a_wrong_host_name_is_refused_and_leaks_nothing(
    tls_kind: str, contexts: Contexts, run_in_thread: RunInThread, fd_count: Callable[[], int], hostname: str
) -> None:
    server_context, client_context = contexts
    before = fd_count()
    with open_carriers(tls_kind) as (ours, theirs):
        server = run_in_thread(lambda: secure(theirs, server_context))
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch") as caught:
            secure(ours, client_context, server_hostname=hostname)
        assert caught.value.verify_message.startswith("Hostname mismatch")
        assert carrier_closed(ours)
        # The client's alert reached the server: it fails with it, not with an EOF.
        with pytest.raises(ssl.SSLError, match=r"(?i)alert"):
            server.result(TIMEOUT)
        assert carrier_closed(theirs)
    assert fd_count() == before


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_an_untrusted_certificate_is_refused_and_leaks_nothing(
    tls_kind: str,
    contexts: Contexts,
    tls_version: ssl.TLSVersion,
    run_in_thread: RunInThread,
    fd_count: Callable[[], int],
) -> None:
    server_context, _ = contexts
    stranger = pinned_context(ssl.Purpose.SERVER_AUTH, tls_version)  # trusts the system CAs only
    before = fd_count()
    with open_carriers(tls_kind) as (ours, theirs):
        server = run_in_thread(lambda: secure(theirs, server_context))
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            secure(ours, stranger, server_hostname=SERVER_NAME)
        assert carrier_closed(ours)
        with pytest.raises(ssl.SSLError):
            server.result(TIMEOUT)
        assert carrier_closed(theirs)
    assert fd_count() == before


@pytest.mark.parametrize("side", ["client", "server"])
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_a_silent_peer_makes_the_handshake_time_out(tls_kind: str, contexts: Contexts, side: str) -> None:
    server_context, client_context = contexts
    with open_carriers(tls_kind) as (ours, _silent):
        context, options = (
            (client_context, {"server_hostname": SERVER_NAME}) if side == "client" else (server_context, {})
        )
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="handshake") as caught:
            secure(ours, context, handshake_timeout=0.3, **options)
        assert 0.3 <= time.monotonic() - started < 0.3 + MARGIN
        assert caught.value.errno == errno.ETIMEDOUT
        assert carrier_closed(ours)


@pytest.mark.parametrize(
    ("side", "garbage"),
    [
        ("server", b"GET / HTTP/1.1\r\nHost: server.test\r\n\r\n"),
        ("server", b"\x16\x03\x01\x00\x05hello"),
        ("server", b"\x00" * 64),
        ("client", b"SSH-2.0-OpenSSH_9.6\r\n" * 4),
        ("client", b"\x00" * 64 + b"not TLS at all\r\n" * 8),
    ],
    ids=[
        "http-to-a-server",
        "bad-handshake-record-to-a-server",
        "zeros-to-a-server",
        "ssh-to-a-client",
        "zeros-to-a-client",
    ],
)
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_a_peer_that_does_not_speak_tls_fails_the_handshake_at_once(
    tls_kind: str, contexts: Contexts, side: str, garbage: bytes
) -> None:
    server_context, client_context = contexts
    with open_carriers(tls_kind) as (ours, theirs):
        peer = as_stream(theirs)
        try:
            peer.send_all(garbage, TIMEOUT)  # and it stays connected, silent
            context, options = (
                (client_context, {"server_hostname": SERVER_NAME}) if side == "client" else (server_context, {})
            )
            started = time.monotonic()
            with pytest.raises(ssl.SSLError):
                secure(ours, context, **options)
            assert time.monotonic() - started < 1.0  # an error at once, not a wait for more data
            assert carrier_closed(ours)
        finally:
            peer.close()


@pytest.mark.parametrize("when", ["before-the-hello", "after-the-hello"])
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_a_peer_leaving_during_the_handshake(
    tls_kind: str, contexts: Contexts, run_in_thread: RunInThread, when: str
) -> None:
    _, client_context = contexts
    with open_carriers(tls_kind) as (ours, theirs):
        peer = as_stream(theirs)

        def leave() -> None:
            if when == "after-the-hello":
                assert peer.recv(65536, TIMEOUT)  # the ClientHello
            peer.close()

        leaving = run_in_thread(leave)
        if when == "before-the-hello":
            leaving.result(TIMEOUT)
        with pytest.raises((ssl.SSLEOFError, ConnectionError)):  # whichever the client notices first
            secure(ours, client_context, server_hostname=SERVER_NAME)
        leaving.result(TIMEOUT)
        assert carrier_closed(ours)


@pytest.mark.parametrize("ignore_unexpected_eof", [False, True], ids=["eof-is-an-error", "OP_IGNORE_UNEXPECTED_EOF"])
@pytest.mark.parametrize("side", ["client", "server"])
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_an_end_of_stream_during_the_handshake_is_an_ssl_eof_error(
    tls_kind: str,
    contexts: Contexts,
    run_in_thread: RunInThread,
    side: str,
    ignore_unexpected_eof: bool,
) -> None:
    # An orderly end (no reset): a half-close where the carrier has one,
    # a close after reading everything otherwise. Whatever OpenSSL makes of
    # an EOF (OP_IGNORE_UNEXPECTED_EOF turns it into a "clean" close),
    # during a handshake it is an ssl.SSLEOFError.
    server_context, client_context = contexts
    context, options = (client_context, {"server_hostname": SERVER_NAME}) if side == "client" else (server_context, {})
    if ignore_unexpected_eof:
        context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    with open_carriers(tls_kind) as (ours, theirs):
        peer = as_stream(theirs)

        def end_the_stream() -> None:
            if side == "client":
                assert peer.recv(65536, TIMEOUT)  # the ClientHello
            else:
                peer.send_all(b"\x16\x03\x01", TIMEOUT)  # the start of a ClientHello record
            try:
                peer.send_eof()
            except UnsupportedOperation:
                peer.close()

        ending = run_in_thread(end_the_stream)
        try:
            with pytest.raises(ssl.SSLEOFError):
                secure(ours, context, **options)
            ending.result(TIMEOUT)
            assert carrier_closed(ours)
        finally:
            peer.close()


# Stands for the session of an earlier connection, which the test makes.
EARLIER_SESSION = object()


@pytest.mark.parametrize(
    ("exception", "message", "role", "options"),
    [
        (TypeError, "SSLContext", "not-a-context", {}),
        (ValueError, "timeout must not be negative", "server", {"handshake_timeout": -1.0}),
        (ValueError, "timeout must not be NaN", "server", {"shutdown_timeout": math.nan}),
        (
            ValueError,
            "server_hostname can only be given to a client",
            "server",
            {"server_side": True, "server_hostname": SERVER_NAME},
        ),
        (ValueError, "check_hostname requires server_hostname", "client", {"server_side": False}),
        (ValueError, "(?i)session", "server", {"session": EARLIER_SESSION}),
    ],
    ids=[
        "not-a-context",
        "negative-handshake-timeout",
        "nan-shutdown-timeout",
        "server-with-a-host-name",
        "client-without-a-host-name",
        "session-given-to-a-server",
    ],
)
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_argument_errors_close_the_carrier(
    tls_kind: str,
    contexts: Contexts,
    exception: type[Exception],
    message: str,
    role: str,
    options: dict[str, Any],
) -> None:
    server_context, client_context = contexts
    if options.get("session") is EARLIER_SESSION:
        with connected(tls_kind, contexts) as (client, server, _, _):
            server.send_all(b"1", TIMEOUT)
            assert client.recv(1, TIMEOUT) == b"1"  # a TLS 1.3 client has its session from here
            assert client.session is not None
            options = {"session": client.session}
    context: Any = {"server": server_context, "client": client_context}.get(role, object())
    with open_carriers(tls_kind) as (ours, _):
        with pytest.raises(exception, match=message):
            secure(ours, context, **options)
        assert carrier_closed(ours)


# ------------------------------------------------------------- data path ----


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_send_takes_at_most_64_kib_and_returns_its_count(
    tls_kind: str, open_stream_pair: OpenStreamPair, run_in_thread: RunInThread
) -> None:
    with open_stream_pair(tls_kind) as (client, server):
        numbers = array("i", range(100))
        assert client.send(numbers, TIMEOUT) == numbers.itemsize * 100  # any buffer, whole when small
        assert receive_exactly(server, numbers.itemsize * 100) == numbers.tobytes()
        assert server.send(b"partial?", TIMEOUT) == 8
        assert receive_exactly(client, 8) == b"partial?"
        assert client.send(b"", TIMEOUT) == 0
        data = os.urandom(MiB)
        # The reader runs meanwhile: a pipe holds less than 64 KiB of records.
        reader = run_in_thread(lambda: receive_exactly(server, 64 * 1024))
        assert client.send(data, TIMEOUT) == 64 * 1024
        assert reader.result(TIMEOUT) == data[: 64 * 1024]


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_send_all_from_iterable_joins_small_chunks_into_one_record(
    tls_kind: str, open_stream_pair: OpenStreamPair
) -> None:
    with open_stream_pair(tls_kind) as (client, server):
        chunks: list[bytes | memoryview] = [
            b"",
            *(f"{n:09d}|".encode() for n in range(1000)),
            b"",
            memoryview(b"tail"),
            b"",
        ]
        client.send_all_from_iterable(iter(chunks), TIMEOUT)
        # The recv of both returns at most one record: one call gets all
        # 10,004 bytes only if they went out as one record, not 1,000.
        assert server.recv(65536, TIMEOUT) == b"".join(chunks)


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_a_zero_timeout_never_blocks_and_returns_data_once_there(
    tls_kind: str, open_stream_pair: OpenStreamPair
) -> None:
    with open_stream_pair(tls_kind) as (client, server):
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            client.recv(10, 0)
        assert caught.value.errno == errno.ETIMEDOUT
        with pytest.raises(TimeoutError):
            client.recv_into(bytearray(10), 0)
        assert time.monotonic() - started < 0.2
        server.send_all(b"now", TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                assert client.recv(10, 0) == b"now"
                break
            except TimeoutError:
                assert time.monotonic() < deadline, "the data never arrived"
                time.sleep(0.01)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_one_send_all_of_16_mib_each_way_at_once(
    tls_kind: str, open_stream_pair: OpenStreamPair, run_in_thread: RunInThread
) -> None:
    # One call for the whole payload, larger than any chunk either
    # transport encrypts or writes at a time.
    with open_stream_pair(tls_kind) as (client, server):
        to_server, to_client = os.urandom(16 * MiB), os.urandom(16 * MiB)
        at_server = run_in_thread(lambda: sha256_of_stream(server, len(to_server)))
        at_client = run_in_thread(lambda: sha256_of_stream(client, len(to_client)))
        from_server = run_in_thread(lambda: server.send_all(memoryview(to_client), 30.0))
        client.send_all(to_server, 30.0)
        from_server.result(30.0)
        assert at_server.result(30.0) == hashlib.sha256(to_server).hexdigest()
        assert at_client.result(30.0) == hashlib.sha256(to_client).hexdigest()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_64_mib_one_way_with_checksum(
    tls_kind: str, open_stream_pair: OpenStreamPair, run_in_thread: RunInThread
) -> None:
    with open_stream_pair(tls_kind) as (client, server):
        size = 64 * MiB  # the load test moves gigabytes; this one checks each block in order
        receiver = run_in_thread(lambda: sha256_of_stream(server, size))
        block = bytearray(os.urandom(MiB))
        expected = hashlib.sha256()
        for index in range(size // MiB):
            block[:8] = index.to_bytes(8, "big")  # every block differs: order matters
            client.send_all(block, TIMEOUT)  # returns once the data is taken: the buffer may change at once
            expected.update(block)
        assert receiver.result(30.0) == expected.hexdigest()


@pytest.mark.parametrize("method", ["send_all", "send"])
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_a_timed_out_send_leaves_the_stream_intact(
    tls_kind: str, contexts: Contexts, run_in_thread: RunInThread, method: str
) -> None:
    # The peer does not read: the send runs out of time part-way through
    # its records. Whatever the peer gets must decrypt: a prefix of what
    # was given, then what is sent next, then a clean close_notify.
    with connected(tls_kind, contexts) as (client, server, _, _):
        if method == "send_all":
            payload = bytearray(os.urandom(BLOCKING_SEND))
            given = bytes(payload)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                client.send_all(payload, 0.5)
            assert 0.5 <= time.monotonic() - started < 0.5 + MARGIN
            payload[:] = bytes(len(payload))  # the caller may reuse its buffer at once
        else:

            def fill() -> None:
                for _ in range(BLOCKING_SEND // 65536):
                    assert client.send(b"x" * 65536, 0.2) == 65536

            with pytest.raises(TimeoutError):
                fill()
        reader = run_in_thread(lambda: drain_then_close(server))
        if method == "send_all":
            client.send_all(b"<END>", TIMEOUT)
        else:
            assert client.send(b"<END>", TIMEOUT) == 5  # after the rest of the interrupted one
        client.close()  # the peer reads up to our close_notify, then answers it
        received = reader.result(30.0)
    assert received.endswith(b"<END>")
    body = received[: -len(b"<END>")]
    assert body
    if method == "send_all":
        assert body == given[: len(body)]  # a prefix of what was given: never torn, never the new contents
    else:
        assert body == b"x" * len(body)
        assert len(body) % 65536 == 0  # whole sends only: the interrupted one was finished


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_ancillary_data_is_unsupported(tls_kind: str, open_stream_pair: OpenStreamPair) -> None:
    with open_stream_pair(tls_kind) as (client, _):
        with pytest.raises(UnsupportedOperation):
            client.recv_with_ancillary(10, 10, 1.0)
        with pytest.raises(UnsupportedOperation):
            client.recv_with_ancillary_into(bytearray(10), 10, 1.0)
        with pytest.raises(UnsupportedOperation):
            client.send_all_with_ancillary([b"x"], [], 1.0)


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_send_eof_is_refused_and_the_connection_stays_usable(tls_kind: str, open_stream_pair: OpenStreamPair) -> None:
    with open_stream_pair(tls_kind) as (client, server):
        with pytest.raises(UnsupportedOperation, match="half-close") as caught:
            client.send_eof()
        assert isinstance(caught.value, NotImplementedError)
        client.send_all(b"still open", TIMEOUT)
        assert receive_exactly(server, 10) == b"still open"
        server.send_all(b"both ways", TIMEOUT)
        assert receive_exactly(client, 9) == b"both ways"


# --------------------------------------------------------------- closing ----


@pytest.mark.parametrize("standard_compatible", [True, False], ids=["standard", "lenient"])
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_operations_after_close_raise_ebadf_at_once(
    tls_kind: str, contexts: Contexts, standard_compatible: bool
) -> None:
    with connected(tls_kind, contexts, client={"standard_compatible": standard_compatible}) as (client, server, _, _):
        close_both(client, server)
        client.close()  # again: nothing
        assert client.is_closed()
        calls: list[Callable[[], object]] = [
            lambda: client.recv(10, 1.0),
            lambda: client.recv(10, 0),
            lambda: client.recv(0, 1.0),
            lambda: client.recv_into(bytearray(10), 1.0),
            lambda: client.send(b"x", 1.0),
            lambda: client.send_all(b"x", 1.0),
            lambda: client.send_all(b"x" * (3 * MiB), 1.0),
            lambda: client.send_all_from_iterable([b"x", b"y"], 1.0),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(OSError) as caught:
                call()
            assert caught.value.errno == errno.EBADF
            assert time.monotonic() - started < 0.5
        client.send_eof()  # nothing once closed


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_close_makes_the_closing_handshake(tls_kind: str, contexts: Contexts, run_in_thread: RunInThread) -> None:
    with connected(tls_kind, contexts) as (client, server, ours, _):

        def server_side() -> bytes:
            data = receive_exactly(server, 10)
            assert server.recv(100, TIMEOUT) == b""  # our close_notify: a clean end
            server.close()  # answers it
            return data

        peer = run_in_thread(server_side)
        client.send_all(b"last words", TIMEOUT)
        assert timed(client.close) < 1.0  # the answer came: no wait for the 10 s bound
        assert carrier_closed(ours)
        assert peer.result(TIMEOUT) == b"last words"


@pytest.mark.parametrize("standard_compatible", [True, False], ids=["standard", "lenient"])
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_a_close_notify_reads_as_eof_and_forbids_sending(
    tls_kind: str, contexts: Contexts, run_in_thread: RunInThread, standard_compatible: bool
) -> None:
    with connected(tls_kind, contexts, client={"standard_compatible": standard_compatible}) as (client, server, _, _):

        def say_goodbye() -> float:
            server.send_all(b"goodbye", TIMEOUT)
            return timed(server.close)

        closing = run_in_thread(say_goodbye)
        assert receive_exactly(client, 7) == b"goodbye"
        assert client.recv(100, TIMEOUT) == b""
        assert client.recv(100, TIMEOUT) == b""  # from then on
        assert client.recv_into(bytearray(10), TIMEOUT) == 0
        sends: list[Callable[[], object]] = [
            lambda: client.send(b"late", TIMEOUT),
            lambda: client.send_all(b"late", TIMEOUT),
            lambda: client.send_all_from_iterable([b"la", b"te"], TIMEOUT),
        ]
        for send in sends:
            with pytest.raises(ConnectionResetError) as caught:
                send()
            assert caught.value.errno == errno.ECONNRESET
        assert timed(client.close) < 1.0  # the peer's close_notify is there already: no wait
        closing.result(1.0)  # and ours answered it at once, or our carrier closed


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_the_end_of_stream_is_returned_at_once_each_time(
    tls_kind: str, contexts: Contexts, run_in_thread: RunInThread
) -> None:
    # The peer sent its close_notify and waits for ours, its end still
    # open: nothing more will come, and every receive says so at once.
    with connected(tls_kind, contexts) as (client, server, _, _):
        server.send_all(b"x", TIMEOUT)
        assert client.recv(10, TIMEOUT) == b"x"  # the TLS 1.3 session tickets are read by now
        with pytest.raises(TimeoutError):  # a receive that finds nothing (may switch to waiting first)
            client.recv(10, 0)
        closing = run_in_thread(server.close)
        assert client.recv(10, TIMEOUT) == b""
        calls: list[Callable[[], object]] = [
            lambda: client.recv(10, TIMEOUT),
            lambda: client.recv_into(bytearray(10), TIMEOUT),
            lambda: client.recv(10, TIMEOUT),
        ]
        try:
            for call in calls:
                started = time.monotonic()
                assert not call()
                assert time.monotonic() - started < MARGIN, "the end of stream came late"
        finally:
            client.close()  # answers the peer's close_notify
            closing.result(TIMEOUT)


@pytest.mark.parametrize("reader_standard_compatible", [True, False], ids=["standard-reader", "lenient-reader"])
@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_a_close_without_close_notify_is_a_ragged_eof(
    tls_kind: str, contexts: Contexts, reader_standard_compatible: bool
) -> None:
    with connected(
        tls_kind,
        contexts,
        client={"standard_compatible": False},
        server={"standard_compatible": reader_standard_compatible},
    ) as (client, server, ours, _):
        # Read first, so that no TLS 1.3 session ticket is left unread in the
        # client's socket: closing a socket with unread data resets the connection.
        server.send_all(b"hi", TIMEOUT)
        assert receive_exactly(client, 2) == b"hi"
        client.send_all(b"last", TIMEOUT)
        assert timed(client.close) < 0.5  # no closing handshake: no wait
        assert carrier_closed(ours)
        assert receive_exactly(server, 4) == b"last"
        if reader_standard_compatible:
            with pytest.raises(ssl.SSLEOFError, match="EOF"):
                server.recv(10, TIMEOUT)
            with pytest.raises(ssl.SSLEOFError):  # each time: a truncated stream never becomes an EOF
                server.recv_into(bytearray(10), TIMEOUT)
        else:
            assert server.recv(10, TIMEOUT) == b""
            assert server.recv(10, TIMEOUT) == b""
            assert server.recv_into(bytearray(10), TIMEOUT) == 0
        assert timed(server.close) < 1.0  # the peer is gone: nothing to wait for
        assert server.is_closed()


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_close_with_a_silent_peer_is_bounded_by_shutdown_timeout(tls_kind: str, contexts: Contexts) -> None:
    # Many TLS 1.3 peers never answer a close_notify.
    with connected(tls_kind, contexts, client={"shutdown_timeout": 0.5}) as (client, server, ours, _):
        elapsed = timed(client.close)
        assert 0.5 <= elapsed < 0.5 + MARGIN
        assert carrier_closed(ours)
        assert server.recv(10, TIMEOUT) == b""  # the close_notify went out all the same


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_close_with_unread_data_still_sends_its_close_notify(tls_kind: str, contexts: Contexts) -> None:
    # OpenSSL does not read past application data to find the peer's
    # close_notify, so the closing handshake ends at once; the close_notify
    # must reach the peer all the same, or it sees a ragged EOF.
    with connected(tls_kind, contexts) as (client, server, _, _):
        server.send_all(b"x" * 100, TIMEOUT)
        assert client.recv(1, TIMEOUT) == b"x"  # the rest of the record stays unread
        assert timed(client.close) < 1.0  # far below the 10 s bound
        assert server.recv(200, TIMEOUT) == b""  # a clean end, not an ssl.SSLEOFError


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_close_with_a_vanished_peer_returns_at_once(tls_kind: str, contexts: Contexts) -> None:
    with connected(tls_kind, contexts, server={"standard_compatible": False}) as (client, server, ours, _):
        server.close()  # gone, without any TLS goodbye
        assert timed(client.close) < 1.0  # the closing handshake fails at once; its error is swallowed
        assert client.is_closed()
        assert carrier_closed(ours)


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_close_while_the_peer_does_not_read_is_bounded(tls_kind: str, contexts: Contexts) -> None:
    # A send ran out of time part-way through its records: the rest of
    # them, then the close_notify, cannot be sent. close() still ends
    # within shutdown_timeout.
    with connected(tls_kind, contexts, client={"shutdown_timeout": 0.5}) as (client, _, ours, _):
        with pytest.raises(TimeoutError):
            client.send_all(b"x" * BLOCKING_SEND, 0.2)
        elapsed = timed(client.close)
        assert 0.5 <= elapsed < 0.5 + MARGIN
        assert carrier_closed(ours)


@pytest.mark.parametrize("tls_kind", TLS_KINDS)
def test_both_ends_closing_at_once_answer_each_other(tls_kind: str, contexts: Contexts) -> None:
    with connected(tls_kind, contexts) as (client, server, ours, theirs):
        assert timed(lambda: close_both(client, server)) < 2.0  # far below the 10 s bound
        assert client.is_closed()
        assert server.is_closed()
        assert carrier_closed(ours)
        assert carrier_closed(theirs)


# ------------------------------------------------- a plain ssl.SSLSocket peer ----


def socket_carriers(kind: str) -> tuple[Carrier, socket.socket]:
    """Our carrier of a pair of ``kind``, and the peer's plain socket (for an ssl.SSLSocket)."""
    ours, theirs = socket_pair(kind)
    theirs.settimeout(TIMEOUT)
    if kind.startswith("TLSStreamTransport"):
        return SocketStreamTransport(ours, RETRY), theirs
    return ours, theirs


@pytest.mark.parametrize("tls_kind", SOCKET_CARRIED_KINDS)
def test_a_client_talks_to_an_ssl_socket_server(
    tls_kind: str, contexts: Contexts, tls_version: ssl.TLSVersion, run_in_thread: RunInThread
) -> None:
    server_context, client_context = contexts
    ours, theirs = socket_carriers(tls_kind)

    def echo_then_unwrap() -> int:
        # suppress_ragged_eofs=False: an end without close_notify is an error here.
        with server_context.wrap_socket(theirs, server_side=True, suppress_ragged_eofs=False) as tls_sock:
            total = 0
            while not (data := tls_sock.recv(65536)).endswith(b"<bye>"):
                tls_sock.sendall(data)
                total += len(data)
            tls_sock.sendall(b"bye")
            tls_sock.unwrap().close()  # sends its close_notify, waits for ours
            return total

    peer = run_in_thread(echo_then_unwrap)
    try:
        with secure(ours, client_context, server_hostname=SERVER_NAME) as client:
            assert client.extra(TLSAttribute.tls_version) == VERSION_NAMES[tls_version]
            payload = os.urandom(300_000)
            for start in range(0, len(payload), 50_000):  # in turn, so that no buffer fills
                client.send_all(payload[start : start + 50_000], TIMEOUT)
                assert receive_exactly(client, 50_000) == payload[start : start + 50_000]
            client.send_all(b"<bye>", TIMEOUT)
            assert receive_exactly(client, 3) == b"bye"
            assert client.recv(10, TIMEOUT) == b""  # its close_notify
            with pytest.raises(ConnectionResetError):
                client.send_all(b"x", TIMEOUT)
        assert carrier_closed(ours)
        assert peer.result(TIMEOUT) == len(payload)  # our close answered its unwrap()
    finally:
        ours.close()
        theirs.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tls_kind", SOCKET_CARRIED_KINDS)
def test_a_server_talks_to_an_ssl_socket_client(
    tls_kind: str, contexts: Contexts, tls_version: ssl.TLSVersion, run_in_thread: RunInThread
) -> None:
    server_context, client_context = contexts
    ours, theirs = socket_carriers(tls_kind)
    payload = os.urandom(8 * MiB)

    def send_then_unwrap() -> bytes:
        with client_context.wrap_socket(theirs, server_hostname=SERVER_NAME, suppress_ragged_eofs=False) as tls_sock:
            tls_sock.sendall(payload)
            reply = tls_sock.recv(10)
            tls_sock.unwrap().close()  # sends its close_notify, waits for ours
            return reply

    peer = run_in_thread(send_then_unwrap)
    try:
        # No server_hostname and no server_side: a server.
        with secure(ours, server_context) as server:
            assert server.extra(TLSAttribute.tls_version) == VERSION_NAMES[tls_version]
            assert sha256_of_stream(server, len(payload)) == hashlib.sha256(payload).hexdigest()
            server.send_all(b"thanks", TIMEOUT)
            assert server.recv(10, TIMEOUT) == b""  # its close_notify
        assert peer.result(TIMEOUT) == b"thanks"  # our close answered its unwrap()
    finally:
        ours.close()
        theirs.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tls_kind", SOCKET_CARRIED_KINDS)
def test_32_mib_to_an_ssl_socket_server_with_checksum(
    tls_kind: str, contexts: Contexts, run_in_thread: RunInThread
) -> None:
    server_context, client_context = contexts
    ours, theirs = socket_carriers(tls_kind)
    size = 32 * MiB

    def digest_then_reply() -> str:
        with server_context.wrap_socket(theirs, server_side=True, suppress_ragged_eofs=False) as tls_sock:
            digest = hashlib.sha256()
            received = 0
            while received < size:
                data = tls_sock.recv(256 * 1024)
                assert data
                digest.update(data)
                received += len(data)
            tls_sock.sendall(digest.digest())
            assert tls_sock.recv(10) == b""  # our close_notify
            return digest.hexdigest()

    peer = run_in_thread(digest_then_reply)
    try:
        expected = hashlib.sha256()
        with secure(ours, client_context, server_hostname=SERVER_NAME, shutdown_timeout=1.0) as client:
            for seed in range(size // MiB):
                block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * (MiB // 32)
                client.send_all_from_iterable([block[:1000], block[1000:]], TIMEOUT)
                expected.update(block)
            assert receive_exactly(client, 32) == expected.digest()
        assert peer.result(TIMEOUT) == expected.hexdigest()
    finally:
        ours.close()
        theirs.close()
