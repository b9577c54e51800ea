"""Shared fixtures. Services are started by the tests themselves on free loopback ports and stopped after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cpkmon.broker import EmbeddedBroker

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "expected.json").exists():
        pytest.fail(f"reference data missing: {SHARED_DATA} (../shared must sit beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def expected_cases(shared_data: Path) -> dict[str, Any]:
    return json.loads((shared_data / "expected.json").read_text())


@pytest.fixture(scope="session")
def session_broker() -> Iterator[EmbeddedBroker]:
    """One real Tansu broker for the whole session; tests use unique topic names or their own broker."""
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture()
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh real Tansu broker for one test (memory storage: nothing leaks between tests)."""
    with EmbeddedBroker() as b:
        yield b


# ---------------------------------------------------------------- reference cases (capability core and CLI)
REFERENCE_FIELDS = (
    "n", "subgroups", "mean", "sigma_within", "sigma_overall", "cp", "cpu", "cpl", "cpk",
    "pp", "ppu", "ppl", "ppk", "cpm", "cpk_ci_low", "cpk_ci_high",
)


def _status_field(status: dict[str, Any], key: str) -> Any:
    if key in ("cpk_ci_low", "cpk_ci_high"):
        ci = status["cpk_ci"]
        return None if ci is None else ci[0 if key == "cpk_ci_low" else 1]
    return status[key]


@pytest.fixture(scope="session")
def check_reference() -> Any:
    """``check(status, expected_block)``: every SPEC §6 field against the reference to 1e-9 relative.

    ``null`` expected → None; a true zero compares with an absolute 1e-9. Returns the worst relative error.
    """

    def check(status: dict[str, Any], expected: dict[str, Any], rel: float = 1e-9) -> float:
        worst = 0.0
        for key in REFERENCE_FIELDS:
            want = expected[key]
            got = _status_field(status, key)
            if want is None:
                assert got is None, f"{key}: expected null, got {got!r}"
                continue
            assert got is not None, f"{key}: expected {want!r}, got null"
            if key in ("n", "subgroups"):
                assert got == want, f"{key}: {got} != {want}"
                continue
            err = abs(got - want) if want == 0 else abs(got - want) / abs(want)
            assert err <= rel, f"{key}: {got!r} vs {want!r} (rel err {err:.3g})"
            worst = max(worst, err)
        return worst

    return check


@pytest.fixture(scope="session")
def case_cli_args() -> Any:
    """``args(case)``: the ``cpkmon capability`` options for a reference case (limits, target, method)."""

    def args(case: dict[str, Any]) -> list[str]:
        spec = case["spec"]
        out: list[str] = []
        for opt in ("lsl", "usl", "target"):
            if spec[opt] is not None:
                out += [f"--{opt}", repr(spec[opt])]
        if case["method"] == "pooled":
            out += ["--sigma-method", "pooled"]
        return out

    return args
