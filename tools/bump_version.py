"""Set, or check, the one version shared by the four distributions.

    python tools/bump_version.py 0.2.0    # rewrite every version and sibling pin
    python tools/bump_version.py --check  # exit 1 when versions or pins drift

Each ``packages/*/pyproject.toml`` carries ``version = "X"`` and pins its
siblings as ``transports-NAME==X``; both are rewritten together.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
VERSION_LINE = re.compile(r'^version = "[^"]*"$', re.MULTILINE)
SIBLING_PIN = re.compile(r'"(transports-[a-z]+)\s*==\s*[^"]*"')
VERSION_SYNTAX = re.compile(r"^\d+\.\d+\.\d+([.-]?(a|b|rc|dev|post)\d+)?$")


def pyproject_files() -> list[Path]:
    return sorted(PACKAGES.glob("*/pyproject.toml"))


def drift() -> list[str]:
    """Describe every version or pin that differs from the others."""
    problems: list[str] = []
    versions: dict[str, str] = {}
    names: set[str] = set()
    for path in pyproject_files():
        project = tomllib.loads(path.read_text())["project"]
        versions[project["name"]] = project["version"]
        names.add(project["name"])
    if len(set(versions.values())) > 1:
        problems.append(f"versions differ: {versions}")
    for path in pyproject_files():
        project = tomllib.loads(path.read_text())["project"]
        for requirement in project.get("dependencies", []):
            dist = re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0]
            if dist in names:
                expected = f"{dist}=={project['version']}"
                if requirement.replace(" ", "") != expected:
                    problems.append(f"{path.relative_to(ROOT)}: {requirement!r} should be {expected!r}")
    return problems


def bump(version: str) -> None:
    for path in pyproject_files():
        text = path.read_text()
        text = VERSION_LINE.sub(f'version = "{version}"', text, count=1)
        text = SIBLING_PIN.sub(lambda m: f'"{m.group(1)}=={version}"', text)
        path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("version", nargs="?", help="the new version, e.g. 0.2.0")
    group.add_argument("--check", action="store_true", help="only report drift")
    args = parser.parse_args(argv)
    if args.version is not None:
        if not VERSION_SYNTAX.match(args.version):
            parser.error(f"not a release version: {args.version!r}")
        bump(args.version)
    problems = drift()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
