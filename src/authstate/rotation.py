"""Refresh-token rotation: where refresh reuse is detected, for every store.

A hybrid refresh *family* holds one current key (the hash of the refresh token its client
holds). Presenting that key rotates the family to a successor. Presenting a key the family
rotated away from (a *consumed* key) is either a retry of the last rotation within the
grace window (a lost response: the client gets the same successor) or reuse, which means
the token was copied, and then the whole family dies.

``decide`` is that rule, as one pure function of the family a store finds for the
presented key. The store only provides two atomic steps (``stores.protocols.SessionStore``):

- ``find_refresh(key)``: the family whose current key is ``key`` or which consumed ``key``;
- ``swap_refresh_key(family, successor, now=…)``: compare-and-swap of the family's key,
  which succeeds only if the stored family still has ``family.key`` and records that key as
  consumed.

``rotate_refresh`` runs them. When the swap loses (another node rotated the family, or a
logout deleted it, between the find and the swap) it finds again and decides again, so:

- two concurrent calls with the same arguments yield one ROTATED and one GRACE (the loser
  finds the family already moved to the same successor, its presented key now previous);
- a family deleted concurrently is never re-created (the swap only updates a family that
  still holds the expected key; the loser then finds nothing: UNKNOWN);
- reuse outside the grace window deletes the family (REUSED).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from authstate.errors import StoreUnavailable
from authstate.stores.protocols import SessionStore
from authstate.stores.records import SessionRecord

# A lost swap means another rotation or a delete got in first; after one of those the key
# is no longer current, so the next decision is never another swap. The bound only guards
# against a broken store.
_MAX_ATTEMPTS = 4


class RotationOutcome(StrEnum):
    ROTATED = "rotated"  # presented key was current: the family now has the successor key
    GRACE = "grace"  # presented key was the previous one, within the grace window: same successor
    REUSED = "reused"  # presented key was consumed before (outside grace): family revoked
    UNKNOWN = "unknown"  # no live family knows the key


@dataclass(frozen=True, slots=True)
class RotationResult:
    outcome: RotationOutcome
    record: SessionRecord | None  # the family after the operation (the revoked one for REUSED)


class Step(StrEnum):
    """What ``decide`` asks the caller to do."""

    SWAP = "swap"  # the presented key is current: compare-and-swap it to the successor
    GRACE = "grace"  # a retry within the grace window: answer with the family as it is
    REVOKE = "revoke"  # reuse: delete the family
    UNKNOWN = "unknown"  # nothing to do: no live family knows the key


def decide(
    family: SessionRecord | None,
    presented_key: str,
    successor_key: str,
    *,
    now: float,
    grace_seconds: float,
) -> Step:
    """The rotation rule. ``family`` is what ``find_refresh(presented_key)`` returned: a
    family whose current key is ``presented_key``, or one that consumed it earlier."""
    if family is None or family.kind != "refresh":
        return Step.UNKNOWN
    if family.key == presented_key:
        return Step.SWAP if family.is_live(now) else Step.UNKNOWN
    if (
        family.previous_key == presented_key
        and family.rotated_at is not None
        and now - family.rotated_at <= grace_seconds
        and family.key == successor_key
    ):
        return Step.GRACE
    # Theft detection: an older key, the previous key outside the grace window, or the
    # previous key asking for another successor came back.
    return Step.REVOKE


async def rotate_refresh(
    store: SessionStore,
    presented_key: str,
    successor_key: str,
    *,
    now: float,
    grace_seconds: float,
) -> RotationResult:
    """Rotate the family that holds ``presented_key`` to ``successor_key`` (reuse detection
    included); see the module docstring for the outcomes and the race rules."""
    for _ in range(_MAX_ATTEMPTS):
        family = await store.find_refresh(presented_key)
        step = decide(family, presented_key, successor_key, now=now, grace_seconds=grace_seconds)
        if family is None or step is Step.UNKNOWN:
            return RotationResult(RotationOutcome.UNKNOWN, None)
        if step is Step.GRACE:
            return RotationResult(RotationOutcome.GRACE, family)
        if step is Step.REVOKE:
            deleted = await store.delete_session_by_handle(family.handle, user_id=family.user_id)
            return RotationResult(RotationOutcome.REUSED, deleted or family)
        rotated = await store.swap_refresh_key(family, successor_key, now=now)
        if rotated is not None:
            return RotationResult(RotationOutcome.ROTATED, rotated)
        # Lost the swap: the family moved on or is gone. Look again and decide again.
    raise StoreUnavailable(reason="refresh rotation did not settle (the store keeps changing)")
