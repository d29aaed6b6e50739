"""Small selector transports over real sockets, written for the tests."""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typing_extensions import Buffer

from transports.selector import (
    SelectorDatagramTransport,
    SelectorStreamTransport,
    WouldBlockOnRead,
    WouldBlockOnWrite,
)


class SocketPairStream(SelectorStreamTransport):
    """A minimal stream transport over one end of a socketpair."""

    def __init__(
        self,
        sock: socket.socket,
        retry_interval: float = 1.0,
        selector_factory: Callable[[], selectors.BaseSelector] | None = None,
    ) -> None:
        super().__init__(retry_interval, selector_factory)
        sock.setblocking(False)
        self.sock = sock

    def recv_noblock_into(self, buffer: Buffer) -> int:
        try:
            return self.sock.recv_into(buffer)
        except BlockingIOError:
            raise WouldBlockOnRead(self.sock.fileno()) from None

    def send_noblock(self, data: Buffer) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            raise WouldBlockOnWrite(self.sock.fileno()) from None

    def send_eof(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()

    def is_closed(self) -> bool:
        return self.sock.fileno() < 0


class SocketPairDatagrams(SelectorDatagramTransport):
    def __init__(self, sock: socket.socket, retry_interval: float = 1.0) -> None:
        super().__init__(retry_interval)
        sock.setblocking(False)
        self.sock = sock

    def recv_noblock(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except BlockingIOError:
            raise WouldBlockOnRead(self.sock.fileno()) from None

    def send_noblock(self, data: Buffer) -> None:
        try:
            self.sock.send(data)
        except BlockingIOError:
            raise WouldBlockOnWrite(self.sock.fileno()) from None

    def close(self) -> None:
        self.sock.close()

    def is_closed(self) -> bool:
        return self.sock.fileno() < 0


class CountingSelectorFactory:
    """A selector factory that records every selector it makes."""

    def __init__(self) -> None:
        self.made: list[selectors.BaseSelector] = []
        self.registrations: list[tuple[int, int]] = []

    def __call__(self) -> selectors.BaseSelector:
        factory = self

        class Recording(selectors.DefaultSelector):
            def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
                factory.registrations.append((fileobj, events))
                return super().register(fileobj, events, data)

        selector = Recording()
        self.made.append(selector)
        return selector


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    with left, right:
        yield left, right


@pytest.fixture
def stream_pair(socket_pair: tuple[socket.socket, socket.socket]) -> Iterator[tuple[SocketPairStream, socket.socket]]:
    left, right = socket_pair
    transport = SocketPairStream(left, retry_interval=1.0)
    with transport:
        yield transport, right


@pytest.fixture
def counting_factory() -> CountingSelectorFactory:
    return CountingSelectorFactory()


@pytest.fixture
def make_stream() -> Iterator[Callable[..., SocketPairStream]]:
    """Build SocketPairStream transports; every one is closed afterwards."""
    made: list[SocketPairStream] = []

    def make(
        sock: socket.socket,
        retry_interval: float = 1.0,
        selector_factory: Callable[[], selectors.BaseSelector] | None = None,
    ) -> SocketPairStream:
        transport = SocketPairStream(sock, retry_interval, selector_factory)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture
def datagram_pair() -> Iterator[tuple[SocketPairDatagrams, socket.socket]]:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with right, SocketPairDatagrams(left) as transport:
        yield transport, right
