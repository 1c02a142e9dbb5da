"""``StoreSync``: keeps one node's memory in step with the store. It applies each change the
bus delivers (revocations, sessions, keys), rebuilds the node's view after a bus
interruption, runs the periodic maintenance, and reports the store's health.
"""

from __future__ import annotations

import asyncio
import logging

from authstate.auth._node import Node
from authstate.errors import StoreUnavailable
from authstate.stores.base import Change, ChangeKind

log = logging.getLogger("authstate")

_MAINTENANCE_INTERVAL_SECONDS = 60.0


class StoreSync(Node):
    """The bus's callbacks and the maintenance loop that ``start()`` installs."""

    def _on_change(self, change: Change) -> None:
        ctx = self.context
        ctx.revocation.apply(change)
        if change.kind is ChangeKind.SID:
            ctx.sessions.drop_handle(change.value)
        elif change.kind is ChangeKind.SESSION:
            ctx.sessions.drop(change.value)
        elif change.kind is ChangeKind.KEYS:
            self._tasks.append(asyncio.get_running_loop().create_task(self._reload_keys()))

    async def _reload_keys(self) -> None:
        await self.context.keys.load()
        self.tokens.forget_all()

    async def _reload_revocations(self) -> None:
        ctx = self.context
        changes, seq = await ctx.store.active_revocations(self.clock.now())
        ctx.revocation.load(changes, seq)

    async def _reconcile(self) -> None:
        """Rebuild this node's view from the store: after a bus interruption, and after the
        store lost data (its change log went back). The bus awaits this before it reports
        itself healthy again, so no cached session or verified token from before outlives
        it (a session the store lost would otherwise stay cached and keep working)."""
        ctx = self.context
        ctx.sessions.clear()
        self.tokens.forget_all()
        await self._reload_revocations()
        await self._reload_keys()
        # Anything cached while the reloads ran may predate them.
        ctx.sessions.clear()
        log.info("reconciled with the store after a bus interruption")

    async def _maintenance_loop(self) -> None:
        ctx = self.context
        while True:
            await asyncio.sleep(_MAINTENANCE_INTERVAL_SECONDS)
            try:
                await ctx.store.purge_expired(self.clock.now())
                if await ctx.keys.purge_retired():
                    await self._reload_keys()
                ctx.revocation.prune()
            except StoreUnavailable:
                log.warning("maintenance skipped: store unavailable")

    async def health(self) -> None:
        """Raise ``StoreUnavailable`` when the store or bus is unusable."""
        ctx = self.context
        await ctx.store.ping()
        if not ctx.freshness.is_fresh():
            raise StoreUnavailable(reason="invalidation bus is stale")
