"""The monorepo's structure: PEP 420 namespace, typed leaves, layering, builds."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tarfile
import tomllib
import types
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("abc", "selector", "socket", "composite")
# Which other layers each layer may import: dependencies point down.
ALLOWED = {
    "abc": set(),
    "selector": {"abc"},
    "socket": {"abc", "selector"},
    "composite": {"abc"},
}


def source_files(layer: str) -> list[Path]:
    return sorted((ROOT / "packages" / f"transports-{layer}" / "src").rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_namespace_is_pep_420_and_leaf_is_typed(layer: str) -> None:
    namespace = ROOT / "packages" / f"transports-{layer}" / "src" / "transports"
    assert not (namespace / "__init__.py").exists()
    assert not (namespace / "py.typed").exists()
    assert (namespace / layer / "__init__.py").is_file()
    assert (namespace / layer / "py.typed").is_file()
    assert sorted(p.name for p in namespace.iterdir() if not p.name.startswith(".")) == [layer]


@pytest.mark.parametrize("layer", LAYERS)
def test_wheel_ships_whole_namespace_folder(layer: str) -> None:
    config = tomllib.loads((ROOT / "packages" / f"transports-{layer}" / "pyproject.toml").read_text())
    assert config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/transports"]


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_down_only(layer: str) -> None:
    for path in source_files(layer):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "transports" and len(parts) > 1 and parts[1] != layer:
                    assert parts[1] in ALLOWED[layer], f"{path}: transports.{layer} imports {name}"


@pytest.mark.parametrize("layer", [*LAYERS, "abc.testing"])
def test_public_names_are_exported(layer: str) -> None:
    module = importlib.import_module(f"transports.{layer}")
    exported = module.__all__
    assert sorted(exported) == sorted(set(exported))
    for name in exported:
        assert hasattr(module, name), name
        obj = getattr(module, name)
        if callable(obj):
            assert obj.__doc__, f"transports.{layer}.{name} has no docstring"
    # Public subpackages (transports.abc.testing) are reached by their own name.
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, types.ModuleType)
    }
    assert public == set(exported)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("layer", LAYERS)
def test_sdist_builds_a_wheel_on_its_own(layer: str, tmp_path: Path) -> None:
    package = ROOT / "packages" / f"transports-{layer}"
    build = [sys.executable, "-m", "hatchling", "build"]
    subprocess.run([*build, "-t", "sdist", "-d", str(tmp_path / "sdist")], cwd=package, check=True, timeout=120)
    (sdist,) = (tmp_path / "sdist").glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    subprocess.run([*build, "-t", "wheel", "-d", str(tmp_path / "wheel")], cwd=unpacked, check=True, timeout=120)
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        files = [n for n in archive.namelist() if not n.split("/")[0].endswith(".dist-info")]
    assert f"transports/{layer}/__init__.py" in files
    assert f"transports/{layer}/py.typed" in files
    assert "transports/__init__.py" not in files
    assert all(name.startswith(f"transports/{layer}/") for name in files), files
