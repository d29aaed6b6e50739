"""Signals arriving during blocked calls change neither their results nor their budgets.

A signal interrupts the system call a transport waits in (``poll``, a
``recv`` or ``send`` in the kernel, a wait in C); Python runs the handler
and the call must go on as if nothing happened, within the same total
budget (PEP 475), and a handler that raises must see its exception come
out of the call, leaving the transport usable (or, for a constructor's
handshake and for ``close()``, closed with nothing leaked).

Handlers run in the main thread only, and pytest's own machinery (timeouts,
xdist) must not be in the way, so every check runs in a child process,
signals_child.py, whose main thread is the one blocked: its module
docstring says what each check ("a", "b", "c") proves. This file runs one
child per family of transports, so that xdist spreads them, and fails with
the child's report when any check failed.

Proved, for every blocking method of every kind (stream sockets over TCP and
Unix with ``send_file`` and the ancillary methods, datagram sockets over UDP
and Unix (sends over Unix only: a UDP send never waits), pipes, stapled
pipes, ``SSLStreamTransport`` and ``TLSStreamTransport`` with their
handshakes and closing handshakes), with signals every 20 ms:

- a finite timeout with nothing coming ends in ``TimeoutError`` after its
  budget, never later than a small slack, however many signals came (a
  case that ends late, or sees too few signals, runs again, twice at most,
  and the re-runs are counted: signals that stretch a budget stretch it
  every time, a busy machine seldom is busy three times in a row);
- with a finite or an infinite timeout, data (or room, or the peer) that
  comes once the handler has run a few times gives exactly the right result;
- an exception a handler raises comes out of the call itself, and the
  transport then receives exactly what the peer sends, or sends on after
  a prefix of the interrupted data (all that a failed send promises).

The handler-exceptions family checks other exception types raised by the
handler (``KeyboardInterrupt``, a ``RuntimeError``, a ``TimeoutError`` of
its own) on each way a call waits; the child reports the cases that fail
because of a known library defect, and fails when one of them passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHILD = Path(__file__).with_name("signals_child.py")
FAMILIES = ["stream", "datagram", "pipe", "ssl", "tls", "handler-exceptions"]
# The child's own watchdog ends a hung worker after 30 s and itself after 40 s.
CHILD_LIMIT = 60


def failures_of(summary: dict[str, Any]) -> str:
    return "\n\n".join(f"{failure['case']}: {failure['failure']}" for failure in summary["failures"])


@pytest.mark.timeout(CHILD_LIMIT + 10)
@pytest.mark.parametrize("family", FAMILIES)
def test_signals_during_blocked_calls(family: str, figures: Any) -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), family],
        capture_output=True,
        text=True,
        timeout=CHILD_LIMIT,
        check=False,
    )
    report = f"exit status {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"the child printed no summary\n{report}")
    assert done.returncode == 0, f"{failures_of(summary)}\n\n{report}"
    assert not summary["failures"], report
    assert done.stderr == "", report
    assert summary["cases"] == len(summary["results"]), report
    assert summary["calls"] >= summary["cases"], report
    # Every call waited through signals: three at least, which the child checks call by call.
    assert summary["signals"] >= 3 * summary["calls"], report
    overrun = summary["max_overrun"]
    figures(
        cases=summary["cases"],
        calls=summary["calls"],
        signals=summary["signals"],
        raising_handlers=summary["raising_handlers"],
        known_defects=len(summary["known_defects"]),
        max_overrun_ms="-" if overrun is None else round(overrun * 1000, 1),
        reruns=summary["reruns"],
        workers=summary["workers"],
    )
