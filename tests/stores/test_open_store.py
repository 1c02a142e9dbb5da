"""``open_store`` picks the backend from the URL and explains a bad URL in one line."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from authstate._time import FrozenClock
from authstate.errors import ConfigurationError
from authstate.stores import MemoryStore, SQLiteStore, open_store, parse_store_url

pytestmark = pytest.mark.anyio


class FakeStore:
    """Stands in for the PostgreSQL/Redis stores: records how it was built and opened."""

    def __init__(self, url: str, *, clock: Any = None, heartbeat: float = 1.0) -> None:
        self.url = url
        self.clock = clock
        self.heartbeat = heartbeat
        self.opened = False

    async def open(self) -> None:
        self.opened = True


@pytest.fixture
def fake_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    for module_name, class_name in (
        ("authstate.stores.postgres", "PostgresStore"),
        ("authstate.stores.redis", "RedisStore"),
    ):
        module = types.ModuleType(module_name)
        setattr(module, class_name, type(class_name, (FakeStore,), {}))
        monkeypatch.setitem(sys.modules, module_name, module)


async def test_memory_url_opens_a_memory_store() -> None:
    clock = FrozenClock()
    store = await open_store("memory://", clock=clock)
    assert isinstance(store, MemoryStore)
    await store.ping()
    assert store.bus_healthy_since() == clock.monotonic()
    await store.close()


async def test_sqlite_url_with_three_slashes_is_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///data.db")
    assert isinstance(store, SQLiteStore)
    await store.close()
    assert (tmp_path / "data.db").exists()


async def test_sqlite_url_with_four_slashes_is_absolute(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(store, SQLiteStore)
    await store.ping()
    await store.close()
    assert (tmp_path / "abs.db").exists()


@pytest.mark.parametrize("url", ["sqlite://:memory:", "sqlite:///:memory:"])
async def test_sqlite_in_memory(url: str) -> None:
    store = await open_store(url)
    assert isinstance(store, SQLiteStore)
    await store.ping()
    await store.close()


@pytest.mark.parametrize(
    ("url", "class_name"),
    [
        ("postgresql://app:pw@db.example/auth", "PostgresStore"),
        ("postgres://db.example/auth", "PostgresStore"),
        ("redis://localhost:6379/0", "RedisStore"),
        ("rediss://cache.example:6380/0", "RedisStore"),
        ("redis+cluster://node1:7000", "RedisStore"),
    ],
)
@pytest.mark.usefixtures("fake_backends")
async def test_server_urls_go_to_their_backend_opened_with_the_clock(
    url: str, class_name: str
) -> None:
    clock = FrozenClock()
    store: Any = await open_store(url, clock=clock, heartbeat=0.25)
    assert type(store).__name__ == class_name
    assert (store.url, store.clock, store.heartbeat, store.opened) == (url, clock, 0.25, True)


@pytest.mark.parametrize(
    ("url", "module_name", "extra"),
    [
        ("postgresql://db/auth", "authstate.stores.postgres", "postgres"),
        ("redis://localhost", "authstate.stores.redis", "redis"),
        ("rediss://localhost", "authstate.stores.redis", "redis"),
    ],
)
async def test_a_missing_driver_names_the_extra_to_install(
    url: str, module_name: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module_name, None)  # the import fails as if uninstalled
    with pytest.raises(ConfigurationError) as caught:
        await open_store(url)
    assert f"pip install 'authstate[{extra}]'" in str(caught.value)


async def test_a_broken_backend_module_is_not_disguised_as_a_missing_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_import(name: str, *args: Any, **kwargs: Any) -> Any:
        raise ModuleNotFoundError("No module named 'typo_in_module'", name="typo_in_module")

    monkeypatch.delitem(sys.modules, "authstate.stores.postgres", raising=False)
    monkeypatch.setattr("importlib.import_module", broken_import)
    with pytest.raises(ModuleNotFoundError):
        await open_store("postgresql://db/auth")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "authstate.db",
        "/var/lib/authstate.db",
        "memory:",
        "memory://somewhere",
        "sqlite:",
        "sqlite://",
        "sqlite:///",
        "sqlite://relative.db",
        "sqlite:///auth.db?mode=ro",
        "mysql://db/auth",
        "http://example.com",
        "postgresql://",
        "redis://",
        "memory://\nsecond line",
    ],
)
async def test_bad_urls_are_one_line_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await open_store(url)
    message = str(caught.value)
    assert message and "\n" not in message


def test_unknown_scheme_is_named() -> None:
    with pytest.raises(ConfigurationError, match="'mysql://'"):
        parse_store_url("mysql://db/auth")


def test_passwords_never_appear_in_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_store_url("mongodb://admin:hunter2@db/auth")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("memory://", ("memory", "")),
        ("sqlite:///authstate.db", ("sqlite", "authstate.db")),
        ("sqlite:///data/auth.db", ("sqlite", "data/auth.db")),
        ("sqlite:////var/lib/auth.db", ("sqlite", "/var/lib/auth.db")),
        ("sqlite://:memory:", ("sqlite", ":memory:")),
        ("SQLite:///auth.db", ("sqlite", "auth.db")),
        ("postgresql://u:p@h/db", ("postgres", "postgresql://u:p@h/db")),
        ("redis+cluster://h:7000", ("redis", "redis+cluster://h:7000")),
        ("POSTGRESQL://h/db", ("postgres", "postgresql://h/db")),
    ],
)
def test_parse_store_url(url: str, parsed: tuple[str, str]) -> None:
    assert parse_store_url(url) == parsed


def test_parse_does_not_touch_the_filesystem(tmp_path: Path) -> None:
    parse_store_url(f"sqlite:///{tmp_path}/missing/dir/auth.db")
    assert not (tmp_path / "missing").exists()
