"""One version for the four distributions, siblings pinned to it exactly."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("abc", "selector", "socket", "composite")
# What each distribution depends on, besides typing-extensions.
DECLARED = {
    "abc": set(),
    "selector": {"transports-abc"},
    "socket": {"transports-abc", "transports-selector"},
    "composite": {"transports-abc"},
}


def project(layer: str, root: Path = ROOT) -> dict[str, object]:
    data = tomllib.loads((root / "packages" / f"transports-{layer}" / "pyproject.toml").read_text())
    return data["project"]  # type: ignore[no-any-return]


def sibling_pins(layer: str, root: Path = ROOT) -> dict[str, str]:
    pins: dict[str, str] = {}
    for requirement in project(layer, root)["dependencies"]:  # type: ignore[attr-defined]
        if requirement.startswith("transports-"):
            name, _, version = requirement.partition("==")
            pins[name] = version
    return pins


def copy_repo(tmp_path: Path) -> Path:
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "bump_version.py", tmp_path / "tools")
    for layer in LAYERS:
        target = tmp_path / "packages" / f"transports-{layer}"
        target.mkdir(parents=True)
        shutil.copy(ROOT / "packages" / f"transports-{layer}" / "pyproject.toml", target)
    return tmp_path


def run_tool(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "tools" / "bump_version.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_all_versions_equal() -> None:
    versions = {layer: project(layer)["version"] for layer in LAYERS}
    assert len(set(versions.values())) == 1, versions


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_pins_exactly_its_declared_siblings(layer: str) -> None:
    version = project(layer)["version"]
    pins = sibling_pins(layer)
    assert set(pins) == DECLARED[layer]
    assert all(pin == version for pin in pins.values()), pins


def test_check_passes_on_the_repository() -> None:
    result = run_tool(ROOT, "--check")
    assert result.returncode == 0, result.stderr


def test_bump_rewrites_every_version_and_pin(tmp_path: Path) -> None:
    root = copy_repo(tmp_path)
    result = run_tool(root, "9.8.7")
    assert result.returncode == 0, result.stderr
    for layer in LAYERS:
        assert project(layer, root)["version"] == "9.8.7"
        assert set(sibling_pins(layer, root).values()) <= {"9.8.7"}
        assert set(sibling_pins(layer, root)) == DECLARED[layer]


def test_check_fails_on_version_drift(tmp_path: Path) -> None:
    root = copy_repo(tmp_path)
    path = root / "packages" / "transports-composite" / "pyproject.toml"
    path.write_text(path.read_text().replace('version = "', 'version = "1', 1))
    result = run_tool(root, "--check")
    assert result.returncode == 1
    assert "versions differ" in result.stderr


def test_check_fails_on_pin_drift(tmp_path: Path) -> None:
    root = copy_repo(tmp_path)
    path = root / "packages" / "transports-socket" / "pyproject.toml"
    text = path.read_text()
    path.write_text(text.replace('"transports-selector==', '"transports-selector>=', 1))
    result = run_tool(root, "--check")
    assert result.returncode == 1
    assert "transports-selector" in result.stderr


def test_bump_refuses_a_malformed_version(tmp_path: Path) -> None:
    root = copy_repo(tmp_path)
    before = (root / "packages" / "transports-abc" / "pyproject.toml").read_text()
    result = run_tool(root, "not-a-version")
    assert result.returncode == 2
    assert (root / "packages" / "transports-abc" / "pyproject.toml").read_text() == before
