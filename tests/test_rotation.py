"""The rotation rule (``authstate.rotation.decide``) as a pure function; the stores' atomic
steps and the races are in ``tests/stores/contract.py``."""

from __future__ import annotations

from typing import Any

import pytest

from authstate.rotation import Step, decide
from authstate.stores.base import SessionRecord
from tests.stores.contract import GRACE, T0, family, session


def rotated(**fields: Any) -> SessionRecord:
    return family("r1", previous_key="r0", rotated_at=T0, **fields)


@pytest.mark.parametrize(
    ("found", "presented", "successor", "now", "step"),
    [
        (None, "r0", "r1", T0, Step.UNKNOWN),
        (session("r0"), "r0", "r1", T0, Step.UNKNOWN),  # a server-side session, not a family
        (family("r0"), "r0", "r1", T0, Step.SWAP),
        (family("r0", expires_at=T0), "r0", "r1", T0, Step.UNKNOWN),  # expired
        (family("r0", idle_timeout=60), "r0", "r1", T0 + 60, Step.UNKNOWN),  # idle
        (rotated(), "r0", "r1", T0 + GRACE, Step.GRACE),
        (rotated(), "r0", "r1", T0 + GRACE + 1, Step.REVOKE),  # previous key after grace
        (rotated(), "r0", "forged", T0 + 1, Step.REVOKE),  # previous key, other successor
        (rotated(), "older", "r1", T0 + 1, Step.REVOKE),  # an older consumed key
        (rotated(), "r1", "r2", T0 + 1, Step.SWAP),
    ],
)
def test_decide(
    found: SessionRecord | None, presented: str, successor: str, now: float, step: Step
) -> None:
    assert decide(found, presented, successor, now=now, grace_seconds=GRACE) is step
