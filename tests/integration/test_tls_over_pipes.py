"""TLS over a stapled pair of pipes: TLSStreamTransport on top of the pipe transports.

The motivating case of TLS over any stream transport: the wrapped
transport is ``StapledStreamTransport(PipeWriteTransport, PipeReadTransport)``,
the peer either a thread with its own stapled pair or a child process
speaking TLS over its stdin and stdout.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import trustme

from transports.abc import StreamTransport, TLSAttribute
from transports.composite import StapledStreamTransport, TLSStreamTransport
from transports.selector import PipeAttribute, PipeReadTransport, PipeWriteTransport

Pipes = StapledStreamTransport[PipeWriteTransport, PipeReadTransport]
SERVER_NAME = "server.test"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"])
def contexts(ca: trustme.CA, request: pytest.FixtureRequest) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts pinned to one version, ragged EOFs seen."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    for context in (server, client):
        context.minimum_version = context.maximum_version = request.param
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    ca.issue_cert(SERVER_NAME).configure_cert(server)
    ca.configure_trust(client)
    return server, client


@pytest.fixture
def run_in_thread() -> Iterator[Callable[[Callable[[], Any]], Future[Any]]]:
    executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="tls-pipes")
    try:
        yield executor.submit
    finally:
        executor.shutdown(wait=True)


def stapled_pipes(write_fd: int, read_fd: int) -> Pipes:
    return StapledStreamTransport(PipeWriteTransport(write_fd, 1.0), PipeReadTransport(read_fd, 1.0))


def pipe_pair() -> tuple[Pipes, Pipes]:
    """Two stapled pipe transports, each one's send part feeding the other's receive part."""
    a_to_b_read, a_to_b_write = os.pipe()
    b_to_a_read, b_to_a_write = os.pipe()
    return stapled_pipes(a_to_b_write, b_to_a_read), stapled_pipes(b_to_a_write, a_to_b_read)


def sha256_until(transport: StreamTransport, size: int) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(128 * 1024)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = transport.recv_into(view[: min(len(buffer), size - received)], 10.0)
        assert count, f"EOF after {received} of {size} bytes"
        digest.update(view[:count])
        received += count
    return digest.hexdigest()


def echo_until_eof(transport: StreamTransport) -> int:
    total = 0
    buffer = bytearray(64 * 1024)
    while count := transport.recv_into(buffer, 10.0):
        transport.send_all(memoryview(buffer)[:count], 10.0)
        total += count
    return total


def test_tls_echo_over_pipes_to_a_thread(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], run_in_thread: Callable[[Callable[[], Any]], Future[Any]]
) -> None:
    server_context, client_context = contexts
    client_pipes, server_pipes = pipe_pair()

    def server() -> int:
        with TLSStreamTransport(server_pipes, server_context, handshake_timeout=10.0, shutdown_timeout=5.0) as tls:
            return echo_until_eof(tls)

    echo = run_in_thread(server)
    payload = os.urandom(4 * MiB)
    with TLSStreamTransport(client_pipes, client_context, server_hostname=SERVER_NAME, shutdown_timeout=5.0) as tls:
        assert tls.wrapped_transport is client_pipes
        # Attributes of every layer: TLS, then the pipe of the receive part.
        assert tls.extra(TLSAttribute.tls_version) in {"TLSv1.2", "TLSv1.3"}
        assert tls.extra(PipeAttribute.fileno) == client_pipes.receive_transport.fileno()
        reader = run_in_thread(lambda: sha256_until(tls, len(payload)))
        tls.send_all(payload, 20.0)
        assert reader.result(20.0) == hashlib.sha256(payload).hexdigest()
    assert client_pipes.is_closed()
    assert echo.result(10.0) == len(payload)  # our close_notify ended its loop
    assert server_pipes.is_closed()


CHILD = textwrap.dedent(
    """
    import os, ssl, sys
    from transports.composite import StapledStreamTransport, TLSStreamTransport
    from transports.selector import PipeReadTransport, PipeWriteTransport

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = context.maximum_version = ssl.TLSVersion[sys.argv[2]]
    context.load_cert_chain(sys.argv[1])
    # Own duplicates of stdout and stdin: sys.stdout/sys.stdin keep theirs.
    pipes = StapledStreamTransport(PipeWriteTransport(os.dup(1), 1.0), PipeReadTransport(os.dup(0), 1.0))
    with TLSStreamTransport(pipes, context, handshake_timeout=10.0, shutdown_timeout=5.0) as tls:
        buffer = bytearray(65536)
        while count := tls.recv_into(buffer, 10.0):
            tls.send_all(memoryview(buffer)[:count], 10.0)
    """
)


@pytest.mark.timeout(60)
def test_tls_echo_with_a_child_process_over_its_stdin_and_stdout(
    ca: trustme.CA,
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    run_in_thread: Callable[[Callable[[], Any]], Future[Any]],
    tmp_path: Path,
) -> None:
    _, client_context = contexts
    version = client_context.maximum_version.name
    cert_file = tmp_path / "server.pem"
    ca.issue_cert(SERVER_NAME).private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    stderr_file = tmp_path / "child-stderr.txt"

    to_child_read, to_child_write = os.pipe()
    from_child_read, from_child_write = os.pipe()
    with stderr_file.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(cert_file), version],
            stdin=to_child_read,
            stdout=from_child_write,
            stderr=stderr,
        )
    os.close(to_child_read)
    os.close(from_child_write)
    pipes = stapled_pipes(to_child_write, from_child_read)
    payload = os.urandom(3 * MiB)
    try:
        with TLSStreamTransport(
            pipes, client_context, server_hostname=SERVER_NAME, handshake_timeout=20.0, shutdown_timeout=5.0
        ) as tls:
            reader = run_in_thread(lambda: sha256_until(tls, len(payload)))
            tls.send_all_from_iterable([payload[: MiB // 3], payload[MiB // 3 :]], 20.0)
            assert reader.result(20.0) == hashlib.sha256(payload).hexdigest()
        assert child.wait(10.0) == 0, stderr_file.read_text()
    finally:
        pipes.close()
        if child.poll() is None:
            child.kill()
            child.wait(10.0)
