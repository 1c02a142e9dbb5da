"""WSGI: the Flask and Django adapters called in-process, beside the peers a Flask or
Django user would pick (Flask-Login over Flask's signed-cookie session; Django's
``SessionMiddleware`` with signed cookies and with a Redis cache).

Every configuration answers the same ``GET /me`` to a logged-in client, called as a WSGI
application (no server), sampled in interleaved rounds and compared with the no-auth app
of its framework. The authstate cookie is warm (the process has seen it): the request is
answered in the calling thread. One more row times what cold store work adds to that:
a round trip to the process's event-loop thread, without the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

from authstate.bench import _timing
from authstate.bench._context import Context
from authstate.bench.apps import BENCH_USER, DEFAULT_SECRET, authstate_settings
from authstate.bench.report import Table, ratio, us

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]
_FLASK_BASE = "Flask, no auth (baseline)"
_DJANGO_BASE = "Django, no auth (baseline)"


def _environ(cookie: str) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/me",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def caller(app: WsgiApp, cookie: str) -> Callable[[], int]:
    """One ``GET /me`` through ``app``; returns the status code."""
    template = _environ(cookie)
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> None:
        status.append(line)

    def call() -> int:
        status.clear()
        result = app(dict(template), start_response)
        try:
            b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(status[0].split(" ", 1)[0])

    return call


# -- Flask -------------------------------------------------------------------------------------
def flask_apps(spec_for: Callable[[str], dict[str, Any]]) -> Iterator[tuple[str, Any, str, Any]]:
    """(label, WSGI app, cookie, closer) of each Flask configuration."""
    from flask import Flask
    from flask_login import LoginManager, UserMixin, current_user, login_required, login_user

    from authstate.flask import AuthState, current_principal

    base = Flask("bench-flask")
    base.get("/me")(lambda: {"user": "anonymous"})
    yield _FLASK_BASE, base, "", None

    for mode in ("session", "hybrid"):
        app = Flask(f"bench-flask-{mode}")
        auth = AuthState(app, authstate_settings(spec_for(mode)))

        @app.get("/me")
        @auth.require()
        def me() -> dict[str, str]:
            return {"user": current_principal.user_id}

        auth.start()
        issued = auth.run(auth.core.login(BENCH_USER[0], BENCH_USER[1]))
        cookie = f"{auth.core.cookie_policy.auth_cookie_name}={issued.auth_value}"
        yield f"Flask + authstate {mode}", app, cookie, auth.stop

    class User(UserMixin):  # type: ignore[misc]
        def __init__(self, user_id: str) -> None:
            self.id = user_id

    app = Flask("bench-flask-login")
    app.secret_key = DEFAULT_SECRET
    manager = LoginManager(app)
    manager.user_loader(User)

    @app.get("/me")
    @login_required  # type: ignore[untyped-decorator]
    def login_me() -> dict[str, str]:
        return {"user": str(current_user.id)}

    @app.get("/login")
    def login() -> str:
        login_user(User(BENCH_USER[0]))
        return "ok"

    client = app.test_client()
    client.get("/login")
    session = client.get_cookie("session")
    cookie = f"session={session.value}" if session is not None else ""
    yield "Flask-Login (signed cookie session)", app, cookie, None


# -- Django ------------------------------------------------------------------------------------
def _django_view(request: Any) -> Any:
    from django.http import JsonResponse

    passage = getattr(request, "authstate", None)
    if passage is not None:
        if passage.principal is None:
            return JsonResponse({"error": "unauthenticated"}, status=401)
        return JsonResponse({"user": passage.principal.user_id})
    session = getattr(request, "session", None)
    if session is not None:
        user = session.get("uid")
        if user is None:
            return JsonResponse({"error": "unauthenticated"}, status=401)
        return JsonResponse({"user": user})
    return JsonResponse({"user": "anonymous"})


def _urls() -> list[Any]:
    from django.urls import path

    return [path("me", _django_view)]


urlpatterns: Any = None  # filled on first use: Django imports this module as ROOT_URLCONF


def django_apps(spec: dict[str, Any], redis_url: str | None) -> Iterator[tuple[str, Any, str, Any]]:
    global urlpatterns
    from django.conf import settings

    if settings.configured:
        raise RuntimeError("Django is already configured in this process")
    caches: dict[str, Any] = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    if redis_url is not None:
        caches["sessions"] = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"authstate-bench-{spec['label']}",
        }
    settings.configure(
        DEBUG=False,
        SECRET_KEY=DEFAULT_SECRET,
        ALLOWED_HOSTS=["localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        DATABASES={},
        MIDDLEWARE=[],
        CACHES=caches,
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        SESSION_CACHE_ALIAS="sessions",
        AUTHSTATE={
            "mode": spec["mode"],
            "store": spec["store"],
            "secret": DEFAULT_SECRET,
            "access_ttl": authstate_settings(spec).access_ttl,
        },
    )
    import django
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    django.setup()
    urlpatterns = _urls()

    def handler(**overrides: Any) -> Any:
        with override_settings(**overrides):
            return WSGIHandler()

    yield _DJANGO_BASE, handler(), "", None

    from authstate.django.conf import get_auth, reset

    auth = get_auth()
    auth.ensure_started()
    issued = auth.run(auth.core.login(BENCH_USER[0], BENCH_USER[1]))
    cookie = f"{auth.core.cookie_policy.auth_cookie_name}={issued.auth_value}"
    app = handler(MIDDLEWARE=["authstate.django.middleware.AuthStateMiddleware"])
    yield f"Django + authstate {spec['mode']}", app, cookie, reset

    engines = [("signed cookies", "django.contrib.sessions.backends.signed_cookies")]
    if redis_url is not None:
        engines.append(("Redis cache", "django.contrib.sessions.backends.cache"))
    for name, engine in engines:
        with override_settings(SESSION_ENGINE=engine):
            from importlib import import_module

            store = import_module(engine).SessionStore()
            store["uid"] = BENCH_USER[0]
            store.save()
            app = handler(
                SESSION_ENGINE=engine,
                MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
            )
        yield f"Django sessions ({name})", app, f"sessionid={store.session_key}", None


# -- the section -------------------------------------------------------------------------------
# Django's settings and authstate.django's instance are per process: the section measures in
# a child process of its own, so that the bench (or a test run) keeps its process clean.
_CHILD_TIMEOUT_SECONDS = 600.0


async def run(ctx: Context) -> Table:
    options, progress = ctx.options, ctx.progress
    kinds = ctx.store_kinds()
    kind = "sqlite" if "sqlite" in kinds else (kinds[0] if kinds else "memory")
    params = {
        "stores": {
            f"{framework}_{mode}": ctx.stores.fresh(kind, f"wsgi_{framework}_{mode}")
            for framework, mode in (
                ("flask", "session"),
                ("flask", "hybrid"),
                ("django", "session"),
            )
        },
        "redis_url": ctx.stores.redis_url if "redis" in ctx.stores.urls else None,
        "rounds": options.rounds,
        "sample_seconds": options.sample_seconds * 2,
    }
    progress.section("wsgi", 1)
    progress.advance("wsgi", what="measuring in a child process")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "authstate.bench.wsgi",
        json.dumps(params),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(child.communicate(), _CHILD_TIMEOUT_SECONDS)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise
    progress.finish("wsgi")
    if child.returncode != 0:
        ctx.notes.append(f"wsgi section failed: {err.decode(errors='replace')[-500:]}")
        return _table({}, {}, set())
    result = json.loads(out.splitlines()[-1])  # the last line: a library may print before
    ctx.notes.extend(result["notes"])
    series = {
        name: _timing.Series(name, [float(x) for x in samples])
        for name, samples in result["series"].items()
    }
    return _table(series, result["bases"], set(result["walls"]))


def measure(params: dict[str, Any]) -> dict[str, Any]:
    """The child's work: build every configuration, sample them, return the samples."""
    stores = params["stores"]
    redis_url = params["redis_url"]
    notes: list[str] = []
    candidates: dict[str, Callable[[], int]] = {}
    bases: dict[str, str] = {}
    walls: set[str] = set()
    closers: list[Callable[[], Any]] = []

    def spec(framework: str, mode: str) -> dict[str, Any]:
        return {"mode": mode, "store": stores[f"{framework}_{mode}"], "label": framework}

    frameworks: list[tuple[str, Callable[[], Iterator[tuple[str, Any, str, Any]]]]] = [
        ("flask", lambda: flask_apps(lambda mode: spec("flask", mode))),
        ("django", lambda: django_apps(spec("django", "session"), redis_url)),
    ]
    try:
        for framework, apps in frameworks:
            try:
                for label, app, cookie, closer in apps():
                    if closer is not None:
                        closers.append(closer)
                    call = caller(app, cookie)
                    status = 0
                    for _ in range(3):  # warm: the process has seen the cookie
                        status = call()
                    if status != 200:
                        notes.append(f"wsgi: {label} skipped: GET /me answered {status}")
                        continue
                    candidates[label] = call
                    bases[label] = _FLASK_BASE if framework == "flask" else _DJANGO_BASE
                    if "Redis" in label:
                        walls.add(label)
            except ImportError as exc:
                notes.append(f"wsgi: {framework} skipped: {exc} (pip install 'authstate[bench]')")
            except Exception as exc:  # a framework that cannot start here: report, go on
                notes.append(f"wsgi: {framework} skipped: {exc!r}")
        # One clock per ratio: a row timed on the wall clock (it waits on Redis) is compared
        # with its framework's baseline timed on the wall clock too, sampled alongside.
        for label in sorted(walls & set(bases)):
            if bases[label] in candidates:
                wall_base = bases[label] + _WALL_COPY
                candidates[wall_base] = candidates[bases[label]]
                walls.add(wall_base)
                bases[label] = wall_base
        label, hop, closer = _loop_hop()
        closers.append(closer)
        candidates[label] = hop
        walls.add(label)
        series = asyncio.run(
            _timing.sample(
                dict(candidates),
                rounds=params["rounds"],
                sample_seconds=params["sample_seconds"],
                is_async=lambda name: False,
                wall=walls.__contains__,
                max_iterations=100_000,
            )
        )
    finally:
        for close in closers:
            with contextlib.suppress(Exception):
                close()
    return {
        "series": {name: s.samples for name, s in series.items()},
        "bases": bases,
        "walls": sorted(walls),
        "notes": notes,
    }


_WALL_COPY = " (wall clock)"


def _loop_hop() -> tuple[str, Callable[[], int], Callable[[], Any]]:
    from authstate.wsgi.loop import LoopThread

    loop = LoopThread(name="authstate-bench-loop")

    async def nothing() -> int:
        return 200

    return "loop-thread hop (cold path's fixed cost)", lambda: loop.run(nothing()), loop.stop


def _table(series: dict[str, _timing.Series], bases: dict[str, str], walls: set[str]) -> Table:
    table = Table(
        "wsgi",
        "WSGI in-process: GET /me through the Flask or Django app, µs per request (median)",
        ["configuration", "µs / request", "added over the framework", "× no auth", "clock"],
    )
    for label, s in series.items():
        if label.endswith(_WALL_COPY):
            continue
        base = series.get(bases.get(label, ""))
        is_base = base is s or base is None
        added = _timing.median_difference(s, base) if not is_base and base else float("nan")
        times = _timing.median_ratio(s, base) if not is_base and base else float("nan")
        table.add(
            [
                label,
                us(s.median),
                "-" if is_base else f"{added:+.1f}",
                "-" if is_base else ratio(times),
                "wall" if label in walls else "cpu",
            ],
            configuration=label,
            us_per_request=s.median,
            added_us=None if is_base else added,
            times_baseline=None if is_base else times,
            clock="wall" if label in walls else "cpu",
            samples=s.samples,
        )
    table.notes.append(
        "added over the framework = median over rounds of (this configuration − the same "
        "framework's app without auth); the authstate cookie is warm, so the request is "
        "answered in the calling thread. The loop-thread hop is what any store work adds "
        "before the store itself (login, a cold session, a logout)."
    )
    return table


if __name__ == "__main__":
    logging.getLogger("authstate").setLevel(logging.WARNING)
    print(json.dumps(measure(json.loads(sys.argv[1]))))
