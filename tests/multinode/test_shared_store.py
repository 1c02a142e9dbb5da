"""Three nodes on one shared store: a login works everywhere, a revocation reaches everyone."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.serve_process import run_cli
from tests.multinode.nodes import (
    add_user,
    cluster,
    login,
    me,
    node_env,
    percentiles,
    post,
    time_until_rejected,
)

pytestmark = pytest.mark.slow

MODES = ["stateless", "session", "hybrid"]


def jwks_kids(url: str) -> set[str]:
    return {k["kid"] for k in httpx.get(f"{url}/.well-known/jwks.json").json()["keys"]}


@pytest.mark.parametrize("mode", MODES)
def test_a_login_on_one_node_works_on_all_and_logout_everywhere_reaches_all(
    tmp_path: Path, shared_store: str, mode: str
) -> None:
    name = add_user(shared_store)
    with cluster(tmp_path, shared_store, mode) as nodes:
        samples = []
        for _ in range(5):
            session = login(nodes[0], name)
            assert [me(node, session) for node in nodes] == [200, 200, 200]
            assert post(nodes[1], "/auth/logout-all", session).status_code == 204
            samples.append(time_until_rejected(nodes, session, timeout=6.0))
        backend = shared_store.split(":")[0]
        print(f"\nrevocation propagation, {mode} on {backend}: {percentiles(samples)}")


@pytest.mark.parametrize("mode", ["stateless", "hybrid"])
def test_a_key_rotated_from_the_cli_is_used_and_trusted_by_every_node(
    tmp_path: Path, shared_store: str, mode: str
) -> None:
    name = add_user(shared_store)
    with cluster(tmp_path, shared_store, mode) as nodes:
        before = login(nodes[0], name)
        kids_before = jwks_kids(nodes[0].url)
        result = run_cli("keys", "rotate", "--store", shared_store, env=node_env())
        assert result.returncode == 0, result.stderr
        new_kids: set[str] = set()
        for _ in range(100):  # every node reloads its ring from the bus
            sets = [jwks_kids(n.url) for n in nodes]
            new_kids = sets[0] - kids_before
            if new_kids and all(s == sets[0] for s in sets):
                break
            time.sleep(0.05)
        assert len(new_kids) == 1
        after = login(nodes[2], name)
        token = after.cookie.split("__Host-authstate=")[1].split(";")[0]
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert header["kid"] in new_kids
        assert [me(node, after) for node in nodes] == [200, 200, 200]
        assert [me(node, before) for node in nodes] == [200, 200, 200]  # old key still verifies
