"""A stapled pair of pipe transports as a full-duplex stream to a child process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Iterator

import pytest

from transports.composite import StapledStreamTransport
from transports.selector import PipeAttribute, PipeReadTransport, PipeWriteTransport

Stapled = StapledStreamTransport[PipeWriteTransport, PipeReadTransport]


@pytest.fixture
def cat() -> Iterator[tuple[subprocess.Popen[bytes], Stapled]]:
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    child = subprocess.Popen(["cat"], stdin=to_child_r, stdout=from_child_w)
    os.close(to_child_r)
    os.close(from_child_w)
    stream = StapledStreamTransport(PipeWriteTransport(to_child_w, 1.0), PipeReadTransport(from_child_r, 1.0))
    with child, stream:
        yield child, stream
    assert child.wait(10) == 0


@pytest.mark.timeout(120)
def test_64_mib_round_trip_through_cat(cat: tuple[subprocess.Popen[bytes], Stapled]) -> None:
    _, stream = cat
    payload = os.urandom(1 << 20) * 64
    digest = hashlib.sha256()
    received = 0

    def consume() -> None:
        nonlocal received
        while chunk := stream.recv(1 << 17, 30.0):
            digest.update(chunk)
            received += len(chunk)

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        stream.send_all(payload, 60.0)
        stream.send_eof()
    finally:
        consumer.join(90)
    assert received == len(payload)
    assert digest.digest() == hashlib.sha256(payload).digest()


def test_eof_both_ways(cat: tuple[subprocess.Popen[bytes], Stapled]) -> None:
    child, stream = cat
    stream.send_all_from_iterable([b"one ", b"", b"two"], 5.0)
    stream.send_eof()  # the write part has no half-close: it is closed
    assert stream.send_transport.is_closed()
    assert not stream.receive_transport.is_closed()
    data = b""
    while chunk := stream.recv(100, 5.0):
        data += chunk
    assert data == b"one two"
    assert child.wait(10) == 0  # cat saw EOF and exited: EOF came back to us


def test_attributes_come_from_the_receive_part(cat: tuple[subprocess.Popen[bytes], Stapled]) -> None:
    _, stream = cat
    assert stream.extra(PipeAttribute.fileno) == stream.receive_transport.fileno()
    stream.send_eof()


def test_write_after_child_exit_is_broken_pipe() -> None:
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    child = subprocess.Popen(["true"], stdin=to_child_r, stdout=from_child_w)
    os.close(to_child_r)
    os.close(from_child_w)
    with child, StapledStreamTransport(PipeWriteTransport(to_child_w, 1.0), PipeReadTransport(from_child_r, 1.0)) as s:
        assert s.recv(10, 10.0) == b""  # the child exited: its stdout is closed
        with pytest.raises(BrokenPipeError):
            s.send_all(b"x" * 1_000_000, 5.0)
    assert child.wait(10) == 0
