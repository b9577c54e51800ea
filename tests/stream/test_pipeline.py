"""End to end on a real Tansu broker: events in, status and alerts out, equal to the core's batch answer."""

from __future__ import annotations

import math
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cpkmon.broker import EmbeddedBroker
from tests.stream.harness import (
    Feed,
    base_env,
    batch_answer,
    comparable,
    latest_status,
    read_topic,
    running,
    start_worker,
    totals,
    wait_until,
)
from tests.stream.plantdata import mixed_plant

pytestmark = pytest.mark.broker


def assert_close(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats to 1e-9 relative (the SPEC §4 streaming = batch tolerance)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {a} != {b}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: len {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_status_and_alerts_equal_the_batch_answer(broker: EmbeddedBroker, tmp_path: Path) -> None:
    feed = Feed(partitions=8)
    mixed_plant(feed)
    expected, batch_out = batch_answer(feed)
    want_values, want_units = totals(expected.values())
    env = base_env(broker.bootstrap, tmp_path)
    worker = start_worker(env, tmp_path)
    with running(worker):
        feed.produce(broker.bootstrap)

        def caught_up() -> dict[str, dict[str, Any]] | None:
            docs = latest_status(broker.bootstrap)
            if set(docs) == set(expected) and totals(docs.values()) == (want_values, want_units):
                return docs
            return None

        docs = wait_until(caught_up, 60, what="status of every line with every event applied")
        health = worker.get("/healthz")
        with urllib.request.urlopen(worker.url("/metrics"), timeout=5) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            exposition = r.read().decode()
    assert want_values == 1200 and want_units == 600
    for line, doc in docs.items():
        assert_close(comparable(doc), comparable(expected[line]), line)
        assert doc["evaluated_grade"] == expected[line]["evaluated_grade"], line

    alerts = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "cpkmon.alerts")]
    by_id = {a["alert_id"]: a for a in alerts}
    degraded_d4 = [a for a in by_id.values() if a["line"] == "D4" and a["type"] == "grade_degraded"]
    assert len(degraded_d4) == 1, degraded_d4
    assert degraded_d4[0]["from_grade"]["level"] == 3 and degraded_d4[0]["to_grade"]["level"] == 2
    assert degraded_d4[0]["limiting"]["criterion"] == "cpk"
    assert degraded_d4[0]["limiting"]["subject"] == "torque"
    assert degraded_d4[0]["limiting"]["threshold"] == 1.33
    # Out-of-control alerts depend only on one characteristic's own sequence: identical to the batch's.
    ooc = {a["alert_id"]: a for a in by_id.values() if a["type"] == "out_of_control"}
    batch_ooc = {a["alert_id"]: a for a in batch_out.alerts if a["type"] == "out_of_control"}
    assert set(ooc) == set(batch_ooc)
    for aid, a in ooc.items():
        assert orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            {**batch_ooc[aid], "detected_at": a["detected_at"]}, option=orjson.OPT_SORT_KEYS
        )
    samples = {
        (smp.name, tuple(sorted(smp.labels.items()))): smp.value
        for fam in text_string_to_metric_families(exposition)
        for smp in fam.samples
    }
    accepted = (("outcome", "accepted"), ("topic", "cpkmon.measurements"))
    assert samples[("cpkmon_events_total", accepted)] == 1200
    assert any(name == "cpkmon_consumer_lag" for name, _ in samples)
    assert health["events"]["cpkmon.measurements:accepted"] == 1200
    assert health["events"]["cpkmon.inspections:accepted"] == 600
    assert health["events"]["cpkmon.quality-costs:accepted"] == 8


def test_misrouted_and_unkeyed_messages_are_rekeyed_once(broker: EmbeddedBroker, tmp_path: Path) -> None:
    feed = Feed(partitions=8)
    feed.spec(line="R1", characteristic="x", lsl=0.0, usl=10.0, subgroup_size=5)
    for i in range(100):
        doc = {
            "event_id": f"r-{i}",
            "ts": 1_795_000_000_000 + i,
            "line": "R1",
            "characteristic": "x",
            "value": 5.0 + (i % 7) * 0.1,
        }
        if i % 3 == 0:
            feed.add("measurement", doc, key="not-the-line")
        elif i % 3 == 1:
            feed.messages.append(("cpkmon.measurements", None, orjson.dumps(doc), 0 if i % 2 else 5))
        else:
            feed.add("measurement", doc)
    expected, _ = batch_answer(feed)
    worker = start_worker(base_env(broker.bootstrap, tmp_path), tmp_path)
    with running(worker):
        feed.produce(broker.bootstrap)
        doc = wait_until(
            lambda: (
                (d := latest_status(broker.bootstrap).get("R1"))
                and d["characteristics"][0]["values_total"] == 100
                and d
            ),
            60,
            what="R1 with 100 values",
        )
        events = wait_until(
            lambda: (e := worker.get("/healthz")["events"]).get("cpkmon.measurements:accepted") == 100 and e,
            20,
            what="worker counters",
        )
    # SPEC §2: a re-keyed message loses its order, so subgroups (and σ_within) may differ from the batch's;
    # what does not depend on order must be equal: every value once, and the window's overall statistics.
    got, want = doc["characteristics"][0], expected["R1"]["characteristics"][0]
    for k in ("values_total", "n", "mean", "sigma_overall", "pp", "ppk"):
        assert_close(got[k], want[k], k)
    assert events.get("cpkmon.measurements:rekeyed", 0) > 0
    assert events.get("cpkmon.measurements:duplicate", 0) == 0
