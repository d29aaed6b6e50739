"""SSLStreamTransport's socket attributes, public surface, leaks and repr.

The TLS attributes, the same for both TLS transports, are checked in
tests/integration/test_tls_contract.py.
"""

from __future__ import annotations

import gc
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

import transports.abc
import transports.socket
from transports.abc import StreamTransport, TLSAttribute, TypedAttributeLookupError
from transports.selector import SelectorStreamTransport
from transports.socket import INETSocketAttribute, SocketAttribute, SocketProxy, SSLStreamTransport

SERVER_NAME = "server.test"

TLSPair = Callable[..., tuple[SSLStreamTransport, SSLStreamTransport]]
TLS_KEYS = [
    TLSAttribute.sslcontext,
    TLSAttribute.peercert,
    TLSAttribute.cipher,
    TLSAttribute.compression,
    TLSAttribute.tls_version,
    TLSAttribute.standard_compatible,
]
SOCKET_KEYS = [SocketAttribute.socket, SocketAttribute.family, SocketAttribute.sockname, SocketAttribute.peername]


def test_public_surface() -> None:
    assert "SSLStreamTransport" in transports.socket.__all__
    assert "TLSAttribute" in transports.socket.__all__
    assert transports.socket.TLSAttribute is transports.abc.TLSAttribute  # re-exported, not redefined
    assert getattr(SSLStreamTransport, "__final__", False) is True
    assert issubclass(SSLStreamTransport, SelectorStreamTransport)
    assert issubclass(SSLStreamTransport, StreamTransport)
    assert SSLStreamTransport.__doc__
    assert "Raises:" in (SSLStreamTransport.__init__.__doc__ or SSLStreamTransport.__doc__)


def test_instances_have_slots_only(tls_pair: TLSPair) -> None:
    client, _ = tls_pair()
    assert not hasattr(client, "__dict__")


def test_socket_attributes_while_open(tls_pair: TLSPair) -> None:
    # The TLS attributes are the contract of both TLS transports
    # (tests/integration/test_tls_contract.py); these come from the socket
    # OpenSSL drives.
    client, server = tls_pair()
    proxy = client.extra(SocketAttribute.socket)
    assert isinstance(proxy, SocketProxy)
    assert proxy.fileno() >= 0
    assert proxy.type == socket.SOCK_STREAM
    assert proxy.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
    assert not hasattr(proxy, "recv")
    assert client.extra(SocketAttribute.family) == socket.AF_INET
    assert client.extra(INETSocketAttribute.sockname) == server.extra(INETSocketAttribute.peername)
    assert client.extra(INETSocketAttribute.peername) == server.extra(INETSocketAttribute.sockname)
    assert set(TLS_KEYS + SOCKET_KEYS) <= set(client.extra_attributes)


def test_socket_attributes_after_close(tls_pair: TLSPair) -> None:
    client, _ = tls_pair(client_options={"standard_compatible": False})
    proxy = client.extra(SocketAttribute.socket)
    client.close()
    for key in SOCKET_KEYS:
        with pytest.raises(TypedAttributeLookupError):
            client.extra(key)
        assert client.extra(key, "default") == "default"
    assert proxy.fileno() == -1


def connect_unregistered(
    tcp_pair: Callable[[], tuple[socket.socket, socket.socket]],
    run_peer: Callable[[Callable[[], Any]], Future[Any]],
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> tuple[SSLStreamTransport, SSLStreamTransport]:
    """A pair that no fixture holds on to: dropping the client collects it."""
    ours, theirs = tcp_pair()
    server = run_peer(lambda: SSLStreamTransport(theirs, server_context, 1.0, standard_compatible=False))
    client = SSLStreamTransport(ours, client_context, 1.0, server_hostname=SERVER_NAME, standard_compatible=False)
    return client, server.result(10.0)


def test_resource_warning_when_collected_open(
    tcp_pair: Callable[[], tuple[socket.socket, socket.socket]],
    run_peer: Callable[[Callable[[], Any]], Future[Any]],
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    fd_count: Callable[[], int],
) -> None:
    client, server = connect_unregistered(tcp_pair, run_peer, server_context, client_context)
    try:
        before = fd_count()
        with pytest.warns(ResourceWarning, match="unclosed transport <SSLStreamTransport"):
            del client
            gc.collect()
        assert fd_count() == before - 1  # the finalizer closed the socket
        # The peer sees the end: no close_notify (standard_compatible=False
        # reads that as b""), or a reset when the finalizer closed a socket
        # with unread data (TLS 1.3 session tickets).
        try:
            assert server.recv(10, 5.0) == b""
        except ConnectionResetError:
            pass
    finally:
        server.close()


def test_extra_attributes_do_not_keep_the_transport_alive(
    tcp_pair: Callable[[], tuple[socket.socket, socket.socket]],
    run_peer: Callable[[Callable[[], Any]], Future[Any]],
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    # The getters close over the socket, not the transport: a leaked
    # transport is finalized at once, without waiting for a cyclic GC.
    client, server = connect_unregistered(tcp_pair, run_peer, server_context, client_context)
    try:
        getters: Any = client.extra_attributes
        gc.disable()
        try:
            with pytest.warns(ResourceWarning):
                del client
        finally:
            gc.enable()
        with pytest.raises(TypedAttributeLookupError):
            getters[TLSAttribute.tls_version]()
    finally:
        server.close()


def test_repr(tls_pair: TLSPair) -> None:
    client, _ = tls_pair(client_options={"standard_compatible": False})
    assert repr(client).startswith("<SSLStreamTransport fd=")
    client.close()
    assert repr(client) == "<SSLStreamTransport closed>"
