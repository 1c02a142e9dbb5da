"""The core dependencies are what the library imports: each one is imported by the package
outside the benchmark, and every third-party package the library imports is a core
dependency or the driver of an optional store (a dependency nobody imports is weight and
attack surface every user installs)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "authstate"
# Distribution name -> the name it is imported by, where they differ.
IMPORT_NAMES = {"argon2-cffi": "argon2"}
# Needed by a module the library imports rather than imported by name: authstate serve's
# protocol (cli/_http.py) subclasses uvicorn's httptools one.
THROUGH = {"httptools": "uvicorn.protocols.http.httptools_impl"}
# Optional stores: imported only when a URL of theirs is opened.
EXTRAS = {"redis", "asyncpg"}
# The WSGI adapters' frameworks (extras flask and django): imported only by
# authstate.flask and authstate.django, which only a Flask or Django app imports.
EXTRAS |= {"flask", "werkzeug", "django"}
# The metrics and OpenTelemetry extras: imported only when asked for.
EXTRAS |= {"prometheus_client", "opentelemetry"}
# The server extra's WebSocket implementation: authstate serve looks for it and serves
# /auth/ws only when it is installed (cli/_http.py), saying so in its banner otherwise.
EXTRAS |= {"websockets"}


def core_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0] for dep in project["dependencies"]}
    return {IMPORT_NAMES.get(name, name) for name in names}


def third_party_imports() -> set[str]:
    """Top-level names of every package the library (not the benchmark) imports."""
    modules = imported_modules()
    found = {name.split(".")[0] for name in modules}
    found |= {package for package, module in THROUGH.items() if module in modules}
    return {name for name in found if name not in sys.stdlib_module_names} - {"authstate"}


def imported_modules() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if "bench" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return found


def test_every_core_dependency_is_imported_by_the_library() -> None:
    assert core_dependencies() - third_party_imports() == set()


def test_the_library_imports_only_its_dependencies() -> None:
    assert third_party_imports() - core_dependencies() - EXTRAS == set()
