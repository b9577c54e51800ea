"""A simulated plant for demos and tests: lines, stations, gauges, inspections and quality costs.

Each line has a few characteristics measured in rational subgroups of five parts, stations that inspect every
unit, and a quality-cost report per simulated shift. Scenarios make lines misbehave the way real ones do:

- ``steady``: a capable process (Cpk ≈ 1.7–2.2) with high first-pass yield;
- ``degrading``: the process mean creeps toward the upper limit (tool wear) and first-pass yield sinks, so the
  line's grade falls and a ``grade_degraded`` alert follows;
- ``out_of_control``: a sudden shift of the mean by 2σ (a new material lot), which Nelson's tests catch long
  before capability collapses.

Deterministic for a given seed and start time, so a demo and a test see the same plant.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Scenario = Literal["steady", "degrading", "out_of_control"]
SCENARIOS: tuple[Scenario, ...] = ("steady", "degrading", "out_of_control")


@dataclass
class CharacteristicModel:
    name: str
    station: str
    lsl: float
    usl: float
    sigma: float
    decimals: int

    @property
    def target(self) -> float:
        return (self.lsl + self.usl) / 2


@dataclass
class LineModel:
    line: str
    scenario: Scenario
    characteristics: list[CharacteristicModel]
    stations: list[str]
    fpy: float
    per_part: bool  # gauges that send one message per part with all values
    subgroups: int = 0
    units: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def specs(self) -> list[dict[str, Any]]:
        return [
            {
                "line": self.line,
                "characteristic": c.name,
                "lsl": c.lsl,
                "usl": c.usl,
                "target": c.target,
                "subgroup_size": 5,
            }
            for c in self.characteristics
        ]

    def _mean(self, c: CharacteristicModel, progress: float) -> float:
        """The process mean after ``progress`` subgroups, by scenario."""
        if self.scenario == "degrading" and progress > 30:
            # tool wear: the mean walks toward USL by 0.04σ per subgroup after a healthy start
            return c.target + min(3.5, 0.04 * (progress - 30)) * c.sigma
        if self.scenario == "out_of_control" and progress > 35:
            return c.target + 2.0 * c.sigma
        return c.target

    def _fpy(self, progress: float) -> float:
        if self.scenario == "degrading" and progress > 30:
            return max(0.80, self.fpy - 0.004 * (progress - 30))
        return self.fpy


def build_plant(lines: int, seed: int = 7) -> list[LineModel]:
    """``lines`` lines; line 2 degrades and line 3 goes out of control when there are enough lines."""
    rng = random.Random(seed)
    out = []
    for i in range(1, lines + 1):
        if lines >= 3 and i == 2:
            scenario: Scenario = "degrading"
        elif lines >= 3 and i == 3:
            scenario = "out_of_control"
        else:
            scenario = "steady"
        width = 0.10
        chars = [
            CharacteristicModel(
                "bore_diameter", "S10", 74.0 - width / 2, 74.0 + width / 2, width / 6 / 2.2, 4
            ),
            CharacteristicModel("length", "S20", 119.8, 120.2, 0.4 / 6 / rng.uniform(2.1, 2.5), 3),
            CharacteristicModel("flatness", "S20", 0.0, 0.05, 0.05 / 6 / rng.uniform(2.1, 2.5), 5),
        ]
        out.append(
            LineModel(
                line=f"L{i}",
                scenario=scenario,
                characteristics=chars,
                stations=["S10", "S20", "S30"],
                fpy=rng.uniform(0.994, 0.998),
                per_part=i % 2 == 0,
                rng=random.Random(seed * 1000 + i),
            )
        )
    return out


def subgroup_messages(model: LineModel, now_ms: int) -> Iterator[tuple[str, dict[str, Any] | list[Any]]]:
    """One rational subgroup (five parts) of every characteristic, and each part's inspections.

    Yields ``(kind, message)`` with kind ``measurement`` or ``inspection``; a per-part line sends one
    message per part carrying all its values (SPEC §2 ``values``), the others one message per value, batched
    per subgroup as a JSON array.
    """
    rng = model.rng
    model.subgroups += 1
    sg = model.subgroups
    progress = float(sg)
    parts = []
    for k in range(5):
        unit = f"{model.line}-{sg:07d}-{k}"
        vals = {}
        for c in model.characteristics:
            vals[c.name] = round(rng.gauss(model._mean(c, progress), c.sigma), c.decimals)
        parts.append((unit, vals))
    ts = now_ms
    if model.per_part:
        for unit, vals in parts:
            yield (
                "measurement",
                {
                    "event_id": f"m-{unit}",
                    "ts": ts,
                    "line": model.line,
                    "station": "S20",
                    "values": vals,
                    "subgroup": f"sg-{sg}",
                },
            )
    else:
        for c in model.characteristics:
            batch = [
                {
                    "event_id": f"m-{unit}-{c.name}",
                    "ts": ts,
                    "line": model.line,
                    "station": c.station,
                    "characteristic": c.name,
                    "value": vals[c.name],
                    "subgroup": f"sg-{sg}",
                }
                for unit, vals in parts
            ]
            yield "measurement", batch
    fpy = model._fpy(progress)
    station_fpy = fpy ** (1 / len(model.stations))
    for unit, _ in parts:
        model.units += 1
        for st in model.stations:
            passed = rng.random() < station_fpy
            defects = 0 if passed else 1 + int(rng.random() < 0.3)
            yield (
                "inspection",
                {
                    "event_id": f"i-{unit}-{st}",
                    "ts": ts,
                    "line": model.line,
                    "station": st,
                    "unit_id": unit,
                    "passed": passed,
                    "first_pass": True,
                    "defects": defects,
                    "opportunities": 24,
                },
            )
            if not passed:  # re-inspection after rework: not first pass, never counts toward FPY
                yield (
                    "inspection",
                    {
                        "event_id": f"i-{unit}-{st}-r",
                        "ts": ts + 1,
                        "line": model.line,
                        "station": st,
                        "unit_id": unit,
                        "passed": True,
                        "first_pass": False,
                    },
                )


def cost_message(model: LineModel, period: int, now_ms: int) -> dict[str, Any]:
    """One shift's quality cost; a degrading line scraps more as it drifts."""
    rng = model.rng
    output = round(rng.uniform(90_000, 110_000), 2)
    scrap = 1 - model._fpy(float(model.subgroups))
    internal = round(output * (0.004 + scrap * 0.3) * rng.uniform(0.9, 1.1), 2)
    external = round(output * 0.002 * rng.uniform(0.5, 1.5), 2)
    return {
        "event_id": f"q-{model.line}-{period}",
        "ts": now_ms,
        "line": model.line,
        "internal_loss": internal,
        "external_loss": external,
        "output_value": output,
        "currency": "CNY",
    }


def expected_events_per_subgroup(model: LineModel) -> float:
    n_meas = 5 if model.per_part else len(model.characteristics)
    return n_meas + 5 * len(model.stations) * (1 + (1 - model.fpy) / len(model.stations))


def pace(rate: float, events_per_round: float) -> float:
    """Seconds between rounds to hold ``rate`` events per second."""
    return 0.0 if rate <= 0 else events_per_round / rate


__all__ = [
    "SCENARIOS",
    "LineModel",
    "build_plant",
    "cost_message",
    "expected_events_per_subgroup",
    "pace",
    "subgroup_messages",
]
