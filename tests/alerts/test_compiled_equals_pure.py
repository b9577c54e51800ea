"""The mypyc-compiled core gives byte-identical documents to the pure-Python core (issue 11).

Runs only where the imported core is compiled (a regular install): it computes ``crossbuild.transcript()``
here and in a child process on the pure path (``CPKMON_PURE_PYTHON=1``) and compares the digests. On the
pure path there is nothing to compare, so the test is skipped rather than comparing the pure core with
itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cpkmon

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(not cpkmon.compiled_core(), reason="the core imported here is the pure one")
def test_compiled_core_equals_pure_core() -> None:
    from tests.alerts.crossbuild import transcript

    compiled = transcript()
    env = {**os.environ, "CPKMON_PURE_PYTHON": "1"}
    child = subprocess.run(
        [sys.executable, str(HERE / "crossbuild.py")], env=env, capture_output=True, text=True, check=True,
        cwd=HERE, timeout=600,
    )
    pure = child.stdout.strip()
    assert int(pure.split()[1]) > 1000, pure  # the streams produced documents
    assert compiled == pure
