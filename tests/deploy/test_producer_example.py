"""deploy/examples/producer.py: its events are valid SPEC §2 input for the worker's own decoder, and it really
produces them to a broker, keyed by line."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest
from deploy_helpers import DEPLOY

from cpkmon.broker import EmbeddedBroker

EXAMPLE = DEPLOY / "examples" / "producer.py"


@pytest.fixture(scope="module")
def producer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cpkmon_example_producer", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _events(producer: ModuleType) -> dict[str, dict[str, Any]]:
    return {
        "measurement": producer.measurement("L1", "S10", "bore_diameter", 74.0012, "s-25", 1),
        "inspection": producer.inspection("L1", "S20", "SN-0042", passed=True),
        "quality_cost": producer.quality_cost("L1", "2026-11-20", 1250.0, 300.0, 98000.0),
    }


def test_events_have_the_spec_shapes(producer: ModuleType) -> None:
    ev = _events(producer)
    assert set(ev["measurement"]) == {
        "event_id",
        "ts",
        "line",
        "station",
        "characteristic",
        "value",
        "subgroup",
    }
    assert ev["measurement"]["ts"].endswith("Z")
    assert {
        "event_id",
        "ts",
        "line",
        "station",
        "unit_id",
        "passed",
        "first_pass",
        "defects",
        "opportunities",
    } == set(ev["inspection"])
    assert isinstance(ev["inspection"]["ts"], int)
    assert set(ev["quality_cost"]) == {
        "event_id", "ts", "line", "internal_loss", "external_loss", "output_value", "currency",
    }  # fmt: skip


def test_events_pass_the_workers_decoder(producer: ModuleType) -> None:
    try:
        from cpkmon.stream.events import decode
    except ModuleNotFoundError as exc:
        pytest.skip(f"the worker's decoder is not there yet ({exc})")
    kinds = {"measurement": "measurement", "inspection": "inspection", "quality_cost": "quality_cost"}
    for name, doc in _events(producer).items():
        good, bad = decode(kinds[name], json.dumps(doc).encode(), 1 << 20)  # type: ignore[arg-type]
        assert bad == [] and len(good) == 1, (name, bad)


@pytest.mark.broker
def test_produces_keyed_by_line_to_a_real_broker(
    producer: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    from kafka import KafkaConsumer

    with EmbeddedBroker() as broker:
        producer.main(["--bootstrap", broker.bootstrap, "--line", "L7"])
        printed = capsys.readouterr().out.split()
        assert len(printed) == 3
        topics = [producer.TOPIC_MEASUREMENTS, producer.TOPIC_INSPECTIONS, producer.TOPIC_QUALITY_COSTS]
        consumer = KafkaConsumer(
            *topics,
            bootstrap_servers=[broker.bootstrap],
            auto_offset_reset="earliest",
            consumer_timeout_ms=5000,
            group_id=None,
        )
        try:
            records = {}
            for rec in consumer:
                records[rec.topic] = rec
                if len(records) == 3:
                    break
        finally:
            consumer.close()
    assert set(records) == set(topics)
    for rec in records.values():
        assert rec.key == b"L7"
        assert json.loads(rec.value)["line"] == "L7"
