"""Listeners: create_tcp_listener, create_unix_listener, SocketListener, TLSListener and serve().

Real sockets only, on the loopback interface and in short temporary
directories; peers are threads with blocking sockets bounded by
PEER_TIMEOUT. Every failure case counts the process's descriptors before
and after (``open_fd_count``), and every test is bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import math
import os
import random
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import trustme

from transports.abc import StreamTransport, TLSAttribute, TypedAttributeLookupError
from transports.socket import (
    INETSocketAttribute,
    SocketAttribute,
    SocketListener,
    SocketStreamTransport,
    SSLStreamTransport,
    TLSListener,
    UNIXSocketAttribute,
    connect_tls,
    create_tcp_listener,
    create_unix_listener,
    serve,
)
from transports.socket import _listeners as listeners_module

pytestmark = pytest.mark.timeout(60)

PEER_TIMEOUT = 10.0
# How long a close() from another thread may take to end a blocked call.
PROMPT = 0.5

Cleanup = Callable[[Any], Any]
Spawn = Callable[..., "Future[Any]"]


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(not IPV6, reason="no IPv6 loopback (::1) on this machine")


def port_of(listener: SocketListener | TLSListener) -> int:
    return listener.extra(INETSocketAttribute.sockname)[1]


def connect(listener: SocketListener | TLSListener, host: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection((host, port_of(listener)), timeout=PEER_TIMEOUT)


def connect_unix_peer(path: str | bytes) -> socket.socket:
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        peer.settimeout(PEER_TIMEOUT)
        peer.connect(path)
    except BaseException:
        peer.close()
        raise
    return peer


def round_trip(transport: StreamTransport, peer: socket.socket) -> None:
    peer.sendall(b"ping")
    assert transport.recv(4, 5.0) == b"ping"
    transport.send_all(b"pong", 5.0)
    assert peer.recv(4) == b"pong"


def abstract_name() -> str:
    return f"\0transports-listener-test-{os.getpid()}-{time.monotonic_ns()}-{random.getrandbits(32)}"


@contextlib.contextmanager
def same_descriptor_count(count: Callable[[], int]) -> Iterator[None]:
    before = count()
    yield
    assert count() == before, "a descriptor was left open (or closed twice)"


# ------------------------------------------------------------------- TCP --


@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
def test_tcp_accept_round_trip(host: str) -> None:
    with create_tcp_listener(host) as listener:
        assert listener.extra(SocketAttribute.family) == (socket.AF_INET6 if ":" in host else socket.AF_INET)
        with connect(listener, host) as peer, listener.accept(5.0) as transport:
            assert isinstance(transport, SocketStreamTransport)
            round_trip(transport, peer)
            assert transport.extra(SocketAttribute.peername)[:2] == peer.getsockname()[:2]
            proxy = transport.extra(SocketAttribute.socket)
            assert proxy.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_nodelay_can_be_left_off() -> None:
    with create_tcp_listener("127.0.0.1", nodelay=False) as listener, connect(listener), listener.accept(5.0) as t:
        assert t.extra(SocketAttribute.socket).getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0


def test_listener_attributes() -> None:
    listener = create_tcp_listener("127.0.0.1")
    with listener:
        sockname = listener.extra(INETSocketAttribute.sockname)
        assert sockname[0] == "127.0.0.1"
        assert sockname[1] > 0
        proxy = listener.extra(SocketAttribute.socket)
        assert proxy.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert proxy.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        with pytest.raises(TypedAttributeLookupError):
            listener.extra(SocketAttribute.peername)
        assert listener.extra(SocketAttribute.peername, None) is None
        assert "SocketListener" in repr(listener)
    for attribute in (SocketAttribute.socket, SocketAttribute.family, SocketAttribute.sockname):
        with pytest.raises(TypedAttributeLookupError):
            listener.extra(attribute)


@pytest.mark.parametrize("timeout", [0.0, 0.3])
def test_accept_times_out_within_its_budget(timeout: float) -> None:
    with create_tcp_listener("127.0.0.1") as listener:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            listener.accept(timeout)
        assert timeout <= time.monotonic() - started < timeout + 1.0
        assert caught.value.errno == errno.ETIMEDOUT
        # Still usable afterwards.
        with connect(listener), listener.accept(5.0):
            pass


@pytest.mark.parametrize(("timeout", "error"), [(-1.0, ValueError), (math.nan, ValueError), (None, TypeError)])
def test_accept_refuses_a_bad_timeout(timeout: Any, error: type[Exception]) -> None:
    with create_tcp_listener("127.0.0.1") as listener, pytest.raises(error):
        listener.accept(timeout)


def test_accept_takes_a_waiting_connection_with_timeout_zero() -> None:
    with create_tcp_listener("127.0.0.1") as listener, connect(listener):
        deadline = time.monotonic() + PEER_TIMEOUT
        while True:  # the handshake completes in the kernel, asynchronously
            try:
                transport = listener.accept(0)
                break
            except TimeoutError:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        transport.close()


def test_close_is_idempotent_and_accept_then_fails_at_once(open_fd_count: Callable[[], int]) -> None:
    with same_descriptor_count(open_fd_count):
        listener = create_tcp_listener("127.0.0.1")
        assert not listener.is_closed()
        with listener:
            pass
        assert listener.is_closed()
        listener.close()
        for timeout in (0.0, 5.0, math.inf):
            started = time.monotonic()
            with pytest.raises(OSError) as caught:
                listener.accept(timeout)
            assert caught.value.errno == errno.EBADF
            assert time.monotonic() - started < PROMPT


def test_timeout_error_is_the_standard_one() -> None:
    with create_tcp_listener("127.0.0.1") as listener, pytest.raises(TimeoutError, match="timed out"):
        listener.accept(0.01)


@pytest.mark.parametrize("kind", ["tcp", "unix"])
@pytest.mark.parametrize("timeout", [30.0, math.inf], ids=["finite", "infinite"])
def test_close_from_another_thread_ends_a_blocked_accept_promptly(
    kind: str, timeout: float, short_tmp_dir: str, spawn: Spawn, open_fd_count: Callable[[], int]
) -> None:
    # retry_interval=inf: the close itself must wake the wait, not a periodic retry.
    with same_descriptor_count(open_fd_count):
        for round_number in range(30):
            if kind == "tcp":
                listener = create_tcp_listener("127.0.0.1", retry_interval=math.inf)
            else:
                path = os.path.join(short_tmp_dir, f"{round_number}.sock")
                listener = create_unix_listener(path, retry_interval=math.inf)
            try:
                future = spawn(listener.accept, timeout)
                # Close at different moments: before the wait, while it starts, during it.
                time.sleep(random.choice([0.0, 0.0005, 0.002, 0.02]))
                closed_at = time.monotonic()
                listener.close()
                with pytest.raises(OSError) as caught:
                    future.result(PEER_TIMEOUT)
                assert caught.value.errno == errno.EBADF
                assert time.monotonic() - closed_at < PROMPT
            finally:
                listener.close()


def test_close_wakes_every_thread_waiting(spawn: Spawn) -> None:
    listener = create_tcp_listener("127.0.0.1", retry_interval=math.inf)
    try:
        futures = [spawn(listener.accept, math.inf) for _ in range(3)]
        time.sleep(0.05)
        closed_at = time.monotonic()
        listener.close()
        for future in futures:
            with pytest.raises(OSError) as caught:
                future.result(PEER_TIMEOUT)
            assert caught.value.errno == errno.EBADF
        assert time.monotonic() - closed_at < PROMPT
    finally:
        listener.close()


def test_close_does_not_shut_down_a_shared_socket() -> None:
    # A listening socket shared with another process (here: a duplicate
    # descriptor) keeps listening when the listener closes.
    listener = create_tcp_listener("127.0.0.1")
    port = port_of(listener)
    duplicate = socket.socket(fileno=os.dup(listener.extra(SocketAttribute.socket).fileno()))
    with duplicate:
        listener.close()
        duplicate.settimeout(PEER_TIMEOUT)
        with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as peer:
            accepted, _ = duplicate.accept()
            with accepted:
                peer.sendall(b"x")
                assert accepted.recv(1) == b"x"


def test_all_interfaces_by_default() -> None:
    with create_tcp_listener() as listener:
        host = listener.extra(SocketAttribute.sockname)[0]
        assert host in ("::", "0.0.0.0")
        with connect(listener, "127.0.0.1") as peer, listener.accept(5.0) as transport:
            round_trip(transport, peer)
        if host == "::" and IPV6:
            with connect(listener, "::1") as peer, listener.accept(5.0) as transport:
                round_trip(transport, peer)


@needs_ipv6
@pytest.mark.skipif(not socket.has_dualstack_ipv6(), reason="no dual-stack IPv6 sockets here")
@pytest.mark.parametrize("host", [None, "::"])
def test_dual_stack_takes_ipv4_on_the_ipv6_socket(host: str | None) -> None:
    with create_tcp_listener(host, family=socket.AF_UNSPEC if host is None else socket.AF_INET6) as listener:
        assert listener.extra(SocketAttribute.family) == socket.AF_INET6
        proxy = listener.extra(SocketAttribute.socket)
        assert proxy.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        with connect(listener, "127.0.0.1") as peer, listener.accept(5.0) as transport:
            assert transport.extra(SocketAttribute.peername)[0] == "::ffff:127.0.0.1"
            round_trip(transport, peer)


@needs_ipv6
def test_dual_stack_off() -> None:
    with create_tcp_listener("::1", dual_stack=False) as listener:
        proxy = listener.extra(SocketAttribute.socket)
        assert proxy.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    with create_tcp_listener(None, dual_stack=False) as listener:
        assert listener.extra(SocketAttribute.family) == socket.AF_INET
        assert listener.extra(SocketAttribute.sockname)[0] == "0.0.0.0"


def test_family_keeps_to_one_family() -> None:
    with create_tcp_listener(None, family=socket.AF_INET) as listener:
        assert listener.extra(SocketAttribute.sockname)[0] == "0.0.0.0"
    with pytest.raises(socket.gaierror):
        create_tcp_listener("127.0.0.1", family=socket.AF_INET6)


def test_a_name_is_resolved() -> None:
    # "localhost" resolves through the hosts file, without the network.
    with create_tcp_listener("localhost", family=socket.AF_INET) as listener:
        assert listener.extra(SocketAttribute.sockname)[0] == "127.0.0.1"


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_reuse_port_lets_two_listeners_share_a_port(spawn: Spawn) -> None:
    with create_tcp_listener("127.0.0.1", reuse_port=True) as first:
        port = port_of(first)
        with create_tcp_listener("127.0.0.1", port, reuse_port=True) as second:
            assert port_of(second) == port
            assert first.extra(SocketAttribute.socket).getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
            # The system picks one of them for each connection: one of them accepts it.
            with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT):
                deadline = time.monotonic() + PEER_TIMEOUT
                accepted: SocketStreamTransport | None = None
                while accepted is None:
                    assert time.monotonic() < deadline
                    for listener in (first, second):
                        with contextlib.suppress(TimeoutError):
                            accepted = listener.accept(0.05)
                            break
                accepted.close()


def test_reuse_port_where_the_system_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT", raising=False)
    with pytest.raises(ValueError, match="SO_REUSEPORT"):
        create_tcp_listener("127.0.0.1", reuse_port=True)


def test_address_in_use(open_fd_count: Callable[[], int]) -> None:
    with create_tcp_listener("127.0.0.1") as listener:
        port = port_of(listener)
        with same_descriptor_count(open_fd_count), pytest.raises(OSError) as caught:
            create_tcp_listener("127.0.0.1", port)
        assert caught.value.errno == errno.EADDRINUSE
        assert str(port) in str(caught.value)


@pytest.mark.parametrize(
    ("arguments", "options", "error"),
    [
        ((b"127.0.0.1",), {}, TypeError),
        ((80,), {}, TypeError),
        (("127.0.0.1", "80"), {}, TypeError),
        (("127.0.0.1", True), {}, TypeError),
        (("127.0.0.1", 1.5), {}, TypeError),
        (("127.0.0.1", 70000), {}, ValueError),
        (("127.0.0.1", -1), {}, ValueError),
        (("127.0.0.1",), {"family": socket.AF_UNIX}, ValueError),
        (("127.0.0.1",), {"backlog": -1}, ValueError),
        (("127.0.0.1",), {"backlog": "5"}, TypeError),
        (("127.0.0.1",), {"backlog": 1.0}, TypeError),
        (("127.0.0.1",), {"retry_interval": 0.0}, ValueError),
        (("127.0.0.1",), {"retry_interval": math.nan}, ValueError),
        (("127.0.0.1",), {"retry_interval": -1.0}, ValueError),
    ],
)
def test_bad_tcp_arguments_before_any_socket(
    arguments: tuple[Any, ...],
    options: dict[str, Any],
    error: type[Exception],
    monkeypatch: pytest.MonkeyPatch,
    open_fd_count: Callable[[], int],
) -> None:
    def no_socket(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a socket was made")

    with same_descriptor_count(open_fd_count):
        monkeypatch.setattr(socket, "socket", no_socket)
        with pytest.raises(error):
            create_tcp_listener(*arguments, **options)


def test_failure_after_the_socket_was_made_closes_it(
    monkeypatch: pytest.MonkeyPatch, open_fd_count: Callable[[], int]
) -> None:
    # listen() fails: the bound socket is closed.
    def refuse(self: socket.socket, backlog: int) -> None:
        raise OSError(errno.ENOBUFS, "no buffer space")

    with same_descriptor_count(open_fd_count):
        monkeypatch.setattr(socket.socket, "listen", refuse)
        with pytest.raises(OSError) as caught:
            create_tcp_listener("127.0.0.1")
        assert caught.value.errno == errno.ENOBUFS


# ------------------------------------------------- SocketListener(sock) --


def test_listener_from_your_own_socket() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    with SocketListener(sock, 1.0) as listener:
        assert sock.gettimeout() == 0.0  # now non-blocking
        with connect(listener) as peer, listener.accept(5.0) as transport:
            round_trip(transport, peer)
    assert sock.fileno() == -1


@pytest.mark.parametrize("kind", ["not listening", "datagram", "not a socket", "closed", "bad retry_interval"])
def test_listener_refuses_what_it_cannot_use(kind: str, open_fd_count: Callable[[], int]) -> None:
    with same_descriptor_count(open_fd_count):
        sock: Any
        retry_interval = 1.0
        error: type[Exception] = ValueError
        if kind == "not listening":
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
        elif kind == "datagram":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        elif kind == "not a socket":
            sock, error = object(), TypeError
        elif kind == "closed":
            sock, error = socket.socket(), OSError
            sock.close()
        else:
            sock, retry_interval = socket.create_server(("127.0.0.1", 0)), 0.0
        try:
            with pytest.raises(error):
                SocketListener(sock, retry_interval)
            if isinstance(sock, socket.socket) and kind != "closed":
                assert sock.fileno() >= 0  # left untouched: still the caller's
                assert sock.gettimeout() is None
        finally:
            if isinstance(sock, socket.socket):
                sock.close()


def test_listener_classes_are_final_with_slots(cleanup: Cleanup, server_context: ssl.SSLContext) -> None:
    for cls in (SocketListener, TLSListener):
        assert getattr(cls, "__final__", False) is True
        with pytest.raises(TypeError, match="final"):
            type("Sub", (cls,), {})
    listener = cleanup(create_tcp_listener("127.0.0.1"))
    tls = cleanup(TLSListener(cleanup(create_tcp_listener("127.0.0.1")), server_context))
    for obj in (listener, tls):
        assert not hasattr(obj, "__dict__"), type(obj).__name__


# ------------------------------------------------------------------ Unix --


@pytest.mark.parametrize("as_type", [str, os.fsencode, Path], ids=["str", "bytes", "Path"])
def test_unix_accept_round_trip(short_tmp_dir: str, as_type: Callable[[str], Any]) -> None:
    path = os.path.join(short_tmp_dir, "server.sock")
    with create_unix_listener(as_type(path)) as listener:
        assert listener.extra(SocketAttribute.family) == socket.AF_UNIX
        assert os.fsdecode(listener.extra(UNIXSocketAttribute.sockname)) == path
        with connect_unix_peer(path) as peer, listener.accept(5.0) as transport:
            round_trip(transport, peer)
        with pytest.raises(TypedAttributeLookupError):
            listener.extra(SocketAttribute.peername)


def test_unix_close_removes_the_socket_file(short_tmp_dir: str) -> None:
    path = os.path.join(short_tmp_dir, "server.sock")
    listener = create_unix_listener(path)
    assert os.path.exists(path)
    listener.close()
    assert not os.path.exists(path)
    listener.close()


def test_unix_close_removes_the_file_even_after_a_chdir(short_tmp_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(short_tmp_dir)
    listener = create_unix_listener("relative.sock")
    monkeypatch.chdir("/")
    listener.close()
    assert not os.path.exists(os.path.join(short_tmp_dir, "relative.sock"))


def test_unix_close_leaves_a_file_that_replaced_ours(short_tmp_dir: str) -> None:
    path = os.path.join(short_tmp_dir, "server.sock")
    listener = create_unix_listener(path)
    try:
        os.unlink(path)
        with create_unix_listener(path) as newer:
            listener.close()
            assert os.path.exists(path)  # the newer server's file
            with connect_unix_peer(path), newer.accept(5.0):
                pass
    finally:
        listener.close()


def make_stale_socket_file(path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(path)
        gone.listen()


def test_unix_an_existing_socket_file_is_in_use_unless_asked(
    short_tmp_dir: str, open_fd_count: Callable[[], int]
) -> None:
    path = os.path.join(short_tmp_dir, "stale.sock")
    make_stale_socket_file(path)
    with same_descriptor_count(open_fd_count), pytest.raises(OSError, match="remove_stale") as caught:
        create_unix_listener(path)
    assert caught.value.errno == errno.EADDRINUSE
    assert os.path.exists(path)


def test_unix_remove_stale_replaces_a_stale_socket(short_tmp_dir: str) -> None:
    path = os.path.join(short_tmp_dir, "stale.sock")
    make_stale_socket_file(path)
    # A second link keeps the old inode alive, so that the new file cannot reuse its number.
    os.link(path, path + ".old")
    stale_inode = os.lstat(path).st_ino
    with create_unix_listener(path, remove_stale=True) as listener:
        assert os.lstat(path).st_ino != stale_inode
        with connect_unix_peer(path) as peer, listener.accept(5.0) as transport:
            round_trip(transport, peer)
    assert not os.path.exists(path)


def test_unix_remove_stale_leaves_a_socket_somebody_listens_on(
    short_tmp_dir: str, open_fd_count: Callable[[], int]
) -> None:
    path = os.path.join(short_tmp_dir, "live.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(path)
        live.listen()
        live.settimeout(PEER_TIMEOUT)
        with same_descriptor_count(open_fd_count), pytest.raises(OSError, match="listens") as caught:
            create_unix_listener(path, remove_stale=True)
        assert caught.value.errno == errno.EADDRINUSE
        # The live server keeps its file and still takes connections (the probe's included).
        probe, _ = live.accept()
        with probe:
            assert probe.recv(1) == b""
        with connect_unix_peer(path), live.accept()[0]:
            pass


@pytest.mark.parametrize("kind", ["regular file", "directory", "symlink to a stale socket"])
def test_unix_remove_stale_never_removes_anything_but_a_socket(
    kind: str, short_tmp_dir: str, open_fd_count: Callable[[], int]
) -> None:
    path = os.path.join(short_tmp_dir, "thing")
    if kind == "regular file":
        Path(path).write_bytes(b"precious")
    elif kind == "directory":
        os.mkdir(path)
    else:
        target = os.path.join(short_tmp_dir, "stale.sock")
        make_stale_socket_file(target)
        os.symlink(target, path)
    with same_descriptor_count(open_fd_count), pytest.raises(OSError) as caught:
        create_unix_listener(path, remove_stale=True)
    assert caught.value.errno == errno.EADDRINUSE
    assert os.path.lexists(path)
    if kind == "regular file":
        assert Path(path).read_bytes() == b"precious"
    elif kind == "symlink to a stale socket":
        assert os.path.islink(path)


def test_unix_mode_is_set_before_listening(short_tmp_dir: str) -> None:
    path = os.path.join(short_tmp_dir, "private.sock")
    with create_unix_listener(path, mode=0o600):
        assert os.stat(path).st_mode & 0o7777 == 0o600
    with create_unix_listener(path, mode=0o666):
        assert os.stat(path).st_mode & 0o7777 == 0o666


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_unix_abstract_namespace(as_bytes: bool, open_fd_count: Callable[[], int]) -> None:
    name: str | bytes = abstract_name()
    if as_bytes:
        name = os.fsencode(name)
    with create_unix_listener(name) as listener:
        sockname = listener.extra(SocketAttribute.sockname)
        assert sockname == os.fsencode(name)
        with connect_unix_peer(name) as peer, listener.accept(5.0) as transport:
            round_trip(transport, peer)
        # Taken: EADDRINUSE, remove_stale or not (an abstract name cannot be stale).
        for remove_stale in (False, True):
            with same_descriptor_count(open_fd_count), pytest.raises(OSError) as caught:
                create_unix_listener(name, remove_stale=remove_stale)
            assert caught.value.errno == errno.EADDRINUSE
    # Freed by the close: the name can be bound again.
    create_unix_listener(name).close()


@pytest.mark.parametrize(
    ("path", "options", "error"),
    [
        (123, {}, TypeError),
        (None, {}, TypeError),
        ("", {}, ValueError),
        (b"", {}, ValueError),
        ("x.sock", {"mode": "0600"}, TypeError),
        ("x.sock", {"mode": 0o10000}, ValueError),
        ("x.sock", {"mode": -1}, ValueError),
        ("\0abstract", {"mode": 0o600}, ValueError),
        ("x.sock", {"backlog": -1}, ValueError),
        ("x.sock", {"retry_interval": 0.0}, ValueError),
    ],
)
def test_bad_unix_arguments_before_any_socket(
    path: Any,
    options: dict[str, Any],
    error: type[Exception],
    monkeypatch: pytest.MonkeyPatch,
    short_tmp_dir: str,
    open_fd_count: Callable[[], int],
) -> None:
    def no_socket(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a socket was made")

    monkeypatch.chdir(short_tmp_dir)
    with same_descriptor_count(open_fd_count):
        monkeypatch.setattr(socket, "socket", no_socket)
        with pytest.raises(error):
            create_unix_listener(path, **options)
    assert os.listdir(short_tmp_dir) == []


def test_unix_missing_directory(short_tmp_dir: str, open_fd_count: Callable[[], int]) -> None:
    with same_descriptor_count(open_fd_count), pytest.raises(FileNotFoundError):
        create_unix_listener(os.path.join(short_tmp_dir, "missing", "server.sock"))


def test_unix_failure_after_bind_removes_the_file(
    short_tmp_dir: str, monkeypatch: pytest.MonkeyPatch, open_fd_count: Callable[[], int]
) -> None:
    def refuse(self: socket.socket, backlog: int) -> None:
        raise OSError(errno.ENOBUFS, "no buffer space")

    path = os.path.join(short_tmp_dir, "server.sock")
    with same_descriptor_count(open_fd_count):
        monkeypatch.setattr(socket.socket, "listen", refuse)
        with pytest.raises(OSError):
            create_unix_listener(path)
    assert not os.path.exists(path)


def test_unix_listener_from_your_own_socket_never_removes_the_file(short_tmp_dir: str) -> None:
    path = os.path.join(short_tmp_dir, "own.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen()
    SocketListener(sock, 1.0).close()
    assert os.path.exists(path)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_closing_its_copy_leaves_the_parent_listening(short_tmp_dir: str) -> None:
    path = os.path.join(short_tmp_dir, "shared.sock")
    with create_unix_listener(path) as listener:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the child: close its copy, and leave without running anything else
            code = 1
            try:
                listener.close()
                code = 0 if listener.is_closed() else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + PEER_TIMEOUT
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.path.exists(path)  # the child did not remove the parent's file
        # The child's close did not signal the parent's waits, nor stop the socket.
        waker_fd = listener._waker.read_fd  # type: ignore[union-attr]
        assert select.select([waker_fd], [], [], 0)[0] == []
        with connect_unix_peer(path) as peer, listener.accept(5.0) as transport:
            round_trip(transport, peer)
    assert not os.path.exists(path)


# ------------------------------------------------------------ leak warnings --


def test_a_dropped_listener_warns_and_closes(short_tmp_dir: str, open_fd_count: Callable[[], int]) -> None:
    path = os.path.join(short_tmp_dir, "dropped.sock")
    with same_descriptor_count(open_fd_count):
        tcp = create_tcp_listener("127.0.0.1")
        unix = create_unix_listener(path)
        with pytest.warns(ResourceWarning, match="unclosed transport <SocketListener"):
            del tcp, unix
            gc.collect()
    assert not os.path.exists(path)


def test_a_dropped_tls_listener_warns_and_closes(
    server_context: ssl.SSLContext, open_fd_count: Callable[[], int]
) -> None:
    with same_descriptor_count(open_fd_count):
        tls = TLSListener(create_tcp_listener("127.0.0.1"), server_context)
        with pytest.warns(ResourceWarning, match="unclosed transport"):
            del tls
            gc.collect()


def test_a_closed_listener_does_not_warn() -> None:
    listener = create_tcp_listener("127.0.0.1")
    listener.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del listener
        gc.collect()


# ------------------------------------------------------------------- TLS --


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def tls_exchange(port: int, context: ssl.SSLContext, payload: bytes) -> bytes:
    """A TLS client: connect, send ``payload``, read as many bytes back."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
    with raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = tls.recv(len(payload) - len(received))
            if not chunk:
                break
            received += chunk
        return received


def test_tls_accept_and_round_trip(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, spawn: Spawn
) -> None:
    with TLSListener(create_tcp_listener("127.0.0.1"), server_context, shutdown_timeout=2.0) as listener:
        assert listener.extra(SocketAttribute.family) == socket.AF_INET
        assert "TLSListener" in repr(listener)
        client = spawn(tls_exchange, port_of(listener), client_context, b"hello")
        with listener.accept(5.0) as transport:
            assert isinstance(transport, SSLStreamTransport)
            assert transport.extra(TLSAttribute.cipher)
            assert transport.extra(SocketAttribute.socket).getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            data = transport.recv(5, 5.0)
            transport.send_all(data, 5.0)
        assert client.result(PEER_TIMEOUT) == b"hello"


def test_tls_accept_with_no_connection_times_out(server_context: ssl.SSLContext) -> None:
    with TLSListener(create_tcp_listener("127.0.0.1"), server_context) as listener:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            listener.accept(0.2)
        assert 0.2 <= time.monotonic() - started < 1.2


def test_tls_silent_client_times_out_and_the_listener_goes_on(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, spawn: Spawn, open_fd_count: Callable[[], int]
) -> None:
    listener = TLSListener(create_tcp_listener("127.0.0.1"), server_context, handshake_timeout=0.3)
    with listener:
        with connect(listener) as silent:
            with same_descriptor_count(open_fd_count):
                started = time.monotonic()
                with pytest.raises(TimeoutError, match="handshake"):
                    listener.accept(5.0)
                assert 0.3 <= time.monotonic() - started < 1.3
            assert silent.recv(1) == b""  # its connection was closed
        client = spawn(tls_exchange, port_of(listener), client_context, b"next")
        with listener.accept(5.0) as transport:
            transport.send_all(transport.recv(4, 5.0), 5.0)
        assert client.result(PEER_TIMEOUT) == b"next"


def test_tls_garbage_client_fails_its_handshake_only(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, spawn: Spawn, open_fd_count: Callable[[], int]
) -> None:
    with TLSListener(create_tcp_listener("127.0.0.1"), server_context) as listener:
        with connect(listener) as garbage:
            garbage.sendall(b"GET / HTTP/1.0\r\n\r\n")
            with same_descriptor_count(open_fd_count), pytest.raises(ssl.SSLError):
                listener.accept(5.0)
        client = spawn(tls_exchange, port_of(listener), client_context, b"fine")
        with listener.accept(5.0) as transport:
            transport.send_all(transport.recv(4, 5.0), 5.0)
        assert client.result(PEER_TIMEOUT) == b"fine"


def test_tls_close_from_another_thread_ends_a_handshake(server_context: ssl.SSLContext, spawn: Spawn) -> None:
    listener = TLSListener(create_tcp_listener("127.0.0.1"), server_context, handshake_timeout=30.0)
    try:
        with connect(listener) as silent:
            future = spawn(listener.accept, 5.0)
            time.sleep(0.2)  # accepted; the handshake waits for the client
            closed_at = time.monotonic()
            listener.close()
            with pytest.raises(OSError) as caught:
                future.result(PEER_TIMEOUT)
            assert caught.value.errno == errno.EBADF
            assert time.monotonic() - closed_at < PROMPT
            assert silent.recv(1) == b""
    finally:
        listener.close()


def test_tls_close_from_another_thread_ends_the_wait(server_context: ssl.SSLContext, spawn: Spawn) -> None:
    listener = TLSListener(create_tcp_listener("127.0.0.1"), server_context)
    try:
        future = spawn(listener.accept, math.inf)
        time.sleep(0.05)
        closed_at = time.monotonic()
        listener.close()
        with pytest.raises(OSError) as caught:
            future.result(PEER_TIMEOUT)
        assert caught.value.errno == errno.EBADF
        assert time.monotonic() - closed_at < PROMPT
        assert listener.is_closed()
        listener.close()
        with pytest.raises(OSError):
            listener.accept(0)
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("a plain socket for the listener", TypeError),
        ("no context", TypeError),
        ("not a context", TypeError),
        ("negative handshake_timeout", ValueError),
        ("NaN shutdown_timeout", ValueError),
        ("handshake_timeout not a number", TypeError),
    ],
)
def test_tls_listener_bad_arguments_leave_the_listener_alone(
    case: str,
    error: type[Exception],
    server_context: ssl.SSLContext,
    cleanup: Cleanup,
    open_fd_count: Callable[[], int],
) -> None:
    listener = cleanup(create_tcp_listener("127.0.0.1"))
    raw = cleanup(socket.create_server(("127.0.0.1", 0)))
    arguments: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
        "a plain socket for the listener": ((raw, server_context), {}),
        "no context": ((listener, None), {}),
        "not a context": ((listener, object()), {}),
        "negative handshake_timeout": ((listener, server_context), {"handshake_timeout": -1.0}),
        "NaN shutdown_timeout": ((listener, server_context), {"shutdown_timeout": math.nan}),
        "handshake_timeout not a number": ((listener, server_context), {"handshake_timeout": "5"}),
    }
    positional, options = arguments[case]
    with same_descriptor_count(open_fd_count), pytest.raises(error):
        TLSListener(*positional, **options)
    assert not listener.is_closed()
    assert raw.fileno() >= 0


# ----------------------------------------------------------------- serve --


class Server:
    """serve() running in a thread, stopped (and checked) at teardown."""

    def __init__(
        self, listener: SocketListener | TLSListener, handler: Callable[[Any], object], **options: Any
    ) -> None:
        self.listener = listener
        self.errors: list[tuple[Exception, Any]] = []
        self.returned = threading.Event()
        self.outcome: list[BaseException | None] = []
        options.setdefault("on_error", lambda exc, transport: self.errors.append((exc, transport)))

        def run() -> None:
            try:
                serve(listener, handler, **options)
                self.outcome.append(None)
            except BaseException as exc:
                self.outcome.append(exc)
            finally:
                self.returned.set()

        self.thread = threading.Thread(target=run, name="serve under test")
        self.thread.start()

    def stop(self) -> float:
        """Close the listener; return how long serve() took to return."""
        closed_at = time.monotonic()
        self.listener.close()
        assert self.returned.wait(PEER_TIMEOUT), "serve() did not return"
        elapsed = time.monotonic() - closed_at
        self.thread.join(PEER_TIMEOUT)
        assert self.outcome == [None]
        return elapsed


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(listener: SocketListener | TLSListener, handler: Callable[[Any], object], **options: Any) -> Server:
        server = Server(listener, handler, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.listener.close()
        server.thread.join(PEER_TIMEOUT)


def echo_once(transport: StreamTransport) -> None:
    data = transport.recv(1024, 5.0)
    transport.send_all(data, 5.0)


def tcp_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as peer:
        peer.sendall(payload)
        received = b""
        while True:
            chunk = peer.recv(1024)
            if not chunk:  # the transport is closed after the handler returns
                return received
            received += chunk


def test_serve_echo_to_many_clients(servers: Callable[..., Server], open_fd_count: Callable[[], int]) -> None:
    with same_descriptor_count(open_fd_count):
        server = servers(create_tcp_listener("127.0.0.1"), echo_once)
        port = port_of(server.listener)
        results: dict[int, bytes] = {}

        def client(number: int) -> None:
            results[number] = tcp_exchange(port, b"client %d" % number)

        clients = [threading.Thread(target=client, args=(number,)) for number in range(8)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(PEER_TIMEOUT)
        assert results == {number: b"client %d" % number for number in range(8)}
        assert server.stop() < PROMPT
        assert server.errors == []


def test_serve_runs_each_connection_in_its_own_thread(servers: Callable[..., Server]) -> None:
    release = threading.Event()

    def handler(transport: StreamTransport) -> None:
        if transport.recv(4, 5.0) == b"slow":
            release.wait(PEER_TIMEOUT)
        transport.send_all(b"done", 5.0)

    server = servers(create_tcp_listener("127.0.0.1"), handler)
    port = port_of(server.listener)
    with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as slow:
        slow.sendall(b"slow")
        started = time.monotonic()
        assert tcp_exchange(port, b"fast") == b"done"
        assert time.monotonic() - started < 2.0
        release.set()
        assert slow.recv(4) == b"done"
    server.stop()


def test_serve_reports_handler_errors_and_goes_on(servers: Callable[..., Server]) -> None:
    def handler(transport: StreamTransport) -> None:
        data = transport.recv(4, 5.0)
        if data == b"fail":
            raise ValueError("handler failed")
        transport.send_all(data, 5.0)

    server = servers(create_tcp_listener("127.0.0.1"), handler)
    port = port_of(server.listener)
    assert tcp_exchange(port, b"fail") == b""  # closed after the handler raised
    assert tcp_exchange(port, b"okay") == b"okay"
    server.stop()
    ((error, transport),) = server.errors
    assert isinstance(error, ValueError)
    assert isinstance(transport, SocketStreamTransport)
    assert transport.is_closed()


def test_serve_logs_handler_errors_by_default(servers: Callable[..., Server], caplog: pytest.LogCaptureFixture) -> None:
    def handler(transport: StreamTransport) -> None:
        transport.recv(1, 5.0)
        raise ValueError("logged")

    caplog.set_level(logging.ERROR, logger="transports.socket")
    server = servers(create_tcp_listener("127.0.0.1"), handler, on_error=None)
    tcp_exchange(port_of(server.listener), b"x")
    server.stop()
    (record,) = [record for record in caplog.records if record.name == "transports.socket"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)


def test_serve_waits_for_running_handlers_when_the_listener_closes(servers: Callable[..., Server]) -> None:
    entered = threading.Event()
    release = threading.Event()

    def handler(transport: StreamTransport) -> None:
        entered.set()
        release.wait(PEER_TIMEOUT)

    server = servers(create_tcp_listener("127.0.0.1"), handler)
    with connect(server.listener):
        assert entered.wait(PEER_TIMEOUT)
        server.listener.close()
        assert not server.returned.wait(0.3)  # the handler still runs
        release.set()
        assert server.returned.wait(PEER_TIMEOUT)
    server.stop()


def test_serve_stops_when_a_handler_closes_the_listener(servers: Callable[..., Server]) -> None:
    listener = create_tcp_listener("127.0.0.1")

    def handler(transport: StreamTransport) -> None:
        listener.close()

    server = servers(listener, handler)
    with connect(listener):
        assert server.returned.wait(PEER_TIMEOUT)
    server.stop()


def test_serve_on_a_closed_listener_returns_at_once() -> None:
    listener = create_tcp_listener("127.0.0.1")
    listener.close()
    serve(listener, echo_once)


@pytest.mark.parametrize(
    ("arguments", "options"),
    [
        ((object(), echo_once), {}),
        (("listener", None), {}),
        (("listener", echo_once), {"on_error": 1}),
    ],
)
def test_serve_refuses_bad_arguments(arguments: tuple[Any, ...], options: dict[str, Any], cleanup: Cleanup) -> None:
    listener = cleanup(create_tcp_listener("127.0.0.1"))
    resolved = [listener if argument == "listener" else argument for argument in arguments]
    with pytest.raises(TypeError):
        serve(*resolved, **options)
    assert not listener.is_closed()


def test_serve_pauses_and_goes_on_when_out_of_descriptors(
    servers: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = create_tcp_listener("127.0.0.1")
    # (A mock: running a shared test process out of descriptors is not safe.)
    real = listeners_module._accept
    failures = [OSError(errno.EMFILE, "Too many open files")]

    def accept(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(*args)

    monkeypatch.setattr(listeners_module, "_accept", accept)
    server = servers(listener, echo_once)
    assert tcp_exchange(port_of(listener), b"after") == b"after"
    server.stop()
    ((error, transport),) = server.errors
    assert error.errno == errno.EMFILE  # type: ignore[attr-defined]
    assert transport is None


def test_serve_tls_echo(
    servers: Callable[..., Server], server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    listener = TLSListener(create_tcp_listener("127.0.0.1"), server_context, shutdown_timeout=2.0)
    server = servers(listener, echo_once)
    assert tls_exchange(port_of(listener), client_context, b"secret") == b"secret"
    with connect_tls(
        "127.0.0.1", port_of(listener), 5.0, ssl_context=client_context, shutdown_timeout=2.0
    ) as transport:
        transport.send_all(b"again", 5.0)
        assert transport.recv(5, 5.0) == b"again"
    server.stop()
    assert server.errors == []


def test_serve_tls_silent_client_does_not_stall_the_others(
    servers: Callable[..., Server],
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    open_fd_count: Callable[[], int],
) -> None:
    with same_descriptor_count(open_fd_count):
        listener = TLSListener(
            create_tcp_listener("127.0.0.1"), server_context, handshake_timeout=30.0, shutdown_timeout=2.0
        )
        server = servers(listener, echo_once)
        port = port_of(listener)
        with connect(listener) as silent:
            time.sleep(0.1)  # the silent client is accepted first
            started = time.monotonic()
            assert tls_exchange(port, client_context, b"served") == b"served"
            assert time.monotonic() - started < 2.0
            # Closing the listener ends the silent client's handshake too.
            assert server.stop() < PROMPT
            assert silent.recv(1) == b""
        assert server.errors == []


def test_serve_tls_handshake_timeout_is_reported(
    servers: Callable[..., Server], server_context: ssl.SSLContext
) -> None:
    listener = TLSListener(create_tcp_listener("127.0.0.1"), server_context, handshake_timeout=0.2)
    server = servers(listener, echo_once)
    with connect(listener) as silent:
        assert silent.recv(1) == b""  # closed after the handshake timed out
    deadline = time.monotonic() + PEER_TIMEOUT
    while not server.errors:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server.stop()
    ((error, transport),) = server.errors
    assert isinstance(error, TimeoutError)
    assert transport is None


def test_serve_tls_garbage_client_does_not_stop_the_loop(
    servers: Callable[..., Server], server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    listener = TLSListener(create_tcp_listener("127.0.0.1"), server_context, shutdown_timeout=2.0)
    server = servers(listener, echo_once)
    port = port_of(listener)
    with connect(listener) as garbage:
        garbage.sendall(b"\x16\x03\x01\x00\x05hello, this is not TLS\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):
            garbage.recv(1024)  # an alert, or the end
    # Bad certificates: a client that does not trust the server fails its side.
    untrusting = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_exchange(port, untrusting, b"x")
    assert tls_exchange(port, client_context, b"still") == b"still"
    server.stop()
    assert len(server.errors) == 2
    for error, transport in server.errors:
        assert isinstance(error, (ssl.SSLError, OSError))
        assert transport is None


def test_serve_logs_handshake_failures_at_debug_level(
    servers: Callable[..., Server], server_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="transports.socket")
    listener = TLSListener(create_tcp_listener("127.0.0.1"), server_context)
    server = servers(listener, echo_once, on_error=None)
    with connect(listener) as garbage:
        garbage.sendall(b"not TLS at all\r\n\r\n" * 4)
        with contextlib.suppress(ConnectionResetError):
            garbage.recv(1024)
    deadline = time.monotonic() + PEER_TIMEOUT
    while not [record for record in caplog.records if record.name == "transports.socket"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server.stop()
    records = [record for record in caplog.records if record.name == "transports.socket"]
    assert [record.levelno for record in records] == [logging.DEBUG]


# A signal handler's exception comes out of a blocked accept at once: a
# RuntimeError is not taken for another thread using the poll object. Run in
# a child process, whose main thread (the one signals go to) blocks.
SIGNAL_CHILD = """
import math, signal, sys, time
from transports.socket import create_tcp_listener

class FromHandler(RuntimeError):
    pass

def handler(signum, frame):
    raise FromHandler("from the signal handler")

signal.signal(signal.SIGALRM, handler)
timeout = float(sys.argv[1])
with create_tcp_listener("127.0.0.1", 0, retry_interval=float(sys.argv[2])) as listener:
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    started = time.monotonic()
    try:
        listener.accept(timeout)
    except FromHandler:
        print(f"{time.monotonic() - started:.3f}")
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("timeout", "retry_interval"), [("2.0", "1.0"), ("inf", "inf")])
def test_a_signal_handlers_runtime_error_ends_a_blocked_accept(timeout: str, retry_interval: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SIGNAL_CHILD, timeout, retry_interval],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), f"the handler's exception did not come out: {result.stderr}"
    assert 0.15 <= float(result.stdout) < 1.0


@pytest.mark.parametrize(("timeout", "error"), [(-1.0, ValueError), (math.nan, ValueError), (None, TypeError)])
def test_a_closed_listener_still_refuses_a_bad_timeout_first(timeout: Any, error: type[Exception]) -> None:
    listener = create_tcp_listener("127.0.0.1")
    listener.close()
    with pytest.raises(error):
        listener.accept(timeout)
