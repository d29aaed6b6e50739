"""A conformance kit: check that a transport keeps the contract of these interfaces.

Plain functions that raise :exc:`AssertionError` with a message saying what
was expected and what happened; no test framework needed. Give them a
factory of connected pairs, a context manager yielding ``(a, b)``, and call
them from your own tests::

    import contextlib, socket
    from transports.abc.testing import check_stream_transport

    @contextlib.contextmanager
    def my_pair():
        left, right = socket.socketpair()
        with MyTransport(left) as a, MyTransport(right) as b:
            yield a, b

    def test_my_transport_keeps_the_contract():
        check_stream_transport(my_pair, half_close=True)

The checks use real I/O through the transports, threads for the peer side
of an exchange and for closing from another thread, and generous time
bounds where they wait for another thread (a call of the transport that
never returns still blocks a check: run it under a test timeout). Any
exception a transport raises where the contract says otherwise fails the
check as an :exc:`AssertionError`, chained to it. Every transport of this
project passes them.
"""

from __future__ import annotations

__all__ = [
    "DatagramPairFactory",
    "StreamPairFactory",
    "check_datagram_transport",
    "check_stream_bulk",
    "check_stream_closing",
    "check_stream_end_of_stream",
    "check_stream_exchange",
    "check_stream_send_shapes",
    "check_stream_timeouts",
    "check_stream_transport",
]

from ._datagram import DatagramPairFactory as DatagramPairFactory
from ._datagram import check_datagram_transport as check_datagram_transport
from ._stream import StreamPairFactory as StreamPairFactory
from ._stream import check_stream_bulk as check_stream_bulk
from ._stream import check_stream_closing as check_stream_closing
from ._stream import check_stream_end_of_stream as check_stream_end_of_stream
from ._stream import check_stream_exchange as check_stream_exchange
from ._stream import check_stream_send_shapes as check_stream_send_shapes
from ._stream import check_stream_timeouts as check_stream_timeouts
from ._stream import check_stream_transport as check_stream_transport
