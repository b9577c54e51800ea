"""``cpkmon simulate``: a simulated plant publishing to the input topics (see :mod:`cpkmon.simulate`)."""

from __future__ import annotations

import time

import orjson
import typer

from cpkmon.kafka_security import kafka_python_kwargs, require_broker
from cpkmon.settings import get_settings
from cpkmon.simulate import build_plant, cost_message, expected_events_per_subgroup, subgroup_messages
from cpkmon.stream.specs import spec_key
from cpkmon.topics import ensure_topics_sync


def simulate(
    lines: int = typer.Option(
        4, min=1, help="number of lines (L2 degrades, L3 goes out of control when ≥ 3)"
    ),
    rate: float = typer.Option(400.0, min=0, help="events per second in total (0 = as fast as possible)"),
    duration: float = typer.Option(0.0, min=0, help="seconds to run (0 = until interrupted)"),
    seed: int = typer.Option(7, help="random seed"),
    cost_every: int = typer.Option(20, min=1, help="a quality-cost report every N subgroups per line"),
) -> None:
    """Publish specs, then measurements, inspections and quality costs of a simulated plant."""
    from kafka import KafkaProducer

    settings = get_settings()
    require_broker(settings)
    ensure_topics_sync(settings)
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(),
        **kafka_python_kwargs(settings),
        linger_ms=5,
        acks="all",
        batch_size=256 * 1024,
    )
    plant = build_plant(lines, seed)
    for model in plant:
        for spec in model.specs():
            producer.send(
                settings.topic_specs,
                orjson.dumps(spec),
                key=spec_key(spec["line"], spec["characteristic"]).encode(),
            )
    producer.flush()
    topics = {"measurement": settings.topic_measurements, "inspection": settings.topic_inspections}
    per_round = sum(expected_events_per_subgroup(m) for m in plant)
    interval = per_round / rate if rate > 0 else 0.0
    typer.echo(
        f"simulating {lines} lines ({', '.join(f'{m.line}:{m.scenario}' for m in plant)}) "
        f"at ~{rate:.0f} events/s on {','.join(settings.bootstrap_servers())}"
    )
    start = time.monotonic()
    rounds = 0
    sent = 0
    try:
        while duration <= 0 or time.monotonic() - start < duration:
            now_ms = int(time.time() * 1000)
            for model in plant:
                for kind, msg in subgroup_messages(model, now_ms):
                    producer.send(topics[kind], orjson.dumps(msg), key=model.line.encode())
                    sent += len(msg) if isinstance(msg, list) else 1
                if model.subgroups % cost_every == 0:
                    cost = cost_message(model, model.subgroups // cost_every, now_ms)
                    producer.send(settings.topic_quality_costs, orjson.dumps(cost), key=model.line.encode())
                    sent += 1
            rounds += 1
            if interval:
                delay = start + rounds * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
    except KeyboardInterrupt:
        pass
    finally:
        producer.flush()
        producer.close()
        typer.echo(f"sent {sent} events in {time.monotonic() - start:.1f} s")
