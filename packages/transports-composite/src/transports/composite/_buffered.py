"""A read buffer over any stream transport: exact reads and delimited reads.

What it is for
==============

A stream has no message boundaries: a protocol that speaks in lines, or in
a length header followed by that many bytes, has to read until it has a
whole message, and keep what came after it for the next one.
:class:`BufferedStreamTransport` does that once, over any
:class:`~transports.abc.StreamTransport` (a socket transport, TLS, a
stapled pair of pipes, another buffered transport), and is itself a
stream transport, so layers stack in any order.

The buffer
==========

The bytes read but not returned yet live in one :class:`bytearray`,
between two offsets: ``start`` (the first unread byte) and ``end`` (one
past the last). The bytes from ``end`` to the end of the array are free
room, and the wrapped transport reads straight into it (``recv_into`` on a
:class:`memoryview` of the tail), so no byte is copied on the way in. An
answer is copied once, into the :class:`bytes` returned, and consuming it
only moves ``start``.

- When an answer empties the buffer, both offsets go back to ``0``: in a
  request/response protocol that is the usual case, and it costs nothing.
- When the tail is too small for a read, the unread bytes are moved to the
  front if they fit in the room already consumed (the two ranges do not
  overlap, so that is one plain copy), or else into a new array of at
  least twice the size: a long answer costs amortised linear time, like a
  :class:`list` that grows.
- The array is never resized in place, only replaced. A live
  :class:`memoryview` forbids resizing, and views of it exist (ours, and
  whatever a wrapped transport's traceback keeps), so replacing is the one
  way that cannot fail.
- The array is made on the first read, so a transport that never buffers
  anything costs no memory; one grown past 1 MiB is given back once it is
  empty.

Searching for a delimiter
=========================

:meth:`~BufferedStreamTransport.recv_until` searches with
:meth:`bytearray.find`, given a start offset: after each read it searches
only the new bytes, plus the last ``len(delimiter) - 1`` old ones (where a
delimiter split across two reads begins). However many reads an answer
takes, each byte is searched about once: no quadratic rescans. The search
stops at ``max_bytes``, so the answer does not depend on how the bytes
were cut into reads.

Invariants
==========

- Bytes are never lost. Every byte read from the wrapped transport stays
  in the buffer until a call returns it. A call that raises (a timeout, an
  end of stream, a delimiter not found, the wrapped transport failing)
  leaves everything it read buffered, for the next call.
- One budget per call. :meth:`~BufferedStreamTransport.recv_exactly` and
  :meth:`~BufferedStreamTransport.recv_until` turn ``timeout`` into one
  deadline (as :func:`~transports.abc.deadline_after` does) and give each
  read what is left of it (as :func:`~transports.abc.time_left` counts),
  so a peer that dribbles a byte at a time cannot stretch the call. An
  answer that is already buffered is returned without reading the clock.
- Arguments are checked before any I/O.

Threads and closing
===================

The rules are those of every transport of the family: one thread may
receive while another one sends; the buffer belongs to the receiving
side. :meth:`~BufferedStreamTransport.close` may come from any thread: it
marks the transport closed, then closes the wrapped one, which ends a
blocked read (how soon is the wrapped transport's rule). A call that the
close ends raises ``OSError(EBADF)``, whatever the wrapped transport made
of it: an error, or an end of stream its own shutdown produced, which the
peer never sent. ``close()`` does not touch the buffer, which the
receiving thread may be using at that very moment.
"""

from __future__ import annotations

__all__ = ["BufferedStreamTransport", "DelimiterNotFoundError", "IncompleteReadError"]

import operator
from collections.abc import Callable, Iterable, Mapping
from time import monotonic
from typing import Any, Final, Generic, TypeVar, final

from typing_extensions import Buffer

from transports.abc import StreamTransport, deadline_after, validate_timeout
from transports.abc._family import closed_error, refuse_subclasses, writable_nbytes

_T_Transport = TypeVar("_T_Transport", bound=StreamTransport)
_T_Result = TypeVar("_T_Result")

# The size of the first buffer, and the least a new one grows to: one read
# of this size takes in many small messages at once.
_CHUNK: Final = 64 * 1024
# The least free room a read is given: with less at the tail, the bytes
# are moved or the buffer grows first, so that reads never shrink to a
# trickle of system calls.
_MIN_READ: Final = 4 * 1024
# An empty buffer larger than this (after one large answer) is given back.
_KEEP: Final = 1024 * 1024

_CLOSED: Final = "The buffered transport is closed"
_CLOSED_DURING_CALL: Final = "The buffered transport was closed during the call"


class IncompleteReadError(EOFError):
    """The stream ended before the answer was complete.

    The bytes read are not consumed: they stay buffered, so the next
    :meth:`~BufferedStreamTransport.recv` returns them (and then ``b""``),
    and the same call again raises the same error. :attr:`partial` is a
    copy of them.

    Parameters:
        partial: the bytes buffered when the stream ended.
        expected: the byte count asked for, or :data:`None` when a
            delimiter was looked for.
    """

    partial: bytes
    """The bytes buffered when the stream ended (a copy; they stay buffered)."""

    expected: int | None
    """The byte count :meth:`~BufferedStreamTransport.recv_exactly` asked for;
    :data:`None` for :meth:`~BufferedStreamTransport.recv_until`."""

    def __init__(self, partial: bytes, expected: int | None) -> None:
        if expected is None:
            message = f"The stream ended after {len(partial)} bytes, before the delimiter"
        else:
            message = f"The stream ended after {len(partial)} of {expected} bytes"
        super().__init__(message)
        self.partial = partial
        self.expected = expected

    def __reduce__(self) -> tuple[Any, ...]:
        # The default would call the class with the message alone.
        return type(self), (self.partial, self.expected)


class DelimiterNotFoundError(ValueError):
    """:meth:`~BufferedStreamTransport.recv_until` found no delimiter within ``max_bytes``.

    The bytes stay buffered: :meth:`~BufferedStreamTransport.recv` (or a
    :meth:`~BufferedStreamTransport.recv_until` with a larger
    ``max_bytes``) still returns them.

    Parameters:
        max_bytes: the limit that was reached.
    """

    max_bytes: int
    """The ``max_bytes`` of the call."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"No delimiter within the first {max_bytes} bytes (they stay buffered)")
        self.max_bytes = max_bytes

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.max_bytes,)


@final
@refuse_subclasses
class BufferedStreamTransport(StreamTransport, Generic[_T_Transport]):
    """A stream transport with a read buffer: exact reads and reads up to a delimiter.

    :meth:`recv_exactly` and :meth:`recv_until` read the wrapped transport
    as often as they need, straight into the buffer (64 KiB to start
    with), within one timeout budget; the bytes read past the answer are
    kept for the next call.
    :meth:`recv` and :meth:`recv_into` return buffered bytes first, without
    waiting, and go to the wrapped transport only when nothing is buffered.
    Every send-side method, :meth:`send_eof` and the typed attributes are
    the wrapped transport's.

    The transport owns the wrapped one: :meth:`close` closes it. The class
    is generic over the wrapped transport's type, which
    :attr:`wrapped_transport` keeps. One thread may receive while another
    one sends, and :meth:`close` may come from any thread (see the module
    documentation). Receiving ancillary data is not supported (the
    buffered bytes would be cut off from it); sending it is passed on.

    Parameters:
        transport: the stream transport to read from and write to.

    Raises:
        TypeError: ``transport`` is not a
            :class:`~transports.abc.StreamTransport` (it is not closed).
    """

    __slots__ = ("__buffer", "__closed", "__end", "__start", "__transport", "__view")

    __transport: _T_Transport
    __buffer: bytearray
    __view: memoryview
    __start: int
    __end: int
    __closed: bool

    def __init__(self, transport: _T_Transport) -> None:
        if not isinstance(transport, StreamTransport):
            raise TypeError(f"Expected a StreamTransport, got {type(transport).__qualname__}")
        self.__transport = transport
        self.__closed = False
        self.__set_buffer(bytearray())  # made on the first read
        self.__start = self.__end = 0

    def __repr__(self) -> str:
        state = "closed" if self.__closed else "open"
        return f"<{type(self).__name__} ({state}) buffered={self.__end - self.__start} transport={self.__transport!r}>"

    @property
    def wrapped_transport(self) -> _T_Transport:
        """The transport read from and written to (read-only).

        Reading it directly skips the bytes buffered here.
        """
        return self.__transport

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the wrapped transport; buffered bytes can no longer be read.

        May be called from any thread; a call blocked in another thread
        then ends with ``OSError(EBADF)`` as soon as the wrapped transport
        lets it go. Idempotent.

        Raises:
            Exception: whatever the wrapped transport's ``close()`` raises.
        """
        # First: a call that the wrapped transport's close wakes must find
        # this flag set, to tell that close from the peer's doing.
        self.__closed = True
        self.__transport.close()

    def is_closed(self) -> bool:
        """Return :data:`True` once this transport or the wrapped one is closed.

        Raises:
            Exception: whatever the wrapped transport's ``is_closed()`` raises.
        """
        return self.__closed or self.__transport.is_closed()

    def send_eof(self) -> None:
        """Call the wrapped transport's ``send_eof()``; nothing once closed.

        Buffered bytes stay readable, and so does the rest of the stream.

        Raises:
            UnsupportedOperation: the wrapped transport cannot half-close.
            OSError: the wrapped transport failed.
        """
        if self.__closed:
            return
        self.__transport.send_eof()

    # ------------------------------------------------------ buffered reads

    def recv_exactly(self, n: int, timeout: float) -> bytes:
        """Read and return exactly ``n`` bytes.

        Buffered bytes come first; the wrapped transport is read as often
        as needed, all within one budget of ``timeout`` seconds. Bytes
        read past the ``n`` stay buffered. When ``n`` bytes are buffered
        already, nothing is read, whatever the timeout. The buffer grows to
        hold the ``n`` bytes at once (and is given back once read, past
        1 MiB).

        Parameters:
            n: the byte count; ``0`` returns ``b""``.
            timeout: seconds for the whole call (``0``: only what can be
                read without waiting; :data:`math.inf`: no limit).

        Raises:
            ValueError: ``n`` is negative, or ``timeout`` is negative or NaN.
            TypeError: ``n`` is not an integer, or ``timeout`` not a number.
            TimeoutError: the budget ran out first; the bytes read stay
                buffered.
            IncompleteReadError: the stream ended first; the bytes read
                stay buffered, and the error holds a copy of them.
            RuntimeError: the wrapped transport returned an impossible count.
            OSError: the wrapped transport failed, or this transport is
                closed, before or during the call (:data:`errno.EBADF`).

        Returns:
            The ``n`` bytes.
        """
        n = operator.index(n)
        if n < 0:
            raise ValueError("n must not be negative")
        validate_timeout(timeout)
        if self.__closed:
            raise closed_error(_CLOSED)
        if self.__end - self.__start < n:
            deadline = deadline_after(timeout)
            while (missing := n - (self.__end - self.__start)) > 0:
                self.__fill(deadline, missing, n)
        start = self.__start
        stop = start + n
        data = self.__view[start:stop].tobytes()  # the one copy
        if stop < self.__end:
            self.__start = stop
        else:
            self.__emptied()
        return data

    def recv_until(self, delimiter: bytes, max_bytes: int, timeout: float) -> bytes:
        """Read up to ``delimiter`` and return the bytes before it.

        The delimiter is consumed but not returned; bytes read past it stay
        buffered. The wrapped transport is read as often as needed, all
        within one budget of ``timeout`` seconds. The delimiter must end
        within the first ``max_bytes`` buffered bytes.

        Parameters:
            delimiter: the bytes that end an answer, such as ``b"\\n"``.
            max_bytes: the most bytes an answer may take, delimiter
                included; at least ``len(delimiter)``.
            timeout: seconds for the whole call (``0``: only what can be
                read without waiting; :data:`math.inf`: no limit).

        Raises:
            TypeError: ``delimiter`` is not :class:`bytes`, ``max_bytes``
                is not an integer, or ``timeout`` not a number.
            ValueError: ``delimiter`` is empty, ``max_bytes`` is smaller
                than it, or ``timeout`` is negative or NaN.
            DelimiterNotFoundError: ``max_bytes`` bytes are buffered and
                the delimiter is not among them; they stay buffered.
            TimeoutError: the budget ran out first; the bytes read stay
                buffered.
            IncompleteReadError: the stream ended first; the bytes read
                stay buffered, and the error holds a copy of them.
            RuntimeError: the wrapped transport returned an impossible count.
            OSError: the wrapped transport failed, or this transport is
                closed, before or during the call (:data:`errno.EBADF`).

        Returns:
            The bytes before the delimiter (``b""`` for an empty line).
        """
        # (Type checks by identity first, and no call for a valid timeout:
        # with the answer buffered, these checks are most of the call.)
        if type(delimiter) is not bytes and not isinstance(delimiter, bytes):
            raise TypeError(f"delimiter must be bytes, not {type(delimiter).__name__}")
        width = len(delimiter)
        if not width:
            raise ValueError("delimiter must not be empty")
        if type(max_bytes) is not int:
            max_bytes = operator.index(max_bytes)
        if max_bytes < width:
            raise ValueError(f"max_bytes must be at least the length of the delimiter ({width}), not {max_bytes}")
        if timeout is None or not timeout >= 0:
            validate_timeout(timeout)
        if self.__closed:
            raise closed_error(_CLOSED)
        deadline: float | None = None
        # How many of the buffered bytes were searched already and cannot
        # begin a delimiter. Relative to the first unread byte, since a read
        # may move the bytes to the front of the buffer.
        searched = 0
        # (This loop runs once per answer when the answer is buffered, so
        # it avoids min(), max() and method calls: each costs as much as
        # the search itself.)
        while True:
            start = self.__start
            end = self.__end
            size = end - start
            if size:
                # Not past max_bytes: the delimiter must END within them,
                # so the answer does not depend on how the bytes arrived.
                index = self.__buffer.find(delimiter, start + searched, end if size <= max_bytes else start + max_bytes)
                if index >= 0:
                    data = self.__view[start:index].tobytes()  # the one copy
                    index += width
                    if index < end:
                        self.__start = index
                    else:
                        self.__emptied()
                    return data
                if size >= max_bytes:
                    raise DelimiterNotFoundError(max_bytes)
                # Only the last width - 1 bytes may begin a delimiter that
                # the next read completes: the next search starts there.
                searched = size - width + 1 if size >= width else 0
            if deadline is None:  # the clock is read only when a read is needed
                deadline = monotonic() + timeout  # (valid: checked above; inf stays inf)
            self.__fill(deadline, 0, None)

    # -------------------------------------------------------- plain reads

    def recv(self, bufsize: int, timeout: float) -> bytes:
        """Read and return up to ``bufsize`` bytes.

        Buffered bytes are returned at once, without waiting nor reading
        the wrapped transport. With nothing buffered, this is the wrapped
        transport's ``recv`` (no copy, no read-ahead).

        Parameters:
            bufsize: the most bytes to return; ``0`` returns ``b""`` at once.
            timeout: seconds to wait for data, when nothing is buffered.

        Raises:
            ValueError: ``bufsize`` is negative, or ``timeout`` is negative or NaN.
            TimeoutError: nothing was buffered and no data arrived in time.
            OSError: the wrapped transport failed, or this transport is
                closed, before or during the call (:data:`errno.EBADF`).

        Returns:
            The bytes read; ``b""`` for a positive ``bufsize`` means EOF.
        """
        start = self.__start
        available = self.__end - start
        if not available:
            return self.__through(self.__transport.recv, bufsize, timeout)
        if bufsize < 0:
            raise ValueError("bufsize must not be negative")
        validate_timeout(timeout)
        if self.__closed:
            raise closed_error(_CLOSED)
        stop = start + (bufsize if bufsize < available else available)
        data = self.__view[start:stop].tobytes()
        self.__consume(stop)
        return data

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        """Read into ``buffer``.

        Buffered bytes are copied at once, without waiting nor reading the
        wrapped transport. With nothing buffered, this is the wrapped
        transport's ``recv_into``.

        Parameters:
            buffer: a writable, C-contiguous buffer.
            timeout: seconds to wait for data, when nothing is buffered.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
            TypeError: ``buffer`` is not a writable C-contiguous buffer.
            TimeoutError: nothing was buffered and no data arrived in time.
            OSError: the wrapped transport failed, or this transport is
                closed, before or during the call (:data:`errno.EBADF`).

        Returns:
            The number of bytes written; ``0`` for a non-empty buffer means
            EOF.
        """
        start = self.__start
        available = self.__end - start
        if not available:
            return self.__through(self.__transport.recv_into, buffer, timeout)
        count = writable_nbytes(buffer)  # TypeError before anything else
        validate_timeout(timeout)
        if self.__closed:
            raise closed_error(_CLOSED)
        if count > available:
            count = available
        stop = start + count
        with memoryview(buffer) as raw, raw.cast("B") as view:
            view[:count] = self.__view[start:stop]
        self.__consume(stop)
        return count

    def __through(self, operation: Callable[..., _T_Result], *args: Any) -> _T_Result:
        """Return ``operation(*args)``, a call of the wrapped transport made for this one.

        Raises:
            OSError: ``EBADF`` when this transport was closed before the
                call, or during it (whatever the call then raised, or an
                end of stream that the close made); else what
                ``operation`` raises.
        """
        if self.__closed:
            raise closed_error(_CLOSED)
        try:
            result = operation(*args)
        except OSError as exc:
            if self.__closed:
                raise closed_error(_CLOSED_DURING_CALL) from exc
            raise
        if not result and result is not None and self.__closed:  # an end of stream that close() made
            raise closed_error(_CLOSED_DURING_CALL)
        return result

    # ---------------------------------------------------------- the buffer

    def __set_buffer(self, buffer: bytearray) -> None:
        self.__buffer = buffer
        # Kept for the life of the array: slicing it is how reads reach the
        # tail and answers are copied out, without copying on the way.
        self.__view = memoryview(buffer)

    def __consume(self, position: int) -> None:
        """Mark the bytes before ``position`` read."""
        if position < self.__end:
            self.__start = position
        else:
            self.__emptied()

    def __emptied(self) -> None:
        """Every buffered byte was read: the next read goes to the front, with no bytes to move."""
        self.__start = self.__end = 0
        if len(self.__buffer) > _KEEP:
            self.__set_buffer(bytearray())

    def __fill(self, deadline: float, missing: int, expected: int | None) -> None:
        """Read the wrapped transport once, into the free room after the buffered bytes.

        ``missing`` is how many more bytes the caller needs at least (``0``:
        unknown); the room is made that large, if need be, so that an exact
        read of many bytes grows the buffer once. The read gets whatever
        the deadline leaves (``0.0``: one attempt that does not wait).

        Raises:
            IncompleteReadError: the wrapped transport reported an end of
                stream; ``expected`` goes into the error.
            OSError: ``OSError(EBADF)`` when :meth:`close` was called, for
                whatever ended the read; else the wrapped transport's error.
        """
        room = missing if missing > _MIN_READ else _MIN_READ
        if len(self.__buffer) - self.__end < room:
            self.__make_room(room)
        end = self.__end
        tail = len(self.__buffer) - end
        # An empty buffer (the usual case between requests and responses)
        # is read into whole: no slice to make.
        room_view = self.__view[end:] if end else self.__view
        try:
            # What time_left() gives, without its call: a third of the
            # Python calls of a line read that needs a read (bench).
            left = deadline - monotonic()
            count = self.__transport.recv_into(room_view, left if left > 0.0 else 0.0)
        except OSError as exc:  # TimeoutError included
            if self.__closed:
                raise closed_error(_CLOSED_DURING_CALL) from exc
            raise
        if count > 0:
            if count > tail:
                raise RuntimeError(f"recv_into() of the wrapped transport returned {count} for {tail} bytes")
            self.__end = end + count
            return
        if count < 0:
            raise RuntimeError(f"recv_into() of the wrapped transport returned {count} for {tail} bytes")
        if self.__closed:  # an end of stream that close() made, not the peer
            raise closed_error(_CLOSED_DURING_CALL)
        raise IncompleteReadError(self.__view[self.__start : end].tobytes(), expected)

    def __make_room(self, room: int) -> None:
        """Have at least ``room`` free bytes after the buffered ones, which move to the front."""
        start, end = self.__start, self.__end
        size = end - start
        capacity = len(self.__buffer)
        if size + room <= capacity and size <= start:
            # The unread bytes fit in the room already consumed: the source
            # and the destination do not overlap, so this is one plain copy,
            # within the same array.
            self.__buffer[:size] = self.__view[start:end]
        else:
            # At least doubling, so that an answer arriving in many reads is
            # copied an amortised constant number of times.
            buffer = bytearray(max(size + room, 2 * capacity, _CHUNK))
            buffer[:size] = self.__view[start:end]
            self.__set_buffer(buffer)
        self.__start = 0
        self.__end = size

    # -------------------------------------------------------- sending side

    def send(self, data: Buffer, timeout: float) -> int:
        """Call the wrapped transport's ``send(data, timeout)``.

        Raises:
            Exception: whatever the wrapped transport raises (see
                :meth:`StreamWriteTransport.send <transports.abc.StreamWriteTransport.send>`);
                ``OSError(EBADF)`` when this transport is closed, before
                or during the call.

        Returns:
            The number of bytes sent.
        """
        return self.__through(self.__transport.send, data, timeout)

    def send_all(self, data: Buffer, timeout: float) -> None:
        """Call the wrapped transport's ``send_all(data, timeout)``.

        Raises:
            Exception: whatever the wrapped transport raises (see
                :meth:`StreamWriteTransport.send_all <transports.abc.StreamWriteTransport.send_all>`);
                ``OSError(EBADF)`` when this transport is closed, before
                or during the call.
        """
        # __through() written out: the request of a request/response
        # exchange goes here, and the call it saves is 3% of the client CPU
        # of a line protocol's round trip (bench, lines-recv-until, paired).
        if self.__closed:
            raise closed_error(_CLOSED)
        try:
            self.__transport.send_all(data, timeout)
        except OSError as exc:
            if self.__closed:
                raise closed_error(_CLOSED_DURING_CALL) from exc
            raise

    def send_all_from_iterable(self, iterable_of_data: Iterable[Buffer], timeout: float) -> None:
        """Call the wrapped transport's ``send_all_from_iterable(iterable_of_data, timeout)``.

        The iterable is passed on as it is.

        Raises:
            Exception: whatever the wrapped transport raises (see
                :meth:`StreamWriteTransport.send_all_from_iterable
                <transports.abc.StreamWriteTransport.send_all_from_iterable>`);
                ``OSError(EBADF)`` when this transport is closed, before
                or during the call.
        """
        self.__through(self.__transport.send_all_from_iterable, iterable_of_data, timeout)

    def send_all_with_ancillary(self, iterable_of_data: Iterable[Buffer], ancillary_data: Any, timeout: float) -> None:
        """Call the wrapped transport's ``send_all_with_ancillary(iterable_of_data, ancillary_data, timeout)``.

        Raises:
            UnsupportedOperation: the wrapped transport carries no
                ancillary data.
            Exception: whatever else the wrapped transport raises (see
                :meth:`StreamWriteTransport.send_all_with_ancillary
                <transports.abc.StreamWriteTransport.send_all_with_ancillary>`);
                ``OSError(EBADF)`` when this transport is closed, before
                or during the call.
        """
        self.__through(self.__transport.send_all_with_ancillary, iterable_of_data, ancillary_data, timeout)

    # ---------------------------------------------------- typed attributes

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The wrapped transport's typed attributes."""
        return self.__transport.extra_attributes
