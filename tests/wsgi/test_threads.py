"""Thread safety of one WSGI process: many concurrent requests on one gunicorn worker with
many threads (mixed logins, requests, logouts and logouts everywhere) give no error, and
every revocation is honoured by the next request.

One process: a revocation is applied to its memory before the logout answers, so "the next
request" is refused without waiting for the bus."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.multinode.nodes import add_user
from tests.wsgi import contract
from tests.wsgi.contract import Browser
from tests.wsgi.nodes import gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.services]

CLIENTS = 16
ROUNDS = 4


def _client(url: str, usernames: list[str], seed: int) -> list[str]:
    """Login, use, revoke, check the revocation; return what went wrong."""
    rng = random.Random(seed)
    problems: list[str] = []
    for _ in range(ROUNDS):
        username = rng.choice(usernames)
        browser = contract.login(url, username)
        for _ in range(rng.randint(2, 6)):
            status = browser.request("GET", "/auth/me").status_code
            # Another client's logout-everywhere of the same user may have come first.
            if status not in (200, 401):
                problems.append(f"me answered {status}")
        held = dict(browser.jar)
        path = rng.choice(["/auth/logout", "/auth/logout-all"])
        answer = browser.request(
            "POST", path, headers={"x-csrf-token": held["__Host-authstate-csrf"]}
        )
        if answer.status_code not in (204, 401):
            problems.append(f"{path} answered {answer.status_code}: {answer.text}")
        replay = Browser(url)
        replay.jar = held
        status = replay.request("GET", "/auth/me").status_code
        if status != 401:
            problems.append(f"a credential was accepted after {path} ({status})")
    return problems


@pytest.mark.parametrize(
    ("kind", "mode"), [("flask", "session"), ("django", "session"), ("flask", "hybrid")]
)
def test_one_process_many_threads(
    tmp_path: Path, kind: str, mode: str, redis_prefixed_url: str
) -> None:
    store = redis_prefixed_url
    usernames = [add_user(store, contract.PASSWORD) for _ in range(3)]
    with gunicorn(
        tmp_path, kind, store, workers=1, threads=16, AUTHSTATE_MODE=mode,
        AUTHSTATE_LOGIN_MAX_ATTEMPTS="1000",
    ) as node:  # fmt: skip
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(
                pool.map(lambda seed: _client(node.url, usernames, seed), range(CLIENTS))
            )
        problems = [problem for result in results for problem in result]
        assert problems == []
        log = node.log.read_text()
    assert "Traceback" not in log and "Error" not in log, log[-3000:]
