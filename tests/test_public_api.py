"""The public API is exactly what ``__all__`` lists, sorted, and every name imports."""

from __future__ import annotations

import inspect

import authstate


def test_all_is_sorted() -> None:
    assert authstate.__all__ == sorted(authstate.__all__)


def test_all_lists_every_public_name_and_nothing_else() -> None:
    public = {
        name
        for name, value in vars(authstate).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(authstate.__all__)
