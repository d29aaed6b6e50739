"""The API reference documents every public name, and its Python links work offline.

The reference pages (docs/api/*.md) name each object to document by hand;
these tests read the object inventory of the built site (objects.inv, the
file other Sphinx projects link to) and fail when a name of a package's
``__all__`` is missing from it.

``tox -e docs`` builds the site first and tells where, in
TRANSPORTS_DOCS_HTML; without it, the tests build the site themselves in a
temporary folder.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def public_packages() -> list[str]:
    """Every package of the source tree with no private part in its name.

    Found here, not copied from docs/conf.py: a new package that the
    configuration misses then fails this test.
    """
    found = []
    for init in ROOT.glob("packages/*/src/transports/**/__init__.py"):
        parts = init.parent.relative_to(ROOT / "packages").parts[2:]  # after "<distribution>/src"
        if not any(part.startswith("_") for part in parts):
            found.append(".".join(parts))
    return sorted(found)


PUBLIC_PACKAGES = public_packages()
BUILD_TIMEOUT = 300


def test_the_public_packages_are_found() -> None:
    # (An empty list would make the test below pass by running no case.)
    assert {"transports.abc", "transports.socket", "transports.abc.testing"} <= set(PUBLIC_PACKAGES)


def read_inventory(path: Path) -> dict[str, tuple[str, str]]:
    """Names of a Sphinx inventory (version 2) mapped to (domain:type, uri)."""
    data = path.read_bytes()
    header, _, body = data.partition(b"\n")
    assert header == b"# Sphinx inventory version 2", f"{path}: not a version 2 inventory"
    # Three more header lines (project, version, compression note).
    for _ in range(3):
        header_line, _, body = body.partition(b"\n")
        assert header_line.startswith(b"# "), f"{path}: unexpected header line {header_line!r}"
    entries: dict[str, tuple[str, str]] = {}
    for line in zlib.decompress(body).decode().splitlines():
        # name domain:type priority uri display-name; only the name may hold spaces.
        name, object_type, _priority, uri, _display = line.rsplit(" ", 4)
        if uri.endswith("$"):
            uri = uri[:-1] + name
        entries[name] = (object_type, uri)
    return entries


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("TRANSPORTS_DOCS_HTML")
    if given:
        site = Path(given)
        assert (site / "objects.inv").is_file(), f"TRANSPORTS_DOCS_HTML={given} holds no built site"
        return site
    site = tmp_path_factory.mktemp("html")
    completed = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-d", str(site / ".doctrees"), "docs", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return site


@pytest.mark.timeout(BUILD_TIMEOUT + 60)
@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_every_public_name_is_in_the_reference(package: str, built_site: Path) -> None:
    documented = read_inventory(built_site / "objects.inv")
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if f"{package}.{name}" not in documented]
    assert not missing, f"add to docs/api/ the names of {package}.__all__ missing from the reference: {missing}"
    for name in module.__all__:
        object_type, uri = documented[f"{package}.{name}"]
        assert object_type.startswith("py:"), (name, object_type)
        assert uri.startswith("api/"), f"{package}.{name} is documented on {uri}, not on an API page"


@pytest.mark.timeout(BUILD_TIMEOUT + 60)
def test_the_reference_documents_no_private_path_alone(built_site: Path) -> None:
    # Autodoc also records a class under the private module that defines it
    # (transports.socket._stream.SocketStreamTransport); a private name
    # without its public one would mean a page documents the wrong object.
    documented = read_inventory(built_site / "objects.inv")
    public = {name for name in documented if not any(part.startswith("_") for part in name.split("."))}
    private_classes = [
        name
        for name, (object_type, _) in documented.items()
        if name.startswith("transports.") and object_type in ("py:class", "py:exception") and name not in public
    ]
    public_short_names = {name.rsplit(".", 1)[1] for name in public if name.startswith("transports.")}
    orphans = [name for name in private_classes if name.rsplit(".", 1)[1] not in public_short_names]
    assert not orphans, orphans


def test_python_inventory_is_up_to_date() -> None:
    completed = subprocess.run(
        [sys.executable, "tools/make_python_inventory.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_python_inventory_links_to_the_python_documentation() -> None:
    entries = read_inventory(ROOT / "docs" / "_inventories" / "python.inv")
    # The names the reference needs most; the build fails on any other
    # that is missing, this only guards the file's format.
    for name in ("socket.socket", "ssl.SSLContext", "TimeoutError", "math.inf", "selectors.BaseSelector"):
        object_type, uri = entries[name]
        assert object_type.startswith("py:"), (name, object_type)
        assert uri.endswith("#" + name), (name, uri)
        assert uri.startswith("library/"), (name, uri)


def test_sphinx_reads_the_python_inventory() -> None:
    # Sphinx's own reader, in a child: the test suite does not import Sphinx.
    reader = (
        "import sys\n"
        "from sphinx.util.inventory import InventoryFile\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    inventory = InventoryFile.loads(f.read(), uri='https://docs.python.org/3')\n"
        "print(inventory.data['py:class']['socket.socket'].uri)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", reader, str(ROOT / "docs" / "_inventories" / "python.inv")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "https://docs.python.org/3/library/socket.html#socket.socket"
