"""The worker writes its own audit trail (issue 12): a real worker on the embedded broker records the limits
it froze at the end of Phase I and the activation and clear of an out-of-control episode in the audit topic,
chain ``worker:L1``, while the API's spec changes interleave in chain ``api``; ``cpkmon audit verify`` accepts
the topic and, in a copy with one worker record removed, exits 1 naming the record's chain, offset and seq.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from cpkmon.alerts.alarms import alarm_id
from cpkmon.alerts.audit import Stored, check, record_hash
from cpkmon.broker import EmbeddedBroker
from tests.stream.harness import Feed, base_env, read_topic, running, start_api, start_worker, wait_until
from tests.stream.test_alarm_events import EPISODE, _values

AUDIT = "cpkmon.audit"
KEY = "audit-test-key"


def _put_spec(api_url: str, line: str, characteristic: str, usl: float) -> None:
    """A spec change through the API: one record of chain ``api``."""
    req = urllib.request.Request(
        f"{api_url}/api/v1/specs/{line}/{characteristic}",
        data=json.dumps({"lsl": 1.0, "usl": usl}).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200


def _records(bootstrap: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in read_topic(bootstrap, AUDIT)]


def _verify(bootstrap: str, topic: str) -> subprocess.CompletedProcess[str]:
    """``cpkmon audit verify`` as an operator runs it: a separate process, its exit status."""
    return subprocess.run(
        [sys.executable, "-m", "cpkmon.cli", "audit", "verify", "--broker", f"kafka://{bootstrap}",
         "--topic", topic],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("CPKMON_")},
    )


def _copy(bootstrap: str, name: str, values: list[bytes]) -> None:
    """A fresh one-partition topic holding ``values`` in order (offsets 0, 1, 2 …)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in values:
        producer.send(name, value, key=b"copy", partition=0)
    producer.flush()
    producer.close()


def test_a_worker_audits_its_limits_and_alarm_transitions_beside_the_api(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    docs = _values(EPISODE)
    first, second = Feed(partitions=8), Feed(partitions=8)
    first.spec(line="L1", characteristic="bore", lsl=9.0, usl=11.0, subgroup_size=4)
    for doc in docs[:40]:  # through the activation (the 9th subgroup closes at the 37th value)
        first.add("measurement", doc)
    for doc in docs[40:]:  # the rest: the clear
        second.add("measurement", doc)
    env = base_env(broker.bootstrap, tmp_path, CPKMON_WINDOW_SUBGROUPS="8", CPKMON_MIN_SUBGROUPS="5",
                   CPKMON_RUN_RULES="1", CPKMON_ALARM_CLEAR_SUBGROUPS="3", CPKMON_CHART_POINTS="20",
                   CPKMON_API_KEYS=f"ops:{KEY}")
    worker = start_worker(env, tmp_path)
    with running(worker):
        api = start_api(env, tmp_path)
        with running(api):
            url = api.url("")
            _put_spec(url, "L2", "x", 5.0)

            def worker_records(n: int) -> Any:
                def done() -> list[dict[str, Any]] | None:
                    recs = _records(broker.bootstrap)
                    return recs if sum(1 for r in recs if r.get("chain") == "worker:L1") >= n else None
                return done

            first.produce(broker.bootstrap)
            wait_until(worker_records(2), 60, what="limits.freeze and alarm.activate in the audit topic")
            _put_spec(url, "L2", "x", 6.0)  # between the worker's records
            second.produce(broker.bootstrap)
            wait_until(worker_records(3), 60, what="alarm.clear in the audit topic")
            _put_spec(url, "L2", "x", 7.0)

            def six() -> list[Any] | None:
                recs = read_topic(broker.bootstrap, AUDIT)
                return recs if len(recs) >= 6 else None

            stored = wait_until(six, 30, what="the six records")
            served = api.get("/api/v1/audit?limit=100")["items"]

    records = [orjson.loads(r.value) for r in stored]
    chains = [r.get("chain", "api") for r in records]
    # the API's and the worker's records interleave in the one partition
    assert chains == ["api", "worker:L1", "worker:L1", "api", "worker:L1", "api"]
    work = [r for r in records if r.get("chain") == "worker:L1"]
    assert [(r["what"], r["seq"], r["who"]) for r in work] == [
        ("limits.freeze", 1, "worker"), ("alarm.activate", 2, "worker"), ("alarm.clear", 3, "worker"),
    ]
    freeze, act, clear = work
    assert freeze["subject"] == "L1/bore" and freeze["before"] is None and freeze["after"]["ucl"] > 10.0
    assert act["subject"] == clear["subject"] == alarm_id("L1", "control", "bore")
    events = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "cpkmon.alarm-events")]
    assert [r["after"]["event_id"] for r in (act, clear)] == [e["event_id"] for e in events]
    api_recs = [r for r in records if "chain" not in r]
    assert [r["seq"] for r in api_recs] == [1, 2, 3]  # the API continued its own chain, not the worker's
    assert api_recs[1]["prev_hash"] == api_recs[0]["hash"] and api_recs[2]["prev_hash"] == api_recs[1]["hash"]
    assert check([Stored(r.partition, r.offset, r.value) for r in stored]).problems == []
    # GET /api/v1/audit serves both chains exactly as stored: every hash recomputes
    assert served == records and all(item["hash"] == record_hash(item) for item in served)

    ok = _verify(broker.bootstrap, AUDIT)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact: 6 record(s)" in ok.stdout
    assert f"partition 0 chain api head: seq 3 hash {api_recs[2]['hash']}" in ok.stdout
    assert f"partition 0 chain worker:L1 head: seq 3 hash {clear['hash']}" in ok.stdout

    # the activation removed from a copy of the topic: named in its chain
    values = [r.value for r in stored]
    gone = chains.index("worker:L1") + 1  # offset 2: worker seq 2
    _copy(broker.bootstrap, f"{AUDIT}-removed", values[:gone] + values[gone + 1 :])
    bad = _verify(broker.bootstrap, f"{AUDIT}-removed")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert bad.stdout.splitlines() == [
        "partition 0 chain worker:L1 offset 3 seq 3: removed: seq 2 missing between offset 1 (seq 1) and "
        "offset 3 (seq 3)"
    ]
    assert "BROKEN: 1 problem(s) in 5 record(s)" in bad.stderr
