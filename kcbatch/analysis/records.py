"""The per-run record: one row of ``runs.csv`` and of the results store."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def stored(sql: str, since: int = 1, **kw: Any) -> Any:
    """A record field that is a column of the store's ``runs`` table: its SQL
    type (``sql``, e.g. "REAL" or "TEXT NOT NULL") and the store schema version
    that added it (``since``). ``kw`` goes to :func:`dataclasses.field`."""
    return field(metadata={"sql": sql, "since": since}, **kw)


def part(cls: type) -> Any:
    """A record field holding an optional part ``cls`` (a dataclass whose fields
    are :func:`stored`): its columns are the part's, NULL where it is None."""
    return field(default=None, metadata={"part": cls})


@dataclass(frozen=True, kw_only=True)
class ConvergedPart:
    """The converged protocol's fields of a run (``t_transient="auto"`` or
    ``refine``; kcbatch/analysis/converge.py). For a failed run only
    t_transient_used, converged and kc_windows are set.

    t_transient_used: the transient of the final window [time units]; the
      record's r, kc, kc_interp, brackets and stationarity are those of that window.
    converged: the stopping rule stopped the run (False: unconverged at t_max,
      or a fixed transient, where nothing is checked).
    kc_protocol: the interpolated crossing of the first window (T = 5 with
      "auto": the original protocol's number; with a fixed transient it equals
      kc_interp). None when that window does not cross.
    kc_refined: the crossing in the first grid bracket multisected down to
      ``refine`` (None without refine or without a crossing).
    kc_chi: K of the chi peak of the final window (a fit of log chi near its
      largest value), kc_chi_err its standard error (both None unless
      kc_chi_censored is "none"); kc_chi_censored: "none", "left" / "right"
      (the peak lies beyond the grid, or the fitted points, on that side),
      "flat" (no maximum) or "retired" (a point of the fit was last integrated
      before the final window: ``converge="adaptive"``); None for runs stored
      before kcbatch recorded it.
      kc_sigma: the uncertainty of kc_interp from the spread of r (None when censored).
    kc_windows: [W] float64 kc_interp after each window of the schedule
      (NaN where not measured or not crossing); None with a fixed transient.
    work_windows, work_refine: (row, K) system-steps integrated for the run's
      windows and its refinement; work_plain: what the plain protocol (its first
      window alone) integrates for the same network. None for runs stored
      before kcbatch counted them.
    """

    t_transient_used: float = stored("REAL", since=4)
    converged: bool = stored("INTEGER", since=4)
    kc_protocol: float | None = stored("REAL", since=4, default=None)
    kc_refined: float | None = stored("REAL", since=4, default=None)
    kc_chi: float | None = stored("REAL", since=4, default=None)
    kc_sigma: float | None = stored("REAL", since=4, default=None)
    kc_windows: np.ndarray | None = stored("TEXT", since=4, default=None)
    kc_chi_err: float | None = stored("REAL", since=6, default=None)
    kc_chi_censored: str | None = stored("TEXT", since=6, default=None)
    work_windows: int | None = stored("INTEGER", since=7, default=None)
    work_refine: int | None = stored("INTEGER", since=7, default=None)
    work_plain: int | None = stored("INTEGER", since=7, default=None)


@dataclass(frozen=True, kw_only=True)
class SweepPart:
    """The adiabatic sweep's fields of a run (``sweep="adiabatic"``;
    kcbatch/analysis/sweep.py). The record's r, r_first, r_second, r_std, kc,
    kc_interp, brackets and stationarity are the forward branch's. For a failed
    run only the branches are set.

    r_forward, r_backward: [nK] float64 r of each branch in increasing-K
      order (r_forward equals the record's r).
    kc_forward: first K of the forward branch with r > threshold (= kc).
    kc_backward: smallest K from which r_backward stays above the threshold.
    hysteresis_width: kc_forward - kc_backward [rad per time unit].
    loop_area: trapezoid integral of r_backward - r_forward over the grid.
    """

    r_forward: np.ndarray = stored("TEXT", since=5)
    r_backward: np.ndarray = stored("TEXT", since=5)
    kc_forward: float | None = stored("REAL", since=5, default=None)
    kc_backward: float | None = stored("REAL", since=5, default=None)
    hysteresis_width: float | None = stored("REAL", since=5, default=None)
    loop_area: float | None = stored("REAL", since=5, default=None)


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """Everything a study keeps about run ``run``.

    r, r_first, r_second: [nK] float64 time-averaged order parameter over the
      whole measurement window, its first half and its second half.
    kc: first grid K with r > threshold (None when censored right or failed).
    kc_interp: linear interpolation of the crossing between the bracketing grid
      points (equals kc when left-censored; None when right-censored).
    censored: "none", "left" (crosses at the first grid K) or "right" (never).
    bracket_lo, bracket_hi: the grid K values around the crossing (None if censored).
    stationarity: r_second - r_first at the crossing K (None if right-censored).
    kc_mf, kc_hmf, kc_qmf: the theory's onset thresholds of the run's graph
      (``kcbatch.theory.per_run.run_thresholds``) [rad per time unit]: ``math.inf``
      for a graph without edges, None where the theory does not apply (or for
      runs stored before kcbatch recorded them). Set for failed runs too: they
      depend on the graph alone. Onsets are where the theory's r leaves 0, not
      comparable with kc.
    kc_mf_at_threshold, kc_hmf_at_threshold, kc_qmf_at_threshold: where each
      theory's prediction of the measured r crosses the threshold
      (``kcbatch.theory.curves.kc_at_threshold``) [rad per time unit]: the
      theory numbers comparable with kc_interp. ``math.inf`` when the theory's r
      never reaches the threshold; None where the theory does not apply (or for
      runs stored before kcbatch recorded them).
    status: "ok" or "failed" (non-finite phases); fail_reason says why.
    r_std: [nK] float64 standard deviation (ddof 0) of the r samples behind
      ``r``; chi(K) = nodes * r_std**2 is the susceptibility. None for runs
      stored before kcbatch recorded it.
    graph_file, graph_sha256: with ``graphs`` (users' own networks), the run's
      file (its path relative to the graphs PATH, or its name when PATH is a
      file) and the SHA-256 of its bytes; None for a model's network.
    convergence: the converged protocol's part (``t_transient="auto"`` or
      ``refine``; :class:`ConvergedPart`), None otherwise.
    sweep: the adiabatic sweep's part (``sweep="adiabatic"``; :class:`SweepPart`),
      None for the independent protocol.
    seconds: the run's share of its batch's wall time [s].

    Each field of a part also reads flat, as ``rec.kc_refined`` or
    ``rec.loop_area``: None when the record has no such part.

    The fields are the columns of the store's table ``runs``
    (``kcbatch.results.store``), in its order: :func:`stored` gives each its
    SQL type and the store schema that added it, :func:`part` descends into a
    part's fields.
    """

    run: int = stored("INTEGER PRIMARY KEY")
    status: str = stored("TEXT NOT NULL", default="ok")
    fail_reason: str | None = stored("TEXT", default=None)
    seed_material: str = stored("TEXT NOT NULL")
    nodes: int = stored("INTEGER")
    edges: int = stored("INTEGER")
    mean_k: float = stored("REAL")
    mean_k2: float = stored("REAL")
    k_max: int = stored("INTEGER")
    kc: float | None = stored("REAL")
    kc_interp: float | None = stored("REAL")
    censored: str = stored("TEXT")
    bracket_lo: float | None = stored("REAL")
    bracket_hi: float | None = stored("REAL")
    stationarity: float | None = stored("REAL")
    seconds: float = stored("REAL", default=0.0, compare=False)
    r: np.ndarray = stored("TEXT NOT NULL")
    r_first: np.ndarray = stored("TEXT NOT NULL")
    r_second: np.ndarray = stored("TEXT NOT NULL")
    kc_mf: float | None = stored("REAL", since=2, default=None)
    kc_hmf: float | None = stored("REAL", since=2, default=None)
    kc_qmf: float | None = stored("REAL", since=2, default=None)
    graph_file: str | None = stored("TEXT", since=3, default=None)
    graph_sha256: str | None = stored("TEXT", since=3, default=None)
    r_std: np.ndarray | None = stored("TEXT", since=4, default=None)
    kc_mf_at_threshold: float | None = stored("REAL", since=6, default=None)
    kc_hmf_at_threshold: float | None = stored("REAL", since=6, default=None)
    kc_qmf_at_threshold: float | None = stored("REAL", since=6, default=None)
    convergence: ConvergedPart | None = part(ConvergedPart)
    sweep: SweepPart | None = part(SweepPart)

    # -- the parts' fields, flat (None without the part) ----------------------
    @property
    def t_transient_used(self) -> float | None:
        return None if self.convergence is None else self.convergence.t_transient_used

    @property
    def converged(self) -> bool | None:
        return None if self.convergence is None else self.convergence.converged

    @property
    def kc_protocol(self) -> float | None:
        return None if self.convergence is None else self.convergence.kc_protocol

    @property
    def kc_refined(self) -> float | None:
        return None if self.convergence is None else self.convergence.kc_refined

    @property
    def kc_chi(self) -> float | None:
        return None if self.convergence is None else self.convergence.kc_chi

    @property
    def kc_chi_err(self) -> float | None:
        return None if self.convergence is None else self.convergence.kc_chi_err

    @property
    def kc_chi_censored(self) -> str | None:
        return None if self.convergence is None else self.convergence.kc_chi_censored

    @property
    def kc_sigma(self) -> float | None:
        return None if self.convergence is None else self.convergence.kc_sigma

    @property
    def kc_windows(self) -> np.ndarray | None:
        return None if self.convergence is None else self.convergence.kc_windows

    @property
    def r_forward(self) -> np.ndarray | None:
        return None if self.sweep is None else self.sweep.r_forward

    @property
    def r_backward(self) -> np.ndarray | None:
        return None if self.sweep is None else self.sweep.r_backward

    @property
    def kc_forward(self) -> float | None:
        return None if self.sweep is None else self.sweep.kc_forward

    @property
    def kc_backward(self) -> float | None:
        return None if self.sweep is None else self.sweep.kc_backward

    @property
    def hysteresis_width(self) -> float | None:
        return None if self.sweep is None else self.sweep.hysteresis_width

    @property
    def loop_area(self) -> float | None:
        return None if self.sweep is None else self.sweep.loop_area
