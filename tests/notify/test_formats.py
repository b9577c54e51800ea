"""The notifier's pure parts: endpoint file, routing, the five wire formats, signatures, backoff, offsets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from cpkmon.notify.config import REDACT, ConfigError, RetryPolicy, load, parse
from cpkmon.notify.formats import (
    WECOM_MAX_BYTES,
    event_message,
    payload,
    request,
    summary_message,
)
from cpkmon.notify.service import OffsetTracker, _judge
from tests.notify.events import history

SECRET = "s3cr3t-Hk7-notify-test"
EVENTS = history(["L1"], ["diameter"])
ACTIVATE = EVENTS[0]  # control alarm of L1/diameter, severity high, rules 1 and 5
GRADE = next(e for e in EVENTS if e["source"]["kind"] == "grade" and e["kind"] == "activate")
ACK = next(e for e in EVENTS if e["kind"] == "ack")


def endpoint(fmt: str, **extra: Any) -> Any:
    env = {"HOOK_SECRET": SECRET, "HOOK_URL": "https://hooks.example/robot/send?access_token=tok-123456"}
    raw = {"name": f"ep-{fmt}", "format": fmt, "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET", **extra}
    return parse({"endpoints": [raw]}, env).endpoints[0]


# ------------------------------------------------------------------------------------------------ config
def test_config_file_resolves_secrets_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(
        "endpoints:\n"
        "  - {name: mes, url: 'https://mes.example/hook', secret_env: MES_SECRET, lines: [L1]}\n"
        "  - {name: chat, url_env: CHAT_URL, format: slack, alarm_kinds: [grade], severities: [high]}\n"
        "rate_limit: {per_line: 3, window_s: 30}\n"
        "retry: {max_attempts: 4, initial_s: 0.5}\n"
    )
    cfg = load(
        path, {"MES_SECRET": "xyz-secret", "CHAT_URL": "https://hooks.slack.example/services/T/B/tok9"}
    )
    mes, chat = cfg.endpoints
    assert mes.secret is not None and mes.secret.get_secret_value() == "xyz-secret"
    assert chat.target() == "https://hooks.slack.example/services/T/B/tok9"
    assert chat.where() == "https://hooks.slack.example"  # what logs show: no path, no token
    assert "tok9" not in repr(cfg) and "xyz-secret" not in repr(cfg)
    assert (cfg.rate_limit.per_line, cfg.rate_limit.window_s, cfg.retry.max_attempts) == (3, 30, 4)
    # every secret and the URL's token are registered for the log scrubber
    assert (
        REDACT.scrub("url https://hooks.slack.example/services/T/B/tok9 key xyz-secret") == "url *** key ***"
    )


@pytest.mark.parametrize(
    ("raw", "env", "needle"),
    [
        ({"endpoints": [{"name": "a", "url": "https://x/y", "secret": "inline"}]}, {}, "may not be written"),
        ({"endpoints": [{"name": "a", "url": "https://x/y", "secret_env": "NOPE"}]}, {}, "NOPE is unset"),
        ({"endpoints": [{"name": "a", "url_env": "U"}]}, {}, "U is unset"),
        ({"endpoints": [{"name": "a", "url": "ftp://x/y"}]}, {}, "http(s)"),
        ({"endpoints": [{"name": "a"}]}, {}, "exactly one of url and url_env"),
        ({"endpoints": [{"name": "a", "url": "https://x", "format": "fax"}]}, {}, "format"),
        ({"endpoints": [{"name": "a", "url": "https://x", "events": ["explode"]}]}, {}, "explode"),
        ({"endpoints": [{"name": "a", "url": "https://x"}, {"name": "a", "url": "https://y"}]}, {}, "twice"),
        ({"endpoints": []}, {}, "endpoints"),
    ],
)
def test_config_errors_name_the_problem(raw: Any, env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw, env)
    assert needle in str(info.value)
    assert "inline" not in str(info.value)  # a secret written in the file is not echoed either


def test_routing_by_line_alarm_kind_severity_and_event_kind() -> None:
    ep = endpoint(
        "generic", lines=["L1"], alarm_kinds=["control"], severities=["high"], events=["activate", "ack"]
    )
    assert ep.wants(ACTIVATE, "high")
    assert not ep.wants({**ACTIVATE, "line": "L2"}, "high")
    assert not ep.wants(GRADE, "high")
    assert not ep.wants(ACTIVATE, "low")
    assert ep.wants(ACK, "high") and not ep.wants({**ACK, "kind": "clear"}, "high")
    # severity unknown (the activation was read before a restart): delivered rather than lost
    assert ep.wants(ACK, None)


# ------------------------------------------------------------------------------------------------ formats
def test_generic_body_is_the_event_signed_with_hmac_sha256() -> None:
    ep = endpoint("generic")
    msg = event_message(ACTIVATE, ep)
    body = payload(msg, ep)
    req = request(msg, ep, body, 1_700_000_000_000)
    doc = json.loads(body)
    assert doc["event"] == ACTIVATE and doc["type"] == "alarm_event"
    assert doc["text"] == "[HIGH] L1 · diameter: out of control (rules 1, 5)"
    want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert req.headers["X-Cpkmon-Signature"] == want
    assert req.headers["Idempotency-Key"] == f"{ACTIVATE['event_id']}:ep-generic"
    # a retry or a re-delivery after a restart: the same bytes, the same signature
    assert payload(event_message(dict(ACTIVATE), ep), ep) == body
    assert request(msg, ep, body, 1_800_000_000_000).headers == req.headers


def test_slack_payload_has_text_and_blocks_and_escapes_operator_text() -> None:
    ep = endpoint("slack")
    doc = json.loads(payload(event_message({**ACK, "comment": "<!channel> & co"}, ep), ep))
    assert doc["text"] == "L1 · diameter: acknowledged"
    assert doc["blocks"][0]["type"] == "header"
    section = doc["blocks"][1]["text"]
    assert section["type"] == "mrkdwn"
    assert "*Cause:* machine" in section["text"] and "*By:* op-1" in section["text"]
    assert "Severity" not in section["text"]  # only what the event says: re-deliveries are identical
    assert "&lt;!channel&gt; &amp; co" in section["text"]  # no @channel from an operator's comment
    assert "X-Cpkmon-Signature" not in request(event_message(ACK, ep), ep, b"{}", 0).headers


def test_teams_payload_is_an_adaptive_card_message() -> None:
    ep = endpoint("teams")
    doc = json.loads(payload(event_message(GRADE, ep), ep))
    assert doc["type"] == "message"
    (att,) = doc["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, facts = card["body"]
    assert title["text"] == "[HIGH] L1 · grade: grade 3 → 2" and title["color"] == "Attention"
    assert {"title": "Grade", "value": "3 → 2"} in facts["facts"]


def test_dingtalk_markdown_and_signed_url() -> None:
    ep = endpoint("dingtalk")
    msg = event_message(ACTIVATE, ep)
    body = payload(msg, ep)
    doc = json.loads(body)
    assert doc["msgtype"] == "markdown"
    assert doc["markdown"]["title"].startswith("【HIGH】L1 · diameter")
    assert "- **Rules**: 1, 5" in doc["markdown"]["text"]
    ts = 1_700_000_000_123
    req = request(msg, ep, body, ts)
    parts = urllib.parse.urlsplit(req.url)
    query = urllib.parse.parse_qs(parts.query)
    assert query["access_token"] == ["tok-123456"] and query["timestamp"] == [str(ts)]
    # DingTalk's documented check: base64(HMAC-SHA256(key=secret, msg="<timestamp>\n<secret>"))
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest()
    )
    assert query["sign"] == [expected.decode()]  # parse_qs undid the URL encoding of + / =
    raw_sign = parts.query.split("sign=")[1]
    assert "/" not in raw_sign and "+" not in raw_sign and "=" not in raw_sign  # base64 travels URL-encoded


def test_wecom_markdown_is_bounded() -> None:
    ep = endpoint("wecom")
    doc = json.loads(payload(event_message(ACTIVATE, ep), ep))
    assert doc["msgtype"] == "markdown"
    assert '<font color="warning">' in doc["markdown"]["content"]
    long = json.loads(payload(event_message({**ACK, "comment": "x" * 10_000}, ep), ep))
    assert len(long["markdown"]["content"].encode()) <= WECOM_MAX_BYTES


def test_summary_names_every_event_it_replaces_with_a_stable_key() -> None:
    ep = endpoint("generic")
    held = EVENTS[:5]
    msg = summary_message("L1", held, 60, ep)
    doc = json.loads(payload(msg, ep))
    assert doc["type"] == "alarm_summary" and doc["count"] == 5
    assert doc["event_ids"] == [e["event_id"] for e in held]
    assert msg.idempotency_key == summary_message("L1", [dict(e) for e in held], 60, ep).idempotency_key
    assert msg.idempotency_key != summary_message("L1", held[:4], 60, ep).idempotency_key


# --------------------------------------------------------------------------------------------- delivery rules
def test_backoff_is_exponential_jittered_and_capped() -> None:
    p = RetryPolicy(initial_s=1, max_s=10, multiplier=2)
    assert [p.backoff(a, 0.999999) for a in (1, 2, 3, 4, 5, 6)] == pytest.approx(
        [1, 2, 4, 8, 10, 10], rel=1e-5
    )
    assert [p.backoff(a, 0.0) for a in (1, 2, 3)] == [0.5, 1, 2]  # jitter: between half and all of the bound


@pytest.mark.parametrize(
    ("fmt", "status", "body", "verdict"),
    [
        ("generic", 200, b"", "ok"),
        ("teams", 202, b"", "ok"),
        ("generic", 500, b"", "retry"),
        ("generic", 503, b"", "retry"),
        ("slack", 429, b"", "retry"),
        ("generic", 408, b"", "retry"),
        ("generic", 400, b"", "reject"),
        ("generic", 401, b"", "reject"),
        ("dingtalk", 200, b'{"errcode":0,"errmsg":"ok"}', "ok"),
        ("dingtalk", 200, b'{"errcode":130101,"errmsg":"send too fast"}', "retry"),
        ("dingtalk", 200, b'{"errcode":310000,"errmsg":"sign not match"}', "reject"),
        ("wecom", 200, b'{"errcode":45009}', "retry"),
        ("wecom", 200, b'{"errcode":93000}', "reject"),
    ],
)
def test_answers_are_judged_per_format(fmt: str, status: int, body: bytes, verdict: str) -> None:
    assert _judge(fmt, status, body)[0] == verdict


def test_offset_tracker_commits_only_below_the_first_unfinished_record() -> None:
    t = OffsetTracker()
    assert t.committable() is None
    t.add(10, 2)  # two lanes
    t.add(11, 0)  # routed nowhere: done at once
    t.add(12, 1)
    assert t.committable() == 10
    t.done(12)
    assert t.committable() == 10  # 12 is done, 10 is not: a crash must re-deliver 10
    t.done(10)
    assert t.committable() == 10  # one lane of 10 still working
    t.done(10)
    assert t.committable() == 13 and t.pending == 0


def test_url_tokens_are_scrubbed_on_their_own_too() -> None:
    url = "https://oapi.example/robot/send?access_token=abcdef0123456789&x=1"
    slack = "https://hooks.example/services/T0001/B0002/Zz9yXw8vUt7sRq6p"
    parse(
        {"endpoints": [{"name": "d", "url_env": "D"}, {"name": "s", "url_env": "S", "format": "slack"}]},
        {"D": url, "S": slack},
    )
    text = "GET abcdef0123456789 failed; POST /services/T0001/B0002/Zz9yXw8vUt7sRq6p; send x=1"
    assert REDACT.scrub(text) == "GET *** failed; POST /services/T0001/B0002/***; send x=1"


def test_the_command_refuses_a_bad_endpoint_file_naming_the_variable(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cpkmon.cli import app

    path = tmp_path / "notify.json"
    path.write_text(
        json.dumps([{"name": "mes", "url": "https://mes.example/h", "secret_env": "NO_SUCH_VAR"}])
    )
    result = CliRunner().invoke(app, ["notify", "--config", str(path), "--port", "0"])
    assert result.exit_code == 2
    assert "NO_SUCH_VAR is unset" in result.output and "'mes'" in result.output


def test_the_alarm_events_topic_is_planned_co_partitioned_and_not_compacted() -> None:
    from cpkmon.settings import Settings
    from cpkmon.topics import plan

    s = Settings(broker="kafka://k1:9092", topic_alarm_events="plant.alarm-events")
    by_name = {t.name: t for t in plan(s, {"cpkmon.measurements": 6})}
    events = by_name["plant.alarm-events"]
    assert events.partitions == by_name["cpkmon.measurements"].partitions == 6  # key = line, like the inputs
    assert events.configs == {"cleanup.policy": "delete"}  # a history, not state
