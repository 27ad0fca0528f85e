"""The per-run record: one row of ``runs.csv`` and of the results store."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CENSORING = ("none", "left", "right")
STATUSES = ("ok", "failed")


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
      (``kcbatch.predictions.run_thresholds``) [rad per time unit]: ``math.inf``
      for a graph without edges, None where the theory does not apply (or for
      runs stored before kcbatch recorded them). Set for failed runs too: they
      depend on the graph alone.
    status: "ok" or "failed" (non-finite phases); fail_reason says why.
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
    seconds: float = field(default=0.0, compare=False)
