"""``cpkmon simulate``: a simulated plant publishing to the input topics (see :mod:`cpkmon.simulate`)."""

from __future__ import annotations

import time

import orjson
import typer

from cpkmon.kafka_security import kafka_python_kwargs, require_broker
from cpkmon.settings import get_settings
from cpkmon.simulate import (
    DEFAULT_HISTORY_S,
    DEFAULT_TIME_SCALE,
    SHIFT_AFTER_S,
    SHIFT_S,
    SUBGROUP_INTERVAL_S,
    TAKT_S,
    PlantClock,
    build_plant,
    cost_message,
    expected_events_per_subgroup,
    subgroup_messages,
)
from cpkmon.stream.specs import spec_key
from cpkmon.topics import ensure_topics_sync


def simulate(
    lines: int = typer.Option(
        4, min=1, help="number of lines (L2 degrades, L3 goes out of control when ≥ 3)"
    ),
    rate: float = typer.Option(
        400.0, min=0, help="at most this many events per second in total (0 = as fast as possible)"
    ),
    duration: float = typer.Option(0.0, min=0, help="seconds to run (0 = until interrupted)"),
    seed: int = typer.Option(7, help="random seed"),
    time_scale: float = typer.Option(
        DEFAULT_TIME_SCALE,
        "--time-scale",
        min=0,
        help="event time runs N× faster than the wall clock (60: a plant hour per minute; 0 = no clock, "
        "as fast as --rate allows)",
    ),
    history: float = typer.Option(
        DEFAULT_HISTORY_S / 3600,
        "--history",
        min=0,
        help="hours of plant history back-filled (as fast as --rate allows) before the live clock starts",
    ),
) -> None:
    """Publish specs, then measurements, inspections and quality costs of a simulated plant.

    Sampling plan, in event time: one unit per line a minute, gauged and inspected at every station; one
    subgroup of five per characteristic every 5 minutes; a quality-cost report per 8-hour shift.
    """
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
    clock = PlantClock(time.time(), time_scale, history * 3600)
    # L3's new material lot arrives a quarter of an hour (event time) into the live demo
    plant = build_plant(lines, seed, shift_at=clock.subgroup_at(SHIFT_AFTER_S))
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
    per_shift = round(SHIFT_S / SUBGROUP_INTERVAL_S)
    takt_ms = int(TAKT_S * 1000)
    typer.echo(
        f"simulating {lines} lines ({', '.join(f'{m.line}:{m.scenario}' for m in plant)}) on "
        f"{','.join(settings.bootstrap_servers())}: {clock.history_subgroups} subgroups of history "
        f"({history:g} h) at ≤ {rate:.0f} events/s, then event time at {time_scale:g}× the wall clock"
    )
    start = time.monotonic()
    paced = time.time()  # the rate's schedule (wall clock, like the plant clock)
    rounds = 0
    sent = 0
    try:
        while duration <= 0 or time.monotonic() - start < duration:
            delay = max(clock.due_s(rounds), paced) - time.time()
            if delay > 0:
                time.sleep(min(delay, 0.5))  # short naps: --duration and Ctrl-C are honoured
                continue
            event_ms = clock.subgroup_ms(rounds)
            for model in plant:
                for kind, msg in subgroup_messages(model, event_ms, takt_ms):
                    producer.send(topics[kind], orjson.dumps(msg), key=model.line.encode())
                    sent += len(msg) if isinstance(msg, list) else 1
                if model.subgroups % per_shift == 0:  # the shift closes with this subgroup
                    end_ms = clock.subgroup_ms(rounds + 1) - 1
                    cost = cost_message(model, model.subgroups // per_shift, end_ms)
                    producer.send(settings.topic_quality_costs, orjson.dumps(cost), key=model.line.encode())
                    sent += 1
            rounds += 1
            paced = max(paced, time.time() - 1.0) + interval  # no burst after a wait for the clock
    except KeyboardInterrupt:
        pass
    finally:
        producer.flush()
        producer.close()
        typer.echo(f"sent {sent} events ({rounds} subgroups per line) in {time.monotonic() - start:.1f} s")
