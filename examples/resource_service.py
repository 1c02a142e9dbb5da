"""A second service that trusts the auth server's access tokens through its JWKS only.

It shares no store and no secret with the auth server: it fetches the public keys from
``/.well-known/jwks.json`` (cached, refetched when a token names an unknown ``kid``) and
checks each token's signature, issuer, audience, type and lifetime in process.

Callers send the access JWT as ``Authorization: Bearer <token>`` (an API client gets one
from the auth server's ``POST /auth/token``), or a browser sends the auth cookie itself
when this service shares the auth server's site (stateless and hybrid mode: the cookie
holds the JWT). ``Verifier.verify_request`` reads either, and refuses a request that
carries both (400) as the auth server does. Cookie requests here are read-only (GET):
a route that changed state on a cookie would need the CSRF rules of docs/http.md.

Revocation: this verifier has no store, so a token revoked by logout stays valid here
until it expires (``AUTHSTATE_ACCESS_TTL``, 15 minutes by default). A service that must
honour logout at once passes ``store=`` (the auth server's store) to follow the
revocation state through the store's bus; see docs/deploy.md.

    AUTH_JWKS_URL=http://localhost:8000/.well-known/jwks.json \\
        uvicorn --app-dir examples resource_service:app --port 8001
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authstate import AuthenticationError, BadRequest, StoreUnavailable, Verifier

JWKS_URL = os.environ.get("AUTH_JWKS_URL", "http://localhost:8000/.well-known/jwks.json")


def create_app(verifier: Verifier) -> Starlette:
    def error(status: int, code: str, detail: str) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": code, "detail": detail}, status, headers=headers)

    async def reports(request: Request) -> Response:
        try:
            claims = await verifier.verify_request(request.headers.items())
        except BadRequest:
            return error(400, "bad_request", "send the auth cookie or a Bearer token, not both")
        except AuthenticationError:
            # None sent, bad signature, unknown key, wrong issuer or audience, expired: one
            # answer.
            return error(401, "unauthenticated", "invalid access token")
        except StoreUnavailable:
            # The JWKS could not be fetched and no keys are cached yet.
            return error(503, "store_unavailable", "cannot reach the auth server's keys")
        if "staff" not in claims.roles:
            return error(403, "forbidden", "staff only")
        return JSONResponse({"user_id": claims.sub, "reports": ["Q1", "Q2"]})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Fetch the keys at start: a wrong URL fails the deployment, not the first request.
        async with verifier:
            yield

    return Starlette(routes=[Route("/reports", reports)], lifespan=lifespan)


app = create_app(Verifier.from_jwks(JWKS_URL, issuer="authstate", audience="authstate"))
