"""Running real workers and APIs against a real broker, and computing the batch answer to compare with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer

from cpkmon.broker import free_port
from cpkmon.capability.options import Options
from cpkmon.settings import Settings, core_options
from cpkmon.stream.checkpoint import read_to_high_watermark
from cpkmon.stream.processor import Outputs, PartitionProcessor, owner_partition
from cpkmon.stream.specs import SpecRegistry, spec_key

TOPIC = {
    "measurement": "cpkmon.measurements",
    "inspection": "cpkmon.inspections",
    "quality_cost": "cpkmon.quality-costs",
}


def base_env(bootstrap: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPKMON_")}
    env.update(
        CPKMON_BROKER=f"kafka://{bootstrap}",
        CPKMON_DATA_DIR=str(data_dir),
        CPKMON_SESSION_TIMEOUT_MS="2000",
        CPKMON_HEARTBEAT_INTERVAL_MS="500",
        CPKMON_CHECKPOINT_INTERVAL_MS="300",
        CPKMON_STATUS_INTERVAL_MS="100",
    )
    env.update(extra)
    return env


def http_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


@dataclass
class Proc:
    """A cpkmon child process (its own session, so kill -9 takes it whole)."""

    args: list[str]
    env: dict[str, str]
    port: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        fh = self.log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "cpkmon.cli", *self.args],
            env=self.env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> Any:
        return http_json(self.url(path))

    def wait_ready(self, timeout: float = 30.0, path: str = "/readyz") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.args} exited {self.popen.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            with contextlib.suppress(OSError, urllib.error.HTTPError, ValueError):
                self.get(path)
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.args} not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill9()


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> Proc:
    port = free_port()
    e = dict(env, CPKMON_WORKER_PORT=str(port), CPKMON_DATA_DIR=str(log_dir / name))
    proc = Proc(["worker", "--loglevel", "info"], e, port, log_dir / f"{name}.log").start()
    proc.wait_ready(path="/healthz")
    return proc


def start_api(env: dict[str, str], log_dir: Path, name: str = "api") -> Proc:
    port = free_port()
    e = dict(env, CPKMON_API_PORT=str(port))
    proc = Proc(["api", "--log-level", "warning"], e, port, log_dir / f"{name}.log").start()
    proc.wait_ready()
    return proc


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            p.stop()


# ----------------------------------------------------------------------------------------------- producing
@dataclass
class Feed:
    """Messages in the order they are produced, with the partition each lands in."""

    partitions: int
    specs: list[dict[str, Any]] = field(default_factory=list)
    messages: list[tuple[str, str | None, bytes | None, int]] = field(
        default_factory=list
    )  # topic,key,value,p

    def spec(self, **spec: Any) -> None:
        self.specs.append(spec)

    def add(self, kind: str, doc: Any, key: str | None = None, raw: bytes | None = None) -> None:
        """``key`` defaults to the line (SPEC §2); ``raw`` sends bytes as they are."""
        if key is None and isinstance(doc, dict):
            key = doc.get("line")
        if key is None and isinstance(doc, list) and doc and isinstance(doc[0], dict):
            key = doc[0].get("line")
        value = raw if raw is not None else orjson.dumps(doc)
        p = owner_partition(key, self.partitions) if key else 0
        self.messages.append((TOPIC[kind], key, value, p))

    def produce(self, bootstrap: str, specs_topic: str = "cpkmon.specs") -> None:
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        for s in self.specs:
            producer.send(specs_topic, orjson.dumps(s), key=spec_key(s["line"], s["characteristic"]).encode())
        producer.flush()
        for topic, key, value, p in self.messages:
            producer.send(topic, value, key=key.encode() if key else None, partition=p)
        producer.flush()
        producer.close()


def batch_answer(feed: Feed, options: Options | None = None) -> tuple[dict[str, dict[str, Any]], Outputs]:
    """What the core says for the same messages, applied in each partition's order with no broker at all."""
    options = options or core_options(Settings())
    specs = SpecRegistry(options.subgroup_size)
    for s in feed.specs:
        specs.set(s)
    out = Outputs()
    kinds = {t: k for k, t in TOPIC.items()}  # type: ignore[misc]
    procs = {
        p: PartitionProcessor(p, feed.partitions, options, specs, kinds, 1 << 20, out)  # type: ignore[arg-type]
        for p in range(feed.partitions)
    }
    offsets: dict[tuple[str, int], int] = {}
    pending = list(feed.messages)
    while pending:
        forwards: list[tuple[str, str | None, bytes | None, int]] = []
        for topic, key, value, p in pending:
            off = offsets[(topic, p)] = offsets.get((topic, p), -1) + 1
            procs[p].handle(topic, off, int(time.time() * 1000), key.encode() if key else None, value)
            forwards += [(t, k, v, fp) for t, fp, k, v in out.forwards]
            out.forwards.clear()
        pending = forwards
    docs = {line: st.status() for proc in procs.values() for line, st in proc.lines.items()}
    return docs, out


# ------------------------------------------------------------------------------------------------- reading
def read_topic(bootstrap: str, topic: str) -> list[Any]:
    async def _read() -> list[Any]:
        c = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        await c.start()
        try:
            parts = c.partitions_for_topic(topic) or set()
            if not parts:
                await c.force_metadata_update()  # type: ignore[no-untyped-call]
                parts = c.partitions_for_topic(topic) or set()
            return await read_to_high_watermark(c, [TopicPartition(topic, p) for p in sorted(parts)])
        finally:
            await c.stop()

    return asyncio.run(_read())


def latest_status(bootstrap: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rec in read_topic(bootstrap, "cpkmon.line-status"):
        if rec.value is not None:
            out[rec.key.decode()] = orjson.loads(rec.value)
    return out


def wait_until(pred: Any, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last={last!r}"[:3000])


STAT_FIELDS = (
    "values_total",
    "n",
    "subgroups",
    "mean",
    "sigma_within",
    "sigma_overall",
    "cp",
    "cpk",
    "cpk_ci",
    "pp",
    "ppk",
    "cpm",
    "state",
    "stable",
    "control",
)


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """The parts of a status document that are a pure function of the applied events."""
    return {
        "characteristics": {
            c["characteristic"]: {k: c[k] for k in STAT_FIELDS} for c in doc["characteristics"]
        },
        "stations": {
            s["station"]: {k: s[k] for k in ("units", "units_total", "first_pass_yield", "dpmo")}
            for s in doc["stations"]
        },
        "dpmo": doc["dpmo"],
        "internal_loss_rate": doc["internal_loss_rate"],
        "external_loss_rate": doc["external_loss_rate"],
        "rty": doc["rty"],
        "cpk": doc["cpk"],
    }


def totals(docs: Iterable[dict[str, Any]]) -> tuple[int, int]:
    values = sum(c["values_total"] for d in docs for c in d["characteristics"])
    units = sum(s["units_total"] for d in docs for s in d["stations"])
    return values, units
