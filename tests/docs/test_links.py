"""Relative links in README.md, examples/README.md and docs/ lead somewhere: the file exists
and, for ``page.md#anchor``, the page has that heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.markdown import DOCS, ROOT, documents

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        text = line.lstrip("#").strip().lower()
        found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


LINKS = [
    (page, target)
    for page in documents()
    for target in _LINK.findall(page.read_text())
    if not re.match(r"[a-z]+:", target)
]


def test_anchor_rules() -> None:
    """The slug rule used below, on headings of api.md and deploy.md."""
    assert "tls-termination-and-forwarded-headers" in anchors(DOCS / "deploy.md")
    assert "set_credentialsresponse-issued-policy--csrf_token" in anchors(DOCS / "api.md")


@pytest.mark.parametrize(
    ("page", "target"), LINKS, ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in LINKS]
)
def test_relative_links_resolve(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    assert destination.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
    if anchor:
        assert anchor in anchors(destination), f"{page.relative_to(ROOT)}: no #{anchor}"


def test_the_readme_starts_with_the_two_commands() -> None:
    """The README opens with the server command and scripts/test, which CI runs."""
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```", lines.index("```sh") + 1)]
    assert [line.split("#")[0].strip() for line in block] == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/authstate serve --demo",
        "scripts/test",
    ]
    assert (ROOT / "scripts" / "test").stat().st_mode & 0o111
