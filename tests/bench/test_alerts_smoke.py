"""A fast smoke run of ``bench/alerts.py`` (the figures themselves come from the full run, see the README)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "alerts.py"


def _load():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_alerts", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_alerts"] = module
    spec.loader.exec_module(module)
    return module


def test_smoke_run_prints_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    assert bench.main(["--runs", "2", "--smoke"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| ") and not ln.startswith("| scenario")]
    names = [name for name, _ in bench.scenarios(1, 0, True)]
    assert len(rows) == len(names) >= 20
    for name, row in zip(names, rows, strict=True):
        assert row.startswith(f"| {name}")
    assert "rows, 2 runs each" in out


def test_exact_shewhart_arl_matches_the_closed_form() -> None:
    bench = _load()
    assert bench.shewhart_arl(0.0) == pytest.approx(137.17, abs=0.01)
    # the R chart's false-alarm rate for n = 5 at (d2 + 3 d3)σ
    assert bench.range_tail(5, 4.918) == pytest.approx(0.004605, abs=1e-5)


def test_a_step_row_detects_a_step() -> None:
    bench = _load()
    from cpkmon.capability.options import Options

    row = bench.step("s", 5, 7, Options(), bench.cpk_feed(2.3), bench.cpk_feed(1.1), 20, 30, 60)
    assert row.alerted == 1.0 and row.delay_median is not None and row.delay_median < 40
