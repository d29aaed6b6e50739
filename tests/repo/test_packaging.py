"""What a release carries: the license, the project URLs, the README as long description.

The source-tree checks run wherever tests/repo is collected. The checks of
built files need the four sdists and wheels in the folder that
``TRANSPORTS_DIST_DIR`` names; the ``packaging`` tox environment builds them
(each wheel from its sdist) and sets it, and elsewhere those checks skip.
"""

from __future__ import annotations

import email.parser
import email.policy
import os
import re
import tarfile
import tomllib
import zipfile
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("abc", "selector", "socket", "composite")
DIST_DIR_VARIABLE = "TRANSPORTS_DIST_DIR"
DOCUMENTATION = "https://transports-dev.github.io/transports/"
URLS = {
    "Documentation": DOCUMENTATION,
    "Source": "https://github.com/transports-dev/transports",
    "Changelog": "https://github.com/transports-dev/transports/blob/main/CHANGELOG.md",
    "Issues": "https://github.com/transports-dev/transports/issues",
}
INSTALLING_PAGE = DOCUMENTATION + "installing.html"


def package_dir(layer: str) -> Path:
    return ROOT / "packages" / f"transports-{layer}"


def project(layer: str) -> dict[str, Any]:
    config = tomllib.loads((package_dir(layer) / "pyproject.toml").read_text())
    return config["project"]  # type: ignore[no-any-return]


def siblings(name: str) -> set[str]:
    """The distribution and every layer of this family it needs, directly or not."""
    layer = name.removeprefix("transports-")
    needed = {name}
    for requirement in project(layer)["dependencies"]:
        sibling = re.split(r"[\s=<>!~;\[]", requirement, maxsplit=1)[0]
        if sibling.startswith("transports-"):
            needed |= siblings(sibling)
    return needed


def archive_stem(layer: str) -> str:
    """How sdist and wheel file names spell the distribution: ``transports_abc-0.1.0``."""
    data = project(layer)
    return f"{data['name'].replace('-', '_')}-{data['version']}"


# ------------------------------------------------------------ the source tree ---


def test_root_license_is_mit_for_the_transports_developers() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 The transports developers\n" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


@pytest.mark.parametrize("layer", LAYERS)
def test_each_distribution_declares_its_copy_of_the_license(layer: str) -> None:
    # hatchling takes license files from inside the project folder only, so
    # each one keeps a copy; a copy that drifted would ship another text.
    copy = package_dir(layer) / "LICENSE"
    assert copy.read_bytes() == (ROOT / "LICENSE").read_bytes(), f"run: cp LICENSE {copy.relative_to(ROOT)}"
    data = project(layer)
    assert data["license"] == "MIT"
    assert data["license-files"] == ["LICENSE"]


def test_all_distributions_carry_the_same_four_urls() -> None:
    found = {layer: project(layer).get("urls") for layer in LAYERS}
    assert found == dict.fromkeys(LAYERS, URLS)


@pytest.mark.parametrize("layer", LAYERS)
def test_readme_is_the_long_description_and_points_to_the_docs(layer: str) -> None:
    assert project(layer)["readme"] == "README.md"
    text = (package_dir(layer) / "README.md").read_text()
    assert text.startswith(f"# transports-{layer}\n")
    assert f"{DOCUMENTATION}{layer}.html" in text
    # The pointer to the page on the unrelated distribution named `transports`.
    assert INSTALLING_PAGE in text


def test_installing_page_lists_every_folder_a_checkout_install_needs() -> None:
    """Each row of the table names the folders that pip must build together."""
    rows = [line for line in (ROOT / "docs" / "installing.md").read_text().splitlines() if "./packages/" in line]
    table: dict[str, set[str]] = {}
    for row in rows:
        match = re.fullmatch(r"\| `?([\w -]+?)`? \| (.+) \|", row)
        if match:
            table[match[1]] = set(re.findall(r"\./packages/(transports-\w+)", match[2]))
    everything = {f"transports-{layer}" for layer in LAYERS}
    assert set(table) == {*everything, "all four"}, rows
    assert table.pop("all four") == everything
    for name, folders in table.items():
        assert folders == siblings(name), name


def test_installing_page_gives_an_editable_install_of_every_layer() -> None:
    text = (ROOT / "docs" / "installing.md").read_text()
    commands = [line for line in text.splitlines() if line.startswith("$ ") and " install -e " in line]
    assert len(commands) == 1, commands
    assert sorted(re.findall(r"-e \./packages/transports-(\w+)", commands[0])) == sorted(LAYERS)


# ---------------------------------------------------------- the built files ---


@pytest.fixture(scope="module")
def dist_dir() -> Path:
    value = os.environ.get(DIST_DIR_VARIABLE)
    if not value:
        pytest.skip(
            f"{DIST_DIR_VARIABLE} is not set: the checks of built sdists and wheels run in the packaging "
            "tox environment (bash tools/run-tests.sh -e packaging)"
        )
    path = Path(value)
    assert path.is_dir(), f"{DIST_DIR_VARIABLE}={value} is not a folder"
    return path


def parse_metadata(raw: bytes) -> Message:
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)


def check_metadata(metadata: Message, layer: str) -> None:
    data = project(layer)
    assert metadata["Name"] == data["name"]
    assert metadata["Version"] == data["version"]
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert sorted(metadata.get_all("Project-URL") or []) == sorted(f"{label}, {url}" for label, url in URLS.items())
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload()
    assert isinstance(description, str)
    assert description.strip() == (package_dir(layer) / "README.md").read_text().strip()


def test_dist_dir_holds_one_sdist_and_one_wheel_per_distribution(dist_dir: Path) -> None:
    expected: set[str] = set()
    for layer in LAYERS:
        expected |= {f"{archive_stem(layer)}.tar.gz", f"{archive_stem(layer)}-py3-none-any.whl"}
    # Build tools may leave other files there (uv build writes a .gitignore).
    assert {path.name for path in dist_dir.iterdir() if path.name.endswith((".tar.gz", ".whl"))} == expected


@pytest.mark.parametrize("layer", LAYERS)
def test_wheel_ships_the_license_urls_and_readme(dist_dir: Path, layer: str) -> None:
    stem = archive_stem(layer)
    with zipfile.ZipFile(dist_dir / f"{stem}-py3-none-any.whl") as wheel:
        license_text = wheel.read(f"{stem}.dist-info/licenses/LICENSE")
        metadata = parse_metadata(wheel.read(f"{stem}.dist-info/METADATA"))
    assert license_text == (ROOT / "LICENSE").read_bytes()
    check_metadata(metadata, layer)


@pytest.mark.parametrize("layer", LAYERS)
def test_sdist_ships_the_license_urls_and_readme(dist_dir: Path, layer: str) -> None:
    stem = archive_stem(layer)

    def read(archive: tarfile.TarFile, name: str) -> bytes:
        member = archive.extractfile(f"{stem}/{name}")
        assert member is not None, name
        with member:
            return member.read()

    with tarfile.open(dist_dir / f"{stem}.tar.gz") as sdist:
        license_text = read(sdist, "LICENSE")
        readme = read(sdist, "README.md")
        metadata = parse_metadata(read(sdist, "PKG-INFO"))
    # The sdist's own files are what a wheel built from it takes.
    assert license_text == (ROOT / "LICENSE").read_bytes()
    assert readme == (package_dir(layer) / "README.md").read_bytes()
    check_metadata(metadata, layer)
