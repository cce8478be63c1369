"""Who is asking, and what they may do. Off unless an auth file is given (`--auth-file`); then every
request but the probes (/health, /ready, /metrics) and the API description (/openapi.json, the /docs
page and its files) must carry HTTP Basic credentials or a Bearer token, as the MLflow client sends
them (MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_TOKEN). Access is `none`, `read` or `write`,
per user by default and per experiment.

The auth file (TOML); secrets are stored hashed (`runstream hash-secret` prints the hashes):

    [users.alice]
    password = "pbkdf2_sha256$600000$<salt hex>$<hash hex>"
    tokens = ["sha256$<hex>"]
    access = "write"                     # every experiment

    [users.bob]
    password = "pbkdf2_sha256$..."
    access = "none"
    experiments = { "1" = "read", "7" = "write" }

Credentials are never logged: failures say only which user name (never the secret) was refused.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from runstream.base.errors import ApiError

Access = Literal["none", "read", "write"]
_RANK = {"none": 0, "read": 1, "write": 2}
PROBES = frozenset({"/health", "/ready", "/metrics"})  # open to orchestrators, which hold no credentials
PBKDF2_ITERATIONS = 600_000


class AuthConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    name: str
    access: Access = "none"
    experiments: dict[str, Access] = field(default_factory=dict)

    def can(self, wanted: Access, experiment_id: str | None) -> bool:
        """`experiment_id` None: an experiment not known yet, so the user's default applies."""
        granted = self.experiments.get(experiment_id, self.access) if experiment_id is not None else self.access
        return _RANK[granted] >= _RANK[wanted]


def user_name(principal: Principal | None) -> str:
    """Who asks, as events record it: the user, else empty (auth off, as MLflow's empty user_id)."""
    return principal.name if principal is not None else ""


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def hash_token(token: str) -> str:
    # Tokens are long and random: one SHA-256 suffices (no slow hash needed).
    return f"sha256${hashlib.sha256(token.encode()).hexdigest()}"


@functools.lru_cache(maxsize=1024)
def _password_matches(stored: str, password: str) -> bool:
    """PBKDF2 is slow by design: a credential once checked is remembered (per process)."""
    _, iterations, salt, digest = stored.split("$")
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(computed.hex(), digest)


class Users:
    def __init__(self, principals: dict[str, Principal], passwords: dict[str, str], tokens: dict[str, str]) -> None:
        self._principals = principals
        self._passwords = passwords
        self._tokens = tokens  # hashed token → user name

    @classmethod
    def load(cls, path: Path) -> Users:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise AuthConfigError(f"cannot read auth file {path}: {exc}") from exc
        principals, passwords, tokens = {}, {}, {}
        for name, user in raw.get("users", {}).items():
            access = _access(user.get("access", "none"), name)
            experiments = {str(e): _access(a, name) for e, a in user.get("experiments", {}).items()}
            principals[name] = Principal(name, access, experiments)
            if "password" in user:
                _check_format(user["password"], "pbkdf2_sha256", 4, name)
                passwords[name] = user["password"]
            for token in user.get("tokens", []):
                _check_format(token, "sha256", 2, name)
                tokens[token] = name
        if not principals:
            raise AuthConfigError(f"auth file {path} defines no [users.<name>]")
        return cls(principals, passwords, tokens)

    def authenticate(self, authorization: str | None) -> Principal | None:
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() == "bearer":
            name = self._tokens.get(hash_token(credentials.strip()))
            return self._principals[name] if name else None
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            stored = self._passwords.get(user)
            return self._principals[user] if stored and _password_matches(stored, password) else None
        return None


def _access(value: Any, user: str) -> Access:
    if value not in _RANK:
        raise AuthConfigError(f"user {user!r}: access must be none, read or write, not {value!r}")
    return value  # type: ignore[no-any-return]


def _check_format(secret: Any, scheme: str, parts: int, user: str) -> None:
    if not (isinstance(secret, str) and secret.startswith(f"{scheme}$") and len(secret.split("$")) == parts):
        raise AuthConfigError(f"user {user!r}: secrets must be hashes from `runstream hash-secret` ({scheme}$...)")


class AuthMiddleware:
    """Answers 401 before any route runs unless the request authenticates; puts the Principal in the
    request's state for the routes' permission checks."""

    def __init__(self, app: ASGIApp, users: Users, open_paths: frozenset[str] = PROBES) -> None:
        self.app = app
        self.users = users
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        principal = self.users.authenticate(headers.get(b"authorization", b"").decode("latin-1"))
        if principal is None:
            body = orjson.dumps({"error_code": "UNAUTHENTICATED", "message": "valid credentials are required"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        # One challenge a header: browsers take a lone Basic challenge (and ask for a
                        # login), but not one followed by another scheme in the same header.
                        (b"www-authenticate", b'Basic realm="runstream", charset="UTF-8"'),
                        (b"www-authenticate", b"Bearer"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _principal(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)


CurrentPrincipal = Annotated[Principal | None, Depends(_principal)]
"""The authenticated user of a request; None when auth is off."""


def require(principal: Principal | None, wanted: Access, experiment_ids: Iterable[str | None]) -> None:
    """403 unless `principal` has `wanted` access to every experiment (always allowed when auth is off)."""
    if principal is None:
        return
    denied = sorted({e or "(new)" for e in experiment_ids if not principal.can(wanted, e)})
    if denied:
        raise ApiError(403, "PERMISSION_DENIED", f"{principal.name} may not {wanted} experiment(s) {', '.join(denied)}")


def readable(principal: Principal | None, experiments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The experiments (as the API returns them) the user may read."""
    if principal is None:
        return experiments
    return [e for e in experiments if principal.can("read", e["experiment_id"])]
