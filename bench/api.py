"""API benchmark (SPEC §9): line detail latency at a paced rate, /metrics render time, view catch-up time.

    python bench/api.py [--lines 1000] [--chars 10] [--rate 200] [--seconds 10] [--restart-records 100000]

Starts an embedded broker and ``cpkmon api`` in a subprocess (so the load generator does not share its GIL),
loads ``lines`` status documents with ``chars`` characteristics each (50 chart points per characteristic, as
the worker publishes them), then:
- ``GET /api/v1/lines/{line}`` (random line) at a fixed ``rate`` from a pacing thread, for ``seconds``:
  latency p50/p99/max measured from the scheduled send time (no coordinated omission) and from the actual one;
- ``GET /metrics`` over HTTP (≈ 50 000 series for 1 000 × 10), uncompressed text and as Prometheus 2 scrapes
  (OpenMetrics, gzip), and first, in process, ``generate_latest`` of a registry holding 200 × 10 (≈ 10 000
  series, SPEC §9's size);
- a restart: ``restart-records`` more status records, then the time from API start to ``/healthz`` and to
  ``/readyz`` 200 (SPEC §9: caught up in ≤ 5 s per 100 000 status records).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from kafka import KafkaProducer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "api"))

from statusdocs import status  # noqa: E402

from cpkmon.broker import EmbeddedBroker, free_port  # noqa: E402


def start_api(bootstrap: str, port: int) -> tuple[subprocess.Popen[bytes], float]:
    env = dict(
        os.environ, CPKMON_BROKER=f"kafka://{bootstrap}", CPKMON_API_PORT=str(port), CPKMON_PARTITIONS="8"
    )
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpkmon.cli", "api", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return proc, t0


def wait_for(base: str, path: str, t0: float, timeout: float = 120) -> float:
    """Seconds from ``t0`` until ``path`` answers 200."""
    while time.monotonic() - t0 < timeout:
        try:
            if httpx.get(base + path, timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{path} not 200 within {timeout} s")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def paced_load(
    base: str, lines: list[str], rate: float, seconds: float
) -> tuple[list[float], list[float], int]:
    """One client thread sending at fixed instants; latency from the schedule and from the actual send."""
    n = int(rate * seconds)
    sched_lat: list[float] = []
    send_lat: list[float] = []
    errors = 0
    rnd = random.Random(1)
    with httpx.Client(base_url=base, timeout=5) as client:
        client.get("/api/v1/lines/" + lines[0])  # connect
        start = time.perf_counter() + 0.1
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            r = client.get("/api/v1/lines/" + rnd.choice(lines))
            done = time.perf_counter()
            if r.status_code != 200:
                errors += 1
            sched_lat.append(done - due)
            send_lat.append(done - sent)
    return sched_lat, send_lat, errors


PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
SCRAPES = {  # label -> request headers
    "text 0.0.4, uncompressed": {"Accept-Encoding": "identity"},
    "as Prometheus 2 scrapes (OpenMetrics, gzip)": {"Accept": PROMETHEUS_2_ACCEPT, "Accept-Encoding": "gzip"},
}


def render_in_process(lines: int, chars: int) -> None:
    """prometheus_client's ``generate_latest`` of an API registry whose view holds ``lines`` documents (no
    HTTP, no broker): the formatting cost alone, at the size SPEC §9 names (10 000 series)."""
    from aiokafka import ConsumerRecord, TopicPartition
    from prometheus_client import generate_latest

    from cpkmon.api.metrics import build_registry
    from cpkmon.api.view import View
    from cpkmon.settings import Settings

    view = View(Settings())
    records = []
    for i in range(lines):
        doc = status(f"line-{i:04d}", chars=chars, stations=3, points=50, internal=0.01, external=0.002)
        raw = orjson.dumps(doc)
        records.append(
            ConsumerRecord("cpkmon.line-status", 0, i, 0, 0, doc["line"].encode(), raw, None, 0, 0, ())
        )
    view._apply({TopicPartition("cpkmon.line-status", 0): records})
    registry = build_registry(view)
    times, text = [], b""
    for _ in range(10):
        t = time.perf_counter()
        text = generate_latest(registry)
        times.append(time.perf_counter() - t)
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    print(
        f"in-process generate_latest, {lines} lines × {chars} characteristics: {series} series: "
        f"median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--chars", type=int, default=10)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--restart-records", type=int, default=100_000)
    args = ap.parse_args()

    render_in_process(200, 10)  # SPEC §9's size: ≈ 10 000 series
    with EmbeddedBroker() as broker:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc, t0 = start_api(broker.bootstrap, port)
        try:
            wait_for(base, "/readyz", t0)
            producer = KafkaProducer(
                bootstrap_servers=broker.bootstrap,
                linger_ms=5,
                batch_size=1 << 20,
                max_request_size=8 << 20,
                acks="all",
            )
            names = [f"site1.area{i % 10}.line{i:04d}" for i in range(args.lines)]
            t = time.monotonic()
            size = 0
            for i, name in enumerate(names):
                doc = orjson.dumps(
                    status(
                        name,
                        chars=args.chars,
                        stations=3,
                        points=50,
                        internal=0.01,
                        external=0.002,
                        updated=1_795_162_502.125 + i,
                    )
                )
                size += len(doc)
                producer.send("cpkmon.line-status", key=name.encode(), value=doc)
            producer.flush()
            print(
                f"loaded {args.lines} lines × {args.chars} characteristics "
                f"({size / args.lines / 1024:.1f} KiB per document) in {time.monotonic() - t:.2f} s"
            )
            while len(httpx.get(base + "/api/v1/lines").json()) < args.lines:
                time.sleep(0.1)

            sched, sent, errors = paced_load(base, names, args.rate, args.seconds)
            ms = 1000
            print(
                f"GET /api/v1/lines/{{line}} at {args.rate:.0f} req/s for {args.seconds:.0f} s "
                f"({len(sched)} requests, {errors} errors):"
            )
            print(
                f"  from schedule: p50 {pct(sched, 0.5) * ms:.2f} ms  p99 {pct(sched, 0.99) * ms:.2f} ms  "
                f"max {max(sched) * ms:.2f} ms"
            )
            print(
                f"  from send:     p50 {pct(sent, 0.5) * ms:.2f} ms  p99 {pct(sent, 0.99) * ms:.2f} ms  "
                f"mean {statistics.fmean(sent) * ms:.2f} ms"
            )

            with httpx.Client(base_url=base, timeout=30) as client:
                for label, headers in SCRAPES.items():
                    times, body, wire = [], b"", 0
                    for _ in range(10):
                        t = time.perf_counter()
                        r = client.get("/metrics", headers=headers)
                        body = r.content
                        times.append(time.perf_counter() - t)
                        wire = r.num_bytes_downloaded
                    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
                    print(
                        f"GET /metrics, {label}: {series} series, {len(body) / 1e6:.1f} MB "
                        f"({wire / 1e6:.2f} MB on the wire): median {statistics.median(times) * ms:.1f} ms, "
                        f"max {max(times) * ms:.1f} ms"
                    )

            # restart: more records, then time to ready
            extra = args.restart_records
            t = time.monotonic()
            variants = [
                [
                    orjson.dumps(status(n, chars=2, stations=2, points=5, updated=1_795_170_000.0 + v))
                    for n in names
                ]
                for v in range(5)
            ]  # ≈ 3.5 KiB each; consecutive records of a line always differ
            for i in range(extra):
                j = i % len(names)
                value = variants[(i // len(names)) % len(variants)][j]
                producer.send("cpkmon.line-status", key=names[j].encode(), value=value)
            producer.flush()
            produce_s = time.monotonic() - t
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        total = args.lines + extra
        proc, t0 = start_api(broker.bootstrap, port)
        try:
            up = wait_for(base, "/healthz", t0)
            ready = wait_for(base, "/readyz", t0)
            lines_seen = len(httpx.get(base + "/api/v1/lines").json())
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        print(
            f"restart over {total} status records ({extra} produced in {produce_s:.1f} s): process start to "
            f"/healthz {up:.2f} s, to /readyz 200 {ready:.2f} s ({lines_seen} lines); catch-up alone "
            f"{ready - up:.2f} s → {(ready - up) / total * 100_000:.1f} s per 100 000 records"
        )


if __name__ == "__main__":
    main()
