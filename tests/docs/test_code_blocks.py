"""Every code block of README.md, examples/README.md and docs/ is checked so it cannot rot.

How each block is checked is described in ``tests/docs/markdown.py``; in short, Python is
run (or, when marked, compared with the example file it quotes, or compiled), and every
``authstate`` command line in a shell block is parsed by the real argument parser.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from types import CodeType

import pytest

from authstate.cli import build_parser
from authstate.cli._common import UsageError
from authstate.settings import Settings
from tests.docs.markdown import ROOT, Block, all_blocks, documents

BLOCKS = all_blocks()
PYTHON = [b for b in BLOCKS if b.lang == "python"]
SHELL = [b for b in BLOCKS if b.lang in {"sh", "bash", "console", "shell"}]
KINDS = {"", "excerpt", "file", "compile", "pytest", "id", "run", "background", "output", "none"}
LANGS = {"python", "sh", "bash", "console", "shell", "text", "json", "nginx", "ini", "js", ""}
# AUTHSTATE_* names that are not settings: the test suite's own switches.
HARNESS_VARIABLES = {
    "AUTHSTATE_REQUIRE_SERVICES",
    "AUTHSTATE_TEST_POSTGRES",
    "AUTHSTATE_TEST_REDIS",
}


def _ids(blocks: list[Block]) -> list[str]:
    return [b.where for b in blocks]


def test_there_are_blocks_to_check() -> None:
    """A parser bug that finds nothing must not pass silently."""
    assert len(PYTHON) >= 10
    assert len(SHELL) >= 10


@pytest.mark.parametrize("block", BLOCKS, ids=_ids(BLOCKS))
def test_every_block_has_a_known_language_and_check(block: Block) -> None:
    """A typo in a check comment would otherwise skip the check."""
    assert block.lang in LANGS, f"{block.where}: language {block.lang!r}"
    assert block.kind in KINDS, f"{block.where}: check {block.check!r}"


# -- Python --------------------------------------------------------------------------------------
def compile_block(block: Block) -> CodeType:
    return compile(block.text, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_blocks_compile(block: Block) -> None:
    """Whatever else happens to a block, it is valid Python."""
    compile_block(block)


RUNNABLE = [b for b in PYTHON if b.kind == ""]


@pytest.mark.anyio
@pytest.mark.parametrize("block", RUNNABLE, ids=_ids(RUNNABLE))
async def test_python_blocks_run(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unmarked block runs as it is, top-level ``await`` included, in an empty directory."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AUTHSTATE_"):
            monkeypatch.delenv(name)
    namespace: dict[str, object] = {"__name__": "__doc_block__"}
    result = eval(compile_block(block), namespace)  # noqa: S307 - our own documentation
    if result is not None:  # a coroutine when the block awaits at top level
        await result


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


EXCERPTS = [b for b in PYTHON if b.kind in {"excerpt", "file"}]


@pytest.mark.parametrize("block", EXCERPTS, ids=_ids(EXCERPTS))
def test_quoted_examples_match_their_files(block: Block) -> None:
    """A block that quotes an example is a contiguous part of that file (the whole file for
    "file"): the example is run by tests/examples, so the quote is tested code."""
    source = ROOT / block.args[-1]
    file_lines = _lines(source.read_text())
    quoted = _lines(block.text)
    if block.kind == "file":
        assert quoted == file_lines, f"{block.where} differs from {source.name}"
        return
    starts = [i for i in range(len(file_lines)) if file_lines[i : i + len(quoted)] == quoted]
    assert starts, f"{block.where} is not an excerpt of {block.args[-1]}"


PYTEST_BLOCKS = [b for b in PYTHON if b.kind == "pytest"]


@pytest.mark.parametrize("block", PYTEST_BLOCKS, ids=_ids(PYTEST_BLOCKS))
def test_test_modules_in_the_docs_pass(block: Block, tmp_path: Path) -> None:
    """A test module shown in the docs (the store contract for your own store) passes."""
    module = tmp_path / "test_from_docs.py"
    module.write_text(block.text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"\b\d+ passed\b", done.stdout)


TYPED = [b for b in PYTHON if b.kind in {"", "id"}]


@pytest.mark.slow
def test_python_blocks_and_examples_pass_mypy_strict(tmp_path: Path) -> None:
    """What readers copy type-checks: the runnable blocks (their top level wrapped in a
    coroutine, since ``await`` is allowed there) and examples/, under ``mypy --strict``."""
    from mypy import api

    for number, block in enumerate(TYPED):
        if block.kind == "id":
            source = f"# {block.where}\n{block.text}"
        else:
            body = textwrap.indent(block.text, "    ")
            source = f"# {block.where}\nasync def _block() -> None:\n{body}"
        (tmp_path / f"block_{number:02d}.py").write_text(source)
    stdout, stderr, status = api.run(
        ["--strict", "--no-incremental", "--python-version", "3.11",
         str(tmp_path), str(ROOT / "examples")]
    )  # fmt: skip
    lines = [
        f"{_origin(tmp_path, line)}: {line}" for line in stdout.splitlines() if ": error:" in line
    ]
    assert status == 0, "\n".join(lines) or stdout + stderr


def _origin(directory: Path, line: str) -> str:
    """The docs location of a mypy message about a generated block file."""
    path = Path(line.split(":", 1)[0])
    if path.parent != directory:
        return str(path)
    return path.read_text().splitlines()[0].removeprefix("# ")


# -- shell ---------------------------------------------------------------------------------------
_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "(", ")", "$("}


def authstate_commands(text: str) -> list[list[str]]:
    """The argument lists of every ``authstate`` invocation in a shell block."""
    commands: list[list[str]] = []
    logical = re.sub(r"\\\n", " ", text)
    for line in logical.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:
            continue  # not a shell line (output in a console block)
        for index, token in enumerate(tokens):
            if token == "authstate" or token.endswith("/bin/authstate"):
                args: list[str] = []
                for arg in tokens[index + 1 :]:
                    if arg in _OPERATORS or set(arg) <= set("|&;<>()"):
                        break
                    args.append(arg)
                commands.append(args)
    return commands


def test_command_extraction() -> None:
    """Pipes, continuations, env assignments, prompts and comments are understood."""
    text = (
        "$ printf 'pw\\n' | AUTHSTATE_STORE=x authstate users add alice \\\n  --password-stdin\n"
        ".venv/bin/authstate serve --demo   # comment\n"
    )
    assert authstate_commands(text) == [
        ["users", "add", "alice", "--password-stdin"],
        ["serve", "--demo"],
    ]


COMMANDS = [(b, args) for b in SHELL for args in authstate_commands(b.text)]


@pytest.mark.parametrize(
    ("block", "args"), COMMANDS, ids=[f"{b.where}:{' '.join(a)}" for b, a in COMMANDS]
)
def test_authstate_commands_in_the_docs_parse(block: Block, args: list[str]) -> None:
    """Each documented ``authstate`` command line is accepted by the real parser."""
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(None):  # --help prints
            parser.parse_args(args)
    except UsageError as exc:
        pytest.fail(f"{block.where}: authstate {' '.join(args)}: {exc}")
    except SystemExit as exc:  # --help
        assert exc.code == 0


def test_every_cli_command_appears_in_cli_md() -> None:
    """docs/cli.md documents each subcommand and action the parser has."""
    text = (ROOT / "docs" / "cli.md").read_text()
    documented = {tuple(args[:2]) for block, args in COMMANDS if block.path.name == "cli.md"}
    parser = build_parser()
    subparsers = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in subparsers.items():
        actions = sub._subparsers._group_actions[0].choices if sub._subparsers else {None: sub}
        for action, parser_of_action in actions.items():
            words = (name,) if action is None else (name, action)
            assert any(d[: len(words)] == words for d in documented), f"no example: {words}"
            assert f"authstate {' '.join(words)}" in text
            if name == "bench":
                continue  # its flags are documented with the benchmark, in performance.md
            for option in (parser_of_action or sub)._actions:
                for flag in option.option_strings:
                    if flag.startswith("--") and flag != "--help":
                        assert f"`{flag}" in text or f" {flag}" in text, f"{words}: {flag}"


# -- settings named in prose -------------------------------------------------------------------
def test_every_authstate_variable_named_in_the_docs_exists() -> None:
    """An ``AUTHSTATE_*`` name in the docs is a real setting (or the test suite's own)."""
    from dataclasses import fields

    real = {"AUTHSTATE_" + f.name.upper() for f in fields(Settings)} | HARNESS_VARIABLES
    for path in documents():
        for name in set(re.findall(r"AUTHSTATE_[A-Z_]*[A-Z]", path.read_text())):
            assert name in real, f"{path.relative_to(ROOT)} names {name}, which is not a setting"
