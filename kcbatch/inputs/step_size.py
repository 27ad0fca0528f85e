"""RK4's stability bound on the study's own networks, and ``dt = "auto"``.

The bound ``dt * 2 * K_max * max_i(w_i k_i) <= 2.78`` (``config.max_stable_dt``)
depends on the network except for the ``degree`` coupling (where
``w_i k_i <= 1`` always, checked by ``StudyConfig`` itself): ``raw`` needs the
largest degree, ``mean-degree`` ``k_max / <k>``, ``global`` ``k_max / N``. So a
study looks at its first networks before it starts:

* the sample: runs ``0 .. min(runs, 16) - 1`` of the *study* (not of a shard's
  run range), generated exactly as the study will generate them, so that every
  shard, and every resume, sees the same sample and picks the same ``dt``;
* an explicit ``dt`` beyond the bound of the sample is refused (ConfigError);
* ``dt = "auto"`` becomes the largest ``dt <= AUTO_MARGIN x`` the sample's bound
  that divides both ``t_transient`` and ``t_measure`` exactly.

With ``graphs`` (the users' own files) the sample is every file the study
uses (runs ``0 .. min(runs, n_files) - 1``; run ``i`` uses file ``i mod
n_files``), so the bound is exact for the whole study.

Later networks can have larger hubs than the sample: each batch checks its own
networks (``pipeline.make_batch``) and a run whose network breaks the bound is
recorded as failed with the reason, never integrated into garbage silently.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from kcbatch.inputs.graph_source import GraphSet, graph_set, run_network
from kcbatch.protocol.choices import AUTO, Auto, Coupling
from kcbatch.protocol.config import (
    ConfigError,
    StudyConfig,
    check_stable_dt,
    max_stable_dt,
    unstable_dt,
)
from kcbatch.protocol.coupling import max_weighted_degree
from kcbatch.protocol.seeding import run_inputs

# Networks generated before the study starts (cheap: ~1 ms each at N=10^4).
SAMPLE_NETWORKS = 16
# dt auto stays this far inside the sample's bound: the hubs of later networks
# fluctuate (raw coupling on BA graphs: the largest degree of one network varies
# by tens of percent), and a 10% margin keeps most of them stable where the
# bound itself would fail every network with a bigger hub than the sample's.
AUTO_MARGIN = 0.9


def graph_max_wk(indptr: np.ndarray, coupling: Coupling) -> float:
    """``max_i(w_i k_i)`` of one CSR network under ``coupling`` (0 without edges)."""
    deg = np.diff(np.asarray(indptr, dtype=np.int64))
    return float(max_weighted_degree(deg, np.array([0, deg.shape[0]]), coupling)[0])


def sample_runs(cfg: StudyConfig, graphs: GraphSet | None = None) -> range:
    """The runs whose networks set the study's bound: the study's first ones
    (with ``graphs``: one per file the study uses). ``graphs``: the study's
    files (default: read, or cached, from ``cfg.graphs``)."""
    runs = cfg.runs
    if runs is None:  # plan.check_paths counts a graphs study's files first
        raise RuntimeError("sample_runs needs the study's runs, counted when the study is "
                           "resolved (kcbatch.run.plan.check_paths)")
    if cfg.graphs is not None:
        files = len((graphs if graphs is not None else graph_set(cfg.graphs)).files)
        return range(min(runs, files))
    return range(min(runs, SAMPLE_NETWORKS))


def _sample_what(cfg: StudyConfig, n: int) -> str:
    """The sample in words, for messages."""
    if cfg.graphs is not None:
        return f"the study's {n} network file{'s' if n != 1 else ''}"
    return f"the study's first {n} networks"


def sample_max_wk(cfg: StudyConfig, graphs: GraphSet | None = None) -> float:
    """The largest ``max_i(w_i k_i)`` over the networks of :func:`sample_runs`."""
    if cfg.graphs is not None:
        gs = graphs if graphs is not None else graph_set(cfg.graphs)
        return max(graph_max_wk(gs.for_run(run).indptr, cfg.coupling)
                   for run in sample_runs(cfg, gs))
    if cfg.seed is None:
        raise ValueError("the study needs its seed before its networks can be sampled")
    worst = 0.0
    for run in sample_runs(cfg):
        inp = run_inputs(cfg.seed, run, cfg.nodes, cfg.omega_mu, cfg.omega_sigma,
                         cfg.omega_dist)
        indptr, _, _ = run_network(cfg, run, inp.graph_seed)
        worst = max(worst, graph_max_wk(indptr, cfg.coupling))
    return worst


def _exact(value: float) -> Fraction:
    """A time as the exact fraction its shortest decimal reads (5.0 -> 5, 0.1 -> 1/10)."""
    return Fraction(repr(float(value)))


def auto_dt(t_transient: float, t_measure: float, dt_max: float) -> float:
    """The largest ``dt <= dt_max`` with ``t_transient / dt`` and ``t_measure / dt``
    both integers: ``g / ceil(g / dt_max)``, ``g`` the greatest common divisor
    of the two times as exact fractions (``t_measure`` alone when
    ``t_transient = 0``)."""
    a, b = _exact(t_transient), _exact(t_measure)
    # gcd(p/q, r/s) = gcd(p s, r q) / (q s); gcd(0, x) = x covers t_transient = 0.
    g = Fraction(math.gcd(a.numerator * b.denominator, b.numerator * a.denominator),
                 a.denominator * b.denominator)
    steps = max(1, math.ceil(g / Fraction(dt_max)))
    return float(g / steps)


def prepare_dt(cfg: StudyConfig, graphs: GraphSet | None = None
               ) -> tuple[StudyConfig, str | None]:
    """``cfg`` with a numeric dt that is stable on the study's first networks,
    and the notice to print for ``dt = "auto"`` (None otherwise).

    ConfigError (naming dt and the largest dt allowed) when an explicit dt is
    unstable there, or when ``auto`` has no bound to go by or gives an invalid
    step schedule. ``cfg.seed`` must be set. ``graphs``: the study's files
    when ``cfg.graphs`` is set (default: read, or cached)."""
    dt = cfg.dt
    if not isinstance(dt, Auto):  # StudyConfig holds "auto" as AUTO, anything else as a number
        if cfg.coupling != Coupling.DEGREE:  # degree: StudyConfig already checked max(w k) <= 1
            worst = sample_max_wk(cfg, graphs)
            n = len(sample_runs(cfg, graphs))
            check_stable_dt(dt, cfg.k_abs_max, worst,
                            where=f"over {_sample_what(cfg, n)}",
                            fix="use a smaller dt, --dt auto, or a smaller K range")
        return cfg, None
    worst = sample_max_wk(cfg, graphs)
    bound = max_stable_dt(cfg.k_abs_max, worst)
    if math.isinf(bound):
        raise ConfigError("dt", AUTO,
                          f"has no stability bound to go by (K_max={cfg.k_abs_max:g}, "
                          f"max(w_i k_i)={worst:g}: no coupling or no edges); give dt as a "
                          f"number")
    transient = cfg.first_transient
    if cfg.auto_transient:
        # every window start (multiples of the first transient, and t_max) on a step
        transient = auto_dt(cfg.first_transient, cfg.t_max, max(cfg.first_transient, cfg.t_max))
    if cfg.dwell is not None:
        # the sweep's time at each K on a step too
        transient = auto_dt(transient, cfg.dwell, max(transient, cfg.dwell))
    dt = auto_dt(transient, cfg.t_measure, AUTO_MARGIN * bound)
    resolved = cfg.resolved(dt=dt)  # checks the schedule (sample_every, step count) once
    spec = resolved.spec
    notice = (f"dt auto: {dt:.6g} (RK4 bound {bound:.3g} at K_max={cfg.k_abs_max:g}, "
              f"max w_i k_i = {worst:.4g} over "
              f"{_sample_what(cfg, len(sample_runs(cfg, graphs)))}; {AUTO_MARGIN:g} x the "
              f"bound, dividing t_transient={_shown(cfg)} and t_measure="
              f"{cfg.t_measure:g}): {spec.n_transient} + {spec.n_measure} steps, "
              f"{spec.n_samples} samples of r per K (sample_every={cfg.sample_every})")
    return resolved, notice


def _shown(cfg: StudyConfig) -> str:
    if cfg.auto_transient:
        return f"auto (windows from {cfg.first_transient:g} to t_max={cfg.t_max:g})"
    return f"{cfg.t_transient:g}"


def network_problem(dt: float, k_abs_max: float, max_wk: float) -> str | None:
    """Why a run's network cannot be integrated at ``dt`` (the fail reason of
    its record), or None when ``dt`` is within its bound."""
    problem = unstable_dt(dt, k_abs_max, max_wk)
    if problem is None:
        return None
    return (f"this network is beyond RK4's stability bound at dt={dt!r}: {problem}; "
            f"rerun with a smaller dt or --dt auto")


__all__ = ["AUTO_MARGIN", "SAMPLE_NETWORKS", "auto_dt", "graph_max_wk", "network_problem",
           "prepare_dt", "sample_max_wk", "sample_runs"]
