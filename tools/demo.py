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

from transports.abc import StreamTransport, TLSAttribute
from transports.composite import BufferedStreamTransport, StapledStreamTransport, TLSStreamTransport
from transports.selector import PipeReadTransport, PipeWriteTransport
from transports.socket import (
    IP_PKTINFO,
    INETSocketAttribute,
    SocketAttribute,
    SocketStreamTransport,
    TLSListener,
    ancillary_space_for_fds,
    ancillary_space_for_ip_info,
    connect_tcp,
    connect_tls,
    create_tcp_listener,
    fds_message,
    open_udp,
    read_fds,
    read_packet_info,
    serve,
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
    with create_tcp_listener("127.0.0.1", 0) as listener:

        def echo(server: StreamTransport) -> None:  # one thread per connection, closed when it returns
            while data := server.recv(65536, 10.0):
                server.send_all(data, 10.0)

        server_thread = threading.Thread(target=serve, args=(listener, echo))
        server_thread.start()
        try:
            with connect_tcp("127.0.0.1", listener.extra(INETSocketAttribute.local_port), 5.0) as client:
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
                host, port = client.extra(INETSocketAttribute.peername)
                say(f"peer is {host} port {port}")
                client.send_eof()
                say(f"after send_eof the server closed: recv -> {client.recv(100, 5.0)!r}")
        finally:
            listener.close()  # serve() returns once the handlers are done
            server_thread.join(30)


def udp_with_packet_info() -> None:
    print("2. UDP: one endpoint answering several clients, with packet info")
    with open_udp(local_address=("127.0.0.1", 0)) as server:
        server.extra(SocketAttribute.socket).setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        address = server.extra(INETSocketAttribute.sockname)
        clients = [open_udp(remote_address=address) for _ in range(3)]
        try:
            for number, client in enumerate(clients):
                client.send(f"ping {number}".encode(), 5.0)
            for _ in clients:
                data, ancillary, sender = server.recv_from_with_ancillary(ancillary_space_for_ip_info(), 5.0)
                info = read_packet_info(ancillary)
                say(f"server got {data!r} from port {sender[1]}, sent to {info.address if info else '?'}")
                server.send_to(data.replace(b"ping", b"pong"), sender, 5.0)
            say(f"clients got {[client.recv(5.0) for client in clients]!r}")
        finally:
            for client in clients:
                client.close()


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
    with TLSListener(create_tcp_listener("127.0.0.1", 0), server_context) as listener:

        def echo() -> None:
            with listener.accept(10.0) as server:  # the handshake has a budget of its own
                while data := server.recv(65536, 10.0):
                    server.send_all(data, 10.0)

        with peer(echo):
            port = listener.extra(INETSocketAttribute.local_port)
            # Certificate and host name are checked, against "localhost" here.
            with connect_tls("localhost", port, 5.0, ssl_context=client_context, family=socket.AF_INET) as client:
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


def line_protocol() -> None:
    print("6. A line protocol: recv_until over a buffered transport")
    crlf = b"\r\n"
    left, right = socket.socketpair()
    with (
        BufferedStreamTransport(SocketStreamTransport(left, RETRY)) as reader,
        SocketStreamTransport(right, RETRY) as writer,
    ):
        # Lines cut at arbitrary places, several in one write.
        writer.send_all_from_iterable([b"HELLO wor", b"ld\r\nSIZE 5\r\nabcdeQU", b"IT\r\n"], 5.0)
        say(f"line {reader.recv_until(crlf, 1024, 5.0)!r}")
        command, size = reader.recv_until(crlf, 1024, 5.0).split()
        say(f"line {command!r}, then exactly {int(size)} bytes: {reader.recv_exactly(int(size), 5.0)!r}")
        say(f"line {reader.recv_until(crlf, 1024, 5.0)!r}")
        try:
            reader.recv_until(crlf, 1024, 0.2)
        except TimeoutError:
            say("no more lines for 0.2 s -> TimeoutError")


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
    line_protocol()
    print(f"All scenes done in {time.perf_counter() - start:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
