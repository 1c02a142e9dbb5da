"""The same black-box contract against ``authstate serve``, Flask and Django (gunicorn)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.multinode.nodes import add_user
from tests.wsgi import contract
from tests.wsgi.nodes import node

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["serve", "flask", "django"])
def test_the_http_contract_holds_on_every_server_kind(tmp_path: Path, kind: str) -> None:
    store = f"sqlite:///{tmp_path}/contract.db"
    username = add_user(store, contract.PASSWORD)
    with node(tmp_path, kind, store) as running:
        for check in contract.CHECKS:
            check(running.url, username)


@pytest.mark.parametrize("kind", ["serve", "flask", "django"])
def test_the_bearer_transport_holds_on_every_server_kind(tmp_path: Path, kind: str) -> None:
    store = f"sqlite:///{tmp_path}/bearer.db"
    username = add_user(store, contract.PASSWORD)
    env = {"AUTHSTATE_TRANSPORTS": "cookie,bearer"}
    with node(tmp_path, kind, store, env=env) as running:
        for check in contract.BEARER_CHECKS:
            check(running.url, username)
