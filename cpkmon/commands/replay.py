"""``cpkmon replay FILE``: load CSV/JSONL history into the input topics, keyed by line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import orjson
import typer

from cpkmon.kafka_security import kafka_python_kwargs, require_broker
from cpkmon.settings import Settings, get_settings
from cpkmon.stream.specs import spec_key
from cpkmon.topics import ensure_topics_sync

_INT_FIELDS = {"defects", "opportunities"}
_FLOAT_FIELDS = {
    "value",
    "internal_loss",
    "external_loss",
    "output_value",
    "lsl",
    "usl",
    "target",
    "center",
    "sigma",
}
_BOOL_FIELDS = {"passed", "first_pass"}


def _topic_for(doc: dict[str, Any], settings: Settings) -> str:
    """Which input topic an event belongs to, by its fields (SPEC §2)."""
    if "passed" in doc:
        return settings.topic_inspections
    if "output_value" in doc:
        return settings.topic_quality_costs
    if "event_id" not in doc and ("lsl" in doc or "usl" in doc):
        return settings.topic_specs
    return settings.topic_measurements


def _csv_row(row: dict[str, str]) -> dict[str, Any]:
    """CSV cells are text: numbers and booleans are converted by column, empty cells dropped."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k is None or v is None or v == "":
            continue
        if k in _FLOAT_FIELDS:
            out[k] = float(v)
        elif k in _INT_FIELDS:
            out[k] = int(v)
        elif k in _BOOL_FIELDS:
            out[k] = v.strip().lower() in ("1", "true", "yes", "y", "t")
        elif (k == "ts" and v.isdigit()) or k == "subgroup_size":
            out[k] = int(v)
        else:
            out[k] = v
    return out


def read_events(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        docs = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    docs.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not JSON ({exc})") from exc
        return docs
    with path.open(newline="", encoding="utf-8") as fh:
        return [_csv_row(row) for row in csv.DictReader(fh)]


def replay(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    topic: str = typer.Option("", help="force one topic instead of choosing by the events' fields"),
) -> None:
    """Publish every event of FILE (CSV with a header, or JSON lines) to its input topic, keyed by line."""
    from kafka import KafkaProducer

    settings = get_settings()
    try:
        docs = read_events(file)
    except (ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    require_broker(settings)
    ensure_topics_sync(settings)
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(),
        **kafka_python_kwargs(settings),
        linger_ms=5,
        acks="all",
    )
    counts: dict[str, int] = {}
    for doc in docs:
        t = topic or _topic_for(doc, settings)
        if t == settings.topic_specs:
            key = spec_key(str(doc.get("line")), str(doc.get("characteristic")))
        else:
            key = str(doc.get("line", ""))
        producer.send(t, orjson.dumps(doc), key=key.encode() if key else None)
        counts[t] = counts.get(t, 0) + 1
    producer.flush()
    producer.close()
    for t, n in sorted(counts.items()):
        typer.echo(f"{t}: {n}")
