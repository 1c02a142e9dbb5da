"""The suite asserts behaviour, never wall time: this machine (and CI's) is shared and
noisy, so a timed assertion fails at random or, set loose enough to pass, proves nothing.
How fast something is belongs to ``authstate bench``; a test says *that* the costly step
never runs (a spy), or in which order things happen. Waiting for an event with a generous
timeout is fine: that guards against a hang and claims no speed."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CLOCKS = {"perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns", "time", "time_ns"}
# Names that hold a clock reading or a duration in the tests that used to time things.
DURATIONS = {"elapsed", "took", "started", "served_in", "latencies", "duration"}


def _is_clock_call(node: ast.AST) -> bool:
    """``time.perf_counter()`` and the like: the module's clocks, not a test's own clock."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCKS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
    )


def _is_duration(node: ast.AST) -> bool:
    """A measured duration: ``clock() - started``, or a name (or item) that holds one."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
        return any(_is_clock_call(side) for side in ast.walk(node))
    if isinstance(node, ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name) and node.id in DURATIONS


def _compares_wall_time(node: ast.AST) -> bool:
    return any(
        isinstance(inner, ast.Compare)
        and any(_is_duration(side) for side in (inner.left, *inner.comparators))
        for inner in ast.walk(node)
    )


def timed_assertions(source: str) -> list[int]:
    """Line numbers of the ``assert`` statements that compare a wall-clock reading."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assert) and _compares_wall_time(node.test)
    ]


def test_no_test_asserts_wall_time() -> None:
    found = {
        str(path.relative_to(TESTS)): lines
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__) and (lines := timed_assertions(path.read_text()))
    }
    assert found == {}


def test_the_check_finds_one() -> None:
    source = (
        "started = time.perf_counter()\n"
        "assert time.perf_counter() - started < 0.5\n"
        "assert elapsed < 2\n"
        "assert latencies[-1] < 1.0\n"
        "assert clock.monotonic() - since == 5\n"  # a test's own clock: allowed
        "assert time.monotonic() < deadline\n"  # a hang guard: allowed
        "assert found(now=time.time()) is None\n"
        "assert response.status_code == 200\n"
    )
    assert timed_assertions(source) == [2, 3, 4]
