"""A spec record whose target lies outside its limits is an invalid spec (issue 9, finding 7): the registry
reports it ``invalid`` with the reason — which the worker dead-letters (``_spec_record``) like any other
invalid spec — and keeps the spec it had."""

from __future__ import annotations

import orjson

from cpkmon.capability.spec import Spec
from cpkmon.stream.specs import SpecRegistry

KEY = b"L1/bore"


def _record(**fields: object) -> bytes:
    return orjson.dumps({"line": "L1", "characteristic": "bore", **fields})


def test_target_outside_the_limits_is_invalid_and_keeps_the_old_spec() -> None:
    reg = SpecRegistry(default_subgroup_size=5)
    assert reg.apply_record(KEY, _record(lsl=73.95, usl=74.05, target=74.0)).action == "set"
    version = reg.version
    change = reg.apply_record(KEY, _record(lsl=73.95, usl=74.05, target=74.2))
    assert change.action == "invalid"
    assert change.reason is not None and "target (74.2) must lie within the spec limits" in change.reason
    assert change.line == "L1" and change.characteristic == "bore"
    assert reg.get("L1", "bore") == Spec(lsl=73.95, usl=74.05, target=74.0, subgroup_size=5)
    assert reg.version == version


def test_one_sided_and_on_the_limit() -> None:
    reg = SpecRegistry()
    assert reg.apply_record(b"L1/flat", _record(characteristic="flat", usl=0.05, target=0.0)).action == "set"
    assert reg.apply_record(b"L1/flat", _record(characteristic="flat", usl=0.05, target=0.05)).action == "set"
    bad = reg.apply_record(b"L1/flat", _record(characteristic="flat", usl=0.05, target=0.06))
    assert bad.action == "invalid" and bad.reason is not None and "above usl" in bad.reason
