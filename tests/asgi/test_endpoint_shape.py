"""The ``/auth/*`` endpoints stay small and stay HTTP: each function has one job and fits
on a screen, and none hashes a secret or reads the store (those rules live in
``AuthState``, where a library user calling it gets them too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import authstate.asgi

ASGI = Path(authstate.asgi.__file__).parent
ENDPOINT_MODULES = ("routes.py", "endpoints.py", "forms.py")
MAX_FUNCTION_LINES = 40


def tree(name: str) -> ast.Module:
    return ast.parse((ASGI / name).read_text(), filename=name)


@pytest.mark.parametrize("name", ENDPOINT_MODULES)
def test_every_endpoint_function_is_short(name: str) -> None:
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree(name))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


@pytest.mark.parametrize("name", ENDPOINT_MODULES)
def test_no_endpoint_hashes_secrets_or_reads_the_store(name: str) -> None:
    found = []
    for node in ast.walk(tree(name)):
        # Importing a type (for an annotation) is no access; importing a function is.
        if (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith(("authstate.crypto", "authstate.stores"))
            and not all(alias.name[:1].isupper() for alias in node.names)
        ):
            found.append(f"from {node.module} import ...")
        if isinstance(node, ast.Attribute) and node.attr in ("store", "_store", "context"):
            found.append(f"line {node.lineno}: .{node.attr}")
        if isinstance(node, ast.Name) and node.id in ("hash_secret", "check_secret_format"):
            found.append(f"line {node.lineno}: {node.id}")
    assert found == []
