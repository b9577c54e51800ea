"""sigma_level against the mpmath reference table (shared/data/sigma_level.csv) to 1e-9 relative."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from cpkmon.capability.sigma import sigma_level


def test_reference_table(shared_data: Path) -> None:
    with (shared_data / "sigma_level.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 10
    for r in rows:
        want = float(r["sigma_level"])
        assert abs(sigma_level(float(r["dpmo"])) / want - 1) <= 1e-9, r


def test_ladder_thresholds_and_edges() -> None:
    assert sigma_level(66807) >= 3.0 and sigma_level(6210) < 4.0 < sigma_level(6209)
    assert sigma_level(3.4) == pytest.approx(6.0, abs=2e-4)
    assert sigma_level(0) == math.inf and sigma_level(1e6) == -math.inf
    for bad in (-1, 1e6 + 1, math.nan):
        with pytest.raises(ValueError):
            sigma_level(bad)
