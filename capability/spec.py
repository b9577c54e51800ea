"""The specification of one characteristic (SPEC §2 ``cpkmon.specs``), validated once at the edge.

Why a frozen dataclass that validates in ``__post_init__``: every path that builds a spec (Kafka topic,
start-up file, HTTP PUT, CLI) gets the same checks and the same reasons in its ``ValueError``, which the
callers turn into a dead-letter reason or a 422.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

MAX_SUBGROUP_SIZE = 25


def target_problem(lsl: float | None, usl: float | None, target: float | None) -> str | None:
    """Why ``target`` is not acceptable for these limits, or None.

    A target must lie within the spec limits (LSL ≤ T ≤ USL; on a limit is allowed, as a one-sided spec's
    natural bound often is). Why reject rather than compute: Cpm = (USL − LSL) / 6√(σ² + (μ − T)²) presumes a
    target inside the tolerance; with T outside it a process entirely out of spec got Cpm 3.005 beside Cpk
    −5.9. Shared by :class:`Spec` and the API's request model, so every path gives the same reason.
    """
    if target is None:
        return None
    if lsl is not None and target < lsl:
        return f"target ({target}) must lie within the spec limits: it is below lsl ({lsl})"
    if usl is not None and target > usl:
        return f"target ({target}) must lie within the spec limits: it is above usl ({usl})"
    return None


def _number(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return x


@dataclass(frozen=True, slots=True)
class Spec:
    """Limits, optional target, nominal subgroup size and optional known process center/sigma.

    ``subgroup_size`` None means "the option ``subgroup_size``" (SPEC default 5); see :meth:`size`.
    """

    lsl: float | None = None
    usl: float | None = None
    target: float | None = None
    subgroup_size: int | None = None
    center: float | None = None
    sigma: float | None = None

    def __post_init__(self) -> None:
        for name in ("lsl", "usl", "target", "center", "sigma"):
            object.__setattr__(self, name, _number(name, getattr(self, name)))
        if self.lsl is None and self.usl is None:
            raise ValueError("a spec needs at least one of lsl and usl")
        if self.lsl is not None and self.usl is not None and not self.lsl < self.usl:
            raise ValueError(f"lsl ({self.lsl}) must be less than usl ({self.usl})")
        problem = target_problem(self.lsl, self.usl, self.target)
        if problem is not None:
            raise ValueError(problem)
        n = self.subgroup_size
        if n is not None and (
            isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SUBGROUP_SIZE
        ):
            raise ValueError(f"subgroup_size must be an integer from 1 to {MAX_SUBGROUP_SIZE}, not {n!r}")
        if (self.center is None) != (self.sigma is None):
            raise ValueError("center and sigma (known process parameters) must be given together")
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, not {self.sigma}")

    @property
    def shift(self) -> float:
        """The value every measurement is stored relative to: the midpoint, or the one limit of a
        one-sided spec.

        Why: with values near 1e6 and limits 5e-3 apart, ``usl − mean`` must be ``(usl − shift) −
        mean_dev`` to be
        exact; near the limits, ``x − shift`` is exact (Sterbenz) for the data that matter.
        """
        if self.lsl is not None and self.usl is not None:
            return self.lsl + (self.usl - self.lsl) / 2.0
        limit = self.lsl if self.lsl is not None else self.usl
        assert limit is not None
        return limit

    @property
    def known(self) -> bool:
        """Whether the spec carries known process parameters (then the control chart needs no baseline)."""
        return self.center is not None and self.sigma is not None

    def size(self, default: int) -> int:
        """The nominal subgroup size: the spec's, else ``default`` (``Options.subgroup_size``)."""
        return self.subgroup_size if self.subgroup_size is not None else default

    @classmethod
    def from_dict(cls, data: Mapping[str, object], restore: bool = False) -> Spec:
        """From a ``cpkmon.specs`` record (extra keys such as ``line``/``characteristic`` are ignored).

        ``restore=True`` (state from a checkpoint): a target outside the limits, which releases before the
        target check accepted, is dropped instead of failing the restore — such a spec can no longer be
        set, and one bad characteristic must not keep a whole line from restoring.
        """
        if not isinstance(data, Mapping):
            raise ValueError("a spec must be a JSON object")
        n = data.get("subgroup_size")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
            if isinstance(n, float) and n.is_integer():
                n = int(n)
            else:
                raise ValueError(f"subgroup_size must be an integer from 1 to {MAX_SUBGROUP_SIZE}, not {n!r}")
        # numbers checked here, not only in __post_init__: the mypyc-compiled class rejects a non-float
        # argument with TypeError before __post_init__ runs; untrusted input must fail with ValueError on both
        lsl, usl, target, center, sigma = (
            _number(k, data.get(k)) for k in ("lsl", "usl", "target", "center", "sigma")
        )
        if restore and target is not None and target_problem(lsl, usl, target):
            target = None
        return cls(lsl=lsl, usl=usl, target=target, subgroup_size=n, center=center, sigma=sigma)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"lsl": self.lsl, "usl": self.usl, "target": self.target}
        if self.subgroup_size is not None:
            d["subgroup_size"] = self.subgroup_size
        if self.center is not None:
            d["center"] = self.center
            d["sigma"] = self.sigma
        return d
