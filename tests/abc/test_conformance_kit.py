"""The conformance kit itself: a transport that keeps the contract passes, broken ones fail.

Runs with ``transports-abc`` alone, as a third party would: the transports
here are written against the interfaces only, over real socket pairs.
"""

from __future__ import annotations

import contextlib
import errno
import math
import socket
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from typing_extensions import Buffer

from transports.abc import (
    DatagramTransport,
    StreamTransport,
    UnsupportedOperation,
    deadline_after,
    time_left,
    timeout_error,
    validate_timeout,
)
from transports.abc.testing import (
    check_datagram_transport,
    check_stream_closing,
    check_stream_end_of_stream,
    check_stream_exchange,
    check_stream_send_shapes,
    check_stream_timeouts,
    check_stream_transport,
)


class SocketStream(StreamTransport):
    """A small third-party stream transport over a socket with a timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def _call(self, method: Callable[..., Any], timeout: float, *args: Any) -> Any:
        deadline = deadline_after(timeout)
        self.sock.settimeout(min(time_left(deadline), 3600.0))
        try:
            return method(*args)
        except (TimeoutError, BlockingIOError):  # a timeout of 0 is non-blocking mode
            raise timeout_error() from None
        except OSError:
            if self.sock.fileno() < 0:  # woken by a close() from another thread
                raise OSError(errno.EBADF, "closed") from None
            raise

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        validate_timeout(timeout)
        if not memoryview(buffer).nbytes:
            return 0
        nbytes: int = self._call(self.sock.recv_into, timeout, buffer)
        if not nbytes and self.sock.fileno() < 0:
            raise OSError(errno.EBADF, "closed")
        return nbytes

    def send(self, data: Buffer, timeout: float) -> int:
        sent: int = self._call(self.sock.send, timeout, data)
        return sent

    def send_eof(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        if self.sock.fileno() < 0:
            return
        fd = self.sock.detach()  # first: a woken call must find the socket closed
        shell = socket.socket(fileno=fd)
        with contextlib.suppress(OSError):
            shell.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it
        shell.close()

    def is_closed(self) -> bool:
        return self.sock.fileno() < 0


class NoHalfClose(SocketStream):
    def send_eof(self) -> None:
        if not self.is_closed():
            raise UnsupportedOperation("no half-close")


class CloseNotIdempotent(SocketStream):
    def close(self) -> None:
        if self.is_closed():
            raise RuntimeError("closed twice")
        super().close()


class AcceptsNaN(SocketStream):
    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        return super().recv_into(buffer, 0.0 if math.isnan(timeout) else timeout)


class RepeatsChunkAfterEmptyFirst(SocketStream):
    def send_all_from_iterable(self, iterable_of_data: Any, timeout: float) -> None:
        chunks = list(iterable_of_data)
        if len(chunks) > 1 and not memoryview(chunks[0]).nbytes:
            # A bug: sends the chunk after an empty one twice. (One that lost
            # bytes would fail the same check, only after the kit's wait for
            # them.)
            chunks.insert(1, chunks[1])
        super().send_all_from_iterable(chunks, timeout)


class ValueErrorAfterClose(SocketStream):
    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        if self.is_closed():
            raise ValueError("closed")
        return super().recv_into(buffer, timeout)


def pairs_of(cls: type[SocketStream]) -> Callable[[], contextlib.AbstractContextManager[tuple[Any, Any]]]:
    @contextlib.contextmanager
    def make() -> Iterator[tuple[StreamTransport, StreamTransport]]:
        left, right = socket.socketpair()
        a, b = cls(left), cls(right)
        try:
            yield a, b
        finally:
            for transport in (a, b):
                with contextlib.suppress(Exception):
                    SocketStream.close(transport)

    return make


@pytest.mark.timeout(120)
def test_a_transport_that_keeps_the_contract_passes() -> None:
    check_stream_transport(pairs_of(SocketStream), half_close=True)


def test_a_transport_without_half_close_passes_when_it_says_so() -> None:
    check_stream_end_of_stream(pairs_of(NoHalfClose), half_close=False)
    with pytest.raises(AssertionError, match="send_eof"):
        check_stream_end_of_stream(pairs_of(SocketStream), half_close=False)
    with pytest.raises(AssertionError, match=r"UnsupportedOperation|end of stream"):
        check_stream_end_of_stream(pairs_of(NoHalfClose), half_close=True)


@pytest.mark.parametrize(
    ("cls", "check", "message"),
    [
        (CloseNotIdempotent, partial(check_stream_closing, close_ends_blocked_calls_within=None), "closed twice"),
        (AcceptsNaN, check_stream_timeouts, "nan"),
        (RepeatsChunkAfterEmptyFirst, check_stream_send_shapes, "shape"),
        (ValueErrorAfterClose, partial(check_stream_closing, close_ends_blocked_calls_within=None), "after close"),
    ],
)
def test_a_broken_transport_fails_with_a_clear_message(
    cls: type[SocketStream], check: Callable[[Any], None], message: str
) -> None:
    check_stream_exchange(pairs_of(cls))  # what works still passes
    with pytest.raises(AssertionError, match=message):
        check(pairs_of(cls))


class SocketDatagrams(DatagramTransport):
    """A small third-party datagram transport: blocked receives look for a close every ``retry`` seconds."""

    def __init__(self, sock: socket.socket, retry: float) -> None:
        self.sock = sock
        self.retry = retry

    def recv(self, timeout: float) -> bytes:
        deadline = deadline_after(timeout)
        while True:
            if self.sock.fileno() < 0:
                raise OSError(errno.EBADF, "closed")
            self.sock.settimeout(min(time_left(deadline), self.retry))
            try:
                return self.sock.recv(1 << 20)
            except (TimeoutError, BlockingIOError):  # a timeout of 0 is non-blocking mode
                if not time_left(deadline):
                    raise timeout_error() from None

    def send(self, data: Buffer, timeout: float) -> None:
        self.sock.settimeout(min(validate_timeout(timeout), 3600.0))
        self.sock.send(data)

    def close(self) -> None:
        self.sock.close()

    def is_closed(self) -> bool:
        return self.sock.fileno() < 0


@pytest.mark.parametrize("retry", [0.1, 3.0])
def test_the_datagram_checks(retry: float) -> None:
    @contextlib.contextmanager
    def make() -> Iterator[tuple[DatagramTransport, DatagramTransport]]:
        left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with SocketDatagrams(left, retry) as a, SocketDatagrams(right, retry) as b:
            yield a, b

    if retry < 1.0:
        check_datagram_transport(make, too_big=4 * 1024 * 1024, close_ends_blocked_calls_within=0.5)
    else:  # slower to notice a close than the check allows: only that check fails
        with pytest.raises(AssertionError, match="still running"):
            check_datagram_transport(make, too_big=4 * 1024 * 1024, close_ends_blocked_calls_within=0.1)
        check_datagram_transport(make, too_big=4 * 1024 * 1024, close_ends_blocked_calls_within=None)
