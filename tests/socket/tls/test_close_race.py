"""close() from another thread while a thread receives, in a loop, in a child process.

The race once crashed the interpreter (two threads in OpenSSL on one
connection), so the loop runs in a child: a crash fails this test instead of
killing the test run. See close_race_child.py for what one repetition does.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("close_race_child.py")
REPETITIONS = 500


@pytest.mark.timeout(180)
def test_close_racing_a_receiver_never_crashes() -> None:
    seed = random.randrange(2**32)
    done = subprocess.run(
        [sys.executable, str(CHILD), str(REPETITIONS), str(seed)],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    report = f"seed {seed}, exit status {done.returncode}\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, report
    assert f"{REPETITIONS} repetitions, every receiver ended with EBADF" in done.stdout, report
