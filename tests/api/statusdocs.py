"""Realistic status and alert documents, shaped as the worker publishes them (SPEC §5/§6, docs/design.md)."""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

from cpkmon.capability.histogram import capability_histogram
from cpkmon.capability.timeutil import to_rfc3339

LEVELS = {
    1: ("experience", "经验级"),
    2: ("inspection", "检验级"),
    3: ("assurance", "保证级"),
    4: ("prevention", "预防级"),
    5: ("excellence", "卓越级"),
}
T0 = 1_795_162_502.125  # 2026-11-20T08:15:02.125Z


def grade(level: int | None) -> dict[str, Any] | None:
    if level is None:
        return None
    name, zh = LEVELS[level]
    return {"level": level, "name": name, "name_zh": zh}


def characteristic(
    name: str,
    *,
    station: str = "S10",
    cpk: float | None = 1.41,
    stable: bool | None = True,
    points: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """A characteristic status object; ``cpk=None`` gives an ``insufficient_data`` one (all indices null)."""
    rnd = random.Random(f"{name}/{seed}")
    lsl, usl, target = 73.95, 74.05, 74.0
    ok = cpk is not None
    sigma_w = (usl - lsl) / (6 * 1.2 * (cpk or 1.0))
    mean = target + rnd.uniform(-0.003, 0.003)
    cpu, cpl = (usl - mean) / (3 * sigma_w), (mean - lsl) / (3 * sigma_w)
    n = 125
    half = 1.959963984540054 * math.sqrt(1 / (9 * n) + (cpk or 0) ** 2 / (2 * (n - 1)))
    pts = [
        {
            "seq": i,
            "subgroup": f"s-{i}",
            "event_time": to_rfc3339(T0 + i),
            "n": 5,
            "x": round(mean + rnd.gauss(0, sigma_w / 2), 6),
            "r": round(abs(rnd.gauss(2.3 * sigma_w, sigma_w / 3)), 6),
            "rules": [],
        }
        for i in range(points)
    ]
    return {
        "characteristic": name,
        "station": station,
        "values_total": 640 + seed,
        "last_event_time": to_rfc3339(T0 + points),
        "n": n if ok else 40,
        "subgroups": 25 if ok else 8,
        "mean": mean if ok else None,
        "sigma_within": sigma_w if ok else None,
        "sigma_overall": sigma_w * 1.05 if ok else None,
        "cp": (usl - lsl) / (6 * sigma_w) if ok else None,
        "cpu": cpu if ok else None,
        "cpl": cpl if ok else None,
        "cpk": cpk,
        "cpk_ci": [cpk - half, cpk + half] if cpk is not None else None,
        "pp": (usl - lsl) / (6 * sigma_w * 1.05) if ok else None,
        "ppu": cpu / 1.05 if ok else None,
        "ppl": cpl / 1.05 if ok else None,
        "ppk": cpk / 1.05 if cpk is not None else None,
        "cpm": (usl - lsl) / (6 * math.sqrt(sigma_w**2 + (mean - target) ** 2)) if ok else None,
        "lsl": lsl,
        "usl": usl,
        "target": target,
        "subgroup_size": 5,
        "sigma_method": "default",
        "state": "ok" if ok else "insufficient_data",
        "stable": stable if ok else None,
        "control": (
            {
                "chart": "xbar_r",
                "center": target,
                "ucl": target + 3 * sigma_w / math.sqrt(5),
                "lcl": target - 3 * sigma_w / math.sqrt(5),
                "range_center": 2.326 * sigma_w,
                "range_ucl": 4.918 * sigma_w,
                "range_lcl": 0.0,
                "sigma": sigma_w,
                "source": "baseline",
            }
            if ok
            else None
        ),
        "points": pts,
        # the window's individual values binned as the worker does (deviations from the spec midpoint)
        "histogram": capability_histogram(
            [rnd.gauss(mean - target, sigma_w) for _ in range(n if ok else 40)], target, lsl, usl
        ),
        "violations": (
            []
            if stable in (True, None)
            else [
                {
                    "rule": 2,
                    "chart": "x",
                    "seq": points - 1,
                    "subgroup": f"s-{points - 1}",
                    "event_time": to_rfc3339(T0 + points - 1),
                    "value": mean,
                    "limit": None,
                }
            ]
        ),
    }


def status(
    line: str,
    *,
    level: int | None = 3,
    chars: int = 3,
    cpks: list[float | None] | None = None,
    stations: int = 2,
    fpy: float | None = 0.985,
    dpmo: float | None = 3000.0,
    sigma_level: float | None = 4.25,
    internal: float | None = 0.021,
    external: float | None = None,
    updated: float = T0,
    degradations: int = 0,
    points: int = 10,
) -> dict[str, Any]:
    """A line's full status document."""
    cpks = cpks if cpks is not None else [1.41 + 0.1 * i for i in range(chars)]
    characteristics = [
        characteristic(
            f"char_{i}",
            station=f"S{10 * (1 + i % max(stations, 1))}",
            cpk=c,
            seed=i,
            points=points,
            stable=(i % 4 != 3),
        )
        for i, c in enumerate(cpks)
    ]
    st = [
        {
            "station": f"S{10 * (j + 1)}",
            "units": 1000,
            "units_total": 5000 + j,
            "first_pass_yield": None if fpy is None else fpy - 0.001 * j,
        }
        for j in range(stations)
    ]
    known = [c for c in cpks if c is not None]
    rty = None
    if fpy is not None and st:
        rty = math.prod(s["first_pass_yield"] for s in st)
    return {
        "line": line,
        "grade": grade(level),
        "cpk": min(known) if known else None,
        "rty": rty,
        "sigma_level": sigma_level,
        "dpmo": dpmo,
        "updated_at": to_rfc3339(updated),
        "limiting": (
            {"criterion": "cpk", "subject": "char_0", "value": known[0] if known else None, "threshold": 1.67}
            if level is not None
            else None
        ),
        "criteria": [
            {
                "criterion": "cpk",
                "assessed": bool(known),
                "value": min(known) if known else None,
                "subject": "char_0",
                "met_level": level,
                "next_threshold": 1.67,
            },
            {
                "criterion": "rty",
                "assessed": rty is not None,
                "value": rty,
                "subject": "S20",
                "met_level": level,
                "next_threshold": 0.97,
            },
        ],
        "characteristics": characteristics,
        "stations": st,
        "internal_loss_rate": internal,
        "external_loss_rate": external,
        "degradations": degradations,
    }


def alert_id(*parts: object) -> str:
    return "a-" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:16]


def grade_alert(
    line: str, seq: int, *, frm: int = 4, to: int = 3, kind: str = "grade_degraded"
) -> dict[str, Any]:
    return {
        "alert_id": alert_id(line, kind, seq),
        "type": kind,
        "line": line,
        "from_grade": {"level": frm, "name": LEVELS[frm][0]},
        "to_grade": {"level": to, "name": LEVELS[to][0]},
        "limiting": {"criterion": "cpk", "subject": "char_0", "value": 1.52, "threshold": 1.67},
        "cpk": 1.52,
        "rty": 0.97,
        "sigma_level": 4.4,
        "event_time": to_rfc3339(T0 + seq),
        "detected_at": to_rfc3339(T0 + seq + 0.05),
    }


def ooc_alert(line: str, seq: int, characteristic: str = "char_0", rule: int = 1) -> dict[str, Any]:
    return {
        "alert_id": alert_id(line, "ooc", characteristic, rule, seq),
        "type": "out_of_control",
        "line": line,
        "characteristic": characteristic,
        "station": "S10",
        "rule": rule,
        "chart": "x",
        "value": 74.031,
        "limit": 74.024,
        "subgroup": f"s-{seq}",
        "event_time": to_rfc3339(T0 + seq),
        "detected_at": to_rfc3339(T0 + seq + 0.05),
    }
