"""Kc of one run from its r(K) curve, and the run's :class:`RunRecord`.

The rule is the original script's: ``Kc`` is the first grid coupling ``K`` with
``r(K) > threshold`` (strictly greater). Beside it we keep the linearly
interpolated crossing between the two grid points that bracket it, which is
free of the grid's staircase (resolution ``dK``) but not a different rule: it
always lies in ``[K[i-1], K[i])`` where ``K[i]`` is the grid Kc.

Censoring:
  * ``"left"``: r already exceeds the threshold at ``K[0]``. The true crossing
    is somewhere at or below ``K[0]``; ``kc = kc_interp = K[0]`` (an upper
    bound) and both brackets are ``None`` (there is no grid point below).
  * ``"right"``: no grid ``K`` crosses. ``kc``, ``kc_interp``, the brackets and
    the stationarity are ``None``; the true crossing is above ``K[-1]``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kcbatch.analysis.records import RunRecord
from kcbatch.protocol.config import decimal_value
from kcbatch.theory.per_run import AT_THRESHOLD_FIELDS, THEORY_FIELDS

__all__ = ["KcResult", "first_crossing", "make_record", "record_from_means"]


@dataclass(frozen=True)
class KcResult:
    """Crossing of r(K) through the threshold.

    kc: first grid K with r(K) > threshold; None when right-censored.
    kc_interp: linear interpolation of the crossing between bracket_lo and
      bracket_hi; K[0] when left-censored; None when right-censored.
    censored: "none", "left" (crosses at K[0]) or "right" (never crosses).
    index: grid index of kc (0 when left-censored), None when right-censored.
    bracket_lo, bracket_hi: K[index-1], K[index]; both None when censored.
    """

    kc: float | None
    kc_interp: float | None
    censored: str
    index: int | None
    bracket_lo: float | None
    bracket_hi: float | None


def _check_curve(k_values, r) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(k_values, dtype=np.float64)
    rr = np.asarray(r, dtype=np.float64)
    if k.ndim != 1 or k.size == 0:
        raise ValueError(f"k_values must be a non-empty 1-D array, got shape {k.shape}")
    if rr.shape != k.shape:
        raise ValueError(f"r has shape {rr.shape}, expected {k.shape} (one value per K)")
    if not np.all(np.isfinite(k)):
        raise ValueError("k_values must be finite")
    if k.size > 1 and np.any(np.diff(k) < 0):
        raise ValueError("k_values must be increasing")
    return k, rr


def first_crossing(k_values, r, threshold: float) -> KcResult:
    """Kc of one r(K) curve by the original rule (first K with r > threshold).

    k_values: [nK] increasing float64 grid (non-decreasing is accepted so that
      a degenerate grid k_min == k_max still works).
    r: [nK] float64 time-averaged order parameter. Any NaN/inf raises
      ValueError: failed runs are the caller's business (see make_record).

    The interpolated crossing between K[i-1] (r <= threshold) and K[i]
    (r > threshold) is ``K[i-1] + (threshold - r[i-1]) / (r[i] - r[i-1]) *
    (K[i] - K[i-1])``. A non-monotone curve is read left to right: the first
    crossing wins, later dips below the threshold are ignored.
    """
    k, rr = _check_curve(k_values, r)
    if not np.all(np.isfinite(rr)):
        bad = np.flatnonzero(~np.isfinite(rr))
        raise ValueError(f"r contains {bad.size} non-finite value(s), first at K={k[bad[0]]!r}")
    thr = float(threshold)
    above = np.flatnonzero(rr > thr)
    if above.size == 0:
        return KcResult(kc=None, kc_interp=None, censored="right", index=None,
                        bracket_lo=None, bracket_hi=None)
    i = int(above[0])
    if i == 0:
        k0 = decimal_value(k[0])
        return KcResult(kc=k0, kc_interp=k0, censored="left", index=0,
                        bracket_lo=None, bracket_hi=None)
    k_lo, k_hi = float(k[i - 1]), float(k[i])
    r_lo, r_hi = float(rr[i - 1]), float(rr[i])
    # r_lo <= thr < r_hi, so the denominator is positive and t is in [0, 1).
    t = (thr - r_lo) / (r_hi - r_lo)
    k_interp = k_lo + t * (k_hi - k_lo)
    k_interp = min(max(k_interp, k_lo), k_hi)  # guard against rounding
    # Grid values as the grid's decimals (1.8, not 1.8000000000000003); the
    # interpolation used the grid's own doubles.
    return KcResult(kc=decimal_value(k_hi), kc_interp=k_interp, censored="none", index=i,
                    bracket_lo=decimal_value(k_lo), bracket_hi=decimal_value(k_hi))


def make_record(*, run: int, seed_material: str, stats: Mapping[str, float],
                samples: np.ndarray, n_first_half: int, k_values, threshold: float,
                seconds: float = 0.0, input_problem: str | None = None) -> RunRecord:
    """Build the :class:`RunRecord` of one run from its order-parameter samples.

    stats: graph statistics with keys nodes, edges, mean_k, mean_k2, k_max, and
      optionally the theory thresholds kc_mf, kc_hmf, kc_qmf (float, inf or
      None; absent means None) that the record carries as they are.
    samples: [nK, nS] order-parameter samples (one row per K, in time order).
    n_first_half: how many leading samples form the first half of the
      measurement window (``IntegrationSpec.n_first_half``); must satisfy
      ``0 <= n_first_half < nS``. With 0 (a single sample) there are no halves
      and ``r_first = r_second = r`` (so stationarity is 0).

    r = mean over samples; r_first / r_second = mean of the first
    ``n_first_half`` samples / of the rest; stationarity = r_second - r_first
    at the grid Kc (None when right-censored).

    A run with any non-finite sample is ``status="failed"``: its fail_reason
    names how many of the nK systems were non-finite and the first K affected;
    its Kc fields and stationarity are None and ``censored`` is "none". Its r
    arrays are kept as computed (NaN where the system failed). A run whose
    inputs were unusable (``input_problem``, e.g. frequencies that overflow
    float32) is failed with that reason whatever its samples. Overflows in
    these means never print numpy warnings: they show as non-finite r.
    """
    s = np.asarray(samples, dtype=np.float64)
    k, _ = _check_curve(k_values, np.zeros(np.shape(k_values)))
    if s.ndim != 2 or s.shape[0] != k.size or s.shape[1] == 0:
        raise ValueError(f"samples must have shape (nK={k.size}, nS>=1), got {s.shape}")
    n_s = s.shape[1]
    h = int(n_first_half)
    if not 0 <= h < n_s:
        raise ValueError(f"n_first_half={n_first_half!r} must satisfy "
                         f"0 <= n_first_half < nS={n_s}")

    with np.errstate(all="ignore"):
        r = s.mean(axis=1)
        if h == 0:
            r_first = r.copy()
            r_second = r.copy()
        else:
            r_first = s[:, :h].mean(axis=1)
            r_second = s[:, h:].mean(axis=1)
        r_std = s.std(axis=1)
    return record_from_means(run=run, seed_material=seed_material, stats=stats, r=r,
                             r_first=r_first, r_second=r_second, r_std=r_std, k_values=k,
                             threshold=threshold, seconds=seconds,
                             input_problem=input_problem)


def record_from_means(*, run: int, seed_material: str, stats: Mapping[str, float],
                      r: np.ndarray, r_first: np.ndarray, r_second: np.ndarray,
                      r_std: np.ndarray | None, k_values, threshold: float,
                      seconds: float = 0.0, input_problem: str | None = None) -> RunRecord:
    """:func:`make_record` from the sample means already taken: r, r_first,
    r_second, r_std [nK] float64 (mean, first-half and second-half means and
    standard deviation of each K's samples). A non-finite r marks the run failed."""
    k, _ = _check_curve(k_values, np.zeros(np.shape(k_values)))
    common: dict[str, Any] = dict(
        run=int(run), seed_material=str(seed_material),
        nodes=int(stats["nodes"]), edges=int(stats["edges"]),
        mean_k=float(stats["mean_k"]), mean_k2=float(stats["mean_k2"]),
        k_max=int(stats["k_max"]), r=r, r_first=r_first, r_second=r_second,
        r_std=r_std, seconds=float(seconds),
        **{name: _optional_float(stats.get(name))
           for name in THEORY_FIELDS + AT_THRESHOLD_FIELDS},
    )

    # a non-finite sample makes its mean non-finite (r lies in [0, 1]: no overflow)
    bad_rows = ~np.isfinite(np.asarray(r, dtype=np.float64))
    if bad_rows.any() or input_problem:
        if input_problem:
            reason = str(input_problem)
        else:
            n_bad = int(bad_rows.sum())
            first = int(np.flatnonzero(bad_rows)[0])
            reason = (f"non-finite order parameter in {n_bad} of {k.size} (K) systems; "
                      f"first at K={float(k[first]):.6g} (index {first})")
        return RunRecord(**common, kc=None, kc_interp=None, censored="none",
                         bracket_lo=None, bracket_hi=None, stationarity=None,
                         status="failed", fail_reason=reason)

    res = first_crossing(k, r, threshold)
    stationarity = None
    if res.index is not None:
        stationarity = float(r_second[res.index] - r_first[res.index])
    return RunRecord(**common, kc=res.kc, kc_interp=res.kc_interp, censored=res.censored,
                     bracket_lo=res.bracket_lo, bracket_hi=res.bracket_hi,
                     stationarity=stationarity, status="ok", fail_reason=None)


def _optional_float(v) -> float | None:
    return None if v is None else float(v)
