"""G. Cookies (T53-T57): every credential cookie is host-bound, Secure, HttpOnly and
SameSite; it is read only under its exact name and only once; nothing about it is cached.
"""

from __future__ import annotations

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from authstate.errors import BadRequest
from tests.security.harness import PASSWORD, Node, running

pytestmark = pytest.mark.anyio


def attributes(header: str) -> tuple[str, str, dict[str, str]]:
    """(name, value, {attribute name: value or ""}) of one Set-Cookie header."""
    pair, *rest = header.split(";")
    name, value = pair.split("=", 1)
    attrs = {}
    for part in rest:
        key, _, val = part.strip().partition("=")
        attrs[key] = val
    return name, value, attrs


def check_set_cookies(response: httpx.Response, node: Node) -> set[str]:
    """Assert T53 on every Set-Cookie of ``response``; return the cookie names."""
    settings = node.auth.settings
    longest = {
        "stateless": settings.access_ttl_seconds,
        "session": settings.session_ttl_seconds,
        "hybrid": settings.refresh_ttl_seconds,
    }[node.mode]
    names = set()
    for header in response.headers.get_list("set-cookie"):
        name, value, attrs = attributes(header)
        names.add(name)
        assert "Domain" not in attrs and "Expires" not in attrs
        assert "Secure" in attrs
        assert attrs.get("SameSite") in ("Lax", "Strict")
        ceiling = longest if name != CSRF_COOKIE else settings.refresh_ttl_seconds
        assert 0 <= int(attrs["Max-Age"]) <= ceiling
        assert "," not in value  # one cookie per header, never folded
        if name == AUTH_COOKIE:
            assert name.startswith("__Host-") and attrs["Path"] == "/"
            assert "HttpOnly" in attrs and attrs["SameSite"] == "Lax"
        elif name == REFRESH_COOKIE:
            assert name.startswith("__Secure-") and attrs["Path"] == "/auth"
            assert "HttpOnly" in attrs and attrs["SameSite"] == "Strict"
        elif name == CSRF_COOKIE:
            assert name.startswith("__Host-") and attrs["Path"] == "/"
            assert "HttpOnly" not in attrs  # page scripts echo it; it is signed and bound
        else:
            raise AssertionError(f"unexpected cookie {name}")
    return names


# -- T53 -----------------------------------------------------------------------------------------
async def test_every_cookie_we_set_is_host_bound_secure_and_same_site(node: Node) -> None:
    """T53: login (JSON and form), refresh, the password change's rotation, GET /auth/csrf
    and logout's clearing: each cookie has its prefix, Secure, the right HttpOnly, an
    explicit SameSite, no Domain, its Path, a Max-Age within the credential's lifetime
    (the CSRF cookie, no credential, within the longest one), and each Set-Cookie header
    holds one cookie."""
    responses = []
    async with node.client() as client:
        responses.append(await client.get("/auth/csrf"))
        form = await client.post("/auth/login", data={"username": "alice", "password": PASSWORD})
        assert form.status_code == 303
        responses.append(form)
    session = await node.login("alice")
    if node.mode == "hybrid":
        responses.append(await session.refresh_now())
    responses.append(
        await session.post(
            "/auth/password", json={"current_password": PASSWORD, "new_password": "0ther pass"}
        )
    )
    responses.append(await session.client.get("/auth/csrf"))
    responses.append(await session.post("/auth/logout"))
    for response in responses:
        assert response.status_code in (200, 204, 303), response.text
        check_set_cookies(response, node)
    assert {AUTH_COOKIE, CSRF_COOKIE} <= check_set_cookies(form, node)


# -- T54 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "__host-authstate",
        "__HOST-authstate",
        "authstate",
        "__Secure-authstate",
        "__Host-authstate ",
        " __Host-authstate ",
        "__Host-Authstate",
        "__Host-authstate-csrf",
        "__Host-authstat",
    ],
)
async def test_the_credential_is_read_under_its_exact_name_only(node: Node, name: str) -> None:
    """T54: alice's valid credential under a case variant, the prefix stripped or swapped,
    a space before ``=``, or a near name: 401 (a sibling host can set ``__host-...``)."""
    value = (await node.login("alice")).auth
    assert await node.whoami(f"{name}={value}") is None
    assert await node.whoami(f"{AUTH_COOKIE}={value}") == node.users["alice"]


# -- T55 -----------------------------------------------------------------------------------------
async def test_a_duplicated_auth_cookie_authenticates_no_one(node: Node) -> None:
    """T55: alice's and mallory's valid cookies together (either order, one header or two),
    a valid one plus garbage, and a nameless pair carrying the name: never alice, never
    mallory, never a 5xx."""
    alice = (await node.login("alice")).auth
    mallory = (await node.login("mallory")).auth
    duplicates = [
        f"{AUTH_COOKIE}={alice}; {AUTH_COOKIE}={mallory}",
        f"{AUTH_COOKIE}={mallory}; {AUTH_COOKIE}={alice}",
        f"{AUTH_COOKIE}={alice}; {AUTH_COOKIE}=garbage",
        f"{AUTH_COOKIE}=garbage;{AUTH_COOKIE}={alice}",
        f"{AUTH_COOKIE}={alice}; {AUTH_COOKIE}=",
        f"={AUTH_COOKIE}={alice}",
        f"x=1; ={AUTH_COOKIE}={alice}",
    ]
    for cookie in duplicates:
        assert await node.whoami(cookie) is None, cookie
    async with node.client() as client:
        response = await client.get(
            "/auth/me",
            headers=[("cookie", f"{AUTH_COOKIE}={alice}"), ("cookie", f"{AUTH_COOKIE}={mallory}")],
        )
    assert response.status_code == 401


async def test_an_injected_csrf_cookie_satisfies_nothing(node: Node) -> None:
    """T55/T60: the CSRF cookie is never read by the server: a planted or duplicated one,
    even equal to the header, does not make a request pass; only a token bound to the
    victim's own session does."""
    victim = await node.login("alice")
    attacker = await node.login("mallory")
    for planted in (attacker.csrf, "forged", victim.csrf):
        cookie = (
            f"{AUTH_COOKIE}={victim.auth}; {CSRF_COOKIE}={planted}; {CSRF_COOKIE}={attacker.csrf}"
        )
        response = await node.raw(
            "POST", "/auth/logout-all", cookie=cookie, headers={"x-csrf-token": attacker.csrf}
        )
        assert response.status_code == 403
    assert (await victim.me()).status_code == 200


# -- T56 -----------------------------------------------------------------------------------------
async def test_credentials_are_never_cached_and_logout_clears_the_browser(node: Node) -> None:
    """T56: login, refresh, /auth/me, /auth/csrf and every 401 carry Cache-Control:
    no-store (and Vary: Cookie); logout sends Clear-Site-Data: "cookies" and expires every
    credential cookie."""
    async with node.client() as client:
        login = await client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        anonymous = await client.get("/auth/sessions")
    session = await node.login("alice")
    responses = [login, await session.me(), await session.client.get("/auth/csrf")]
    if node.mode == "hybrid":
        responses.append(await session.refresh_now())
    responses.append(await node.raw("GET", "/auth/me", cookie=f"{AUTH_COOKIE}=nope"))
    responses.append(anonymous)
    for response in responses:
        assert response.headers["cache-control"] == "no-store", response.request.url
    assert "Cookie" in responses[1].headers["vary"]
    logout = await session.post("/auth/logout")
    assert logout.headers["cache-control"] == "no-store"
    assert logout.headers["clear-site-data"] == '"cookies"'
    cleared = {attributes(h)[0]: attributes(h) for h in logout.headers.get_list("set-cookie")}
    expected = {AUTH_COOKIE, CSRF_COOKIE} | ({REFRESH_COOKIE} if node.mode == "hybrid" else set())
    assert set(cleared) == expected
    for _, value, attrs in cleared.values():
        assert value == "" and attrs["Max-Age"] == "0"


# -- T57 -----------------------------------------------------------------------------------------
DOCUMENTED_CLAIMS = {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles", "gen", "sid"}
# Step-up and remember-me (docs/concepts.md): no personal data either.
DOCUMENTED_CLAIMS |= {"auth_time", "rem"}


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
async def test_cookies_fit_for_the_largest_user_and_tokens_carry_no_personal_data(
    mode: str,
) -> None:
    """T57: a 64-character username with the most roles allowed (32 of 64 characters)
    logs in and every cookie, name and value, stays within 4096 bytes; the decoded JWT
    holds only the documented claims: no password, username or e-mail. More roles are
    refused when the user is made (so a login can never fail on size)."""
    name = "a" * 60 + "@x.y"
    roles = tuple(f"{i:02d}" + "r" * 62 for i in range(32))
    async with running(mode, users=()) as node:
        await node.add_user(name, PASSWORD, roles)
        session = await node.login(name)
        for cookie_name, value in session.cookies.items():
            assert len(cookie_name) + len(value) <= 4096
        if mode != "session":
            claims = session.token_claims()
            assert set(claims) <= DOCUMENTED_CLAIMS
            text = str(claims)
            assert PASSWORD not in text and name not in text and "@" not in text
        else:
            assert len(session.auth) == 43  # opaque: nothing to read
        with pytest.raises(BadRequest):
            await node.auth.accounts.add_user("b" * 10, PASSWORD, (*roles, "one-more"))
        with pytest.raises(BadRequest):
            await node.auth.accounts.add_user("c" * 10, PASSWORD, ("r" * 65,))
