from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands see only the AUTHSTATE_* settings a test sets itself."""
    for name in list(os.environ):
        if name.startswith("AUTHSTATE_") and name != "AUTHSTATE_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
