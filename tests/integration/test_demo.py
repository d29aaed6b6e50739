"""The main job, tools/demo.py, runs every scene against the installed layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_demo_runs_every_scene() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for scene in ("1. TCP echo", "2. UDP", "3. A file descriptor", "4. TLS", "5. A stapled pipe", "6. A line protocol"):
        assert scene in result.stdout
    assert "checksum equal" in result.stdout
    assert "DIFFERENT" not in result.stdout
    assert "All scenes done" in result.stdout
    assert result.stderr == ""
