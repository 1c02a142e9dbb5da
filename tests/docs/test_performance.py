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


_CITED = re.compile(r"\(\.\./(benchmarks/results/[^)\s]+\.md)\)")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w.])")


def sections_citing_a_recorded_run() -> list[tuple[str, str, str]]:
    """(heading, the results file it cites, its text) for every ## section after the
    latest results that quotes a recorded run of its own."""
    text = PAGE.read_text()
    found = []
    for chunk in text.split("\n## ")[1:]:
        heading, _, body = chunk.partition("\n")
        cited = _CITED.findall(body)
        has_table = any(line.startswith("| ") for line in body.splitlines())
        if cited and has_table and heading not in ("Latest results", "Targets"):
            found.append((heading, cited[0], body))
    return found


def test_every_figure_of_a_section_with_its_own_run_is_in_that_run() -> None:
    """A section that cites a recorded file (JWE, WSGI, …) quotes only numbers that file
    holds: each figure of its tables, ranges split, is in the recorded tables."""
    sections = sections_citing_a_recorded_run()
    assert {heading for heading, _, _ in sections} >= {
        "Encrypted tokens (JWE)",
        "WSGI adapters (Flask, Django)",
    }
    for heading, name, body in sections:
        recorded = set(_NUMBER.findall((ROOT / name).read_text()))
        rows = [line for line in body.splitlines() if line.startswith("| ")]
        figures = {n for row in rows for n in _NUMBER.findall(row.replace("\u2013", " "))}
        assert figures, heading
        assert figures - recorded == set(), (heading, sorted(figures - recorded))
