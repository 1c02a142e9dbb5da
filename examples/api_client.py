"""A command-line client of an authstate server: no browser, no cookie jar.

It signs in at ``POST /auth/token`` (the RFC 6749 password grant), keeps the tokens in a
file only its user can read, sends them as ``Authorization: Bearer``, and in hybrid mode
renews the access token with the refresh grant when the server refuses it (401). A
mobile app does the same with the platform's keychain instead of a file.

The server needs the bearer transport (it is off by default):

    AUTHSTATE_TRANSPORTS=cookie,bearer authstate serve --mode hybrid --demo
    python examples/api_client.py login alice        # asks for the password
    python examples/api_client.py me
    python examples/api_client.py sessions
    python examples/api_client.py logout

``--server`` (or ``AUTH_SERVER``) is the server's URL, ``--tokens`` (or ``AUTH_TOKENS``)
the token file.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

SERVER = os.environ.get("AUTH_SERVER", "http://localhost:8000")
TOKENS = os.environ.get("AUTH_TOKENS", str(Path.home() / ".authstate-tokens.json"))


class SignedOut(Exception):
    """No tokens, or the server no longer accepts them: sign in again."""


class ApiClient:
    """Talks to the server with a Bearer token kept in ``tokens_file``."""

    def __init__(self, http: httpx.AsyncClient, tokens_file: Path) -> None:
        self.http = http
        self.tokens_file = tokens_file

    async def login(self, username: str, password: str) -> None:
        """The password grant; raises ``SignedOut`` with the server's reason if refused."""
        form = {"grant_type": "password", "username": username, "password": password}
        self._save(await self._token_request(form))

    async def request(self, method: str, path: str) -> httpx.Response:
        """``method path`` with the access token; on a 401, one refresh and one retry."""
        tokens = self._load()
        response = await self._send(method, path, tokens["access_token"])
        if response.status_code == 401 and "refresh_token" in tokens:
            # The access token expired (or was revoked): rotate the refresh token. If it
            # was reused or revoked, the server answers invalid_grant and we sign out.
            form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            try:
                tokens = await self._token_request(form)
            except SignedOut:
                self.forget()
                raise
            self._save(tokens)
            response = await self._send(method, path, tokens["access_token"])
        if response.status_code == 401:
            self.forget()
            raise SignedOut("the server no longer accepts these tokens: sign in again")
        return response

    async def logout(self) -> None:
        """End this session on the server (a header request: no CSRF token needed)."""
        try:
            await self.request("POST", "/auth/logout")
        finally:
            self.forget()

    def forget(self) -> None:
        self.tokens_file.unlink(missing_ok=True)

    async def _send(self, method: str, path: str, access_token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {access_token}"}
        return await self.http.request(method, path, headers=headers)

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        response = await self.http.post("/auth/token", data=form)
        body: dict[str, Any] = response.json()
        if response.status_code != 200:
            reason = body.get("error_description") or body.get("error")
            raise SignedOut(f"{response.status_code} {body.get('error')}: {reason}")
        return body

    def _load(self) -> dict[str, Any]:
        try:
            tokens: dict[str, Any] = json.loads(self.tokens_file.read_text())
        except FileNotFoundError:
            raise SignedOut("not signed in: run `login` first") from None
        return tokens

    def _save(self, tokens: dict[str, Any]) -> None:
        # Created readable by this user only (0600): the tokens are the user's credential.
        fd = os.open(self.tokens_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(tokens, file)


async def run(args: argparse.Namespace) -> int:
    async with httpx.AsyncClient(base_url=args.server, timeout=10) as http:
        client = ApiClient(http, Path(args.tokens))
        try:
            if args.command == "login":
                if args.password_stdin:
                    password = sys.stdin.readline().rstrip("\n")
                else:
                    password = getpass.getpass()
                await client.login(args.username, password)
                print("signed in")
            elif args.command == "logout":
                await client.logout()
                print("signed out")
            else:
                path = {"me": "/auth/me", "sessions": "/auth/sessions"}[args.command]
                response = await client.request("GET", path)
                print(json.dumps(response.json(), indent=2))
                return 0 if response.status_code == 200 else 1
        except SignedOut as exc:
            print(exc, file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--tokens", default=TOKENS)
    commands = parser.add_subparsers(dest="command", required=True)
    login = commands.add_parser("login")
    login.add_argument("username")
    login.add_argument("--password-stdin", action="store_true")
    for name in ("me", "sessions", "logout"):
        commands.add_parser(name)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
