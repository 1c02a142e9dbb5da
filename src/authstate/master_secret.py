"""Where the master secret comes from: AUTHSTATE_SECRET, a key file, or one kept beside SQLite.

Nodes sharing a store and this secret share keys; the secret itself is never stored.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from authstate.errors import ConfigurationError
from authstate.settings import Settings
from authstate.stores import parse_store_url

MIN_SECRET_BYTES = 32


def _read_file(path: Path, setting: str) -> bytes:
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(f"{setting}: cannot read {path}: {exc.strerror}") from exc
    if len(data) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"{setting}: {path} holds fewer than {MIN_SECRET_BYTES} bytes")
    return data


def _beside_sqlite(db_path: str) -> bytes:
    path = Path(db_path + ".secret")
    try:
        # O_EXCL: when several workers start at once exactly one creates the file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_file(path, "the SQLite secret file")
    except OSError as exc:
        raise ConfigurationError(f"cannot create the secret file {path}: {exc.strerror}") from exc
    secret = secrets.token_urlsafe(48).encode()
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret + b"\n")
    except OSError as exc:  # pragma: no cover - disk full
        with contextlib.suppress(OSError):
            path.unlink()
        raise ConfigurationError(f"cannot write the secret file {path}: {exc.strerror}") from exc
    return secret


def resolve_master_secret(settings: Settings) -> bytes:
    """The master secret for ``settings``; ``ConfigurationError`` when a shared store has none."""
    if settings.secret is not None:
        return settings.secret
    if settings.secret_file:
        return _read_file(Path(settings.secret_file), "AUTHSTATE_SECRET_FILE")
    backend, target = parse_store_url(settings.store)
    if backend == "memory":
        return secrets.token_bytes(32)  # nothing survives a restart anyway
    if backend == "sqlite":
        if target == ":memory:":
            return secrets.token_bytes(32)
        return _beside_sqlite(target)
    raise ConfigurationError(
        "AUTHSTATE_SECRET (or AUTHSTATE_SECRET_FILE) is required for a shared store: "
        "every node must use the same secret"
    )
