"""The spec barrier on the embedded broker: a spec produced by the time its values are seen is honoured.

The worker's spec follower and its input consumer fetch independently, so the measurement can be applied
before the follower has read the spec. The machine then returns a hold; the worker waits until the follower
has read the specs topic to its end (``cpkmon.catchup.EndRounds``: two empty rounds at the high watermark)
and releases it. Only a characteristic whose spec is still missing then is dead-lettered (``no_spec``).
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from cpkmon.broker import EmbeddedBroker
from cpkmon.stream.specs import spec_key
from tests.stream.harness import base_env, read_topic, running, start_worker, wait_until


@pytest.mark.broker
def test_spec_racing_its_values_is_waited_for(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = base_env(broker.bootstrap, tmp_path, CPKMON_SPEC_HOLD_SECONDS="5")
    worker = start_worker(env, tmp_path)
    with running(worker):
        wait_until(lambda: worker.get("/readyz")["ready"], 30, what="worker assigned")
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0, acks="all")
        chars = [f"late{i}" for i in range(6)]
        for i, char in enumerate(chars):
            for k in range(5):
                doc = {"event_id": f"{char}-{k}", "ts": 1_795_000_000_000 + i * 10 + k, "line": "SB1",
                       "characteristic": char, "value": 1.0 + k * 0.01}
                producer.send("cpkmon.measurements", orjson.dumps(doc), key=b"SB1")
            # the spec races its values (sent in the same instant, after them): both are produced before
            # the worker can see either, so the barrier must find the spec
            spec = {"line": "SB1", "characteristic": char, "lsl": 0.0, "usl": 2.0, "subgroup_size": 5}
            producer.send("cpkmon.specs", orjson.dumps(spec), key=spec_key("SB1", char).encode())
            producer.flush()
            time.sleep(0.3)
        never = {"event_id": "never-1", "ts": 1_795_000_000_100, "line": "SB1", "characteristic": "never",
                 "value": 1.0}
        t0 = time.monotonic()
        producer.send("cpkmon.measurements", orjson.dumps(never), key=b"SB1")
        producer.flush()
        producer.close()

        def settled() -> dict[str, float] | None:
            ev = worker.get("/healthz")["events"]
            return ev if ev.get("cpkmon.measurements:accepted", 0) + ev.get(
                "cpkmon.measurements:dead_letter", 0
            ) >= len(chars) * 5 + 1 else None

        events = wait_until(settled, 30, what="every value applied or dead-lettered")
        settled_after = time.monotonic() - t0
    assert events.get("cpkmon.measurements:accepted") == len(chars) * 5, events
    assert events.get("cpkmon.measurements:dead_letter") == 1, events
    dead = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "cpkmon.dead-letter")]
    assert [d["reason"].split(":")[0] for d in dead] == ["no_spec"]
    assert dead[0]["payload"]["characteristic"] == "never"
    assert settled_after < 5 + 10  # the barrier ends on the follower's end rounds, bounded by the hold time
