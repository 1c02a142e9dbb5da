"""``EventCounts``: a subscriber that counts lifecycle events by name (plain integers, read
by ``authstate.metrics`` at scrape time)."""

from __future__ import annotations

from collections import Counter

from authstate.events import AuthEvent, LoggedOut, LoggedOutEverywhere


class EventCounts:
    """Counts every event by its ``name``; logouts also by scope. Subscribe it once:
    ``auth.subscribe(counts)`` (``authstate.metrics.Collector`` does)."""

    def __init__(self) -> None:
        self.by_name: Counter[str] = Counter()

    def __call__(self, event: AuthEvent) -> None:
        self.by_name[event.name] += 1

    def revocations(self) -> dict[str, int]:
        """Revocations by reason: what each revoking event counted so far."""
        return {reason: self.by_name[name] for reason, name in _REVOKING.items()}


# Revocation reason (the metric's label) -> the event that revokes for it.
_REVOKING = {
    "logout": LoggedOut.name,
    "logout_all": LoggedOutEverywhere.name,
    "session": "session_revoked",
    "refresh_reuse": "refresh_reuse",
    "password_changed": "password_changed",
    "user_disabled": "user_disabled",
}
