"""What goes over the wire: one alarm event (or one rate-limit summary) as an HTTP request per format.

Every format first becomes a :class:`Message` (a title, a colour-coded severity and a list of facts), so the
five formats say the same thing; only the envelope differs:

* ``generic`` — the event document itself under ``event`` plus the rendered ``text``; signed with
  ``X-Cpkmon-Signature: sha256=<hex HMAC-SHA256(secret, body)>`` (GitHub's convention) when the endpoint has
  a secret;
* ``slack`` — incoming webhook: ``text`` (notifications, fallback) and Block Kit ``blocks``;
* ``teams`` — an Adaptive Card in a ``message`` envelope: what Teams Workflows ("Post to a channel when a
  webhook request is received") accept, and what the retiring Office 365 connectors accept as well;
* ``dingtalk`` — robot ``msgtype: markdown``; with a secret, the URL gets ``timestamp`` (ms) and
  ``sign = base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))``, URL-encoded, as DingTalk's robot security
  settings ("加签") require. The signature is made per *attempt* (DingTalk rejects a timestamp older than an
  hour), the body is not: a retry sends the same bytes;
* ``wecom`` — WeCom (企业微信) group robot ``msgtype: markdown`` (content ≤ 4096 bytes).

Every request carries ``Idempotency-Key: <event_id>:<endpoint name>`` (a summary: a key derived from the
event ids it covers). Bodies are deterministic (sorted keys, no send time), so a re-delivery after a restart
is byte-identical and carries the same signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from cpkmon.notify.config import Endpoint

SIGNATURE_HEADER = "X-Cpkmon-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
WECOM_MAX_BYTES = 4096

#: Event kind → (English phrase, Chinese phrase) for titles.
KIND_TEXT: dict[str, tuple[str, str]] = {
    "activate": ("alarm", "报警"),
    "clear": ("returned to normal", "恢复正常"),
    "ack": ("acknowledged", "已确认"),
    "shelve": ("shelved", "已搁置"),
    "unshelve": ("unshelved", "取消搁置"),
    "resolve": ("corrective action recorded", "已纠正"),
    "out_of_service": ("out of service", "停用"),
    "in_service": ("back in service", "恢复启用"),
}
_SEVERITY_COLOUR = {"high": "#d73a49", "medium": "#e36209", "low": "#dbab09"}
_TEAMS_COLOUR = {"high": "Attention", "medium": "Warning", "low": "Accent"}


@dataclass(frozen=True, slots=True)
class Message:
    """One notification, format-neutral."""

    title: str
    title_zh: str
    severity: str | None  # high | medium | low for activations; None otherwise
    facts: list[tuple[str, str]]
    document: dict[str, Any]  # what the generic format sends
    idempotency_key: str


@dataclass(slots=True)
class Request:
    """One HTTP POST, ready for the client. ``url`` may hold a token: never log it."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _subject(event: Mapping[str, Any]) -> str:
    source = event.get("source") or {}
    line = str(event.get("line", "?"))
    if source.get("kind") == "control" and source.get("characteristic"):
        return f"{line} · {source['characteristic']}"
    return f"{line} · grade" if source.get("kind") == "grade" else line


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def idempotency_key(event_id: str, endpoint: str) -> str:
    return f"{event_id}:{endpoint}"


def event_message(event: Mapping[str, Any], endpoint: Endpoint) -> Message:
    """The message for one alarm event: a function of the event alone (not of what the notifier remembers,
    e.g. the alarm's severity from its activation), so a re-delivery after a restart is byte-identical."""
    kind = str(event.get("kind", "?"))
    source = event.get("source") or {}
    sev = event.get("severity")
    en, zh = KIND_TEXT.get(kind, (kind, kind))
    subject = _subject(event)
    if kind == "activate":
        if source.get("kind") == "grade":
            what = f"grade {event.get('from_grade', '?')} → {event.get('to_grade', '?')}"
        else:
            rules = event.get("rules") or []
            what = "out of control" + (
                f" (rule{'s' if len(rules) > 1 else ''} {_fmt(rules)})" if rules else ""
            )
        title = f"[{str(sev or '?').upper()}] {subject}: {what}"
        title_zh = f"【{str(sev or '?').upper()}】{subject}:{zh}"
    else:
        title = f"{subject}: {en}"
        title_zh = f"{subject}:{zh}"
    labels = (
        ("Severity", sev),
        ("Rules", event.get("rules") or None),
        ("Value", event.get("value")),
        ("Limit", event.get("limit")),
        ("Grade", f"{event['from_grade']} → {event['to_grade']}" if "from_grade" in event else None),
        ("By", event.get("by")),
        ("Cause", event.get("cause")),
        ("Comment", event.get("comment")),
        ("Until", event.get("until")),
        ("Reason", event.get("reason")),
        ("Action", event.get("action")),
        ("At", event.get("at")),
        ("Alarm", event.get("alarm_id")),
        ("Event", event.get("event_id")),
    )
    facts = [(label, _fmt(value)) for label, value in labels if value not in (None, "", [])]
    document = {"type": "alarm_event", "text": title, "event": dict(event)}
    return Message(
        title, title_zh, sev, facts, document, idempotency_key(str(event["event_id"]), endpoint.name)
    )


def summary_message(
    line: str, events: Sequence[Mapping[str, Any]], window_s: float, endpoint: Endpoint
) -> Message:
    """One message for the events of ``line`` a rate-limit window held back (oldest first)."""
    kinds = Counter(str(e.get("kind")) for e in events)
    subjects = Counter(_subject(e) for e in events)
    first, last = events[0], events[-1]
    ids = [str(e["event_id"]) for e in events]
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
    title = f"{line}: {len(events)} more alarm events in {window_s:g} s (rate limited, summarised)"
    title_zh = f"{line}:{window_s:g} 秒内另有 {len(events)} 条报警事件(已限流汇总)"
    facts = [
        ("Events", ", ".join(f"{k} × {n}" for k, n in kinds.most_common())),
        ("Sources", ", ".join(f"{s} × {n}" for s, n in subjects.most_common(5))),
        ("From", str(first.get("at", "?"))),
        ("To", str(last.get("at", "?"))),
    ]
    document = {
        "type": "alarm_summary",
        "text": title,
        "line": line,
        "count": len(events),
        "by_kind": dict(sorted(kinds.items())),
        "first_at": first.get("at"),
        "last_at": last.get("at"),
        "event_ids": ids,
    }
    return Message(title, title_zh, None, facts, document, f"summary-{digest}:{endpoint.name}")


# ------------------------------------------------------------------------------------------------ formats
def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(msg: Message) -> dict[str, Any]:
    facts = "\n".join(f"*{label}:* {_slack_escape(value)}" for label, value in msg.facts)
    return {
        "text": msg.title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": msg.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": facts[:3000]}},
        ],
    }


def teams_payload(msg: Message) -> dict[str, Any]:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": msg.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": _TEAMS_COLOUR.get(msg.severity or "", "Default"),
            },
            {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in msg.facts]},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _markdown(msg: Message, colour: bool) -> str:
    title = msg.title_zh if msg.title_zh != msg.title else msg.title
    if colour and msg.severity:
        head = f'<font color="{"warning" if msg.severity == "high" else "comment"}">{title}</font>'
    else:
        head = title
    lines = [f"#### {head}", ""] + [f"- **{label}**: {value}" for label, value in msg.facts]
    return "\n".join(lines)


def dingtalk_payload(msg: Message) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": msg.title_zh[:64], "text": _markdown(msg, False)}}


def wecom_payload(msg: Message) -> dict[str, Any]:
    content = _markdown(msg, True)
    while len(content.encode()) > WECOM_MAX_BYTES:  # WeCom rejects longer content (errcode 40058)
        content = content[: len(content) * 9 // 10]
    return {"msgtype": "markdown", "markdown": {"content": content}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature, URL-encoded: base64(HMAC-SHA256(key=secret, msg=f"{ts}\\n{secret}"))."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(mac).decode())


def hmac_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(msg: Message, endpoint: Endpoint) -> bytes:
    """The body for ``endpoint``'s format (the same bytes on every attempt)."""
    doc: dict[str, Any]
    if endpoint.format == "slack":
        doc = slack_payload(msg)
    elif endpoint.format == "teams":
        doc = teams_payload(msg)
    elif endpoint.format == "dingtalk":
        doc = dingtalk_payload(msg)
    elif endpoint.format == "wecom":
        doc = wecom_payload(msg)
    else:
        doc = msg.document
    return _canonical(doc)


def request(msg: Message, endpoint: Endpoint, body: bytes, now_ms: int) -> Request:
    """One attempt's request: headers, signature and (DingTalk) the signed URL for ``now_ms``."""
    url = endpoint.target()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "cpkmon-notify",
        IDEMPOTENCY_HEADER: msg.idempotency_key,
    }
    secret = endpoint.secret.get_secret_value() if endpoint.secret is not None else None
    if secret is not None and endpoint.format == "generic":
        headers[SIGNATURE_HEADER] = hmac_signature(secret, body)
    if secret is not None and endpoint.format == "dingtalk":
        url += ("&" if "?" in url else "?") + f"timestamp={now_ms}&sign={dingtalk_sign(secret, now_ms)}"
    return Request(url, body, headers)
