"""mypy --strict sees the part types of the stapled transports.

Runs mypy on the installed distributions (never the source tree) over one
sample it must accept and one it must reject. Runs in the ``integration``
tox environment, where every distribution is installed as a wheel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transports.composite")

SAMPLES = Path(__file__).parent / "samples"
# ``# error: [code]`` at the end of a sample line: mypy must report that code there.
EXPECTED_ERROR = re.compile(r"#\s*error:\s*\[(?P<code>[a-z-]+)\]\s*$")
# mypy's own report: ``path:line: error: message  [code]``.
REPORTED_ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*?)\s+\[(?P<code>[a-z-]+)\]$")

pytestmark = pytest.mark.timeout(300)


def run_mypy(sample: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # Outside the repository, without MYPYPATH/PYTHONPATH and with no
    # configuration file: mypy sees the installed packages only.
    env = {k: v for k, v in os.environ.items() if k not in {"MYPYPATH", "PYTHONPATH"}}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--show-error-codes",
            "--no-pretty",
            "--config-file=",
            f"--cache-dir={tmp_path / 'cache'}",
            str(sample),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=280,
    )


def expected_errors(sample: Path) -> set[tuple[int, str]]:
    expected: set[tuple[int, str]] = set()
    for number, line in enumerate(sample.read_text().splitlines(), start=1):
        if match := EXPECTED_ERROR.search(line):
            expected.add((number, match["code"]))
    return expected


def reported_errors(output: str) -> tuple[set[tuple[int, str]], list[str]]:
    reported: set[tuple[int, str]] = set()
    messages: list[str] = []
    for line in output.splitlines():
        if match := REPORTED_ERROR.match(line):
            reported.add((int(match["line"]), match["code"]))
            messages.append(match["message"])
    return reported, messages


def test_installed_transports_composite_is_typed() -> None:
    import transports.composite

    location = Path(transports.composite.__file__).resolve()
    assert "site-packages" in location.parts, location
    assert (location.parent / "py.typed").is_file()


def test_part_types_are_inferred_exactly(tmp_path: Path) -> None:
    result = run_mypy(SAMPLES / "accepted_composite.py", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_misuses_are_rejected_where_marked(tmp_path: Path) -> None:
    sample = SAMPLES / "rejected_composite.py"
    expected = expected_errors(sample)
    assert len(expected) >= 7, "the sample lost its markers"
    result = run_mypy(sample, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    reported, messages = reported_errors(result.stdout)
    assert reported == expected, result.stdout
    assert 'Expression is of type "MyWriter", not "MyReader"' in messages, result.stdout
    assert 'Cannot inherit from final class "StapledStreamTransport"' in messages, result.stdout
    assert 'Property "send_transport" defined in "StapledStreamTransport" is read-only' in messages, result.stdout
