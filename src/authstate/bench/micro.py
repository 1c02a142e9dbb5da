"""Micro: µs per verification, cold (first sight of a cookie) and warm (seen before).

All candidates of a run are sampled in the same interleaved rounds, so every ratio in the
two tables compares numbers taken side by side:

- per algorithm: authstate's cold and warm JWT verification next to the bare
  ``cryptography`` verify of the same signature, PyJWT and joserfc decoding the same token;
  then the same for encrypted tokens (``AUTHSTATE_TOKEN_FORMAT=jwe``): cold and warm next
  to the bare ``AESGCM.decrypt`` of the same token and joserfc's ``decrypt_compact``;
- per mode and store: cold and warm ``AuthState.authenticate`` next to the raw driver
  call a lookup needs (a sqlite3 SELECT by key on the same table, one redis-py GET, an
  asyncpg ``fetchrow`` by key on a held connection and through a pool, a dict lookup).

"Cold" forgets what the node cached about the cookie (``BaseMode.forget``) before each
call, the process-wide cache of checked JWT headers included: the full strict parse and
signature check for a JWT, the format check, the SHA-256 and the store read for a session
ID. (A header spelled exactly as a ring key writes it is recognised from the key ring's
table, ``KeyRing.header_table``, as on a real node's first sight of one of its tokens; any
other header is parsed in full.) "Warm" is the same call again.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import sqlite3
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from authstate.asgi.auth_state import AuthState
from authstate.bench import _timing
from authstate.bench._context import MODES, Context
from authstate.bench.apps import BENCH_USER, start_authstate
from authstate.bench.report import Table, ratio, us
from authstate.crypto.ids import b64url_decode, hash_secret
from authstate.crypto.jwe import content_key
from authstate.stores import parse_store_url

Op = Callable[[], Any]


def _split(token: str) -> tuple[bytes, bytes]:
    signing_input, _, signature = token.rpartition(".")
    return signing_input.encode("ascii"), b64url_decode(signature)


def _bare_verify(alg: str, key: Any, token: str) -> Op:
    """The cryptography call a verification cannot avoid, on precomputed inputs."""
    signing_input, signature = _split(token)
    if alg == "HS256":
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives import hmac as crypto_hmac

        secret = key.private_key

        def verify_hmac() -> None:
            mac = crypto_hmac.HMAC(secret, hashes.SHA256())
            mac.update(signing_input)
            mac.verify(signature)

        return verify_hmac
    public = key.public_key
    if alg == "EdDSA":
        return lambda: public.verify(signature, signing_input)
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.hazmat.primitives.hashes import SHA256

    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    algorithm = ec.ECDSA(SHA256())
    return lambda: public.verify(der, signing_input, algorithm)


def _hmac_floor(secret: Any, token: str) -> Op:
    """The stdlib one-shot HMAC of the signing input: the least any HS256 check costs."""
    signing_input, _ = _split(token)
    return lambda: hmac.digest(secret, signing_input, "sha256")


def _pyjwt(alg: str, key: Any, token: str, auth: AuthState) -> Op | None:
    try:
        import jwt
    except ImportError:
        return None
    secret = key.private_key if alg == "HS256" else key.public_key
    settings = auth.settings

    def decode() -> Any:
        return jwt.decode(
            token,
            secret,
            algorithms=[alg],
            audience=settings.audience,
            issuer=settings.issuer,
        )

    decode()
    return decode


def _joserfc(alg: str, key: Any, token: str, auth: AuthState) -> Op | None:
    try:
        from joserfc import jwt
        from joserfc.jwk import ECKey, OctKey, OKPKey
    except ImportError:
        return None
    if alg == "HS256":
        imported: Any = OctKey.import_key(key.private_key)
    elif alg == "EdDSA":
        imported = OKPKey.import_key(key.public_jwk())
    else:
        imported = ECKey.import_key(key.public_jwk())
    settings = auth.settings
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": settings.issuer},
        aud={"essential": True, "value": settings.audience},
    )

    def decode() -> Any:
        decoded = jwt.decode(token, imported, algorithms=[alg])
        registry.validate(decoded.claims)
        return decoded

    try:
        decode()
    except Exception:  # an algorithm this joserfc does not offer
        return None
    return decode


def _bare_decrypt(key: Any, token: str) -> Op:
    """The AES-GCM decrypt a JWE verification cannot avoid, on precomputed inputs."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header, _, iv, ciphertext, tag = token.split(".")
    aead = AESGCM(content_key(key))
    nonce, sealed = b64url_decode(iv), b64url_decode(ciphertext) + b64url_decode(tag)
    aad = header.encode("ascii")
    return lambda: aead.decrypt(nonce, sealed, aad)


def _joserfc_jwe(key: Any, token: str, auth: AuthState) -> Op | None:
    try:
        from joserfc import jwe, jwt
        from joserfc.jwk import OctKey
    except ImportError:
        return None
    imported = OctKey.import_key(content_key(key))
    registry = jwe.JWERegistry(algorithms=["dir", "A256GCM"])
    settings = auth.settings
    claims = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": settings.issuer},
        aud={"essential": True, "value": settings.audience},
    )

    def decode() -> Any:
        decrypted = jwe.decrypt_compact(token, imported, registry=registry)
        claims.validate(json.loads(decrypted.plaintext or b"{}"))
        return decrypted

    try:
        decode()
    except Exception:  # a joserfc without dir or A256GCM
        return None
    return decode


def _authenticate(auth: AuthState, value: str, *, cold: bool) -> Callable[[], Awaitable[Any]]:
    mode = auth.mode
    if cold:

        async def cold_call() -> Any:
            mode.forget(value)
            return await auth.authenticate(value)

        return cold_call

    async def warm_call() -> Any:
        return await auth.authenticate(value)

    return warm_call


def _sqlite_select(db: sqlite3.Connection, key: str) -> Op:
    sql = "SELECT * FROM sessions WHERE session_key = ?"
    return lambda: db.execute(sql, (key,)).fetchone()


def _redis_get(client: Any, key: str) -> Op:
    return lambda: client.get(key)


def _pg_select(conn: Any, key: str) -> Op:
    sql = "SELECT * FROM authstate_sessions WHERE key = $1"
    return lambda: conn.fetchrow(sql, key)


async def _raw_drivers(
    ctx: Context, nodes: dict[tuple[str, str], tuple[AuthState, str]], closers: list[Any]
) -> dict[str, tuple[str, Op, bool, bool]]:
    """name -> (store kind, op, is_async, wall) for each store's raw lookup."""
    raw: dict[str, tuple[str, Op, bool, bool]] = {}
    table = {"k": "v" * 250}
    key_text = "k"
    raw["dict lookup"] = ("memory", lambda: table.get(key_text), False, False)
    for kind in ctx.store_kinds():
        if (kind, "session") not in nodes:
            continue
        auth, value = nodes[(kind, "session")]
        session_key = hash_secret(value)
        if kind == "sqlite":
            _, path = parse_store_url(auth.settings.store)
            db = sqlite3.connect(path, check_same_thread=False)
            closers.append(db.close)
            op = _sqlite_select(db, session_key)
            if op() is None:
                continue
            raw["sqlite3 SELECT by key"] = (kind, op, False, False)
        elif kind == "redis":
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(ctx.stores.redis_url)
            closers.append(client.aclose)
            redis_key = f"{ctx.stores.redis_prefix}micro:raw:{secrets.token_hex(8)}"
            session = {"uid": BENCH_USER[0], "roles": list(BENCH_USER[1]), "pad": "x" * 180}
            await client.set(redis_key, json.dumps(session), ex=600)
            raw["redis-py asyncio GET"] = (kind, _redis_get(client, redis_key), True, True)
        elif kind == "postgres":
            import asyncpg

            url = auth.settings.store
            conn = await asyncpg.connect(url)
            pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
            closers.extend([conn.close, pool.close])
            row = await conn.fetchrow("SELECT key FROM authstate_sessions WHERE kind = 'session'")
            held, pooled = _pg_select(conn, row[0]), _pg_select(pool, row[0])
            raw["asyncpg fetchrow by key (held connection)"] = (kind, held, True, True)
            raw["asyncpg pool.fetchrow by key"] = (kind, pooled, True, True)
    return raw


_RAW_FOR = {
    "memory": "dict lookup",
    "sqlite": "sqlite3 SELECT by key",
    "redis": "redis-py asyncio GET",
    "postgres": "asyncpg fetchrow by key (held connection)",
}


async def run(ctx: Context) -> tuple[Table, Table, dict[str, Any]]:
    options = ctx.options
    progress = ctx.progress
    progress.section("micro", options.rounds + 2)
    candidates: dict[str, Op] = {}
    asyncs: set[str] = set()
    walls: set[str] = set()
    started: list[AuthState] = []
    closers: list[Any] = []
    algorithms: list[str] = []
    nodes: dict[tuple[str, str], tuple[AuthState, str]] = {}
    try:
        # JWT verification by algorithm, on the memory store (no store is involved).
        for alg in options.algorithms:
            auth = await start_authstate(
                {"mode": "stateless", "store": "memory://", "algorithm": alg}
            )
            started.append(auth)
            token = (await auth.login(*BENCH_USER)).auth_value
            key = auth.context.keys.ring.signing_key()
            algorithms.append(alg)
            candidates[f"{alg} bare"] = _bare_verify(alg, key, token)
            candidates[f"{alg} cold"] = _authenticate(auth, token, cold=True)
            candidates[f"{alg} warm"] = _authenticate(auth, token, cold=False)
            asyncs.update({f"{alg} cold", f"{alg} warm"})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name, make in (("PyJWT", _pyjwt), ("joserfc", _joserfc)):
                    op = make(alg, key, token, auth)
                    if op is not None:
                        candidates[f"{alg} {name}"] = op
            if alg == "HS256":
                candidates["HS256 floor"] = _hmac_floor(key.private_key, token)
            # The same node, encrypted tokens: jwe rows next to the jws ones.
            jwe_auth = await start_authstate(
                {"mode": "stateless", "store": "memory://", "algorithm": alg, "token_format": "jwe"}
            )
            started.append(jwe_auth)
            jwe_token = (await jwe_auth.login(*BENCH_USER)).auth_value
            jwe_key = jwe_auth.context.keys.ring.signing_key()
            candidates[f"{alg}/jwe bare"] = _bare_decrypt(jwe_key, jwe_token)
            candidates[f"{alg}/jwe cold"] = _authenticate(jwe_auth, jwe_token, cold=True)
            candidates[f"{alg}/jwe warm"] = _authenticate(jwe_auth, jwe_token, cold=False)
            asyncs.update({f"{alg}/jwe cold", f"{alg}/jwe warm"})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                jose_jwe = _joserfc_jwe(jwe_key, jwe_token, jwe_auth)
            if jose_jwe is not None:
                candidates[f"{alg}/jwe joserfc"] = jose_jwe
        progress.advance("micro", what="JWT candidates ready")
        # Every mode on every store.
        for kind in ctx.store_kinds():
            for mode in MODES:
                url = ctx.stores.fresh(kind, f"micro_{mode}")
                auth = await start_authstate({"mode": mode, "store": url})
                started.append(auth)
                value = (await auth.login(*BENCH_USER)).auth_value
                nodes[(kind, mode)] = (auth, value)
                for temperature in ("cold", "warm"):
                    name = f"{mode}/{kind} {temperature}"
                    candidates[name] = _authenticate(auth, value, cold=temperature == "cold")
                    asyncs.add(name)
                    if (
                        temperature == "cold"
                        and mode == "session"
                        and kind in ("redis", "postgres")
                    ):
                        walls.add(name)
        for name, (_, op, is_async, wall) in (await _raw_drivers(ctx, nodes, closers)).items():
            candidates[name] = op
            if is_async:
                asyncs.add(name)
            if wall:
                walls.add(name)
        progress.advance("micro", what="store candidates ready")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            series = await _timing.sample(
                candidates,
                rounds=options.rounds,
                sample_seconds=options.sample_seconds,
                is_async=asyncs.__contains__,
                wall=walls.__contains__,
                on_round=lambda: progress.advance("micro", what="sampling"),
            )
    finally:
        for close in closers:
            with contextlib.suppress(Exception):
                result = close()
                if hasattr(result, "__await__"):
                    await result
        for auth in started:
            with contextlib.suppress(Exception):
                await auth.stop()
    progress.finish("micro")
    return _tables(ctx, series, algorithms)


def _tables(
    ctx: Context, series: dict[str, _timing.Series], algorithms: list[str]
) -> tuple[Table, Table, dict[str, Any]]:
    get = series.get
    jwt_table = Table(
        "micro-jwt",
        "Micro: JWT verification, µs per call (median) and × the bare cryptography verify",
        [
            "algorithm",
            "bare verify",
            "authstate cold",
            "cold ×bare",
            "authstate warm",
            "PyJWT",
            "PyJWT ×bare",
            "joserfc",
            "joserfc ×bare",
        ],
    )
    for alg in algorithms:
        bare, cold, warm = get(f"{alg} bare"), get(f"{alg} cold"), get(f"{alg} warm")
        pyjwt, jose = get(f"{alg} PyJWT"), get(f"{alg} joserfc")
        if bare is None or cold is None or warm is None:
            continue
        jwt_table.add(
            [
                alg,
                us(bare.median),
                us(cold.median),
                ratio(_timing.median_ratio(cold, bare)),
                us(warm.median),
                us(pyjwt.median) if pyjwt else "-",
                ratio(_timing.median_ratio(pyjwt, bare)) if pyjwt else "-",
                us(jose.median) if jose else "-",
                ratio(_timing.median_ratio(jose, bare)) if jose else "-",
            ],
            algorithm=alg,
            token_format="jws",  # noqa: S106  # a format name, not a secret
            bare_us=bare.median,
            cold_us=cold.median,
            cold_over_bare=_timing.median_ratio(cold, bare),
            cold_over_bare_noise=_timing.ratio_noise(cold, bare),
            warm_us=warm.median,
            pyjwt_us=pyjwt.median if pyjwt else None,
            pyjwt_over_bare=_timing.median_ratio(pyjwt, bare) if pyjwt else None,
            joserfc_us=jose.median if jose else None,
            joserfc_over_bare=_timing.median_ratio(jose, bare) if jose else None,
            samples={"bare": bare.samples, "cold": cold.samples, "warm": warm.samples},
        )
    for alg in algorithms:
        _add_jwe_row(jwt_table, series, alg)
    floor = get("HS256 floor")
    if floor is not None:
        jwt_table.notes.append(
            f"HS256 floor: stdlib hmac.digest of the signing input {us(floor.median)} µs "
            "(the bare verify column uses cryptography's HMAC, as the target says)."
        )
    jwt_table.notes.append(
        "ALG (JWE) rows: encrypted tokens (AUTHSTATE_TOKEN_FORMAT=jwe, dir + A256GCM, the "
        "content key derived from that algorithm's ring key); their bare column is the "
        "AESGCM.decrypt of the same token, PyJWT has no JWE, joserfc is decrypt_compact."
    )
    jwt_table.notes.append(
        "cold = strict front layer, key by kid, signature, typed claims, revocation state, "
        "principal built and cached; warm = the same cookie again (cache hit, expiry and "
        "revocation re-checked)."
    )
    pyjwt_hs = get("HS256 PyJWT")
    modes_table = Table(
        "micro-modes",
        "Micro: AuthState.authenticate per mode and store, µs per call (median)",
        ["mode / store", "cold", "raw driver call", "cold ×driver", "warm", "warm: PyJWT HS256 ÷"],
    )
    extras: dict[str, Any] = {"pyjwt_hs256_us": pyjwt_hs.median if pyjwt_hs else None}
    for kind in ctx.store_kinds():
        raw = get(_RAW_FOR[kind])
        for mode in MODES:
            cold, warm = get(f"{mode}/{kind} cold"), get(f"{mode}/{kind} warm")
            if cold is None or warm is None:
                continue
            is_session = mode == "session"
            cold_over_raw = _timing.median_ratio(cold, raw) if raw and is_session else float("nan")
            speedup = _timing.median_ratio(pyjwt_hs, warm) if pyjwt_hs else float("nan")
            modes_table.add(
                [
                    f"{mode} / {kind}",
                    us(cold.median),
                    f"{us(raw.median)} ({_RAW_FOR[kind]})" if raw and is_session else "-",
                    ratio(cold_over_raw),
                    us(warm.median),
                    ratio(speedup),
                ],
                mode=mode,
                store=kind,
                cold_us=cold.median,
                warm_us=warm.median,
                raw_driver=_RAW_FOR[kind] if is_session else None,
                raw_us=raw.median if raw and is_session else None,
                cold_over_raw=cold_over_raw,
                cold_over_raw_noise=_timing.ratio_noise(cold, raw)
                if raw and is_session
                else float("nan"),
                warm_noise=_timing.relative_spread(warm.samples),
                pyjwt_hs256_over_warm=speedup,
            )
    pool = get("asyncpg pool.fetchrow by key")
    if pool is not None:
        held = get(_RAW_FOR["postgres"])
        modes_table.notes.append(
            f"asyncpg through a pool (acquire + release per call): {us(pool.median)} µs"
            + (f", {ratio(_timing.median_ratio(pool, held))} the held connection." if held else ".")
        )
        extras["asyncpg_pool_us"] = pool.median
    modes_table.notes.append(
        "cold JWT modes (stateless, hybrid) never touch the store; cold session = format "
        "check, SHA-256, store read, checks, principal. Redis/PostgreSQL rows are wall time, "
        "the rest CPU time of this process."
    )
    return jwt_table, modes_table, extras


def _add_jwe_row(table: Table, series: dict[str, _timing.Series], alg: str) -> None:
    get = series.get
    bare, cold, warm = get(f"{alg}/jwe bare"), get(f"{alg}/jwe cold"), get(f"{alg}/jwe warm")
    jose = get(f"{alg}/jwe joserfc")
    if bare is None or cold is None or warm is None:
        return
    jws_cold = get(f"{alg} cold")
    table.add(
        [
            f"{alg} (JWE)",
            us(bare.median),
            us(cold.median),
            ratio(_timing.median_ratio(cold, bare)),
            us(warm.median),
            "-",
            "-",
            us(jose.median) if jose else "-",
            ratio(_timing.median_ratio(jose, bare)) if jose else "-",
        ],
        algorithm=alg,
        token_format="jwe",  # noqa: S106  # a format name, not a secret
        bare_us=bare.median,
        cold_us=cold.median,
        cold_over_bare=_timing.median_ratio(cold, bare),
        cold_over_jws_cold=_timing.median_ratio(cold, jws_cold) if jws_cold else None,
        warm_us=warm.median,
        pyjwt_us=None,
        pyjwt_over_bare=None,
        joserfc_us=jose.median if jose else None,
        joserfc_over_bare=_timing.median_ratio(jose, bare) if jose else None,
        samples={"bare": bare.samples, "cold": cold.samples, "warm": warm.samples},
    )
