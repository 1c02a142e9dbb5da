"""Fenced code blocks of the README and docs/, with the check each one asks for.

A block may be preceded (blank lines allowed) by an HTML comment that names its check:

    <!-- check: excerpt examples/fastapi_app.py -->   lines appear, contiguous, in that file
    <!-- check: file app.py = examples/fastapi_app.py -->  the whole file; the quickstart test
                                                     writes it to app.py
    <!-- check: compile -->     Python that cannot run alone: compiled and type-checked only
    <!-- check: pytest -->      a test module: run with pytest
    <!-- check: id NAME -->     Python run by a dedicated test that finds it by NAME
    <!-- check: run -->         shell commands the quickstart test runs, in order
    <!-- check: background -->  a shell command the quickstart test starts and leaves running
    <!-- check: output -->      what the previous "run" block prints ("…" matches anything)
    <!-- check: none -->        not checked (an install step, a placeholder)

Without a comment, a ``python`` block is run as it is (top-level ``await`` allowed) and
every ``authstate`` command in a ``sh`` block is parsed by the real argument parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^(`{3,})([\w+-]*)[^\n]*$")
_CHECK = re.compile(r"^<!--\s*check:\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    check: str  # the check comment's words, "" when there is none

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str:
        return self.check.split()[0] if self.check else ""

    @property
    def args(self) -> list[str]:
        return self.check.split()[1:]


def documents() -> list[Path]:
    """README.md, examples/README.md and every page under docs/."""
    pages = [ROOT / "README.md", *sorted(DOCS.glob("**/*.md"))]
    examples = ROOT / "examples" / "README.md"
    if examples.exists():
        pages.append(examples)
    return pages


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    check = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        comment = _CHECK.match(line.strip())
        fence = _FENCE.match(line)
        if comment:
            check = comment.group(1)
        elif fence:
            marker, lang = fence.group(1), fence.group(2).lower()
            start = index
            body: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].startswith(marker):
                body.append(lines[index])
                index += 1
            found.append(Block(path, start + 1, lang, "\n".join(body) + "\n", check))
            check = ""
        elif line.strip():
            check = ""  # a comment applies to the block right after it only
        index += 1
    return found


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]


def block_by_id(name: str) -> Block:
    matches = [b for b in all_blocks() if b.kind == "id" and b.args == [name]]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} blocks marked 'check: id {name}'")
    return matches[0]
