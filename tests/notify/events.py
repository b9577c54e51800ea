"""Alarm-event histories as the worker and the API write them to ``cpkmon.alarm-events`` (round-3 design)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def alarm_id(source: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps(list(source)).encode()).hexdigest()[:32]


# one occurrence after another: the ISA-18.2 transitions of the design
CYCLE: list[tuple[str, dict[str, Any]]] = [
    ("activate", {"severity": "high"}),
    ("activate", {"severity": "high"}),  # re-activation while unacknowledged
    ("ack", {"by": "op-1", "cause": "machine", "comment": "tool wear"}),
    ("clear", {}),
    ("resolve", {"by": "op-1", "action": "tool changed"}),
    ("activate", {"severity": "medium"}),
    ("clear", {}),
    ("ack", {"by": "op-2", "cause": "material"}),
    ("shelve", {"by": "lead", "until": "2026-03-02T12:00:00Z", "reason": "supplier lot under review"}),
    ("unshelve", {"by": "lead"}),
    ("out_of_service", {"by": "maint", "reason": "gauge calibration"}),
    ("in_service", {"by": "maint"}),
]


def history(lines: list[str], characteristics: list[str], cycles: int = 1) -> list[dict[str, Any]]:
    """Every alarm of ``lines`` (control per characteristic, grade per line) through ``cycles`` CYCLEs,
    interleaved across alarms as a plant would write them; ``event_id`` unique, ``at`` increasing."""
    alarms: list[tuple[str, dict[str, Any]]] = []
    for line in lines:
        for ch in characteristics:
            alarms.append((line, {"kind": "control", "characteristic": ch}))
        alarms.append((line, {"kind": "grade"}))
    out: list[dict[str, Any]] = []
    step = 0
    for _ in range(cycles):
        for kind, extra in CYCLE:
            for line, source in alarms:
                key = (
                    ("control", line, source["characteristic"])
                    if source["kind"] == "control"
                    else ("grade", line)
                )
                aid = alarm_id(key)
                step += 1
                doc: dict[str, Any] = {
                    "event_id": hashlib.sha256(f"{aid}/{step}".encode()).hexdigest()[:32],
                    "alarm_id": aid,
                    "line": line,
                    "source": dict(source),
                    "kind": kind,
                    "at": (T0 + timedelta(seconds=step)).isoformat().replace("+00:00", "Z"),
                    **extra,
                }
                if kind == "activate":
                    if source["kind"] == "control":
                        doc.update(rules=[1, 5], value=10.31, limit=10.2, alert_id=f"alert-{step}")
                    else:
                        doc.update(from_grade=3, to_grade=2, alert_id=f"alert-{step}")
                out.append(doc)
    return out


def per_alarm(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """alarm_id → its event ids in written order."""
    out: dict[str, list[str]] = {}
    for e in events:
        out.setdefault(e["alarm_id"], []).append(e["event_id"])
    return out
