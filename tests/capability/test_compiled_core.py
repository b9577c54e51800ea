"""Which build of the core this test run imports (issue 11: the suite runs on the compiled and the pure path).

Why: a compiled run that silently imported the ``.py`` sources (the checkout shadowing the installed wheel, a
build that skipped mypyc) would pass while testing nothing compiled. CI states what it expects in
``CPKMON_EXPECT_CORE`` (``compiled`` or ``pure``); unset, the test only checks the runtime switch's contract.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import cpkmon
from cpkmon.alerts import line
from cpkmon.capability import characteristic, control, window


def test_expected_core_is_the_one_imported() -> None:
    expected = os.environ.get("CPKMON_EXPECT_CORE")
    if expected is None:
        pytest.skip("CPKMON_EXPECT_CORE not set: the test run does not say which core it meant to test")
    assert expected in ("compiled", "pure")
    got = cpkmon.compiled_core()
    assert got == (expected == "compiled"), (expected, window.__file__)
    for mod in (characteristic, control, window, line):
        assert (mod.__file__ or "").endswith(".py") == (not got), mod.__file__


def test_pure_switch_loads_sources() -> None:
    """``CPKMON_PURE_PYTHON=1`` loads every core module from its ``.py`` file, compiled build or not."""
    code = (
        "import cpkmon, cpkmon.alerts.line as l, cpkmon.capability.characteristic as c;"
        "print(cpkmon.compiled_core(), l.__file__.endswith('.py'), c.__file__.endswith('.py'))"
    )
    env = {**os.environ, "CPKMON_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]
