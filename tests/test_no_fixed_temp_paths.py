"""Tests write only under pytest's ``tmp_path``: a fixed path in the system temp directory
clashes between concurrent runs and users, and may be a symlink someone else planted."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# A literal /tmp/... or /var/tmp/... path, or the shared temp directory itself.
FIXED_TEMP = re.compile(r"""["'](/var)?/tmp/|gettempdir\(""")


def fixed_temp_paths(source: str) -> list[str]:
    return [
        line.strip()
        for line in source.splitlines()
        if FIXED_TEMP.search(line) and not line.lstrip().startswith("#")
    ]


def test_no_test_writes_to_a_fixed_path_in_the_system_temp_directory() -> None:
    found = {
        str(path.relative_to(TESTS)): hits
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__) and (hits := fixed_temp_paths(path.read_text()))
    }
    assert found == {}


def test_the_check_finds_one() -> None:
    source = 'SCREENSHOT = Path("/tmp/authstate-dashboard.png")\nx = tempfile.gettempdir()\n'
    assert len(fixed_temp_paths(source)) == 2
    assert fixed_temp_paths('return f"sqlite:///{path}"  # sqlite:////tmp/...') == []
