"""Bulk transfers through TLSStreamTransport, verified with checksums.

The 256 MiB transfer the issue asks for takes about a second per TLS
version here (both ends in one process, on two cores); the per-test
timeout still bounds it tightly, far below the global 60 s.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from transports.abc import StreamTransport
from transports.composite import TLSStreamTransport

TLS = TLSStreamTransport[StreamTransport]
TLSPairFactory = Callable[..., tuple[TLS, TLS]]
InnerFactory = Callable[..., tuple[StreamTransport, socket.socket]]
RunInThread = Callable[[Callable[[], Any]], Future[Any]]

SERVER_NAME = "server.test"  # conftest.TLS_SERVER_NAME
MiB = 1024 * 1024


def pattern_block(seed: int) -> bytes:
    """1 MiB that differs with ``seed``: a misordered or repeated block changes the digest."""
    return hashlib.sha256(seed.to_bytes(8, "big")).digest() * (MiB // 32)


def sha256_of_stream(transport: StreamTransport, size: int) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(256 * 1024)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = transport.recv_into(view[: min(len(buffer), size - received)], 10.0)
        assert count, f"EOF after {received} of {size} bytes"
        digest.update(view[:count])
        received += count
    return digest.hexdigest()


@pytest.mark.timeout(30)
def test_256_mib_with_checksum(make_tls_pair: TLSPairFactory, run_in_thread: RunInThread) -> None:
    client, server = make_tls_pair()
    size = 256 * MiB
    receiver = run_in_thread(lambda: sha256_of_stream(server, size))
    expected = hashlib.sha256()
    started = time.monotonic()
    for seed in range(size // MiB):
        block = pattern_block(seed)
        client.send_all(block, 10.0)
        expected.update(block)
    assert receiver.result(30.0) == expected.hexdigest()
    elapsed = time.monotonic() - started
    print(f"256 MiB through TLSStreamTransport in {elapsed:.2f} s ({size / MiB / elapsed:.0f} MiB/s)")


@pytest.mark.timeout(30)
def test_32_mib_to_an_ssl_socket_with_checksum(
    make_inner: InnerFactory,
    run_in_thread: RunInThread,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
) -> None:
    inner, peer_sock = make_inner()
    size = 32 * MiB

    def ssl_socket_server() -> str:
        peer_sock.settimeout(10.0)
        with server_context.wrap_socket(peer_sock, server_side=True) as tls_sock:
            digest = hashlib.sha256()
            received = 0
            while received < size:
                data = tls_sock.recv(256 * 1024)
                assert data
                digest.update(data)
                received += len(data)
            tls_sock.sendall(digest.digest())
            return digest.hexdigest()

    peer = run_in_thread(ssl_socket_server)
    expected = hashlib.sha256()
    with TLSStreamTransport(inner, client_context, server_hostname=SERVER_NAME, shutdown_timeout=5.0) as client:
        for seed in range(size // MiB):
            block = pattern_block(seed)
            client.send_all_from_iterable([block[:1000], block[1000:]], 10.0)
            expected.update(block)
        digest = bytearray()
        while len(digest) < 32:
            chunk = client.recv(32 - len(digest), 10.0)
            assert chunk
            digest += chunk
    assert bytes(digest) == expected.digest()
    assert peer.result(10.0) == expected.hexdigest()


def test_random_data_both_ways_at_once(make_tls_pair: TLSPairFactory, run_in_thread: RunInThread) -> None:
    # Each end sends 16 MiB while receiving the other's 16 MiB.
    client, server = make_tls_pair()
    to_server, to_client = os.urandom(16 * MiB), os.urandom(16 * MiB)
    server_received = run_in_thread(lambda: sha256_of_stream(server, len(to_server)))
    server_sent = run_in_thread(lambda: server.send_all(to_client, 20.0))
    client_received = run_in_thread(lambda: sha256_of_stream(client, len(to_client)))
    client.send_all(to_server, 20.0)
    server_sent.result(20.0)
    assert server_received.result(20.0) == hashlib.sha256(to_server).hexdigest()
    assert client_received.result(20.0) == hashlib.sha256(to_client).hexdigest()
