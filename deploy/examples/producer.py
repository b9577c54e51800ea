"""Example plant producer: one measurement, one inspection and one quality-cost event into cpkmon (SPEC §2).

    pip install kafka-python
    python deploy/examples/producer.py --bootstrap localhost:19092 --line L1

    # a secured cluster: the same variables as cpkmon itself (README, "Security (TLS and SASL)")
    CPKMON_KAFKA_SECURITY_PROTOCOL=SASL_SSL CPKMON_KAFKA_SSL_CAFILE=/etc/kafka/ca.pem \
    CPKMON_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 CPKMON_KAFKA_SASL_USERNAME=gauge-bridge \
    CPKMON_KAFKA_SASL_PASSWORD=... python deploy/examples/producer.py --bootstrap kafka-1:9093

Every message is keyed by its ``line`` (SPEC §2: order is kept per key and a worker needs no repartition),
serialized as UTF-8 JSON, and sent with ``acks="all"`` so that, on a three-broker cluster with
``min.insync.replicas=2``, an acknowledged event survives the loss of a broker. Producer retries are safe:
cpkmon de-duplicates by ``event_id``, so a redelivered event counts once. Use it as the template for an
MQTT / OPC UA bridge (see README.md, "Getting plant data into Kafka").
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

TOPIC_MEASUREMENTS = "cpkmon.measurements"
TOPIC_INSPECTIONS = "cpkmon.inspections"
TOPIC_QUALITY_COSTS = "cpkmon.quality-costs"


def rfc3339(ts: float) -> str:
    """Epoch seconds → ``2026-11-20T08:15:02.125Z`` (SPEC §2 accepts this or integer epoch milliseconds)."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def measurement(
    line: str, station: str, characteristic: str, value: float, subgroup: str, seq: int
) -> dict[str, Any]:
    return {
        "event_id": f"m-{line}-{station}-{characteristic}-{seq}",
        "ts": rfc3339(time.time()),
        "line": line,
        "station": station,
        "characteristic": characteristic,
        "value": value,
        "subgroup": subgroup,
    }


def inspection(line: str, station: str, unit_id: str, passed: bool) -> dict[str, Any]:
    return {
        "event_id": f"i-{line}-{station}-{unit_id}",
        "ts": int(time.time() * 1000),  # integer epoch milliseconds are accepted too
        "line": line,
        "station": station,
        "unit_id": unit_id,
        "passed": passed,
        "first_pass": True,
        "defects": 0 if passed else 1,
        "opportunities": 12,
    }


def quality_cost(
    line: str, day: str, internal: float, external: float, output_value: float
) -> dict[str, Any]:
    return {
        "event_id": f"q-{day}-{line}",
        "ts": f"{day}T23:59:59Z",
        "line": line,
        "internal_loss": internal,
        "external_loss": external,
        "output_value": output_value,
        "currency": "CNY",
    }


def security_from_env(env: dict[str, str] | None = None) -> dict[str, Any]:
    """kafka-python's TLS/SASL arguments from the ``CPKMON_KAFKA_*`` variables cpkmon reads (standalone: a
    bridge copied from this file does not import cpkmon). Unset variables keep kafka-python's defaults."""
    env = dict(os.environ if env is None else env)
    protocol = (env.get("CPKMON_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
    args: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        for var, arg in (
            ("CPKMON_KAFKA_SSL_CAFILE", "ssl_cafile"),
            ("CPKMON_KAFKA_SSL_CERTFILE", "ssl_certfile"),
            ("CPKMON_KAFKA_SSL_KEYFILE", "ssl_keyfile"),
        ):
            if env.get(var):
                args[arg] = env[var]
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        args["sasl_mechanism"] = (env.get("CPKMON_KAFKA_SASL_MECHANISM") or "PLAIN").upper()
        args["sasl_plain_username"] = env.get("CPKMON_KAFKA_SASL_USERNAME")
        args["sasl_plain_password"] = env.get("CPKMON_KAFKA_SASL_PASSWORD")
    return args


def make_producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        **security_from_env(),
        # a wrong CA or password fails within this bound instead of the 60 s default
        max_block_ms=15_000,
        key_serializer=lambda key: key.encode("utf-8"),
        value_serializer=lambda doc: json.dumps(doc, separators=(",", ":")).encode("utf-8"),
        acks="all",
        linger_ms=5,
        retries=10,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="localhost:19092", help="host:port[,host:port]")
    parser.add_argument("--line", default="L1")
    args = parser.parse_args(argv)

    producer = make_producer(args.bootstrap)
    line = args.line
    sent = [
        producer.send(
            TOPIC_MEASUREMENTS, key=line, value=measurement(line, "S10", "bore_diameter", 74.0012, "s-25", 1)
        ),
        producer.send(TOPIC_INSPECTIONS, key=line, value=inspection(line, "S20", "SN-0042", passed=True)),
        producer.send(
            TOPIC_QUALITY_COSTS,
            key=line,
            value=quality_cost(line, datetime.now(tz=UTC).date().isoformat(), 1250.0, 300.0, 98000.0),
        ),
    ]
    for future in sent:
        meta = future.get(timeout=30)
        print(f"{meta.topic}[{meta.partition}]@{meta.offset}")
    producer.flush()
    producer.close()


if __name__ == "__main__":
    main()
