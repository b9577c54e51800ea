"""The alert cursor: an opaque token that says, per partition of the alerts topic, which offset was delivered.

It derives from the topic, never from a replica's memory: any API instance (a restarted one, or a replica
beside it) reading the same topic turns the same cursor into the same next page. See ``View.alerts_page``.
"""

from __future__ import annotations

import base64
import binascii

import orjson

_VERSION = 1
MAX_PARTITIONS = 100_000


def encode(delivered: dict[int, int]) -> str:
    """``{partition: last delivered offset}`` → base64url text (no padding)."""
    doc = {"v": _VERSION, "o": {str(p): o for p, o in sorted(delivered.items())}}
    return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode("ascii")


def decode(token: str | None) -> dict[int, int]:
    """The inverse of :func:`encode`; an empty token is the beginning. ``ValueError`` on a bad token."""
    if not token:
        return {}
    if len(token) > 64_000:
        raise ValueError("cursor too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise ValueError("not a cursor issued by this API") from exc
    if not isinstance(doc, dict) or doc.get("v") != _VERSION or not isinstance(doc.get("o"), dict):
        raise ValueError("not a cursor issued by this API")
    out: dict[int, int] = {}
    for key, value in doc["o"].items():
        if not (isinstance(key, str) and key.isdigit()) or type(value) is not int or value < -1:
            raise ValueError("not a cursor issued by this API")
        part = int(key)
        if part >= MAX_PARTITIONS:
            raise ValueError("not a cursor issued by this API")
        out[part] = value
    return out
