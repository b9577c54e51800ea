"""Deterministic input streams for the pipeline tests (seeded; no wall clock in the values)."""

from __future__ import annotations

import random
from typing import Any

from tests.stream.harness import Feed

T0 = 1_795_000_000_000  # epoch ms


def _ts(i: int) -> int:
    return T0 + i * 100


def mixed_plant(feed: Feed, seed: int = 1, subgroups: int = 40) -> None:
    """Four lines exercising every input form: single values with subgroup ids, individuals in arrays,
    per-part ``values`` events, a deterministic degrading line; inspections and quality costs."""
    rng = random.Random(seed)
    feed.spec(line="A1", characteristic="bore", lsl=73.95, usl=74.05, target=74.0, subgroup_size=5)
    feed.spec(line="B2", characteristic="gap", lsl=0.20, usl=0.80, subgroup_size=1)
    for ch, (lo, hi) in {"len": (119.8, 120.2), "width": (29.9, 30.1), "flat": (0.0, 0.05)}.items():
        feed.spec(line="C3", characteristic=ch, lsl=lo, usl=hi, subgroup_size=5)
    feed.spec(line="D4", characteristic="torque", lsl=10.0, usl=20.0, target=15.0, subgroup_size=5)
    i = 0
    for sg in range(subgroups):
        # A1: one message per value, explicit subgroup ids
        for k in range(5):
            i += 1
            feed.add(
                "measurement",
                {
                    "event_id": f"a-{sg}-{k}",
                    "ts": _ts(i),
                    "line": "A1",
                    "station": "S10",
                    "characteristic": "bore",
                    "value": round(rng.gauss(74.0, 0.008), 5),
                    "subgroup": f"A1-{sg}",
                },
            )
        # B2: individuals, five per message as a JSON array, no subgroup ids
        feed.add(
            "measurement",
            [
                {
                    "event_id": f"b-{sg}-{k}",
                    "ts": _ts(i),
                    "line": "B2",
                    "station": "S20",
                    "characteristic": "gap",
                    "value": round(rng.gauss(0.5, 0.05), 4),
                }
                for k in range(5)
            ],
        )
        # C3: per-part messages with three values each, integer subgroup ids
        for k in range(5):
            i += 1
            feed.add(
                "measurement",
                {
                    "event_id": f"c-{sg}-{k}",
                    "ts": f"2026-11-20T08:{sg % 60:02d}:{k:02d}.000Z",
                    "line": "C3",
                    "station": "S30",
                    "subgroup": sg,
                    "values": {
                        "len": round(rng.gauss(120.0, 0.03), 4),
                        "width": round(rng.gauss(30.0, 0.015), 4),
                        "flat": round(abs(rng.gauss(0.02, 0.004)), 5),
                    },
                },
            )
        # D4: a fixed spread, the mean steps down after 12 subgroups: Cpk 1.5 (level 3) → 1.2 (level 2)
        # σ_within = R/d2(5) = 10/9 (Cpk 1.5 at the target); the mean steps to 14.0 (Cpk 1.2) after 12
        mean = 15.0 if sg < 12 else 14.0
        half_range = (10.0 / 9.0) * 2.3259289 / 4  # subgroup values mean ± 2·half_range/2 ...: R = 4·c
        for k, z in enumerate((-2.0, -1.0, 0.0, 1.0, 2.0)):
            i += 1
            feed.add(
                "measurement",
                {
                    "event_id": f"d-{sg}-{k}",
                    "ts": _ts(i),
                    "line": "D4",
                    "station": "S40",
                    "characteristic": "torque",
                    "value": mean + z * half_range,
                    "subgroup": f"D4-{sg}",
                },
            )
        # inspections at A1 and C3
        for line, stations in (("A1", ("S10", "S11")), ("C3", ("S30",))):
            for k in range(5):
                for st in stations:
                    passed = rng.random() < 0.97
                    doc: dict[str, Any] = {
                        "event_id": f"i-{line}-{sg}-{k}-{st}",
                        "ts": _ts(i),
                        "line": line,
                        "station": st,
                        "unit_id": f"{line}-{sg}-{k}",
                        "passed": passed,
                        "defects": 0 if passed else 1,
                        "opportunities": 10,
                    }
                    feed.add("inspection", doc)
        if sg % 10 == 9:
            for line in ("A1", "C3"):
                feed.add(
                    "quality_cost",
                    {
                        "event_id": f"q-{line}-{sg}",
                        "ts": _ts(i),
                        "line": line,
                        "internal_loss": 800.0 + sg,
                        "external_loss": 150.0,
                        "output_value": 100_000.0,
                        "currency": "CNY",
                    },
                )
