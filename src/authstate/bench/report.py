"""The bench report: tables for people, JSON for tools, targets checked as ratios.

A ``Report`` holds the machine description, one ``Table`` per section (formatted cells
plus the raw numbers behind them) and the ``Target`` verdicts. ``render()`` prints it
with rich when available, as aligned plain text otherwise; ``to_json()`` is what
``--json FILE`` writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, cells: Sequence[object], **raw: Any) -> None:
        self.rows.append([str(cell) for cell in cells])
        self.raw.append(raw)


@dataclass
class Target:
    """One goal of the issue, checked on numbers of this run. ``met`` is None when the
    run did not measure it (a store or peer missing, a section left out), True only when
    the margin to the goal exceeds the run-to-run noise of the figure (``verdict`` then
    says "met"); a margin inside the noise is "within noise", never "met"."""

    name: str
    goal: str
    measured: str
    met: bool | None
    dominant: str = ""
    verdict: str = ""
    noise: str = ""

    def __post_init__(self) -> None:
        if not self.verdict:
            self.verdict = {True: "met", False: "NOT met", None: "not measured"}[self.met]


def judge(value: float, limit: float, *, at_most: bool, noise: float) -> tuple[bool | None, str]:
    """``(met, verdict)`` for ``value`` against ``limit``; ``noise`` is the figure's
    run-to-run spread relative to ``limit`` (NaN when unknown: then the verdict says so)."""
    if value is None or math.isnan(value):
        return None, "not measured"
    margin = (limit - value) / limit if at_most else (value - limit) / limit
    known = not math.isnan(noise)
    spread = noise if known else 0.0
    if margin > spread:
        return True, "met" if known else "met (noise not measured)"
    if margin < -spread:
        return False, "NOT met"
    return False, "within noise"


def percent(noise: float) -> str:
    """A relative noise as ``±3.1%`` ("-" when unknown)."""
    return "-" if noise is None or math.isnan(noise) else f"±{noise * 100:.1f}%"


@dataclass
class Report:
    machine: dict[str, Any]
    options: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def table(self, key: str) -> Table | None:
        return next((t for t in self.tables if t.key == key), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=_jsonable, allow_nan=True)


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


# -- number formatting ------------------------------------------------------------------------
def us(value: float) -> str:
    """µs with three significant digits."""
    if value is None or math.isnan(value):
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(value: float) -> str:
    if value is None or math.isnan(value):
        return "-"
    if value >= 100:
        return f"{value:,.0f}×"
    if value >= 10:
        return f"{value:.1f}×"
    return f"{value:.2f}×"


def ms(value: float) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def count(value: float) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.0f}"


# -- rendering --------------------------------------------------------------------------------
def _header(report: Report) -> list[str]:
    m = report.machine
    lines = [
        f"authstate bench — {m.get('date', '')}",
        f"{m.get('cpu', '')}, {m.get('cores', '?')} cores, {m.get('memory', '')}; "
        f"Python {m.get('python', '')}, {m.get('system', '')}; load {m.get('load', '')}",
    ]
    packages = m.get("packages", {})
    if packages:
        lines.append("packages: " + ", ".join(f"{k} {v}" for k, v in sorted(packages.items())))
    if m.get("wrk"):
        lines.append(f"load generator: {m['wrk']}")
    opts = report.options
    lines.append(
        "options: " + ", ".join(f"{k}={v}" for k, v in opts.items() if v not in (None, "", []))
    )
    return lines


def _verdict(target: Target) -> str:
    return target.verdict


def render(report: Report, out: TextIO) -> None:
    try:
        from rich.console import Console
        from rich.table import Table as RichTable
    except ImportError:
        render_plain(report, out)
        return
    console = Console(file=out, width=max(120, _widest(report)), highlight=False)
    for line in _header(report):
        console.print(line, markup=False)
    for table in report.tables:
        rich_table = RichTable(title=table.title, title_justify="left", show_lines=False)
        for index, column in enumerate(table.columns):
            rich_table.add_column(column, justify="left" if index == 0 else "right")
        for row in table.rows:
            rich_table.add_row(*row)
        console.print()
        console.print(rich_table)
        for note in table.notes:
            console.print(f"  {note}", markup=False)
    if report.targets:
        rich_table = RichTable(title="Targets (ratios measured in this run)", title_justify="left")
        for column in ("target", "goal", "measured", "noise", "verdict"):
            rich_table.add_column(column)
        for target in report.targets:
            rich_table.add_row(
                target.name, target.goal, target.measured, target.noise or "-", _verdict(target)
            )
        console.print()
        console.print(rich_table)
    for line in report.skipped:
        console.print(f"skipped: {line}", markup=False)
    console.print(f"\nfinished in {report.seconds:.0f} s", markup=False)


def _widest(report: Report) -> int:
    widest = 0
    for table in report.tables:
        widths = [len(c) for c in table.columns]
        for row in table.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
        widest = max(widest, sum(widths) + 3 * len(widths) + 4)
    return widest


def render_plain(report: Report, out: TextIO) -> None:
    for line in _header(report):
        print(line, file=out)
    for table in report.tables:
        print(f"\n{table.title}", file=out)
        print(_plain_table(table.columns, table.rows), file=out)
        for note in table.notes:
            print(f"  {note}", file=out)
    if report.targets:
        print("\nTargets (ratios measured in this run)", file=out)
        rows = [[t.name, t.goal, t.measured, t.noise or "-", _verdict(t)] for t in report.targets]
        print(_plain_table(["target", "goal", "measured", "noise", "verdict"], rows), file=out)
    for line in report.skipped:
        print(f"skipped: {line}", file=out)
    print(f"\nfinished in {report.seconds:.0f} s", file=out)


def _plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    lines = []
    for index, row in enumerate([list(columns), *rows]):
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(report: Report) -> str:
    """The report as Markdown (for docs/performance.md and benchmarks/results/)."""
    parts = ["```", *_header(report), "```"]
    for table in report.tables:
        parts.append(f"\n**{table.title}**\n")
        parts.append("| " + " | ".join(table.columns) + " |")
        parts.append(
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.columns))) + "|"
        )
        for row in table.rows:
            parts.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        for note in table.notes:
            parts.append(f"\n{note}")
    if report.targets:
        parts.append("\n**Targets (ratios measured in this run)**\n")
        parts.append("| target | goal | measured | noise | verdict |")
        parts.append("|---|---|---|---|---|")
        for t in report.targets:
            parts.append(
                f"| {t.name} | {t.goal} | {t.measured} | {t.noise or '-'} | {_verdict(t)} |"
            )
    for line in report.skipped:
        parts.append(f"\nskipped: {line}")
    return "\n".join(parts) + "\n"
