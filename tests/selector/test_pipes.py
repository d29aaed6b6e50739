"""PipeReadTransport and PipeWriteTransport over real pipes and a child process."""

from __future__ import annotations

import errno
import gc
import hashlib
import math
import os
import signal
import subprocess
import threading
import time
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest

from transports.abc import TypedAttributeLookupError
from transports.selector import PipeAttribute, PipeReadTransport, PipeWriteTransport
from transports.selector._stream import IOV_MAX


@pytest.fixture
def pipe() -> Iterator[tuple[PipeReadTransport, PipeWriteTransport]]:
    r, w = os.pipe()
    with PipeReadTransport(r, 1.0) as reader, PipeWriteTransport(w, 1.0) as writer:
        yield reader, writer


def read_until_eof(reader: PipeReadTransport, timeout: float = 30.0) -> bytes:
    data = bytearray()
    while chunk := reader.recv(1 << 16, timeout):
        data += chunk
    return bytes(data)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_round_trip(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, writer = pipe
    writer.send_all(b"hello", 1.0)
    assert reader.recv(100, 1.0) == b"hello"
    writer.send_all(bytearray(b"world"), 1.0)
    buffer = bytearray(3)
    assert reader.recv_into(buffer, 1.0) == 3
    assert buffer == b"wor"
    assert reader.recv(0, 1.0) == b""
    assert reader.recv(10, 1.0) == b"ld"


def test_eof_when_the_write_end_closes(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, writer = pipe
    writer.send_all(b"last words", 1.0)
    writer.send_eof()
    assert writer.is_closed()
    writer.send_eof()  # no-op once closed
    assert read_until_eof(reader) == b"last words"
    assert reader.recv(10, 0) == b""
    assert reader.recv_into(bytearray(4), 0) == 0


def test_write_without_reader_is_broken_pipe(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, writer = pipe
    reader.close()
    with pytest.raises(BrokenPipeError):
        writer.send_all(b"anyone?", 1.0)
    with pytest.raises(BrokenPipeError):
        writer.send_all_from_iterable([b"a", b"b"], 1.0)


def test_partial_write_when_the_pipe_is_full(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, writer = pipe
    sent = writer.send(b"x" * (4 << 20), 1.0)
    assert 0 < sent < 4 << 20
    with pytest.raises(TimeoutError):
        writer.send(b"y", 0)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        writer.send_all(b"y" * 100, 0.1)
    assert time.monotonic() - start >= 0.1
    assert reader.recv(1 << 22, 1.0).startswith(b"x")


def test_recv_times_out(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, _ = pipe
    start = time.monotonic()
    with pytest.raises(TimeoutError) as exc_info:
        reader.recv(10, 0.15)
    assert exc_info.value.errno == errno.ETIMEDOUT
    assert 0.15 <= time.monotonic() - start < 0.5


def test_64_mib_through_cat() -> None:
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    with subprocess.Popen(["cat"], stdin=to_child_r, stdout=from_child_w) as child:
        os.close(to_child_r)
        os.close(from_child_w)
        payload = os.urandom(1 << 20) * 64
        with PipeWriteTransport(to_child_w, 1.0) as writer, PipeReadTransport(from_child_r, 1.0) as reader:
            digest = hashlib.sha256()
            received = 0

            def consume() -> None:
                nonlocal received
                while chunk := reader.recv(1 << 17, 30.0):
                    digest.update(chunk)
                    received += len(chunk)

            consumer = threading.Thread(target=consume)
            consumer.start()
            try:
                writer.send_all(payload, 30.0)
                writer.send_eof()
            finally:
                consumer.join(60)
        assert child.wait(10) == 0
    assert received == len(payload)
    assert digest.digest() == hashlib.sha256(payload).digest()


def test_send_all_from_iterable_more_chunks_than_iov_max(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, writer = pipe
    chunks = [os.urandom(97 + i % 300) for i in range(IOV_MAX * 3 + 17)]
    chunks[5] = b""
    chunks += [b"", b""]
    expected = b"".join(chunks)
    received = bytearray()

    def slow_reader() -> None:
        while len(received) < len(expected):
            time.sleep(0.001)
            received.extend(reader.recv(7000, 10.0))

    thread = threading.Thread(target=slow_reader)
    thread.start()
    try:
        writer.send_all_from_iterable(iter(chunks), 20.0)
    finally:
        thread.join(30)
    assert received == expected


def test_send_all_from_iterable_multibyte_and_views(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, writer = pipe
    numbers = array("i", range(1000))
    view = memoryview(b"0123456789")[2:7]
    writer.send_all_from_iterable([numbers, view, bytearray(b"!")], 5.0)
    writer.close()
    assert read_until_eof(reader) == numbers.tobytes() + b"23456!"


def test_send_all_from_iterable_empty(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, writer = pipe
    writer.send_all_from_iterable([], 1.0)
    writer.send_all_from_iterable([b"", b""], 1.0)
    with pytest.raises(TimeoutError):
        reader.recv(10, 0)


def test_send_all_from_iterable_times_out_when_nobody_reads(
    pipe: tuple[PipeReadTransport, PipeWriteTransport],
) -> None:
    _, writer = pipe
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        writer.send_all_from_iterable([b"x" * 65536] * 20, 0.2)
    assert 0.2 <= time.monotonic() - start < 1.0


def test_operations_after_close_raise_ebadf(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, writer = pipe
    reader.close()
    writer.close()
    reader.close()
    assert reader.is_closed()
    assert writer.is_closed()
    for call in (
        lambda: reader.recv(10, 1.0),
        lambda: reader.recv_into(bytearray(1), 1.0),
        lambda: writer.send(b"x", 1.0),
        lambda: writer.send_all_from_iterable([b"x"], 1.0),
    ):
        with pytest.raises(OSError) as exc_info:
            call()
        assert exc_info.value.errno == errno.EBADF


def test_fileno_attribute(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    reader, writer = pipe
    assert reader.extra(PipeAttribute.fileno) == reader.fileno() >= 0
    assert writer.extra(PipeAttribute.fileno) == writer.fileno() >= 0
    writer.close()
    with pytest.raises(TypedAttributeLookupError):
        writer.extra(PipeAttribute.fileno)
    assert writer.extra(PipeAttribute.fileno, None) is None
    assert writer.fileno() == -1


def test_descriptor_becomes_non_blocking_and_owned() -> None:
    before = open_fds()
    r, w = os.pipe()
    reader = PipeReadTransport(r, 1.0)
    writer = PipeWriteTransport(w, 1.0)
    assert not os.get_blocking(r)
    assert not os.get_blocking(w)
    reader.close()
    writer.close()
    assert open_fds() == before


def test_resource_warning_when_collected_open() -> None:
    r, w = os.pipe()
    reader = PipeReadTransport(r, 1.0)
    os.close(w)
    with pytest.warns(ResourceWarning, match=rf"unclosed transport <PipeReadTransport fd={r}>"):
        del reader
        gc.collect()
    with pytest.raises(OSError) as exc_info:
        os.fstat(r)
    assert exc_info.value.errno == errno.EBADF


def test_constructor_checks(tmp_path: Path) -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(ValueError, match="reading"):
            PipeReadTransport(w, 1.0)
        with pytest.raises(ValueError, match="writing"):
            PipeWriteTransport(r, 1.0)
        with pytest.raises(ValueError, match="retry_interval"):
            PipeReadTransport(r, 0)
        with pytest.raises(TypeError):
            PipeReadTransport("3", 1.0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="descriptor"):
            PipeReadTransport(-1, 1.0)
        # A failed constructor leaves the descriptor open and the caller's.
        os.fstat(r)
        assert os.get_blocking(r)
    finally:
        os.close(r)
        os.close(w)
    with pytest.raises(OSError) as exc_info:
        PipeReadTransport(r, 1.0)
    assert exc_info.value.errno == errno.EBADF
    regular = tmp_path / "file"
    regular.write_bytes(b"data")
    with open(regular, "rb") as file, pytest.raises(ValueError, match="regular files"):
        PipeReadTransport(file.fileno(), 1.0)


def test_signal_during_a_blocked_recv_is_retried(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    """EINTR: a signal handler runs and the recv goes on waiting (PEP 475)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    reader, writer = pipe
    handled: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: handled.append(signum))
    timer = threading.Timer(0.3, writer.send_all, args=(b"after the signal", 1.0))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        timer.start()
        assert reader.recv(100, 5.0) == b"after the signal"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        timer.join()
    assert handled == [signal.SIGALRM]


def test_selector_factory_is_used(counting_factory: object) -> None:
    r, w = os.pipe()
    with (
        PipeReadTransport(r, 1.0, selector_factory=counting_factory) as reader,  # type: ignore[arg-type]
        PipeWriteTransport(w, math.inf) as writer,
    ):
        timer = threading.Timer(0.3, writer.send_all, args=(b"x", 1.0))
        timer.start()
        assert reader.recv(1, 2.0) == b"x"
        timer.join()
    assert len(counting_factory.made) >= 1  # type: ignore[attr-defined]


def test_two_threads_reading_one_transport(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    """Two readers wait at once without a selector factory: neither fails."""
    reader, writer = pipe
    results: list[bytes] = []
    errors: list[BaseException] = []

    def read_one() -> None:
        try:
            results.append(reader.recv(1, 10.0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # both are waiting now (or about to: the test still holds then)
    writer.send_all(b"ab", 1.0)
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert sorted(results) == [b"a", b"b"]


def test_waits_longer_than_poll_can_express(pipe: tuple[PipeReadTransport, PipeWriteTransport]) -> None:
    """A month-long timeout is valid: no OverflowError from poll's int milliseconds."""
    reader, writer = pipe
    timer = threading.Timer(0.1, writer.send_all, args=(b"late", 1.0))
    timer.start()
    try:
        assert reader.recv(10, 30 * 86400.0) == b"late"
    finally:
        timer.join()
    r, w = os.pipe()
    with PipeReadTransport(r, 365 * 86400.0) as slow_reader, PipeWriteTransport(w, 1.0) as slow_writer:
        timer = threading.Timer(0.1, slow_writer.send_all, args=(b"later", 1.0))
        timer.start()
        try:
            assert slow_reader.recv(10, math.inf) == b"later"
        finally:
            timer.join()


def test_concurrent_close_is_idempotent() -> None:
    for _ in range(200):
        r, w = os.pipe()
        os.close(w)
        reader = PipeReadTransport(r, 1.0)
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def close_it(
            transport: PipeReadTransport = reader,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            try:
                transport.close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=close_it) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert errors == []
        assert reader.is_closed()


@pytest.mark.parametrize("retry_interval", [0.2, math.inf])
def test_close_from_another_thread_ends_a_blocked_receive(retry_interval: float) -> None:
    """Within retry_interval; with math.inf only when the call's own timeout runs out (nothing wakes it)."""
    r, w = os.pipe()
    reader = PipeReadTransport(r, retry_interval)
    outcome: list[BaseException] = []
    timeout = 1.0

    def receive() -> None:
        try:
            reader.recv(10, timeout)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=receive)
    thread.start()
    time.sleep(0.05)
    started = time.monotonic()
    reader.close()
    thread.join(5.0)
    took = time.monotonic() - started
    os.close(w)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], OSError)
    assert outcome[0].errno == errno.EBADF
    if retry_interval == math.inf:
        assert took > (timeout - 0.05) * 0.9, took  # not woken: its own timeout ran out
    else:
        assert took < retry_interval + 0.5, took
