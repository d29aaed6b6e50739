"""Run by test_close_race.py in a child process: close() racing a receiving thread.

Each repetition opens a TLS connection over loopback TCP, has the server
send chunks of random size (10 B to 20 KB) without pause, has one client
thread loop on ``recv(4096, 2.0)``, and closes the client from the main
thread after a random 0 to 10 ms. Before close() kept OpenSSL to one
thread at a time, this crashed the interpreter (SIGSEGV, or glibc's
``free(): corrupted unsorted chunks``) within a few dozen repetitions,
which is why it runs in a process of its own.

Usage: ``python close_race_child.py REPETITIONS SEED [--keep-going]``. Exits
0 and prints a summary when every receiver ended with ``OSError(EBADF)``
after its data and every close() returned promptly; exits 1 with the first
failure otherwise, or with ``--keep-going`` after counting every failure.
"""

from __future__ import annotations

import errno
import random
import socket
import ssl
import sys
import threading
import time

import trustme

from transports.socket import SSLStreamTransport

SERVER_NAME = "server.test"
RETRY_INTERVAL = 0.05
SHUTDOWN_TIMEOUT = 0.1
# close() makes no closing handshake while the receiver is inside a call; it
# may wait up to SHUTDOWN_TIMEOUT when the receiver happened to be between two.
CLOSE_LIMIT = 2.0
JOIN_LIMIT = 5.0


def contexts(version: ssl.TLSVersion, ca: trustme.CA, cert: trustme.LeafCert) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    for context in (server_context, client_context):
        context.minimum_version = context.maximum_version = version
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return server_context, client_context


def one_repetition(
    listener: socket.socket, server_context: ssl.SSLContext, client_context: ssl.SSLContext, rng: random.Random
) -> str:
    """Return how the receiver ended; raise AssertionError on a failure."""
    client_sock = socket.create_connection(listener.getsockname())
    server_sock, _ = listener.accept()
    handshake: list[SSLStreamTransport] = []
    server_thread = threading.Thread(
        target=lambda: handshake.append(
            SSLStreamTransport(server_sock, server_context, RETRY_INTERVAL, shutdown_timeout=SHUTDOWN_TIMEOUT)
        )
    )
    server_thread.start()
    client = SSLStreamTransport(
        client_sock, client_context, RETRY_INTERVAL, server_hostname=SERVER_NAME, shutdown_timeout=SHUTDOWN_TIMEOUT
    )
    server_thread.join(JOIN_LIMIT)
    server = handshake[0]
    chunks = [rng.randbytes(rng.randint(10, 20_000)) for _ in range(16)]
    outcome: list[str] = []

    def send_without_pause() -> None:
        try:
            for index in range(1_000_000):
                server.send_all(chunks[index % len(chunks)], 2.0)
        except OSError:  # the client is gone
            pass

    def receive_until_closed() -> None:
        try:
            while client.recv(4096, 2.0):
                pass
            outcome.append("end of stream")
        except OSError as exc:
            outcome.append("EBADF" if exc.errno == errno.EBADF else f"{type(exc).__name__}: {exc}")
        except BaseException as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    sender = threading.Thread(target=send_without_pause)
    receiver = threading.Thread(target=receive_until_closed)
    sender.start()
    receiver.start()
    time.sleep(rng.uniform(0.0, 0.01))
    started = time.monotonic()
    client.close()
    took = time.monotonic() - started
    receiver.join(JOIN_LIMIT)
    receiver_alive = receiver.is_alive()
    server.close()
    sender.join(JOIN_LIMIT)
    assert not receiver_alive, "the receiver was still blocked after close()"
    assert not sender.is_alive(), "the sender was still blocked after both ends closed"
    assert took < CLOSE_LIMIT, f"close() took {took:.3f} s"
    assert outcome == ["EBADF"], f"the receiver ended with {outcome}"
    return outcome[0]


def main(repetitions: int, seed: int, keep_going: bool) -> int:
    rng = random.Random(seed)
    failures = 0
    ca = trustme.CA()
    cert = ca.issue_cert(SERVER_NAME)
    versions = [contexts(version, ca, cert) for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        for index in range(repetitions):
            server_context, client_context = versions[index % 2]
            try:
                one_repetition(listener, server_context, client_context, rng)
            except AssertionError as exc:
                print(f"repetition {index} (seed {seed}): {exc}", flush=True)
                failures += 1
                if not keep_going:
                    return 1
    if failures:
        print(f"{failures} of {repetitions} repetitions failed", flush=True)
        return 1
    print(f"{repetitions} repetitions, every receiver ended with EBADF", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]), "--keep-going" in sys.argv[3:]))
