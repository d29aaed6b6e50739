"""SocketDatagramEndpoint: one unconnected datagram socket, any number of peers.

A :class:`SocketDatagramTransport` talks to one peer: its socket is
connected, so ``send`` needs no address and ``recv`` hears that peer only.
A server on a bound, unconnected socket needs the other shape, which this
module gives: every receive says who sent the packet, every send says where
it goes. :func:`open_udp` makes either, from addresses.

The endpoint owns its socket exactly as the transport does
(:class:`~._ownership.SocketOwner`: blocking descriptor with
``MSG_DONTWAIT`` on Linux, ``SO_RCVTIMEO`` / ``SO_SNDTIMEO`` of
``retry_interval``, :exc:`ResourceWarning` when dropped open), and its
methods follow the transport's fast paths one for one: ``recvfrom`` where
the transport calls ``recv``, ``sendto`` where it calls ``send``,
``recvmsg`` / ``sendmsg`` with an address for the ancillary forms.

Addresses
---------
Python's ``sendto`` resolves a host *name* inside the call, with
``getaddrinfo``, which no timeout bounds. An IP endpoint therefore takes
numeric hosts only, checked with ``inet_pton`` before any I/O, so that a
send never waits on a resolver. The check costs about as much as a tenth
of the ``sendto`` itself, so the hosts that passed it are remembered (a
set of at most :data:`_KNOWN_HOSTS_MAX` strings, emptied when full): the
reply to an address just received costs one set lookup. The port and the
other items are left to Python's own parser, which also runs before the
system call; its :exc:`OverflowError` for a port out of range becomes a
:exc:`ValueError`, and its ``OSError`` without an ``errno`` for an
``AF_UNIX`` path that is too long gets ``ENAMETOOLONG``.
"""

from __future__ import annotations

__all__ = ["SocketDatagramEndpoint", "open_udp"]

import errno
import math
import os
import selectors
import socket
from collections.abc import Callable, Iterator
from functools import partial
from time import monotonic
from typing import Any, Final, TypeAlias, final, overload

from typing_extensions import Buffer

from transports.abc import UnsupportedOperation, deadline_after, validate_timeout
from transports.abc._family import buffer_type_error, check_ancillary_bufsize, refuse_subclasses
from transports.selector import WouldBlockOnRead, WouldBlockOnWrite

from ._ancillary import ReceivedAncillaryData, raise_on_truncated_control
from ._connect import AddressInfo, _check_host_port, _resolve
from ._constants import (
    ANCILLARY_DATAGRAM_FAMILIES,
    DEFAULT_RETRY_INTERVAL,
    DONTWAIT,
    MAX_DATAGRAM_BUFSIZE,
    RECVFROM,
    RECVMSG_FLAGS,
)
from ._datagram import SocketDatagramTransport
from ._ownership import SocketOwner, check_socket

#: What a send takes as a destination: ``(host, port)`` (IPv4),
#: ``(host, port[, flowinfo[, scope_id]])`` (IPv6), a path or abstract
#: name (``AF_UNIX``), or whatever another family's ``sendto`` takes.
Address: TypeAlias = tuple[Any, ...] | str | bytes | os.PathLike[str] | os.PathLike[bytes]


#: The most numeric hosts an IP endpoint remembers as checked ("Addresses").
_KNOWN_HOSTS_MAX: Final[int] = 1024


@final
@refuse_subclasses
class SocketDatagramEndpoint(SocketOwner):
    """Packets to and from any peer, over one unconnected ``SOCK_DGRAM`` socket.

    UDP over IPv4 or IPv6, and ``AF_UNIX`` datagram sockets. Bind the
    socket first to receive (a UDP socket that sends before it is bound
    gets an ephemeral port). :meth:`recv_from` returns each packet with
    its sender's address, and :meth:`send_to` sends to an address, such as
    one that :meth:`recv_from` returned. The endpoint owns the socket as
    :class:`SocketDatagramTransport` does: :meth:`close` closes it (a call
    blocked in another thread then ends with ``OSError(EBADF)`` within
    ``retry_interval``), and an open endpoint that is garbage-collected
    emits :exc:`ResourceWarning` and closes it. The socket file of an
    ``AF_UNIX`` endpoint stays where it is: remove it yourself.

    IP addresses must be numeric (``"127.0.0.1"``, ``"::1"``): a host
    name would make Python resolve it inside the send, beyond any timeout.
    On an ``AF_INET6`` socket an IPv4 peer is written ``"::ffff:a.b.c.d"``,
    and a scope goes in the fourth item, ``(host, port, 0, scope_id)``.

    Parameters:
        sock: an unconnected ``SOCK_DGRAM`` socket, bound to receive.
        retry_interval: the longest single wait, in seconds, before an
            operation is tried again (so that a close from another thread is
            noticed); :data:`math.inf` disables it.
        max_datagram_size: the most bytes read per packet; longer packets
            are cut to this size, as ``recvfrom(2)`` does.
        selector_factory: when given, makes the selector of every wait.

    Raises:
        TypeError: ``sock`` is not a :class:`socket.socket`, or is an
            :class:`ssl.SSLSocket`; ``max_datagram_size`` is not an int.
        ValueError: ``sock`` is not a ``SOCK_DGRAM`` socket, or is
            connected (use :class:`SocketDatagramTransport`);
            ``max_datagram_size`` or ``retry_interval`` is not positive.
        OSError: ``sock`` is closed.
    """

    __slots__ = ("_ancillary", "_known_hosts", "_max_datagram_size", "_unix")

    def __init__(
        self,
        sock: socket.socket,
        retry_interval: float,
        *,
        max_datagram_size: int = MAX_DATAGRAM_BUFSIZE,
        selector_factory: Callable[[], selectors.BaseSelector] | None = None,
    ) -> None:
        if not isinstance(max_datagram_size, int):
            raise TypeError(f"max_datagram_size must be an int, not {type(max_datagram_size).__name__}")
        if max_datagram_size <= 0:
            raise ValueError(f"max_datagram_size must be positive, got {max_datagram_size}")
        check_socket(sock, socket.SOCK_DGRAM)
        _check_unconnected(sock)
        super().__init__(sock, socket.SOCK_DGRAM, retry_interval, selector_factory)
        family = sock.family
        self._max_datagram_size = max_datagram_size
        self._ancillary: bool = family in ANCILLARY_DATAGRAM_FAMILIES
        self._unix: bool = family == socket.AF_UNIX
        # The numeric hosts checked already; None when the family is not IP.
        self._known_hosts: set[str] | None = set() if family in (socket.AF_INET, socket.AF_INET6) else None

    # ------------------------------------------------------------ receive --

    def recv_from(self, timeout: float) -> tuple[bytes, Any]:
        """Read the next packet and its sender's address, waiting at most ``timeout`` seconds.

        Raises:
            TypeError: ``timeout`` is not a number.
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: no packet arrived in time.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The packet (cut to ``max_datagram_size`` bytes) and the address
            it came from, as :meth:`socket.socket.recvfrom` gives it:
            ``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)``
            for IPv6, a ``str`` path or ``bytes`` abstract name for
            ``AF_UNIX`` (:data:`None` when the sender's socket is not
            bound: it cannot be answered).
        """
        if timeout == self._blocking_timeout:
            try:
                return self._sock.recvfrom(self._max_datagram_size)  # the wait is in the kernel
            except OSError as exc:  # EAGAIN: retry_interval passed
                return self._after_blocking_receive(exc, RECVFROM, (self._max_datagram_size, DONTWAIT))
        if timeout is not None and timeout > 0:
            waits_first = self._read_waits_first
            if waits_first < 0:
                try:
                    return self._sock.recvfrom(self._max_datagram_size, DONTWAIT)
                except BlockingIOError:
                    return self._receive_after_would_block(
                        self._sock.fileno(), RECVFROM, (self._max_datagram_size, DONTWAIT), timeout
                    )
            if waits_first > 0:
                self._read_waits_first = waits_first - 1
                if self._timed_waits and timeout >= self._retry_interval:
                    # The timed wait in C, inline: see "Timed waits in C" in ._ownership.
                    users, deadline = self._descriptor_users, monotonic() + timeout
                    try:
                        users.append(None)  # inside: see "Closing from another thread"
                        timed = self._timed_sock or self._timed_wait_socket()
                        result = timed.recvfrom(self._max_datagram_size, DONTWAIT)  # poll, then receive, in C
                    except TimeoutError as exc:
                        return self._after_timed_wait(exc, RECVFROM, (self._max_datagram_size, DONTWAIT), deadline)
                    finally:
                        users.pop()
                        if self._pending_close is not None:
                            self._release_descriptor()
                    return result
                return self._receive_waiting_first(
                    self._sock.fileno(), RECVFROM, (self._max_datagram_size, DONTWAIT), timeout
                )
        return self._receive(self._sock.fileno(), RECVFROM, (self._max_datagram_size, DONTWAIT), timeout)

    def recv_noblock_from(self) -> tuple[bytes, Any]:
        """Read the next packet and its sender's address without blocking.

        Raises:
            WouldBlockOnRead: no packet yet.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            As :meth:`recv_from`.
        """
        return self._receive_noblock(RECVFROM, (self._max_datagram_size, DONTWAIT))

    def recv_noblock_from_with_ancillary(self, ancillary_bufsize: int) -> tuple[bytes, ReceivedAncillaryData, Any]:
        """Read the next packet, its ancillary data and its sender's address without blocking.

        ``AF_UNIX``, ``AF_INET`` and ``AF_INET6`` sockets. Size
        ``ancillary_bufsize`` with :func:`ancillary_space_for_fds`,
        :func:`ancillary_space_for_credentials` or
        :func:`ancillary_space_for_ip_info`. Enable what you want to
        receive through ``extra(SocketAttribute.socket).setsockopt(...)``,
        for instance ``IP_PKTINFO`` / ``IPV6_RECVPKTINFO`` to learn which
        local address each packet was sent to (:func:`read_packet_info`).
        Received descriptors are close-on-exec and yours to close.

        Raises:
            TypeError: ``ancillary_bufsize`` is not an int.
            ValueError: ``ancillary_bufsize`` is negative.
            UnsupportedOperation: another address family.
            WouldBlockOnRead: no packet yet.
            OSError: ``EMSGSIZE`` when the control data was cut (every
                descriptor that arrived is closed first, and the packet is
                lost); ``EBADF`` once closed; any other socket error.

        Returns:
            The packet (cut to ``max_datagram_size`` bytes), the control
            messages as ``(level, type, data)`` tuples, and the address as
            :meth:`recv_from` gives it.
        """
        check_ancillary_bufsize(ancillary_bufsize)
        self._check_ancillary()
        sock = self._sock
        try:
            data, ancillary_data, msg_flags, address = sock.recvmsg(
                self._max_datagram_size, ancillary_bufsize, RECVMSG_FLAGS
            )
        except BlockingIOError:
            raise WouldBlockOnRead(sock.fileno()) from None
        raise_on_truncated_control(ancillary_data, msg_flags)
        return data, ancillary_data, address

    def recv_from_with_ancillary(
        self, ancillary_bufsize: int, timeout: float
    ) -> tuple[bytes, ReceivedAncillaryData, Any]:
        """Retry :meth:`recv_noblock_from_with_ancillary` within ``timeout``.

        Raises:
            TypeError: ``ancillary_bufsize`` or ``timeout`` is not a number.
            ValueError: ``ancillary_bufsize`` is negative, or ``timeout`` is
                negative or NaN.
            UnsupportedOperation: another address family.
            TimeoutError: no packet arrived in time.
            OSError: ``EMSGSIZE`` when the control data was cut (every
                descriptor that arrived is closed first); ``EBADF`` once
                closed; any other socket error.
        """
        return self._retry(partial(self.recv_noblock_from_with_ancillary, ancillary_bufsize), timeout)[0]

    # --------------------------------------------------------------- send --

    def send_to(self, data: Buffer, address: Address, timeout: float) -> None:
        """Send ``data`` as one packet to ``address``, waiting at most ``timeout`` seconds for room.

        Raises:
            TypeError: ``timeout`` is not a number; ``data`` is not a
                C-contiguous buffer; ``address`` is not of the family's
                form (see the class), or is :data:`None` (an unbound
                ``AF_UNIX`` sender).
            ValueError: ``timeout`` is negative or NaN; an IP host is not a
                numeric address of the socket's family; a port or flow
                label out of range.
            TimeoutError: the packet could not be sent in time.
            OSError: ``EMSGSIZE`` when ``data`` is too big for one packet
                (nothing is sent); ``ENAMETOOLONG`` for an ``AF_UNIX``
                path too long; ``EBADF`` once closed; any other socket
                error (``FileNotFoundError`` for an ``AF_UNIX`` path
                where no socket is, ``ConnectionRefusedError`` for one
                where none listens).

        Every check of the arguments comes before any I/O.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        hosts = self._known_hosts
        if hosts is not None:
            if not (type(address) is tuple and address and type(address[0]) is str and address[0] in hosts):
                _check_ip_address(address, self._sock.family, hosts)
        elif type(address) is not str:
            address = self._non_ip_address(address)
        try:
            self._sock.sendto(data, DONTWAIT, address)  # type: ignore[arg-type]  # checked just above
            return
        except BlockingIOError:
            pass
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        except (OverflowError, OSError) as exc:
            raise _address_error(exc) from None
        self._after_would_block(self._sock.fileno(), partial(self._send_to_checked, data, address), True, timeout)

    def send_noblock_to(self, data: Buffer, address: Address) -> None:
        """Send ``data`` as one packet to ``address`` without blocking.

        Raises:
            TypeError, ValueError: as for :meth:`send_to`, before any I/O.
            WouldBlockOnWrite: no room in the send buffer.
            OSError: as for :meth:`send_to`.
        """
        self._send_to_checked(data, self._checked_address(address))

    def send_noblock_to_with_ancillary(self, data: Buffer, ancillary_data: Any, address: Address) -> None:
        """Send one packet with ``ancillary_data`` to ``address`` without blocking.

        ``ancillary_data`` is an iterable of ``(level, type, data)`` tuples,
        e.g. from :func:`fds_message`, or from :func:`packet_info_message`
        to answer from the local address a request was sent to.

        Raises:
            TypeError, ValueError: as for :meth:`send_to`, before any I/O.
            UnsupportedOperation: another address family.
            WouldBlockOnWrite: no room in the send buffer.
            OSError: as for :meth:`send_to` (``EINVAL`` for a control
                message the system refuses).
        """
        self._check_ancillary()
        self._send_with_ancillary_checked(data, ancillary_data, self._checked_address(address))

    def send_to_with_ancillary(self, data: Buffer, ancillary_data: Any, address: Address, timeout: float) -> None:
        """Retry :meth:`send_noblock_to_with_ancillary` within ``timeout``.

        A one-shot iterator of ancillary items is read into a list first, so
        that a retry sends the same thing.

        Raises:
            TypeError, ValueError: as for :meth:`send_to`, before any I/O.
            UnsupportedOperation: another address family.
            TimeoutError: the packet could not be sent in time.
            OSError: as for :meth:`send_to` (``EINVAL`` for a control
                message the system refuses).
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        self._check_ancillary()
        target = self._checked_address(address)
        if isinstance(ancillary_data, Iterator):
            ancillary_data = list(ancillary_data)
        self._retry(partial(self._send_with_ancillary_checked, data, ancillary_data, target), timeout)

    # -------------------------------------------------------------- helps --

    def _send_to_checked(self, data: Buffer, address: Any) -> None:
        """:meth:`send_noblock_to` once ``address`` is checked."""
        sock = self._sock
        try:
            sock.sendto(data, DONTWAIT, address)
        except BlockingIOError:
            raise WouldBlockOnWrite(sock.fileno()) from None
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        except (OverflowError, OSError) as exc:
            raise _address_error(exc) from None

    def _send_with_ancillary_checked(self, data: Buffer, ancillary_data: Any, address: Any) -> None:
        """:meth:`send_noblock_to_with_ancillary` once ``address`` is checked."""
        sock = self._sock
        try:
            sent = sock.sendmsg([data], ancillary_data, DONTWAIT, address)
        except BlockingIOError:
            raise WouldBlockOnWrite(sock.fileno()) from None
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        except (OverflowError, OSError) as exc:
            raise _address_error(exc) from None
        if sent != memoryview(data).nbytes:  # pragma: no cover - datagrams go whole or not at all
            raise OSError(errno.EMSGSIZE, "The packet was not sent whole")

    def _checked_address(self, address: Address) -> Any:
        """``address`` as the send methods take it, checked ("Addresses" above).

        Raises:
            TypeError, ValueError: ``address`` is unusable.
        """
        hosts = self._known_hosts
        if hosts is not None:
            if not (type(address) is tuple and address and type(address[0]) is str and address[0] in hosts):
                _check_ip_address(address, self._sock.family, hosts)
            return address
        if type(address) is str:
            return address
        return self._non_ip_address(address)

    def _non_ip_address(self, address: object) -> Any:
        """An ``AF_UNIX`` address as ``sendto`` takes it; any other family's as it is.

        Raises:
            TypeError: an ``AF_UNIX`` address that is not a str, bytes or
                path-like object.
        """
        if not self._unix or isinstance(address, (str, bytes)):
            return address
        if isinstance(address, os.PathLike):
            return os.fspath(address)
        if address is None:
            raise TypeError("No address to send to: an unbound AF_UNIX sender cannot be answered")
        raise TypeError(f"An AF_UNIX address is a str, bytes or path-like object, not {type(address).__name__}")

    def _check_ancillary(self) -> None:
        if not self._ancillary:
            raise UnsupportedOperation("Ancillary data needs an AF_UNIX, AF_INET or AF_INET6 socket")


def _check_unconnected(sock: socket.socket) -> None:
    """Refuse a connected socket, before the endpoint changes anything.

    Raises:
        ValueError: ``sock`` is connected.
        OSError: ``sock`` is closed.
    """
    try:
        peer = sock.getpeername()
    except OSError:
        if sock.fileno() < 0:
            raise
        return  # not connected (or a family without peers)
    raise ValueError(f"The socket is connected (to {peer!r}): use SocketDatagramTransport for one peer")


def _check_ip_address(address: object, family: int, known_hosts: set[str]) -> None:
    """Check an IP destination whose host is not known yet; remember the host.

    The tuple's form, the host's type and that it is a numeric address of
    ``family`` (so that ``sendto`` resolves nothing); the port's type and
    range, for a message clearer than Python's.

    Raises:
        TypeError: not a tuple of the family's form, or a host that is not
            a str, or a port that is not an int.
        ValueError: a host that is not a numeric address of ``family`` (or
            that carries a ``%scope``), or a port out of range.
    """
    if family == socket.AF_INET:
        if not isinstance(address, tuple) or len(address) != 2:
            raise TypeError(f"An AF_INET address is a (host, port) tuple, not {address!r}")
        version = "IPv4"
    else:
        if not isinstance(address, tuple) or not 2 <= len(address) <= 4:
            raise TypeError(f"An AF_INET6 address is a (host, port[, flowinfo[, scope_id]]) tuple, not {address!r}")
        version = "IPv6"
    host, port = address[0], address[1]
    if not isinstance(host, str):
        raise TypeError(f"The host must be a str, not {type(host).__name__}")
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"The port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"The port must be 0 to 65535, not {port}")
    if "%" in host:
        raise ValueError(f"{host!r}: give the scope as the fourth item, (host, port, 0, scope_id)")
    try:
        socket.inet_pton(family, host)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        hint = " (an IPv4 peer of an IPv6 socket is '::ffff:a.b.c.d')" if family == socket.AF_INET6 else ""
        raise ValueError(
            f"{host!r} is not an {version} address{hint}: resolve names first (socket.getaddrinfo), "
            "so that no send waits on a resolver"
        ) from None
    if type(host) is str:
        if len(known_hosts) >= _KNOWN_HOSTS_MAX:
            known_hosts.clear()
        known_hosts.add(host)


def _address_error(exc: OverflowError | OSError) -> Exception:
    """The error to raise for what a send raised, once past its would-block.

    Python's address parser raises :exc:`OverflowError` for a port or flow
    label out of range (a :exc:`ValueError` here), and an :exc:`OSError`
    without ``errno`` for an ``AF_UNIX`` path too long (``ENAMETOOLONG``
    here); a system call's error is itself.
    """
    if isinstance(exc, OverflowError):
        return ValueError(str(exc))
    if exc.errno is None:
        return OSError(errno.ENAMETOOLONG, str(exc))
    return exc


# ---------------------------------------------------------------- open_udp --


@overload
def open_udp(
    *,
    local_address: tuple[str, int],
    remote_address: None = None,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    reuse_port: bool = False,
    timeout: float = math.inf,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
    max_datagram_size: int = MAX_DATAGRAM_BUFSIZE,
) -> SocketDatagramEndpoint: ...


@overload
def open_udp(
    *,
    local_address: tuple[str, int] | None = None,
    remote_address: tuple[str, int],
    family: socket.AddressFamily = socket.AF_UNSPEC,
    reuse_port: bool = False,
    timeout: float = math.inf,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
    max_datagram_size: int = MAX_DATAGRAM_BUFSIZE,
) -> SocketDatagramTransport: ...


def open_udp(
    *,
    local_address: tuple[str, int] | None = None,
    remote_address: tuple[str, int] | None = None,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    reuse_port: bool = False,
    timeout: float = math.inf,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
    max_datagram_size: int = MAX_DATAGRAM_BUFSIZE,
) -> SocketDatagramEndpoint | SocketDatagramTransport:
    """Open a UDP socket: an endpoint for any peer, or a transport connected to one.

    With ``remote_address``, a :class:`SocketDatagramTransport` connected
    to it (bound to ``local_address`` first when given). Without, a
    :class:`SocketDatagramEndpoint` bound to ``local_address``, which is
    then required: nothing is bound to a wildcard address unless you say
    so (``("0.0.0.0", 0)``, ``("::", 0)``, or ``("", port)`` for the
    system's first passive address).

    Names are resolved with :func:`socket.getaddrinfo` (in a helper thread
    that ``timeout`` bounds); numeric addresses are used as they are. The
    resolved addresses are tried in order, paired by family when both are
    given, and the first socket that binds (and connects) wins. A UDP
    ``connect`` sends nothing, so nothing waits but the resolution.

    Parameters:
        local_address: ``(host, port)`` to bind to; port ``0`` for any.
        remote_address: ``(host, port)`` to connect to.
        family: :data:`socket.AF_INET` or :data:`socket.AF_INET6` to use
            only that family; by default either.
        reuse_port: set ``SO_REUSEPORT`` before binding, so that several
            sockets (of this user) may bind the same port and share its
            packets.
        timeout: seconds for resolving names; :data:`math.inf` (the
            default) to wait as long as the resolver does.
        retry_interval, max_datagram_size: given to the transport or
            endpoint.

    Raises:
        TypeError: an address that is not a ``(str, int)`` tuple; neither
            address given.
        ValueError: a port out of range; ``family`` other than
            ``AF_UNSPEC``, ``AF_INET``, ``AF_INET6``; a negative or NaN
            ``timeout``; ``retry_interval`` or ``max_datagram_size`` not
            positive; ``reuse_port`` where the system lacks
            ``SO_REUSEPORT``.
        socket.gaierror: a name does not resolve.
        TimeoutError: the resolution did not finish in time.
        OSError: every address failed (``EADDRINUSE``, ...): the message
            names each and its error, the ``errno`` is theirs when they all
            agree, and ``__cause__`` is an :exc:`ExceptionGroup` of them;
            ``EAFNOSUPPORT`` when no local address has the family of a
            remote one.

    Returns:
        A transport or an endpoint owning the socket.
    """
    if family not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
        raise ValueError(f"family must be AF_UNSPEC, AF_INET or AF_INET6, not {family!r}")
    local = _split_address(local_address, "local_address")
    remote = _split_address(remote_address, "remote_address")
    if local is None and remote is None:
        raise TypeError("open_udp needs local_address (for an endpoint), remote_address (for a transport), or both")
    if not retry_interval > 0:
        raise ValueError(f"retry_interval must be positive, not {retry_interval!r}")
    if not isinstance(max_datagram_size, int):
        raise TypeError(f"max_datagram_size must be an int, not {type(max_datagram_size).__name__}")
    if max_datagram_size <= 0:
        raise ValueError(f"max_datagram_size must be positive, not {max_datagram_size}")
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port needs SO_REUSEPORT, which this system lacks")
    deadline = deadline_after(timeout)
    local_infos = None if local is None else _resolve_local(*local, family, deadline)
    remote_infos = None if remote is None else _resolve(*remote, family, deadline)
    sock = _first_bound(local_infos, remote_infos, reuse_port, local, remote)
    try:
        if remote is not None:
            return SocketDatagramTransport(sock, retry_interval, max_datagram_size=max_datagram_size)
        return SocketDatagramEndpoint(sock, retry_interval, max_datagram_size=max_datagram_size)
    except BaseException:
        sock.close()
        raise


def _split_address(address: object, name: str) -> tuple[str, int] | None:
    """``(host, port)`` checked, or None.

    Raises:
        TypeError: not a ``(str, int)`` tuple.
        ValueError: a port out of range.
    """
    if address is None:
        return None
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError(f"{name} must be a (host, port) tuple, not {address!r}")
    host, port = address
    _check_host_port(host, port)
    return host, port


def _resolve_local(host: str, port: int, family: socket.AddressFamily, deadline: float) -> list[AddressInfo]:
    """The addresses to bind to; ``""`` means the passive (wildcard) ones, in the resolver's order."""
    if host:
        return _resolve(host, port, family, deadline)
    return list(socket.getaddrinfo(None, port, family, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE))


def _first_bound(
    local_infos: list[AddressInfo] | None,
    remote_infos: list[AddressInfo] | None,
    reuse_port: bool,
    local: tuple[str, int] | None,
    remote: tuple[str, int] | None,
) -> socket.socket:
    """The first UDP socket that binds to a local address and connects to a remote one.

    Each attempt's socket is closed when it fails.

    Raises:
        OSError: every attempt failed; ``EAFNOSUPPORT`` when no pair has a
            common family.
    """
    attempts: list[tuple[int, Any, Any]] = []
    if remote_infos is None:
        assert local_infos is not None
        attempts = [(info[0], info[4], None) for info in local_infos]
    else:
        for remote_info in remote_infos:
            if local_infos is None:
                attempts.append((remote_info[0], None, remote_info[4]))
            else:
                attempts.extend(
                    (remote_info[0], local_info[4], remote_info[4])
                    for local_info in local_infos
                    if local_info[0] == remote_info[0]
                )
    target = " to ".join(f"{pair[0]}:{pair[1]}" for pair in (local, remote) if pair is not None)
    if not attempts:
        raise OSError(errno.EAFNOSUPPORT, f"no local address of the family of a remote one for {target}")
    failures: list[tuple[Any, OSError]] = []
    for address_family, bind_to, connect_to in attempts:
        sock = socket.socket(address_family, socket.SOCK_DGRAM)
        where = bind_to
        try:
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if bind_to is not None:
                sock.bind(bind_to)
            where = connect_to
            if connect_to is not None:
                sock.connect(connect_to)
        except OSError as exc:
            sock.close()
            failures.append((where, exc))
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    described = "; ".join(f"{address!r}: {exc.strerror or exc}" for address, exc in failures)
    codes = {exc.errno for _, exc in failures}
    code = codes.pop() if len(codes) == 1 else None
    message = f"could not open a UDP socket for {target} ({described})"
    error = OSError(code, message) if code is not None else OSError(message)
    error.__cause__ = ExceptionGroup(f"UDP sockets for {target}", [exc for _, exc in failures])
    raise error
