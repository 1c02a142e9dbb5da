"""The in-memory revocation state every node checks on every JWT verification.

It holds revoked ``jti``s (until the token's ``exp``), revoked session handles (of
sessions and refresh families; a JWT carries its handle as ``sid``), per-user minimum
generations (logout-all, password change) and per-user roles versions (live roles).
Entries are forgotten once every credential they could reject has expired, so the size is
bounded by credential lifetimes and revocation rate, never by the number of users.

It is filled from the store at start and kept current by the change bus; applying a
change is idempotent, so a change delivered twice (local publish + bus echo) is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable

from authstate._time import Clock
from authstate.errors import InvalidToken, StaleToken
from authstate.stores.base import Change, ChangeKind

# Pruning walks every entry; doing it at most this often keeps the hot path O(1).
_PRUNE_INTERVAL_SECONDS = 30.0


class RevocationState:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._jti: dict[str, float] = {}
        self._handles: dict[str, float] = {}
        self._user_generation: dict[str, tuple[int, float]] = {}
        # User -> (roles version, until): credentials written under an older version carry
        # outdated roles or claims (``AuthState.set_roles``).
        self._roles_version: dict[str, tuple[int, float]] = {}
        self.last_seq = 0
        self._next_prune = 0.0

    def __len__(self) -> int:
        return (
            len(self._jti)
            + len(self._handles)
            + len(self._user_generation)
            + len(self._roles_version)
        )

    def load(self, changes: Iterable[Change], last_seq: int) -> None:
        """Replace the state with what the store says is in force."""
        self._jti.clear()
        self._handles.clear()
        self._user_generation.clear()
        self._roles_version.clear()
        for change in changes:
            self.apply(change)
        # Replaced too: after the store lost data, its log starts again lower.
        self.last_seq = last_seq

    def apply(self, change: Change) -> None:
        """Record one change (idempotent; kinds other than JTI/SID/USER/ROLES are ignored)."""
        if change.kind is ChangeKind.JTI:
            self._jti[change.value] = max(change.until, self._jti.get(change.value, 0.0))
        elif change.kind is ChangeKind.SID:
            self._handles[change.value] = max(change.until, self._handles.get(change.value, 0.0))
        elif change.kind is ChangeKind.USER:
            generation, until = self._user_generation.get(change.value, (0, 0.0))
            if change.generation >= generation:
                self._user_generation[change.value] = (change.generation, max(until, change.until))
        elif change.kind is ChangeKind.ROLES:
            version, until = self._roles_version.get(change.value, (0, 0.0))
            if change.generation >= version:
                self._roles_version[change.value] = (change.generation, max(until, change.until))
        if change.seq > self.last_seq:
            self.last_seq = change.seq
        self._maybe_prune()

    def check(
        self, *, user_id: str, generation: int, handle: str | None = None, jti: str | None = None
    ) -> None:
        """Raise ``InvalidToken`` if the credential described was revoked: the token ``jti``,
        the session ``handle`` it belongs to, or every credential of the user issued under
        an older generation."""
        self.check_credential(user_id, generation, handle, jti)

    def check_credential(
        self, user_id: str, generation: int, handle: str | None, jti: str | None
    ) -> None:
        """``check`` with positional arguments: the per-request path of every mode.

        A dict lookup is cheaper than a keyword call, and an empty table (the usual case
        for ``jti`` and ``handle``) costs one truth test.
        """
        if jti is not None and self._jti and jti in self._jti:
            raise InvalidToken(reason="token revoked (jti)")
        if handle is not None and self._handles and handle in self._handles:
            raise InvalidToken(reason="session revoked (sid)")
        entry = self._user_generation.get(user_id)
        if entry is not None and generation < entry[0]:
            raise InvalidToken(reason="user logged out everywhere (generation)")

    def roles_version(self, user_id: str) -> int:
        """The user's latest roles version this node knows of (0: no change in force)."""
        entry = self._roles_version.get(user_id)
        return entry[0] if entry is not None else 0

    def check_roles_version(self, user_id: str, version: int) -> None:
        """Raise ``StaleToken`` if a token carrying roles version ``version`` predates the
        user's latest roles change. The per-request path of the JWT modes: one truth test
        while no change is in force."""
        if self._roles_version:
            entry = self._roles_version.get(user_id)
            if entry is not None and version < entry[0]:
                raise StaleToken(reason="roles changed since the token was issued")

    def minimum_generation(self, user_id: str) -> int:
        entry = self._user_generation.get(user_id)
        return entry[0] if entry is not None else 0

    def _maybe_prune(self) -> None:
        now_mono = self._clock.monotonic()
        if now_mono < self._next_prune:
            return
        self._next_prune = now_mono + _PRUNE_INTERVAL_SECONDS
        self.prune()

    def prune(self) -> None:
        """Forget entries whose credentials have all expired."""
        now = self._clock.now()
        for table in (self._jti, self._handles):
            for value in [v for v, until in table.items() if until < now]:
                del table[value]
        for user in [u for u, (_, until) in self._user_generation.items() if until < now]:
            del self._user_generation[user]
        for user in [u for u, (_, until) in self._roles_version.items() if until < now]:
            del self._roles_version[user]
