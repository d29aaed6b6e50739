"""SocketDatagramTransport: a datagram transport over a ``SOCK_DGRAM`` socket.

Receiving a packet is one ``socket.recv(max_datagram_size)``: CPython
allocates a ``bytes`` of that size (untouched memory, not zeroed) and
shrinks it to the packet's length with ``realloc``, in place as a rule, so
a small packet does not cost 64 KiB of work. Measured against receiving into a reusable buffer and
slicing out the packet, the direct call is faster for every packet size
(see docs/socket.md), and it needs no shared buffer, so concurrent
receivers cannot trample each other.

As for streams, the blocking methods call the socket first and fall back
to the selector machinery only when it would block, and receives switch
to waiting first after a would-block; a receive that waits first with a
finite timeout of at least ``retry_interval`` (and no
``selector_factory``) polls and receives in C (see "Timed waits in C" in
:mod:`._ownership`), and with an infinite timeout, ``recv`` waits in its
system call instead.
"""

from __future__ import annotations

__all__ = ["SocketDatagramTransport"]

import errno
import selectors
import socket
from collections.abc import Callable
from functools import partial
from time import monotonic
from typing import Any, final

from typing_extensions import Buffer

from transports.abc import UnsupportedOperation, validate_timeout
from transports.abc._family import buffer_type_error, check_ancillary_bufsize, refuse_subclasses
from transports.selector import SelectorDatagramTransport, WouldBlockOnRead, WouldBlockOnWrite

from ._ancillary import ReceivedAncillaryData, raise_on_truncated_control
from ._constants import ANCILLARY_DATAGRAM_FAMILIES, DONTWAIT, MAX_DATAGRAM_BUFSIZE, RECV, RECVMSG_FLAGS
from ._ownership import SocketOwner
from ._raw import family_of


@final
@refuse_subclasses
class SocketDatagramTransport(SocketOwner, SelectorDatagramTransport):
    """A datagram transport over a ``SOCK_DGRAM`` socket.

    UDP over IPv4 or IPv6, and ``AF_UNIX`` datagram sockets. :meth:`send`
    needs a connected socket; :meth:`recv` reads whatever packet comes
    next (from the connected peer only, once connected). The transport
    owns the socket: :meth:`close` closes it, and an open transport that
    is garbage-collected emits :exc:`ResourceWarning` and closes it. On
    Linux the descriptor stays in blocking mode (see
    :class:`SocketStreamTransport`), with ``SO_RCVTIMEO`` and
    ``SO_SNDTIMEO`` set to ``retry_interval``: a close does not wake a
    blocked datagram receive, so it tries again that often.

    Ancillary data goes with ``recv_with_ancillary`` / ``send_with_ancillary``
    on ``AF_UNIX`` sockets (file descriptors, credentials) and on UDP
    sockets (packet info, TOS / traffic class, receive timestamps: see
    :func:`read_packet_info` and its siblings).

    Parameters:
        sock: a ``SOCK_DGRAM`` socket, connected to send.
        retry_interval: the longest single wait, in seconds, before an
            operation is tried again (so that a close from another thread is
            noticed); :data:`math.inf` disables it.
        max_datagram_size: the most bytes read per packet; longer packets
            are cut to this size, as ``recv(2)`` does.
        selector_factory: when given, makes the selector of every wait.

    Raises:
        TypeError: ``sock`` is not a :class:`socket.socket`, or is an
            :class:`ssl.SSLSocket`.
        ValueError: ``sock`` is not a ``SOCK_DGRAM`` socket,
            ``max_datagram_size`` is not positive, or ``retry_interval`` is
            not positive.
        OSError: ``sock`` is closed.
    """

    __slots__ = ("_ancillary", "_max_datagram_size")

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
        super().__init__(sock, socket.SOCK_DGRAM, retry_interval, selector_factory)
        self._max_datagram_size = max_datagram_size
        self._ancillary: bool = family_of(sock) in ANCILLARY_DATAGRAM_FAMILIES

    def recv(self, timeout: float) -> bytes:
        """Read the next packet, waiting at most ``timeout`` seconds.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: no packet arrived in time.
            ConnectionRefusedError: an earlier packet of a connected UDP
                socket met a closed port.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The packet, cut to ``max_datagram_size`` bytes.
        """
        if timeout == self._blocking_timeout:
            try:
                return self._sock.recv(self._max_datagram_size)  # the wait is in the kernel
            except OSError as exc:  # EAGAIN: retry_interval passed
                return self._after_blocking_receive(exc, RECV, (self._max_datagram_size, DONTWAIT))
        if timeout is not None and timeout > 0:
            waits_first = self._read_waits_first
            if waits_first < 0:
                try:
                    return self._sock.recv(self._max_datagram_size, DONTWAIT)
                except BlockingIOError:
                    return self._receive_after_would_block(
                        self._sock.fileno(), RECV, (self._max_datagram_size, DONTWAIT), timeout
                    )
            if waits_first > 0:
                self._read_waits_first = waits_first - 1
                if self._timed_waits and timeout >= self._retry_interval:
                    # The timed wait in C, inline: see "Timed waits in C" in ._ownership.
                    users, deadline = self._descriptor_users, monotonic() + timeout
                    try:
                        users.append(None)  # inside: see "Closing from another thread"
                        timed = self._timed_sock or self._timed_wait_socket()
                        result = timed.recv(self._max_datagram_size, DONTWAIT)  # poll, then receive, in C
                    except TimeoutError as exc:
                        return self._after_timed_wait(exc, RECV, (self._max_datagram_size, DONTWAIT), deadline)
                    finally:
                        users.pop()
                        if self._pending_close is not None:
                            self._release_descriptor()
                    return result
                return self._receive_waiting_first(
                    self._sock.fileno(), RECV, (self._max_datagram_size, DONTWAIT), timeout
                )
        return self._receive(self._sock.fileno(), RECV, (self._max_datagram_size, DONTWAIT), timeout)

    def recv_noblock(self) -> bytes:
        """Read the next packet without blocking.

        Raises:
            WouldBlockOnRead: no packet yet.
            ConnectionRefusedError: an earlier packet of a connected UDP
                socket met a closed port.
            OSError: ``EBADF`` once closed; any other socket error.

        Returns:
            The packet, cut to ``max_datagram_size`` bytes.
        """
        return self._receive_noblock(RECV, (self._max_datagram_size, DONTWAIT))

    def recv_noblock_with_ancillary(self, ancillary_bufsize: int) -> tuple[bytes, ReceivedAncillaryData]:
        """Read the next packet and its ancillary data without blocking.

        ``AF_UNIX``, ``AF_INET`` and ``AF_INET6`` sockets. Size
        ``ancillary_bufsize`` with :func:`ancillary_space_for_fds`,
        :func:`ancillary_space_for_credentials` or
        :func:`ancillary_space_for_ip_info`. Received descriptors are
        close-on-exec and yours to close.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative.
            UnsupportedOperation: another address family.
            WouldBlockOnRead: no packet yet.
            OSError: ``EMSGSIZE`` when the control data was cut (every
                descriptor that arrived is closed first, and the packet is
                lost); ``EBADF`` once closed; any other socket error.

        Returns:
            The packet (cut to ``max_datagram_size`` bytes) and the control
            messages as ``(level, type, data)`` tuples.
        """
        check_ancillary_bufsize(ancillary_bufsize)
        self._check_ancillary()
        sock = self._sock
        try:
            data, ancillary_data, msg_flags, _ = sock.recvmsg(self._max_datagram_size, ancillary_bufsize, RECVMSG_FLAGS)
        except BlockingIOError:
            raise WouldBlockOnRead(sock.fileno()) from None
        raise_on_truncated_control(ancillary_data, msg_flags)
        return data, ancillary_data

    def recv_with_ancillary(self, ancillary_bufsize: int, timeout: float) -> tuple[bytes, ReceivedAncillaryData]:
        """Retry :meth:`recv_noblock_with_ancillary` within ``timeout``.

        Raises:
            ValueError: ``ancillary_bufsize`` is negative, or ``timeout`` is
                negative or NaN.
            UnsupportedOperation: another address family.
            TimeoutError: no packet arrived in time.
            OSError: ``EMSGSIZE`` when the control data was cut; ``EBADF``
                once closed; any other socket error.
        """
        return self._retry(partial(self.recv_noblock_with_ancillary, ancillary_bufsize), timeout)[0]

    def send(self, data: Buffer, timeout: float) -> None:
        """Send ``data`` as one packet, waiting at most ``timeout`` seconds for room.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TimeoutError: the packet could not be sent in time.
            OSError: ``EMSGSIZE`` when ``data`` is too big for one packet;
                ``EDESTADDRREQ`` when the socket is not connected; ``EBADF``
                once closed; any other socket error.
        """
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        try:
            self._sock.send(data, DONTWAIT)
            return
        except BlockingIOError:
            pass
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        self._after_would_block(self._sock.fileno(), partial(self.send_noblock, data), True, timeout)

    def send_noblock(self, data: Buffer) -> None:
        """Send ``data`` as one packet without blocking.

        Raises:
            WouldBlockOnWrite: no room in the send buffer.
            OSError: ``EMSGSIZE`` when ``data`` is too big for one packet;
                ``EDESTADDRREQ`` when the socket is not connected; ``EBADF``
                once closed; any other socket error.
        """
        sock = self._sock
        try:
            sock.send(data, DONTWAIT)
        except BlockingIOError:
            raise WouldBlockOnWrite(sock.fileno()) from None
        except BufferError as exc:
            raise buffer_type_error(exc) from None

    def send_noblock_with_ancillary(self, data: Buffer, ancillary_data: Any) -> None:
        """Send one packet with ``ancillary_data`` without blocking.

        ``ancillary_data`` is an iterable of ``(level, type, data)`` tuples,
        e.g. from :func:`fds_message` or :func:`packet_info_message`.

        Raises:
            UnsupportedOperation: another address family.
            WouldBlockOnWrite: no room in the send buffer.
            OSError: ``EMSGSIZE`` when ``data`` is too big for one packet;
                ``EBADF`` once closed; any other socket error (``EINVAL`` for
                a control message the system refuses).
        """
        self._check_ancillary()
        sock = self._sock
        try:
            sent = sock.sendmsg([data], ancillary_data, DONTWAIT)
        except BlockingIOError:
            raise WouldBlockOnWrite(sock.fileno()) from None
        except BufferError as exc:
            raise buffer_type_error(exc) from None
        if sent != memoryview(data).nbytes:  # pragma: no cover - datagrams go whole or not at all
            raise OSError(errno.EMSGSIZE, "The packet was not sent whole")

    def _check_ancillary(self) -> None:
        if not self._ancillary:
            raise UnsupportedOperation("Ancillary data needs an AF_UNIX, AF_INET or AF_INET6 socket")
