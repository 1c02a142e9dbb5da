"""Quote a recorded run in docs/performance.md: its tables replace the "Latest results".

    python benchmarks/quote_run.py benchmarks/results/DATE-full.md

Everything of the run before its targets table goes in, verbatim, between the page's
``<!-- results: FILE -->`` mark (renamed to the new file) and ``## Targets``; the run's
bold table titles become ``###`` headings. The prose around it (the date, the machine,
the targets' commentary) is the writer's to update; tests/docs/test_performance.py checks
that every quoted line is the recorded file's.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "performance.md"


def main(run: str) -> None:
    recorded = (ROOT / run).read_text()
    tables = recorded.split("\n**Targets", 1)[0].rstrip() + "\n"
    tables = re.sub(r"(?m)^\*\*(.+)\*\*$", r"### \1", tables)
    page = PAGE.read_text()
    mark = re.search(r"<!-- results: \S+ -->\n", page)
    if mark is None:
        raise SystemExit("docs/performance.md has no <!-- results: FILE --> mark")
    end = page.index("\n## Targets")
    PAGE.write_text(page[: mark.start()] + f"<!-- results: {run} -->\n\n" + tables + page[end:])


if __name__ == "__main__":
    main(sys.argv[1])
