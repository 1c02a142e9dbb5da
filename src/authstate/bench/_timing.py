"""Interleaved sampling: every candidate of a table is measured in the same rounds.

The machine is shared and noisy, so an absolute time means little; a ratio of two
candidates sampled within the same round means a lot. Each candidate is first calibrated
to ``sample_seconds`` per sample; then all candidates are sampled round-robin (the order
rotated every round) for ``rounds`` rounds, with the garbage collector off inside a
sample. Results keep every sample, so medians and per-round ratios can be taken later.

Times are CPU time of this process (``time.process_time``) unless a candidate waits on
another process (a store server): then wall time, as the caller asks. CPU time does not
count the moments another engineer's test run held the core, which is what we want.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

SyncOp = Callable[[], object]
AsyncOp = Callable[[], Awaitable[object]]


@dataclass
class Series:
    """The samples of one candidate, in µs per operation, one per round."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")


def median_ratio(numerator: Series, denominator: Series) -> float:
    """The median over rounds of numerator/denominator sampled in the same round."""
    pairs = [a / b for a, b in zip(numerator.samples, denominator.samples, strict=False) if b > 0]
    return statistics.median(pairs) if pairs else float("nan")


def median_difference(minuend: Series, subtrahend: Series) -> float:
    """The median over rounds of minuend - subtrahend sampled in the same round (µs)."""
    pairs = [a - b for a, b in zip(minuend.samples, subtrahend.samples, strict=False)]
    return statistics.median(pairs) if pairs else float("nan")


def relative_spread(values: Sequence[float]) -> float:
    """Run-to-run noise of ``values`` (one per round or pass): half their interquartile
    range, relative to their median. NaN with fewer than three values (no spread known)."""
    finite = sorted(v for v in values if v == v)
    if len(finite) < 3:
        return float("nan")
    q1, _, q3 = statistics.quantiles(finite, n=4, method="inclusive")
    middle = statistics.median(finite)
    return (q3 - q1) / 2 / abs(middle) if middle else float("nan")


def ratio_noise(numerator: Series, denominator: Series) -> float:
    """Relative noise of ``median_ratio``: the spread of the per-round ratios."""
    return relative_spread(
        [a / b for a, b in zip(numerator.samples, denominator.samples, strict=False) if b > 0]
    )


def difference_noise(minuend: Series, subtrahend: Series) -> float:
    """Absolute noise (µs) of ``median_difference``: half the IQR of per-round differences."""
    pairs = sorted(a - b for a, b in zip(minuend.samples, subtrahend.samples, strict=False))
    if len(pairs) < 3:
        return float("nan")
    q1, _, q3 = statistics.quantiles(pairs, n=4, method="inclusive")
    return (q3 - q1) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by the nearest-rank method; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _clock(wall: bool) -> Callable[[], float]:
    return time.perf_counter if wall else time.process_time


def _run_sync(op: SyncOp, n: int, clock: Callable[[], float]) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        for _ in range(n):
            op()
        return clock() - start
    finally:
        if enabled:
            gc.enable()


async def _run_async(op: AsyncOp, n: int, clock: Callable[[], float]) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        for _ in range(n):
            await op()
        return clock() - start
    finally:
        if enabled:
            gc.enable()


def _iterations(elapsed: float, n: int, target: float, limit: int) -> int:
    per_op = max(elapsed / n, 1e-8)
    return max(1, min(limit, int(target / per_op)))


async def sample(
    candidates: dict[str, SyncOp | AsyncOp],
    *,
    rounds: int,
    sample_seconds: float,
    is_async: Callable[[str], bool],
    wall: Callable[[str], bool] = lambda name: False,
    on_round: Callable[[], None] | None = None,
    max_iterations: int = 1_000_000,
) -> dict[str, Series]:
    """Sample every candidate ``rounds`` times, interleaved; µs per operation."""
    sizes: dict[str, int] = {}
    for name, op in candidates.items():
        clock = _clock(wall(name))
        n = 1
        while True:  # calibrate: grow n until one sample takes a fifth of the target
            if is_async(name):
                elapsed = await _run_async(op, n, clock)  # type: ignore[arg-type]
            else:
                elapsed = _run_sync(op, n, clock)
            if elapsed >= sample_seconds / 5 or n >= max_iterations:
                break
            n = min(max_iterations, n * 4)
        sizes[name] = _iterations(elapsed, n, sample_seconds, max_iterations)
    series = {name: Series(name) for name in candidates}
    names = list(candidates)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            op, n, clock = candidates[name], sizes[name], _clock(wall(name))
            if is_async(name):
                elapsed = await _run_async(op, n, clock)  # type: ignore[arg-type]
            else:
                elapsed = _run_sync(op, n, clock)
            series[name].samples.append(elapsed / n * 1e6)
        if on_round is not None:
            on_round()
    return series
