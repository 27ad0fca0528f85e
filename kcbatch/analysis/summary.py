"""Statistics of Kc over the runs of a study, and their text rendering.

Which runs enter the Kc statistics: runs with ``status == "ok"`` that cross
the threshold somewhere on the grid, i.e. ``censored`` in {"none", "left"}.
Left-censored runs enter with ``kc = K[0]`` (an upper bound of their true Kc;
a note says so); right-censored runs (no crossing up to ``K[-1]``) and failed
runs are excluded and counted, and a warning says so, because excluding them
biases the statistics.

``std`` is the population standard deviation (ddof=0) as in the original
script, and ``spread_lo/hi`` its ``mean -/+ 2 std``. The 95% confidence
interval of the mean is a percentile bootstrap drawn from
``np.random.default_rng(seed_bootstrap)`` (never the global RNG), resampling
runs; ``kc`` and ``kc_interp`` use the same resamples.

Beside them, ``theory`` (:func:`theory_summary`): the theory's thresholds
``kc_mf``, ``kc_hmf``, ``kc_qmf`` over every stored run that has them (failed
runs included: they depend on the graph alone), Kuramoto's ``Kc0`` and the
coupling at which the all-to-all ``r(K)`` reaches the threshold.
"""
from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import Field, dataclass, fields
from typing import Any

import numpy as np

from kcbatch.analysis.records import RunRecord
from kcbatch.protocol.choices import Auto
from kcbatch.protocol.config import steps_for
from kcbatch.theory import mean_field as theory
from kcbatch.theory.per_run import (
    AT_THRESHOLD_FIELDS,
    THEORY_FIELDS,
    all_to_all_why_not,
    why_no_theory,
)

__all__ = ["ESTIMATORS", "estimator_summary", "protocol_comparison", "summarize", "format_summary",
           "format_partial", "partial_info", "suggest_transient",
           "theory_summary", "NOT_STATIONARY_WARN_FRACTION", "TRANSIENT_FACTOR",
           "Summary", "KGrid", "KcStats", "Bootstrap", "PartialInfo", "Spread", "TheoryBlock",
           "EstimatorStats", "Estimators", "Center", "ProtocolComparison", "LoopStats",
           "Hysteresis", "JsonBlock"]

# Warn when more than this fraction of crossing runs is not stationary.
NOT_STATIONARY_WARN_FRACTION = 0.10
# The longer transient the stationarity warning suggests, as a multiple of the current one.
TRANSIENT_FACTOR = 4
# Bound on the bootstrap index block (elements) to keep memory flat for big studies.
_BOOT_BLOCK_ELEMS = 4_000_000


# -- the summary's types ------------------------------------------------------
# Frozen dataclasses whose fields, in declaration order, are the keys of
# summary.json's "summary" object: ``to_dict()`` gives that JSON view (nested
# blocks as dicts, tuples as lists) and ``from_dict()`` reads it back.


class JsonBlock:
    """Base of the summary's blocks: the JSON view and equality by it.

    A block equals another block or a mapping with the same JSON view, so
    ``partial_info(...) == {"runs_done": ...}`` holds as it does for the dict.
    """

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The block as summary.json holds it: a dict of plain JSON values, keys
        in declaration order."""
        return {f.name: _json_view(getattr(self, f.name)) for f in _fields(type(self))}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """The block of a JSON view (as :meth:`to_dict` gives it, or as read
        from summary.json); a key the view lacks reads as None."""
        hints = _hints(cls)
        return cls(**{f.name: _from_json(hints[f.name], data.get(f.name))
                      for f in _fields(cls)})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonBlock):
            return type(self) is type(other) and self.to_dict() == other.to_dict()
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _json_view(v: Any) -> Any:
    if isinstance(v, JsonBlock):
        return v.to_dict()
    if isinstance(v, tuple):
        return [_json_view(x) for x in v]
    return v


_HINTS: dict[type, dict[str, Any]] = {}


def _fields(cls: type) -> tuple[Field, ...]:
    return fields(cls)


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _from_json(hint: Any, value: Any) -> Any:
    """``value`` of a JSON view as the field typed ``hint`` holds it."""
    if value is None:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _from_json(inner, value)
    if isinstance(hint, type) and issubclass(hint, JsonBlock):
        return hint.from_dict(value)
    if typing.get_origin(hint) is tuple:
        return tuple(value)
    return value


@dataclass(frozen=True, eq=False)
class KGrid(JsonBlock):
    """The study's K grid: first and last K [rad/time], points, spacing (0 for
    one point); all None but num = 0 for an empty grid."""
    min: float | None
    max: float | None
    num: int
    spacing: float | None


@dataclass(frozen=True, eq=False)
class KcStats(JsonBlock):
    """Statistics of one Kc over the runs that have it [rad/time]: std ddof=0,
    spread_lo/hi = mean -/+ 2 std, ci95_lo/hi the bootstrap percentile CI of
    the mean (None without resamples)."""
    n: int
    mean: float
    std: float
    median: float
    min: float
    max: float
    spread_lo: float
    spread_hi: float
    ci95_lo: float | None
    ci95_hi: float | None


# KcStats' statistics, in order: each is None in a block without values.
_STAT_NAMES = ("mean", "std", "median", "min", "max", "spread_lo", "spread_hi",
               "ci95_lo", "ci95_hi")


@dataclass(frozen=True, eq=False)
class Bootstrap(JsonBlock):
    """The bootstrap of the CIs: resamples and the seed of their generator."""
    n_boot: int
    seed: int


@dataclass(frozen=True, eq=False)
class PartialInfo(JsonBlock):
    """What makes a study partial (:func:`partial_info`): finished runs of the
    run range [start, stop) of a study of runs_total runs, and why."""
    runs_done: int
    runs_total: int
    run_range: tuple[int, int]
    reason: str


@dataclass(frozen=True, eq=False)
class Spread(JsonBlock):
    """One theory threshold over the runs with a finite value [rad/time]."""
    n: int
    mean: float
    median: float
    min: float
    max: float


@dataclass(frozen=True, eq=False)
class TheoryBlock(JsonBlock):
    """The summary's ``theory`` block (:func:`theory_summary`)."""
    applies: bool
    why_not: str | None
    coupling: str
    omega_dist: str
    omega_sigma: float | None
    kc0: float | None
    kc_mf: Spread | None
    kc_hmf: Spread | None
    kc_qmf: Spread | None
    no_onset: int
    missing: int
    kc_all_to_all_at_threshold: float | None
    all_to_all_applies: bool
    all_to_all_why_not: str | None
    kc_mf_at_threshold: Spread | None = None
    kc_hmf_at_threshold: Spread | None = None
    kc_qmf_at_threshold: Spread | None = None
    finite_degree_note: str | None = None

    def spread(self, name: str) -> Spread | None:
        """The Spread of the theory field ``name`` (of THEORY_FIELDS or
        AT_THRESHOLD_FIELDS)."""
        return getattr(self, name)


@dataclass(frozen=True, eq=False)
class EstimatorStats(JsonBlock):
    """One Kc estimator over the ok runs (:func:`estimator_summary`): the
    RunRecord field it reads, KcStats' statistics (None without values), the
    ok runs censored left / right and those without the estimate."""
    field: str
    n: int
    mean: float | None
    std: float | None
    median: float | None
    min: float | None
    max: float | None
    spread_lo: float | None
    spread_hi: float | None
    ci95_lo: float | None
    ci95_hi: float | None
    censored_left: int
    censored_right: int
    missing: int
    peak_censored_left: int | None = None
    peak_censored_right: int | None = None


@dataclass(frozen=True, eq=False)
class Estimators(JsonBlock):
    """The estimators block: one EstimatorStats per key of :data:`ESTIMATORS`."""
    grid: EstimatorStats
    interpolated: EstimatorStats
    refined: EstimatorStats
    chi_peak: EstimatorStats


@dataclass(frozen=True, eq=False)
class Center(JsonBlock):
    """Mean and median of a set of values (None when it is empty)."""
    mean: float | None
    median: float | None


@dataclass(frozen=True, eq=False)
class ProtocolComparison(JsonBlock):
    """The original protocol's Kc beside the converged one
    (:func:`protocol_comparison`)."""
    auto: bool
    n: int
    protocol: Center
    converged: Center
    shift: Center
    converged_runs: int
    unconverged_runs: int
    t_transient_median: float | None
    t_transient_max: float | None


@dataclass(frozen=True, eq=False)
class WorkSpent(JsonBlock):
    """The integration a converged or refined study spent (:func:`work_spent`):
    (row, K) system-steps over the ok runs that counted them, in its windows
    and its refinement, what the plain protocol (each run's first window
    alone) integrates for the same networks, and the ratio of the two."""
    runs: int
    windows: int
    refinement: int
    plain: int
    ratio: float | None


def work_spent(records: Sequence[RunRecord]) -> WorkSpent:
    """:class:`WorkSpent` of the runs that recorded their work (every count 0
    and the ratio None without any)."""
    counted = [rec for rec in records if rec.status == "ok" and rec.convergence is not None
               and rec.convergence.work_plain is not None]
    parts = [rec.convergence for rec in counted if rec.convergence is not None]
    windows = sum(int(c.work_windows or 0) for c in parts)
    refine = sum(int(c.work_refine or 0) for c in parts)
    plain = sum(int(c.work_plain or 0) for c in parts)
    return WorkSpent(runs=len(counted), windows=windows, refinement=refine, plain=plain,
                     ratio=(windows + refine) / plain if plain else None)


@dataclass(frozen=True, eq=False)
class LoopStats(JsonBlock):
    """One loop statistic of an adiabatic study over its ok swept runs
    (:func:`hysteresis_summary`): KcStats' statistics (None without values)
    and the swept runs without a value."""
    n: int
    mean: float | None
    std: float | None
    median: float | None
    min: float | None
    max: float | None
    spread_lo: float | None
    spread_hi: float | None
    ci95_lo: float | None
    ci95_hi: float | None
    missing: int


@dataclass(frozen=True, eq=False)
class Hysteresis(JsonBlock):
    """The hysteresis block: whether the study swept adiabatically, its ok runs
    with both branches, and one LoopStats per :data:`HYSTERESIS_FIELDS`."""
    adiabatic: bool
    runs: int
    kc_forward: LoopStats
    kc_backward: LoopStats
    hysteresis_width: LoopStats
    loop_area: LoopStats


@dataclass(frozen=True, eq=False)
class Summary(JsonBlock):
    """Summary statistics of a study (:func:`summarize`); summary.json's
    ``summary`` object is :meth:`to_dict`. ``summary["key"]`` reads that JSON
    view too (nested blocks as dicts), for code written against the dict."""
    runs: int
    ok: int
    failed: int
    crossings: int
    censored_left: int
    censored_right: int
    threshold: float
    k_grid: KGrid
    resolution: float | None
    kc: KcStats | None
    kc_interp: KcStats | None
    bootstrap: Bootstrap
    stationarity_tol: float
    not_stationary: int
    not_stationary_fraction: float | None
    suggested_t_transient: float | None
    partial: PartialInfo | None
    failed_runs: tuple[int, ...]
    theory: TheoryBlock | None
    estimators: Estimators | None
    protocol_vs_converged: ProtocolComparison | None
    hysteresis: Hysteresis | None
    work: WorkSpent
    notes: tuple[str, ...]
    warnings: tuple[str, ...]

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()


def _grid(k_values) -> KGrid:
    k = np.asarray(k_values, dtype=np.float64).ravel()
    if k.size == 0:
        return KGrid(min=None, max=None, num=0, spacing=None)
    n = int(k.size)
    spacing = 0.0 if n == 1 else float((k[-1] - k[0]) / (n - 1))
    return KGrid(min=float(k[0]), max=float(k[-1]), num=n, spacing=spacing)


def _bootstrap_means(arrays: list[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """Bootstrap means of each array in ``arrays`` (same length n) with shared resamples.

    The index draws depend only on (seed, n, n_boot): the block size is a
    function of n alone, so the result is reproducible on any machine.
    """
    n = arrays[0].size
    rng = np.random.default_rng(seed)
    out = [np.empty(n_boot, dtype=np.float64) for _ in arrays]
    block = max(1, _BOOT_BLOCK_ELEMS // n)
    done = 0
    while done < n_boot:
        b = min(block, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        for a, o in zip(arrays, out, strict=True):
            o[done:done + b] = a[idx].mean(axis=1)
        done += b
    return out


def _describe(x: np.ndarray, boot_means: np.ndarray | None) -> KcStats:
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=0))
    lo = hi = None
    if boot_means is not None:
        lo, hi = (float(v) for v in np.percentile(boot_means, [2.5, 97.5]))
    return KcStats(n=int(x.size), mean=mean, std=std, median=float(np.median(x)),
                   min=float(np.min(x)), max=float(np.max(x)), spread_lo=mean - 2.0 * std,
                   spread_hi=mean + 2.0 * std, ci95_lo=lo, ci95_hi=hi)


def _stats_of(x: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """The statistics of :data:`_STAT_NAMES` of ``x`` by name (bootstrap of the
    mean with its own resamples), all None when ``x`` is empty."""
    if not x.size:
        return dict.fromkeys(_STAT_NAMES)
    stats = _describe(x, _bootstrap_means([x], int(n_boot), int(seed))[0])
    return {name: getattr(stats, name) for name in _STAT_NAMES}


def _fmt_k(v: float) -> str:
    return f"{v:.6g}" if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3) else f"{v:.4f}"


def partial_info(*, runs_total: int, run_start: int, run_stop: int | None, runs_done: int,
                 interrupted: bool | None) -> PartialInfo | None:
    """What makes a study partial, or None when every run of the study is done.

    runs_total: the study's ``runs``; ``[run_start, run_stop)`` its run range
    (``run_stop`` None = ``runs_total``); runs_done: finished runs in that range;
    interrupted: True when the last session was stopped by a signal (None or
    False when unknown or not: the study is then called "incomplete").

    Returns PartialInfo(runs_done, runs_total, run_range=(start, stop), reason), reason
    one of "interrupted", "incomplete", "shard START:STOP" (a complete shard)
    or "shard START:STOP, interrupted|incomplete".
    """
    stop = runs_total if run_stop is None else int(run_stop)
    start = int(run_start)
    shard = (start, stop) != (0, int(runs_total))
    range_done = runs_done >= stop - start
    if not shard and range_done:
        return None
    why = "interrupted" if interrupted else "incomplete"
    if shard:
        reason = f"shard {start}:{stop}" + ("" if range_done else f", {why}")
    else:
        reason = why
    return PartialInfo(runs_done=int(runs_done), runs_total=int(runs_total),
                       run_range=(start, stop), reason=reason)


def suggest_transient(t_transient: float, dt: float | None = None,
                      t_measure: float | None = None) -> float | None:
    """A transient to try when runs are not stationary: ``TRANSIENT_FACTOR`` times
    the current one (times ``t_measure`` when there is none), rounded up to a
    whole number of ``dt`` steps so that the value is valid. None without a base."""
    base = t_transient if t_transient and t_transient > 0 else t_measure
    if base is None or not base > 0:
        return None
    target = TRANSIENT_FACTOR * float(base)
    if dt and dt > 0:
        target = steps_for(target, dt, rounding="up") * dt
    return float(f"{target:.12g}")


def _stationarity_warning(n_not_stat: int, n_crossing: int, tol: float,
                          t_transient: float | None, dt: float | None,
                          suggested: float | None) -> str:
    head = (f"{n_not_stat} of {n_crossing} crossing runs ({100 * n_not_stat / n_crossing:.1f}%) "
            f"are not stationary at their Kc (|r_second - r_first| > {tol:g})")
    if t_transient is None:
        return (f"{head}: the transient is too short for r to settle; use a longer "
                f"--t-transient (e.g. {TRANSIENT_FACTOR}x the current one), or with "
                f"--t-transient auto a larger --t-max.")
    steps = "" if not dt else \
        f" ({steps_for(float(t_transient), dt, rounding='nearest')} steps of dt={dt:g})"
    tail = ("" if suggested is None else
            f"; try --t-transient {suggested:g} ({TRANSIENT_FACTOR}x the current"
            + (")" if t_transient > 0 else " t_measure)"))
    return (f"{head}: after the transient of {float(t_transient):g} time units{steps}, "
            f"r is still drifting, so their Kc depends on the transient{tail}.")


def _spread(x: np.ndarray) -> Spread:
    return Spread(n=int(x.size), mean=float(np.mean(x)), median=float(np.median(x)),
                  min=float(np.min(x)), max=float(np.max(x)))


def theory_summary(records: Sequence[RunRecord], threshold: float, *,
                   coupling: str = "degree", omega_dist: str = "normal",
                   omega_sigma: float | None = None) -> TheoryBlock:
    """The summary's ``theory`` block: plain JSON values, never NaN or inf.

    applies: whether the thresholds apply to the study (why_not: the reason
      when they do not, one sentence, else None).
    coupling, omega_dist, omega_sigma: the study's theory settings.
    kc0: Kuramoto's all-to-all onset ``2 / (pi g(0))`` [rad/time] (None when
      the theory does not apply or omega_sigma is not given).
    kc_mf, kc_hmf, kc_qmf: the onsets (where each theory's r leaves 0): Spread
      {n, mean, median, min, max} [rad/time] over the records with a finite
      value (every status), or None when none has one.
    no_onset: records whose graph has no edges: infinite thresholds (no
      coupling, no onset), left out of the statistics above.
    missing: records without values although the theory applies (stored by a
      kcbatch before the theory columns).
    kc_all_to_all_at_threshold: the coupling at which the all-to-all ``r(K)``
      reaches ``threshold`` (:func:`kcbatch.theory.mean_field.k_at_r`) [rad/time], to set
      beside the measured Kc; None where that curve does not predict the
      measured one (all_to_all_why_not says why; ``all_to_all_applies``).
    kc_mf_at_threshold, kc_hmf_at_threshold, kc_qmf_at_threshold: each theory's
      crossing of ``threshold`` (the measured Kc's like-for-like counterpart),
      Spread as the onsets, None when no record has a finite one.
    finite_degree_note: one line when theory is shown for networks of small
      mean degree (<k> < FINITE_DEGREE_NOTE_BELOW): mean-field theory neglects
      the fluctuations of each node's local field, so the measured crossing is
      expected above the theory's by O(1/<k>), about 2/<k> relative.

    Without omega_sigma (None) the study's settings are unknown: only the
    per-run statistics are filled in, and ``applies`` says whether any record
    has thresholds.
    """
    known = omega_sigma is not None
    if omega_sigma is not None:
        why = why_no_theory(omega_dist, omega_sigma)
        a2a_why = all_to_all_why_not(coupling, omega_dist, omega_sigma)
    else:
        unknown = "the study's omega_dist and omega_sigma were not given"
        has_values = any(getattr(rec, name) is not None
                         for rec in records for name in THEORY_FIELDS)
        why, a2a_why = (None if has_values else unknown), unknown
    spreads: dict[str, Spread | None] = {}
    for name in AT_THRESHOLD_FIELDS:
        finite = np.array([v for rec in records if (v := getattr(rec, name)) is not None
                           and math.isfinite(v)], dtype=np.float64)
        spreads[name] = _spread(finite) if finite.size else None
    no_onset = missing = 0
    for name in THEORY_FIELDS:
        values = [getattr(rec, name) for rec in records]
        finite = np.array([v for v in values if v is not None and math.isfinite(v)],
                          dtype=np.float64)
        spreads[name] = _spread(finite) if finite.size else None
        # Every field is None or inf for the same runs; count them once.
        if name == THEORY_FIELDS[0]:
            no_onset = sum(1 for v in values if v is not None and math.isinf(v))
            missing = sum(1 for v in values if v is None) if known and why is None else 0
    a2a = None
    # a2a_why is None only with omega_sigma given (without it a2a_why says so)
    if omega_sigma is not None and a2a_why is None and 0.0 <= threshold < 1.0:
        a2a = float(theory.k_at_r(threshold, omega_dist, omega_sigma))
    note = None
    mean_k = np.array([rec.mean_k for rec in records if rec.mean_k is not None], float)
    if why is None and mean_k.size and 0 < float(mean_k.mean()) < FINITE_DEGREE_NOTE_BELOW:
        k_bar = float(mean_k.mean())
        note = (f"mean degree <k> = {k_bar:.3g}: mean-field theory neglects the fluctuations "
                f"of each node's local field, so expect the measured crossing above the "
                f"theory's by O(1/<k>), about 2/<k> = {2.0 / k_bar:.0%} here")
    return TheoryBlock(
        applies=why is None, why_not=why, coupling=coupling, omega_dist=omega_dist,
        omega_sigma=None if omega_sigma is None else float(omega_sigma),
        kc0=theory.kc0(omega_dist, omega_sigma) if omega_sigma is not None and why is None
        else None,
        **spreads, no_onset=no_onset, missing=missing, kc_all_to_all_at_threshold=a2a,
        all_to_all_applies=a2a_why is None, all_to_all_why_not=a2a_why,
        finite_degree_note=note)


# Below this mean degree the theory block says that mean-field theory is expected
# below the measured crossing (measured: ER <k> = 6 and 20, raw coupling, the
# excess about 2/<k> and independent of N; docs/outputs.md).
FINITE_DEGREE_NOTE_BELOW = 50.0

# The estimators of the estimators block: key -> (RunRecord field, printed name).
ESTIMATORS = {"grid": ("kc", "grid rule"), "interpolated": ("kc_interp", "interpolated"),
              "refined": ("kc_refined", "refined"), "chi_peak": ("kc_chi", "chi peak")}


def estimator_summary(records: Sequence[RunRecord], n_boot: int = 2000,
                      seed: int = 0) -> Estimators:
    """Each Kc estimator over the ok runs (refined and chi peak have n = 0 in a
    study of the original protocol, whose runs do not have them).

    Per key of :data:`ESTIMATORS`: EstimatorStats {field, n, mean, std, median, min, max,
    spread_lo, spread_hi, ci95_lo, ci95_hi (bootstrap of the mean over the n runs
    that have the estimate; None without any), censored_left (ok runs whose
    grid crossing is at K[0]: grid and interpolated count them at K[0], an
    upper bound; refined leaves them out), censored_right (no grid crossing:
    left out by every estimator but chi peak), missing (ok runs without this
    estimate), peak_censored_left / peak_censored_right (chi peak only: ok
    runs whose chi peak lies beyond the grid or the fitted points on that side,
    kc_chi_censored; None for the other estimators)}. Each estimator draws its
    own resamples (seed ``seed``)."""
    ok = sorted((rec for rec in records if rec.status == "ok"), key=lambda rec: rec.run)
    n_left = sum(1 for rec in ok if rec.censored == "left")
    n_right = sum(1 for rec in ok if rec.censored == "right")
    out: dict[str, EstimatorStats] = {}
    for key, (name, _) in ESTIMATORS.items():
        x = np.array([getattr(rec, name) for rec in ok if getattr(rec, name) is not None],
                     dtype=np.float64)
        peaks = {} if key != "chi_peak" else {
            f"peak_censored_{side}": sum(1 for rec in ok if rec.kc_chi_censored == side)
            for side in ("left", "right")}
        out[key] = EstimatorStats(field=name, n=int(x.size), **_stats_of(x, n_boot, seed),
                                  censored_left=n_left, censored_right=n_right,
                                  missing=len(ok) - int(x.size), **peaks)
    return Estimators(**out)


def protocol_comparison(records: Sequence[RunRecord]) -> ProtocolComparison:
    """The original protocol's Kc beside the converged one. ``auto``: whether
    any run has ``t_transient="auto"`` windows (every other value is null or 0
    without). Over the ok runs that have both
    kc_protocol (first window, T = 5) and kc_interp (the converged transient):
    n, protocol {mean, median}, converged {mean, median}, shift {mean, median}
    of the paired difference converged - protocol; and over all ok runs:
    converged / unconverged (at t_max) counts and the median and max of
    t_transient_used [time units]."""
    auto = [rec for rec in records if rec.kc_windows is not None]
    ok = [rec for rec in auto if rec.status == "ok"]
    both = [rec for rec in ok if rec.kc_protocol is not None and rec.kc_interp is not None]
    p = np.array([rec.kc_protocol for rec in both], dtype=np.float64)
    c = np.array([rec.kc_interp for rec in both], dtype=np.float64)
    t = np.array([rec.t_transient_used for rec in ok], dtype=np.float64)

    def center(x: np.ndarray) -> Center:
        return Center(mean=float(np.mean(x)) if x.size else None,
                      median=float(np.median(x)) if x.size else None)
    return ProtocolComparison(
        auto=bool(auto), n=len(both), protocol=center(p), converged=center(c),
        shift=center(c - p), converged_runs=sum(1 for rec in ok if rec.converged),
        unconverged_runs=sum(1 for rec in ok if not rec.converged),
        t_transient_median=float(np.median(t)) if t.size else None,
        t_transient_max=float(np.max(t)) if t.size else None)


# The adiabatic sweep's per-run fields summarized in the hysteresis block.
HYSTERESIS_FIELDS = ("kc_forward", "kc_backward", "hysteresis_width", "loop_area")


def hysteresis_summary(records: Sequence[RunRecord], n_boot: int = 2000,
                       seed: int = 0) -> Hysteresis:
    """The adiabatic sweep's loop over the ok runs (kcbatch/analysis/sweep.py).

    adiabatic: whether any run has branches (false for the independent
    protocol: then runs is 0 and every statistic null); runs: ok runs with
    branches. Per field of :data:`HYSTERESIS_FIELDS`: LoopStats {n, mean, std, median,
    min, max, spread_lo, spread_hi, ci95_lo, ci95_hi (bootstrap of the mean;
    None without values), missing (ok swept runs without a value: no forward
    crossing, or backward branch below the threshold at K_max)}."""
    swept = sorted((rec for rec in records if rec.status == "ok" and rec.r_backward is not None),
                   key=lambda rec: rec.run)
    loops: dict[str, LoopStats] = {}
    for name in HYSTERESIS_FIELDS:
        x = np.array([getattr(rec, name) for rec in swept if getattr(rec, name) is not None],
                     dtype=np.float64)
        loops[name] = LoopStats(n=int(x.size), **_stats_of(x, n_boot, seed),
                                missing=len(swept) - int(x.size))
    return Hysteresis(adiabatic=any(rec.r_backward is not None for rec in records),
                      runs=len(swept), **loops)


def summarize(records: Sequence[RunRecord], k_values, threshold: float, *,
              seed_bootstrap: int = 0, n_boot: int = 2000,
              stationarity_tol: float = 0.02,
              t_transient: float | Auto | None = None, t_measure: float | None = None,
              dt: float | None = None,
              partial: PartialInfo | Mapping[str, Any] | None = None,
              coupling: str = "degree", omega_dist: str = "normal",
              omega_sigma: float | None = None) -> Summary:
    """Summary statistics of a study: a :class:`Summary`, whose ``to_dict()`` is
    summary.json's ``summary`` object (plain JSON values).

    Fields (the JSON keys, in this order):
      runs, ok, failed: counts of all / ok / failed records.
      crossings: ok runs with censored in {"none", "left"} (they have a Kc).
      censored_left, censored_right: counts among ok runs.
      threshold, k_grid: KGrid {min, max, num, spacing}, resolution (= grid spacing,
        the resolution of the grid Kc; 0 when k_num == 1).
      kc, kc_interp: KcStats {n, mean, std (ddof=0), median, min, max, spread_lo,
        spread_hi (mean -/+ 2 std), ci95_lo, ci95_hi (bootstrap percentile CI
        of the mean)} over the crossing runs, or None when there are none.
      bootstrap: Bootstrap {n_boot, seed}.
      stationarity_tol, not_stationary (crossing runs with
        |stationarity| > tol), not_stationary_fraction (of crossings; None
        when there are no crossings).
      suggested_t_transient: the transient the stationarity warning suggests
        (time units), or None when there is no such warning.
      partial: :func:`partial_info` of the study (None when it is complete).
      failed_runs: run ids of failed records (sorted; a list in the JSON view).
      theory: :func:`theory_summary` of the records.
      estimators: :func:`estimator_summary`.
      protocol_vs_converged: :func:`protocol_comparison` (its ``auto`` false
        unless t_transient was "auto").
      hysteresis: :func:`hysteresis_summary` (its ``adiabatic`` false unless
        the study swept adiabatically).
      work: :func:`work_spent` (its ``runs`` 0 unless the runs counted their
        work: a converged or refined study).
      notes: informational strings; warnings: strings that need attention
        (tuples; lists in the JSON view).

    t_transient, t_measure, dt (optional): the study's protocol, named by the
    stationarity warning and used for its suggested ``--t-transient``
    (t_transient ``"auto"``: no single transient, no suggestion).
    partial (optional): passed through (see :func:`partial_info`; a mapping is
    read as its JSON view).
    coupling, omega_dist, omega_sigma (optional): the study's theory settings
    (``kcbatch.theory.per_run.theory_settings``), for the ``theory`` block.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} must be >= 1")
    if isinstance(t_transient, str):
        # "auto": each run's transient is its own (t_transient_used); the
        # stationarity warning has no single transient to name or extend
        t_transient = None
    recs = sorted(records, key=lambda rec: rec.run)
    ok = [rec for rec in recs if rec.status == "ok"]
    failed = [rec for rec in recs if rec.status != "ok"]
    crossing = [rec for rec in ok if rec.censored in ("none", "left")]
    n_left = sum(1 for rec in ok if rec.censored == "left")
    n_right = sum(1 for rec in ok if rec.censored == "right")
    grid = _grid(k_values)
    part = (partial if partial is None or isinstance(partial, PartialInfo)
            else PartialInfo.from_dict(partial))

    kc_stats = kci_stats = None
    if crossing:
        kc = np.array([rec.kc for rec in crossing], dtype=np.float64)
        kci = np.array([rec.kc_interp for rec in crossing], dtype=np.float64)
        bm_kc, bm_kci = _bootstrap_means([kc, kci], int(n_boot), int(seed_bootstrap))
        kc_stats = _describe(kc, bm_kc)
        kci_stats = _describe(kci, bm_kci)

    stationarity = [rec.stationarity for rec in crossing if rec.stationarity is not None]
    n_not_stat = sum(1 for s in stationarity if abs(s) > stationarity_tol)
    frac_not_stat = (n_not_stat / len(crossing)) if crossing else None

    notes: list[str] = []
    warnings: list[str] = []
    if n_left:
        notes.append(
            f"{n_left} left-censored run(s) (r > {threshold:g} already at K[0]="
            f"{_num(grid.min)}) are included in the Kc statistics with Kc = K[0], "
            f"an upper bound of their true Kc.")
    if n_right:
        notes.append(
            f"{n_right} right-censored run(s) (no crossing up to K={_num(grid.max)}) "
            f"are excluded from the Kc statistics.")

    suggested = None
    if frac_not_stat is not None and frac_not_stat > NOT_STATIONARY_WARN_FRACTION:
        if t_transient is not None:
            suggested = suggest_transient(t_transient, dt, t_measure)
        warnings.append(_stationarity_warning(n_not_stat, len(crossing), stationarity_tol,
                                              t_transient, dt, suggested))
    if n_left or n_right:
        parts = []
        if n_left:
            parts.append(f"{n_left} left (r > {threshold:g} at K[0]={_num(grid.min)}; "
                         f"Kc recorded as K[0])")
        if n_right:
            parts.append(f"{n_right} right (no crossing up to K={_num(grid.max)}; "
                         f"excluded, so the Kc statistics are biased low)")
        warnings.append(
            f"{n_left + n_right} of {len(ok)} ok runs are censored: " + ", ".join(parts)
            + "; widen the K grid (k_min/k_max) to resolve them.")
    if failed:
        ids = [rec.run for rec in failed]
        shown = ", ".join(str(i) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
        first_reason = failed[0].fail_reason or "no reason recorded"
        warnings.append(
            f"{len(failed)} run(s) failed (non-finite phases) and are excluded: runs {shown}; "
            f"first: {first_reason}. Try a smaller dt or precision float64.")

    retired = sum(1 for rec in ok if rec.kc_chi_censored == "retired")
    if retired:
        notes.append(
            f"{retired} run(s) have no chi peak (kc_chi_censored 'retired'): --converge "
            f"adaptive stopped integrating some of the couplings it is fitted on before the "
            f"final window; --converge exhaustive integrates every coupling to the end.")
    theory_block = theory_summary(recs, threshold, coupling=coupling, omega_dist=omega_dist,
                                  omega_sigma=omega_sigma)
    if theory_block.no_onset:
        notes.append(
            f"{theory_block.no_onset} run(s) have graphs without edges: their theory "
            f"thresholds are infinite (no coupling, no onset) and left out of the theory "
            f"statistics.")
    if theory_block.missing:
        notes.append(
            f"{theory_block.missing} run(s) have no theory thresholds: they were stored "
            f"by a kcbatch that did not compute them; the theory statistics leave them out.")

    comparison = protocol_comparison(recs)
    if comparison.unconverged_runs:
        # the converged protocol's runs still moving at the last window
        warnings.append(
            f"{comparison.unconverged_runs} of {len(ok)} runs unconverged at t_max="
            f"{_num(comparison.t_transient_max)}: their Kc still moved between the last "
            f"windows, so it depends on t_max; try a larger --t-max.")

    return Summary(
        runs=len(recs),
        ok=len(ok),
        failed=len(failed),
        crossings=len(crossing),
        censored_left=n_left,
        censored_right=n_right,
        threshold=float(threshold),
        k_grid=grid,
        resolution=grid.spacing,
        kc=kc_stats,
        kc_interp=kci_stats,
        bootstrap=Bootstrap(n_boot=int(n_boot), seed=int(seed_bootstrap)),
        stationarity_tol=float(stationarity_tol),
        not_stationary=int(n_not_stat),
        not_stationary_fraction=None if frac_not_stat is None else float(frac_not_stat),
        suggested_t_transient=suggested,
        partial=part,
        failed_runs=tuple(int(rec.run) for rec in failed),
        theory=theory_block,
        estimators=estimator_summary(recs, n_boot, seed_bootstrap),
        protocol_vs_converged=comparison,
        hysteresis=hysteresis_summary(recs, n_boot, seed_bootstrap),
        work=work_spent(recs),
        notes=tuple(notes),
        warnings=tuple(warnings),
    )


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return _fmt_k(float(v))


def format_summary(summary: Summary | Mapping[str, Any], network: str | None = None,
                   directory: str | None = None) -> str:
    """Human-readable, aligned text of a :func:`summarize` result (printed by the
    CLI); a mapping (summary.json's ``summary`` object) is read as its JSON view.
    ``network``: the study's networks and their model's parameters, the first
    line; ``directory``: the study's, named in the resume command of a partial study."""
    s = summary if isinstance(summary, Summary) else Summary.from_dict(summary)
    lines: list[tuple[str, str]] = []
    if network:
        lines.append(("network", network))
    if s.partial:
        lines.append(("PARTIAL STUDY", format_partial(s.partial, directory)))
    lines.append(("runs", f"{s.runs} (ok {s.ok}, failed {s.failed})"))
    lines.append(("crossings", f"{s.crossings} (threshold r > {s.threshold:g})"))
    lines.append(("censored", f"left {s.censored_left}, right {s.censored_right}"))
    lines.append(("failed", f"{s.failed}"))
    kc = s.kc
    if kc is None:
        lines.append(("Kc", "n/a (no run crossed the threshold)"))
    else:
        boot = s.bootstrap
        lines += [
            ("Kc mean ± std", f"{_num(kc.mean)} ± {_num(kc.std)}  (n={kc.n}, std ddof=0)"),
            ("Kc median", _num(kc.median)),
            ("Kc min / max", f"{_num(kc.min)} / {_num(kc.max)}"),
            ("Kc mean ± 2 std", f"[{_num(kc.spread_lo)}, {_num(kc.spread_hi)}]"),
            ("Kc 95% CI of mean", f"[{_num(kc.ci95_lo)}, {_num(kc.ci95_hi)}]  "
                                  f"(bootstrap, {'?' if boot is None else boot.n_boot} "
                                  f"resamples, seed {'?' if boot is None else boot.seed})"),
        ]
        kci = s.kc_interp
        if kci is not None:
            lines += [
                ("interpolated Kc mean ± std", f"{_num(kci.mean)} ± {_num(kci.std)}"),
                ("interpolated Kc 95% CI", f"[{_num(kci.ci95_lo)}, {_num(kci.ci95_hi)}]"),
            ]
    grid = s.k_grid
    lines.append(("resolution (grid dK)",
                  f"{_num(s.resolution)}  (K in [{_num(grid and grid.min)}, "
                  f"{_num(grid and grid.max)}], {'?' if grid is None else grid.num} points)"))
    lines += _theory_lines(s.theory, s.threshold)
    lines += _estimator_lines(s.estimators, s.protocol_vs_converged)
    if s.work.runs:
        w = s.work
        ratio = "n/a" if w.ratio is None else f"{w.ratio:.2f}"
        lines.append(("work (system-steps)",
                      f"windows {w.windows:.3g} + refinement {w.refinement:.3g} = {ratio}x "
                      f"the plain protocol's {w.plain:.3g} (first window alone, same "
                      f"{w.runs} runs)"))
    lines += _hysteresis_lines(s.hysteresis)
    frac = s.not_stationary_fraction
    lines.append(("not stationary at Kc",
                  f"{s.not_stationary} of {s.crossings}"
                  + ("" if frac is None else f" ({100 * frac:.1f}%)")
                  + f"  (|r_second - r_first| > {s.stationarity_tol:g})"))
    width = max(len(label) for label, _ in lines)
    out = [f"{label:<{width}}  {value}" for label, value in lines]
    for note in s.notes or ():
        out.append(f"note: {note}")
    if s.warnings:
        out.append("warnings:")
        out += [f"  - {w}" for w in s.warnings]
    return "\n".join(out)


def _estimator_lines(est: Estimators | None,
                     cmp: ProtocolComparison | None) -> list[tuple[str, str]]:
    """One line per Kc estimator, then the original protocol vs converged table."""
    lines: list[tuple[str, str]] = []
    # the original protocol has the grid and interpolated Kc alone, printed above
    if est is not None and not (est.refined.n or est.chi_peak.n):
        est = None
    for key, (_, label) in ESTIMATORS.items():
        d = None if est is None else getattr(est, key)
        if d is None:
            continue
        if not d.n:
            lines.append((f"Kc {label}", f"n/a (n=0, {d.missing} ok runs without it)"))
            continue
        lines.append((f"Kc {label}",
                      f"mean {_num(d.mean)}, median {_num(d.median)}, 95% CI "
                      f"[{_num(d.ci95_lo)}, {_num(d.ci95_hi)}]  (n={d.n}; censored "
                      f"left {d.censored_left}, right {d.censored_right}; "
                      + ("" if d.peak_censored_left is None else
                         f"peak beyond the grid left {d.peak_censored_left}, "
                         f"right {d.peak_censored_right}; ")
                      + f"missing {d.missing})"))
    if cmp is not None and cmp.auto:
        lines += [
            ("protocol vs converged", f"{'mean':>8} {'median':>8}  (n={cmp.n} runs "
                                      f"crossing at both)"),
            ("  protocol (T = 5)", f"{_num(cmp.protocol.mean):>8} "
                                   f"{_num(cmp.protocol.median):>8}"),
            ("  converged", f"{_num(cmp.converged.mean):>8} "
                            f"{_num(cmp.converged.median):>8}"),
            ("  converged - protocol", f"{_num(cmp.shift.mean):>8} "
                                       f"{_num(cmp.shift.median):>8}"),
            ("  runs converged", f"{cmp.converged_runs}, unconverged at t_max "
                                 f"{cmp.unconverged_runs} (transient median "
                                 f"{_num(cmp.t_transient_median)}, max "
                                 f"{_num(cmp.t_transient_max)})"),
        ]
    return lines


_HYSTERESIS_LABELS = {"kc_forward": "Kc forward", "kc_backward": "Kc backward",
                      "hysteresis_width": "hysteresis width", "loop_area": "loop area"}


def _hysteresis_lines(h: Hysteresis | None) -> list[tuple[str, str]]:
    """One line per loop statistic of an adiabatic study; none otherwise."""
    if h is None or not h.adiabatic:
        return []
    lines = [("adiabatic sweep", f"{h.runs} ok runs with both branches (Kc forward = Kc)")]
    for name, label in _HYSTERESIS_LABELS.items():
        d: LoopStats = getattr(h, name)
        if not d.n:
            lines.append((label, f"n/a (n=0, {d.missing} ok runs without it)"))
            continue
        lines.append((label, f"mean {_num(d.mean)}, median {_num(d.median)}, 95% CI "
                             f"[{_num(d.ci95_lo)}, {_num(d.ci95_hi)}]  (n={d.n}; "
                             f"missing {d.missing})"))
    return lines


def _theory_lines(th: TheoryBlock | None, threshold: float | None) -> list[tuple[str, str]]:
    """The theory's summary lines (label, value), beside the measured Kc: the
    crossings of the threshold (the measured Kc's counterparts) first, then
    the onsets, labelled as onsets."""
    if th is None:
        return []
    if not th.applies:
        return [("theory", f"does not apply: {th.why_not}")]
    lines: list[tuple[str, str]] = []
    at = [th.spread(name) for name in AT_THRESHOLD_FIELDS]
    if any(at) and threshold is not None:
        n = max(sp.n for sp in at if sp)
        means = " / ".join(_num(sp.mean) if sp else "n/a" for sp in at)
        lines.append((f"theory Kc at r = {threshold:g} (MF / HMF / QMF)",
                      f"{means}  (means over {n} runs: each theory's r(K) crossing the "
                      f"threshold, the measured Kc's counterpart)"))
    spreads = [th.spread(name) for name in THEORY_FIELDS]
    if not any(spreads):
        why = ("infinite: no run's network has edges, so none has an onset" if th.no_onset
               else "n/a: no run has them (stored by an older kcbatch)" if th.missing
               else "n/a: no runs")
        return lines + [("theory onset (MF / HMF / QMF)", why)]
    n = max(sp.n for sp in spreads if sp)
    means = " / ".join(_num(sp.mean) if sp else "n/a" for sp in spreads)
    context = (f"means over {n} runs; where r leaves 0, not a Kc; coupling {th.coupling}, "
               f"omega {th.omega_dist}")
    if th.kc0 is not None:
        context += f"; Kc0 = {_num(th.kc0)}"
    lines.append(("theory onset (MF / HMF / QMF)", f"{means}  ({context})"))
    a2a = th.kc_all_to_all_at_threshold
    if a2a is not None and threshold is not None:
        lines.append((f"all-to-all K at r = {threshold:g}",
                      f"{_num(a2a)}  (Kuramoto, N → ∞: the measured Kc's counterpart)"))
    if th.finite_degree_note:
        lines.append(("theory note", th.finite_degree_note))
    return lines


def format_partial(partial: PartialInfo | Mapping[str, Any],
                   directory: str | None = None) -> str:
    """One phrase for a partial study: '96 of 1000 runs (interrupted); ...'.
    ``directory``: the study's, for the resume command (DIR when unknown)."""
    p = partial if isinstance(partial, PartialInfo) else PartialInfo.from_dict(partial)
    reason = p.reason
    if reason.startswith("shard") and "," not in reason:
        what = "the other shards are elsewhere: `kcbatch merge` combines them"
    else:
        what = f"`kcbatch run --resume {directory or 'DIR'}` completes it"
    return (f"{p.runs_done} of {p.runs_total} runs ({reason}); the statistics cover "
            f"these runs only; {what}")
