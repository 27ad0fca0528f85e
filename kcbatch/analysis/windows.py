"""What both converged protocols share: the windows, the crossing and the stopping rule.

``kcbatch.analysis.converge`` (the exhaustive protocol and the estimators) and
``kcbatch.analysis.adaptive`` (the adaptive one) read a window the same way:
:func:`window_starts` says when the windows start, :func:`window_means`
what a window's samples give, :func:`grid_crossing` reads the crossing of a
window's r and its uncertainty, and :func:`settled` and :func:`stops` are the
network stopping rule (docs/design.md, "Step 6").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kcbatch.analysis.crossing import first_crossing
from kcbatch.protocol.config import ConfigError, first_auto_transient, steps_for

__all__ = ["NOISE_FACTOR", "Crossing", "MeasuredWindows", "bracket_crossing", "grid_crossing",
           "narrowed", "settled", "stops", "window_means", "window_starts"]

NOISE_FACTOR = 1.0


def window_means(samples: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray,
                                                         np.ndarray, np.ndarray]:
    """(mean, std, first half's mean, second half's mean) ``[M, W]`` of a window's
    samples ``[M, W, nS]`` of r, ``half`` samples in the first half; as
    kcbatch.analysis.crossing.make_record, no halves (the mean twice) with a
    single sample (``half`` 0)."""
    with np.errstate(all="ignore"):
        mean, std = samples.mean(axis=2), samples.std(axis=2)
        first = samples[:, :, :half].mean(axis=2) if half else mean
        second = samples[:, :, half:].mean(axis=2) if half else mean
    return mean, std, first, second


def window_starts(dt: float, t_max: float, n_measure: int) -> list[int]:
    """Steps at which the "auto" windows start: ``n_0 = min(5, t_max)/dt``,
    ``n_{j+1} = min(n_max, max(2 n_j, n_j + n_measure))``, ending at ``n_max =
    t_max/dt``. Both times must be whole multiples of dt (ConfigError otherwise)."""
    n_max = steps_for(t_max, dt, "t_max", min_steps=1)
    first = first_auto_transient(t_max)
    try:
        n = steps_for(first, dt, "dt")
    except ConfigError:
        raise ConfigError("dt", dt, f'must divide the first transient {first:g} of '
                          f't_transient="auto"') from None
    if n < 1:
        raise ConfigError("t_max", t_max, f"must be at least one step (dt={dt!r})")
    starts = [n]
    while starts[-1] < n_max:
        starts.append(min(n_max, max(2 * starts[-1], starts[-1] + n_measure)))
    return starts


@dataclass(frozen=True)
class Crossing:
    """The crossing of one window's r(K) on a network's grid.

    kc, kc_interp: grid rule and linear crossing (K[0] when left-censored, NaN
    when right-censored or failed); sigma: kc_interp's uncertainty from the
    spread of r (NaN unless censored is "none"); censored: "none", "left",
    "right" or "failed"; index: grid index of kc (-1 when right-censored or
    failed): the bracket is ``[index - 1, index]``."""

    kc: float
    kc_interp: float
    sigma: float
    censored: str
    index: int


@dataclass(frozen=True, eq=False)
class MeasuredWindows:
    """What a converged protocol's windows measured (the adaptive protocol's
    :func:`~kcbatch.analysis.adaptive.adaptive_windows` or the exhaustive one's
    in :mod:`kcbatch.analysis.converge`), per network (G networks, nK grid
    couplings, W windows).

    r, r_std, r_first, r_second [G, nK] float64: of each column's last window.
    last_window [G, nK] int64: the window each column was last integrated in
      (the exhaustive protocol: every column its network's final window).
    final: the crossing of each network's final window; final_start [G] int64:
      its start (steps); final_window [G] int64: its index.
    converged [G] bool; kc_windows [G, W] float64 (NaN where not measured).
    kc_refined [G] float64 (NaN without refinement, censored or failed).
    work, refine_work [G] int64: (row, K) system-steps integrated for each
      network's windows and refinement (its couplings; a chunk's padding lanes,
      which a CPU vector computes anyway, are not systems of the protocol).
    """

    r: np.ndarray
    r_std: np.ndarray
    r_first: np.ndarray
    r_second: np.ndarray
    last_window: np.ndarray
    final: list[Crossing]
    final_start: np.ndarray
    final_window: np.ndarray
    converged: np.ndarray
    kc_windows: np.ndarray
    kc_refined: np.ndarray
    work: np.ndarray
    refine_work: np.ndarray


def grid_crossing(k: np.ndarray, r: np.ndarray, r_std: np.ndarray,
                  threshold: float) -> Crossing:
    """The grid rule (kcbatch.analysis.crossing) on ``r`` [nK] at the grid ``k``
    [nK], plus the crossing's sigma from ``r_std`` [nK], the spread of the samples:
    moving r by that much at the bracket moves the linear crossing by ``dK *
    hypot(s_lo, s_hi) / (r_hi - r_lo)`` (capped at the bracket width dK)."""
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(r_std))):
        return Crossing(math.nan, math.nan, math.nan, "failed", -1)
    res = first_crossing(k, r, threshold)
    if res.censored == "right":
        return Crossing(math.nan, math.nan, math.nan, "right", -1)
    assert res.kc is not None and res.kc_interp is not None and res.index is not None  # not right
    if res.censored == "left":
        return Crossing(res.kc, res.kc_interp, math.nan, "left", 0)
    i = res.index
    width = float(k[i] - k[i - 1])
    sigma = min(width, width * math.hypot(r_std[i - 1], r_std[i]) / float(r[i] - r[i - 1]))
    return Crossing(res.kc, res.kc_interp, sigma, "none", i)


def settled(prev: Crossing | None, cur: Crossing, kc_tol: float, noise_factor: float) -> bool:
    """The stopping rule: the crossing moved by at most ``max(kc_tol,
    noise_factor sqrt(2) sigma)`` since the previous window (``sigma`` of the
    later window: the earlier one's spread still holds the transient's drift);
    never with a right-censored or failed window on either side."""
    if prev is None or prev.censored in ("right", "failed") or cur.censored in ("right", "failed"):
        return False
    noise = math.sqrt(2.0) * np.nan_to_num(cur.sigma)
    return abs(cur.kc_interp - prev.kc_interp) <= max(kc_tol, noise_factor * noise)


def stops(done: bool, cur: Crossing, window: int, n_windows: int) -> bool:
    """Whether a network integrates no further window after window ``window``
    (0-based, of ``n_windows``): it settled (``done``), its crossing failed, or
    this was the last window."""
    return done or cur.censored == "failed" or window == n_windows - 1


def narrowed(lo: float, hi: float, r_lo: float, r_hi: float, ks: np.ndarray, rs: np.ndarray,
             threshold: float) -> tuple[float, float, float, float] | None:
    """One refinement round of one network: the first crossing of the
    threshold read left to right over the bracket's ends ``lo`` < ``ks`` [P] <
    ``hi`` and their r (``r_hi`` > threshold, so there is one), as the new
    bracket ``(lo, hi, r_lo, r_hi)``; None when some r is not finite (failed)."""
    kk = np.concatenate(([lo], ks, [hi]))
    rr = np.concatenate(([r_lo], rs, [r_hi]))
    if not np.all(np.isfinite(rr)):
        return None
    i = int(np.flatnonzero(rr > threshold)[0])
    return float(kk[i - 1]), float(kk[i]), float(rr[i - 1]), float(rr[i])


def bracket_crossing(lo: np.ndarray, hi: np.ndarray, r_lo: np.ndarray, r_hi: np.ndarray,
                     threshold: float) -> np.ndarray:
    """The linear crossing of the threshold in each bracket [B] (NaN where the
    bracket is)."""
    with np.errstate(all="ignore"):
        t = (threshold - r_lo) / (r_hi - r_lo)
        return np.clip(lo + t * (hi - lo), lo, hi)
