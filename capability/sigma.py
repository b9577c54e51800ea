"""Sigma level from DPMO with the 1.5σ-shift convention (SPEC §4): Φ⁻¹(1 − DPMO/10⁶) + 1.5.

Why ``statistics.NormalDist`` and the mirrored form −Φ⁻¹(p): the core imports no scipy, and for small DPMO (p
= 1e-6) ``1 − p`` would throw away digits of p before the inverse CDF sees it; Φ⁻¹(1 − p) = −Φ⁻¹(p) keeps
them.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_STD = NormalDist()
SHIFT = 1.5


def sigma_level(dpmo: float) -> float:
    """Sigma level of a defect rate in defects per million opportunities, 0 ≤ dpmo ≤ 10⁶.

    ``dpmo == 0`` returns ``math.inf`` (no defect seen: the level is unbounded) and ``dpmo == 10⁶`` returns
    ``-math.inf``; callers that emit JSON must map infinities themselves (e.g. to null or a cap). Raises
    ``ValueError`` for NaN or values outside [0, 10⁶].
    """
    if isinstance(dpmo, bool) or not isinstance(dpmo, int | float) or math.isnan(dpmo):
        raise ValueError(f"dpmo must be a number, not {dpmo!r}")
    if not 0.0 <= dpmo <= 1e6:
        raise ValueError(f"dpmo must be within [0, 1e6], not {dpmo}")
    if dpmo == 0:
        return math.inf
    if dpmo == 1e6:
        return -math.inf
    return -_STD.inv_cdf(dpmo / 1e6) + SHIFT
