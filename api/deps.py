"""FastAPI dependencies: the app's settings, view, writer and registry (all on ``app.state``, created by the
app factory) and the API-key check. Routes declare them with ``Annotated`` aliases, never reach for globals.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

from cpkmon.api.problems import Problem
from cpkmon.api.view import View
from cpkmon.api.writer import Writer
from cpkmon.settings import Settings


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    secret: bytes


def parse_keys(entries: list[str]) -> list[ApiKey]:
    """``CPKMON_API_KEYS`` entries: ``name:secret`` or just ``secret`` (then named ``key-N``, N from 1)."""
    keys = []
    for i, entry in enumerate(entries, start=1):
        name, sep, secret = entry.partition(":")
        if not sep:
            name, secret = f"key-{i}", entry
        if secret:
            keys.append(ApiKey(name.strip() or f"key-{i}", secret.encode()))
    return keys


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_view(request: Request) -> View:
    view: View = request.app.state.view
    return view


def get_writer(request: Request) -> Writer:
    writer: Writer = request.app.state.writer
    return writer


def get_registry(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry = request.app.state.registry
    return registry


_bearer = HTTPBearer(auto_error=False, description="an API key from CPKMON_API_KEYS")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="cpkmon"'}


def require_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The name of the caller's key. 401 without (or with a malformed) bearer token, 403 with a wrong one.

    Every configured key is compared (constant time each, no early exit), so timing tells nothing about which
    key or how much of it matched.
    """
    if credentials is None or not credentials.credentials.strip():
        raise Problem(401, "this write needs 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    keys: list[ApiKey] = request.app.state.api_keys
    given = credentials.credentials.strip().encode()
    who: str | None = None
    for key in keys:
        if hmac.compare_digest(given, key.secret) and who is None:
            who = key.name
    if who is None:
        detail = "unknown API key" if keys else "no API keys are configured (CPKMON_API_KEYS): writes are off"
        raise Problem(403, detail)
    return who


SettingsDep = Annotated[Settings, Depends(get_settings)]
ViewDep = Annotated[View, Depends(get_view)]
WriterDep = Annotated[Writer, Depends(get_writer)]
RegistryDep = Annotated[CollectorRegistry, Depends(get_registry)]
CallerDep = Annotated[str, Depends(require_key)]


def require_ready(view: View) -> None:
    """503 until the view has caught up. Alert pages come only from a complete read of the topic (the cursor
    contract), and "no such alert/spec" can only be said once the view has read everything."""
    if not view.ready:
        raise Problem(503, "the view is still catching up; retry shortly", headers={"Retry-After": "1"})
