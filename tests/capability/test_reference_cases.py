"""Every reference case in shared/data/expected.json through the core API (the CLI has its own test).

Compared with ``expected_exact_constants`` (this library uses exact d2/d3) to 1e-9 relative on every field,
and with the published SAS digits to half a unit in the last digit.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cpkmon.capability.characteristic import Characteristic
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec

CASES = sorted(
    json.loads((Path(__file__).resolve().parents[3] / "shared" / "data" / "expected.json").read_text())
)


def run_case(shared_data: Path, case: dict[str, Any]) -> dict[str, Any]:
    with (shared_data / case["data_file"]).open() as fh:
        rows = list(csv.DictReader(fh))
    sp = case["spec"]
    opts = Options(
        window_subgroups=len(rows), sigma_method="pooled" if case["method"] == "pooled" else "default"
    )
    size = int(case["subgroup_size"]) if case["subgroup_size"].isdigit() else 5
    ch = Characteristic(
        "L1", "c", Spec(lsl=sp["lsl"], usl=sp["usl"], target=sp["target"], subgroup_size=size), opts
    )
    for i, r in enumerate(rows):
        ch.add(float(r["value"]), 1_763_626_502.0 + i, f"e{i}", r["subgroup"])
    ch.flush()
    status = ch.status()
    assert json.loads(json.dumps(status, allow_nan=False)) == status
    return status


def test_all_cases_listed(expected_cases: dict[str, Any]) -> None:
    assert sorted(expected_cases) == CASES and len(CASES) == 13


@pytest.mark.parametrize("name", CASES)
def test_reference_case_exact_constants(
    name: str, shared_data: Path, expected_cases: dict[str, Any], check_reference: Any
) -> None:
    case = expected_cases[name]
    status = run_case(shared_data, case)
    assert status["state"] == "ok"
    check_reference(status, case["expected_exact_constants"])
    estimator = {"range_weighted": "mvlue_r", "moving_range": "moving_range", "pooled": "pooled"}[
        case["method"]
    ]
    assert status["sigma_estimator"] == estimator


@pytest.mark.parametrize("name", ["syn_large_offset", "syn_large_offset_individuals"])
def test_large_offset_is_exact_not_plain_float(
    name: str, shared_data: Path, expected_cases: dict[str, Any]
) -> None:
    """The shifted representation beats a plain float64 mean (which lands up to ~9e-9 off) by orders of
    magnitude."""
    case = expected_cases[name]
    status = run_case(shared_data, case)
    exact = case["expected_exact_constants"]
    for key in ("cpu", "cpl", "cpk", "ppk", "cpm"):
        assert abs(status[key] / exact[key] - 1) <= 1e-13, key


def _half_unit(text: str) -> float:
    exp = Decimal(text).as_tuple().exponent
    assert isinstance(exp, int)
    return 0.5 * 10.0**exp


def test_published_sas_partgaps(shared_data: Path, expected_cases: dict[str, Any]) -> None:
    case = expected_cases["sas_partgaps"]
    pub = case["published"]["values"]
    status = run_case(shared_data, case)
    for key, ours in [
        ("mean", status["mean"]),
        ("sigma_within", status["sigma_within"]),
        ("cp", status["cp"]),
        ("cpl", status["cpl"]),
        ("cpu", status["cpu"]),
        ("cpk", status["cpk"]),
    ]:
        assert abs(ours - float(pub[key])) <= _half_unit(pub[key]), (key, ours, pub[key])
    rbar = status["sigma_within"] * 2.325928947281039
    assert abs(rbar - float(pub["rbar"])) <= _half_unit(pub["rbar"])


def test_published_sas_cans(shared_data: Path, expected_cases: dict[str, Any]) -> None:
    """PROC CAPABILITY's indices use the overall SD: they are our pp/ppl/ppu/ppk (and Cpm with σ_overall)."""
    case = expected_cases["sas_cans_individuals"]
    pub = case["published"]["values"]
    status = run_case(shared_data, case)
    ours = {"pp": status["pp"], "ppl": status["ppl"], "ppu": status["ppu"], "ppk": status["ppk"]}
    n = status["n"]
    from cpkmon.capability.indices import bissell_ci

    ours["ppk_ci_low"], ours["ppk_ci_high"] = bissell_ci(status["ppk"], n)
    off = status["mean"] - case["spec"]["target"]
    width = case["spec"]["usl"] - case["spec"]["lsl"]
    ours["cpm_overall_sigma"] = width / (6 * (status["sigma_overall"] ** 2 + off**2) ** 0.5)
    for key, text in pub.items():
        assert abs(ours[key] - float(text)) <= _half_unit(text), (key, ours[key], text)
