"""docs/performance.md quotes a recorded benchmark run, and no page waits for one.

The "Latest results" section must be the recorded run's tables, line for line, so the
page cannot drift from ``benchmarks/results/``; the raw JSON beside them must hold the
same run (same date and options).
"""

from __future__ import annotations

import json
import re

from tests.docs.markdown import DOCS, ROOT, documents

PAGE = DOCS / "performance.md"
_RESULTS = re.compile(r"<!-- results: (\S+) -->")


def results_section() -> tuple[str, str]:
    """(the recorded file the page names, the page's text from that mark to ## Targets)."""
    text = PAGE.read_text()
    mark = _RESULTS.search(text)
    assert mark, "performance.md names its recorded run with <!-- results: FILE -->"
    return mark.group(1), text[mark.end() : text.index("\n## Targets")]


def test_the_results_are_the_recorded_runs_tables_line_for_line() -> None:
    name, section = results_section()
    recorded = (ROOT / name).read_text()
    # The page turns the run's bold table titles into headings; everything else is verbatim.
    recorded_lines = {re.sub(r"^\*\*(.+)\*\*$", r"### \1", line) for line in recorded.splitlines()}
    quoted = [line for line in section.splitlines() if line.strip()]
    assert sum(line.startswith("| ") for line in quoted) > 60  # every table, not a few rows
    missing = [line for line in quoted if line not in recorded_lines]
    assert missing == []


def test_the_recorded_json_is_the_same_run() -> None:
    name, section = results_section()
    raw = json.loads((ROOT / name).with_suffix(".json").read_text())
    recorded = (ROOT / name).read_text()
    assert raw["options"]["quick"] is False
    assert f"authstate bench — {raw['machine']['date']}" in recorded.splitlines()
    for table in raw["tables"]:
        assert f"### {table['title']}" in section


def test_no_page_still_waits_for_a_benchmark_figure() -> None:
    for page in documents():
        assert "TBD" not in page.read_text(), f"{page.relative_to(ROOT)} has a TBD"
