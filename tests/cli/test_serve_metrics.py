"""``authstate serve --metrics``: a real server's ``GET /metrics`` parsed with the
Prometheus text parser, counters moving with what clients do; ``/metrics`` is 404 unless
asked for; the audit log (a subscriber of the events) still writes every event."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.serve_process import clean_env, cookie_header, free_port, serve

pytestmark = pytest.mark.slow


def scrape(url: str) -> dict[str, float]:
    """``{sample name{labels}: value}`` of ``GET /metrics``."""
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def post_login(url: str, name: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{url}/auth/login", json={"username": name, "password": password}, timeout=10
    )


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
def test_counters_move_with_logins_failures_429s_and_logouts(tmp_path: Path, mode: str) -> None:
    env = clean_env(AUTHSTATE_LOGIN_MAX_ATTEMPTS="2")
    store = f"sqlite:///{tmp_path / 'a.db'}"
    with serve(tmp_path, "--demo", "--metrics", "--mode", mode, "--store", store, env=env) as s:
        passwords = s.demo_passwords()
        before = scrape(s.url)
        assert before["authstate_logins_total{}"] == 0
        login = post_login(s.url, "alice", passwords["alice"])
        assert login.status_code == 200
        cookie, csrf = cookie_header(login), login.json()["csrf_token"]
        me = httpx.get(f"{s.url}/auth/me", headers={"cookie": cookie}, timeout=5)
        assert me.status_code == 200
        logout = httpx.post(
            f"{s.url}/auth/logout", headers={"cookie": cookie, "x-csrf-token": csrf}, timeout=5
        )
        assert logout.status_code == 204
        assert [post_login(s.url, "bob", "wrong password!").status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
        after = scrape(s.url)
    assert after["authstate_logins_total{}"] == 1
    assert after["authstate_login_failures_total{}"] == 2
    assert after["authstate_login_throttled_total{}"] == 1
    assert after["authstate_events_total{event=logout}"] == 1
    assert after["authstate_revocations_total{reason=logout}"] == 1
    # The login wrote to the store: its calls were timed.
    assert after["authstate_store_call_seconds_count{operation=get_user_by_name}"] >= 4
    # Present; their values depend on the machine's load (a SQLite bus polls).
    assert after["authstate_bus_healthy{}"] in (0, 1)
    assert after["authstate_bus_staleness_seconds{}"] >= 0
    # measured on the listening path once the bus has polled or probed (NaN before: fails)
    assert after["authstate_bus_lag_seconds{}"] >= 0
    cache = "session" if mode == "session" else "token"
    lookups = [
        f"authstate_cache_lookups_total{{cache={cache},result={r}}}" for r in ("hit", "miss")
    ]
    assert sum(after[name] for name in lookups) >= 1
    # The audit log is one subscriber of the same events.
    events = [json.loads(line).get("event") for line in s.stderr.splitlines()]
    assert {"login", "logout", "login_failed", "login_throttled"} <= set(events)


def test_metrics_are_404_unless_asked_for(tmp_path: Path) -> None:
    with serve(tmp_path, "--store", f"sqlite:///{tmp_path / 'a.db'}") as server:
        response = httpx.get(f"{server.url}/metrics", timeout=5)
    assert response.status_code == 404


def test_the_environment_variable_turns_them_on(tmp_path: Path) -> None:
    env = clean_env(AUTHSTATE_METRICS="1")
    with serve(tmp_path, "--store", f"sqlite:///{tmp_path / 'a.db'}", env=env) as server:
        assert "authstate_logins_total{}" in scrape(server.url)


def test_metrics_without_prometheus_client_is_a_one_line_error(tmp_path: Path) -> None:
    # The package hidden from this interpreter, as when the extra is not installed.
    code = (
        "import sys; sys.modules['prometheus_client'] = None; "
        "from authstate.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "serve", "--metrics", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert "authstate[metrics]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
