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
* ``dt = "auto"`` becomes the largest dt that divides ``t_transient``,
  ``t_measure`` and the sampling interval exactly and is at most each of:

  - stability: ``AUTO_MARGIN x`` the sample's RK4 bound;
  - accuracy: ``MAX_PHASE_STEP / rate``, the phase a node may advance in one
    step, with ``rate = q99_i |omega_i - median(omega)| + K_max max_i(w_i k_i)``
    [rad / time unit] over the sample (its largest). The right-hand side
    depends on phase differences only, so the common rotation (the median
    frequency) is integrated exactly and does not count; the fastest 1% of
    drifters (a Lorentzian's tail) stay incoherent whatever their phase error
    and do not set the step;
  - the default protocol's step, ``AUTO_DT_CAP = 0.05``: auto never integrates
    more coarsely than the default (a larger dt must be given as a number).

  MAX_PHASE_STEP = 0.5 rad: the default protocol (dt 0.05, K_max 5, degree
  coupling, omega ~ N(0, 0.5)) advances 0.05 x (1.3 + 5) = 0.31 rad per step,
  and ``bench/bench_dt_auto.py`` measures auto-dt's Kc against a dt/4
  reference (BA degree, ER raw, power-law raw; README, "The RK4 step").

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
    DEFAULT_SAMPLE_INTERVAL,
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
# The largest phase advance per step that auto allows [rad] (module docstring).
MAX_PHASE_STEP = 0.5
# The quantile of |omega_i - median(omega)| that counts toward the rate.
OMEGA_QUANTILE = 0.99
# dt auto never exceeds the default protocol's step [time units].
AUTO_DT_CAP = 0.05


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
    return sample_rates(cfg, graphs)[0]


def omega_spread(omega: np.ndarray) -> float:
    """The OMEGA_QUANTILE quantile of ``|omega_i - median(omega)|`` [rad / time unit]."""
    omega = np.asarray(omega, dtype=np.float64)
    if omega.size == 0:
        return 0.0
    return float(np.quantile(np.abs(omega - np.median(omega)), OMEGA_QUANTILE))


def sample_rates(cfg: StudyConfig, graphs: GraphSet | None = None) -> tuple[float, float]:
    """``(max_i(w_i k_i), rate)`` over the networks of :func:`sample_runs`, each
    the largest of the sample: the stability bound's weighted degree and the
    phase rate ``omega_spread + K_max max_i(w_i k_i)`` [rad / time unit] of
    the accuracy bound (module docstring)."""
    if cfg.seed is None:
        raise ValueError("the study needs its seed before its networks can be sampled")
    gs = graphs if (graphs is not None or cfg.graphs is None) else graph_set(cfg.graphs)
    worst = rate = 0.0
    for run in sample_runs(cfg, gs):
        if gs is not None:
            f = gs.for_run(run)
            inp = run_inputs(cfg.seed, run, f.report.nodes, cfg.omega_mu, cfg.omega_sigma,
                             cfg.omega_dist)
            indptr = f.indptr
        else:
            inp = run_inputs(cfg.seed, run, cfg.nodes, cfg.omega_mu, cfg.omega_sigma,
                             cfg.omega_dist)
            indptr, _, _ = run_network(cfg, run, inp.graph_seed)
        wk = graph_max_wk(indptr, cfg.coupling)
        # omega_dist "degree": omega_i = k_i
        omega = inp.omega if inp.omega is not None else np.diff(indptr).astype(np.float64)
        worst = max(worst, wk)
        rate = max(rate, omega_spread(omega) + cfg.k_abs_max * wk)
    return worst, rate


def _exact(value: float) -> Fraction:
    """A time as the exact fraction its shortest decimal reads (5.0 -> 5, 0.1 -> 1/10)."""
    return Fraction(repr(float(value)))


def _gcd(a: Fraction, b: Fraction) -> Fraction:
    # gcd(p/q, r/s) = gcd(p s, r q) / (q s); gcd(0, x) = x covers a zero time.
    return Fraction(math.gcd(a.numerator * b.denominator, b.numerator * a.denominator),
                    a.denominator * b.denominator)


def auto_dt(t_transient: float, t_measure: float, dt_max: float,
            *more: float) -> float:
    """The largest ``dt <= dt_max`` with ``t_transient / dt``, ``t_measure / dt``
    (and ``t / dt`` for each time of ``more``, e.g. the sampling interval) all
    integers: ``g / ceil(g / dt_max)``, ``g`` the greatest common divisor of
    the times as exact fractions (zero times drop out)."""
    g = _exact(t_measure)
    for t in (t_transient, *more):
        g = _gcd(g, _exact(t))
    steps = max(1, math.ceil(g / Fraction(dt_max)))
    return float(g / steps)


def auto_limits(k_abs_max: float, max_wk: float, rate: float) -> dict[str, float]:
    """The three upper limits of dt auto [time units]: ``stability`` (AUTO_MARGIN
    x the RK4 bound), ``accuracy`` (MAX_PHASE_STEP / rate) and ``cap``
    (AUTO_DT_CAP); inf where a limit does not apply."""
    return {"stability": AUTO_MARGIN * max_stable_dt(k_abs_max, max_wk),
            "accuracy": math.inf if rate == 0.0 else MAX_PHASE_STEP / rate,
            "cap": AUTO_DT_CAP}


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
    worst, rate = sample_rates(cfg, graphs)
    limits = auto_limits(cfg.k_abs_max, worst, rate)
    if math.isinf(limits["stability"]):
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
    # sampling in time units unless sample_every (steps) was given
    interval = () if cfg.sample_every is not None and cfg.sample_interval is None else \
        (cfg.sample_interval if cfg.sample_interval is not None else DEFAULT_SAMPLE_INTERVAL,)
    binding = min(limits, key=lambda name: limits[name])
    dt = auto_dt(transient, cfg.t_measure, limits[binding], *interval)
    resolved = cfg.resolved(dt=dt)  # checks the schedule (sample_every, step count) once
    spec = resolved.spec
    shown = {name: ("none" if math.isinf(v) else f"{v:.3g}") for name, v in limits.items()}
    sampled = (f"every {resolved.sampling_interval:g} time units = {resolved.sample_every} "
               f"steps" if interval else f"sample_every={resolved.sample_every} steps")
    notice = (f"dt auto: {dt:.6g}, set by {binding} (limits: stability {shown['stability']} "
              f"= {AUTO_MARGIN:g} x the RK4 bound at K_max={cfg.k_abs_max:g}, max w_i k_i = "
              f"{worst:.4g}; accuracy {shown['accuracy']} = {MAX_PHASE_STEP:g} rad per step "
              f"at a phase rate of {rate:.4g}/time unit; cap {shown['cap']}; over "
              f"{_sample_what(cfg, len(sample_runs(cfg, graphs)))}), dividing t_transient="
              f"{_shown(cfg)} and t_measure={cfg.t_measure:g}: {spec.n_transient} + "
              f"{spec.n_measure} steps per K per run, {spec.n_samples} samples of r per K "
              f"({sampled})")
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


__all__ = ["AUTO_DT_CAP", "AUTO_MARGIN", "MAX_PHASE_STEP", "OMEGA_QUANTILE", "SAMPLE_NETWORKS",
           "auto_dt", "auto_limits", "graph_max_wk", "network_problem", "omega_spread",
           "prepare_dt", "sample_max_wk", "sample_rates", "sample_runs"]
