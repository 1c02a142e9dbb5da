"""The examples use only the public API: what ``authstate.__all__`` exports and the
functions docs/api.md documents. A newcomer copies from them, so an example that reaches
into a private module teaches code that breaks on the next release."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import authstate
from tests.docs.test_api import entries

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def documented() -> dict[str, set[str]]:
    """Module -> the names docs/api.md documents in it (its ``###`` headings)."""
    names: dict[str, set[str]] = {"authstate": set(authstate.__all__)}
    for entry in entries():
        if entry.level == 3:
            names.setdefault(entry.module, set()).add(entry.name)
    return names


def authstate_imports(source: str) -> list[tuple[str, str | None]]:
    """``(module, name)`` for every import of authstate; ``name`` is None for ``import m``."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "authstate":
            found.extend((node.module or "", alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(
                (alias.name, None)
                for alias in node.names
                if alias.name.split(".")[0] == "authstate"
            )
    return found


def private_imports(source: str) -> list[str]:
    public = documented()
    return [
        f"{module}.{name}" if name else module
        for module, name in authstate_imports(source)
        if module not in public or (name is not None and name not in public[module])
    ]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_example_imports_only_public_names(path: Path) -> None:
    assert private_imports(path.read_text()) == []


def test_the_check_finds_a_private_import() -> None:
    # Not vacuous: the imports the own-login example used to need are caught.
    source = (
        "from authstate import AuthState, ClientInfo\n"
        "from authstate.asgi.middleware import AUTH_VALUE_KEY, get_principal\n"
        "from authstate.modes.base import IssuedCredentials\n"
        "import authstate.crypto.jwt\n"
    )
    assert private_imports(source) == [
        "authstate.asgi.middleware.AUTH_VALUE_KEY",
        "authstate.modes.base.IssuedCredentials",
        "authstate.crypto.jwt",
    ]
