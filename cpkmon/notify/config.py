"""The notifier's configuration file (``CPKMON_NOTIFY_CONFIG``): endpoints, routing, rate limit, retries.

Why secrets are *named* here rather than written: the file is deployment configuration that ends up in git,
a ConfigMap or a support ticket; a webhook secret (the HMAC key, DingTalk's signing secret) and a webhook URL
that embeds a token (Slack, Teams, DingTalk's ``access_token``, WeCom's ``key``) are credentials. So an
endpoint names the environment variables that hold them (``secret_env``, ``url_env``); :func:`load` resolves
them once, keeps the values in ``SecretStr`` and registers them with :data:`REDACT` so that no log line can
carry them, and a missing variable stops start-up naming the variable, never a value.

Example (YAML; JSON with the same shape works too)::

    endpoints:
      - name: mes
        url: https://mes.example/hooks/cpkmon
        format: generic            # generic | slack | teams | dingtalk | wecom
        secret_env: MES_HOOK_SECRET
        lines: [L1, L2]            # routing: absent means every line
        alarm_kinds: [control]     # control | grade
        severities: [high, medium] # of the alarm (activate events carry it)
        events: [activate, clear, ack, resolve]
      - name: shift-lead
        url_env: DINGTALK_URL
        format: dingtalk
        secret_env: DINGTALK_SECRET
    rate_limit: {per_line: 10, window_s: 60}
    retry: {max_attempts: 8, initial_s: 1, max_s: 60, timeout_s: 10}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

Format = Literal["generic", "slack", "teams", "dingtalk", "wecom"]
FORMATS: tuple[str, ...] = ("generic", "slack", "teams", "dingtalk", "wecom")
ALARM_KINDS: tuple[str, ...] = ("control", "grade")
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")
EVENT_KINDS: tuple[str, ...] = (
    "activate",
    "clear",
    "ack",
    "shelve",
    "unshelve",
    "resolve",
    "out_of_service",
    "in_service",
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ConfigError(ValueError):
    """The notify configuration cannot be used; the message names the file, the endpoint and the field."""


class Redactor:
    """Every secret value the notifier holds; :meth:`scrub` replaces them in any text about to be logged.

    Why a registry and not just care at each log call: exception texts come from libraries (aiohttp puts the
    request URL in some of them), so the last line of defence is the log record itself
    (:class:`cpkmon.notify.service.RedactingFilter`)."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 4:  # a 1–3 character "secret" would blank out ordinary words
            self._values.add(value)

    def scrub(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):  # longest first: a URL before its token
            if value in text:
                text = text.replace(value, "***")
        return text


#: The process-wide redactor the log filter uses; :func:`load` fills it.
REDACT = Redactor()


class RetryPolicy(BaseModel):
    """Exponential backoff with full jitter, bounded by attempts: the retry budget of one delivery."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(
        default=8, ge=1, le=100, description="attempts per delivery, the first included"
    )
    initial_s: float = Field(default=1.0, gt=0, le=3600, description="backoff before the second attempt")
    max_s: float = Field(default=60.0, gt=0, le=3600, description="cap of one backoff")
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="one attempt: connect, send, answer")

    def backoff(self, attempt: int, rand: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); ``rand`` ∈ [0, 1) is the
        jitter draw. Full jitter (a uniform draw below the exponential bound) spreads the retries of many
        notifiers that failed together, so a recovering receiver is not hit by them in lock-step."""
        bound = min(self.max_s, self.initial_s * self.multiplier ** (attempt - 1))
        return bound * (0.5 + 0.5 * rand)  # at least half the bound: a retry storm still backs off


class RateLimit(BaseModel):
    """Per endpoint and line: the first ``per_line`` deliveries of a window go out one by one, the rest of
    the window become one summary message sent when the window ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_line: int = Field(default=10, ge=1, description="individual messages per line and window")
    window_s: float = Field(default=60.0, gt=0, le=86_400, description="the window, seconds")


class Endpoint(BaseModel):
    """One webhook and what it wants to hear about. ``url``/``secret`` are resolved by :func:`load`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="in metrics, logs and the Idempotency-Key; [A-Za-z0-9._-]{1,64}")
    format: Format = "generic"
    url: SecretStr | None = Field(default=None, description="the URL (a URL with a token: use url_env)")
    url_env: str | None = Field(default=None, description="environment variable holding the URL")
    secret_env: str | None = Field(
        default=None,
        description="environment variable holding the secret: HMAC key (generic), signing secret (dingtalk)",
    )
    secret: SecretStr | None = Field(default=None, exclude=True, description="resolved from secret_env")
    lines: list[str] | None = Field(default=None, description="only these lines; absent: every line")
    alarm_kinds: list[Literal["control", "grade"]] | None = None
    severities: list[Literal["high", "medium", "low"]] | None = None
    events: list[str] | None = Field(default=None, description="event kinds; absent: every kind")
    timeout_s: float | None = Field(default=None, gt=0, le=600, description="overrides retry.timeout_s")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must match [A-Za-z0-9._-]{1,64}")
        return value

    @field_validator("url_env", "secret_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("must be an environment variable name")
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        for kind in value or []:
            if kind not in EVENT_KINDS:
                raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(EVENT_KINDS)})")
        return value

    def target(self) -> str:
        """The URL to post to (only for the HTTP client; never log it)."""
        assert self.url is not None, "load() resolves url"
        return self.url.get_secret_value()

    def where(self) -> str:
        """``https://host`` — enough to tell endpoints apart in a log line, without path or query (where
        Slack, DingTalk and WeCom put their tokens)."""
        parts = urlsplit(self.target())
        return f"{parts.scheme}://{parts.hostname or '?'}"

    def wants(self, event: Mapping[str, Any], severity: str | None) -> bool:
        """Routing: does this endpoint take ``event``? ``severity`` is the alarm's (the event's own, or the
        last activation's the notifier saw; None when unknown — then a severity filter lets it through,
        because a missed ``clear`` of an alarm someone was paged for is worse than an extra message)."""
        if self.lines is not None and event.get("line") not in self.lines:
            return False
        source = event.get("source")
        kind = source.get("kind") if isinstance(source, Mapping) else None
        if self.alarm_kinds is not None and kind not in self.alarm_kinds:
            return False
        if self.events is not None and event.get("kind") not in self.events:
            return False
        return not (self.severities is not None and severity is not None and severity not in self.severities)


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoints: list[Endpoint] = Field(min_length=1)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    def timeout(self, endpoint: Endpoint) -> float:
        return endpoint.timeout_s if endpoint.timeout_s is not None else self.retry.timeout_s


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    try:
        import yaml
    except ModuleNotFoundError as exc:  # pragma: no cover - PyYAML ships with the dev extra and the image
        raise ConfigError(
            f"{path}: YAML needs PyYAML (pip install pyyaml), or write the file as .json"
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse(raw: Any, env: Mapping[str, str], *, source: str = "notify config") -> NotifyConfig:
    """Validate ``raw`` (the file's content: a mapping, or a bare list of endpoints) and resolve every
    ``url_env``/``secret_env`` from ``env``. Secrets found are registered with :data:`REDACT`."""
    if isinstance(raw, list):
        raw = {"endpoints": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with 'endpoints' or a list of endpoints")
    for i, item in enumerate(raw.get("endpoints") or []):
        if isinstance(item, dict) and "secret" in item:
            raise ConfigError(
                f"{source}: endpoint #{i + 1}: 'secret' may not be written in the file; put it in an "
                "environment variable and name it with secret_env"
            )
    try:
        config = NotifyConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise ConfigError(f"{source}: {problems}") from None
    names: set[str] = set()
    for ep in config.endpoints:
        if ep.name in names:
            raise ConfigError(f"{source}: endpoint name {ep.name!r} is used twice")
        names.add(ep.name)
        if (ep.url is None) == (ep.url_env is None):
            raise ConfigError(f"{source}: endpoint {ep.name!r}: give exactly one of url and url_env")
        if ep.url_env is not None:
            value = env.get(ep.url_env, "")
            if not value:
                raise ConfigError(
                    f"{source}: endpoint {ep.name!r}: environment variable {ep.url_env} is unset"
                )
            ep.url = SecretStr(value)
        url = ep.target()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # no URL in the message: it may carry a token
            raise ConfigError(f"{source}: endpoint {ep.name!r}: the URL must be http(s)://host/...")
        if ep.url_env is not None:
            # the URL, and its token parts on their own (a library may print them apart or re-quoted):
            # query values (DingTalk's access_token, WeCom's key, Teams' sig) and long path segments (Slack's)
            REDACT.add(url)
            REDACT.add(parts.query)
            for _, value in parse_qsl(parts.query):
                REDACT.add(value if len(value) >= 8 else None)
            for segment in parts.path.split("/"):
                REDACT.add(segment if len(segment) >= 16 else None)
        if ep.secret_env is not None:
            secret = env.get(ep.secret_env, "")
            if not secret:
                raise ConfigError(
                    f"{source}: endpoint {ep.name!r}: environment variable {ep.secret_env} is unset"
                )
            ep.secret = SecretStr(secret)
            REDACT.add(secret)
    return config


def load(path: Path, env: Mapping[str, str] | None = None) -> NotifyConfig:
    """Read and resolve ``CPKMON_NOTIFY_CONFIG``."""
    try:
        raw = _read(path)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # JSON / YAML syntax
        raise ConfigError(f"{path}: {exc}") from None
    return parse(raw, os.environ if env is None else env, source=str(path))
