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
