"""A simulated plant for demos and tests: lines, stations, gauges, inspections and quality costs.

Each line makes one unit every ``TAKT_S`` seconds; every unit is gauged on a few characteristics and
inspected at every station, and each ``SUBGROUP_INTERVAL_S`` the last five units form a rational subgroup. A
quality-cost report closes every ``SHIFT_S`` shift. All of this is in *event time*: :class:`PlantClock`
runs it on a compressed clock (event time ``time_scale``× faster than the wall clock), after a back-filled
history, so that every time-based figure (alarms per 10 minutes, ``window_max_age``, cost windows) means
what it would in a plant.

Scenarios make lines misbehave the way real ones do (onsets in subgroups, i.e. in event time):

- ``steady``: a capable process in statistical control (Cpk ≈ 2.1–2.5, first-pass yield 99.4–99.8 %); its only
  alarms are the control rules' own false alarms;
- ``degrading``: after ``DRIFT_FROM`` subgroups the process mean creeps toward the upper limit (tool wear) and
  first-pass yield sinks, so the line's grade falls step by step, each step a ``grade_degraded`` alert;
- ``out_of_control``: at subgroup ``shift_at`` the mean shifts by 2σ (a new material lot), which Nelson's
  tests catch long before capability collapses.

Deterministic for a given seed and start time, so a demo and a test see the same plant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Scenario = Literal["steady", "degrading", "out_of_control"]
SCENARIOS: tuple[Scenario, ...] = ("steady", "degrading", "out_of_control")

SUBGROUP_SIZE = 5
TAKT_S = 60.0  # one unit a minute per line: a subgroup is five consecutive units
SUBGROUP_INTERVAL_S = SUBGROUP_SIZE * TAKT_S  # so one subgroup per characteristic every 5 minutes
SHIFT_S = 8 * 3600.0  # a quality-cost report per shift
STATION_GAP_S = 10.0  # a unit reaches the next station this much later
DEFAULT_TIME_SCALE = 60.0  # one event-time hour per wall-clock minute: a 10-minute alarm window is 10 s
DEFAULT_HISTORY_S = SHIFT_S  # one shift back-filled before the live clock starts: lines are graded at once
DRIFT_FROM = 30  # L2's tool wear starts after 2.5 h of event time
SHIFT_AFTER_S = 15 * 60.0  # L3's new material lot: a quarter of an hour into the live demo


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
    shift_at: int = 36  # out_of_control: the number (1-based) of the first subgroup with the shifted mean
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
        if self.scenario == "degrading" and progress > DRIFT_FROM:
            # tool wear: the mean walks toward USL by 0.04σ per subgroup after a healthy start
            return c.target + min(3.5, 0.04 * (progress - DRIFT_FROM)) * c.sigma
        if self.scenario == "out_of_control" and progress >= self.shift_at:
            return c.target + 2.0 * c.sigma
        return c.target

    def _fpy(self, progress: float) -> float:
        if self.scenario == "degrading" and progress > DRIFT_FROM:
            return max(0.80, self.fpy - 0.004 * (progress - DRIFT_FROM))
        return self.fpy


def build_plant(lines: int, seed: int = 7, shift_at: int = 36) -> list[LineModel]:
    """``lines`` lines; line 2 degrades and line 3 goes out of control (at subgroup ``shift_at``) when there
    are enough lines."""
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
                shift_at=shift_at,
                rng=random.Random(seed * 1000 + i),
            )
        )
    return out


def subgroup_messages(
    model: LineModel, now_ms: int, takt_ms: int = 0
) -> Iterator[tuple[str, dict[str, Any] | list[Any]]]:
    """One rational subgroup (five consecutive units) of every characteristic, and each unit's inspections.

    Unit ``k`` of the subgroup is made at ``now_ms + k·takt_ms`` and reaches station ``j`` ``j·STATION_GAP_S``
    later (with ``takt_ms`` 0 everything carries ``now_ms``). Yields ``(kind, message)`` with kind
    ``measurement`` or ``inspection``; a per-part line sends one message per part carrying all its values
    (SPEC §2 ``values``), the others one message per value, batched per subgroup as a JSON array.
    """
    gap_ms = int(STATION_GAP_S * 1000) if takt_ms else 0
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
    made = {unit: now_ms + k * takt_ms for k, (unit, _) in enumerate(parts)}
    if model.per_part:
        for unit, vals in parts:
            yield (
                "measurement",
                {
                    "event_id": f"m-{unit}",
                    "ts": made[unit] + gap_ms,
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
                    "ts": made[unit] + gap_ms * model.stations.index(c.station),
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
        for j, st in enumerate(model.stations):
            ts = made[unit] + j * gap_ms
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


@dataclass(frozen=True)
class PlantClock:
    """When each subgroup happens in event time, and when it is published on the wall clock.

    Subgroup ``k`` (0-based) of every line starts at ``start_ms + k·interval`` and is complete (its fifth
    unit made) one interval later. The plant started ``history_s`` before ``live_wall_s``: the subgroups
    complete by then are the back-filled history, published as fast as the rate allows; after that event time
    runs ``time_scale``× faster than the wall clock (so it runs ahead of it: the worker keeps event time, the
    API evaluates alarms at the later of both). ``time_scale`` 0: no clock, every subgroup as fast as the rate
    allows.
    """

    live_wall_s: float
    time_scale: float = DEFAULT_TIME_SCALE
    history_s: float = DEFAULT_HISTORY_S
    interval_s: float = SUBGROUP_INTERVAL_S

    @property
    def live_ms(self) -> int:
        """Event time at which the live clock starts (whole minutes: readable timestamps)."""
        return int(self.live_wall_s // 60 * 60_000)

    @property
    def start_ms(self) -> int:
        return self.live_ms - int(self.history_s * 1000)

    @property
    def history_subgroups(self) -> int:
        """Subgroups complete when the live clock starts: the back-filled history."""
        return int(self.history_s // self.interval_s)

    def subgroup_ms(self, k: int) -> int:
        """Event time at which subgroup ``k``'s first unit is made."""
        return self.start_ms + round(k * self.interval_s * 1000)

    def due_s(self, k: int) -> float:
        """Wall-clock time at which subgroup ``k`` is complete (the live clock has reached its end)."""
        if self.time_scale <= 0:
            return 0.0
        ahead_ms = self.subgroup_ms(k + 1) - self.live_ms
        return self.live_wall_s + max(0.0, ahead_ms / 1000 / self.time_scale)

    def subgroup_at(self, after_s: float) -> int:
        """The number (1-based, like ``LineModel.subgroups``) of the first subgroup that starts ``after_s``
        event seconds or more into the live clock."""
        return self.history_subgroups + math.ceil(after_s / self.interval_s) + 1


def expected_events_per_subgroup(model: LineModel) -> float:
    n_meas = 5 if model.per_part else len(model.characteristics)
    return n_meas + 5 * len(model.stations) * (1 + (1 - model.fpy) / len(model.stations))


def pace(rate: float, events_per_round: float) -> float:
    """Seconds between rounds to hold ``rate`` events per second."""
    return 0.0 if rate <= 0 else events_per_round / rate


__all__ = [
    "DEFAULT_HISTORY_S",
    "DEFAULT_TIME_SCALE",
    "SCENARIOS",
    "SHIFT_AFTER_S",
    "SHIFT_S",
    "SUBGROUP_INTERVAL_S",
    "TAKT_S",
    "LineModel",
    "PlantClock",
    "build_plant",
    "cost_message",
    "expected_events_per_subgroup",
    "pace",
    "subgroup_messages",
]
