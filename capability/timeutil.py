"""Event time: float epoch seconds inside the core, RFC 3339 UTC with milliseconds in documents."""

from __future__ import annotations

from datetime import UTC, datetime


def to_rfc3339(ts: float | None) -> str | None:
    """``1763626502.125`` → ``"2026-11-20T08:15:02.125Z"`` (None stays None)."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(round(ts, 3), tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_ts(value: object) -> float:
    """An event's ``ts``: RFC 3339 string or integer epoch milliseconds → float epoch seconds.

    Raises ``ValueError`` on anything else (bools, floats, naive or malformed strings), so the caller can
    dead-letter the event with the message as its reason.
    """
    if isinstance(value, bool):
        raise ValueError("ts must be an RFC 3339 string or integer epoch milliseconds, not a boolean")
    if isinstance(value, int):
        if not 0 <= value < 10**14:
            raise ValueError(f"ts {value} is not plausible epoch milliseconds")
        return value / 1000.0
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise ValueError("ts string too long")
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"ts {value!r} is not RFC 3339") from exc
        if dt.tzinfo is None:
            raise ValueError(f"ts {value!r} has no UTC offset (RFC 3339 requires one)")
        return dt.timestamp()
    raise ValueError("ts must be an RFC 3339 string or integer epoch milliseconds")
