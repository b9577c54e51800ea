"""Control-chart constants d2(n), d3(n) and c4(n), to full double precision.

Why not the 3-decimal textbook table: published SAS results (and the 1e-9 agreement the SPEC asks for) need
the exact values; the table's d2(2) = 1.128 is 3.4e-4 relative off the integral.

How the table below was made (once, offline, with scipy 1.17 ``integrate.quad`` at epsabs=1e-15, epsrel=1e-14
and ``special.ndtr``):

* d2(n) = E[R]/sigma = ∫ [1 − Φ(x)ⁿ − (1 − Φ(x))ⁿ] dx over the real line;
* d3(n) = sqrt(E[R²] − d2²) with E[R²] = 2 ∫₀^∞ ∫ [1 − (1 − Φ(x))ⁿ − Φ(x + r)ⁿ + (Φ(x + r) − Φ(x))ⁿ] dx dr
  (the probability that min ≤ x and max ≥ x + r, integrated over the gap r);
* n = 2 uses the closed forms d2 = 2/√π and d3 = √(2 − 4/π).

``tests/capability/test_constants.py`` recomputes d2 by integration and compares the table with the
independent mpmath values in ``shared/data/constants.csv`` (agreement ≤ 3e-14 relative for both d2 and d3).

c4(n) = √(2/(n−1)) · Γ(n/2)/Γ((n−1)/2) is evaluated in closed form: with ``math.lgamma`` for small n and, for
larger n where the difference of two large lgammas would cancel, with the asymptotic series of ln Γ(z + ½) −
ln Γ(z) − ½ ln z (Bernoulli numbers; z = (n−1)/2), so that pooled c4(d+1) stays accurate to ~1e-15 for d up to
millions.
"""

from __future__ import annotations

import math

MAX_N = 25

# index 0 is n = 2
_D2 = (
    1.1283791670955126,  # n = 2
    1.692568750643269,  # n = 3
    2.058750746007928,  # n = 4
    2.325928947281039,  # n = 5
    2.5344127212229424,  # n = 6
    2.7043567512138083,  # n = 7
    2.847200612090554,  # n = 8
    2.970026324418472,  # n = 9
    3.0775054616703446,  # n = 10
    3.1728727038159996,  # n = 11
    3.2584552797438255,  # n = 12
    3.3359803540982536,  # n = 13
    3.406763108199952,  # n = 14
    3.471826889882074,  # n = 15
    3.5319827861095736,  # n = 16
    3.587883961765381,  # n = 17
    3.640063757937443,  # n = 18
    3.688963023207648,  # n = 19
    3.7349501195966397,  # n = 20
    3.778335829842619,  # n = 21
    3.8193846433628322,  # n = 22
    3.858323423285005,  # n = 23
    3.8953481484513546,  # n = 24
    3.9306292195071104,  # n = 25
)
_D3 = (
    0.8525024664274217,  # n = 2
    0.8883680040452051,  # n = 3
    0.8798082028249827,  # n = 4
    0.8640819410995031,  # n = 5
    0.8480396861174945,  # n = 6
    0.8332053356222929,  # n = 7
    0.8198314897919485,  # n = 8
    0.8078342745533251,  # n = 9
    0.7970506735194163,  # n = 10
    0.7873146205503249,  # n = 11
    0.7784783412033829,  # n = 12
    0.7704162020637587,  # n = 13
    0.7630230956247914,  # n = 14
    0.7562114297279429,  # n = 15
    0.7499080894099249,  # n = 16
    0.7440517839607337,  # n = 17
    0.7385908533781702,  # n = 18
    0.7334814955188637,  # n = 19
    0.7286863457073057,  # n = 20
    0.7241733407174957,  # n = 21
    0.7199148084342151,  # n = 22
    0.7158867354918191,  # n = 23
    0.712068175147939,  # n = 24
    0.7084407658886576,  # n = 25
)


# MVLUE-R weights f(n) = d2(n)²/d3(n)², precomputed for the hot path (index 0 is n = 2).
_F = tuple((a / b) ** 2 for a, b in zip(_D2, _D3, strict=True))

#: Read-only views for the hot path (index 0 is n = 2): d2(n) and the MVLUE-R weight f(n), without a call.
D2_TABLE: tuple[float, ...] = _D2
MVLUE_WEIGHTS: tuple[float, ...] = _F


def d2(n: int) -> float:
    """Expected range of n standard normal values, n = 2..25."""
    if not 2 <= n <= MAX_N:
        raise ValueError(f"d2 is tabulated for n = 2..{MAX_N}, not {n}")
    return _D2[n - 2]


def d3(n: int) -> float:
    """Standard deviation of the range of n standard normal values, n = 2..25."""
    if not 2 <= n <= MAX_N:
        raise ValueError(f"d3 is tabulated for n = 2..{MAX_N}, not {n}")
    return _D3[n - 2]


def mvlue_weight(n: int) -> float:
    """f(n) = d2(n)²/d3(n)², the weight of a size-n subgroup's range in the MVLUE-R estimator."""
    if not 2 <= n <= MAX_N:
        raise ValueError(f"MVLUE-R weights exist for n = 2..{MAX_N}, not {n}")
    return _F[n - 2]


# Coefficients of z^-k (k = 1, 3, 5, ...) in ln Γ(z + ½) − ln Γ(z) − ½ ln z
#   = Σ (2^-k − 2) B_{k+1} / (k (k+1) z^k)  (odd k; B = Bernoulli numbers).
_C4_SERIES = (
    (1, -1.0 / 8.0),
    (3, 1.0 / 192.0),
    (5, -1.0 / 640.0),
    (7, 17.0 / 14336.0),
    (9, -31.0 / 18432.0),
    (11, 691.0 / 180224.0),
)
# From n = 24 on the series errs by < 4e-16; below it the lgamma values are < 25 and their difference
# is exact to ~4e-15.
_C4_SERIES_FROM = 24


def c4(n: int | float) -> float:
    """Bias correction of the sample standard deviation: E[s] = c4(n)·σ, for any n ≥ 2."""
    if not n >= 2 or math.isinf(n):
        raise ValueError(f"c4 needs n >= 2 (finite), not {n}")
    z = (n - 1) / 2.0
    if n < _C4_SERIES_FROM:
        return math.sqrt(1.0 / z) * math.exp(math.lgamma(n / 2.0) - math.lgamma(z))
    inv = 1.0 / z
    inv2 = inv * inv
    s = 0.0
    p = inv
    for _k, coef in _C4_SERIES:
        s += coef * p
        p *= inv2
    return math.exp(s)
