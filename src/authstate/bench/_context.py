"""What every section of a run shares: the options, the stores and the progress display."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from authstate.bench._env import BenchStores

SECTIONS = ("micro", "inproc", "wsgi", "sizes", "e2e", "revocation", "scale")
MODES = ("stateless", "session", "hybrid")
ALGORITHMS = ("EdDSA", "ES256", "HS256")


@dataclass(frozen=True)
class Options:
    """How much to measure. ``quick()`` fits a run in under a minute; ``full()`` is what
    the recorded results in ``benchmarks/`` use."""

    quick: bool = False
    sections: tuple[str, ...] = SECTIONS
    stores: tuple[str, ...] = ("memory", "sqlite", "redis", "postgres")
    algorithms: tuple[str, ...] = ALGORITHMS
    peers: tuple[str, ...] = ()
    rounds: int = 15  # interleaved rounds of the micro and in-process tables
    sample_seconds: float = 0.03  # one sample of one candidate
    duration: float = 5.0  # seconds of load per end-to-end run
    warmup: float = 2.0  # seconds of load on each server before the measured runs
    passes: int = 5  # end-to-end passes (every configuration once per pass)
    connections: int = 32  # end-to-end concurrent connections
    e2e_modes: tuple[str, ...] = MODES
    e2e_stores: tuple[str, ...] = ("memory", "sqlite", "redis", "postgres")
    trials: int = 200  # revocation propagation trials per store
    scale: tuple[int, ...] = (1_000, 100_000, 1_000_000)
    redis_scale: tuple[int, ...] = (10_000_000,)  # more sizes for Redis and Redis Cluster
    scale_cluster: bool = True  # the scale section starts a local Redis Cluster
    # uvicorn --http of the end-to-end section's bare-app rows, each stack with its own
    # no-auth baseline: h11 (pure Python) and httptools, the parser `authstate serve` runs.
    http: tuple[str, ...] = ("h11", "httptools")
    loop: str = "asyncio"  # uvicorn --loop

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def quick(**overrides: Any) -> Options:
    base: dict[str, Any] = {
        "quick": True,
        "rounds": 5,
        "sample_seconds": 0.008,
        "duration": 1.0,
        "warmup": 0.5,
        "passes": 1,
        "e2e_modes": MODES,
        "e2e_stores": ("memory",),
        "trials": 15,
        "scale": (1_000, 10_000),
        "redis_scale": (),
        "scale_cluster": False,
    }
    base.update(overrides)
    return Options(**base)


def full(**overrides: Any) -> Options:
    return Options(**overrides)


class Progress:
    """Rich progress bars on stderr (one per section), or nothing without rich."""

    def __init__(self, enabled: bool = True) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if not enabled:
            return
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress
        except ImportError:
            return
        self._progress = RichProgress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[what]}"),
            console=Console(file=sys.stderr),
            transient=False,
        )

    @contextlib.contextmanager
    def running(self) -> Iterator[Progress]:
        if self._progress is None:
            yield self
            return
        with self._progress:
            yield self

    def section(self, name: str, total: int) -> None:
        if self._progress is not None:
            self._tasks[name] = self._progress.add_task(name, total=max(total, 1), what="")

    def advance(self, name: str, steps: int = 1, what: str = "") -> None:
        if self._progress is not None and name in self._tasks:
            self._progress.update(self._tasks[name], advance=steps, what=what)

    def say(self, name: str, what: str) -> None:
        if self._progress is not None and name in self._tasks:
            self._progress.update(self._tasks[name], what=what)

    def finish(self, name: str) -> None:
        if self._progress is not None and name in self._tasks:
            task = self._tasks[name]
            total = self._progress.tasks[task].total
            self._progress.update(task, completed=total, what="done")


@dataclass
class Context:
    options: Options
    stores: BenchStores
    progress: Progress
    tmpdir: str
    notes: list[str] = field(default_factory=list)

    def store_kinds(self, wanted: tuple[str, ...] | None = None) -> list[str]:
        kinds = wanted if wanted is not None else self.options.stores
        return [k for k in kinds if k in self.stores.urls]
