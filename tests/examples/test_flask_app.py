"""examples/flask_app.py: the Flask extension in-process (its black-box run under gunicorn is
tests/wsgi/test_contract.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from tests.examples.conftest import PASSWORD


@pytest.fixture
def flask_example(example: Callable[[str], ModuleType]) -> Iterator[ModuleType]:
    module = example("flask_app")
    auth = module.auth
    auth.start()
    auth.run(auth.core.accounts.add_user("alice", PASSWORD, roles=("staff",)))
    auth.run(auth.core.accounts.add_user("bob", PASSWORD))
    yield module
    auth.stop()


def _login(module: ModuleType, name: str) -> tuple[object, str]:
    client = module.app.test_client()
    response = client.post(
        "/auth/login",
        json={"username": name, "password": PASSWORD},
        base_url="https://testserver",
    )
    assert response.status_code == 200
    return client, response.json["csrf_token"]


def test_notes_need_a_login_and_a_csrf_header_to_write(flask_example: ModuleType) -> None:
    anonymous = flask_example.app.test_client()
    assert anonymous.get("/notes", base_url="https://testserver").status_code == 401
    client, token = _login(flask_example, "alice")
    refused = client.post("/notes", json={"text": "forged"}, base_url="https://testserver")  # type: ignore[attr-defined]
    assert (refused.status_code, refused.json["error"]) == (403, "csrf_failed")
    written = client.post(  # type: ignore[attr-defined]
        "/notes",
        json={"text": "hello"},
        headers={"X-CSRF-Token": token},
        base_url="https://testserver",
    )
    assert (written.status_code, written.json) == (201, {"notes": ["hello"]})


def test_require_role_gives_403_without_the_role(flask_example: ModuleType) -> None:
    alice, _ = _login(flask_example, "alice")
    bob, _ = _login(flask_example, "bob")
    assert alice.get("/staff", base_url="https://testserver").status_code == 200  # type: ignore[attr-defined]
    refused = bob.get("/staff", base_url="https://testserver")  # type: ignore[attr-defined]
    assert (refused.status_code, refused.json["error"]) == (403, "forbidden")


def test_warm_requests_never_wait_for_the_loop_thread(flask_example: ModuleType) -> None:
    """A cookie this process has seen is verified in the request's own thread."""
    client, _ = _login(flask_example, "alice")
    client.get("/notes", base_url="https://testserver")  # type: ignore[attr-defined]
    before = flask_example.auth.sync.loop_calls
    for _ in range(20):
        assert client.get("/notes", base_url="https://testserver").status_code == 200  # type: ignore[attr-defined]
    assert flask_example.auth.sync.loop_calls == before
