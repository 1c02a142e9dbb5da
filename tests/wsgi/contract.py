"""The black-box HTTP contract of the ``/auth/*`` endpoints (docs/http.md), written once
and run against every server kind: ``authstate serve`` (the ASGI reference), and the
example Flask and Django apps under gunicorn.

Plain HTTP on 127.0.0.1: cookies are carried by hand (a client keeps ``Secure`` cookies
only over HTTPS), the way a browser would send them.
"""

from __future__ import annotations

import httpx

PASSWORD = "correct horse battery"
EVIL = "https://evil.example"


class Browser:
    """A cookie jar that keeps every authstate cookie (the refresh one for /auth only)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar: dict[str, str] = {}

    def absorb(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, rest = header.split("=", 1)
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in header:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value

    def cookie(self, path: str) -> str:
        return "; ".join(
            f"{name}={value}"
            for name, value in self.jar.items()
            if "refresh" not in name or path.startswith("/auth")
        )

    def request(
        self, method: str, path: str, *, url: str | None = None, **kwargs: object
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if self.jar:
            headers.setdefault("cookie", self.cookie(path))
        response = httpx.request(
            method, f"{url or self.url}{path}", headers=headers, timeout=30, **kwargs
        )  # type: ignore[arg-type]
        self.absorb(response)
        return response

    @property
    def csrf(self) -> str:
        return self.jar["__Host-authstate-csrf"]


def login(url: str, username: str, password: str = PASSWORD) -> Browser:
    browser = Browser(url)
    response = browser.request(
        "POST", "/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return browser


def _cookies(response: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def _assert_no_store(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "cookie" in response.headers["vary"].lower()


def check_login_and_cookies(url: str, username: str) -> None:
    browser = Browser(url)
    response = browser.request(
        "POST", "/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"user", "mode", "csrf_token", "expires_at"}
    assert body["user"]["username"] == username and body["mode"] == "hybrid"
    _assert_no_store(response)
    cookies = _cookies(response)
    assert set(cookies) == {
        "__Host-authstate",
        "__Secure-authstate-refresh",
        "__Host-authstate-csrf",
    }
    auth = cookies["__Host-authstate"].split("; ")
    assert auth[1].startswith("Max-Age=") and auth[2:] == [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
    ]
    refresh = cookies["__Secure-authstate-refresh"].split("; ")
    assert refresh[2:] == ["Path=/auth", "Secure", "HttpOnly", "SameSite=Strict"]
    csrf = cookies["__Host-authstate-csrf"].split("; ")
    assert csrf[2:] == ["Path=/", "Secure", "SameSite=Lax"]
    assert csrf[0].split("=", 1)[1] == body["csrf_token"]


def check_login_refusals(url: str, username: str) -> None:
    wrong = httpx.post(
        f"{url}/auth/login", json={"username": username, "password": "wrong password"}, timeout=30
    )
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": "invalid_credentials",
        "detail": "invalid username or password",
    }
    assert "set-cookie" not in wrong.headers
    cross = httpx.post(
        f"{url}/auth/login",
        json={"username": username, "password": PASSWORD},
        headers={"sec-fetch-site": "cross-site"},
        timeout=30,
    )
    assert cross.status_code == 403 and cross.json()["error"] == "csrf_failed"
    foreign = httpx.post(
        f"{url}/auth/login",
        json={"username": username, "password": PASSWORD},
        headers={"origin": EVIL},
        timeout=30,
    )
    assert foreign.status_code == 403 and foreign.json()["error"] == "csrf_failed"
    plain = httpx.post(
        f"{url}/auth/login",
        content=f'{{"username": "{username}", "password": "{PASSWORD}"}}',
        headers={"content-type": "text/plain"},
        timeout=30,
    )
    assert plain.status_code == 400 and plain.json()["error"] == "bad_request"


def check_me(url: str, username: str) -> None:
    anonymous = httpx.get(f"{url}/auth/me", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "unauthenticated", "detail": "authentication required"}
    browser = login(url, username)
    response = browser.request("GET", "/auth/me")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user", "mode", "session", "token", "auth_time"}
    assert isinstance(body["auth_time"], int)  # step-up: the login's password check
    assert body["user"]["username"] == username and body["mode"] == "hybrid"
    assert set(body["session"]) == {"id", "expires_at"}
    assert set(body["token"]) == {"iat", "exp"}
    _assert_no_store(response)


def check_csrf_refusals(url: str, username: str) -> None:
    browser = login(url, username)
    missing = browser.request("POST", "/auth/logout")
    assert missing.status_code == 403 and missing.json()["error"] == "csrf_failed"
    forged = browser.request("POST", "/auth/logout", headers={"x-csrf-token": "A" * 66})
    assert forged.status_code == 403
    other = login(url, username)  # a valid token, but bound to another session
    borrowed = browser.request("POST", "/auth/logout", headers={"x-csrf-token": other.csrf})
    assert borrowed.status_code == 403
    foreign = browser.request(
        "POST", "/auth/logout", headers={"x-csrf-token": browser.csrf, "origin": EVIL}
    )
    assert foreign.status_code == 403
    cross = browser.request(
        "POST",
        "/auth/logout",
        headers={"x-csrf-token": browser.csrf, "sec-fetch-site": "cross-site"},
    )
    assert cross.status_code == 403
    assert browser.request("GET", "/auth/me").status_code == 200  # nothing changed


def check_refresh(url: str, username: str) -> None:
    browser = login(url, username)
    before = browser.jar["__Secure-authstate-refresh"]
    refused = browser.request("POST", "/auth/refresh")
    assert refused.status_code == 403
    assert browser.jar["__Secure-authstate-refresh"] == before
    response = browser.request("POST", "/auth/refresh", headers={"x-csrf-token": browser.csrf})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"user", "mode", "csrf_token", "expires_at"}
    assert browser.jar["__Secure-authstate-refresh"] != before
    assert browser.request("GET", "/auth/me").status_code == 200
    unknown = Browser(url)
    unknown.jar["__Secure-authstate-refresh"] = "x" * 43
    answer = unknown.request("POST", "/auth/refresh")
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_refresh"


def check_logout(url: str, username: str) -> None:
    browser = login(url, username)
    kept = dict(browser.jar)
    response = browser.request("POST", "/auth/logout", headers={"x-csrf-token": browser.csrf})
    assert response.status_code == 204
    cleared = _cookies(response)
    assert set(cleared) == {
        "__Host-authstate",
        "__Secure-authstate-refresh",
        "__Host-authstate-csrf",
    }
    assert all("Max-Age=0" in header for header in cleared.values())
    assert response.headers["clear-site-data"] == '"cookies"'
    replay = Browser(url)
    replay.jar = kept
    assert replay.request("GET", "/auth/me").status_code == 401


def check_sessions_and_logout_all(url: str, username: str) -> None:
    first, second = login(url, username), login(url, username)
    listing = first.request("GET", "/auth/sessions")
    assert listing.status_code == 200
    sessions = listing.json()["sessions"]
    assert {"id", "created_at", "last_seen_at", "expires_at", "user_agent", "ip", "current"} == set(
        sessions[0]
    )
    current = [s for s in sessions if s["current"]]
    assert len(current) == 1
    other = second.request("GET", "/auth/me").json()["session"]["id"]
    assert other in {s["id"] for s in sessions}
    revoked = first.request(
        "DELETE", f"/auth/sessions/{other}", headers={"x-csrf-token": first.csrf}
    )
    assert revoked.status_code == 204
    assert second.request("GET", "/auth/me").status_code == 401
    missing = first.request("DELETE", "/auth/sessions/nope", headers={"x-csrf-token": first.csrf})
    assert missing.status_code == 404
    third = login(url, username)
    everywhere = first.request("POST", "/auth/logout-all", headers={"x-csrf-token": first.csrf})
    assert everywhere.status_code == 204
    assert first.request("GET", "/auth/me").status_code == 401
    assert third.request("GET", "/auth/me").status_code == 401


def _session_cookies(response: httpx.Response) -> dict[str, str]:
    cookies = _cookies(response)
    assert cookies, response.text
    for header in cookies.values():
        attributes = header.lower()
        assert "max-age" not in attributes and "expires" not in attributes, header
    return cookies


def check_remember_me(url: str, username: str) -> None:
    """``"remember": false``: browser-session cookies, and they stay so through refresh,
    ``GET /auth/csrf``, reauth and a password change, whichever server answers."""
    browser = Browser(url)
    response = browser.request(
        "POST",
        "/auth/login",
        json={"username": username, "password": PASSWORD, "remember": False},
    )
    assert response.status_code == 200, response.text
    assert len(_session_cookies(response)) == 3
    refreshed = browser.request("POST", "/auth/refresh", headers={"x-csrf-token": browser.csrf})
    assert refreshed.status_code == 200, refreshed.text
    assert len(_session_cookies(refreshed)) == 3
    _session_cookies(browser.request("GET", "/auth/csrf"))
    reauth = browser.request(
        "POST", "/auth/reauth", json={"password": PASSWORD}, headers={"x-csrf-token": browser.csrf}
    )
    assert reauth.status_code == 200, reauth.text
    _session_cookies(reauth)
    for current, new in ((PASSWORD, PASSWORD + " 2"), (PASSWORD + " 2", PASSWORD)):
        changed = browser.request(
            "POST",
            "/auth/password",
            json={"current_password": current, "new_password": new},
            headers={"x-csrf-token": browser.csrf},
        )
        assert changed.status_code == 204, changed.text
        _session_cookies(changed)
    assert browser.request("GET", "/auth/me").status_code == 200
    bad = httpx.post(
        f"{url}/auth/login",
        json={"username": username, "password": PASSWORD, "remember": "no"},
        timeout=30,
    )
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
    remembered = login(url, username)  # the default keeps lifetime cookies
    lifetime = remembered.request("GET", "/auth/csrf")
    assert "Max-Age=" in lifetime.headers["set-cookie"]


def check_reauth(url: str, username: str) -> None:
    """``POST /auth/reauth``: CSRF as any unsafe route, the password checked again, then
    new credentials (the old session dies) with a new ``auth_time``."""
    anonymous = httpx.post(f"{url}/auth/reauth", json={"password": PASSWORD}, timeout=30)
    assert anonymous.status_code == 401
    browser = login(url, username)
    old = dict(browser.jar)
    no_token = browser.request("POST", "/auth/reauth", json={"password": PASSWORD})
    assert no_token.status_code == 403 and no_token.json()["error"] == "csrf_failed"
    wrong = browser.request(
        "POST",
        "/auth/reauth",
        json={"password": "wrong password"},
        headers={"x-csrf-token": browser.csrf},
    )
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": "invalid_credentials",
        "detail": "invalid username or password",
    }
    response = browser.request(
        "POST", "/auth/reauth", json={"password": PASSWORD}, headers={"x-csrf-token": browser.csrf}
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"user", "mode", "csrf_token", "expires_at"}
    _assert_no_store(response)
    assert browser.jar["__Host-authstate"] != old["__Host-authstate"]
    me = browser.request("GET", "/auth/me")
    assert me.status_code == 200 and isinstance(me.json()["auth_time"], int)
    replay = Browser(url)
    replay.jar = old
    assert replay.request("GET", "/auth/me").status_code == 401


def check_revoke_others(url: str, username: str) -> None:
    """``POST /auth/sessions/revoke-others``: every other device is signed out, this one
    stays (a login is a fresh password check); CSRF applies."""
    first, second = login(url, username), login(url, username)
    refused = first.request("POST", "/auth/sessions/revoke-others")
    assert refused.status_code == 403
    assert second.request("GET", "/auth/me").status_code == 200
    response = first.request(
        "POST", "/auth/sessions/revoke-others", headers={"x-csrf-token": first.csrf}
    )
    assert response.status_code == 204, response.text
    assert second.request("GET", "/auth/me").status_code == 401
    assert first.request("GET", "/auth/me").status_code == 200
    anonymous = httpx.post(f"{url}/auth/sessions/revoke-others", timeout=30)
    assert anonymous.status_code == 401


def check_session_data(url: str, username: str) -> None:
    """``GET``/``PATCH /auth/session/data``: per-key merge, ``null`` deletes, CSRF on the
    patch, JSON only, the caps, and the data kept through a refresh (hybrid: the family's)."""
    assert httpx.get(f"{url}/auth/session/data", timeout=30).status_code == 401
    browser = login(url, username)
    empty = browser.request("GET", "/auth/session/data")
    assert (empty.status_code, empty.json()) == (200, {"data": {}})
    _assert_no_store(empty)
    csrf = {"x-csrf-token": browser.csrf}
    forged = browser.request("PATCH", "/auth/session/data", json={"cart": [1]})
    assert forged.status_code == 403 and forged.json()["error"] == "csrf_failed"
    plain = browser.request(
        "PATCH",
        "/auth/session/data",
        content=b'{"cart": [1]}',
        headers={**csrf, "content-type": "text/plain"},
    )
    assert plain.status_code == 400 and plain.json()["error"] == "bad_request"
    patched = browser.request(
        "PATCH", "/auth/session/data", json={"cart": [1], "step": 2}, headers=csrf
    )
    assert (patched.status_code, patched.json()) == (200, {"data": {"cart": [1], "step": 2}})
    removed = browser.request("PATCH", "/auth/session/data", json={"step": None}, headers=csrf)
    assert removed.json() == {"data": {"cart": [1]}}
    too_much = browser.request(
        "PATCH", "/auth/session/data", json={"blob": "x" * 20_000}, headers=csrf
    )
    assert too_much.status_code == 413 and too_much.json()["error"] == "session_data_too_large"
    huge = browser.request("PATCH", "/auth/session/data", json={"blob": "x" * 40_000}, headers=csrf)
    assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"
    refreshed = browser.request("POST", "/auth/refresh", headers=csrf)
    assert refreshed.status_code == 200
    assert browser.request("GET", "/auth/session/data").json() == {"data": {"cart": [1]}}
    other = login(url, username)  # another session: its own data
    assert other.request("GET", "/auth/session/data").json() == {"data": {}}


CHECKS = [
    check_login_and_cookies,
    check_login_refusals,
    check_me,
    check_csrf_refusals,
    check_refresh,
    check_logout,
    check_sessions_and_logout_all,
    check_remember_me,
    check_reauth,
    check_revoke_others,
    check_session_data,
]


# With AUTHSTATE_TRANSPORTS=cookie,bearer (tests/wsgi/test_contract.py runs these apart).
def check_bearer_transport(url: str, username: str) -> None:
    """``Authorization: Bearer`` with the auth cookie's value (the access token): the same
    principal, no CSRF on unsafe routes, no cookie cleared at logout, 400 beside a cookie,
    and ``WWW-Authenticate`` on a 401 (``invalid_token`` for a refused token)."""
    anonymous = httpx.get(f"{url}/auth/me", timeout=30)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    browser = login(url, username)
    token = browser.jar["__Host-authstate"]
    header = {"authorization": f"Bearer {token}"}
    me = httpx.get(f"{url}/auth/me", headers=header, timeout=30)
    assert me.status_code == 200 and me.json()["user"]["username"] == username
    mixed = browser.request("GET", "/auth/me", headers=header)
    assert mixed.status_code == 400 and mixed.json()["error"] == "bad_request"
    malformed = httpx.get(f"{url}/auth/me", headers={"authorization": "Bearer a b"}, timeout=30)
    assert malformed.status_code == 401
    assert malformed.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    basic = httpx.get(f"{url}/auth/me", headers={"authorization": "Basic eDp5"}, timeout=30)
    assert basic.status_code == 401  # another scheme: not authstate's, anonymous
    out = httpx.post(f"{url}/auth/logout", headers=header, timeout=30)  # no CSRF token
    assert out.status_code == 204 and "set-cookie" not in out.headers
    dead = httpx.get(f"{url}/auth/me", headers=header, timeout=30)
    assert dead.status_code == 401
    assert dead.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # A cookie request is still CSRF-checked.
    other = login(url, username)
    assert other.request("POST", "/auth/logout").status_code == 403


def _token(url: str, **form: str) -> httpx.Response:
    return httpx.post(f"{url}/auth/token", data=form, timeout=30)


def check_token_endpoint(url: str, username: str) -> None:
    """``POST /auth/token`` (RFC 6749): the password and refresh grants, the §5.1 body with
    no cookie, one ``invalid_grant`` for a wrong password or refresh token, the other §5.2
    errors, the login's cross-site rule; a header client's password change answers with
    new tokens."""
    issued = _token(url, grant_type="password", username=username, password=PASSWORD)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert issued.headers["cache-control"] == "no-store"
    assert issued.headers["pragma"] == "no-cache"
    assert "set-cookie" not in issued.headers
    header = {"authorization": f"Bearer {body['access_token']}"}
    me = httpx.get(f"{url}/auth/me", headers=header, timeout=30)
    assert me.status_code == 200 and me.json()["user"]["username"] == username
    rotated = _token(url, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != body["refresh_token"]
    wrong = _token(url, grant_type="password", username=username, password="wrong password")
    unknown = _token(url, grant_type="refresh_token", refresh_token="x" * 43)
    for refused in (wrong, unknown):
        assert refused.status_code == 400
        assert refused.json() == {
            "error": "invalid_grant",
            "error_description": "invalid username, password or refresh token",
        }
    assert _token(url, grant_type="magic").json()["error"] == "unsupported_grant_type"
    assert _token(url, grant_type="password").json()["error"] == "invalid_request"
    scoped = _token(url, grant_type="password", username=username, password=PASSWORD, scope="x")
    assert scoped.json()["error"] == "invalid_scope"
    as_json = httpx.post(
        f"{url}/auth/token",
        json={"grant_type": "password", "username": username, "password": PASSWORD},
        timeout=30,
    )
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    cross = httpx.post(
        f"{url}/auth/token",
        data={"grant_type": "password", "username": username, "password": PASSWORD},
        headers={"sec-fetch-site": "cross-site"},
        timeout=30,
    )
    assert cross.status_code == 403 and cross.json()["error"] == "csrf_failed"
    access = {"authorization": f"Bearer {rotated.json()['access_token']}"}
    for current, new in ((PASSWORD, PASSWORD + " 2"), (PASSWORD + " 2", PASSWORD)):
        changed = httpx.post(
            f"{url}/auth/password",
            json={"current_password": current, "new_password": new},
            headers=access,
            timeout=30,
        )
        assert changed.status_code == 200, changed.text
        assert "set-cookie" not in changed.headers
        access = {"authorization": f"Bearer {changed.json()['access_token']}"}
    assert httpx.get(f"{url}/auth/me", headers=access, timeout=30).status_code == 200


def check_no_token_endpoint_without_bearer(url: str, username: str) -> None:
    absent = _token(url, grant_type="password", username=username, password=PASSWORD)
    assert absent.status_code == 404 and absent.json()["error"] == "not_found"


CHECKS.append(check_no_token_endpoint_without_bearer)
BEARER_CHECKS = [check_bearer_transport, check_token_endpoint]
