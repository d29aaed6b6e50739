"""Every code example of the documentation runs.

The ```python blocks of each page (docs/**/*.md, README.md and the README of
each distribution) run in order in one namespace, so a page may build an
example up block by block, in a child process of their own: a fresh
interpreter in development mode in which every warning is an error, started
in a temporary directory. A page passes when that process exits with 0
within its time and printed no traceback, no ResourceWarning and no
"Exception ignored" (what a descriptor closed twice, or a transport left
open and collected, prints at exit). ```pycon blocks run as doctests in the
same namespace.

A block that is not Python to run names another language (```console for
shell commands, ```text for output and signatures): on the site, an unnamed
fence or ```py would be shown as Python and never run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RUN_AS_SCRIPT = "python"
RUN_AS_DOCTEST = "pycon"
# Languages of blocks that are shown, not run.
SHOWN_ONLY = frozenset({"console", "text", "toml", "ini", "json", "yaml", "diff", "none"})
# A page's examples together must finish within this many seconds.
PAGE_TIMEOUT = 30.0

OPENING_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository root
    line: int  # of the block's first line of code, counted from 1
    language: str  # "" for a fence without one
    code: str


def pages() -> list[Path]:
    """Every page whose examples must run."""
    found = [path for path in (ROOT / "docs").rglob("*.md") if "_build" not in path.parts]
    found.append(ROOT / "README.md")
    found.extend((ROOT / "packages").glob("*/README.md"))
    return sorted(found)


def fenced_blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """The fenced code blocks of a markdown file, nested ones (in list items) included."""
    relative = path.relative_to(root).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = OPENING_FENCE.match(lines[index])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            index += 1
            continue
        indent = len(opening["indent"])
        fence = opening["fence"]
        language = opening["info"].strip().split(" ", 1)[0]
        closing = re.compile(rf"^ *{re.escape(fence[0])}{{{len(fence)},}} *$")
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            line = lines[end]
            # Markdown removes at most the opening fence's indentation.
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            end += 1
        blocks.append(Block(relative, index + 2, language, "\n".join(body) + "\n"))
        index = end + 1
    return blocks


def runnable_blocks(path: Path) -> list[Block]:
    return [block for block in fenced_blocks(path) if block.language in (RUN_AS_SCRIPT, RUN_AS_DOCTEST)]


# Runs in the child: executes the blocks of one page, given as JSON.
RUNNER = r"""
import doctest
import gc
import json
import sys

with open(sys.argv[1], encoding="utf-8") as blocks_file:
    blocks = json.load(blocks_file)
namespace = {"__name__": "__main__"}
for block in blocks:
    if block["language"] == "python":
        # Blank lines in front keep the line numbers of the page in tracebacks.
        source = "\n" * (block["line"] - 1) + block["code"]
        exec(compile(source, block["path"], "exec"), namespace)
    else:
        test = doctest.DocTestParser().get_doctest(
            block["code"], namespace, block["path"], block["path"], block["line"] - 1
        )
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test, clear_globs=False)
        namespace.update(test.globs)
        if runner.failures:
            sys.exit(f"{block['path']}:{block['line']}: {runner.failures} doctest example(s) failed")
# Whatever an example left open is collected now, while warnings can still
# be reported, rather than at an interpreter exit that may skip it.
namespace.clear()
gc.collect()
"""

PAGES_WITH_EXAMPLES = [path for path in pages() if runnable_blocks(path)]


@pytest.mark.timeout(PAGE_TIMEOUT + 30)
@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_examples_of_page_run(page: Path, tmp_path: Path) -> None:
    blocks = [block.__dict__ for block in runnable_blocks(page)]
    (tmp_path / "blocks.json").write_text(json.dumps(blocks), encoding="utf-8")
    (tmp_path / "runner.py").write_text(RUNNER, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "runner.py", "blocks.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        check=False,
    )
    output = completed.stdout + completed.stderr
    report = f"exit code {completed.returncode}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    assert completed.returncode == 0, report
    for sign_of_trouble in ("Traceback", "ResourceWarning", "Exception ignored"):
        assert sign_of_trouble not in output, report


@pytest.mark.parametrize("page", pages(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_block_names_a_known_language(page: Path) -> None:
    # The site highlights a fence without a language as Python, so a page of
    # docs/ must name one. GitHub and PyPI show such a fence as plain text:
    # a README may leave it out (its shell commands, say).
    unnamed_is_fine = not page.is_relative_to(ROOT / "docs")
    unknown = [
        f"{block.path}:{block.line - 1}: {block.language or 'no language'}"
        for block in fenced_blocks(page)
        if block.language not in (RUN_AS_SCRIPT, RUN_AS_DOCTEST)
        and block.language not in SHOWN_ONLY
        and not (block.language == "" and unnamed_is_fine)
        # MyST directives: {toctree}, {eval-rst}, {include}, ...
        and not block.language.startswith("{")
    ]
    assert not unknown, (
        "fences must say python (run), pycon (run as doctest) or one of "
        + ", ".join(sorted(SHOWN_ONLY))
        + ":\n"
        + "\n".join(unknown)
    )


def test_the_narrative_pages_have_examples_to_run() -> None:
    # Guards the extraction itself: a parser that found nothing would make
    # every page pass.
    with_examples = {path.relative_to(ROOT).as_posix() for path in PAGES_WITH_EXAMPLES}
    expected = {
        "README.md",
        "docs/abc.md",
        "docs/composite.md",
        "docs/getting-started.md",
        "docs/selector.md",
        "docs/socket.md",
        "docs/tls.md",
    }
    assert expected <= with_examples, sorted(expected - with_examples)


def test_block_extraction_keeps_line_numbers_and_nesting(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "\n".join(
            [
                "# Title",
                "",
                "- an item:",
                "",
                "  ```python",
                "  x = 1",
                "  if x:",
                "      y = 2",
                "  ```",
                "",
                "````text",
                "```python",
                "not code",
                "```",
                "````",
                "",
                "```",
                "bare",
                "```",
            ]
        ),
        encoding="utf-8",
    )
    blocks = fenced_blocks(page, root=tmp_path)
    assert [(block.path, block.line, block.language, block.code) for block in blocks] == [
        ("page.md", 6, "python", "x = 1\nif x:\n    y = 2\n"),
        ("page.md", 12, "text", "```python\nnot code\n```\n"),
        ("page.md", 18, "", "bare\n"),
    ]
