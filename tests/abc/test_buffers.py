"""transports.abc._buffers: counting a caller's bytes the way the kernel does.

These helpers decide whether a gather write is finished, so a wrong answer
loses data silently: every buffer type whose len() is not its size in bytes
is pinned here.
"""

from __future__ import annotations

import array
from typing import Any

import pytest

from transports.abc._buffers import all_sent, byte_buffers, byte_view


class ShortLenBytes(bytes):
    def __len__(self) -> int:
        return 1


class LongLenBytes(bytes):
    def __len__(self) -> int:
        return 10**6


class SlottedBytes(bytes):
    __slots__ = ()


CASES: list[tuple[str, list[Any], int]] = [
    ("empty list", [], 0),
    ("bytes", [b"abc", b"", b"defg"], 7),
    ("bytearray", [bytearray(b"abc"), b"de"], 5),
    ("array of int", [array.array("i", [1, 2, 3])], 12),
    ("2-D memoryview", [memoryview(bytearray(b"abcdef")).cast("B", (2, 3))], 6),
    ("memoryview of doubles", [memoryview(array.array("d", [1.0, 2.0]))], 16),
    ("bytes subclass, len() too small", [ShortLenBytes(b"abcdef"), b"gh"], 8),
    ("bytes subclass, len() too big", [LongLenBytes(b"abc")], 3),
    ("bytes subclass with a __dict__", [ShortLenBytes(b"x" * 300)], 300),
    ("bytes subclass with no __dict__", [SlottedBytes(b"x" * 300)], 300),
]


@pytest.mark.parametrize(("buffers", "total"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_all_sent_is_exact(buffers: list[Any], total: int) -> None:
    assert all_sent(buffers, total)
    for sent in (0, total - 1, total // 2):
        if sent != total:
            assert not all_sent(buffers, sent)
    assert sum(map(len, byte_buffers(buffers))) == total


def test_all_sent_refuses_what_is_not_a_buffer() -> None:
    with pytest.raises(TypeError):
        all_sent([b"ab", "text"], 2)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        all_sent([memoryview(b"abcdef")[::2]], 3)  # not C-contiguous


def test_byte_view_counts_bytes() -> None:
    assert len(byte_view(array.array("h", [1, 2]))) == 4
    assert len(byte_view(b"abc")) == 3
    with pytest.raises(TypeError):
        byte_view(memoryview(b"abcdef")[::2])
