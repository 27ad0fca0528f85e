"""The per-run record: one row of ``runs.csv`` and of the results store."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
      depend on the graph alone.
    status: "ok" or "failed" (non-finite phases); fail_reason says why.
    r_std: [nK] float64 standard deviation (ddof 0) of the r samples behind
      ``r``; chi(K) = nodes * r_std**2 is the susceptibility. None for runs
      stored before kcbatch recorded it.
    Converged protocol (``t_transient="auto"`` or ``refine``; all None
    otherwise, and for failed runs except t_transient_used and converged):
    t_transient_used: the transient of the final window [time units]; r, kc,
      kc_interp, the brackets and the stationarity are those of that window.
    converged: the stopping rule stopped the run (False: unconverged at t_max,
      or a fixed transient, where nothing is checked).
    kc_protocol: the interpolated crossing of the first window (T = 5 with
      "auto": the original protocol's number; with a fixed transient it equals
      kc_interp). None when that window does not cross.
    kc_refined: the crossing in the first grid bracket multisected down to
      ``refine`` (None without refine or without a crossing).
    kc_chi: K of the chi peak of the final window; kc_sigma: the uncertainty of
      kc_interp from the spread of r (None when censored).
    kc_windows: [W] float64 kc_interp after each window of the schedule
      (NaN where not measured or not crossing); None with a fixed transient.
    Adiabatic sweep (``sweep="adiabatic"``, kcbatch/analysis/sweep.py; all None for
    the independent protocol and for failed runs but r_forward/r_backward):
    r_forward, r_backward: [nK] float64 r of each branch in increasing-K
      order; r, r_first, r_second, r_std, kc, kc_interp, the brackets and
      the stationarity are the forward branch's (r equals r_forward).
    kc_forward: first K of the forward branch with r > threshold (= kc).
    kc_backward: smallest K from which r_backward stays above the threshold.
    hysteresis_width: kc_forward - kc_backward [rad per time unit].
    loop_area: trapezoid integral of r_backward - r_forward over the grid.
    graph_file, graph_sha256: with ``graphs`` (users' own networks), the run's
      file (its path relative to the graphs PATH, or its name when PATH is a
      file) and the SHA-256 of its bytes; None for a model's network.
    """

    run: int
    seed_material: str
    nodes: int
    edges: int
    mean_k: float
    mean_k2: float
    k_max: int
    r: np.ndarray
    r_first: np.ndarray
    r_second: np.ndarray
    kc: float | None
    kc_interp: float | None
    censored: str
    bracket_lo: float | None
    bracket_hi: float | None
    stationarity: float | None
    kc_mf: float | None = None
    kc_hmf: float | None = None
    kc_qmf: float | None = None
    status: str = "ok"
    fail_reason: str | None = None
    graph_file: str | None = None
    graph_sha256: str | None = None
    r_std: np.ndarray | None = None
    t_transient_used: float | None = None
    converged: bool | None = None
    kc_protocol: float | None = None
    kc_refined: float | None = None
    kc_chi: float | None = None
    kc_sigma: float | None = None
    kc_windows: np.ndarray | None = None
    r_forward: np.ndarray | None = None
    r_backward: np.ndarray | None = None
    kc_forward: float | None = None
    kc_backward: float | None = None
    hysteresis_width: float | None = None
    loop_area: float | None = None
    seconds: float = field(default=0.0, compare=False)
