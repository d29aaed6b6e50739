"""Constants of the socket layer, and socket-option values Python lacks.

Python's :mod:`socket` module does not export every Linux constant the
ancillary-data helpers need: ``IP_PKTINFO`` only arrived in 3.12, and no
version has ``SO_TIMESTAMPNS``. This module is the one place where such
fallbacks live. Each name takes the :mod:`socket` value when there is one,
the Linux value on Linux otherwise, and ``-1`` elsewhere (a value no option
has, so ``setsockopt`` refuses it and no control message matches it).
"""

from __future__ import annotations

__all__ = [
    "ANCILLARY_DATAGRAM_FAMILIES",
    "DEFAULT_RETRY_INTERVAL",
    "DONTWAIT",
    "IP_PKTINFO",
    "MAX_DATAGRAM_BUFSIZE",
    "RECV",
    "RECVFROM",
    "RECVMSG_FLAGS",
    "RECV_INTO",
    "SCM_TIMESTAMPNS",
    "SO_TIMESTAMPNS",
]

import platform
import socket
import sys
from typing import Any, Final

#: The ``retry_interval`` of the transports that the opening functions and
#: the listeners make, unless told otherwise.
DEFAULT_RETRY_INTERVAL: Final = 1.0

#: The default most bytes a datagram transport reads per packet: more than
#: any UDP payload (65,507 bytes over IPv4), so nothing is cut by default.
MAX_DATAGRAM_BUFSIZE: Final[int] = 65536

_LINUX: Final = sys.platform == "linux"

#: Flags of a system call that must not block, whatever the descriptor's mode.
DONTWAIT: Final[int] = getattr(socket, "MSG_DONTWAIT", 0)

#: Flags of every ``recvmsg``: not blocking, and received descriptors close-on-exec.
RECVMSG_FLAGS: Final[int] = getattr(socket, "MSG_CMSG_CLOEXEC", 0) | DONTWAIT

#: The datagram families whose transports take and give ancillary data.
ANCILLARY_DATAGRAM_FAMILIES: Final = frozenset({socket.AF_UNIX, socket.AF_INET, socket.AF_INET6})


# The receive calls that the transports hand to the receive engine
# (transports.selector), as ``call(sock, *args)``. Functions rather than the
# methods of socket.socket, so that a subclass of socket.socket that a
# transport owns has its own methods called on every path, as on the
# paths that call ``sock.recv`` directly.


def RECV(sock: socket.socket, *args: Any) -> bytes:
    return sock.recv(*args)


def RECV_INTO(sock: socket.socket, *args: Any) -> int:
    return sock.recv_into(*args)


def RECVFROM(sock: socket.socket, *args: Any) -> tuple[bytes, Any]:
    return sock.recvfrom(*args)


def _linux_timestamping_option() -> int:
    # asm-generic value 35; a few architectures number their socket options
    # differently (arch/*/include/uapi/asm/socket.h).
    machine = platform.machine().lower()
    if machine.startswith("parisc"):
        return 0x4013
    if machine.startswith("sparc"):
        return 0x0021
    return 35


#: ``setsockopt(IPPROTO_IP, IP_PKTINFO, 1)`` asks for the destination address
#: and interface of every received IPv4 packet (8 on Linux).
IP_PKTINFO: Final[int] = getattr(socket, "IP_PKTINFO", 8 if _LINUX else -1)

#: ``setsockopt(SOL_SOCKET, SO_TIMESTAMPNS, 1)`` asks for the kernel's
#: receive time of every packet, with nanosecond resolution (Linux only).
SO_TIMESTAMPNS: Final[int] = getattr(socket, "SO_TIMESTAMPNS", _linux_timestamping_option() if _LINUX else -1)

#: The control-message type carrying that time (``struct timespec``).
SCM_TIMESTAMPNS: Final[int] = getattr(socket, "SCM_TIMESTAMPNS", SO_TIMESTAMPNS)
