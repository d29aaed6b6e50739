"""A tour of the transports on loopback: the project's main job, end to end.

    bash tools/demo.sh        # from a fresh clone: installs, then runs this
    python tools/demo.py      # with the four distributions and trustme installed

Each scene runs a real peer (a thread, or a child process) and prints what
happened. Traffic goes to 127.0.0.1, ::1, Unix sockets and pipes only.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from transports.abc import TLSAttribute
from transports.composite import StapledStreamTransport, TLSStreamTransport
from transports.selector import PipeReadTransport, PipeWriteTransport
from transports.socket import (
    IP_PKTINFO,
    INETSocketAttribute,
    SocketDatagramTransport,
    SocketStreamTransport,
    SSLStreamTransport,
    ancillary_space_for_fds,
    ancillary_space_for_ip_info,
    fds_message,
    read_fds,
    read_packet_info,
)

RETRY = 1.0  # retry_interval: the longest single wait


def say(text: str) -> None:
    print(f"  {text}", flush=True)


@contextmanager
def peer(target: Callable[[], None]) -> Iterator[None]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        thread.join(30)
    if errors:
        raise errors[0]


def tcp_echo() -> None:
    print("1. TCP echo with one timeout budget per call")
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            with SocketStreamTransport(conn, RETRY) as server:
                while data := server.recv(65536, 10.0):
                    server.send_all(data, 10.0)

        with peer(serve):
            client = SocketStreamTransport(socket.create_connection(listener.getsockname()), RETRY)
            with client:
                payload = os.urandom(8 << 20)
                start = time.perf_counter()
                received = bytearray()

                def drain() -> None:
                    while len(received) < len(payload):
                        received.extend(client.recv(1 << 20, 10.0))

                with peer(drain):
                    client.send_all(payload, 10.0)
                elapsed = time.perf_counter() - start
                assert received == payload
                say(f"echoed 8 MiB in {elapsed * 1000:.0f} ms, checksum equal")
                client.send_all_from_iterable([b"gather ", b"", b"send"], 5.0)
                say(f"send_all_from_iterable -> {client.recv(100, 5.0)!r}")
                try:
                    client.recv(100, 0.2)
                except TimeoutError as exc:
                    say(f"silence for 0.2 s -> TimeoutError(errno={exc.errno})")
                say(f"peer is {client.extra(INETSocketAttribute.peername)}")
                client.send_eof()
                say(f"after send_eof the server closed: recv -> {client.recv(100, 5.0)!r}")


def udp_with_packet_info() -> None:
    print("2. UDP with packet info (the destination address of each datagram)")
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server_sock,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client_sock,
    ):
        server_sock.bind(("127.0.0.1", 0))
        server_sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        client_sock.connect(server_sock.getsockname())
        server_sock.connect(client_sock.getsockname())
        with (
            SocketDatagramTransport(server_sock.dup(), RETRY) as server,
            SocketDatagramTransport(client_sock.dup(), RETRY) as client,
        ):
            client.send(b"ping", 5.0)
            data, ancillary = server.recv_with_ancillary(ancillary_space_for_ip_info(), 5.0)
            info = read_packet_info(ancillary)
            say(f"server got {data!r} sent to {info.address if info else '?'} on interface {info and info.interface}")
            server.send(b"pong", 5.0)
            say(f"client got {client.recv(5.0)!r}")


def unix_fd_passing() -> None:
    print("3. A file descriptor passed over a Unix socket")
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with SocketStreamTransport(left, RETRY) as sender, SocketStreamTransport(right, RETRY) as receiver:
        read_end, write_end = os.pipe()
        try:
            sender.send_all_with_ancillary([b"here is a pipe"], [fds_message([write_end])], 5.0)
        finally:
            os.close(write_end)
        data, ancillary = receiver.recv_with_ancillary(100, ancillary_space_for_fds(1), 5.0)
        (received_fd,) = read_fds(ancillary)
        with os.fdopen(received_fd, "wb") as pipe_writer:
            pipe_writer.write(b"written through the received descriptor")
        with os.fdopen(read_end, "rb") as pipe_reader:
            say(f"{data!r}; the pipe carried {pipe_reader.read()!r}")


def tls_echo(ca_file: str, cert_file: str) -> None:
    print("4. TLS: SSLStreamTransport on a socket, TLSStreamTransport over stapled pipes")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file)
    client_context = ssl.create_default_context(cafile=ca_file)
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            with SSLStreamTransport(conn, server_context, RETRY) as server:
                while data := server.recv(65536, 10.0):
                    server.send_all(data, 10.0)

        with peer(serve):
            sock = socket.create_connection(listener.getsockname())
            with SSLStreamTransport(sock, client_context, RETRY, server_hostname="localhost") as client:
                client.send_all(b"hello over TLS", 5.0)
                say(f"echo {client.recv(100, 5.0)!r} over {client.extra(TLSAttribute.tls_version)}")
                say(f"cipher {client.extra(TLSAttribute.cipher)[0]}")

    # The same protocol over a child process's stdin/stdout: the child is a
    # TLS server speaking through its pipes (plain ssl.SSLObject code).
    child_code = f"""
import os, ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain({cert_file!r})
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
def flush():
    data = outgoing.read()
    while data:
        data = data[os.write(1, data):]
while True:
    try:
        data = tls.read(65536)
    except ssl.SSLWantReadError:
        pass
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        break
    else:
        tls.write(data)
        try:
            flush()
        except BrokenPipeError:
            break
        continue
    try:
        flush()
    except BrokenPipeError:
        break
    chunk = os.read(0, 65536)
    if not chunk:
        break
    incoming.write(chunk)
"""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    child = subprocess.Popen([sys.executable, "-c", child_code], stdin=to_child_r, stdout=from_child_w)
    os.close(to_child_r)
    os.close(from_child_w)
    with child:
        pipes = StapledStreamTransport(PipeWriteTransport(to_child_w, RETRY), PipeReadTransport(from_child_r, RETRY))
        with TLSStreamTransport(pipes, client_context, server_hostname="localhost", standard_compatible=False) as tls:
            payload = os.urandom(1 << 20)
            received = bytearray()

            def drain() -> None:
                while len(received) < len(payload):
                    received.extend(tls.recv(1 << 16, 10.0))

            # One thread receives while this one sends: the echo must flow
            # back while we send, or both pipes fill up.
            with peer(drain):
                tls.send_all(payload, 10.0)
            same = hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
            say(f"1 MiB echoed by a child over TLS over its pipes, checksum {'equal' if same else 'DIFFERENT'}")
        child.wait(10)


def pipe_to_cat() -> None:
    print("5. A stapled pipe pair to a child process (cat)")
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    child = subprocess.Popen(["cat"], stdin=to_child_r, stdout=from_child_w)
    os.close(to_child_r)
    os.close(from_child_w)
    with child:
        with StapledStreamTransport(
            PipeWriteTransport(to_child_w, RETRY), PipeReadTransport(from_child_r, RETRY)
        ) as stream:
            stream.send_all(b"through cat and back", 5.0)
            stream.send_eof()  # closes the child's stdin
            data = b""
            while chunk := stream.recv(100, 5.0):
                data += chunk
            say(f"{data!r}, then EOF")
        say(f"cat exited with {child.wait(10)}")


def make_certificates(directory: str) -> tuple[str, str]:
    import trustme

    ca = trustme.CA()
    ca_file = os.path.join(directory, "ca.pem")
    cert_file = os.path.join(directory, "server.pem")
    ca.cert_pem.write_to_path(ca_file)
    ca.issue_cert("localhost", "127.0.0.1").private_key_and_cert_chain_pem.write_to_path(cert_file)
    return ca_file, cert_file


def main() -> int:
    start = time.perf_counter()
    tcp_echo()
    udp_with_packet_info()
    unix_fd_passing()
    with tempfile.TemporaryDirectory() as directory:
        tls_echo(*make_certificates(directory))
    pipe_to_cat()
    print(f"All scenes done in {time.perf_counter() - start:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
