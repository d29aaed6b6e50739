"""What making and closing a stream transport costs, step by step, against plain sockets.

    python tools/bench_construction.py [--batch N] [--repeat R]

In-process, on one end of a Unix socket pair (the other end stays open, as
a peer would). Each line is the best per-socket time of ``--repeat``
batches of ``--batch`` sockets, made before the timing starts, so that the
figure is the step's own cost: the transport's constructor, its close,
freeing a closed transport (the wrapper alone: the socket object is freed
outside the timing, as for plain code), and for a plain socket
``setblocking(False)`` and ``close()``. The steps run interleaved, batch
by batch, so that they share whatever mode the machine is in.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable

from transports.socket import SocketStreamTransport

Step = Callable[[list[socket.socket]], float]


def _timed(body: Callable[[], object]) -> float:
    start = time.perf_counter()
    body()
    return time.perf_counter() - start


def _each(method: Callable[..., None], items: list[object], *args: object) -> None:
    for item in items:
        method(item, *args)


def construct(socks: list[socket.socket]) -> float:
    made: list[SocketStreamTransport] = []
    elapsed = _timed(lambda: made.extend(SocketStreamTransport(sock, 1.0) for sock in socks))
    for transport in made:
        transport.close()
    return elapsed


def close(socks: list[socket.socket]) -> float:
    made: list[object] = [SocketStreamTransport(sock, 1.0) for sock in socks]
    return _timed(lambda: _each(SocketStreamTransport.close, made))


def free(socks: list[socket.socket]) -> float:
    made = [SocketStreamTransport(sock, 1.0) for sock in socks]
    for transport in made:
        transport.close()
    return _timed(made.clear)


def plain_setblocking(socks: list[socket.socket]) -> float:
    elapsed = _timed(lambda: _each(socket.socket.setblocking, list(socks), False))
    for sock in socks:
        sock.close()
    return elapsed


def plain_close(socks: list[socket.socket]) -> float:
    return _timed(lambda: _each(socket.socket.close, list(socks)))


STEPS: dict[str, Step] = {
    "transport: construct": construct,
    "transport: close": close,
    "transport: free once closed": free,
    "plain: setblocking(False)": plain_setblocking,
    "plain: close": plain_close,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=300, help="sockets per batch (default 300)")
    parser.add_argument("--repeat", type=int, default=50, help="batches per step (default 50)")
    args = parser.parse_args(argv)
    best = dict.fromkeys(STEPS, float("inf"))
    for _ in range(args.repeat):
        for name, step in STEPS.items():
            pairs = [socket.socketpair() for _ in range(args.batch)]
            try:
                best[name] = min(best[name], step([end for end, _ in pairs]) / args.batch)
            finally:
                for end, peer in pairs:
                    end.close()
                    peer.close()
    for name, seconds in best.items():
        print(f"{name:30} {seconds * 1e6:6.2f} us")
    ours = sum(seconds for name, seconds in best.items() if name.startswith("transport"))
    plain = sum(seconds for name, seconds in best.items() if name.startswith("plain"))
    print(f"{'made and closed, per socket':30} {ours * 1e6:6.2f} us against {plain * 1e6:.2f} us ({ours / plain:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
