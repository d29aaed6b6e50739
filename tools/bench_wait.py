"""Per-wait cost of SelectorBaseTransport: reused poll object vs a selector factory.

    python tools/bench_wait.py [--waits N] [--repeat R]

Each wait is on a descriptor that is already readable, so the figure is the
wait machinery's own cost (what a would-block costs beyond the system
calls). Both variants run interleaved, repetition by repetition; the
report gives medians and the median of paired ratios.
"""

from __future__ import annotations

import argparse
import os
import selectors
import statistics
import time
from collections.abc import Callable

from transports.selector import SelectorBaseTransport


class _Bare(SelectorBaseTransport):
    def close(self) -> None:
        pass

    def is_closed(self) -> bool:
        return False


def per_wait(transport: _Bare, fd: int, waits: int) -> float:
    wait = transport._wait
    start = time.perf_counter()
    for _ in range(waits):
        wait(fd, False, 1.0)
    return (time.perf_counter() - start) / waits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waits", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    r, w = os.pipe()
    os.write(w, b"x")  # readable from now on
    factories: dict[str, Callable[[], selectors.BaseSelector] | None] = {
        "poll reused (no factory)": None,
        "DefaultSelector factory": selectors.DefaultSelector,
        "PollSelector factory": selectors.PollSelector,
    }
    samples: dict[str, list[float]] = {name: [] for name in factories}
    transports = {name: _Bare(1.0, factory) for name, factory in factories.items()}
    try:
        for _ in range(args.repeat):
            for name, transport in transports.items():
                samples[name].append(per_wait(transport, r, args.waits))
    finally:
        os.close(r)
        os.close(w)
    base = samples["poll reused (no factory)"]
    print("| wait | median per wait | ratio to reused poll (median of paired ratios) |")
    print("|---|---|---|")
    for name, values in samples.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(f"| {name} | {statistics.median(values) * 1e6:.2f} us | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
