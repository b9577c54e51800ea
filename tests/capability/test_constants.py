"""d2, d3, c4: the stored table against a fresh scipy integration and the independent reference constants."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special

from cpkmon.capability.constants import MAX_N, c4, d2, d3, mvlue_weight


def _reference(shared_data: Path) -> dict[int, dict[str, float]]:
    with (shared_data / "constants.csv").open() as fh:
        return {int(r["n"]): {k: float(v) for k, v in r.items() if k != "n"} for r in csv.DictReader(fh)}


def _d2_by_integration(n: int) -> float:
    def f(x: float) -> float:
        return float(1.0 - special.ndtr(x) ** n - special.ndtr(-x) ** n)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return float(integrate.quad(f, -np.inf, np.inf, epsabs=1e-15, epsrel=1e-14, limit=500)[0])


@pytest.mark.parametrize("n", range(2, MAX_N + 1))
def test_d2_table_equals_a_fresh_integration(n: int) -> None:
    assert d2(n) == pytest.approx(_d2_by_integration(n), rel=1e-12, abs=0)


def test_table_matches_reference_constants(shared_data: Path) -> None:
    ref = _reference(shared_data)
    assert sorted(ref) == list(range(2, MAX_N + 1))
    for n, row in ref.items():
        assert abs(d2(n) / row["d2_integration"] - 1) <= 1e-12, n
        assert abs(d3(n) / row["d3_integration"] - 1) <= 1e-12, n
        assert abs(c4(n) / row["c4_exact"] - 1) <= 1e-14, n
        # and they are NOT the 3-decimal table (which misses SAS's published digits)
        if n in (2, 3, 5):
            assert abs(d2(n) / row["d2_qcc"] - 1) > 1e-6


def test_closed_forms_for_n2() -> None:
    assert d2(2) == pytest.approx(2 / math.sqrt(math.pi), rel=1e-15)
    assert d3(2) == pytest.approx(math.sqrt(2 - 4 / math.pi), rel=1e-15)


def test_mvlue_weight() -> None:
    for n in range(2, MAX_N + 1):
        assert mvlue_weight(n) == pytest.approx((d2(n) / d3(n)) ** 2, rel=1e-15)


@pytest.mark.parametrize("n", [2, 3, 10, 23, 24, 25, 26, 50, 101, 601, 10_000, 100_001, 2_000_000])
def test_c4_closed_form_accurate_for_large_n(n: int) -> None:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    exact = (
        mpmath.sqrt(mpmath.mpf(2) / (n - 1))
        * mpmath.gamma(mpmath.mpf(n) / 2)
        / mpmath.gamma(mpmath.mpf(n - 1) / 2)
    )
    assert abs(c4(n) / float(exact) - 1) <= 1e-14


@pytest.mark.parametrize("bad", [0, 1, 26, -3])
def test_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError):
        d2(bad)
    with pytest.raises(ValueError):
        d3(bad)
    if bad < 2:
        with pytest.raises(ValueError):
            c4(bad)
