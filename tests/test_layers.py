"""The layers of docs/architecture.md hold: ``lint-imports`` (scripts/check) passes on the
package and fails as soon as a lower layer imports a higher one, or the library imports the
benchmark, which is what it is there to catch (a planted violation in a copy proves it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "authstate"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PICTURE_MARK = "<!-- layers: generated from pyproject.toml"


def layer_contract() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["id"] == "layers"]
    return [str(layer) for layer in layers]


def picture() -> str:
    """The layer contract drawn: one line per layer, top first, arrows pointing down."""
    lines = [" | ".join(part.strip() for part in layer.split("|")) for layer in layer_contract()]
    return "\n  ↓\n".join(lines) + "\n"


def documented_picture() -> str:
    text = ARCHITECTURE.read_text()
    match = re.search(re.escape(PICTURE_MARK) + r".*?-->\n```text\n(.*?)```", text, re.S)
    assert match, f"no generated layer picture in {ARCHITECTURE.name}"
    return match.group(1)


def test_the_architecture_picture_is_the_contract() -> None:
    # On failure, paste the output of `python -m tests.test_layers` into the page.
    assert documented_picture() == picture()


def lint_imports(source_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports with the repository's contract over the package under ``source_root``."""
    command = Path(sys.executable).with_name("lint-imports")
    if not command.exists():
        unavailable("import-linter is not installed (pip install import-linter)")
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(command), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def planted(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package with ``line`` added to ``module`` (a path under authstate/)."""
    copy = tmp_path / "src" / "authstate"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{line}\n")
    return copy.parent


def test_the_package_keeps_its_layers(tmp_path: Path) -> None:
    result = lint_imports(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_import_authstate_loads_neither_the_benchmark_nor_the_server_nor_the_cli() -> None:
    # The package root is in no layer (it re-exports the public names), so this is checked
    # by importing it in a fresh interpreter.
    code = (
        "import sys, authstate; print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['authstate', 'bench'], ['authstate', 'server'], ['authstate', 'cli'])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "line", "reported"),
    [
        # A low layer reaching up to the HTTP layer (the auth <-> asgi circle of issue 12).
        ("errors.py", "import authstate.asgi.middleware", "authstate.errors -> authstate.asgi"),
        # Even under TYPE_CHECKING: it is still an import pointing up.
        (
            "auth/__init__.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from authstate.asgi.auth_state import AuthState",
            "authstate.auth -> authstate.asgi.auth_state",
        ),
        # The server measuring with the benchmark's code.
        (
            "server/pages.py",
            "import authstate.bench.micro",
            "authstate.server.pages -> authstate.bench",
        ),
        # A driver imported outside its store module.
        ("modes/base.py", "import redis", "authstate.modes.base -> redis"),
        # Two modules of one layer importing each other.
        ("csrf.py", "import authstate.cookies", "authstate.csrf -> authstate.cookies"),
        # One of AuthCore's parts reaching into another's module.
        (
            "auth/_refresh.py",
            "import authstate.auth._grants",
            "authstate.auth._refresh -> authstate.auth._grants",
        ),
    ],
)
def test_lint_imports_fails_on_a_planted_violation(
    tmp_path: Path, module: str, line: str, reported: str
) -> None:
    result = lint_imports(planted(tmp_path, module, line), tmp_path)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert reported in result.stdout, result.stdout


if __name__ == "__main__":
    print(picture(), end="")
