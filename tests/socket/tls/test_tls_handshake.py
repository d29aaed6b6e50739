"""SSLStreamTransport's constructor: the handshake, its failures, the argument checks.

Every failure must close the socket before the constructor raises (so no
descriptor leaks), and none may turn into a wait longer than
``handshake_timeout``.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pytest

from transports.abc import TLSAttribute
from transports.socket import SSLStreamTransport

if TYPE_CHECKING:
    import trustme

SERVER_NAME = "server.test"  # conftest.SERVER_NAME
# How late a timeout may fire on a loaded 2-core machine.
MARGIN = 0.5

TCPPair = Callable[[], tuple[socket.socket, socket.socket]]
TLSPair = Callable[..., tuple[SSLStreamTransport, SSLStreamTransport]]
RunPeer = Callable[[Callable[[], Any]], "Future[Any]"]
ContextFactory = Callable[[ssl.Purpose], ssl.SSLContext]


def ssl_socket_echo_once(context: ssl.SSLContext, sock: socket.socket, **kwargs: Any) -> bytes:
    """Handshake as a blocking ssl.SSLSocket, echo one message, close cleanly."""
    with context.wrap_socket(sock, **kwargs) as tls_sock:
        data = tls_sock.recv(1024)
        tls_sock.sendall(data)
        tls_sock.unwrap().detach()
    return data


# ------------------------------------------------------------ success ----


def test_client_against_ssl_socket_server(
    tcp_pair: TCPPair, run_peer: RunPeer, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    ours, theirs = tcp_pair()
    peer = run_peer(lambda: ssl_socket_echo_once(server_context, theirs, server_side=True))
    with SSLStreamTransport(ours, client_context, 1.0, server_hostname=SERVER_NAME, shutdown_timeout=5.0) as client:
        client.send_all(b"ping", 5.0)
        assert client.recv(1024, 5.0) == b"ping"
        assert client.recv(1024, 5.0) == b""  # the server's close_notify
    assert peer.result(10.0) == b"ping"
    assert ours.fileno() == -1  # wrap_socket() took the descriptor over


def test_server_against_ssl_socket_client(
    tcp_pair: TCPPair,
    run_peer: RunPeer,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    tls_version: ssl.TLSVersion,
) -> None:
    ours, theirs = tcp_pair()

    def client() -> bytes:
        with client_context.wrap_socket(theirs, server_hostname=SERVER_NAME) as tls_sock:
            tls_sock.sendall(b"hello")
            reply = tls_sock.recv(1024)
            tls_sock.unwrap().detach()
        return reply

    peer = run_peer(client)
    # server_side=None and no server_hostname: a server.
    with SSLStreamTransport(ours, server_context, 1.0, shutdown_timeout=5.0) as server:
        assert server.extra(TLSAttribute.tls_version) == (
            "TLSv1.2" if tls_version == ssl.TLSVersion.TLSv1_2 else "TLSv1.3"
        )
        data = server.recv(1024, 5.0)
        server.send_all(data.upper(), 5.0)
        assert server.recv(1024, 5.0) == b""
    assert peer.result(10.0) == b"HELLO"


def test_client_certificate_authentication(
    tls_pair: TLSPair,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    tls_ca: trustme.CA,
    client_cert: trustme.LeafCert,
) -> None:
    server_context.verify_mode = ssl.CERT_REQUIRED
    tls_ca.configure_trust(server_context)
    client_cert.configure_cert(client_context)
    client, server = tls_pair()
    client.send_all(b"authenticated", 5.0)
    assert server.recv(100, 5.0) == b"authenticated"
    peercert = server.extra(TLSAttribute.peercert)
    assert peercert is not None
    assert ("email", "client@example.test") in peercert["subjectAltName"]
    server_cert = client.extra(TLSAttribute.peercert)
    assert server_cert is not None
    assert server_cert["subjectAltName"] == (("DNS", SERVER_NAME),)


def test_client_certificate_required_but_missing(
    tcp_pair: TCPPair,
    run_peer: RunPeer,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    tls_ca: trustme.CA,
) -> None:
    server_context.verify_mode = ssl.CERT_REQUIRED
    tls_ca.configure_trust(server_context)
    ours, theirs = tcp_pair()
    server = run_peer(lambda: SSLStreamTransport(theirs, server_context, 1.0, handshake_timeout=10.0))

    def connect_and_read() -> None:
        # TLS 1.2: the handshake fails. TLS 1.3: the client's handshake ends
        # first; it hears of the refusal on its first read.
        with SSLStreamTransport(ours, client_context, 1.0, server_hostname=SERVER_NAME) as client:
            client.recv(10, 5.0)

    with pytest.raises(ssl.SSLError, match=r"(?i)certificate|handshake failure"):
        connect_and_read()
    with pytest.raises(ssl.SSLError, match=r"(?i)certificate"):
        server.result(10.0)
    assert theirs.fileno() == -1


def test_session_reuse(tls_pair: TLSPair, run_peer: RunPeer) -> None:
    first, first_server = tls_pair()
    assert not first.session_reused
    # TLS 1.3 servers send their session tickets after the handshake: the
    # client has a resumable session once it has read something.
    first_server.send_all(b"1", 5.0)
    assert first.recv(1, 5.0) == b"1"
    session = first.session
    assert session is not None
    closing = run_peer(first_server.close)  # answers our close_notify
    first.close()
    closing.result(10.0)
    after_close = first.session  # still there after close(), to resume
    assert after_close is not None
    assert after_close.id == session.id
    second, second_server = tls_pair(client_options={"session": after_close})
    assert second.session_reused
    assert second_server.session_reused
    closing = run_peer(second_server.close)
    second.close()
    closing.result(10.0)
    assert second.session_reused  # also after close()


# ------------------------------------------------------------ failures ----


@pytest.mark.parametrize("hostname", ["other.test", "server.test.evil"])
def test_wrong_hostname_fails_and_leaks_no_descriptor(
    tcp_pair: TCPPair,
    run_peer: RunPeer,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    fd_count: Callable[[], int],
    hostname: str,
) -> None:
    before = fd_count()
    ours, theirs = tcp_pair()
    peer = run_peer(lambda: ssl_socket_echo_once(server_context, theirs, server_side=True))
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        SSLStreamTransport(ours, client_context, 1.0, server_hostname=hostname)
    assert caught.value.verify_message.startswith("Hostname mismatch")
    assert ours.fileno() == -1
    # The alert reached the server: it fails with it, not with an EOF.
    with pytest.raises(ssl.SSLError, match=r"(?i)alert"):
        peer.result(10.0)
    assert fd_count() == before  # both ends closed, nothing else left open


def test_untrusted_certificate_authority_fails_and_leaks_no_descriptor(
    run_peer: RunPeer,
    server_context: ssl.SSLContext,
    make_context: ContextFactory,
    fd_count: Callable[[], int],
) -> None:
    stranger = make_context(ssl.Purpose.SERVER_AUTH)  # trusts the system CAs only
    before = fd_count()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname())
        theirs = listener.accept()[0]
    theirs.settimeout(10.0)
    try:
        peer = run_peer(lambda: ssl_socket_echo_once(server_context, theirs, server_side=True))
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            SSLStreamTransport(ours, stranger, 1.0, server_hostname=SERVER_NAME)
        assert ours.fileno() == -1
        with pytest.raises(ssl.SSLError):
            peer.result(10.0)
    finally:
        theirs.close()
        ours.close()
    assert fd_count() == before


def test_silent_peer_times_out_within_handshake_timeout(
    tcp_pair: TCPPair, client_context: ssl.SSLContext, fd_count: Callable[[], int]
) -> None:
    ours, _silent = tcp_pair()
    before = fd_count()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="handshake") as caught:
        # retry_interval shorter than the timeout: several waits share one budget.
        SSLStreamTransport(ours, client_context, 0.1, server_hostname=SERVER_NAME, handshake_timeout=0.5)
    elapsed = time.monotonic() - start
    assert 0.5 <= elapsed < 0.5 + MARGIN
    assert caught.value.errno is not None
    assert fd_count() == before - 1


def test_silent_client_times_out_server_handshake(tcp_pair: TCPPair, server_context: ssl.SSLContext) -> None:
    ours, _silent = tcp_pair()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        SSLStreamTransport(ours, server_context, 1.0, handshake_timeout=0.3)
    assert time.monotonic() - start < 0.3 + MARGIN
    assert ours.fileno() == -1


def test_garbage_instead_of_client_hello_is_an_ssl_error(tcp_pair: TCPPair, server_context: ssl.SSLContext) -> None:
    ours, theirs = tcp_pair()
    theirs.sendall(b"GET / HTTP/1.1\r\nHost: server.test\r\n\r\n")
    start = time.monotonic()
    with pytest.raises(ssl.SSLError):
        SSLStreamTransport(ours, server_context, 1.0, handshake_timeout=10.0)
    assert time.monotonic() - start < 2.0  # an error at once, not a wait for more data


def test_garbage_instead_of_server_hello_is_an_ssl_error(tcp_pair: TCPPair, client_context: ssl.SSLContext) -> None:
    ours, theirs = tcp_pair()
    theirs.sendall(b"\x00" * 64 + b"not TLS at all\r\n" * 8)
    start = time.monotonic()
    with pytest.raises(ssl.SSLError):
        SSLStreamTransport(ours, client_context, 1.0, server_hostname=SERVER_NAME, handshake_timeout=10.0)
    assert time.monotonic() - start < 2.0
    assert ours.fileno() == -1


def test_peer_closing_during_handshake(tcp_pair: TCPPair, run_peer: RunPeer, client_context: ssl.SSLContext) -> None:
    ours, theirs = tcp_pair()

    def read_hello_and_leave() -> None:
        theirs.recv(4096)
        theirs.close()

    peer = run_peer(read_hello_and_leave)
    with pytest.raises((ssl.SSLEOFError, ConnectionError)):
        SSLStreamTransport(ours, client_context, 1.0, server_hostname=SERVER_NAME, handshake_timeout=10.0)
    peer.result(10.0)
    assert ours.fileno() == -1


def test_unconnected_socket(client_context: ssl.SSLContext) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(OSError) as caught:
        SSLStreamTransport(sock, client_context, 1.0, server_hostname=SERVER_NAME, handshake_timeout=1.0)
    assert not isinstance(caught.value, TimeoutError)
    assert sock.fileno() == -1


# --------------------------------------------------- argument checking ----


def test_ssl_socket_argument_is_a_type_error(client_context: ssl.SSLContext) -> None:
    left, right = socket.socketpair()
    try:
        wrapped = client_context.wrap_socket(left, server_hostname=SERVER_NAME, do_handshake_on_connect=False)
        with pytest.raises(TypeError, match="SSLSocket"):
            SSLStreamTransport(wrapped, client_context, 1.0, server_hostname=SERVER_NAME)
        assert wrapped.fileno() == -1  # every failure closes the socket given
    finally:
        right.close()


@pytest.mark.parametrize(
    ("family", "sock_type"),
    [(socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_UNIX, socket.SOCK_DGRAM), (socket.AF_UNIX, socket.SOCK_SEQPACKET)],
    ids=["udp", "unix-dgram", "unix-seqpacket"],
)
def test_wrong_socket_type_is_a_value_error(client_context: ssl.SSLContext, family: int, sock_type: int) -> None:
    sock = socket.socket(family, sock_type)
    with pytest.raises(ValueError, match="SOCK_STREAM"):
        SSLStreamTransport(sock, client_context, 1.0, server_hostname=SERVER_NAME)
    assert sock.fileno() == -1


def test_not_a_socket_is_a_type_error(client_context: ssl.SSLContext) -> None:
    with pytest.raises(TypeError, match=r"socket\.socket"):
        SSLStreamTransport(object(), client_context, 1.0, server_hostname=SERVER_NAME)  # type: ignore[arg-type]


def test_not_a_context_is_a_type_error(tcp_pair: TCPPair) -> None:
    ours, _ = tcp_pair()
    with pytest.raises(TypeError, match="SSLContext"):
        SSLStreamTransport(ours, object(), 1.0)  # type: ignore[arg-type]
    assert ours.fileno() == -1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"server_side": True, "server_hostname": SERVER_NAME}, "server_hostname can only be given to a client"),
        ({"server_side": False}, "check_hostname requires server_hostname"),
        ({"handshake_timeout": -1.0}, "negative"),
        ({"shutdown_timeout": float("nan")}, "NaN"),
    ],
    ids=["server-with-hostname", "client-without-hostname", "negative-timeout", "nan-timeout"],
)
def test_bad_arguments_close_the_socket(
    tcp_pair: TCPPair, client_context: ssl.SSLContext, options: dict[str, Any], message: str
) -> None:
    ours, _ = tcp_pair()
    with pytest.raises(ValueError, match=message):
        SSLStreamTransport(ours, client_context, 1.0, **options)
    assert ours.fileno() == -1


@pytest.mark.parametrize("retry_interval", [0.0, -1.0, float("nan")])
def test_bad_retry_interval_closes_the_socket(
    tcp_pair: TCPPair, client_context: ssl.SSLContext, retry_interval: float
) -> None:
    ours, _ = tcp_pair()
    with pytest.raises(ValueError, match="retry_interval"):
        SSLStreamTransport(ours, client_context, retry_interval, server_hostname=SERVER_NAME)
    assert ours.fileno() == -1


def test_session_given_to_a_server_closes_the_socket(
    tls_pair: TLSPair, tcp_pair: TCPPair, server_context: ssl.SSLContext
) -> None:
    client, _ = tls_pair()
    session = client.session
    assert session is not None
    ours, _ = tcp_pair()
    with pytest.raises(ValueError, match="session"):
        SSLStreamTransport(ours, server_context, 1.0, session=session)
    assert ours.fileno() == -1


def test_selector_factory_makes_every_wait(
    tcp_pair: TCPPair, run_peer: RunPeer, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    made: list[selectors.BaseSelector] = []

    def factory() -> selectors.BaseSelector:
        selector = selectors.SelectSelector()
        made.append(selector)
        return selector

    ours, theirs = tcp_pair()
    go = threading.Event()

    def server() -> bytes:
        with server_context.wrap_socket(theirs, server_side=True) as tls_sock:
            go.wait(10.0)
            tls_sock.sendall(b"late")
            tls_sock.unwrap().detach()
        return b"late"

    peer = run_peer(server)
    with SSLStreamTransport(
        ours, client_context, 1.0, server_hostname=SERVER_NAME, selector_factory=factory, shutdown_timeout=5.0
    ) as client:
        after_handshake = len(made)
        with pytest.raises(TimeoutError):
            client.recv(10, 0.1)  # nothing to read: waits, with a selector from the factory
        assert len(made) > after_handshake
        go.set()
        assert client.recv(10, 5.0) == b"late"
        assert client.recv(10, 5.0) == b""
    assert peer.result(10.0) == b"late"
