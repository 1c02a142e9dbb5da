"""Session lookups on a node of the previous release (schema 3) while a node of this release
starts on the same PostgreSQL database and migrates it to schema 4 (the sessions table
rebuilt under an exclusive lock, keys and handles turned to bytea).

docs/deploy.md asks to stop older nodes first; one left running by mistake must still
answer no 500 and never another user's session: its lookups wait for the rebuild, then
fail with 503. Every session and logout made before the upgrade holds on the new node.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import subprocess
import tarfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from authstate.crypto.ids import hash_secret, new_handle, new_secret_id
from tests.cli.serve_process import Served, run_cli, serve
from tests.conftest import unavailable
from tests.multinode.nodes import Session, login, me, node_env, post

pytestmark = pytest.mark.slow

SCHEMA_3_RELEASE = "332cffd"  # the last commit before schema 4 (b634645)
PASSWORD = "correct horse battery"
COLD = 2000  # sessions written as the old release stores them, never cached by a node
FILLER = 150_000  # other users' sessions: the rebuild takes a moment


def old_release(directory: Path) -> Path:
    """The previous release's ``src`` checked out from git into ``directory``. Without the
    history (no git, a shallow clone) the test is skipped, even when services are required:
    history is not a service."""
    root = Path(__file__).resolve().parents[2]
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        pytest.skip("the previous release is taken from git, and this is no git checkout")
    found = subprocess.run(
        [git, "-C", str(root), "rev-parse", "--verify", "-q", f"{SCHEMA_3_RELEASE}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        pytest.skip(f"commit {SCHEMA_3_RELEASE} is not in this clone (a shallow clone?)")
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / "old.tar"
    with archive.open("wb") as out:
        subprocess.run(
            [git, "-C", str(root), "archive", SCHEMA_3_RELEASE, "src"], stdout=out, check=True
        )
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    return directory / "src"


def cold_sessions(url: str, user_id: str, cookie: str) -> list[Session]:
    """COLD sessions of ``user_id`` and FILLER of others, inserted as schema 3 stores them."""
    import asyncpg

    now = time.time()
    secrets_ = [new_secret_id() for _ in range(COLD)]
    rows = [
        (hash_secret(s), new_handle(), user_id, "session", now, now, now + 86400.0, 86400.0)
        for s in secrets_
    ]

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.executemany(
                "INSERT INTO authstate_sessions (key, handle, user_id, kind, created_at,"
                " last_seen_at, expires_at, idle_timeout, roles, user_agent, ip, data,"
                " generation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '[]', '', '', '{}', 0)",
                rows,
            )
            await conn.execute(
                "INSERT INTO authstate_sessions (key, handle, user_id, kind, created_at,"
                " last_seen_at, expires_at, idle_timeout, roles, user_agent, ip, data,"
                " generation) SELECT encode(sha256(i::text::bytea), 'hex'), 'f' || i,"
                " 'filler' || (i % 5000), 'session', $1::float8, $1::float8,"
                " $1::float8 + 86400, 0, '[]', 'ua', '10.0.0.1', '{}', 0"
                " FROM generate_series(1, $2) AS i",
                now,
                FILLER,
            )
        finally:
            await conn.close()

    asyncio.run(run())
    # The cookie is the secret; CSRF is not needed to read /auth/me.
    return [Session(f"{cookie}={s}", "") for s in secrets_]


def whose(node: Served, session: Session) -> tuple[int, str]:
    response = httpx.get(f"{node.url}/auth/me", headers={"cookie": session.cookie}, timeout=30)
    if response.status_code != 200:
        return response.status_code, ""
    return 200, str(response.json()["user"]["id"])


def test_an_old_node_left_running_through_the_schema_4_upgrade_answers_503_never_500(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    if importlib.util.find_spec("asyncpg") is None:
        unavailable("asyncpg is not installed (pip install 'authstate[postgres]')")
    url = postgres_schema_url
    old_env = node_env(PYTHONPATH=str(old_release(tmp_path / "old")))
    added = run_cli(
        "users", "add", "carol", "--password-stdin", "--store", url, stdin=PASSWORD, env=old_env
    )
    assert added.returncode == 0, added.stderr
    with serve(tmp_path, "--mode", "session", "--store", url, env=old_env) as writer:
        made = [login(writer, "carol") for _ in range(10)]
        ended = [login(writer, "carol") for _ in range(3)]
        for session in ended:
            assert post(writer, "/auth/logout", session).status_code == 204
        carol = whose(writer, made[0])[1]
        cookie = made[0].cookie.split("=", 1)[0]
        assert "csrf" not in cookie
        cold = cold_sessions(url, carol, cookie)
        with serve(tmp_path, "--mode", "session", "--store", url, env=old_env) as old:
            assert whose(old, cold[0]) == (200, carol)
            seen: Counter[tuple[int, str]] = Counter()
            stop = threading.Event()

            def lookups() -> None:
                for session in cold[1:]:  # each one cold on the old node
                    if stop.is_set():
                        return
                    seen[whose(old, session)] += 1

            thread = threading.Thread(target=lookups, daemon=True)
            thread.start()
            try:
                with serve(tmp_path, "--mode", "session", "--store", url, env=node_env()) as new:
                    stop.set()
                    thread.join(60)
                    assert [whose(new, s) for s in made] == [(200, carol)] * len(made)
                    assert {whose(new, s) for s in cold[::50]} == {(200, carol)}
                    assert {me(new, s) for s in ended} == {401}
                    assert "Traceback" not in new.stderr, new.stderr[-3000:]
            finally:
                stop.set()
                thread.join(60)
            # Looked up during and after the rebuild on the node that was left running.
            assert set(seen) <= {(200, carol), (503, "")}, seen
            after = {whose(old, s) for s in cold[-20:]}
            assert after <= {(503, "")}, after
            assert "Traceback" not in old.stderr, old.stderr[-3000:]
            print(f"old node during the upgrade: {dict(seen)}; after: {after}")
