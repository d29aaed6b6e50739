"""Run by test_connection_memory.py in a child process: memory per TLS connection.

Opens, uses and closes ``CYCLES`` TLS connections over loopback TCP (both
ends are ``SSLStreamTransport``) after ``WARM_UP`` cycles that let the
allocators settle, and prints the growth of the resident set in bytes per
connection as ``growth-per-connection: N``. A closed transport must leave
nothing behind: once, every close() read ``SSLSocket.session``, whose
getter leaks native memory in several CPython releases (about 7 KiB a
connection here).

Usage: ``python connection_memory_child.py WARM_UP CYCLES``.
"""

from __future__ import annotations

import gc
import os
import socket
import ssl
import sys
import threading

import trustme

from transports.socket import SSLStreamTransport

SERVER_NAME = "server.test"


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(warm_up: int, cycles: int) -> int:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SERVER_NAME).configure_cert(server_context)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve(count: int) -> None:
            for _ in range(count):
                sock, _ = listener.accept()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls
                with SSLStreamTransport(sock, server_context, 1.0, shutdown_timeout=5.0) as server:
                    server.send_all(server.recv(100, 5.0), 5.0)

        def connect(count: int) -> None:
            for _ in range(count):
                sock = socket.create_connection(listener.getsockname())
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with SSLStreamTransport(
                    sock, client_context, 1.0, server_hostname=SERVER_NAME, shutdown_timeout=5.0
                ) as client:
                    client.send_all(b"ping", 5.0)
                    assert client.recv(100, 5.0) == b"ping"

        before = 0
        for count in (warm_up, cycles):
            server_thread = threading.Thread(target=serve, args=(count,))
            server_thread.start()
            connect(count)
            server_thread.join(30.0)
            gc.collect()
            if count is warm_up:
                before = resident_bytes()
        growth = (resident_bytes() - before) / cycles
    print(f"growth-per-connection: {growth:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
