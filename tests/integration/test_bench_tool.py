"""tools/bench_transports.py runs end to end (tiny sizes: this checks the tool, not speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "tcp-pingpong",
    "unix-pingpong",
    "udp-pingpong",
    "tcp-bulk",
    "gather",
    "tls-pingpong",
    "pipe-pingpong",
    "connection-churn",
    "tcp-accept",
    "tcp-connect",
    "lines-recv-until",
]
# The rows that also measure the floor client (the least a transport object costs).
FLOOR_ROWS = {"connection-churn", "tcp-accept", "tcp-connect", "lines-recv-until"}


@pytest.mark.timeout(180)
def test_bench_writes_table_and_json(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"  # the tool's and its servers' temporary files
    scratch.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "bench_transports.py"),
            "--repeat",
            "5",
            "--scale",
            "0.02",
            "--rows",
            ",".join(ROWS),
            "--out",
            str(tmp_path),
            "--chart",
            str(tmp_path / "chart.png"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        timeout=170,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "latest.json").read_text())
    seen = {(r["row"], r["timeout"]) for r in report["results"]}
    assert seen == {(row, timeout) for row in ROWS for timeout in ("finite", "inf")}
    for r in report["results"]:
        assert r["cpu_ours_plain"] > 0
        assert r["wall_ours_plain"] > 0
        q1, q3 = r["cpu_quartiles"]
        assert q1 <= r["cpu_ours_plain"] <= q3
        low, high = r["wall_ours_plain_interval"]  # a confidence interval of the median, by repetition
        assert 0 < low <= high
        slices = 8 if r["row"].endswith("bulk") else 40  # a bulk slice must outlast the socket buffers
        assert r["slices"] == slices
        assert len(r["samples"]["ours"]) == len(r["samples"]["plain"]) == 5 * slices  # repetitions x slices
        control_low, control_high = r["wall_control_plain_interval"]  # the A/A control ran too
        assert 0 < control_low <= control_high
        if r["row"] in FLOOR_ROWS:  # and the floor of wrapping a socket
            assert r["cpu_floor_plain"] > 0
            assert len(r["samples"]["floor"]) == 5 * slices
        else:
            assert r["cpu_floor_plain"] is None
    table = (tmp_path / "latest.md").read_text()
    assert table in result.stdout
    assert "| tcp-pingpong | round trip of 64 B | inf |" in table
    assert "Budget:" in table
    floors = table.split("The floor of wrapping a socket")[1]
    assert all(f"- {row} [{timeout}]: " in floors for row in FLOOR_ROWS for timeout in ("finite", "inf"))
    assert ("development mode was on" in table) == report["meta"]["dev_mode"]
    assert list(scratch.iterdir()) == []  # Unix socket directories and certificates are gone
    assert report["meta"]["slices"] == 40
    assert "95% interval" in table
    pinned = report["meta"]["pinned"]
    assert pinned is None or (len(pinned) == 2 and pinned[0] != pinned[1])


def test_bench_environment_turns_development_mode_off() -> None:
    # The test environments turn it on; the bench environment must undo that
    # (PYTHONDEVMODE=0 would not: any non-empty value turns it on).
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    bench = config["tool"]["tox"]["env"]["bench"]
    value = bench.get("set_env", {}).get("PYTHONDEVMODE", "1")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.flags.dev_mode)"],
        env={**os.environ, "PYTHONDEVMODE": value},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.strip() == "False"
