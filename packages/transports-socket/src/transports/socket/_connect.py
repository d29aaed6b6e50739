"""Opening connections: TCP (with happy eyeballs), TLS over TCP, Unix sockets.

Each function spends ONE timeout budget on everything it does: name
resolution, every connection attempt and, for TLS, the handshake. A
connection that is made is handed to a transport that owns it; every
socket that is not (an attempt that lost the race, or one that failed) is
closed before the function returns or raises.

Happy eyeballs (RFC 8305): the addresses are tried in the order the
resolver gives, with the two families interleaved, and a new attempt starts
when the previous one has failed, or has not succeeded within
``happy_eyeballs_delay``, while the earlier ones go on. The first attempt to
succeed wins. A host with an IPv6 address that does not answer is then
reached over IPv4 after a quarter of a second, not after the whole
timeout.
"""

from __future__ import annotations

__all__ = ["connect_tcp", "connect_tls", "connect_unix"]

import _socket
import errno
import math
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from time import monotonic
from typing import Any

from transports.abc import deadline_after, time_left, timeout_error, validate_timeout

from ._constants import DEFAULT_RETRY_INTERVAL
from ._stream import SocketStreamTransport
from ._tls import SSLStreamTransport

DEFAULT_HAPPY_EYEBALLS_DELAY = 0.25

#: What the resolver gives: family, type, protocol, canonical name, address
#: (the numbers as plain ints, or as the enum members of socket.getaddrinfo).
AddressInfo = tuple[int, int, int, str, Any]


def connect_tcp(
    host: str,
    port: int,
    timeout: float,
    *,
    local_address: tuple[str, int] | None = None,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    happy_eyeballs_delay: float = DEFAULT_HAPPY_EYEBALLS_DELAY,
    nodelay: bool = True,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
) -> SocketStreamTransport:
    """Connect to ``host``:``port`` over TCP within ``timeout`` seconds.

    Parameters:
        host: a name to resolve, or an IPv4 or IPv6 address.
        port: the port, ``0`` to ``65535``.
        timeout: seconds for resolution and connection together;
            :data:`math.inf` to wait forever.
        local_address: ``(host, port)`` to bind each attempt to first.
        family: :data:`socket.AF_INET` or :data:`socket.AF_INET6` to try
            only that family; by default both.
        happy_eyeballs_delay: seconds an attempt has before the next one
            starts beside it.
        nodelay: set ``TCP_NODELAY``, so that a small write goes out at once
            instead of waiting for the peer to acknowledge the previous one.
        retry_interval: given to the :class:`SocketStreamTransport`.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: a port out of range, a negative or NaN ``timeout`` or
            ``happy_eyeballs_delay``, a bad ``family`` or ``retry_interval``.
        socket.gaierror: the name does not resolve.
        TimeoutError: no attempt succeeded in time (resolution included).
        OSError: every attempt failed; the message names each address and
            its error, the ``errno`` is theirs when they all agree, and
            ``__cause__`` is an :exc:`ExceptionGroup` of the attempts'
            errors.

    Returns:
        A transport owning the connected socket.
    """
    sock = _open_tcp_socket(host, port, timeout, local_address, family, happy_eyeballs_delay, nodelay, retry_interval)[
        0
    ]
    return _client_transport(sock, retry_interval)


def connect_tls(
    host: str,
    port: int,
    timeout: float,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    local_address: tuple[str, int] | None = None,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    happy_eyeballs_delay: float = DEFAULT_HAPPY_EYEBALLS_DELAY,
    nodelay: bool = True,
    shutdown_timeout: float | None = None,
    standard_compatible: bool = True,
    session: ssl.SSLSession | None = None,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
) -> SSLStreamTransport:
    """Connect to ``host``:``port`` and make a TLS handshake, all within ``timeout`` seconds.

    The connection is made as by :func:`connect_tcp`; the handshake gets
    what is left of the budget. The parameters and errors that
    :func:`connect_tcp` has mean the same here.

    Parameters:
        ssl_context: by default :func:`ssl.create_default_context`, which
            checks the server's certificate and host name against the
            system's trusted certificates. Pass your own to change that.
        server_hostname: the name to check the certificate against and to
            send as SNI; by default ``host``.
        shutdown_timeout, standard_compatible, session: given to the
            :class:`SSLStreamTransport`.

    Raises:
        ssl.SSLCertVerificationError: the certificate is not trusted, or
            not for ``server_hostname``.
        ssl.SSLError: the handshake failed otherwise.
        TimeoutError: the connection and handshake did not finish in time.

    Returns:
        A transport owning the connected socket, its handshake done.
    """
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise TypeError(f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}")
    # What the TLS transport would refuse, refused before any connection is made.
    if shutdown_timeout is not None:
        validate_timeout(shutdown_timeout)
    if session is not None and not isinstance(session, ssl.SSLSession):
        raise TypeError(f"session must be an ssl.SSLSession, not {type(session).__name__}")
    sock, deadline = _open_tcp_socket(
        host, port, timeout, local_address, family, happy_eyeballs_delay, nodelay, retry_interval
    )
    try:
        context = ssl.create_default_context() if ssl_context is None else ssl_context
    except BaseException:
        sock.close()
        raise
    # The transport owns the socket from here, and closes it if the handshake fails.
    return SSLStreamTransport(
        sock,
        context,
        retry_interval,
        handshake_timeout=time_left(deadline),
        shutdown_timeout=shutdown_timeout,
        server_hostname=host if server_hostname is None else server_hostname,
        standard_compatible=standard_compatible,
        session=session,
    )


def connect_unix(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    timeout: float,
    *,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
) -> SocketStreamTransport:
    """Connect to the Unix stream socket at ``path`` within ``timeout`` seconds.

    Parameters:
        path: a file system path, or a name in Linux's abstract namespace
            (starting with a NUL character or byte).
        timeout: seconds; :data:`math.inf` to wait forever. While the
            listener's backlog is full, attempts are repeated until it is
            spent.
        retry_interval: given to the :class:`SocketStreamTransport`.

    Raises:
        TypeError: ``path`` is not a string, bytes or path-like object.
        ValueError: a negative or NaN ``timeout``, a bad ``retry_interval``.
        FileNotFoundError: no socket at ``path``.
        ConnectionRefusedError: nothing listens on the socket at ``path``.
        TimeoutError: the listener did not take the connection in time.
        OSError: any other error of ``connect``.

    Returns:
        A transport owning the connected socket.
    """
    address = os.fspath(path)
    if not isinstance(address, (str, bytes)):
        raise TypeError(f"path must be a string, bytes or a path-like object, not {type(path).__name__}")
    deadline = deadline_after(timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        pause = 0.001
        while True:
            try:
                sock.connect(address)
                break
            except BlockingIOError as exc:
                if exc.errno == errno.EINPROGRESS:
                    _wait_connected(sock, deadline)
                    break
                # A full backlog (EAGAIN) offers nothing to wait on: try
                # again after a pause that grows, within the budget.
                left = time_left(deadline)
                if left == 0.0:
                    raise timeout_error() from None
                time.sleep(min(pause, left))
                pause = min(pause * 2, 0.05)
    except BaseException:
        sock.close()
        raise
    return _client_transport(sock, retry_interval)


# ------------------------------------------------------------------ help --


def _client_transport(sock: socket.socket, retry_interval: float) -> SocketStreamTransport:
    """The transport of a connection made here; ``sock`` is closed if making it fails.

    Its first receives wait for data before they try: a client that has
    just connected sends a request first, or waits for a greeting that the
    server has not written yet, and a receive that finds nothing costs an
    exception and a slower way to the wait (12% of the client CPU of a
    connect, 64 B round trip and close with a finite timeout, bench).
    """
    try:
        transport = SocketStreamTransport(sock, retry_interval)
    except BaseException:
        sock.close()
        raise
    transport._read_would_block()
    return transport


def _check_host_port(host: object, port: object) -> None:
    if not isinstance(host, str):
        raise TypeError(f"host must be a string, not {type(host).__name__}")
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"port must be an integer, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0 to 65535, not {port}")


def _resolve(host: str, port: int, family: int, deadline: float) -> list[AddressInfo]:
    """The addresses of ``host``, in the order to try them; resolution within the budget."""
    # An address needs no resolver: no thread, no wait. Asked of the C
    # function, not of socket.getaddrinfo(), which turns every family and
    # type into an enum member, and with an ASCII host as bytes, which CPython
    # would otherwise pass through the idna codec, written in Python (it
    # leaves ASCII labels as they are): 8% to 9% of the client CPU of a
    # connect, 64 B round trip and close (bench, tcp-connect: 1.39x -> 1.27x
    # plain with a finite timeout, 1.23x -> 1.13x with an infinite one).
    try:
        name: str | bytes = host.encode("ascii")
    except UnicodeEncodeError:
        name = host
    found: list[AddressInfo]
    try:
        found = _socket.getaddrinfo(name, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        found = _resolve_in_thread(host, port, family, deadline)
    return found if len(found) < 2 else _interleave(found)


def _resolve_in_thread(host: str, port: int, family: int, deadline: float) -> list[AddressInfo]:
    # getaddrinfo takes no timeout: it runs in a thread, and the budget ends
    # the wait for it (the thread then finishes on its own, its result unused).
    outcome: list[Any] = []
    done = threading.Event()

    def resolve() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=resolve, name=f"resolving {host}", daemon=True).start()
    left = time_left(deadline)
    if not done.wait(None if left == math.inf else left):
        raise timeout_error(f"timed out resolving {host!r}")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    addresses: list[AddressInfo] = result
    return addresses


def _interleave(addresses: Sequence[AddressInfo]) -> list[AddressInfo]:
    """The resolver's order, but alternating families, starting with the first one's."""
    if not addresses:
        return []
    first = addresses[0][0]
    preferred = [info for info in addresses if info[0] == first]
    others = [info for info in addresses if info[0] != first]
    ordered: list[AddressInfo] = []
    for index in range(max(len(preferred), len(others))):
        ordered.extend(group[index] for group in (preferred, others) if index < len(group))
    return ordered


def _open_tcp_socket(
    host: str,
    port: int,
    timeout: float,
    local_address: tuple[str, int] | None,
    family: socket.AddressFamily,
    happy_eyeballs_delay: float,
    nodelay: bool,
    retry_interval: float,
) -> tuple[socket.socket, float]:
    """A connected TCP socket, and the deadline of the budget it started."""
    # (Calls saved where a valid argument needs none, here and in
    # _connect_one: a short-lived client runs this once per connection, with
    # Python slow after the waits around it. 3% of the client CPU of a
    # connect, 64 B round trip and close, bench.)
    _check_host_port(host, port)
    if timeout is None or not timeout >= 0:
        validate_timeout(timeout)
    deadline = monotonic() + timeout  # math.inf stays math.inf
    if family not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
        raise ValueError(f"family must be AF_UNSPEC, AF_INET or AF_INET6, not {family!r}")
    if happy_eyeballs_delay is None or not happy_eyeballs_delay >= 0:
        validate_timeout(happy_eyeballs_delay)
    if not retry_interval > 0:
        raise ValueError(f"retry_interval must be positive, not {retry_interval!r}")
    addresses = _resolve(host, port, family, deadline)
    if len(addresses) == 1:  # no race to run
        sock = _connect_one(addresses[0], local_address, deadline, host, port)
    else:
        sock = _connect_first(addresses, local_address, happy_eyeballs_delay, deadline, f"{host}:{port}")
    if nodelay:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
    return sock, deadline


def _connect_first(
    addresses: list[AddressInfo],
    local_address: tuple[str, int] | None,
    delay: float,
    deadline: float,
    target: str,
) -> socket.socket:
    """Race connection attempts to ``addresses``; return the first connected socket."""
    if not addresses:
        raise OSError(f"no address to connect to for {target}")
    pending = list(reversed(addresses))  # pop() takes the next one
    failures: list[tuple[Any, OSError]] = []
    # A poll object, not a selector: no descriptor of its own to make and
    # close for every connection.
    poller = select.poll()
    attempts: dict[int, tuple[socket.socket, AddressInfo]] = {}
    try:
        next_start = -math.inf
        while True:
            now = time.monotonic()
            # The next attempt starts when it is due, or at once when none is
            # in progress any more (the earlier ones failed).
            if pending and (now >= next_start or not attempts):
                info = pending.pop()
                started = _start_attempt(info, local_address, failures)
                if started is not None:
                    sock, connected = started
                    if connected:
                        return sock
                    attempts[sock.fileno()] = (sock, info)
                    poller.register(sock, select.POLLOUT)
                    next_start = now + delay
                continue
            if not attempts:
                raise _all_failed(target, failures)
            wait = time_left(deadline)
            if pending:
                wait = min(wait, next_start - now)
            for fileno, _ in poller.poll(None if wait == math.inf else math.ceil(wait * 1000.0)):
                attempt, info = attempts.pop(fileno)
                poller.unregister(fileno)
                code = attempt.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code == 0:
                    return attempt
                attempt.close()
                failures.append((info[4], OSError(code, os.strerror(code))))
                next_start = -math.inf  # a failure starts the next attempt at once
            if time_left(deadline) == 0.0 and attempts:
                raise timeout_error(f"timed out connecting to {target}")
    finally:
        # Every attempt still in progress lost the race, or the budget ran out.
        for attempt, _ in attempts.values():
            attempt.close()


def _connect_one(
    info: AddressInfo, local_address: tuple[str, int] | None, deadline: float, host: str, port: int
) -> socket.socket:
    """Connect to the one address there is, with the wait in C (no race to run).

    CPython's own connect with a timeout waits in C and recomputes what is
    left after a signal. Measured in-process, connect + close of a loopback
    connection: 95 us of CPU this way, 122 us through the race, 85 us for
    plain ``socket.create_connection``.
    """
    address_family, kind, protocol, _, address = info
    sock = socket.socket(address_family, kind, protocol)
    try:
        left = deadline - monotonic()
        if left != math.inf:
            sock.settimeout(left if left > 0.0 else 0.0)
        elif sock.gettimeout() is not None:  # socket.setdefaulttimeout() was called
            sock.settimeout(None)  # (else blocking already: no system call to make it so)
        try:
            if local_address is not None:
                sock.bind(local_address)
            sock.connect(address)
        except (BlockingIOError, TimeoutError) as exc:
            if exc.errno not in (None, errno.EINPROGRESS):  # the connection's own ETIMEDOUT
                raise _all_failed(f"{host}:{port}", [(address, exc)])  # noqa: B904 - its cause is set
            raise timeout_error(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise _all_failed(f"{host}:{port}", [(address, exc)])  # noqa: B904 - its cause is set
        return sock
    except BaseException:
        sock.close()
        raise


def _start_attempt(
    info: AddressInfo, local_address: tuple[str, int] | None, failures: list[tuple[Any, OSError]]
) -> tuple[socket.socket, bool] | None:
    """A socket connecting to ``info``'s address, and whether it is connected already; None if it failed."""
    address_family, kind, protocol, _, address = info
    sock = socket.socket(address_family, kind, protocol)
    try:
        sock.setblocking(False)
        if local_address is not None:
            sock.bind(local_address)
        try:
            sock.connect(address)
        except BlockingIOError as exc:
            if exc.errno != errno.EINPROGRESS:
                raise
            return sock, False
        return sock, True
    except OSError as exc:
        sock.close()
        failures.append((address, exc))
        return None
    except BaseException:
        sock.close()
        raise


def _all_failed(target: str, failures: list[tuple[Any, OSError]]) -> OSError:
    described = "; ".join(f"{address!r}: {exc.strerror or exc}" for address, exc in failures)
    codes = {exc.errno for _, exc in failures}
    code = codes.pop() if len(codes) == 1 else None
    message = f"could not connect to {target} ({described})"
    error = OSError(code, message) if code is not None else OSError(message)
    error.__cause__ = ExceptionGroup(f"connection attempts to {target}", [exc for _, exc in failures])
    return error


def _wait_connected(sock: socket.socket, deadline: float) -> None:
    """Wait for a non-blocking connect to finish; raise its error, or TimeoutError."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    left = time_left(deadline)
    if not poller.poll(None if left == math.inf else math.ceil(left * 1000.0)):
        raise timeout_error()
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))
