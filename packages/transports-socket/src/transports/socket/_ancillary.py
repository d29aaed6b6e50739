"""Control messages of Unix domain sockets: file descriptors and credentials.

Ancillary data goes in and out of the transports in the format of
:meth:`socket.socket.sendmsg` / :meth:`socket.socket.recvmsg`: a list of
``(level, type, data)`` tuples. The helpers here build and read the two
kinds Unix domain sockets carry: ``SCM_RIGHTS`` (open file descriptors)
and ``SCM_CREDENTIALS`` (the sender's process, user and group ids, Linux).

Sizes. A receive buffer for control data must be sized with
:func:`socket.CMSG_SPACE` (header, data and padding), a sent message
carries :func:`socket.CMSG_LEN` bytes; ``(level, type, data)`` tuples hide
the latter, and :func:`ancillary_space_for_fds` /
:func:`ancillary_space_for_credentials` compute the former.

A cut control message (MSG_CTRUNC)
----------------------------------
When the receive buffer is too small, the kernel keeps what fits and sets
``MSG_CTRUNC``. For ``SCM_RIGHTS`` the descriptors that fit are already
installed in this process: dropping the message would leak them. The
transports therefore check the flag on every receive
(:func:`raise_on_truncated_control`): every descriptor that did arrive is
closed, and :exc:`OSError` with :data:`errno.EMSGSIZE` is raised. The data
bytes received by that same call are dropped with it; on a stream the
connection is then out of step and should be closed. This is a protocol
error (the peer sent more than agreed), so failing loudly beats handing
back a partial message.

Received descriptors are close-on-exec (the transports pass
``MSG_CMSG_CLOEXEC`` where the system has it), like every descriptor
Python opens (:pep:`446`).
"""

from __future__ import annotations

__all__ = [
    "Credentials",
    "ReceivedAncillaryData",
    "ancillary_space_for_credentials",
    "ancillary_space_for_fds",
    "credentials_message",
    "fds_message",
    "raise_on_truncated_control",
    "read_credentials",
    "read_fds",
]

import array
import errno
import os
import socket
import struct
from collections.abc import Iterable
from typing import Final, NamedTuple, TypeAlias

from typing_extensions import Buffer

#: Control messages as ``recvmsg`` returns them.
ReceivedAncillaryData: TypeAlias = list[tuple[int, int, bytes]]

_SCM_RIGHTS: Final[int] = getattr(socket, "SCM_RIGHTS", -1)
_SCM_CREDENTIALS: Final[int] = getattr(socket, "SCM_CREDENTIALS", -1)
_MSG_CTRUNC: Final[int] = getattr(socket, "MSG_CTRUNC", 0)
_INT_SIZE: Final[int] = array.array("i").itemsize
# struct ucred: pid_t pid; uid_t uid; gid_t gid.
_UCRED: Final = struct.Struct("=iII")


class Credentials(NamedTuple):
    """The process, user and group ids of an ``SCM_CREDENTIALS`` message."""

    pid: int
    """The sender's process id."""

    uid: int
    """The sender's user id."""

    gid: int
    """The sender's group id."""


def fds_message(fds: Iterable[int]) -> tuple[int, int, bytes]:
    """Build an ``SCM_RIGHTS`` control message passing ``fds``.

    The receiving process gets new descriptors of the same open files; the
    sender's stay open (close them when done).

    Parameters:
        fds: open file descriptors.

    Raises:
        TypeError: an item is not an int.
        OverflowError: an item does not fit a C int.

    Returns:
        ``(SOL_SOCKET, SCM_RIGHTS, data)`` for ``sendmsg``.
    """
    return socket.SOL_SOCKET, _SCM_RIGHTS, array.array("i", fds).tobytes()


def read_fds(ancillary_data: Iterable[tuple[int, int, Buffer]]) -> list[int]:
    """Return the descriptors of every ``SCM_RIGHTS`` message, in order.

    Other messages are skipped. The descriptors are new and open in this
    process: close them when done (and close them all, even on an error).

    Parameters:
        ancillary_data: ``(level, type, data)`` tuples from a receive.
    """
    fds: list[int] = []
    for level, kind, data in ancillary_data:
        if level == socket.SOL_SOCKET and kind == _SCM_RIGHTS:
            fds.extend(_unpack_ints(data))
    return fds


def credentials_message(pid: int, uid: int, gid: int) -> tuple[int, int, bytes]:
    """Build an ``SCM_CREDENTIALS`` control message (Linux).

    A process may only send its own ids (root may send any); the receiver
    must have enabled ``SO_PASSCRED``. With ``SO_PASSCRED`` on the receiving
    socket, Linux attaches the sender's credentials to every message even
    when the sender adds none.

    Raises:
        struct.error: an id does not fit its C type.

    Returns:
        ``(SOL_SOCKET, SCM_CREDENTIALS, data)`` for ``sendmsg``.
    """
    return socket.SOL_SOCKET, _SCM_CREDENTIALS, _UCRED.pack(pid, uid, gid)


def read_credentials(ancillary_data: Iterable[tuple[int, int, Buffer]]) -> Credentials | None:
    """Return the first ``SCM_CREDENTIALS`` message, or :data:`None`.

    Parameters:
        ancillary_data: ``(level, type, data)`` tuples from a receive.

    Raises:
        ValueError: a credentials message has the wrong size.
    """
    for level, kind, data in ancillary_data:
        if level == socket.SOL_SOCKET and kind == _SCM_CREDENTIALS:
            view = memoryview(data).cast("B")
            if len(view) != _UCRED.size:
                raise ValueError(f"SCM_CREDENTIALS data of {len(view)} bytes, expected {_UCRED.size}")
            return Credentials._make(_UCRED.unpack(view))
    return None


def ancillary_space_for_fds(count: int) -> int:
    """The receive-buffer size for one ``SCM_RIGHTS`` message of ``count`` descriptors.

    That is ``socket.CMSG_SPACE(count * sizeof(int))``. Add the sizes of
    other messages you expect.

    Raises:
        ValueError: ``count`` is negative.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    return socket.CMSG_SPACE(count * _INT_SIZE)


def ancillary_space_for_credentials() -> int:
    """The receive-buffer size for one ``SCM_CREDENTIALS`` message."""
    return socket.CMSG_SPACE(_UCRED.size)


def raise_on_truncated_control(ancillary_data: ReceivedAncillaryData, msg_flags: int) -> None:
    """Enforce the ``MSG_CTRUNC`` rule of this module (see its docstring).

    Does nothing unless ``msg_flags`` has ``MSG_CTRUNC``. Then closes every
    descriptor of every ``SCM_RIGHTS`` message in ``ancillary_data`` (even
    after a close fails) and raises.

    Raises:
        OSError: ``EMSGSIZE``, when the control data was cut.
    """
    if not msg_flags & _MSG_CTRUNC:
        return
    fds = read_fds(ancillary_data)
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    raise OSError(
        errno.EMSGSIZE,
        f"The ancillary data was cut (MSG_CTRUNC): the buffer was too small; "
        f"{len(fds)} received file descriptor(s) were closed",
    )


def _unpack_ints(data: Buffer) -> list[int]:
    view = memoryview(data).cast("B")
    # A cut message may end in part of an int; the kernel installs only whole ones.
    whole = len(view) - len(view) % _INT_SIZE
    fds = array.array("i")
    fds.frombytes(view[:whole])
    return fds.tolist()
