"""The document model (``cpkmon.alerts.model``) against the documents the pure core really produces.

The worker builds plain dicts on its hot path; these tests hold those dicts to the model so the two cannot
drift: every status, alert and checkpoint of a realistic random run validates *strictly* (no key the model
lacks, no key it requires missing, at every level) and against the model's closed JSON Schema; and the
constants the ladder, engine and documents modules use are the model's.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from cpkmon.alerts import documents, engine, ladder, model
from cpkmon.alerts.model import (
    ALERT_ADAPTER,
    GradeAlert,
    LineCheckpoint,
    LineStatus,
    OutOfControlAlert,
    document_schema,
    validate_strict,
)
from tests.alerts.livedocs import LiveRun, live_run


@pytest.fixture(scope="module")
def run() -> LiveRun:
    return live_run()


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = document_schema(name, closed=True)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_run_reaches_every_part_of_the_documents(run: LiveRun) -> None:
    """Without this the strict checks below could pass on documents that never carry the optional parts."""
    types = {a["type"] for a in run.alerts}
    assert types == set(model.ALERT_TYPES), types
    final = run.statuses[-1]
    assert final["grade"] is not None and final["limiting"] is not None
    assert any(s["grade_pending"] for s in run.statuses)
    causes = {c["cause"] for s in run.statuses for c in s["grade_changes"]}
    assert model.FIRST_GRADE in causes and model.GRADE_DEGRADED in causes
    chars = [c for s in run.statuses for c in s["characteristics"]]
    assert any(c["histogram"] for c in chars) and any(c["violations"] for c in chars)
    assert any(c["control"] and c["control"]["source"] == "known" for c in chars)
    assert any(c["state"] == model.STATE_INSUFFICIENT for c in chars)
    sigma = [c for s in run.statuses for c in s["criteria"] if c["criterion"] == model.SIGMA_LEVEL]
    assert any(c["assessed"] for c in sigma)
    assert any(a.get("incident") for a in run.alerts if a["type"] == model.GRADE_DEGRADED)


def test_status_documents_validate_strictly(run: LiveRun) -> None:
    schema = _validator("line_status")
    for doc in run.statuses:
        validate_strict(LineStatus, doc)
        schema.validate(doc)


def test_alerts_validate_strictly(run: LiveRun) -> None:
    schema = _validator("alert")
    for doc in run.alerts:
        parsed = validate_strict(ALERT_ADAPTER, doc)
        assert isinstance(parsed, GradeAlert if doc["type"] != model.OUT_OF_CONTROL else OutOfControlAlert)
        schema.validate(doc)


def test_checkpoint_headers_validate_strictly(run: LiveRun) -> None:
    schema = _validator("checkpoint_line")
    for doc in run.checkpoints:
        validate_strict(LineCheckpoint, doc)
        schema.validate(doc)


def _first(docs: list[dict[str, Any]], path: tuple[str | int, ...]) -> dict[str, Any]:
    for doc in docs:
        try:
            node: Any = doc
            for p in path:
                node = node[p]
        except (IndexError, KeyError, TypeError):
            continue
        if isinstance(node, dict):
            return copy.deepcopy(doc)
    raise AssertionError(f"no document has {path}")


@pytest.mark.parametrize(
    "path",
    [(), ("grade",), ("limiting",), ("criteria", 0), ("characteristics", 0),
     ("characteristics", 0, "control"), ("characteristics", 0, "histogram"),
     ("characteristics", 0, "points", 0), ("stations", 0), ("grade_changes", 0)],
)
def test_a_field_on_one_side_only_fails(run: LiveRun, path: tuple[str | int, ...]) -> None:
    """A key the worker adds without the model, or one the model declares and the worker stops writing, fails
    both the strict validation and the closed schema — wherever in the document it is."""
    schema = _validator("line_status")
    doc = _first(run.statuses, path)
    node: Any = doc
    for p in path:
        node = node[p]
    added = copy.deepcopy(doc)
    target: Any = added
    for p in path:
        target = target[p]
    target["new_field"] = 1
    with pytest.raises(ValueError, match="does not declare"):
        validate_strict(LineStatus, added)
    assert not schema.is_valid(added)
    removed = copy.deepcopy(doc)
    target = removed
    for p in path:
        target = target[p]
    key = next(k for k in node if k not in getattr(_model_at(path), "OPTIONAL_KEYS", frozenset()))
    del target[key]
    with pytest.raises(ValueError, match="missing"):
        validate_strict(LineStatus, removed)
    assert not schema.is_valid(removed)


def _model_at(path: tuple[str | int, ...]) -> type[model.Document]:
    cls: Any = LineStatus
    for p in path:
        if isinstance(p, int):
            continue
        ann = cls.model_fields[p].annotation
        args = getattr(ann, "__args__", ())
        cls = next(
            (a for a in (ann, *args, *(x for a in args for x in getattr(a, "__args__", ())))
             if isinstance(a, type) and issubclass(a, model.Document)),
            None,
        )
        assert cls is not None, p
    return cls


def test_reading_is_tolerant() -> None:
    """An older status (fields missing) and a newer one (an unknown field) still parse outside strict mode."""
    old = {"line": "L1", "grade": {"level": 3, "name": "assurance"}, "cpk": 1.4}
    assert LineStatus.model_validate(old).grade is not None
    newer = {**old, "something_new": {"x": 1}}
    assert LineStatus.model_validate(newer).model_extra == {"something_new": {"x": 1}}


def test_constants_have_one_definition() -> None:
    """The ladder, the engine and the documents module use the model's constants (the same objects)."""
    assert ladder.CRITERIA is model.CRITERIA
    assert ladder.REASONS is model.REASONS
    assert [(lv.level, lv.name, lv.chinese) for lv in ladder.LEVELS] == list(model.LEVEL_NAMES)
    assert engine.SILENT_CAUSES is model.SILENT_CAUSES
    assert documents.ALERT_TYPES is model.ALERT_TYPES
    assert set(ladder.COMPARISON) == set(model.CRITERIA)
    assert set(ladder.COMPARISON.values()) <= set(model.COMPARISONS)
