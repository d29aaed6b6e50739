"""mypy --strict accepts a transport written against transports.abc and
rejects one with a wrong override, using the installed distribution only.

Run in the ``typing-abc-alone`` tox environment, where transports-abc is the
only distribution of the family installed, so the check proves users can
type-check against it alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "samples"

pytestmark = pytest.mark.timeout(300)


def run_mypy(sample: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # Run outside the repository so mypy sees the installed package, never the
    # source tree, and no configuration but the flags given here.
    env = {k: v for k, v in os.environ.items() if k not in {"MYPYPATH", "PYTHONPATH"}}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
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


def test_installed_transports_abc_is_importable_from_site_packages() -> None:
    import transports.abc

    location = Path(transports.abc.__file__).resolve()
    assert "site-packages" in location.parts, location
    assert (location.parent / "py.typed").is_file()


def test_good_third_party_transport_is_accepted(tmp_path: Path) -> None:
    result = run_mypy(SAMPLES / "accepted_transport.py", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_wrong_override_is_rejected(tmp_path: Path) -> None:
    result = run_mypy(SAMPLES / "rejected_override.py", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Signature of "send" incompatible with supertype' in result.stdout, result.stdout
