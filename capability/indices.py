"""Capability indices and the Bissell confidence interval for Cpk (SPEC §4).

Why every formula takes deviations from ``shift``: with values near 1e6 and limits 5e-3 away, ``USL − μ``
computed from a mean rounded to a double is already ~1e-8 relative off; ``(USL − shift) − mean_dev`` is exact
to the last bit (Sterbenz), which is what the reference cases need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cpkmon.capability.spec import Spec

#: Φ⁻¹(0.975), as qcc and SAS use it (a rounded 1.96 misses SAS's 6th published decimal).
Z975 = 1.959963984540054


def bissell_ci(cpk: float, n: int, z: float = Z975) -> tuple[float, float]:
    """Cpk ± z·√(1/(9n) + Cpk²/(2(n−1))), ordered lo ≤ hi (also for negative Cpk)."""
    half = z * math.sqrt(1.0 / (9.0 * n) + cpk * cpk / (2.0 * (n - 1)))
    return cpk - half, cpk + half


# not frozen: one is built per subgroup close, and a frozen dataclass's __init__ (object.__setattr__ each)
# costs twice as much (issue 11's profile); treated as a value — nothing assigns to it after construction
@dataclass(slots=True)
class Indices:
    cp: float | None = None
    cpu: float | None = None
    cpl: float | None = None
    cpk: float | None = None
    pp: float | None = None
    ppu: float | None = None
    ppl: float | None = None
    ppk: float | None = None
    cpm: float | None = None
    cpk_ci: tuple[float, float] | None = None

    @classmethod
    def compute(
        cls,
        spec: Spec,
        shift: float,
        n: int,
        mean_dev: float,
        sigma_within: float | None,
        sigma_overall: float | None,
    ) -> Indices:
        """Indices of ``n`` values with mean ``shift + mean_dev``; a σ that is None or ≤ 0 leaves its
        indices None."""
        lsl, usl = spec.lsl, spec.usl
        up = None if usl is None else (usl - shift) - mean_dev  # USL − μ without cancellation
        lo = None if lsl is None else mean_dev - (lsl - shift)  # μ − LSL
        width = None if lsl is None or usl is None else usl - lsl
        cp = cpu = cpl = cpk = pp = ppu = ppl = ppk = cpm = None
        ci: tuple[float, float] | None = None
        sw = sigma_within if sigma_within is not None and sigma_within > 0.0 else None
        so = sigma_overall if sigma_overall is not None and sigma_overall > 0.0 else None
        if sw is not None:
            cp = None if width is None else width / (6.0 * sw)
            cpu = None if up is None else up / (3.0 * sw)
            cpl = None if lo is None else lo / (3.0 * sw)
            cpk = _min(cpu, cpl)
            if width is not None and spec.target is not None:
                off = mean_dev - (spec.target - shift)
                cpm = width / (6.0 * math.sqrt(sw * sw + off * off))
            if cpk is not None and n >= 2:
                ci = bissell_ci(cpk, n)
        if so is not None:
            pp = None if width is None else width / (6.0 * so)
            ppu = None if up is None else up / (3.0 * so)
            ppl = None if lo is None else lo / (3.0 * so)
            ppk = _min(ppu, ppl)
        return cls(cp, cpu, cpl, cpk, pp, ppu, ppl, ppk, cpm, ci)


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b
