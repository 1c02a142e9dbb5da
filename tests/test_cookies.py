"""Cookies: exact Set-Cookie strings and a Cookie reader that refuses tossing and tricks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authstate.cookies import (
    AUTH_COOKIE,
    CSRF_COOKIE,
    MAX_COOKIE_BYTES,
    MAX_COOKIE_HEADER_BYTES,
    REFRESH_COOKIE,
    CookiePolicy,
    read_cookie,
)
from authstate.errors import AuthenticationError
from authstate.settings import Settings

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"


def attributes(header: str) -> list[str]:
    return header.split("; ")[1:]


# -- writing ---------------------------------------------------------------------------------


def test_the_auth_cookie_is_host_only_secure_httponly_and_lax() -> None:
    assert CookiePolicy().auth_cookie(JWT, 900) == (
        f"__Host-authstate={JWT}; Max-Age=900; Path=/; Secure; HttpOnly; SameSite=Lax"
    )


def test_the_refresh_cookie_goes_only_to_auth_paths_and_never_cross_site() -> None:
    assert CookiePolicy().refresh_cookie("r3fr3sh_t0ken-x", 2592000) == (
        "__Secure-authstate-refresh=r3fr3sh_t0ken-x; Max-Age=2592000; Path=/auth; "
        "Secure; HttpOnly; SameSite=Strict"
    )


def test_the_csrf_cookie_is_readable_by_page_scripts() -> None:
    header = CookiePolicy().csrf_cookie("abc.def", 900)
    assert header == "__Host-authstate-csrf=abc.def; Max-Age=900; Path=/; Secure; SameSite=Lax"
    assert "HttpOnly" not in header


def test_no_cookie_ever_carries_a_domain() -> None:
    policy = CookiePolicy()
    headers = [
        policy.auth_cookie("a", 1),
        policy.refresh_cookie("a", 1),
        policy.csrf_cookie("a", 1),
        policy.clear_auth(),
        policy.clear_refresh(),
        policy.clear_csrf(),
    ]
    assert all("domain" not in header.lower() for header in headers)


@pytest.mark.parametrize(
    ("clear", "write"),
    [
        (CookiePolicy().clear_auth, CookiePolicy().auth_cookie),
        (CookiePolicy().clear_refresh, CookiePolicy().refresh_cookie),
        (CookiePolicy().clear_csrf, CookiePolicy().csrf_cookie),
    ],
)
def test_clearing_a_cookie_uses_max_age_zero_and_the_same_path_and_attributes(clear, write) -> None:  # type: ignore[no-untyped-def]
    cleared, written = clear(), write("value", 60)
    assert cleared.split("; ")[0] == written.split("; ")[0].split("=")[0] + "="
    assert "Max-Age=0" in attributes(cleared)
    assert [a for a in attributes(cleared) if not a.startswith("Max-Age")] == [
        a for a in attributes(written) if not a.startswith("Max-Age")
    ]


def test_exact_clear_strings() -> None:
    policy = CookiePolicy()
    assert (
        policy.clear_auth()
        == "__Host-authstate=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"
    )
    assert policy.clear_refresh() == (
        "__Secure-authstate-refresh=; Max-Age=0; Path=/auth; Secure; HttpOnly; SameSite=Strict"
    )
    assert policy.clear_csrf() == "__Host-authstate-csrf=; Max-Age=0; Path=/; Secure; SameSite=Lax"


@pytest.mark.parametrize(
    "value",
    ["", "a;b", "a b", 'a"b', "a,b", "a\\b", "a\r\nSet-Cookie: evil=1", "é", "a\x00", "a\tb"],
)
def test_a_value_that_could_break_the_header_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        CookiePolicy().auth_cookie(value, 60)


def test_a_cookie_the_browser_would_drop_is_refused_when_written() -> None:
    value = "a" * (MAX_COOKIE_BYTES - len(AUTH_COOKIE) + 1)
    with pytest.raises(ValueError, match="4096"):
        CookiePolicy().auth_cookie(value, 60)
    CookiePolicy().auth_cookie(value[:-1], 60)


@pytest.mark.parametrize("max_age", [-1, True, 1.5, "60"])
def test_max_age_is_a_non_negative_whole_number_of_seconds(max_age: object) -> None:
    with pytest.raises(ValueError):
        CookiePolicy().auth_cookie("v", max_age)  # type: ignore[arg-type]


def test_a_prefixed_name_without_secure_is_refused_because_browsers_would_drop_it() -> None:
    with pytest.raises(ValueError, match="secure=True"):
        CookiePolicy(secure=False)


def test_a_host_prefixed_refresh_cookie_needs_path_root() -> None:
    with pytest.raises(ValueError, match="Path=/"):
        CookiePolicy(refresh_cookie_name="__Host-refresh")
    CookiePolicy(refresh_cookie_name="__Host-refresh", refresh_path="/")


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a=b", "é"])
def test_an_invalid_cookie_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        CookiePolicy(auth_cookie_name=name)


def test_the_policy_from_default_settings_is_the_secure_one() -> None:
    assert CookiePolicy.from_settings(Settings()) == CookiePolicy()


def test_unsafe_insecure_cookies_drop_secure_and_the_prefixes() -> None:
    policy = CookiePolicy.from_settings(Settings(unsafe_insecure_cookies=True))
    header = policy.auth_cookie("v", 60)
    assert header == "authstate=v; Max-Age=60; Path=/; HttpOnly; SameSite=Lax"
    assert policy.csrf_cookie_name == "authstate-csrf"
    assert policy.refresh_cookie_name == "authstate-refresh"


# -- reading ---------------------------------------------------------------------------------


def test_the_auth_cookie_is_read_among_others() -> None:
    header = f"theme=dark; {AUTH_COOKIE}={JWT}; {CSRF_COOKIE}=tok"
    assert read_cookie(header, AUTH_COOKIE) == JWT
    assert read_cookie(header, CSRF_COOKIE) == "tok"
    assert read_cookie(header, REFRESH_COOKIE) is None


def test_cookies_split_over_several_headers_are_read() -> None:
    assert read_cookie(["theme=dark", f"{AUTH_COOKIE}=v1"], AUTH_COOKIE) == "v1"


def test_no_header_means_no_cookie() -> None:
    assert read_cookie(None, AUTH_COOKIE) is None
    assert read_cookie([], AUTH_COOKIE) is None
    assert read_cookie("", AUTH_COOKIE) is None


def test_a_longer_name_sharing_the_prefix_is_not_the_auth_cookie() -> None:
    assert read_cookie(f"{CSRF_COOKIE}=tok", AUTH_COOKIE) is None


@pytest.mark.parametrize(
    "name",
    ["__host-authstate", "__HOST-authstate", "authstate", "__Secure-authstate", "__Host-Authstate"],
)
def test_a_case_different_or_prefix_stripped_name_is_not_read(name: str) -> None:
    assert read_cookie(f"{name}={JWT}", AUTH_COOKIE) is None


def test_a_name_with_a_space_before_the_equals_sign_is_not_read() -> None:
    assert read_cookie(f"{AUTH_COOKIE} ={JWT}", AUTH_COOKIE) is None


def test_a_nameless_pair_carrying_the_name_in_its_value_is_not_read() -> None:
    assert read_cookie(f"={AUTH_COOKIE}={JWT}", AUTH_COOKIE) is None


@pytest.mark.parametrize(
    "header",
    [
        f"{AUTH_COOKIE}=alice; {AUTH_COOKIE}=mallory",
        f"{AUTH_COOKIE}=mallory; {AUTH_COOKIE}=alice",
        f"{AUTH_COOKIE}=alice; {AUTH_COOKIE}=",
        f"{AUTH_COOKIE}=; {AUTH_COOKIE}=alice",
        f"{AUTH_COOKIE}=alice;{AUTH_COOKIE}=%00garbage",
    ],
)
def test_a_duplicated_auth_cookie_is_refused_rather_than_picking_one(header: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        read_cookie(header, AUTH_COOKIE)
    assert caught.value.status_code == 401
    assert "duplicate" in caught.value.reason


def test_a_duplicate_across_two_cookie_headers_is_refused() -> None:
    with pytest.raises(AuthenticationError):
        read_cookie([f"{CSRF_COOKIE}=a", f"x=1; {CSRF_COOKIE}=b"], CSRF_COOKIE)


def test_whitespace_between_pairs_is_skipped() -> None:
    assert read_cookie(f"a=b;\t{AUTH_COOKIE}=v2", AUTH_COOKIE) == "v2"
    assert read_cookie(f"  {AUTH_COOKIE}=v1;x=y", AUTH_COOKIE) == "v1"


def test_quotes_and_whitespace_around_the_value_are_kept_so_the_credential_fails() -> None:
    # One credential, one spelling (security catalogue T17): we never write quoted cookies.
    assert read_cookie(f'{AUTH_COOKIE}="v1"', AUTH_COOKIE) == '"v1"'
    assert read_cookie(f"{AUTH_COOKIE}= v1 ;x=y", AUTH_COOKIE) == " v1 "


def test_an_empty_value_counts_as_absent() -> None:
    assert read_cookie(f"{AUTH_COOKIE}=", AUTH_COOKIE) is None
    assert read_cookie(f"{AUTH_COOKIE}=; x=y", AUTH_COOKIE) is None


def test_pairs_without_an_equals_sign_are_ignored() -> None:
    assert read_cookie(f"{AUTH_COOKIE}; a; ;;{AUTH_COOKIE}=v", AUTH_COOKIE) == "v"


def test_an_oversized_auth_cookie_is_unauthenticated() -> None:
    value = "a" * (MAX_COOKIE_BYTES - len(AUTH_COOKIE) + 1)
    with pytest.raises(AuthenticationError) as caught:
        read_cookie(f"{AUTH_COOKIE}={value}", AUTH_COOKIE)
    assert "too large" in caught.value.reason
    assert read_cookie(f"{AUTH_COOKIE}={value[:-1]}", AUTH_COOKIE) == value[:-1]


def test_an_absurdly_large_cookie_header_is_refused_before_parsing() -> None:
    with pytest.raises(AuthenticationError) as caught:
        read_cookie(["a=" + "b" * MAX_COOKIE_HEADER_BYTES], AUTH_COOKIE)
    assert "header too large" in caught.value.reason


def test_a_large_cookie_of_someone_else_does_not_matter() -> None:
    assert read_cookie(f"analytics={'x' * 6000}; {AUTH_COOKIE}=v", AUTH_COOKIE) == "v"


def test_reading_a_query_string_is_not_possible() -> None:
    # The reader takes Cookie header values only; a query string is just another text
    # without a cookie pair of that exact name.
    assert read_cookie(f"/page?{AUTH_COOKIE}={JWT}", AUTH_COOKIE) is None


# Headers built from the pieces that matter, so duplicates and near-names come up often.
COOKIE_TEXT = st.lists(
    st.sampled_from([*'; =\t"', "__Host-authstate", "__host-authstate", "-csrf", "a", "é", "\x00"]),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), COOKIE_TEXT, st.lists(COOKIE_TEXT, max_size=3)))
def test_any_header_gives_a_value_none_or_unauthenticated(header: str | list[str]) -> None:
    try:
        value = read_cookie(header, AUTH_COOKIE)
    except AuthenticationError:
        return
    assert value is None or (isinstance(value, str) and value != "")
