"""A closed TLS connection leaves no memory behind, measured in a child process.

The child (connection_memory_child.py) opens and closes a few thousand
connections and reports how much its resident set grew per connection. A
child keeps the measurement free of what other tests allocated. A leak of
one TLS session per connection shows as about 7 KiB; the limit leaves room
for allocator noise (a few dozen bytes here).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("connection_memory_child.py")
LIMIT = 1024  # bytes of resident set per connection


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident set from /proc")
@pytest.mark.timeout(180)
def test_closed_connections_leave_no_memory_behind() -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), "300", "2000"], capture_output=True, text=True, timeout=170, check=False
    )
    report = f"exit status {done.returncode}\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, report
    growth = int(done.stdout.split("growth-per-connection:")[1].split()[0])
    assert growth < LIMIT, report
