"""Spec validation: clear reasons for every way a spec can be wrong."""

from __future__ import annotations

import math

import pytest

from cpkmon.capability.spec import Spec


def test_valid_specs_and_shift() -> None:
    s = Spec(lsl=73.95, usl=74.05, target=74.0, subgroup_size=5)
    assert s.shift == pytest.approx(74.0)
    assert Spec(usl=2.5).shift == 2.5
    assert Spec(lsl=92).shift == 92.0
    assert Spec(lsl=1, usl=2).size(5) == 5 and Spec(lsl=1, usl=2, subgroup_size=1).size(5) == 1
    k = Spec(lsl=1, usl=2, center=1.5, sigma=0.1)
    assert k.known and not s.known
    assert Spec.from_dict(k.to_dict()) == k
    assert (
        Spec.from_dict(
            {"line": "L1", "characteristic": "x", "lsl": 1, "usl": 2, "subgroup_size": 5.0}
        ).subgroup_size
        == 5
    )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({}, "at least one"),
        ({"lsl": 2.0, "usl": 1.0}, "less than"),
        ({"lsl": 1.0, "usl": 1.0}, "less than"),
        ({"lsl": math.nan, "usl": 1.0}, "finite"),
        ({"usl": math.inf}, "finite"),
        ({"usl": 1.0, "target": math.nan}, "finite"),
        ({"lsl": 73.95, "usl": 74.05, "target": 74.2}, "target .* above usl"),
        ({"lsl": 73.95, "usl": 74.05, "target": 73.9}, "target .* below lsl"),
        ({"usl": 1.0, "target": 1.5}, "within the spec limits"),
        ({"lsl": 1.0, "target": 0.5}, "within the spec limits"),
        ({"usl": 1.0, "subgroup_size": 0}, "subgroup_size"),
        ({"usl": 1.0, "subgroup_size": 26}, "subgroup_size"),
        ({"usl": 1.0, "subgroup_size": True}, "subgroup_size"),
        ({"usl": 1.0, "center": 0.5}, "together"),
        ({"usl": 1.0, "center": 0.5, "sigma": 0.0}, "sigma"),
        ({"usl": "1.0"}, "number"),
        ({"usl": True}, "number"),
    ],
)
def test_invalid_specs(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):  # untrusted input: ValueError on the pure and compiled core
        Spec.from_dict(kwargs)
    # the constructor's arguments are typed: the mypyc-compiled class rejects a non-number (str) with
    # TypeError before __post_init__ can say ValueError; a bool is an int and reaches __post_init__ on both
    wrong_type = any(isinstance(v, str) for v in kwargs.values())
    expected = (ValueError, TypeError) if wrong_type else ValueError
    with pytest.raises(expected, match=None if wrong_type else reason):
        Spec(**kwargs)  # type: ignore[arg-type]


def test_from_dict_rejects_non_integer_size() -> None:
    with pytest.raises(ValueError, match="subgroup_size"):
        Spec.from_dict({"usl": 1.0, "subgroup_size": 2.5})


def test_target_inside_or_on_a_limit_is_accepted() -> None:
    """Issue 9 (7): a target outside the limits gave Cpm 3.005 for a process with Cpk −5.9; it is rejected,
    a target on a limit (a one-sided spec's natural bound) is not."""
    assert Spec(lsl=1.0, usl=2.0, target=2.0).target == 2.0
    assert Spec(usl=0.05, target=0.0).target == 0.0
    assert Spec(lsl=1.0, usl=2.0, target=1.2).target == 1.2
    with pytest.raises(ValueError, match="target"):
        Spec.from_dict({"lsl": 1.0, "usl": 2.0, "target": 3.0})


def test_restore_drops_a_target_that_is_no_longer_accepted() -> None:
    """A checkpoint from a release that accepted any target still restores: the bad target is dropped."""
    restored = Spec.from_dict({"lsl": 1.0, "usl": 2.0, "target": 3.0, "subgroup_size": 5}, restore=True)
    assert restored == Spec(lsl=1.0, usl=2.0, subgroup_size=5)
    good = {"lsl": 1.0, "usl": 2.0, "target": 1.5}
    assert Spec.from_dict(good, restore=True) == Spec.from_dict(good)
