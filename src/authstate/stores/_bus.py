"""What the server stores' invalidation buses share: delivery, health and reconnection.

A bus delivers every change of one store, in seq order, to the listeners registered with
``start``. The change log is the truth: ``catch_up`` reads it with ``read_log(last delivered
seq)``, so delivery stays in order and reconciliation after a reconnect is the same code path
as an ordinary wake-up. One broken listener never stops delivery to the others.

Data loss: seq numbers only count within one log epoch (``stores.base``). Every catch-up
checks the epoch and head that came with the changes; when the epoch changed or the head is
below the last delivered seq, the store lost data (emptied, restored from an older snapshot,
failed over to a replica that was behind), and later changes would reuse numbers this node
has already passed. The bus then logs a warning, awaits the reconcilers (which rebuild
revocations, caches and keys from the store), and follows the new log from its head. After
any interruption the reconcilers also run, and in both cases they finish *before* the bus
reports itself healthy, so no cache answers from before the loss once health is back.

The subclass owns the transport: how a connection starts listening (``_listen``), the
loop that hears changes and proves the connection alive (``_serve``, which reports health
with ``_set_healthy``), and how a connection is let go (``_close``). This base runs that
loop in a task, reports the bus unhealthy when it fails and reconnects with exponential
backoff. ``healthy_since()`` never claims more than was delivered, so a node that stops
hearing fails closed once the staleness bound has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from authstate._time import Clock
from authstate.stores.base import Change, ChangeListener, LogRead, Reconciler

log = logging.getLogger("authstate")

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 2.0
_STOP_GRACE = 2.0  # seconds for the listening task to end once cancelled


def new_epoch() -> str:
    """A fresh change-log epoch id: random, so two logs never share one by chance."""
    return secrets.token_hex(8)


def log_went_back(read: LogRead, epoch: str | None, last_seq: int) -> bool:
    """Whether ``read`` shows a log other than the one followed up to ``last_seq`` in
    ``epoch``: a new epoch (the log was lost and made again), or a head below ``last_seq``
    (restored from an older copy). Shared by every bus (and SQLite's poller)."""
    return (epoch is not None and read.epoch != epoch) or read.head < last_seq


class CatchUpBus(ABC):
    """Delivers every change of one store, in seq order, to the registered listeners."""

    _server: ClassVar[str]  # names the server in the log: "lost its <server> connection"
    _task_name: ClassVar[str]

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        read_log: Callable[[int], Awaitable[LogRead]],
        clock: Clock,
        *,
        keepalive: float = 1.0,
    ) -> None:
        self._connect = connect  # a fresh dedicated connection for each attempt
        self._read_log = read_log
        self._clock = clock
        self._keepalive = keepalive
        # How long an answer (PONG, SELECT 1, subscribe) may take before the connection is
        # given up: not shorter than 2 s, so a short heartbeat on a busy machine does not
        # turn slow answers into reconnects (freshness already fails closed meanwhile).
        self._answer_timeout = max(2 * keepalive, 2.0)
        self._listeners: list[ChangeListener] = []
        self._reconcilers: list[Reconciler] = []
        self._last_seq = 0
        self._epoch: str | None = None  # of the log delivered from; None until first read
        # Set after an interruption or on data loss; cleared once the reconcilers succeeded.
        self._reconcile_due = False
        self._deliver_lock = asyncio.Lock()
        self._healthy_since: float | None = None
        self._healthy = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None  # the connection ``_run`` listens on, for ``stop``
        self._lag: float | None = None  # the last probe of the listening path (``lag``)

    def lag(self) -> float | None:
        """The last measured delay of the listening path (None while down or unmeasured)."""
        return self._lag if self._healthy_since is not None else None

    @property
    def keepalive(self) -> float:
        """Seconds between two health checks of the listening connection."""
        return self._keepalive

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(
        self, listener: ChangeListener, head: LogRead, reconcile: Reconciler | None = None
    ) -> None:
        """Register ``listener`` (and its ``reconcile``); the first call starts delivery of
        changes after ``head`` (a ``read_log`` result: its epoch and head seq)."""
        self._listeners.append(listener)
        if reconcile is not None:
            self._reconcilers.append(reconcile)
        if self._task is None:
            self._last_seq, self._epoch = head.head, head.epoch
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name=self._task_name)

    def healthy_since(self) -> float | None:
        return self._healthy_since

    async def wait_healthy(self, within: float) -> bool:
        """Wait until the bus listens and has caught up; False if that took over ``within`` s."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._healthy.wait(), within)
        return self._healthy.is_set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._set_unhealthy()
        self._listeners.clear()
        self._reconcilers.clear()
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task}, timeout=_STOP_GRACE)
        if not task.done():
            # The driver swallowed the cancellation (seen with redis-py's pub/sub reads under
            # Python 3.11, where a timeout racing a cancel can eat it) and went on reading:
            # close its connection, so that the read ends, and cancel again.
            conn = self._conn
            if conn is not None:
                await self._close(conn)
            task.cancel()
            await asyncio.wait({task}, timeout=_STOP_GRACE)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a bus stopping after a failure is not news

    async def catch_up(self) -> None:
        """Deliver every logged change above the last delivered seq, reconciling first when
        due or when the log lost data (raises store and reconciler errors)."""
        async with self._deliver_lock:
            read = await self._read_log(self._last_seq)
            lost = log_went_back(read, self._epoch, self._last_seq)
            if lost:
                log.warning(
                    "the %s change log went back (epoch %s seq %d -> epoch %s head %d): the"
                    " store lost data; reconciling and following the new log",
                    self._server,
                    self._epoch,
                    self._last_seq,
                    read.epoch,
                    read.head,
                )
                self._reconcile_due = True
                # Until reconciled, caches on this node may hold what the store lost: say
                # stale, so they are bypassed (health returns with the next round).
                self._set_unhealthy()
            if self._reconcile_due:
                for reconcile in list(self._reconcilers):
                    await reconcile()
                self._reconcile_due = False
            if lost:
                # The reconcilers read the store after ``read``: they cover its changes.
                self._epoch, self._last_seq = read.epoch, read.head
                return
            self._epoch = read.epoch
            for change in read.changes:
                self._deliver(change)

    def _deliver(self, change: Change) -> None:
        """Hand ``change`` to every listener unless it was delivered already (hold the lock)."""
        if change.seq <= self._last_seq:
            return
        self._last_seq = change.seq
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                # One broken listener must not stop delivery to the others.
                log.exception("change listener failed")

    def _set_healthy(self, started: float) -> None:
        """Everything committed before ``started`` (the store clock) has been delivered."""
        self._healthy_since = started
        self._healthy.set()

    def _set_unhealthy(self) -> None:
        self._healthy_since = None
        self._healthy.clear()

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            conn: Any = None
            try:
                conn = self._conn = await self._connect()
                listening = await self._listen(conn)
                backoff = _BACKOFF_FIRST
                await self._serve(listening)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Anything from the driver, the network or the store: report unhealthy, retry.
                if self._healthy_since is not None:
                    log.warning("invalidation bus lost its %s connection: %r", self._server, exc)
                self._set_unhealthy()
                # Whatever went by meanwhile, rebuild from the store before health is back.
                self._reconcile_due = True
            finally:
                self._conn = None
                if conn is not None:
                    await self._close(conn)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    @abstractmethod
    async def _listen(self, conn: Any) -> Any:
        """Make the fresh ``conn`` listen; return what ``_serve`` reads from."""

    @abstractmethod
    async def _serve(self, listening: Any) -> None:
        """Deliver and keep health until the connection fails (only returns by raising)."""

    @abstractmethod
    async def _close(self, conn: Any) -> None:
        """Let ``conn`` go after a failure or on stop; must not raise."""
