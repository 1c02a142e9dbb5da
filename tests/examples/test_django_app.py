"""examples/django_app/: the Django integration in-process, with Django's test client (its
black-box run under gunicorn is tests/wsgi/test_contract.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.examples.conftest import EXAMPLES, PASSWORD


@pytest.fixture
def django_client(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "django_app.settings")
    if str(EXAMPLES) not in sys.path:
        monkeypatch.syspath_prepend(str(EXAMPLES))
    import django

    django.setup()
    from django.test import Client

    from authstate.django.conf import get_auth, reset

    auth = get_auth()
    auth.ensure_started()
    auth.run(auth.core.accounts.add_user("alice", PASSWORD, roles=("staff",)))
    auth.run(auth.core.accounts.add_user("carol", PASSWORD, roles=("reports.view",)))
    yield Client
    reset()


def _login(client_class: Any, name: str) -> tuple[Any, str]:
    client = client_class()
    response = client.post(
        "/auth/login",
        data=json.dumps({"username": name, "password": PASSWORD}),
        content_type="application/json",
        secure=True,
    )
    assert response.status_code == 200, response.content
    return client, response.json()["csrf_token"]


def test_notes_need_a_login_and_a_csrf_header_to_write(django_client: Any) -> None:
    assert django_client().get("/notes", secure=True).status_code == 401
    client, token = _login(django_client, "alice")
    body = json.dumps({"text": "hello"})
    refused = client.post("/notes", data=body, content_type="application/json", secure=True)
    assert (refused.status_code, refused.json()["error"]) == (403, "csrf_failed")
    written = client.post(
        "/notes", data=body, content_type="application/json", secure=True, HTTP_X_CSRF_TOKEN=token
    )
    assert (written.status_code, written.json()) == (201, {"notes": ["hello"]})


def test_login_required_and_permission_required_see_the_authstate_user(
    django_client: Any,
) -> None:
    anonymous = django_client().get("/reports", secure=True)
    assert (anonymous.status_code, anonymous["Location"]) == (302, "/auth/login?next=/reports")
    alice, _ = _login(django_client, "alice")  # role staff, not reports.view
    assert alice.get("/reports", secure=True).status_code == 403
    assert alice.get("/staff", secure=True).status_code == 200
    carol, _ = _login(django_client, "carol")
    answer = carol.get("/reports", secure=True)
    assert answer.status_code == 200
    assert carol.get("/staff", secure=True).status_code == 403


def test_require_fresh_and_token_stale_answer_as_the_asgi_require(django_client: Any) -> None:
    """``require(fresh=...)``: 401 ``reauth_required`` past the window; a token whose roles
    changed: 401 ``token_stale`` (as FastAPI's ``auth.require``)."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from authstate.django.conf import get_auth
    from authstate.django.middleware import AuthStateMiddleware
    from authstate.django.views import require

    def ok(request: Any) -> HttpResponse:
        return HttpResponse("ok")

    never_fresh = AuthStateMiddleware(require(fresh=0)(ok))
    recent = AuthStateMiddleware(require(role="staff", fresh=10**9)(ok))
    client, _ = _login(django_client, "alice")
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    factory = RequestFactory()

    def get(view: Any) -> Any:
        return view(factory.get("/x", secure=True, HTTP_COOKIE=cookie))

    assert get(recent).status_code == 200
    refused = get(never_fresh)
    assert refused.status_code == 401
    assert json.loads(refused.content)["error"] == "reauth_required"
    auth = get_auth()
    alice = auth.run(auth.core.accounts.get_by_name("alice"))
    auth.run(auth.core.set_roles(alice.id, ["viewer"]))
    stale = get(recent)
    assert stale.status_code == 401
    assert json.loads(stale.content)["error"] == "token_stale"
