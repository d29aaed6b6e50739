"""What one layer may use of another, checked on the sources.

- A layer imports another layer's public package (``transports.abc``),
  or that layer's one module for its siblings (``transports.abc._family``),
  and nothing else of it.
- Of the selector layer's protected members (the underscore names of its
  classes), the other layers use only the subclassing surface that
  ``transports.selector._family.SUBCLASSING_SURFACE`` lists, and the
  selector page of the documentation describes every one of them.
- No file of the repository refers to documents that are not in it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("abc", "selector", "socket", "composite")
FAMILY_MODULE = "_family"


def source_files(layer: str) -> list[Path]:
    return sorted((ROOT / "packages" / f"transports-{layer}" / "src").rglob("*.py"))


def imported_modules(path: Path) -> list[str]:
    """Every module named by an absolute import of ``path``, ``from`` imports with their names."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names if alias.name.startswith("_"))
    return found


def selector_protected_names() -> set[str]:
    """The underscore names that the selector layer's classes define (methods, attributes, class constants)."""
    names: set[str] = set()
    for path in source_files("selector"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ClassDef):
                continue
            for member in ast.walk(node):
                name = None
                if isinstance(member, ast.FunctionDef):
                    name = member.name
                elif isinstance(member, ast.Attribute) and isinstance(member.ctx, ast.Store):
                    name = member.attr
                elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
                    name = member.target.id
                elif isinstance(member, ast.Assign):
                    for target in member.targets:
                        if isinstance(target, ast.Name):
                            name = target.id
                if name and name.startswith("_") and not name.startswith("__"):
                    names.add(name)
    return names


def attribute_uses(layer: str) -> dict[str, list[str]]:
    """Every attribute name read, written or defined in ``layer``'s sources, with where."""
    uses: dict[str, list[str]] = {}
    for path in source_files(layer):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute):
                uses.setdefault(node.attr, []).append(f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.FunctionDef):
                uses.setdefault(node.name, []).append(f"{path.name}:{node.lineno}")
    return uses


@pytest.mark.parametrize("layer", LAYERS)
def test_other_layers_are_used_through_their_public_package_or_family_module(layer: str) -> None:
    for path in source_files(layer):
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] != "transports" or len(parts) < 3 or parts[1] == layer:
                continue
            assert parts[2] == FAMILY_MODULE, (
                f"{path.relative_to(ROOT)} imports {module}: another layer's private names come from "
                f"transports.{parts[1]}.{FAMILY_MODULE} only"
            )


def test_family_modules_export_only_what_exists() -> None:
    # The family modules are the only door: whatever they list must be there.
    import importlib

    for owner in ("abc", "selector"):
        module = importlib.import_module(f"transports.{owner}.{FAMILY_MODULE}")
        for name in module.__all__:
            assert hasattr(module, name), f"transports.{owner}.{FAMILY_MODULE} lists {name} but lacks it"


@pytest.mark.parametrize("layer", ["socket", "composite"])
def test_only_the_subclassing_surface_of_the_selector_layer_is_used(layer: str) -> None:
    from transports.selector._family import SUBCLASSING_SURFACE

    protected = selector_protected_names()
    outside = {
        name: where
        for name, where in attribute_uses(layer).items()
        if name in protected and name not in SUBCLASSING_SURFACE
    }
    assert not outside, f"transports.{layer} uses selector internals outside the subclassing surface: {outside}"


def test_the_subclassing_surface_exists_and_is_documented() -> None:
    from transports.selector._family import SUBCLASSING_SURFACE

    protected = selector_protected_names()
    assert protected >= SUBCLASSING_SURFACE, f"listed but not defined: {sorted(SUBCLASSING_SURFACE - protected)}"
    page = (ROOT / "docs" / "selector.md").read_text()
    section = page[page.index("## The subclassing surface") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    undocumented = sorted(name for name in SUBCLASSING_SURFACE if f"`{name}" not in section)
    assert not undocumented, f"docs/selector.md does not describe {undocumented}"


# Words that point at documents outside the repository: the working notes
# the contract came from, and issue numbers of a tracker that ships nowhere.
OUTSIDE_REFERENCES = re.compile(r"\bSPEC\b|\.\./shared\b|\bissue #?\d+|\bsection \d+(, item \d+)? of\b", re.IGNORECASE)
CHECKED_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".sh", ".rst", ".svg"}


def repository_text_files() -> list[Path]:
    skipped = {".git", ".tox", ".venv-tox", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
    files = []
    for path in ROOT.rglob("*"):
        if any(
            part in skipped or (part.startswith(".") and part not in {".ci"}) for part in path.relative_to(ROOT).parts
        ):
            continue
        if path.is_file() and (path.suffix in CHECKED_SUFFIXES or path.parent.name == ".ci"):
            files.append(path)
    return files


def test_no_file_refers_to_documents_outside_the_repository() -> None:
    this_file = Path(__file__).resolve()
    offenders = []
    for path in repository_text_files():
        if path.resolve() == this_file:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE_REFERENCES.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
