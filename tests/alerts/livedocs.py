"""Documents as the pure core really produces them: a ``LineState`` driven by a realistic random stream.

Shared by ``tests/alerts/test_model.py`` (the documents against the model and its JSON Schema) and
``tests/api/test_api_documents.py`` (the same documents served by the API). The stream is built to reach every
optional part of a document: individuals and subgrouped charts, a one-sided spec, known limits, a regime
shift that fires run rules and degrades the grade, a recovery, stations with and without defect counts,
quality costs, a re-baseline and a deleted spec.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from cpkmon.alerts.line import LineState
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

T0 = 1_795_162_502.125


@dataclass
class LiveRun:
    """What one run produced: status snapshots (as published: JSON round trip), alerts and checkpoints."""

    statuses: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)


def published(doc: Any) -> Any:
    """The document as a reader gets it from Kafka (the worker encodes with orjson)."""
    return orjson.loads(orjson.dumps(doc))


def live_run(seed: int = 7, events: int = 6000, line: str = "L1") -> LiveRun:
    rng = random.Random(seed)
    opts = Options(window_subgroups=25, min_subgroups=8, confirm_evaluations=2, require_stability=False)
    st = LineState(line, opts)
    specs = {
        "bore": Spec(lsl=73.95, usl=74.05, target=74.0, subgroup_size=5),
        "depth": Spec(usl=12.6, subgroup_size=1),  # one-sided, individuals
        "width": Spec(lsl=9.9, usl=10.1, subgroup_size=4, center=10.0, sigma=0.02),  # known limits
    }
    mu = {"bore": 74.0, "depth": 12.5, "width": 10.0}
    sd = {"bore": 0.008, "depth": 0.01, "width": 0.02}
    stations = {"S10": 0.995, "S20": 0.99, "S30": 0.97}
    run = LiveRun()
    t = T0
    for k in range(events):
        t += 0.5
        phase = k / events
        if 0.45 < phase < 0.6:  # a regime shift: the bore drifts and widens (run rules, a degradation)
            mu["bore"], sd["bore"] = 74.02, 0.015
        elif phase >= 0.6:
            mu["bore"], sd["bore"] = 74.0, 0.006
        if k == int(events * 0.8):
            alerts = st.rebaseline("bore", t)
            run.alerts += alerts or []
        if k == int(events * 0.9):
            st.retire("width")
            specs.pop("width")
        r = rng.random()
        if r < 0.7:
            name = rng.choice(sorted(specs))
            value = rng.gauss(mu[name], sd[name])
            _, alerts = st.measurement(name, specs[name], "S10" if name != "depth" else "S20", value, t,
                                       f"m{k}", None, t + 0.01)
        elif r < 0.97:
            station = rng.choice(sorted(stations))
            passed = rng.random() < stations[station]
            with_counts = station != "S30"
            defects = (0 if passed else rng.randint(1, 3)) if with_counts else None
            _, alerts = st.inspection(station, passed, rng.random() < 0.97, defects,
                                      20 if with_counts else None, t, f"i{k}", t + 0.01)
        else:
            _, alerts = st.quality_cost(rng.uniform(0, 300), rng.uniform(0, 100), 20_000.0, t, f"q{k}",
                                        t + 0.01)
        run.alerts += alerts
        if k % 97 == 0 or alerts:
            run.statuses.append(published(st.status()))
        if k % 1500 == 0:
            run.checkpoints.append(published(st.to_dict()))
    run.statuses.append(published(st.status()))
    run.checkpoints.append(published(st.to_dict()))
    run.alerts = [published(a) for a in run.alerts]
    return run
