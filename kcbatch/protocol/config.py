"""Validated, immutable study configuration, in three parts.

* :class:`StudyProtocol`: what is computed (the fields of ``PROTOCOL_FIELDS``,
  ``docs/design.md``); two stores merge, or a study resumes, only when these agree;
* :class:`Execution`: how it runs (device, batch, producers, kernel,
  fast_math, the run range); never changes the numbers beyond float tolerance;
* :class:`Output`: where the results go (``out``).

Each part checks its own fields when it is constructed, without touching the
file system; :class:`StudyConfig` is the flat constructor the CLI, TOML files
and the API use, and holds one of each part. What needs the file system (is
``out`` writable, how many files ``graphs`` holds) and what the study
chooses when it starts (seed, ``dt = "auto"``, the device) is resolved once,
in :mod:`kcbatch.run.plan`. Each problem raises :class:`ConfigError`, whose
message names the parameter, the value given and what is allowed.
"""
from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import math
import numbers
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kcbatch.protocol import choices
from kcbatch.protocol.choices import (
    AUTO,
    Auto,
    Converge,
    Coupling,
    Device,
    GraphModel,
    KernelStrategy,
    OmegaDist,
    Precision,
    Sweep,
    is_auto,
)
from kcbatch.protocol.models import MAX_NODES, MODELS

# What ``device=`` accepts: a concrete engine (choices.Device), or auto.
DEVICES = tuple(str(d) for d in Device)
DEVICE_CHOICES = (str(AUTO),) + DEVICES
# The GPU kernel strategies (``kernel=``; docs/design.md): ``global`` one
# launch per RK4 stage over the batch in device memory, ``shared`` one block
# per (network, K) with its network in shared memory, ``auto`` the one
# measured faster where the network fits (today: global).
KERNEL_CHOICES = (str(AUTO),) + tuple(str(k) for k in KernelStrategy)
# The precisions by name (choices.PRECISIONS holds their records), and the
# numpy scalar type of each.
PRECISIONS = tuple(choices.PRECISIONS)
REAL_DTYPES = {name: rec.scalar for name, rec in choices.PRECISIONS.items()}

# Fields that define *what* is computed. Two stores can be merged, or a study
# resumed, only when these agree; the rest (device, batch, out, ...) only say
# *how* it is computed and never change the numbers beyond float tolerance.
PROTOCOL_FIELDS = (
    "runs", "graphs", "nodes", "m", "graph", "ws_p", "gamma", "coupling", "omega_dist",
    "omega_mu", "omega_sigma", "k_min", "k_max", "k_num",
    "dt", "t_transient", "t_measure", "sample_every", "threshold", "seed",
    "precision", "kc_tol", "t_max", "refine", "refine_points", "sweep", "dwell", "converge",
)
# Protocol fields added after stores already existed, with the one value every
# older study had: a stored config without the key computed with that value.
ADDED_PROTOCOL_DEFAULTS = {"graphs": None, "graph": "ba", "ws_p": 0.1, "gamma": 3.0,
                           "coupling": "degree", "omega_dist": "normal",
                           "kc_tol": 0.01, "t_max": 400.0, "refine": None, "refine_points": 8,
                           "sweep": "independent", "dwell": None,
                           # every converged study before the adaptive protocol was
                           # exhaustive, and a fixed transient is stored as exhaustive
                           "converge": "exhaustive"}
# ``dt = "auto"``: the largest stable step that divides both times, chosen from
# the study's first networks when it starts (kcbatch.inputs.step_size).
# ``t_transient = "auto"``: measurement windows at T = 5, 10, 20, ... up to
# t_max until each network's Kc settles (kcbatch.analysis.converge); the first
# window starts at the original protocol's transient.
AUTO_FIRST_TRANSIENT = 5.0
# Sampling r. ``sample_every`` counts measurement steps; ``sample_interval`` is
# the same in time units (``sample_every = sample_interval / dt``, an integer).
# Neither given: every DEFAULT_SAMPLE_INTERVAL time units, whatever dt (given or
# chosen by auto), so that dt does not change the number of samples; a dt that
# does not divide it is refused, naming both options. At the default dt that is
# DEFAULT_SAMPLE_EVERY steps (10 x 0.05 = 0.5), the Python API's default.
DEFAULT_SAMPLE_EVERY = 10
DEFAULT_SAMPLE_INTERVAL = 0.5
# How the K grid is walked: every K from theta0 (the original protocol), or
# adiabatically, each K from the previous one's final phases, up then down
# (kcbatch.analysis.sweep). ``dwell``: the time an adiabatic sweep spends at
# each K, measurement included; None: t_transient + t_measure.
SWEEPS = tuple(str(s) for s in Sweep)
# How t_transient="auto" spends its integration (kcbatch.analysis.adaptive).
CONVERGES = tuple(str(c) for c in Converge)
# The study's size without --graphs; with it, the number of files.
DEFAULT_RUNS = 1000
# The model's fields: with ``graphs`` the networks are the files, and these do not apply.
MODEL_FIELDS = ("nodes", "m", "graph", "ws_p", "gamma")


# RK4's stability region reaches -2.785 on the negative real axis; 2.78 keeps a
# little inside it. The stiffest mode of the linearised coupling term
# -(K w_i) sum_j A_ij (theta_i - theta_j) has rate 2 * K * max_i(w_i k_i)
# (Gershgorin: a row of the weighted Laplacian sums to 2 w_i k_i in absolute value).
RK4_STABILITY_LIMIT = 2.78
# Upper bounds of the counts (README, "Limits"): far above any real study, low
# enough that what each one sizes (the list of runs, the K grid and its samples,
# the couplings of a refinement round, threads, files read whole) stays within
# memory and time; checked when the config is built, before anything is allocated.
MAX_RUNS = 10**6
MAX_K_NUM = 10**4
MAX_REFINE_POINTS = 1000
MAX_BATCH = MAX_RUNS  # a batch larger than the study is the study
MAX_PRODUCERS = 256
# omega_sigma other than 0 (identical frequencies): the theory's g(0) ~ 1/sigma
# and its integrals in sigma's units stay finite, nonzero float64 numbers.
OMEGA_SIGMA_MIN = 1e-100
OMEGA_SIGMA_MAX = 1e100
# Files read whole: a study's TOML file, one graph file (an edge list of 10^9
# bytes holds some 5e7 edges; larger networks come from the models).
MAX_CONFIG_BYTES = 10**6
MAX_GRAPH_FILE_BYTES = 10**9


# More RK4 steps than this per run is a typo in dt, not a study: at 1e8 steps one
# default run takes days on a GPU, and the kernels index samples with 32-bit ints.
MAX_STEPS = 10**8


# The narrowest bracket --refine may ask for, in units in the last place of the
# grid's largest |K| (float64), per part of a bracket: each refinement round
# splits a bracket into refine_points + 1 parts, which must still be distinct
# float64 couplings (min_refine).
REFINE_MIN_ULPS = 16


def min_refine(k_abs_max: float, refine_points: int) -> float:
    """The smallest ``refine`` TOL a grid reaching ``k_abs_max`` = max |K| can
    resolve with ``refine_points`` couplings per round: ``(refine_points + 1) *
    REFINE_MIN_ULPS * spacing(k_abs_max)``, shown rounded up to 3 significant
    digits (so that the value the message prints is accepted)."""
    least = (refine_points + 1) * REFINE_MIN_ULPS * float(np.spacing(abs(float(k_abs_max))))
    shown = float(f"{least:.3g}")
    # 3 significant digits round by at most 0.5%: 1% up is always above least
    return shown if shown >= least else float(f"{least * 1.01:.3g}")


def check_refine(refine: float, k_abs_max: float, refine_points: int) -> None:
    """ConfigError unless ``refine`` is at least :func:`min_refine` for a grid
    reaching ``k_abs_max`` = max |K| (a study's config and ``find_kc`` alike)."""
    least = min_refine(k_abs_max, refine_points)
    if refine < least:
        raise ConfigError(
            "refine", refine,
            f"must be at least {least!r}: float64 resolves K near max(|k_min|, "
            f"|k_max|)={k_abs_max:g} only to {float(np.spacing(k_abs_max)):.3g}"
            f", and each refinement round splits a bracket into refine_points+1="
            f"{refine_points + 1} parts of at least {REFINE_MIN_ULPS} such steps")


# Decimal places a grid value is shown with at most, when a short decimal lies
# within GRID_ULPS units in the last place of it (decimal_value).
GRID_DIGITS = 12
GRID_ULPS = 4


def decimal_value(value: float) -> float:
    """A grid value without its float artefact: the shortest decimal of at most
    GRID_DIGITS significant digits within GRID_ULPS ulps of ``value``
    (``linspace(0, 3, 16)[9] = 1.8000000000000003`` gives 1.8), or ``value``
    itself when there is none (``5/49`` stays as it is). For the values a study
    reports as grid points (grid Kc, brackets, the sweep's Kc): the couplings
    integrated are the grid's own, one ulp at most from what is shown."""
    v = float(value)
    if v == 0.0 or not math.isfinite(v):
        return v
    tol = GRID_ULPS * float(np.spacing(abs(v)))
    for digits in range(1, GRID_DIGITS + 1):
        short = float(f"{v:.{digits}g}")
        if abs(short - v) <= tol:
            return short
    return v


def first_auto_transient(t_max: float) -> float:
    """The first window's transient with ``t_transient = "auto"`` [time units]:
    the original protocol's, or all of ``t_max`` when that is shorter."""
    return min(AUTO_FIRST_TRANSIENT, t_max)


class ConfigError(ValueError):
    """A user-facing configuration error (the CLI exits with status 2)."""

    def __init__(self, param: str, value: Any, allowed: str):
        if isinstance(value, enum.Enum):
            value = value.value  # the string the user typed
        self.param = param
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid {param}={value!r}: {allowed}")


def max_stable_dt(k_abs_max: float, max_wk: float) -> float:
    """The largest RK4 step (time units) that is linearly stable at coupling
    ``k_abs_max`` (= max |K| of the grid) when the largest weighted degree
    ``max_i(w_i k_i)`` is ``max_wk``: ``dt * 2 * K_max * max_wk <= 2.78``.
    ``inf`` when there is no coupling (K_max = 0 or no edges)."""
    rate = 2.0 * abs(float(k_abs_max)) * float(max_wk)
    return math.inf if rate == 0.0 else RK4_STABILITY_LIMIT / rate


def largest_stable_dt_shown(k_abs_max: float, max_wk: float) -> float:
    """:func:`max_stable_dt` as the shortest decimal (3 significant digits or
    more) that is still stable: the value messages print and users type."""
    bound = max_stable_dt(k_abs_max, max_wk)
    # The relative slack lets the decimal the message prints (1.39/5 -> 0.278,
    # computed as 0.27799999999999997) pass.
    slack = bound * (1 + 1e-9)
    if math.isinf(bound):
        return bound
    return next(v for v in (float(f"{bound:.{d}g}") for d in range(3, 18)) if v <= slack)


def unstable_dt(dt: float, k_abs_max: float, max_wk: float) -> str | None:
    """None when ``dt <= max_stable_dt(k_abs_max, max_wk)``, else the sentence
    saying so: the bound, K_max, max(w_i k_i) and the largest dt allowed."""
    if dt <= max_stable_dt(k_abs_max, max_wk) * (1 + 1e-9):
        return None
    return (f"RK4 is unstable beyond dt * 2 * K_max * max(w_i k_i) <= {RK4_STABILITY_LIMIT} "
            f"(K_max={float(k_abs_max):g}, max(w_i k_i)={float(max_wk):g}): the largest dt "
            f"allowed is {largest_stable_dt_shown(k_abs_max, max_wk)!r}")


def check_stable_dt(dt: float, k_abs_max: float, max_wk: float, *, where: str = "",
                    fix: str = "use a smaller dt or a smaller K range") -> None:
    """ConfigError naming dt, the bound and the largest dt allowed, unless
    ``dt <= max_stable_dt(k_abs_max, max_wk)``. ``where`` (e.g. "over the study's
    first 16 networks") follows max(w_i k_i) in the message; ``fix`` ends it."""
    problem = unstable_dt(dt, k_abs_max, max_wk)
    if problem is not None:
        if where:
            problem = problem.replace("): the largest", f" {where}): the largest", 1)
        raise ConfigError("dt", dt, f"{problem}; {fix}")


def _too_many_steps(param: str, duration: float, dt: float, steps: float,
                    sample_bytes: float | None = None) -> ConfigError:
    """The error for a dt that makes ``steps`` RK4 steps over ``duration``;
    ``sample_bytes``: the r samples of one network, when known."""
    memory = ("" if sample_bytes is None else
              f", and its r samples would take {format_bytes(sample_bytes)} per network")
    return ConfigError(
        "dt", dt,
        f"gives {steps:.3g} RK4 steps per run over {param}={duration!r} (at most "
        f"{MAX_STEPS:.0e} are allowed){memory}; use a larger dt (or shorter times)")


def steps_for(duration: float, dt: float, param: str = "", min_steps: int = 0, *,
              rounding: Literal["exact", "nearest", "up"] = "exact") -> int:
    """Number of RK4 steps of size ``dt`` in ``duration`` (both in time units):
    the one place a time becomes a step count.

    ``exact``: ``duration / dt`` must be an integer no larger than
    :data:`MAX_STEPS` (ConfigError naming ``param`` otherwise); ``min_steps``
    keeps the value the error message suggests valid. Unchecked, for a time
    that is shown or suggested rather than run: ``nearest``, the nearest whole
    number of steps; ``up``, the fewest whole steps that reach ``duration``."""
    ratio = duration / dt
    if rounding == "nearest":
        return round(ratio)
    if rounding == "up":
        return math.ceil(ratio - 1e-9)
    # Before round(): a subnormal dt makes the ratio inf (round raises) or an
    # integer of hundreds of digits.
    if not ratio <= MAX_STEPS:
        raise _too_many_steps(param, duration, dt, ratio)
    n = round(ratio)
    if abs(ratio - n) > 1e-9 * max(1.0, abs(ratio)):
        suggest = float(f"{max(n, min_steps) * dt:.12g}")
        raise ConfigError(
            param, duration,
            f"must be an integer multiple of dt={dt!r} ({param}/dt = {ratio!r}); "
            f"try {param}={suggest!r}",
        )
    return int(n)


@dataclass(frozen=True, kw_only=True)
class IntegrationSpec:
    """The time discretisation of one simulation.

    ``n_transient`` RK4 steps of size ``dt`` (time units) are discarded, then
    ``n_measure`` steps are taken and ``r`` is sampled after every measurement
    step ``s`` (0-based) with ``s % sample_every == 0``.
    """

    dt: float
    n_transient: int
    n_measure: int
    sample_every: int

    def __post_init__(self):
        _check_real("dt", self.dt, lo=0.0, lo_open=True)
        _check_int("n_transient", self.n_transient, lo=0)
        _check_int("n_measure", self.n_measure, lo=1)
        _check_int("sample_every", self.sample_every, lo=1)
        if self.sample_every > self.n_measure:
            raise ConfigError(
                "sample_every", self.sample_every,
                f"must be between 1 and the number of measurement steps ({self.n_measure})",
            )
        if self.n_transient + self.n_measure > MAX_STEPS:
            raise ConfigError("n_transient + n_measure", self.n_transient + self.n_measure,
                              f"must be at most {MAX_STEPS:.0e} RK4 steps; use a larger dt")

    @classmethod
    def from_times(cls, *, dt: float, t_transient: float, t_measure: float,
                   sample_every: int) -> IntegrationSpec:
        _check_real("dt", dt, lo=0.0, lo_open=True)
        _check_real("t_transient", t_transient, lo=0.0)
        _check_real("t_measure", t_measure, lo=0.0, lo_open=True)
        n_tr = steps_for(t_transient, dt, "t_transient")
        n_me = steps_for(t_measure, dt, "t_measure", min_steps=1)
        if n_tr + n_me > MAX_STEPS:
            raise _too_many_steps("t_transient + t_measure", t_transient + t_measure, dt,
                                  n_tr + n_me)
        if n_me < 1:
            raise ConfigError("t_measure", t_measure, f"must be at least one step (dt={dt!r})")
        _check_int("sample_every", sample_every, lo=1)
        if sample_every > n_me:
            raise ConfigError(
                "sample_every", sample_every,
                f"must be between 1 and the number of measurement steps "
                f"(t_measure/dt = {n_me})",
            )
        return cls(dt=float(dt), n_transient=n_tr, n_measure=n_me, sample_every=int(sample_every))

    @property
    def n_steps(self) -> int:
        return self.n_transient + self.n_measure

    @property
    def n_samples(self) -> int:
        """Samples per system: measurement steps s with s % sample_every == 0."""
        return -(-self.n_measure // self.sample_every)

    @property
    def n_first_half(self) -> int:
        """Samples in the first half of the measurement window (stationarity check)."""
        return self.n_samples // 2


@dataclass(frozen=True, kw_only=True)
class StudyProtocol:
    """What one Kc study computes: the protocol of ``docs/design.md``.

    Units: times (``dt``, ``t_transient``, ``t_measure``) in the model's time
    units, frequencies in radians per time unit, couplings ``K`` dimensionless
    multiples of the frequency unit. Checked completely when constructed,
    without touching the file system: ``runs`` stays None with ``graphs``
    (the number of files, counted when the study is resolved), ``seed`` None
    until drawn, ``dt`` :data:`~kcbatch.protocol.choices.AUTO` until chosen.
    The closed sets are held as their StrEnums (equal to their strings).
    """

    runs: int | None = None
    graphs: Path | None = None
    nodes: int = 10000
    m: int = 3
    graph: GraphModel = GraphModel.BA
    ws_p: float = 0.1
    gamma: float = 3.0
    coupling: Coupling = Coupling.DEGREE
    omega_dist: OmegaDist = OmegaDist.NORMAL
    omega_mu: float = 0.0
    omega_sigma: float = 0.5
    k_min: float = 0.0
    k_max: float = 5.0
    k_num: int = 50
    dt: float | Auto = 0.05
    t_transient: float | Auto = 5.0
    t_measure: float = 5.0
    sample_every: int | None = None
    sample_interval: float | None = None
    threshold: float = 0.5
    kc_tol: float = 0.01
    t_max: float = 400.0
    refine: float | None = None
    refine_points: int = 8
    sweep: Sweep = Sweep.INDEPENDENT
    dwell: float | None = None
    converge: Converge = Converge.ADAPTIVE
    seed: int | None = None
    precision: str = "float32"

    def __post_init__(self):
        self._check_graphs()
        if self.runs is not None:
            _check_int("runs", self.runs, lo=1, hi=MAX_RUNS)
        _check_int("m", self.m, lo=1)
        _check_int("nodes", self.nodes, lo=1)
        if self.nodes > MAX_NODES:
            raise ConfigError("nodes", self.nodes,
                              f"must be at most {MAX_NODES} (node ids are 32-bit integers)")
        self._check_model()
        _check_real("omega_mu", self.omega_mu)
        _check_real("omega_sigma", self.omega_sigma, lo=0.0)
        if self.omega_sigma != 0 and not OMEGA_SIGMA_MIN <= self.omega_sigma <= OMEGA_SIGMA_MAX:
            raise ConfigError("omega_sigma", self.omega_sigma,
                              f"must be 0 (identical frequencies) or between "
                              f"{OMEGA_SIGMA_MIN:g} and {OMEGA_SIGMA_MAX:g} (the theory's "
                              f"density g(0) ~ 1/sigma must be a finite, nonzero float64)")
        self._check_omega_dist()
        _check_real("k_min", self.k_min)
        _check_real("k_max", self.k_max)
        _check_int("k_num", self.k_num, lo=1, hi=MAX_K_NUM)
        if self.k_min > self.k_max:
            raise ConfigError("k_min", self.k_min, f"must be <= k_max={self.k_max!r}")
        if self.k_num == 1 and self.k_min != self.k_max:
            raise ConfigError(
                "k_num", 1,
                f"a single-K grid needs k_min == k_max (got k_min={self.k_min!r}, "
                f"k_max={self.k_max!r}); use --k-max {self.k_min!r} for K={self.k_min!r} "
                f"alone, or --k-num >= 2 for the range")
        _check_real("threshold", self.threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError("threshold", self.threshold, "must lie strictly between 0 and 1")
        self._check_converged()
        self._check_sweep()
        if self.seed is not None:
            _check_int("seed", self.seed, lo=0)
        _choice("precision", self.precision, PRECISIONS)
        if self.sample_every is not None:
            _check_int("sample_every", self.sample_every, lo=1)
        if self.sample_interval is not None:
            _check_real("sample_interval", self.sample_interval, lo=0.0, lo_open=True)
        if is_auto(self.dt):
            object.__setattr__(self, "dt", AUTO)
            # Resolved to a number when the study starts; the times are checked now.
            if not self.auto_transient:
                _check_real("t_transient", self.t_transient, lo=0.0)
            _check_real("t_measure", self.t_measure, lo=0.0, lo_open=True)
        else:
            _check_real("dt", self.dt, lo=0.0, lo_open=True, extra="or 'auto'")
            self._check_schedule()

    @property
    def sampling_interval(self) -> float | None:
        """The time between two r samples [time units]: ``sample_interval`` when
        given, else ``sample_every * dt`` (None while dt is auto and
        ``sample_every`` is not given: DEFAULT_SAMPLE_INTERVAL then)."""
        if self.sample_interval is not None:
            return self.sample_interval
        if isinstance(self.dt, Auto) or self.sample_every is None:
            return None
        return float(f"{self.sample_every * self.dt:.12g}")

    def _resolve_sampling(self, chosen_dt: bool = False) -> None:
        """A numeric dt: ``sample_every`` from ``sample_interval`` (an integer
        number of steps, ConfigError otherwise); neither given, every
        DEFAULT_SAMPLE_INTERVAL time units (ConfigError naming dt when dt does
        not divide it), so that the number of samples does not depend on dt
        (the default protocol: 0.5 / 0.05 = 10 steps); both given must agree.
        ``chosen_dt``: dt came from auto."""
        dt = self.dt_value
        interval = self.sample_interval
        if interval is None:
            if self.sample_every is not None:
                return
            interval = DEFAULT_SAMPLE_INTERVAL
            ratio = interval / dt
            if abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio) or ratio < 1 - 1e-9:
                raise ConfigError(
                    "dt", dt,
                    f"does not divide the default sampling interval {interval:g} time units "
                    f"(r is sampled every {interval:g} time units unless told otherwise); "
                    f"give --sample-interval as a multiple of dt, or --sample-every STEPS")
        if dt > interval * (1 + 1e-9):
            raise ConfigError("sample_interval", interval,
                              f"must be at least one step (dt={dt!r})")
        steps = steps_for(interval, dt, "sample_interval", min_steps=1)
        if self.sample_every is not None and self.sample_every != steps:
            raise ConfigError("sample_every", self.sample_every,
                              f"contradicts sample_interval={self.sample_interval!r} at "
                              f"dt={dt!r} (sample_interval/dt = {steps}); give one of them")
        object.__setattr__(self, "sample_every", steps)

    @property
    def dt_value(self) -> float:
        """dt as a number [time units]; ConfigError while it is still ``auto``
        (chosen when the study starts)."""
        if isinstance(self.dt, Auto):
            raise ConfigError("dt", self.dt, "is chosen when the study starts "
                                             "(kcbatch.run_study); no step schedule before")
        return self.dt

    def _check_schedule(self, chosen_dt: bool = False) -> None:
        """A numeric dt: stable for the degree coupling, a step count that
        fits, the sampling (:meth:`_resolve_sampling`; ``chosen_dt``: dt came
        from auto) and the step schedule (:attr:`spec`, computed here once)."""
        if self.coupling == Coupling.DEGREE:
            # Before the step counts: an unstable dt often also makes them
            # invalid, and dt is what to change. w_i k_i = k_i/max(k_i, 1) <= 1
            # on every graph; the other normalisations depend on the network
            # and are checked on the study's networks (kcbatch.inputs.step_size).
            check_stable_dt(self.dt_value, self.k_abs_max, 1.0)
        self._check_step_count()
        self._resolve_sampling(chosen_dt)
        _ = self.spec  # raises ConfigError for dt, t_transient, t_measure, sample_every
        _ = self.sweep_transient_steps  # and for dwell

    def resolved(self, **values: Any) -> StudyProtocol:
        """This protocol with the values chosen when the study starts (``seed``,
        ``runs``, a numeric ``dt`` for ``dt="auto"``), each checked here and
        nothing else checked again."""
        unknown = set(values) - {"seed", "runs", "dt"}
        if unknown:
            raise TypeError(f"resolved() takes seed, runs and dt, not {sorted(unknown)}")
        new = copy.copy(self)
        for name, value in values.items():
            object.__setattr__(new, name, value)
        if "seed" in values:
            _check_int("seed", new.seed, lo=0)
        if "runs" in values:
            _check_int("runs", new.runs, lo=1, hi=MAX_RUNS)
        if "dt" in values and values["dt"] != self.dt:
            if not is_auto(self.dt):
                raise ConfigError("dt", values["dt"], f"contradicts the study's dt={self.dt!r}")
            new.__dict__.pop("spec", None)
            new.__dict__.pop("sweep_transient_steps", None)
            _check_real("dt", new.dt, lo=0.0, lo_open=True)
            new._check_schedule(chosen_dt=True)
        return new

    def _check_converged(self) -> None:
        """t_transient ("auto" or a number), kc_tol and t_max (only with "auto"),
        refine (None or > 0) and refine_points (only with refine)."""
        if is_auto(self.t_transient):
            object.__setattr__(self, "t_transient", AUTO)
        elif isinstance(self.t_transient, str):
            raise ConfigError("t_transient", self.t_transient,
                              f"must be a finite number >= 0 or {str(AUTO)!r}")
        for name in ("kc_tol", "t_max"):
            _check_real(name, getattr(self, name), lo=0.0, lo_open=True)
            if not self.auto_transient and getattr(self, name) != DEFAULTS[name]:
                raise ConfigError(name, getattr(self, name),
                                  f"must be left out: it applies only to t_transient="
                                  f"{str(AUTO)!r} (this study has t_transient="
                                  f"{self.t_transient!r})")
        _check_int("refine_points", self.refine_points, lo=1, hi=MAX_REFINE_POINTS)
        if self.refine is not None:
            _check_real("refine", self.refine, lo=0.0, lo_open=True, extra="(a bracket width)")
            check_refine(self.refine, self.k_abs_max, self.refine_points)
        if self.refine is None and self.refine_points != DEFAULTS["refine_points"]:
            raise ConfigError("refine_points", self.refine_points,
                              "must be left out: it applies only with refine TOL")
        _member(self, "converge", Converge)

    def _check_sweep(self) -> None:
        """sweep is one of SWEEPS; adiabatic needs the fixed protocol, whose
        transient and grid it walks; dwell (> 0, at least t_measure) only with
        adiabatic (its step count is checked with the schedule)."""
        _member(self, "sweep", Sweep)
        if self.dwell is not None:
            if self.sweep != Sweep.ADIABATIC:
                raise ConfigError("dwell", self.dwell,
                                  f"must be left out: it applies only to sweep="
                                  f"{str(Sweep.ADIABATIC)!r} (this study has sweep="
                                  f"{str(self.sweep)!r})")
            _check_real("dwell", self.dwell, lo=0.0, lo_open=True,
                        extra="(time units at each K, measurement included)")
            _check_real("t_measure", self.t_measure, lo=0.0, lo_open=True)
            if self.dwell < self.t_measure:
                raise ConfigError("dwell", self.dwell,
                                  f"must be at least t_measure={self.t_measure!r} (the time "
                                  f"at each K includes its measurement)")
        if self.sweep != Sweep.ADIABATIC:
            return
        if self.auto_transient:
            raise ConfigError("sweep", self.sweep,
                              f"cannot be combined with t_transient={str(AUTO)!r}: the "
                              f"adiabatic sweep takes a fixed transient at every K (give "
                              f"--t-transient a number, or use --sweep independent)")
        if self.refine is not None:
            raise ConfigError("sweep", self.sweep,
                              f"cannot be combined with refine={self.refine!r}: refinement "
                              f"integrates couplings from theta0, which an adiabatic branch "
                              f"never does (leave out --refine, or use --sweep independent)")

    @property
    def adiabatic(self) -> bool:
        """Whether each K continues from the previous one (``sweep="adiabatic"``)."""
        return self.sweep == Sweep.ADIABATIC

    @property
    def auto_transient(self) -> bool:
        """Whether the transient is chosen per network (``t_transient="auto"``)."""
        return is_auto(self.t_transient)

    @property
    def converged_protocol(self) -> bool:
        """Whether runs go through kcbatch.analysis.converge (auto transient or refinement)
        rather than the original protocol's single window."""
        return self.auto_transient or self.refine is not None

    @property
    def first_transient(self) -> float:
        """The transient of the first (with a number, the only) window [time units]."""
        if isinstance(self.t_transient, Auto):
            return first_auto_transient(self.t_max)
        return self.t_transient

    def _check_graphs(self) -> None:
        """``graphs`` as an absolute path (the files are listed and read when
        the study is resolved); the model's fields left at their defaults with
        it; ``runs`` without ``graphs`` defaults to DEFAULT_RUNS."""
        if self.graphs is not None:
            g = self.graphs
            if isinstance(g, bytes) or not isinstance(g, (str, os.PathLike)):
                raise ConfigError("graphs", g, "must be the path of a graph file or of a "
                                               "directory of them (a string)")
            if os.fspath(g) == "":
                raise ConfigError("graphs", g, "must be a file or directory path, not empty")
            object.__setattr__(self, "graphs", Path(os.path.abspath(os.fspath(g))))
            for name in MODEL_FIELDS:
                if getattr(self, name) != DEFAULTS[name]:
                    raise ConfigError(name, getattr(self, name),
                                      f"must be left out: it does not apply with graphs "
                                      f"(the networks are the files of {self.graphs})")
        elif self.runs is None:
            object.__setattr__(self, "runs", DEFAULT_RUNS)

    @property
    def model(self):
        """The record of ``graph`` (:class:`kcbatch.protocol.models.ModelRecord`)."""
        return MODELS[self.graph]

    def _check_model(self) -> None:
        """graph, its parameters and the size ``m`` against ``nodes``."""
        _member(self, "graph", GraphModel)
        _check_real("ws_p", self.ws_p, lo=0.0)
        if self.ws_p > 1.0:
            raise ConfigError("ws_p", self.ws_p, "must be a rewiring probability in [0, 1]")
        _check_real("gamma", self.gamma)
        if not self.gamma > 2.0:
            raise ConfigError("gamma", self.gamma,
                              "must be a finite number > 2 (the mean degree must be finite)")
        # A default value is what every config holds; only a changed one is a mistake.
        for name in ("ws_p", "gamma"):
            if name not in self.model.reads and getattr(self, name) != DEFAULTS[name]:
                users = tuple(str(r.name) for r in MODELS.values() if name in r.reads)
                raise ConfigError(name, getattr(self, name), _unused(name, "graph", users,
                                                                     self.graph))
        least, size, why = self.model.min_nodes(self.m)
        if self.nodes < least:
            raise ConfigError("nodes", self.nodes, f"must be greater than {size} for "
                                                   f"graph={self.graph!r} ({why})")

    def _check_omega_dist(self) -> None:
        _member(self, "coupling", Coupling)
        _member(self, "omega_dist", OmegaDist)
        if self.omega_dist == OmegaDist.DEGREE:
            for name in ("omega_mu", "omega_sigma"):
                if getattr(self, name) != DEFAULTS[name]:
                    raise ConfigError(name, getattr(self, name),
                                      "must be left out: it does not apply to "
                                      "omega_dist='degree' (omega_i = k_i)")

    @property
    def k_abs_max(self) -> float:
        """max |K| over the grid: the coupling the stability bound is taken at."""
        return float(max(abs(self.k_min), abs(self.k_max)))

    def _check_step_count(self) -> None:
        """Refuse a dt so small that the steps (or the r samples) explode, naming
        both, before anything is rounded or allocated."""
        longest = self.t_max if isinstance(self.t_transient, Auto) else self.t_transient
        _check_real("t_max" if self.auto_transient else "t_transient", longest, lo=0.0)
        _check_real("t_measure", self.t_measure, lo=0.0, lo_open=True)
        dt = self.dt_value
        if self.dwell is not None:
            longest = max(longest, self.dwell - self.t_measure)
        steps = longest / dt + self.t_measure / dt
        if steps <= MAX_STEPS:
            if self.auto_transient:
                # every window must start on a step: t_max and the first transient
                steps_for(self.t_max, dt, "t_max", min_steps=1)
            return
        every = self.sample_every if self.sample_every is not None else 1
        sample_bytes = math.ceil(min(self.t_measure / dt, 1e300) / every) * self.k_num * 8
        raise _too_many_steps("t_transient + t_measure", longest + self.t_measure,
                              dt, steps, sample_bytes)

    @functools.cached_property
    def sweep_transient_steps(self) -> int:
        """RK4 steps an adiabatic sweep integrates at each K before measuring:
        ``(dwell - t_measure)/dt``, or the schedule's ``n_transient`` without
        dwell. ConfigError unless dwell is a whole number of steps."""
        if self.dwell is None:
            return self.spec.n_transient
        n_dwell = steps_for(self.dwell, self.dt_value, "dwell", min_steps=self.spec.n_measure)
        return n_dwell - self.spec.n_measure

    @functools.cached_property
    def spec(self) -> IntegrationSpec:
        """The step schedule, computed once per protocol. With ``t_transient =
        "auto"``, the first window's: its samples are what one window holds in
        memory (later windows reuse the same size)."""
        return IntegrationSpec.from_times(dt=self.dt_value, t_transient=self.first_transient,
                                          t_measure=self.t_measure,
                                          sample_every=self.sample_every_value)

    @property
    def sample_every_value(self) -> int:
        """sample_every as a number (ConfigError while dt is auto and it is derived)."""
        if self.sample_every is None:
            raise ConfigError("sample_every", None, "is derived from sample_interval when "
                                                    "the study chooses dt")
        return self.sample_every

    @property
    def k_values(self):
        """The coupling grid ``linspace(k_min, k_max, k_num)`` (float64)."""
        return np.linspace(self.k_min, self.k_max, self.k_num)

    @property
    def precision_record(self) -> Precision:
        """The real type of the integrated state: name, numpy dtype, C type, itemsize."""
        return choices.precision(self.precision)


@dataclass(frozen=True, kw_only=True)
class Execution:
    """How a study runs: none of it changes the numbers beyond float tolerance.

    ``device``: a :class:`~kcbatch.protocol.choices.Device` or auto; ``batch``:
    networks integrated together, or auto; ``producers``: graph-generating
    threads, or auto; ``kernel``: a :class:`~kcbatch.protocol.choices.KernelStrategy`
    or auto; ``run_start``/``run_stop``: the run range (a shard), checked
    against the study's ``runs`` by :meth:`check_range`."""

    device: Device | Auto = AUTO
    batch: int | Auto = AUTO
    producers: int | Auto = AUTO
    fast_math: bool = False
    kernel: KernelStrategy | Auto = AUTO
    run_start: int = 0
    run_stop: int | None = None

    def __post_init__(self):
        if is_auto(self.device):
            object.__setattr__(self, "device", AUTO)
        else:
            _member(self, "device", Device, DEVICE_CHOICES)
        for name, most in (("batch", MAX_BATCH), ("producers", MAX_PRODUCERS)):
            if is_auto(getattr(self, name)):
                object.__setattr__(self, name, AUTO)
            else:
                _check_int(name, getattr(self, name), lo=1, hi=most, extra="or 'auto'")
        if not isinstance(self.fast_math, bool):
            raise ConfigError("fast_math", self.fast_math, "must be true or false")
        object.__setattr__(self, "kernel", check_kernel(self.kernel, self.device))
        _check_int("run_start", self.run_start, lo=0)
        if self.run_stop is not None:
            _check_int("run_stop", self.run_stop, lo=1)

    def check_range(self, runs: int) -> None:
        """ConfigError unless ``0 <= run_start < run_stop <= runs``."""
        stop = runs if self.run_stop is None else self.run_stop
        _check_int("run_stop", stop, lo=1)
        if not self.run_start < stop <= runs:
            raise ConfigError("run_range", f"{self.run_start}:{stop}",
                              f"must satisfy 0 <= START < STOP <= runs={runs}")

    def run_ids(self, runs: int) -> range:
        """The runs of this range of a study of ``runs`` runs."""
        return range(self.run_start, runs if self.run_stop is None else self.run_stop)


@dataclass(frozen=True, kw_only=True)
class Output:
    """Where a study's results go: the directory ``out`` (None: in memory, or a
    new directory the CLI names). Whether it is writable is checked when the
    study is resolved (:func:`kcbatch.run.plan.check_out`)."""

    out: Path | None = None

    def __post_init__(self):
        if self.out is not None:
            if isinstance(self.out, bytes) or not isinstance(self.out, (str, os.PathLike)):
                raise ConfigError("out", self.out, "must be a directory path (a string)")
            if os.fspath(self.out) == "":
                raise ConfigError("out", self.out, "must be a directory path, not empty")
            object.__setattr__(self, "out", Path(self.out))


_PART_FIELDS = {part: tuple(f.name for f in dataclasses.fields(part))
                for part in (StudyProtocol, Execution, Output)}
# Every field's default, defined once by its part (the CLI's help and the API show these).
DEFAULTS: dict[str, Any] = {f.name: f.default for part in _PART_FIELDS
                            for f in dataclasses.fields(part)}
_D = DEFAULTS


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """One Kc study as users give it: the flat constructor of the CLI, TOML
    files and the API, whose fields are those of its three parts
    (:attr:`protocol_part`, :attr:`execution`, :attr:`output`), each checked
    by its part. Properties of the protocol (``spec``, ``k_values``,
    ``auto_transient`` ...) read through to it.
    """

    runs: int | None = _D["runs"]
    graphs: Path | None = _D["graphs"]
    nodes: int = _D["nodes"]
    m: int = _D["m"]
    graph: GraphModel = _D["graph"]
    ws_p: float = _D["ws_p"]
    gamma: float = _D["gamma"]
    coupling: Coupling = _D["coupling"]
    omega_dist: OmegaDist = _D["omega_dist"]
    omega_mu: float = _D["omega_mu"]
    omega_sigma: float = _D["omega_sigma"]
    k_min: float = _D["k_min"]
    k_max: float = _D["k_max"]
    k_num: int = _D["k_num"]
    dt: float | Auto = _D["dt"]
    t_transient: float | Auto = _D["t_transient"]
    t_measure: float = _D["t_measure"]
    sample_every: int | None = _D["sample_every"]
    sample_interval: float | None = _D["sample_interval"]
    threshold: float = _D["threshold"]
    kc_tol: float = _D["kc_tol"]
    t_max: float = _D["t_max"]
    refine: float | None = _D["refine"]
    refine_points: int = _D["refine_points"]
    sweep: Sweep = _D["sweep"]
    dwell: float | None = _D["dwell"]
    converge: Converge = _D["converge"]
    seed: int | None = _D["seed"]
    device: Device | Auto = _D["device"]
    precision: str = _D["precision"]
    batch: int | Auto = _D["batch"]
    producers: int | Auto = _D["producers"]
    fast_math: bool = _D["fast_math"]
    kernel: KernelStrategy | Auto = _D["kernel"]
    run_start: int = _D["run_start"]
    run_stop: int | None = _D["run_stop"]
    out: Path | None = _D["out"]

    def __post_init__(self):
        _plain_numbers(self)
        self._set_parts(StudyProtocol(**self._fields_of(StudyProtocol)),
                        Execution(**self._fields_of(Execution)),
                        Output(**self._fields_of(Output)))
        if self.runs is not None:
            self.execution.check_range(self.runs)

    # The parts, set by __post_init__ (not fields: equality and the stored dict
    # are the flat fields'): protocol_part (StudyProtocol), execution
    # (Execution), output (Output).

    def _fields_of(self, part: type[StudyProtocol] | type[Execution] | type[Output],
                   ) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PART_FIELDS[part]}

    @property
    def protocol_part(self) -> StudyProtocol:
        """What is computed (the fields of PROTOCOL_FIELDS), checked."""
        return self.__dict__["_protocol_part"]

    @property
    def execution(self) -> Execution:
        """How it runs (device, batch, producers, kernel, fast_math, run range)."""
        return self.__dict__["_execution"]

    @property
    def output(self) -> Output:
        """Where results go (``out``)."""
        return self.__dict__["_output"]

    @property
    def dt_value(self) -> float:
        """dt as a number (ConfigError while it is ``auto``)."""
        return self.protocol_part.dt_value

    @property
    def seed_value(self) -> int:
        """The seed (ConfigError before the study has drawn one)."""
        if self.seed is None:
            raise ConfigError("seed", None, "is drawn when the study starts (kcbatch.run_study)")
        return self.seed

    @property
    def runs_value(self) -> int:
        """The number of runs (ConfigError before the graph files are counted)."""
        if self.runs is None:
            raise ConfigError("runs", None, "is the number of graph files, counted when the "
                                            "study is resolved (kcbatch.run.plan)")
        return self.runs

    def _set_parts(self, protocol: StudyProtocol, execution: Execution, output: Output) -> None:
        """Hold the parts, and their checked values (enums, paths) as the flat fields."""
        self.__dict__["_protocol_part"] = protocol
        self.__dict__["_execution"] = execution
        self.__dict__["_output"] = output
        parts = ((protocol, StudyProtocol), (execution, Execution), (output, Output))
        for part, kind in parts:
            for name in _PART_FIELDS[kind]:
                object.__setattr__(self, name, getattr(part, name))

    def resolved(self, **values: Any) -> StudyConfig:
        """This config with what is chosen when the study starts: ``seed``,
        ``runs`` (with ``graphs``), a numeric ``dt`` (for ``dt="auto"``) and
        ``out`` (the CLI's new directory). Each new value is checked once, here;
        nothing else is checked again (``replace`` builds and checks a new config)."""
        new = copy.copy(self)
        proto = self.protocol_part
        output = self.output
        protocol_values = {k: v for k, v in values.items() if k != "out"}
        if protocol_values:
            proto = proto.resolved(**protocol_values)
        if "out" in values:
            output = Output(out=values["out"])
        new._set_parts(proto, self.execution, output)
        if "runs" in values:
            new.execution.check_range(new.runs_value)
        return new

    @property
    def adiabatic(self) -> bool:
        return self.protocol_part.adiabatic

    @property
    def auto_transient(self) -> bool:
        return self.protocol_part.auto_transient

    @property
    def converged_protocol(self) -> bool:
        return self.protocol_part.converged_protocol

    @property
    def first_transient(self) -> float:
        return self.protocol_part.first_transient

    @property
    def k_abs_max(self) -> float:
        return self.protocol_part.k_abs_max

    @property
    def sweep_transient_steps(self) -> int:
        return self.protocol_part.sweep_transient_steps

    @property
    def spec(self) -> IntegrationSpec:
        """The protocol's step schedule (computed once; ConfigError for dt auto)."""
        return self.protocol_part.spec

    @property
    def k_values(self):
        """The coupling grid ``linspace(k_min, k_max, k_num)`` (float64)."""
        return self.protocol_part.k_values

    @property
    def run_ids(self) -> range:
        if self.runs is None:
            raise ConfigError("runs", None, "is the number of graph files, counted when the "
                                            "study is resolved (kcbatch.run.plan)")
        return self.execution.run_ids(self.runs)

    def replace(self, **changes) -> StudyConfig:
        """A new config with ``changes`` (checked again). A new dt keeps the
        sampling interval when one was given (``sample_every`` derived again)."""
        if "dt" in changes and self.sample_interval is not None and \
                "sample_every" not in changes:
            changes["sample_every"] = None
        return dataclasses.replace(self, **changes)

    @property
    def sampling_interval(self) -> float | None:
        return self.protocol_part.sampling_interval

    @property
    def precision_record(self) -> Precision:
        """The real type of the integrated state (name, dtype, C type, itemsize)."""
        return self.protocol_part.precision_record

    @property
    def real_dtype(self) -> type:
        """The numpy scalar type of the state (``np.float32``)."""
        return self.precision_record.scalar

    def protocol(self) -> dict[str, Any]:
        """The fields that define the numbers (see PROTOCOL_FIELDS), as stored
        (``graphs`` as a string, the choices as plain strings)."""
        return {k: self._stored_value(k) for k in PROTOCOL_FIELDS}

    def _stored_value(self, name: str) -> Any:
        return _plain(getattr(self, name))

    def check_compatible(self, stored: Mapping[str, Any], *, what: str,
                         grow: bool = False) -> None:
        """Refuse (ConfigError naming the first differing field) unless this
        config computes the same numbers as ``stored``, the config dict of a
        store (resume) or of another shard (merge). A key missing from ``stored``
        (a store older than the field) reads as ADDED_PROTOCOL_DEFAULTS; ``dt =
        "auto"`` is not compared (``run_study`` compares the dt it chooses), nor
        ``runs`` while it is unresolved (a ``graphs`` study before its files are
        counted). ``grow`` (a resume): ``runs`` may be more than the stored
        study's (runs ``old .. new - 1`` are added, each drawn from its own
        seed, the stored ones untouched), never fewer."""
        for name in PROTOCOL_FIELDS:
            if name == "dt" and is_auto(self.dt):
                continue  # chosen when the study starts, then checked as a number
            if name == "runs" and self.runs is None:
                continue
            if name == "runs" and grow and isinstance(stored.get("runs"), int) \
                    and not isinstance(stored.get("runs"), bool):
                if self.runs < stored["runs"]:
                    raise ConfigError("runs", self.runs,
                                      f"must be at least the {stored['runs']} runs of {what}: "
                                      f"a resumed study can grow, never shrink")
                continue
            if name == "sample_every" and self.sample_every is None:
                continue  # derived with dt, then compared as a number
            had = stored.get(name, ADDED_PROTOCOL_DEFAULTS.get(name))
            mine = self._stored_value(name)
            if name == "converge":
                had, mine = _converge_of(stored), _converge_of(self.protocol())
            if had != mine:
                raise ConfigError(name, getattr(self, name),
                                  f"contradicts {what}, which has {name}={had!r}")

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON takes it: paths as strings, the choices as plain strings."""
        return {f.name: _plain(getattr(self, f.name))
                for f in dataclasses.fields(self) if f.init}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "config") -> StudyConfig:
        """Build from a mapping (e.g. parsed TOML); unknown keys are errors, and
        so is a field given twice (``nodes`` and ``n``, ``k_num`` and ``k-num``)."""
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        clean = canonical_keys(data, source)
        for key in clean:
            if key not in names:
                raise ConfigError(f"{source} key", key,
                                  f"unknown; allowed keys: {', '.join(sorted(names))}")
        return cls(**clean)


def _converge_of(config: Mapping[str, Any]) -> str:
    """The converged protocol a stored config computes: its ``converge`` with
    ``t_transient="auto"``; with a fixed transient (one window, refined from
    theta0) both choices are the same protocol, read as "exhaustive", the one
    stores had before the choice existed."""
    if not is_auto(config.get("t_transient")):
        return str(Converge.EXHAUSTIVE)
    return str(config.get("converge", ADDED_PROTOCOL_DEFAULTS["converge"]))


# Other spellings of StudyConfig's fields in a mapping (TOML, the API): these
# aliases, and '-' for '_' in any name.
KEY_ALIASES = {"n": "nodes", "mu": "omega_mu", "sigma": "omega_sigma"}


def canonical_keys(data: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """``data`` with each key spelled as its field (KEY_ALIASES, ``-`` as ``_``);
    a key that names no field is kept as given (the caller refuses it).
    ConfigError naming both keys when two spellings set one field: neither
    would silently win."""
    clean: dict[str, Any] = {}
    given: dict[str, Any] = {}
    fields = set(DEFAULTS)
    for key, value in data.items():
        name = KEY_ALIASES.get(key, key).replace("-", "_") if isinstance(key, str) else key
        if name not in fields:
            name = key
        if name in clean:
            raise ConfigError(f"{source} key", key,
                              f"sets {name}, which the key {given[name]!r} sets already; "
                              f"give it once")
        clean[name] = value
        given[name] = key
    return clean


def _plain(value: Any) -> Any:
    """A field's value as stored: a path as a string, a choice as its string."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


class NotARegularFile(ValueError):
    """A path that :func:`read_regular_file` refuses to read: the message says
    what it is instead (a FIFO, a device, a directory) or how large it is."""


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((what for test, what in _FILE_KINDS if test(mode)), "not a file")
    return f"is {kind}, not a regular file"


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of ``path``, which must be a regular file (symbolic links
    followed) of at most ``max_bytes``: checked with ``stat`` before it is
    opened, so that a FIFO (which would block) or a device such as /dev/zero
    (which never ends) is refused, never read. NotARegularFile otherwise;
    OSError as the system raises it (missing, no permission)."""
    st = os.stat(path)
    problem = _not_regular(st.st_mode)
    if problem is None and st.st_size > max_bytes:
        problem = (f"is {format_bytes(st.st_size)}, more than the {format_bytes(max_bytes)} "
                   f"read at most (README, Limits)")
    if problem is not None:
        raise NotARegularFile(problem)
    # O_NONBLOCK: a file swapped for a FIFO since the stat does not block the open
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        problem = _not_regular(os.fstat(fd).st_mode)
        if problem is not None:
            raise NotARegularFile(problem)
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise NotARegularFile(f"holds more than the {format_bytes(max_bytes)} read at most "
                              f"(README, Limits)")
    return data


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a study TOML file (a regular file of at most MAX_CONFIG_BYTES):
    top-level keys, or a ``[study]`` table."""
    p = Path(path)
    try:
        text = read_regular_file(p, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise ConfigError("config", str(p),
                          f"must be a readable TOML file ({exc.strerror})") from None
    except NotARegularFile as exc:
        raise ConfigError("config", str(p), f"must be a TOML file; it {exc}") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config", str(p), f"must be valid TOML ({exc})") from None
    if set(data) == {"study"} and isinstance(data["study"], dict):
        data = data["study"]
    # each field once, in its own spelling: flags then override it by that name
    return canonical_keys(data)


_INT_FIELDS: tuple[str, ...] = (
    "runs", "nodes", "m", "k_num", "sample_every", "seed", "batch", "producers", "run_start",
    "run_stop")
_REAL_FIELDS = ("ws_p", "gamma", "omega_mu", "omega_sigma", "k_min", "k_max", "dt",
                "t_transient", "t_measure", "sample_interval", "threshold", "kc_tol", "t_max",
                "refine", "dwell")
_INT_FIELDS = _INT_FIELDS + ("refine_points",)


def check_kernel(kernel: Any, device: Any) -> KernelStrategy | Auto:
    """``kernel`` as its member; ConfigError unless it is a strategy ``device``
    can run: the kernels run on gpu and gpu-sim; ``auto`` and ``global`` are
    fine anywhere (the CPU engine has one algorithm), ``shared`` is not on the CPU."""
    if is_auto(kernel):
        return AUTO
    if not isinstance(kernel, str) or kernel not in KERNEL_CHOICES:
        raise ConfigError("kernel", kernel, f"must be one of {', '.join(KERNEL_CHOICES)}")
    strategy = KernelStrategy(kernel)
    if strategy == KernelStrategy.SHARED and device == Device.CPU:
        raise ConfigError("kernel", kernel, "must be auto or global with device cpu (the "
                          "shared-memory strategy is a GPU kernel: use device gpu or gpu-sim)")
    return strategy


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(name, value, f"must be one of {', '.join(allowed)}")


def _member(part: Any, name: str, kind: type[enum.StrEnum],
            allowed: tuple[str, ...] | None = None) -> None:
    """Set ``part.name`` to its member of ``kind``; ConfigError naming the value
    and ``allowed`` (default: the members) unless it is one."""
    value = getattr(part, name)
    if not isinstance(value, str) or value not in kind._value2member_map_:
        shown = allowed if allowed is not None else tuple(str(m) for m in kind)
        raise ConfigError(name, value, f"must be one of {', '.join(shown)}")
    object.__setattr__(part, name, kind(value))


def _unused(name: str, by: str, users: tuple[str, ...], value: str) -> str:
    """Why ``name`` is refused: it applies only to ``by`` in ``users``."""
    return (f"must be left out: it applies only to {by}={' or '.join(map(repr, users))} "
            f"(this study has {by}={value!r})")


def _plain_numbers(cfg: StudyConfig) -> None:
    """Accept numpy scalars from API users: store them as Python int/float (the
    config goes to JSON). bools and non-integral floats stay as given, to be
    rejected by the checks."""
    for name in _INT_FIELDS:
        v = getattr(cfg, name)
        if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
            object.__setattr__(cfg, name, int(v))
    for name in _REAL_FIELDS:
        v = getattr(cfg, name)
        if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)):
            object.__setattr__(cfg, name, float(v) if not isinstance(v, int) else v)


def _check_int(name: str, value: Any, *, lo: int | None = None, hi: int | None = None,
               extra: str = "") -> None:
    """ConfigError unless ``value`` is an int in ``[lo, hi]`` (None: unbounded);
    ``hi`` is one of the documented count limits (README, "Limits")."""
    allowed = ("an integer" + (f" >= {lo}" if lo is not None else "")
               + (f" and <= {hi}" if hi is not None else "")
               + (f" {extra}" if extra else ""))
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, value, f"must be {allowed}")
    if lo is not None and value < lo:
        raise ConfigError(name, value, f"must be {allowed}")
    if hi is not None and value > hi:
        raise ConfigError(name, value, f"must be {allowed} (kcbatch's limit for {name}, far "
                                       f"above any real study; README, Limits)")


def _check_real(name: str, value: Any, *, lo: float | None = None, lo_open: bool = False,
                extra: str = "") -> None:
    if lo is None:
        allowed = "a finite number"
    else:
        allowed = f"a finite number {'>' if lo_open else '>='} {lo:g}"
    if extra:
        allowed += f" {extra}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(name, value, f"must be {allowed}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ConfigError(name, value, f"must be {allowed}")


def format_bytes(n: float) -> str:
    """``n`` bytes as '512 B', '3.2 GB', '4e+289 TB' (decimal units), for messages."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"
