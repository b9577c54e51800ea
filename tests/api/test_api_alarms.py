"""The API's ISA-18.2 alarms on the embedded broker: process events produced straight to
``cpkmon.alarm-events`` (as the worker writes them), the operator lifecycle through HTTP, the audit records
of each action, states identical after a restart, and the alarm KPIs on ``/metrics`` from a hand-built
history."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from kafka.admin import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from cpkmon.alerts.alarms import alarm_event, alarm_id
from cpkmon.broker import EmbeddedBroker
from cpkmon.capability.timeutil import parse_ts
from cpkmon.settings import Settings
from tests.api.conftest import AUTH, PARTITIONS, Publisher, make_settings, running, wait_until
from tests.api.test_api_audit import all_pages, create_topic

BORE = alarm_id("L1", "control", "bore")
GRADE = alarm_id("L1", "grade")


def activate(line: str, at: float, characteristic: str | None = None, **kw: Any) -> dict[str, Any]:
    source = "grade" if characteristic is None else "control"
    fields: dict[str, Any] = {"severity": "medium", "alert_id": "a" * 32, **kw}
    if source == "control":
        fields.setdefault("rules", [1])
    return alarm_event("activate", line=line, source=source, characteristic=characteristic, at=at, **fields)


def clear(line: str, at: float, characteristic: str | None = None) -> dict[str, Any]:
    source = "grade" if characteristic is None else "control"
    return alarm_event("clear", line=line, source=source, characteristic=characteristic, at=at)


def send(publish: Publisher, event: dict[str, Any]) -> None:
    publish.send(publish.settings.topic_alarm_events, event["line"], event)


def alarms(c: TestClient, **params: str) -> list[dict[str, Any]]:
    r = c.get("/api/v1/alarms", params=params)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()
    return out


def state(c: TestClient, aid: str) -> str:
    r = c.get(f"/api/v1/alarms/{aid}")
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


def post(c: TestClient, aid: str, action: str, body: dict[str, Any] | None = None) -> Any:
    return c.post(f"/api/v1/alarms/{aid}/{action}", headers=AUTH, json=body)


def test_lifecycle_through_http_audited_and_identical_after_restart(
    settings: Settings, publish: Publisher
) -> None:
    t0 = time.time() - 120
    send(publish, activate("L1", t0, "bore", rules=[1, 5], severity="high", value=10.31, limit=10.2))
    send(publish, activate("L1", t0 + 1, from_grade={"level": 3, "name": "assurance"},
                           to_grade={"level": 2, "name": "inspection"}))
    with running(settings) as c:
        wait_until(lambda: len(alarms(c)) == 2)
        assert {a["state"] for a in alarms(c)} == {"unack"}
        assert [a["alarm_id"] for a in alarms(c, kind="grade")] == [GRADE]
        assert alarms(c, state="acked") == [] and alarms(c, line="L2") == []
        assert c.get("/api/v1/alarms", params={"state": "bogus"}).status_code == 422
        assert c.get(f"/api/v1/alarms/{'0' * 32}").status_code == 404
        causes = c.get("/api/v1/causes").json()
        assert [x["code"] for x in causes] == ["man", "machine", "material", "method", "measurement",
                                               "environment"]
        assert causes[1]["name_zh"] == "机"

        # ack with a cause: unack -> acked
        assert c.post(f"/api/v1/alarms/{BORE}/ack", json={"cause": "machine"}).status_code == 401
        r = post(c, BORE, "ack", {"cause": "machine", "comment": "tool worn on S10"})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["state"] == "acked" and doc["ack"]["cause"] == "machine" and doc["ack"]["by"] == "ops"
        assert doc["rules"] == [1, 5] and doc["severity"] == "high"
        again = post(c, BORE, "ack", {"cause": "machine"})
        assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
        assert again.json()["reason"] == "not_acknowledgeable"
        assert post(c, GRADE, "ack", {"cause": "gremlins"}).status_code == 422  # not in the list
        assert post(c, GRADE, "resolve", {"action": "x"}).status_code == 409  # not acknowledged yet

        # resolve with the corrective action, then the condition clears: acked -> normal
        r = post(c, BORE, "resolve", {"action": "replaced the insert"})
        assert r.status_code == 200 and r.json()["resolution"]["action"] == "replaced the insert"
        send(publish, clear("L1", t0 + 30, "bore"))
        wait_until(lambda: state(c, BORE) == "normal")

        # shelve / unshelve (the condition is still active: back to unack)
        assert post(c, GRADE, "shelve", {"minutes": 5, "until": "2030-01-01T00:00:00Z"}).status_code == 422
        r = post(c, GRADE, "shelve", {"minutes": 60, "reason": "gauge recalibration"})
        assert r.status_code == 200 and r.json()["state"] == "shelved"
        assert r.json()["shelve"]["reason"] == "gauge recalibration"
        assert post(c, GRADE, "ack", {"cause": "method"}).status_code == 409
        assert post(c, GRADE, "unshelve").json()["state"] == "unack"
        assert post(c, GRADE, "unshelve").status_code == 409

        # shelve with an expiry: once until has passed the alarm reads unack again, with no event
        until = time.time() + 1.5
        r = post(c, GRADE, "shelve", {"until": f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(until))}."
                                               f"{int(until % 1 * 1000):03d}Z"})
        assert r.status_code == 200 and r.json()["state"] == "shelved"
        wait_until(lambda: state(c, GRADE) == "unack", timeout=5)

        # out of service and back
        oos = post(c, GRADE, "out-of-service", {"reason": "line stopped"})
        assert oos.json()["state"] == "out_of_service"
        assert oos.json()["out_of_service"]["reason"] == "line stopped"
        assert post(c, GRADE, "ack", {"cause": "man"}).status_code == 409
        assert post(c, GRADE, "out-of-service").status_code == 409
        assert post(c, GRADE, "in-service").json()["state"] == "unack"
        assert post(c, GRADE, "ack", {"cause": "material"}).json()["state"] == "acked"

        # the audit endpoint reads the topic on each call, to the end it can know of (cpkmon.catchup): a read
        # right after the writes may not have the newest yet — poll until the eight records are served; the
        # read after that must serve them again (a reused reader once lost its high watermark: an empty page)
        wait_until(lambda: len(all_pages(c, limit=50)) >= 8, timeout=15)
        items = all_pages(c, limit=50)
        assert [i["what"] for i in items] == [
            "alarm.ack", "alarm.resolve", "alarm.shelve", "alarm.unshelve", "alarm.shelve",
            "alarm.out_of_service", "alarm.in_service", "alarm.ack",
        ]
        assert {i["who"] for i in items} == {"ops"}
        first = items[0]
        assert first["subject"] == BORE and first["before"]["state"] == "unack"
        assert first["after"]["alarm"]["state"] == "acked" and first["after"]["event"]["cause"] == "machine"
        before_restart = alarms(c)

    with running(settings) as c2:  # a restarted API folds the same history into the same states
        wait_until(lambda: len(alarms(c2)) == 2)
        assert alarms(c2) == before_restart


def test_require_cause_makes_cause_and_action_mandatory(settings: Settings, publish: Publisher) -> None:
    strict = settings.model_copy(update={"require_cause": True})
    send(publish, activate("L7", time.time() - 10, "od"))
    aid = alarm_id("L7", "control", "od")
    with running(strict) as c:
        wait_until(lambda: len(alarms(c)) == 1)
        r = post(c, aid, "ack", {"comment": "no cause"})
        assert r.status_code == 422 and r.json()["reason"] == "cause_required"
        assert post(c, aid, "ack", {"cause": "measurement"}).status_code == 200
        r = post(c, aid, "resolve", {})
        assert r.status_code == 422 and r.json()["reason"] == "action_required"
        assert post(c, aid, "resolve", {"action": "gauge recalibrated"}).status_code == 200
        whats = ["alarm.ack", "alarm.resolve"]  # the 422s recorded nothing
        wait_until(lambda: [i["what"] for i in all_pages(c, limit=10)] == whats)


def test_plant_cause_codes_file(settings: Settings, tmp_path: Any) -> None:
    path = tmp_path / "causes.yaml"
    path.write_text("- {code: tool, name: Tool wear, name_zh: 刀具磨损}\n- {code: other, name: Other}\n")
    with running(settings.model_copy(update={"cause_codes_file": path})) as c:
        assert [x["code"] for x in c.get("/api/v1/causes").json()] == ["tool", "other"]


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_alarm_kpis_on_metrics_from_a_hand_built_history(settings: Settings, publish: Publisher) -> None:
    t = time.time()
    # L1: twelve characteristics annunciate within 12 s, 300 s ago: the plant (13 with L2) is in flood
    for i in range(12):
        send(publish, activate("L1", t - 300 + i, f"c{i}"))
    # c0 re-activates twice within the minute: 3 activations in 60 s, chattering (and no new alarm)
    send(publish, activate("L1", t - 280, "c0"))
    send(publish, activate("L1", t - 270, "c0"))
    # L1/c1 acknowledged 200 s after its annunciation (an operator event, as the API writes it)
    send(publish, alarm_event("ack", line="L1", source="control", characteristic="c1", at=t - 99,
                              by="ops", cause="machine", event_id="op-1"))
    send(publish, activate("L2", t - 200))
    # L3: a grade alarm standing for 25 h: stale
    send(publish, activate("L3", t - 25 * 3600))
    with running(settings) as c:
        wait_until(lambda: len(alarms(c)) == 14)
        m = metric_values(c.get("/metrics").text)
        r = c.get("/api/v1/alarms/kpis")  # the same report as one JSON document (the dashboard's)
        assert r.status_code == 200, r.text
        kpis = r.json()
    assert kpis["plant"]["alarms_10min"] == 13 and kpis["plant"]["in_flood"] is True
    assert kpis["plant"]["line"] is None and kpis["plant"]["floods"] == 1
    assert {ln: k["alarms_10min"] for ln, k in kpis["lines"].items()} == {"L1": 12, "L2": 1, "L3": 0}
    assert kpis["lines"]["L1"]["chattering"] == 1 and kpis["lines"]["L3"]["stale"] == 1
    assert kpis["lines"]["L1"]["unack"] == 11 and 300 <= kpis["lines"]["L1"]["unack_oldest_age"] < 360
    assert kpis["chattering"] == [alarm_id("L1", "control", "c0")]
    assert kpis["stale"] == [alarm_id("L3", "grade")]
    assert kpis["top"][0] == {"alarm_id": alarm_id("L1", "control", "c0"), "line": "L1", "source": "control",
                              "characteristic": "c0", "activations": 3}
    assert len(kpis["top"]) == 10 and kpis["tta_count"] == 1 and abs(kpis["tta_sum"] - 200) < 0.01
    assert kpis["tta_counts"][kpis["tta_buckets"].index(300.0)] == 1 and kpis["tta_counts"][-1] == 1
    assert kpis["targets"]["per_10min"] == 1 and kpis["targets"]["flood_threshold"] == 10
    assert parse_ts(kpis["now"]) >= t

    def v(name: str, **labels: str) -> float:
        return m[(name, tuple(sorted(labels.items())))]

    assert v("cpkmon_alarms_per_10min", line="L1") == 12
    assert v("cpkmon_alarms_per_10min", line="L2") == 1
    assert v("cpkmon_alarms_per_10min", line="L3") == 0
    assert v("cpkmon_plant_alarms_per_10min") == 13
    assert v("cpkmon_alarm_flood") == 1
    # the flood began at the 11th annunciation (t - 290) and lasts until now (the scrape, a moment later)
    assert 290 <= v("cpkmon_alarm_flood_seconds_total") < 290 + 60
    assert v("cpkmon_alarms_chattering", line="L1") == 1
    assert v("cpkmon_alarms_chattering", line="L2") == 0
    assert v("cpkmon_alarms_stale", line="L3") == 1 and v("cpkmon_alarms_stale", line="L1") == 0
    assert v("cpkmon_alarms_unacknowledged", line="L1") == 11
    assert v("cpkmon_alarms_unacknowledged", line="L3") == 1
    assert 300 <= v("cpkmon_alarm_unacknowledged_oldest_seconds", line="L1") < 360
    assert v("cpkmon_alarm_unacknowledged_oldest_seconds", line="L3") >= 25 * 3600
    assert v("cpkmon_alarm_activations_total", line="L1", kind="control") == 14
    assert v("cpkmon_alarm_activations_total", line="L2", kind="grade") == 1
    assert v("cpkmon_alarm_time_to_ack_seconds_count") == 1
    assert abs(v("cpkmon_alarm_time_to_ack_seconds_sum") - 200) < 0.01
    assert v("cpkmon_alarm_time_to_ack_seconds_bucket", le="120.0") == 0
    assert v("cpkmon_alarm_time_to_ack_seconds_bucket", le="300.0") == 1


def test_the_api_never_creates_the_alarm_events_topic(session_broker: EmbeddedBroker) -> None:
    """Co-partitioned with the inputs: with no input topic, the API reads without it and creates nothing;
    a write then answers 404 (no alarm), the list is empty."""
    s = make_settings(session_broker.bootstrap)
    for name in (s.topic_line_status, s.topic_alerts, s.topic_acks, s.topic_specs):
        create_topic(s, name, PARTITIONS)
    with running(s) as c:
        assert c.get("/api/v1/alarms").json() == []
        assert post(c, BORE, "ack", {"cause": "man"}).status_code == 404
    admin = KafkaAdminClient(bootstrap_servers=s.bootstrap_servers())
    try:
        assert s.topic_alarm_events not in admin.list_topics()
    finally:
        admin.close()


def test_operator_events_are_dated_at_the_plant_clock_when_it_runs_ahead(
    settings: Settings, publish: Publisher
) -> None:
    """A simulator on a compressed clock writes event times ahead of the wall clock: an ack must not predate
    the activation it answers, and "shelve 10 minutes" means 10 minutes of plant time."""
    ahead = float(int(time.time()) + 6 * 3600)  # whole seconds: event times are kept to the ms
    send(publish, activate("L5", ahead, "bore"))
    send(publish, activate("L5", ahead + 1))
    bore, grade = alarm_id("L5", "control", "bore"), alarm_id("L5", "grade")
    with running(settings) as c:
        wait_until(lambda: len(alarms(c)) == 2)
        acked = post(c, bore, "ack", {"cause": "method"}).json()
        assert parse_ts(acked["ack"]["at"]) >= ahead + 1
        shelved = post(c, grade, "shelve", {"minutes": 10}).json()
        assert shelved["state"] == "shelved"
        assert ahead + 600 <= parse_ts(shelved["shelve"]["until"]) < ahead + 600 + 60


def test_audit_read_before_its_topic_exists_sees_the_later_records(
    settings: Settings, publish: Publisher
) -> None:
    """The dashboard reads ``GET /api/v1/audit`` for a line's history before anyone has written (the topic
    does not exist yet); the first alarm write creates it, and the next read must serve its record — not an
    empty page until the reader's metadata ages out."""
    send(publish, activate("L8", time.time() - 10, "od"))
    aid = alarm_id("L8", "control", "od")
    with running(settings) as c:
        wait_until(lambda: len(alarms(c)) == 1)
        assert all_pages(c, limit=10) == []  # no topic yet: nothing, and the reader exists now
        assert post(c, aid, "ack", {"cause": "machine"}).status_code == 200
        wait_until(lambda: [i["what"] for i in all_pages(c, limit=10)] == ["alarm.ack"], timeout=10)
