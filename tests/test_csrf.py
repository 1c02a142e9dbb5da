"""CSRF: tokens bound to the auth state, and Origin / Fetch Metadata checks that refuse
cross-site writes. Each attack from security research §3.H gets its own test."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authstate._time import FrozenClock
from authstate.csrf import CSRFProtector
from authstate.errors import ConfigurationError, CSRFError

KEY = bytes(range(32))
APP = "https://app.example.test"


@pytest.fixture
def csrf() -> CSRFProtector:
    return CSRFProtector(KEY, allowed_origins=[APP], clock=FrozenClock())


@pytest.fixture
def own_only() -> CSRFProtector:
    return CSRFProtector(KEY, allowed_origins=[], clock=FrozenClock())


def post(csrf: CSRFProtector, **overrides: Any) -> None:
    """A same-origin browser POST with a valid token for binding 'alice-sid', then overrides."""
    request: dict[str, Any] = {
        "method": "POST",
        "origin": APP,
        "sec_fetch_site": "same-origin",
        "binding": "alice-sid",
        "own_origin": APP,
    }
    request.update(overrides)
    if "token" not in request:
        request["token"] = csrf.issue(request["binding"])
    csrf.check_request(**request)


# -- the token --------------------------------------------------------------------------------


def test_a_token_verifies_for_its_own_binding(csrf: CSRFProtector) -> None:
    csrf.verify_token(csrf.issue("alice-sid"), "alice-sid")


def test_a_token_is_random_each_time(csrf: CSRFProtector) -> None:
    assert csrf.issue("alice-sid") != csrf.issue("alice-sid")


def test_a_token_fits_a_cookie_and_a_header_without_escaping(csrf: CSRFProtector) -> None:
    token = csrf.issue("alice-sid")
    assert len(token) == 66
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_token_has_the_documented_construction(csrf: CSRFProtector) -> None:
    token = csrf.issue("sid-1")
    nonce_text, mac_text = token.split(".")
    nonce = base64.urlsafe_b64decode(nonce_text + "==")
    mac = hmac.new(KEY, b"csrf\x00sid-1\x00" + nonce, hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == mac_text


def test_a_token_from_another_session_is_refused(csrf: CSRFProtector) -> None:
    mallory_token = csrf.issue("mallory-sid")
    with pytest.raises(CSRFError):
        csrf.verify_token(mallory_token, "alice-sid")


def test_the_pre_login_token_is_refused_after_login(csrf: CSRFProtector) -> None:
    anonymous = csrf.issue("")
    csrf.verify_token(anonymous, "")
    with pytest.raises(CSRFError):
        csrf.verify_token(anonymous, "alice-sid")


def test_a_token_signed_with_another_key_is_refused(csrf: CSRFProtector) -> None:
    other = CSRFProtector(b"k" * 32, allowed_origins=[APP], clock=FrozenClock())
    with pytest.raises(CSRFError):
        csrf.verify_token(other.issue("alice-sid"), "alice-sid")


def test_a_tampered_mac_is_refused(csrf: CSRFProtector) -> None:
    token = csrf.issue("alice-sid")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(CSRFError):
        csrf.verify_token(flipped, "alice-sid")


def test_a_tampered_nonce_is_refused(csrf: CSRFProtector) -> None:
    token = csrf.issue("alice-sid")
    flipped = ("A" if token[0] != "A" else "B") + token[1:]
    with pytest.raises(CSRFError):
        csrf.verify_token(flipped, "alice-sid")


def test_a_non_canonical_nonce_encoding_is_refused(csrf: CSRFProtector) -> None:
    token = csrf.issue("alice-sid")
    # The 22nd character carries 2 unused bits; setting one decodes to the same nonce.
    last = token[21]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variant = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(CSRFError) as caught:
        csrf.verify_token(token[:21] + variant + token[22:], "alice-sid")
    assert "canonical" in caught.value.reason


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "x",
        "." * 66,
        "A" * 66,
        "A" * 22 + "." + "A" * 42 + "=",
        "A" * 22 + "." + "A" * 42 + "\u00e9",
        "A" * 10_000,
    ],
)
def test_a_missing_or_malformed_token_is_refused(csrf: CSRFProtector, token: str | None) -> None:
    with pytest.raises(CSRFError) as caught:
        csrf.verify_token(token, "alice-sid")
    assert caught.value.status_code == 403


def test_an_unsigned_attacker_chosen_value_is_refused(csrf: CSRFProtector) -> None:
    # Naive double-submit forgery: the attacker plants a cookie V and sends header V.
    planted = base64.urlsafe_b64encode(b"\x01" * 16).rstrip(b"=").decode() + "." + "A" * 43
    with pytest.raises(CSRFError):
        post(csrf, token=planted)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.none(), st.text(max_size=100), st.text(alphabet="AB-_.=", min_size=66, max_size=66)
    )
)
def test_any_token_string_is_refused_with_a_csrf_error_only(token: str | None) -> None:
    protector = CSRFProtector(KEY, allowed_origins=[APP], clock=FrozenClock())
    with pytest.raises(CSRFError):
        protector.verify_token(token, "alice-sid")


def test_a_short_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        CSRFProtector(b"short", allowed_origins=[], clock=FrozenClock())


def test_a_malformed_allowed_origin_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        CSRFProtector(KEY, allowed_origins=["https://app.test/"], clock=FrozenClock())


# -- the request ------------------------------------------------------------------------------


def test_a_same_origin_post_with_a_valid_token_passes(csrf: CSRFProtector) -> None:
    post(csrf)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_safe_methods_pass_without_token_or_origin(csrf: CSRFProtector, method: str) -> None:
    post(csrf, method=method, token=None, origin="https://evil.test", sec_fetch_site="cross-site")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "get", "PROPFIND"])
def test_an_unsafe_method_without_a_token_is_refused(csrf: CSRFProtector, method: str) -> None:
    with pytest.raises(CSRFError, match="missing"):
        post(csrf, method=method, token=None)


def test_a_cross_site_fetch_is_refused_even_with_a_valid_token(csrf: CSRFProtector) -> None:
    with pytest.raises(CSRFError, match="cross-site"):
        post(csrf, sec_fetch_site="cross-site", origin=None)
    with pytest.raises(CSRFError):
        post(csrf, sec_fetch_site="Cross-Site")


def test_a_same_site_sibling_is_refused_unless_configured(own_only: CSRFProtector) -> None:
    with pytest.raises(CSRFError):
        post(own_only, sec_fetch_site="same-site", origin="https://blog.example.test")
    with pytest.raises(CSRFError):
        post(own_only, sec_fetch_site="same-site", origin=None)


def test_a_configured_sibling_origin_may_post() -> None:
    csrf = CSRFProtector(
        KEY, allowed_origins=[APP, "https://admin.example.test"], clock=FrozenClock()
    )
    post(csrf, sec_fetch_site="same-site", origin="https://admin.example.test")


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.test",
        "https://app.example.test.evil.test",  # look-alike: our host as a prefix
        "https://evil.test/app.example.test",  # our host in the path
        "https://evilapp.example.test",
        "http://app.example.test",  # scheme downgrade
        "https://app.example.test:8443",  # another port
        "https://app.example.test@evil.test",
        "null",
        "",
        "garbage",
    ],
)
def test_a_foreign_or_look_alike_origin_is_refused(csrf: CSRFProtector, origin: str) -> None:
    with pytest.raises(CSRFError):
        post(csrf, origin=origin, sec_fetch_site=None)


def test_the_allowed_origin_matches_whatever_the_case_and_default_port(csrf: CSRFProtector) -> None:
    post(csrf, origin="HTTPS://APP.example.test:443")


def test_with_no_configured_origins_only_the_servers_own_origin_is_allowed(
    own_only: CSRFProtector,
) -> None:
    post(own_only, origin="http://localhost:8000", own_origin="http://localhost:8000")
    with pytest.raises(CSRFError):
        post(own_only, origin="http://localhost:9999", own_origin="http://localhost:8000")
    with pytest.raises(CSRFError):
        post(own_only, origin="http://localhost:8000", own_origin=None)


def test_configured_origins_replace_the_servers_own_origin(csrf: CSRFProtector) -> None:
    with pytest.raises(CSRFError):
        post(csrf, origin="http://internal:8000", own_origin="http://internal:8000")


def test_a_client_without_origin_or_fetch_metadata_relies_on_the_token(csrf: CSRFProtector) -> None:
    post(csrf, origin=None, sec_fetch_site=None)
    with pytest.raises(CSRFError):
        post(csrf, origin=None, sec_fetch_site=None, token=None)


def test_the_token_is_checked_even_when_the_headers_look_right(csrf: CSRFProtector) -> None:
    with pytest.raises(CSRFError):
        post(csrf, token=csrf.issue("mallory-sid"))


# -- login ------------------------------------------------------------------------------------


def test_login_from_our_own_page_passes(csrf: CSRFProtector) -> None:
    csrf.check_login(origin=APP, sec_fetch_site="same-origin", own_origin=APP)


def test_login_from_a_json_client_without_browser_headers_passes(csrf: CSRFProtector) -> None:
    csrf.check_login(origin=None, sec_fetch_site=None, own_origin=APP)


@pytest.mark.parametrize(
    ("origin", "site"),
    [
        ("https://evil.test", "cross-site"),
        (None, "cross-site"),
        ("https://evil.test", None),
        ("null", None),
        ("https://app.example.test.evil.test", None),
    ],
)
def test_login_csrf_from_another_site_is_refused(
    csrf: CSRFProtector, origin: str | None, site: str | None
) -> None:
    with pytest.raises(CSRFError):
        csrf.check_login(origin=origin, sec_fetch_site=site, own_origin=APP)
