"""A transport with a wrong override signature: mypy --strict must reject it."""

from __future__ import annotations

from typing_extensions import Buffer

from transports.abc import StreamTransport


class WrongTransport(StreamTransport):
    # Wrong: send() takes a timeout and returns the number of bytes sent.
    def send(self, data: bytes) -> None:
        pass

    def recv_into(self, buffer: Buffer, timeout: float) -> int:
        return 0

    def send_eof(self) -> None:
        pass

    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False
