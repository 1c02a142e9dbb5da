"""Load the files of ``examples/`` as their users would run them, one fresh copy per test.

Each test runs in its own temporary directory with no ``AUTHSTATE_*`` variables, so an
example's default store (``sqlite:///authstate.db``) is a new file there.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PASSWORD = "correct horse battery staple"
BASE = "https://testserver"  # Secure cookies: an httpx cookie jar returns them over https only
_counter = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory and environment for an example."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AUTHSTATE_"):
            monkeypatch.delenv(name)
    return tmp_path


def load_example(name: str) -> ModuleType:
    """A fresh import of ``examples/<name>.py`` (its module-level code runs again)."""
    module_name = f"example_{name}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(in_tmp: Path) -> Iterator[Callable[[str], ModuleType]]:
    """``example("fastapi_app")`` loads that example in the clean directory."""
    loaded: list[str] = []

    def load(name: str) -> ModuleType:
        module = load_example(name)
        loaded.append(module.__name__)
        return module

    yield load
    for module_name in loaded:
        sys.modules.pop(module_name, None)
