"""TLSStreamTransport's handshake: failures are bounded, reported, and leak nothing.

Every failure must close the wrapped transport before the constructor
raises (and so leave no descriptor open), and none may turn into a wait
longer than ``handshake_timeout``.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pytest

from transports.abc import StreamTransport
from transports.composite import TLSStreamTransport

if TYPE_CHECKING:
    import trustme

InnerFactory = Callable[..., tuple[StreamTransport, socket.socket]]
RunInThread = Callable[[Callable[[], Any]], Future[Any]]
ContextFactory = Callable[[ssl.Purpose, ssl.TLSVersion], ssl.SSLContext]

SERVER_NAME = "server.test"  # conftest.TLS_SERVER_NAME
# How late a timeout may fire on a loaded 2-core machine.
MARGIN = 0.3


def ssl_socket_server(server_context: ssl.SSLContext, sock: socket.socket) -> None:
    """Handshake as an SSLSocket server and echo one message; errors propagate."""
    with server_context.wrap_socket(sock, server_side=True) as tls_sock:
        tls_sock.sendall(tls_sock.recv(1024))


@pytest.mark.parametrize("hostname", [SERVER_NAME, "other.test"], ids=["right-name", "wrong-name"])
def test_certificate_name_is_checked(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    hostname: str,
) -> None:
    inner, peer_sock = make_inner()
    peer = run_in_thread(lambda: ssl_socket_server(server_context, peer_sock))
    if hostname == SERVER_NAME:
        with TLSStreamTransport(inner, client_context, server_hostname=hostname, shutdown_timeout=5.0) as client:
            client.send_all(b"hi", 5.0)
            assert client.recv(10, 5.0) == b"hi"
        peer.result(10.0)
        return
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch") as caught:
        TLSStreamTransport(inner, client_context, server_hostname=hostname)
    assert caught.value.verify_message.startswith("Hostname mismatch")
    assert inner.is_closed()
    # Our alert reached the server: it fails with it rather than with an EOF.
    with pytest.raises(ssl.SSLError, match=r"(?i)alert"):
        peer.result(10.0)


def test_untrusted_certificate_authority_fails_and_leaks_no_descriptor(
    make_socketpair: Callable[[int], tuple[socket.socket, socket.socket]],
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    tls_context_factory: ContextFactory,
    tls_version: ssl.TLSVersion,
    socket_stream: Callable[..., StreamTransport],
    fd_counter: Callable[[], int],
) -> None:
    stranger = tls_context_factory(ssl.Purpose.SERVER_AUTH, tls_version)  # trusts the system CAs only
    before = fd_counter()
    ours, theirs = make_socketpair(socket.SOCK_STREAM)
    inner = socket_stream(ours)
    peer = run_in_thread(lambda: ssl_socket_server(server_context, theirs))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        TLSStreamTransport(inner, stranger, server_hostname=SERVER_NAME)
    assert inner.is_closed()
    with pytest.raises(ssl.SSLError):
        peer.result(10.0)
    theirs.close()  # the SSLSocket detached it: already closed
    assert fd_counter() == before


def test_wrong_hostname_leaks_no_descriptor(
    make_socketpair: Callable[[int], tuple[socket.socket, socket.socket]],
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    socket_stream: Callable[..., StreamTransport],
    fd_counter: Callable[[], int],
) -> None:
    before = fd_counter()
    ours, theirs = make_socketpair(socket.SOCK_STREAM)
    peer = run_in_thread(lambda: TLSStreamTransport(socket_stream(theirs), server_context, handshake_timeout=5.0))
    with pytest.raises(ssl.SSLCertVerificationError):
        TLSStreamTransport(socket_stream(ours), client_context, server_hostname="wrong.test")
    with pytest.raises(ssl.SSLError):
        peer.result(10.0)  # our TLSStreamTransport server closed its socket too
    assert ours.fileno() == -1
    assert theirs.fileno() == -1
    assert fd_counter() == before


@pytest.mark.parametrize("side", ["client", "server"])
def test_a_silent_peer_makes_the_handshake_time_out(
    make_inner: InnerFactory,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    side: str,
) -> None:
    inner, _silent_peer = make_inner()
    options: dict[str, Any] = {"server_hostname": SERVER_NAME} if side == "client" else {}
    context = client_context if side == "client" else server_context
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="handshake"):
        TLSStreamTransport(inner, context, handshake_timeout=0.3, **options)
    assert 0.3 <= time.monotonic() - started < 0.3 + MARGIN
    assert inner.is_closed()


def test_a_dribbling_peer_cannot_stretch_the_handshake_budget(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    socket_stream: Callable[..., StreamTransport],
) -> None:
    # The server sends its flight 8 bytes every 10 ms: the client reads its
    # transport dozens of times, all within ONE budget of 0.5 s.
    inner, peer_sock = make_inner()

    def dribbling_server() -> None:
        transport = socket_stream(peer_sock, send_limit=8, send_delay=0.01)
        try:
            TLSStreamTransport(transport, server_context, handshake_timeout=10.0)
        except OSError:  # the client gave up and closed: expected
            pass
        else:
            raise AssertionError("the handshake should not have finished")

    peer = run_in_thread(dribbling_server)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, handshake_timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 0.5 + MARGIN
    assert inner.is_closed()
    peer.result(15.0)


@pytest.mark.parametrize(
    "garbage",
    [b"GET / HTTP/1.1\r\nHost: server.test\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b"\x00" * 64],
    ids=["http", "bad-handshake-record", "zeros"],
)
def test_garbage_instead_of_a_client_hello_fails_without_waiting(
    make_inner: InnerFactory, server_context: ssl.SSLContext, garbage: bytes
) -> None:
    inner, peer_sock = make_inner()
    peer_sock.sendall(garbage)  # and the peer stays connected, silent
    started = time.monotonic()
    with pytest.raises(ssl.SSLError):
        TLSStreamTransport(inner, server_context, handshake_timeout=5.0)
    assert time.monotonic() - started < 1.0
    assert inner.is_closed()


def test_garbage_instead_of_a_server_hello_fails_without_waiting(
    make_inner: InnerFactory, client_context: ssl.SSLContext
) -> None:
    inner, peer_sock = make_inner()
    peer_sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n" * 4)
    started = time.monotonic()
    with pytest.raises(ssl.SSLError):
        TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, handshake_timeout=5.0)
    assert time.monotonic() - started < 1.0
    assert inner.is_closed()


@pytest.mark.parametrize("ignore_unexpected_eof", [False, True], ids=["eof-is-error", "OP_IGNORE_UNEXPECTED_EOF"])
@pytest.mark.parametrize("side", ["client", "server"])
def test_eof_during_the_handshake_is_an_ssl_eof_error(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    side: str,
    ignore_unexpected_eof: bool,
) -> None:
    # Whatever OpenSSL makes of an EOF (OP_IGNORE_UNEXPECTED_EOF turns it
    # into a "clean" close), during a handshake it is an ssl.SSLEOFError.
    context = client_context if side == "client" else server_context
    if ignore_unexpected_eof:
        context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    inner, peer_sock = make_inner()

    def peer() -> None:
        if side == "client":
            assert peer_sock.recv(4096)  # the ClientHello, then EOF
        else:
            peer_sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello record, then EOF
        peer_sock.shutdown(socket.SHUT_WR)

    peer_done = run_in_thread(peer)
    options: dict[str, Any] = {"server_hostname": SERVER_NAME} if side == "client" else {}
    with pytest.raises(ssl.SSLEOFError):
        TLSStreamTransport(inner, context, handshake_timeout=5.0, **options)
    peer_done.result(5.0)
    assert inner.is_closed()


def test_a_peer_gone_before_the_handshake_gives_a_connection_error(
    make_inner: InnerFactory, client_context: ssl.SSLContext
) -> None:
    inner, peer_sock = make_inner()
    peer_sock.close()
    with pytest.raises((ssl.SSLEOFError, ConnectionError)):  # the ClientHello cannot even be sent
        TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, handshake_timeout=5.0)
    assert inner.is_closed()


def test_a_peer_resetting_the_connection_gives_an_os_error(
    make_inner: InnerFactory, run_in_thread: RunInThread, client_context: ssl.SSLContext
) -> None:
    inner, peer_sock = make_inner()

    def reset_after_client_hello() -> None:
        assert peer_sock.recv(4096)  # the ClientHello
        peer_sock.close()

    peer = run_in_thread(reset_after_client_hello)
    with pytest.raises(OSError) as caught:  # SSLEOFError or ConnectionResetError: both OSError
        TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, handshake_timeout=5.0)
    assert isinstance(caught.value, ssl.SSLEOFError | ConnectionError)
    peer.result(5.0)
    assert inner.is_closed()


def test_server_side_defaults_from_server_hostname(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    socket_stream: Callable[..., StreamTransport],
) -> None:
    inner, peer_sock = make_inner()
    # No server_hostname: a server. With one: a client.
    server_future: Future[TLSStreamTransport[StreamTransport]] = run_in_thread(
        lambda: TLSStreamTransport(socket_stream(peer_sock), server_context, handshake_timeout=5.0)
    )
    client = TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, handshake_timeout=5.0)
    server = server_future.result(10.0)
    closing = run_in_thread(server.close)
    client.close()
    closing.result(10.0)


def test_explicit_client_without_hostname_check(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    tls_ca: trustme.CA,
    tls_context_factory: ContextFactory,
    tls_version: ssl.TLSVersion,
) -> None:
    context = tls_context_factory(ssl.Purpose.SERVER_AUTH, tls_version)
    context.check_hostname = False
    tls_ca.configure_trust(context)
    inner, peer_sock = make_inner()
    peer = run_in_thread(lambda: ssl_socket_server(server_context, peer_sock))
    with TLSStreamTransport(inner, context, server_side=False, shutdown_timeout=5.0) as client:
        client.send_all(b"no SNI", 5.0)
        assert client.recv(10, 5.0) == b"no SNI"
    peer.result(10.0)
