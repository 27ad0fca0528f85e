"""Finite-size scaling: the weighted fit ``Kc(N) = Kc_inf + a N^-b`` (numpy only).

For a fixed exponent ``b`` the model is linear in ``(Kc_inf, a)``, so the fit
profiles chi^2 over ``b`` (weighted linear least squares at each ``b``, a grid
over ``B_RANGE`` then a golden-section refinement) instead of iterating a
nonlinear solver from a guess. The covariance of ``(Kc_inf, a, b)`` is
``(J^T W J)^-1`` at the optimum, scaled by the reduced chi^2 only where that
exceeds 1: points that scatter more than their CIs allow widen the errors,
points that scatter less never shrink them below what the CIs give (so the
error is ``scipy.optimize.curve_fit``'s with ``absolute_sigma=True`` when
chi^2/dof <= 1, and with ``absolute_sigma=False`` above). With three
parameters on a handful of points that linearised error undercovers (about 92%
for a nominal 95% on six sizes), so Kc_inf also gets its 95% profile-likelihood
interval (chi^2 minimised over a and b at each Kc_inf, the same scaling), and
its reported error is the larger of the two: ``kc_inf_err`` never claims more
certainty than either (coverage measured in tests/test_fss.py).

The fit ends in one :attr:`FitResult.verdict`, which the console, ``fit.json``
and the figure all print: a limit is called finite only when the model
describes the data (p >= POOR_FIT_P) and the limit is determined (relative
error <= 1) and away from 0; otherwise it says why no limit is claimed.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["B_RANGE", "POOR_FIT_P", "FitResult", "Limit", "chi2_sf", "fit_power_law", "model",
           "sigma_from_ci"]

# Exponents searched. Below 0.01 N^-b is nearly constant over any feasible range
# of N and cannot be told from Kc_inf; above 4 the correction has vanished
# by N ~ 100 and b is not determined either.
B_RANGE = (0.01, 4.0)
_B_GRID = 400
# The profile's grid over b: fine enough that its minimum is within 1e-4 of chi^2's.
_PROFILE_B = np.geomspace(B_RANGE[0], B_RANGE[1], 2000)
# The chi^2 quantile of a 95% interval for one parameter.
_CHI2_95 = 3.841458820694124
# A fit whose chi^2 is this improbable (p below it) is called poor.
POOR_FIT_P = 0.01
# |Kc_inf| below this many standard errors: consistent with 0.
ZERO_SIGMAS = 2.0
# A parameter whose standard error exceeds this fraction of its value is not
# determined by the data.
UNDETERMINED_REL_ERR = 1.0
# The 95% CI half-width of a mean is 1.96 standard errors (normal quantile).
_Z95 = 1.959963984540054


def model(n: np.ndarray, kc_inf: float, a: float, b: float) -> np.ndarray:
    """``Kc_inf + a N^-b`` at sizes ``n`` (any shape; same units as Kc)."""
    return kc_inf + a * np.power(np.asarray(n, dtype=np.float64), -b)


def sigma_from_ci(lo: float, hi: float) -> float:
    """The standard error a 95% CI ``[lo, hi]`` of a mean implies: half its width / 1.96."""
    return (hi - lo) / (2.0 * _Z95)


def chi2_sf(x: float, dof: int) -> float:
    """P(chi^2_dof > x): the regularised upper incomplete gamma Q(dof/2, x/2)
    (series below a+1, Lentz's continued fraction above; ~1e-14 relative)."""
    if dof < 1:
        raise ValueError(f"dof must be >= 1, got {dof}")
    if not x > 0:
        return 1.0
    a, z = 0.5 * dof, 0.5 * x
    log_pre = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= z / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_pre))
    tiny = 1e-300
    b = z + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(1.0, math.exp(log_pre) * h)


class Limit(enum.StrEnum):
    """What the fit says of Kc as N -> infinity."""

    FINITE = "finite"  # determined and away from 0
    ZERO = "zero"  # consistent with 0
    UNDETERMINED = "undetermined"  # a poor fit, or an error larger than the value


@dataclass(frozen=True)
class FitResult:
    """The fit of ``Kc(N) = kc_inf + a N^-b``.

    kc_inf, a: in the units of Kc (rad/time; ``a`` times N^b); b dimensionless.
    ``*_err``: standard errors (square roots of ``cov``'s diagonal), ``cov``
    ``[3, 3]`` over (kc_inf, a, b). chi2 of the weighted residuals, ``dof`` =
    points - 3, ``p_value`` = P(chi^2_dof > chi2). ``constant``: the size-independent
    fit (the weighted mean, its error scaled alike, ``constant_p_value`` with points - 1
    dof), which stands for Kc_inf when b runs to the range's lower edge (there a
    N^-b is indistinguishable from Kc_inf and both errors explode).
    ``kc_inf_consistent_with_zero`` judges that estimate. ``undetermined``:
    the parameters (of kc_inf, a, b) whose relative error exceeds 1.
    ``kc_inf_lo``, ``kc_inf_hi``: Kc_inf's 95% profile-likelihood interval;
    ``kc_inf_err`` is the larger of the linearised error and that interval's
    half-width / 1.96 (module docstring).
    ``monotonic``: +1 / -1 when Kc rises / falls at every step in N, else 0.
    ``limit`` and ``verdict``: what is claimed of Kc as N -> infinity and the
    one line that says it (module docstring). ``theory``, ``theory_z``: the
    like-for-like theory value compared with, and the limit's distance from it
    in standard errors (None without a theory). ``notes``: plain sentences.
    """

    kc_inf: float
    kc_inf_err: float
    a: float
    a_err: float
    b: float
    b_err: float
    chi2: float
    dof: int
    p_value: float
    n_points: int
    poor: bool
    kc_inf_consistent_with_zero: bool
    b_at_edge: bool
    constant: float
    constant_err: float
    constant_p_value: float
    cov: np.ndarray = field(repr=False)
    kc_inf_lo: float = math.nan
    kc_inf_hi: float = math.nan
    undetermined: tuple[str, ...] = ()
    monotonic: int = 0
    limit: Limit = Limit.UNDETERMINED
    verdict: str = ""
    theory: float | None = None
    theory_label: str | None = None
    theory_z: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / self.dof

    def statement(self) -> str:
        """One paragraph: the parameters with their errors, the goodness of fit, the notes."""
        def value(name: str, v: float, err: float, digits: str) -> str:
            shown = f"{name} = {v:{digits}} ± {err:.2g}"
            return shown + (" (not determined)" if name in self.undetermined else "")

        kc_inf = value("kc_inf", self.kc_inf, self.kc_inf_err, ".4g")
        a = value("a", self.a, self.a_err, ".4g")
        b = value("b", self.b, self.b_err, ".3g")
        head = (f"Kc(N) = Kc_inf + a N^-b: {kc_inf}, {a}, {b}; "
                f"chi2/dof = {self.chi2:.3g}/{self.dof} = {self.reduced_chi2:.3g}, "
                f"p = {self.p_value:.3g}.")
        return " ".join((head,) + self.notes + (f"Verdict: {self.verdict}",))

    def to_dict(self) -> dict[str, Any]:
        return {"kc_inf": self.kc_inf, "kc_inf_err": self.kc_inf_err, "a": self.a,
                "a_err": self.a_err, "b": self.b, "b_err": self.b_err, "chi2": self.chi2,
                "dof": self.dof, "reduced_chi2": self.reduced_chi2, "p_value": self.p_value,
                "n_points": self.n_points, "poor": self.poor,
                "kc_inf_consistent_with_zero": self.kc_inf_consistent_with_zero,
                "b_at_edge": self.b_at_edge, "constant": self.constant,
                "constant_err": self.constant_err, "constant_p_value": self.constant_p_value,
                "cov": self.cov.tolist(), "kc_inf_lo": self.kc_inf_lo,
                "kc_inf_hi": self.kc_inf_hi, "undetermined": list(self.undetermined),
                "monotonic": self.monotonic, "limit": str(self.limit),
                "theory": self.theory, "theory_label": self.theory_label,
                "theory_z": self.theory_z, "verdict": self.verdict,
                "statement": self.statement()}


def _linear(b: float, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """(kc_inf, a, chi2) of the weighted linear fit at exponent ``b``."""
    g = np.power(x, -b)
    sw, sg, sgg = w.sum(), (w * g).sum(), (w * g * g).sum()
    sy, sgy = (w * y).sum(), (w * g * y).sum()
    det = sw * sgg - sg * sg
    if not det > 0:
        return math.nan, math.nan, math.inf
    a = (sw * sgy - sg * sy) / det
    c = (sy - a * sg) / sw
    r = y - c - a * g
    return c, a, float((w * r * r).sum())


def _profile_chi2(c: float, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """chi^2 at Kc_inf = ``c``, minimised over a (closed form) and b (the grid)."""
    g = np.power(x[None, :], -_PROFILE_B[:, None])  # [nb, points]
    r = y - c
    a = (w * g * r).sum(axis=1) / (w * g * g).sum(axis=1)
    return float((w * (r - a[:, None] * g) ** 2).sum(axis=1).min())


def _profile_interval(c_hat: float, step: float, target: float, x: np.ndarray,
                      y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """The Kc_inf on each side of ``c_hat`` where the profile chi^2 reaches ``target``."""
    ends = []
    for sign in (-1.0, 1.0):
        inside, outside = c_hat, c_hat + sign * step
        for _ in range(60):
            if _profile_chi2(outside, x, y, w) >= target:
                break
            inside, outside = outside, c_hat + 2.0 * (outside - c_hat)
        else:
            ends.append(sign * math.inf)
            continue
        for _ in range(60):
            mid = 0.5 * (inside + outside)
            if _profile_chi2(mid, x, y, w) < target:
                inside = mid
            else:
                outside = mid
        ends.append(0.5 * (inside + outside))
    return ends[0], ends[1]


def _golden(f, lo: float, hi: float, iters: int = 80) -> float:
    inv = (math.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = hi - inv * (hi - lo), lo + inv * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(iters):
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - inv * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + inv * (hi - lo)
            f2 = f(x2)
    return x1 if f1 <= f2 else x2


def fit_power_law(n: Sequence[float] | np.ndarray, kc: Sequence[float] | np.ndarray,
                  sigma: Sequence[float] | np.ndarray, *, theory: float | None = None,
                  theory_label: str = "theory") -> FitResult:
    """Fit ``kc = Kc_inf + a n^-b`` weighted by ``1/sigma^2``.

    n: sizes (> 0), kc: the Kc estimates, sigma: their standard errors (> 0,
    e.g. :func:`sigma_from_ci`), all ``[points]``; at least 4 points (3
    parameters and one degree of freedom). ``theory``: a like-for-like theory
    value of the limit (same units as kc; e.g. the mean-field crossing of the
    threshold), compared with Kc_inf as a z-score; ``theory_label`` names it.
    ValueError for anything else.
    """
    x = np.asarray(n, dtype=np.float64)
    y = np.asarray(kc, dtype=np.float64)
    s = np.asarray(sigma, dtype=np.float64)
    if not (x.shape == y.shape == s.shape and x.ndim == 1):
        raise ValueError("n, kc and sigma must be 1-D and of the same length")
    if x.size < 4:
        raise ValueError(f"need at least 4 points for 3 parameters, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(s))):
        raise ValueError("n, kc and sigma must be finite")
    if np.any(x <= 0) or np.any(s <= 0):
        raise ValueError("n and sigma must be > 0")
    if np.unique(x).size < 4:
        raise ValueError("need at least 4 distinct sizes")
    w = 1.0 / s**2

    def chi2_at(b: float) -> float:
        return _linear(b, x, y, w)[2]

    grid = np.geomspace(*B_RANGE, _B_GRID)
    chis = np.array([chi2_at(b) for b in grid])
    i = int(np.argmin(chis))
    b = _golden(chi2_at, float(grid[max(i - 1, 0)]), float(grid[min(i + 1, grid.size - 1)]))
    c, a, chi2 = _linear(b, x, y, w)
    dof = x.size - 3
    g = np.power(x, -b)
    jac = np.column_stack([np.ones_like(x), g, -a * np.log(x) * g])
    # Columns scaled to unit norm before the inverse: a N^-b spans many decades.
    scale = np.linalg.norm(jac, axis=0)
    scale[scale == 0] = 1.0
    js = jac / scale
    cov_s = np.linalg.pinv(js.T @ (w[:, None] * js))
    # Scatter beyond the CIs widens the errors; scatter within them never narrows them.
    cov = cov_s / np.outer(scale, scale) * max(1.0, chi2 / dof)
    err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    target = chi2 + _CHI2_95 * max(1.0, chi2 / dof)
    kc_lo, kc_hi = _profile_interval(float(c), max(float(err[0]), 1e-9 * max(abs(c), 1.0)),
                                     target, x, y, w)
    err[0] = max(float(err[0]), (kc_hi - kc_lo) / (2.0 * _Z95))
    p = chi2_sf(chi2, dof)
    k0 = float((w * y).sum() / w.sum())
    chi2_0 = float((w * (y - k0) ** 2).sum())
    err0 = math.sqrt(max(1.0, chi2_0 / (x.size - 1)) / w.sum())
    p0 = chi2_sf(chi2_0, x.size - 1)
    low_edge = bool(b <= grid[1])
    edge = low_edge or bool(b >= grid[-2])
    poor = p < POOR_FIT_P
    # At b's lower edge Kc_inf and a are degenerate: judge the constant instead.
    kc_est, kc_err = (k0, err0) if low_edge else (float(c), float(err[0]))
    zero = bool(abs(kc_est) < ZERO_SIGMAS * kc_err)
    notes = []
    if poor:
        notes.append(f"The fit is poor (p = {p:.2g} < {POOR_FIT_P}): the points scatter about "
                     f"the curve more than their CIs allow, so the model or the CIs are wrong "
                     f"and the errors above are not to be trusted.")
    if low_edge:
        notes.append(f"b runs to the lower edge of the range searched ({B_RANGE[0]}): these "
                     f"sizes show no power-law approach, so Kc_inf and a are not determined; "
                     f"a size-independent Kc = {k0:.4g} ± {err0:.2g} fits with p = {p0:.2g}"
                     + (" (poorly)." if p0 < POOR_FIT_P else "."))
    elif edge:
        notes.append(f"b lies at the upper edge of the range searched ({B_RANGE[1]}): the "
                     f"correction has vanished at these sizes and b is not determined.")
    what = "The size-independent Kc" if low_edge else "Kc_inf"
    if zero:
        notes.append(f"{what} is consistent with 0 (|Kc_inf| < {ZERO_SIGMAS:g} sigma).")
    elif kc_err > 0:
        notes.append(f"{what} differs from 0 by {abs(kc_est) / kc_err:.1f} sigma.")
    else:
        notes.append(f"{what} has no spread (a perfect fit): its error is 0.")
    undetermined = tuple(name for name, v, e in (("kc_inf", c, err[0]), ("a", a, err[1]),
                                                  ("b", b, err[2]))
                         if not e <= UNDETERMINED_REL_ERR * abs(v))
    order = np.argsort(x)
    steps = np.diff(y[order])
    monotonic = 1 if np.all(steps > 0) else -1 if np.all(steps < 0) else 0
    p_used = p0 if low_edge else p
    kc_undetermined = not kc_err <= UNDETERMINED_REL_ERR * abs(kc_est)
    if p_used < POOR_FIT_P:
        limit = Limit.UNDETERMINED
        model_name = "a size-independent Kc" if low_edge else "Kc_inf + a N^-b"
        trend = ("" if monotonic == 0 else
                 f"; Kc {'rises' if monotonic > 0 else 'falls'} at every size "
                 f"({float(y[order][0]):.4g} to {float(y[order][-1]):.4g}), with no sign of "
                 f"levelling off")
        verdict = (f"poor fit (p = {p_used:.2g}): {model_name} does not describe these "
                   f"points{trend}; no limit as N -> infinity is claimed")
    elif kc_undetermined:
        limit = Limit.UNDETERMINED
        verdict = (f"fit acceptable (p = {p_used:.2g}), but {what} = {kc_est:.4g} ± "
                   f"{kc_err:.2g} is not determined (error larger than the value); no limit "
                   f"is claimed")
    elif zero:
        limit = Limit.ZERO
        verdict = (f"fit acceptable (p = {p_used:.2g}); {what} = {kc_est:.4g} ± {kc_err:.2g} "
                   f"is consistent with 0: no finite threshold as N -> infinity")
    else:
        limit = Limit.FINITE
        verdict = (f"fit acceptable (p = {p_used:.2g}); {what} = {kc_est:.4g} ± {kc_err:.2g}: "
                   f"a finite threshold as N -> infinity")
    theory_z = None
    if theory is not None and math.isfinite(theory) and limit is not Limit.UNDETERMINED \
            and kc_err > 0:
        theory_z = (kc_est - float(theory)) / kc_err
        agree = "agrees with" if abs(theory_z) < ZERO_SIGMAS else "differs from"
        verdict += (f"; it {agree} {theory_label} = {float(theory):.4g} "
                    f"(z = {theory_z:+.1f})")
    return FitResult(kc_inf=float(c), kc_inf_err=float(err[0]), a=float(a), a_err=float(err[1]),
                     b=float(b), b_err=float(err[2]), chi2=float(chi2), dof=dof, p_value=p,
                     n_points=int(x.size), poor=poor, kc_inf_consistent_with_zero=zero,
                     b_at_edge=edge, constant=k0, constant_err=err0, constant_p_value=p0,
                     cov=cov, kc_inf_lo=kc_lo, kc_inf_hi=kc_hi, undetermined=undetermined,
                     monotonic=monotonic, limit=limit,
                     verdict=verdict, theory=None if theory is None else float(theory),
                     theory_label=None if theory is None else theory_label,
                     theory_z=theory_z, notes=tuple(notes))
