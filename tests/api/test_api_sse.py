"""SSE: a newly produced alert and a status change reach a connected client; Last-Event-ID resumes."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx
from conftest import AUTH, Publisher, serve, wait_until
from statusdocs import grade_alert, ooc_alert, status

from cpkmon.api.app import create_app
from cpkmon.settings import Settings


def read_events(
    url: str, out: queue.Queue, stop: threading.Event, headers: dict[str, str] | None = None
) -> None:
    """Parse an SSE stream into (event, data, id) tuples on ``out`` (runs in a thread)."""
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", url, headers=headers or {}) as r,
    ):
        out.put(("open", r.status_code, r.headers.get("content-type")))
        event: dict[str, Any] = {}
        for line in r.iter_lines():
            if stop.is_set():
                return
            if not line:
                if "data" in event:
                    out.put((event.get("event", "message"), json.loads(event["data"]), event.get("id")))
                event = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                event[name] = value[1:] if value.startswith(" ") else value


def next_event(q: queue.Queue, kind: str, timeout: float = 10) -> tuple:
    while True:
        item = q.get(timeout=timeout)
        if item[0] == kind:
            return item


def listen(url: str, headers: dict[str, str] | None = None) -> Iterator[tuple[queue.Queue, threading.Event]]:
    q: queue.Queue = queue.Queue()
    stop = threading.Event()
    t = threading.Thread(target=read_events, args=(url, q, stop, headers), daemon=True)
    t.start()
    opened = q.get(timeout=10)
    assert opened[1] == 200 and opened[2].startswith("text/event-stream"), opened
    yield q, stop
    stop.set()


def test_sse_delivers_alerts_status_and_acks(settings: Settings, publish: Publisher) -> None:
    old = grade_alert("L1", 1)
    publish.alert(old)
    with serve(create_app(settings)) as base:
        wait_until(lambda: httpx.get(base + "/readyz").status_code == 200)
        gen = listen(base + "/api/v1/alerts/stream")
        q, _ = next(gen)
        new = ooc_alert("L1", 2)
        publish.alert(new)
        _, data, event_id = next_event(q, "alert")
        assert data == {**new, "ack": None}  # only NEW alerts: the old one is not replayed
        assert event_id

        doc = status("L5", level=2)
        publish.status(doc)
        _, row, _ = next_event(q, "status")
        assert row["line"] == "L5" and row["grade"] == {"level": 2, "name": "inspection"}

        r = httpx.post(f"{base}/api/v1/alerts/{new['alert_id']}/ack", headers=AUTH, json={"comment": "seen"})
        assert r.status_code == 200
        _, ack, _ = next_event(q, "ack")
        assert ack["alert_id"] == new["alert_id"] and ack["by"] == "ops"

        # a client that comes back with Last-Event-ID gets what it missed, once
        missed = [ooc_alert("L1", 3), ooc_alert("L2", 4)]
        for a in missed:
            publish.alert(a)
        wait_until(lambda: httpx.get(base + "/readyz").json()["alerts"] == 4)
        gen2 = listen(base + "/api/v1/alerts/stream", headers={"Last-Event-ID": event_id})
        q2, _ = next(gen2)
        got = [next_event(q2, "alert")[1]["alert_id"] for _ in missed]
        assert got == [a["alert_id"] for a in missed]
        # the line filter
        gen3 = listen(base + "/api/v1/alerts/stream?line=L2")
        q3, _ = next(gen3)
        publish.alert(ooc_alert("L1", 5))
        publish.alert(ooc_alert("L2", 6))
        assert next_event(q3, "alert")[1]["subgroup"] == "s-6"
        assert httpx.get(base + "/api/v1/alerts/stream", params={"since": "bad!"}).status_code == 400
