"""The conformance kit (transports.abc.testing) on every transport we ship.

The kinds of connected pairs are listed in conftest.py: a test taking
``stream_kind`` or ``datagram_kind`` runs once per kind.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from transports.abc import DatagramTransport, StreamTransport
from transports.abc.testing import check_datagram_transport, check_stream_transport

# The fixtures of conftest.py, as the tests see them.
StreamPair = tuple[StreamTransport, StreamTransport]
DatagramPair = tuple[DatagramTransport, DatagramTransport]
OpenStreamPair = Callable[[str], contextlib.AbstractContextManager[StreamPair]]
OpenDatagramPair = Callable[[str], contextlib.AbstractContextManager[DatagramPair]]


@pytest.mark.timeout(180)
def test_stream_transport_conformance(stream_kind: str, half_close: bool, open_stream_pair: OpenStreamPair) -> None:
    check_stream_transport(lambda: open_stream_pair(stream_kind), half_close=half_close)


def test_datagram_transport_conformance(
    datagram_kind: str, datagram_too_big: int, open_datagram_pair: OpenDatagramPair
) -> None:
    check_datagram_transport(lambda: open_datagram_pair(datagram_kind), too_big=datagram_too_big)


# ---------------------------------------------------------------------------
# Unusable buffers get the same exception, at once, from every transport:
# a read-only or non-contiguous buffer given to recv_into is a TypeError
# before any wait (also once receives wait before they read, and with an
# infinite timeout); a non-contiguous buffer given to a send is a TypeError,
# and nothing of that call reaches the peer.

NOT_CONTIGUOUS = memoryview(bytearray(b"0123456789abcdef"))[::2]


@pytest.fixture
def stream_pair(stream_kind: str, open_stream_pair: OpenStreamPair) -> Iterator[StreamPair]:
    with open_stream_pair(stream_kind) as pair:
        yield pair


def send_noblock_of(transport: Any) -> Callable[[Any], Any]:
    """The ``send_noblock`` of ``transport``, or of its send part when it is stapled."""
    sender = getattr(transport, "send_transport", transport)
    method: Callable[[Any], Any] = sender.send_noblock  # AttributeError: it has none
    return method


def receive_exactly(transport: StreamTransport, size: int) -> bytes:
    received = b""
    while len(received) < size:
        chunk = transport.recv(size - len(received), 5.0)
        assert chunk, f"end of stream after {received!r}"
        received += chunk
    return received


@pytest.mark.parametrize("timeout", [3.0, math.inf])
@pytest.mark.parametrize("buffer", [b"read-only", NOT_CONTIGUOUS], ids=["read-only", "not contiguous"])
def test_unusable_receive_buffer_is_refused_before_any_wait(
    stream_pair: StreamPair, buffer: Any, timeout: float
) -> None:
    ours, theirs = stream_pair
    with pytest.raises(TimeoutError):  # would block: receives now wait before they read
        ours.recv(10, 0)
    started = time.monotonic()
    with pytest.raises(TypeError):
        ours.recv_into(buffer, timeout)
    assert time.monotonic() - started < 1.0
    theirs.send_all(b"data", 5.0)
    time.sleep(0.05)
    with pytest.raises(TypeError):  # also when it tries first, with data there
        ours.recv_into(buffer, 0)
    assert receive_exactly(ours, 4) == b"data"  # and nothing was lost


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda t: t.send(NOT_CONTIGUOUS, 5.0), id="send"),
        pytest.param(lambda t: t.send_all(NOT_CONTIGUOUS, 5.0), id="send_all"),
        pytest.param(lambda t: t.send_all_from_iterable([b"first", NOT_CONTIGUOUS], 5.0), id="send_all_from_iterable"),
        pytest.param(lambda t: send_noblock_of(t)(NOT_CONTIGUOUS), id="send_noblock"),
    ],
)
def test_non_contiguous_buffer_is_a_type_error_and_sends_nothing(
    stream_pair: StreamPair, send: Callable[[Any], Any]
) -> None:
    ours, theirs = stream_pair
    try:
        send(ours)
    except AttributeError:
        pytest.skip(f"{type(ours).__name__} has no such method")
    except TypeError:
        pass
    else:
        pytest.fail("no TypeError")
    ours.send_all(b"next", 5.0)
    assert receive_exactly(theirs, 4) == b"next"  # the first bytes: nothing went before them


@pytest.mark.parametrize("kind", ["UDP over IPv4", "Unix datagram"])
@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda t: t.send(NOT_CONTIGUOUS, 5.0), id="send"),
        pytest.param(lambda t: t.send_noblock(NOT_CONTIGUOUS), id="send_noblock"),
        pytest.param(lambda t: t.send_with_ancillary(NOT_CONTIGUOUS, [], 5.0), id="send_with_ancillary"),
    ],
)
def test_non_contiguous_datagram_is_a_type_error_and_sends_nothing(
    kind: str, send: Callable[[Any], Any], open_datagram_pair: OpenDatagramPair
) -> None:
    with open_datagram_pair(kind) as (ours, theirs):
        with pytest.raises(TypeError):
            send(ours)
        ours.send(b"next", 5.0)
        assert theirs.recv(5.0) == b"next"  # the first packet: nothing went before it


# ---------------------------------------------------------------------------
# A timeout of None (what socket.settimeout takes for "block forever") is a
# TypeError that says what to pass instead, from every blocking method of
# every kind, before any I/O.

NONE_TIMEOUT_MESSAGE = r"^timeout must be a number of seconds, or math.inf to wait forever, not NoneType$"

STREAM_CALLS: dict[str, Callable[[StreamTransport], object]] = {
    "recv": lambda t: t.recv(10, None),  # type: ignore[arg-type]
    "recv_into": lambda t: t.recv_into(bytearray(10), None),  # type: ignore[arg-type]
    "send": lambda t: t.send(b"data", None),  # type: ignore[arg-type]
    "send_all": lambda t: t.send_all(b"data", None),  # type: ignore[arg-type]
    "send_all_from_iterable": lambda t: t.send_all_from_iterable([b"data"], None),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("method", list(STREAM_CALLS))
def test_none_timeout_is_a_clear_type_error(stream_pair: StreamPair, method: str) -> None:
    ours, theirs = stream_pair
    theirs.send_all(b"data", 5.0)  # a receive that did not check first would find data
    with pytest.raises(TypeError, match=NONE_TIMEOUT_MESSAGE):
        STREAM_CALLS[method](ours)
    assert receive_exactly(ours, 4) == b"data"
    ours.send_all(b"next", 5.0)
    assert receive_exactly(theirs, 4) == b"next"  # the first bytes: nothing went before them


def test_none_timeout_is_a_clear_type_error_for_datagrams(
    datagram_kind: str, open_datagram_pair: OpenDatagramPair
) -> None:
    with open_datagram_pair(datagram_kind) as (ours, theirs):
        theirs.send(b"data", 5.0)
        with pytest.raises(TypeError, match=NONE_TIMEOUT_MESSAGE):
            ours.recv(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=NONE_TIMEOUT_MESSAGE):
            ours.send(b"lost", None)  # type: ignore[arg-type]
        assert ours.recv(5.0) == b"data"
        ours.send(b"next", 5.0)
        assert theirs.recv(5.0) == b"next"
