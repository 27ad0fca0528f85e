"""How long a study will take on this machine, and durations as words.

**Work model.** A run's cost is counted in *system-steps* -- one (network, K)
system advanced by one RK4 step -- expected per protocol
(:func:`system_steps_per_run`):

* the independent protocol: ``k_num * (n_transient + n_measure)``;
* the adiabatic sweep: one system walking the grid twice,
  ``2 * k_num * (sweep transient + n_measure)``;
* the converged protocol (``t_transient="auto"``, ``refine``): each network
  integrates its ``k_num`` couplings continuously through the windows of
  :func:`kcbatch.analysis.windows.window_starts` until it stops; the model
  takes it to stop at the first window starting at or after one of
  :data:`CONVERGED_STOP_TRANSIENTS` (measured on the default BA study; ``t_max``
  when that is shorter; the geometric mean of their steps, so the estimate is
  off by the same factor, ~1.4x, whichever the runs stop at), then adds the
  refinement, ``rounds * refine_points`` fresh integrations to that window's
  end, ``rounds`` the multisections that bring the grid spacing under
  ``refine``. Runs going on to ``t_max`` are not modelled. That is
  ``converge="exhaustive"``; the adaptive protocol (the default) integrates
  every coupling to the end of the second window, then
  :data:`ADAPTIVE_COLUMNS` of them (or all, if fewer) to the same stop, and
  refines by continuation: the same rounds, each of
  :func:`~kcbatch.analysis.adaptive.points_per_round` couplings, for
  ``RELAX_WINDOWS + 1`` windows in the first round and 2 in each later one
  (:mod:`kcbatch.analysis.adaptive`).

A system-step touches every directed edge (a neighbour's sin/cos gathered) and
every node (its own trig): ``2 E + N`` *edge updates*, ``E`` the model's
expected edges (:func:`kcbatch.protocol.models.expected_edges`) or, for the
users' own networks, the mean over the files (:func:`work_per_run`).

**Calibration.** The engine's rate is measured on a batch shaped like the
study's (its model, N, m, K grid, precision and batch size, or its own files,
shrunk until one RK4 step is about :data:`PROBE_STEP_WORK` edge updates):
after a warm-up step, two integrations of ``n_a = 2`` and ``n_b`` steps, ``n_b``
lengthened until the difference lasts about :data:`CALIBRATION_SECONDS` (at
most 5% of the study's bound) and spans at least
:data:`MIN_CALIBRATION_STEPS` steps; the rate is the
difference's (``(n_b - n_a)`` steps over ``t_b - t_a``), so a call's fixed cost
(allocation, packing, thread start) is not counted as work but kept apart as
``overhead`` (seconds per batch). The shape matters: a CPU engine spreads a
batch's rows over its threads, and one small network does not keep them busy.
Generating the probe's networks is timed too (after a one-network warm-up
that pays a generator's first-use compilation): the study waits for its first
batch, and a study whose producers are slower than its engine waits for all.

A study's time (:class:`StudyEstimate`): the first batch's generation, then
per run the larger of the engine's seconds and the producers' seconds.
Studies under :data:`QUICK_SECONDS` even at :data:`SLOW_ENGINE_RATE` are not
measured, and print nothing. ``bench/test_bench_time_estimate.py``
compares the estimate with the measured time. The calibration is short: on a
machine whose other jobs load it beyond its cores, it samples a second or two
of a share that changes over tens of seconds. On the shared 2-core box (load
1.9-3.5) the measured time was 0.50-1.75x the estimate; the process's CPU
seconds per second while calibrating (``Calibration.cores``) against the
study's explain only part of it (1.38 against 1.02 in the 1.75x case, 1.06
against 1.05 in the 0.50x one: the work per CPU second changed too), so
neither they nor the load average are used to correct the rate. The study
measures its own pace instead: after its first batch,
:meth:`StudyEstimate.after_first_batch` prints the time left at that pace when
it is more than :data:`UPDATE_FACTOR` off the estimate.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from kcbatch.analysis.adaptive import RELAX_WINDOWS, points_per_round, rounds_needed
from kcbatch.analysis.windows import window_starts
from kcbatch.engines import Engine
from kcbatch.inputs.graph_source import graph_set
from kcbatch.inputs.pipeline import make_batch
from kcbatch.inputs.step_size import AUTO_DT_CAP
from kcbatch.protocol.choices import AUTO, Auto, Converge
from kcbatch.protocol.config import ConfigError, IntegrationSpec, StudyConfig
from kcbatch.protocol.models import expected_edges, min_nodes

__all__ = ["PROBE_STEP_WORK", "SLOW_ENGINE_RATE", "CPU_NOTICE_SECONDS", "SMALL_CPU_STUDY",
           "ADAPTIVE_COLUMNS", "AUTO_MAX_SECONDS", "CALIBRATION_SECONDS",
           "CONVERGED_STOP_TRANSIENTS",
           "FEASIBLE_SECONDS", "LOSS_SECONDS", "QUICK_SECONDS", "UPDATE_FACTOR", "Calibration",
           "StudyEstimate", "auto_dt_cost", "calibrate", "compile_notice", "estimate_study",
           "format_duration",
           "measure_rate", "refine_rounds", "steps_per_run", "system_steps_per_run",
           "work_per_run"]

# Edge updates of one RK4 step of the measured batch: ~0.1-2 s on a CPU.
PROBE_STEP_WORK = 1e8
# The timed steps of the calibration last about this long [s] (at most 5% of
# the study's bound at SLOW_ENGINE_RATE, at least a third of this) ...
CALIBRATION_SECONDS = 1.0
# ... or this many steps, whichever comes first; and the difference spans at
# least MIN_CALIBRATION_STEPS steps (one slow call on a busy machine must not
# end the calibration after a handful).
MAX_CALIBRATION_STEPS = 100_000
MIN_CALIBRATION_STEPS = 16
# Edge updates per second below any engine we know (a 2-core laptop's CPU engine
# does ~5e8): a bound on a study's time without measuring.
SLOW_ENGINE_RATE = 1e8
# A study under this many seconds at SLOW_ENGINE_RATE is not measured [s].
QUICK_SECONDS = 10.0
# After the study's first batch, the time left is printed again when the batch's
# seconds per run differ from the estimate's by more than this factor either way.
UPDATE_FACTOR = 1.25
# ``--device auto`` on the CPU suggests a CPU-sized study beyond this [s].
CPU_NOTICE_SECONDS = 600.0
# Beyond this a study gets the feasibility line (steps, time, what to change) [s].
FEASIBLE_SECONDS = 3600.0
# ``--batch auto`` sizes batches so that an interrupted study loses at most
# about this much work (kcbatch.run.batching) [s].
LOSS_SECONDS = 60.0
# dt auto refuses a study estimated to take longer than this on its engine [s].
AUTO_MAX_SECONDS = 24 * 3600.0
# Below this many seconds at SLOW_ENGINE_RATE, dt auto's cost is not measured.
AUTO_QUICK_SECONDS = 60.0
# The converged protocol's work model: a run stops at the first window starting
# at or after one of these transients [time units], each equally likely.
# Measured on the default BA study (N=10^4, m=3, sigma=0.5) with --t-transient
# auto: the runs' final transients were 160 (seed 1, 4 of 4 runs) and 80 (seed
# 2026, 2 of 2): between neighbouring windows, whose work differs by 2x.
CONVERGED_STOP_TRANSIENTS = (80.0, 160.0)
# Couplings per network the adaptive protocol still integrates after its second
# window, on average to the stop: 9.8 on the default BA study (8 networks, the
# windows' 2.82e9 system-steps: bench/measurements/
# cpu-2core_converge_adaptive_2026-12-07_relax4-every-round.json).
ADAPTIVE_COLUMNS = 10
# The README's CPU-sized study.
SMALL_CPU_STUDY = dict(runs=8, batch=4, nodes=1000)


# Seconds the first use of each model's generator spends compiling it (numba,
# cached on disk afterwards): measured with an empty cache on the 2-core box
# (load ~4), N=200.
GENERATOR_COMPILE_SECONDS = {"ba": 2.0, "er": 5.6, "ws": 3.8, "powerlaw": 4.2}


def _uncached(module_name: str) -> bool:
    """Whether a numba function of ``module_name``'s namespace (its own and those
    it imports) has no on-disk cache index yet (its first use compiles it);
    False when numba's cache cannot be read."""
    import importlib
    import os
    module = importlib.import_module(module_name)
    for obj in vars(module).values():
        index = getattr(getattr(getattr(obj, "_cache", None), "_cache_file", None),
                        "_index_path", None)
        if isinstance(index, str) and not os.path.exists(index):
            return True
    return False


def compile_notice(cfg: StudyConfig) -> str | None:
    """'compiling the X generator (first use, ~N s)' when the study's network
    model's generator (or a CSR or random-number helper it imports) has not
    been compiled on this machine yet; None otherwise and for graph files.
    Only the model module's names are looked at: the helpers another model
    alone uses stay uncompiled after this model's first study."""
    if cfg.graphs is not None:
        return None
    if not _uncached(f"kcbatch.networks.{cfg.graph}"):
        return None
    seconds = GENERATOR_COMPILE_SECONDS.get(str(cfg.graph), 5.0)
    return f"compiling the {cfg.graph} generator (first use, ~{seconds:.0f} s)"


def mean_network(cfg: StudyConfig, nodes: int | None = None) -> tuple[float, float]:
    """(nodes, undirected edges) of an average network of ``cfg``: the model's
    (with ``nodes`` nodes instead of cfg.nodes) or the mean over its files."""
    if cfg.graphs is not None:
        files = graph_set(cfg.graphs).files
        return (sum(f.report.nodes for f in files) / len(files),
                sum(f.report.edges for f in files) / len(files))
    n = cfg.nodes if nodes is None else nodes
    return float(n), float(expected_edges(cfg.graph, n, cfg.m, cfg.gamma))


def refine_rounds(cfg: StudyConfig) -> int:
    """Multisection rounds of the refinement: each divides the bracket by
    ``refine_points + 1``, from the grid spacing to at most ``refine`` (0 without)."""
    if cfg.refine is None or cfg.k_num < 2:
        return 0
    return rounds_needed(_grid_spacing(cfg), cfg.refine, cfg.refine_points)


def _grid_spacing(cfg: StudyConfig) -> float:
    return (cfg.k_max - cfg.k_min) / (cfg.k_num - 1)


def _converged_stop_steps(cfg: StudyConfig) -> float:
    """Expected steps from theta0 to the start of the window a run stops in: the
    geometric mean over CONVERGED_STOP_TRANSIENTS of the steps to the end of
    each's window, less the window (the estimate is then off by the same factor
    whichever of them the runs stop at)."""
    spec = cfg.spec
    if not cfg.auto_transient:
        return float(spec.n_transient)
    starts = window_starts(spec.dt, cfg.t_max, spec.n_measure)
    ends = [next((s for s in starts if s >= t / spec.dt - 1e-9), starts[-1]) + spec.n_measure
            for t in CONVERGED_STOP_TRANSIENTS]
    return math.prod(ends) ** (1.0 / len(ends)) - spec.n_measure


def steps_per_run(cfg: StudyConfig) -> float:
    """Expected RK4 steps per K of one run (transient and measurement; for the
    converged protocol up to the window it is expected to stop in)."""
    spec = cfg.spec
    if cfg.adiabatic:
        return float(cfg.sweep_transient_steps + spec.n_measure)
    if cfg.converged_protocol:
        return float(_converged_stop_steps(cfg) + spec.n_measure)
    return float(spec.n_steps)


def system_steps_per_run(cfg: StudyConfig) -> float:
    """Expected system-steps (one network at one K, one RK4 step) of one run of
    ``cfg`` under its protocol (module docstring, Work model)."""
    steps = steps_per_run(cfg)
    if cfg.adiabatic:
        return 2.0 * cfg.k_num * steps
    if cfg.converged_protocol:
        if cfg.auto_transient and cfg.converge == Converge.ADAPTIVE:
            return _adaptive_system_steps(cfg, steps)
        return cfg.k_num * steps + refine_rounds(cfg) * cfg.refine_points * steps
    return cfg.k_num * steps


def _adaptive_system_steps(cfg: StudyConfig, steps: float) -> float:
    """The adaptive protocol's system-steps of one run stopping ``steps`` steps
    from theta0 (module docstring, Work model)."""
    spec = cfg.spec
    starts = window_starts(spec.dt, cfg.t_max, spec.n_measure)
    second_end = float(min(starts[1] if len(starts) > 1 else starts[0], steps - spec.n_measure)
                       + spec.n_measure)
    windows = (cfg.k_num * second_end
               + min(cfg.k_num, ADAPTIVE_COLUMNS) * max(0.0, steps - second_end))
    rounds = refine_rounds(cfg)
    if not rounds:
        return windows
    points = points_per_round(_grid_spacing(cfg), float(cfg.refine or 0.0), cfg.refine_points)
    return windows + points * spec.n_measure * ((RELAX_WINDOWS + 1) + 2 * (rounds - 1))


def work_per_run(cfg: StudyConfig, nodes: int | None = None) -> float:
    """Expected edge updates of one run of ``cfg`` (with ``nodes`` nodes instead of
    cfg.nodes): its system-steps times ``2 E + N``."""
    n, edges = mean_network(cfg, nodes)
    return system_steps_per_run(cfg) * (2 * edges + n)


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` measured.

    rate: edge updates per second of the engine; overhead: seconds of one
    integration call beyond its steps; generation: seconds to generate and
    pack one network of the study; steps: the RK4 steps of the longest timed
    call; size: networks in the probe batch; wall: seconds the calibration took
    (about, after the generator's warm-up); cores: the process's CPU seconds per
    second while the rate was measured (the timed difference), None where not
    measured."""

    rate: float
    overhead: float
    generation: float
    steps: int
    size: int
    wall: float
    cores: float | None = None


def calibrate(cfg: StudyConfig, engine: Engine, batch: int,
              budget: float = CALIBRATION_SECONDS) -> Calibration:
    """Measure ``engine`` on a batch like the study's: up to ``batch`` networks
    of ``cfg`` (fewer, and if need be smaller ones, so that a step is about
    PROBE_STEP_WORK), timed as the module docstring says; ``budget``: the
    seconds the timed steps should last."""
    common = dict(runs=max(1, batch), run_start=0, run_stop=None, out=None,
                  seed=cfg.seed if cfg.seed is not None else 0)
    if cfg.graphs is not None:
        probe = cfg.replace(**common)  # the study's own files, in its order
    else:
        n, edges = mean_network(cfg)
        per_node_step = cfg.k_num * (2 * edges / n + 1)
        least = min_nodes(cfg.graph, cfg.m)[0] + 1
        nodes = int(min(cfg.nodes, max(least, PROBE_STEP_WORK // per_node_step)))
        probe = cfg.replace(nodes=nodes, **common)
    n_p, e_p = mean_network(probe)
    per_net_step = probe.k_num * (2 * e_p + n_p)
    size = int(min(max(1, batch), max(1, round(PROBE_STEP_WORK / per_net_step))))
    dt = cfg.dt
    if isinstance(dt, Auto):  # probe.spec has refused it (ConfigError) already
        raise RuntimeError("calibrate needs the study's dt as a number (kcbatch.run.plan)")
    make_batch([0], probe)  # a generator's first use compiles it
    t0 = time.perf_counter()
    item = make_batch(list(range(size)), probe)
    generation = (time.perf_counter() - t0) / size * (mean_network(cfg)[1] / max(e_p, 1.0))

    def timed(steps: int) -> tuple[float, float]:
        """(wall, process CPU) seconds of one integration of ``steps`` steps."""
        spec = IntegrationSpec(dt=dt, n_transient=0, n_measure=steps, sample_every=steps)
        c0, t0 = time.process_time(), time.perf_counter()
        engine.integrate(item.batch, spec)  # returns host data: synchronised
        return time.perf_counter() - t0, time.process_time() - c0

    t_start = time.perf_counter()
    timed(1)  # JIT/cache load, pages
    n_a = 2
    t_a, c_a = timed(n_a)
    n_b = 2 * n_a
    t_b, c_b = timed(n_b)
    # lengthen until the difference (the steps' own time) lasts ~CALIBRATION_SECONDS
    while (t_b - t_a < 0.5 * budget or n_b - n_a < MIN_CALIBRATION_STEPS) \
            and n_b < MAX_CALIBRATION_STEPS:
        per_step = max(t_b - t_a, 1e-4) / (n_b - n_a)
        # at least doubled, at most 8x (a call timed faster than the shorter one
        # says nothing about the step's cost)
        n_b = int(min(MAX_CALIBRATION_STEPS, 8 * n_b,
                      max(2 * n_b, n_a + math.ceil(budget / per_step))))
        t_b, c_b = timed(n_b)
    work = per_net_step * size
    if t_b > t_a:
        rate = work * (n_b - n_a) / (t_b - t_a)
        cores = max(0.0, c_b - c_a) / (t_b - t_a)
    else:  # noise beyond the difference: the longer call's average
        rate = work * n_b / max(t_b, 1e-9)
        cores = c_b / max(t_b, 1e-9)
    overhead = max(0.0, t_a - work * n_a / rate)
    wall = time.perf_counter() - t_start + generation * size
    return Calibration(rate=rate, overhead=overhead, generation=generation, steps=n_b, size=size,
                       wall=wall, cores=cores)


def measure_rate(cfg: StudyConfig, engine: Engine, batch: int) -> float:
    """Edge updates per second of ``engine`` on a batch like the study's
    (:func:`calibrate`'s rate)."""
    return calibrate(cfg, engine, batch).rate


@dataclass(frozen=True)
class StudyEstimate:
    """A study's expected time on its engine (module docstring).

    engine_per_run: engine seconds of one run (in batches of ``batch``);
    generation_per_run: seconds one producer takes for one run's network;
    producers: producer threads; batch: networks per batch; calibration: the
    measurement, None for a study too small to measure (its times are then
    bounds at SLOW_ENGINE_RATE, generation left out)."""

    config: StudyConfig
    engine_per_run: float
    generation_per_run: float
    producers: int
    batch: int
    calibration: Calibration | None

    @property
    def measured(self) -> bool:
        return self.calibration is not None

    @property
    def seconds_per_run(self) -> float:
        """Seconds one run adds to the study (engine or producers, the slower)."""
        return max(self.engine_per_run, self.generation_per_run / max(1, self.producers))

    def seconds(self, runs: int) -> float:
        """The study's seconds for ``runs`` runs (the first batch's generation first)."""
        if runs <= 0:
            return 0.0
        first = min(self.batch, runs) * self.generation_per_run
        return first + runs * self.seconds_per_run

    def line(self, runs: int, device: str) -> str | None:
        """The estimate as printed before a study starts (whatever the device);
        None for a study too small to measure."""
        seconds = self.seconds(runs)
        if self.calibration is None:
            return None
        cal = self.calibration
        return (f"estimated time: {format_duration(seconds)} for {runs} runs on {device} "
                f"(~{per_run(self.seconds_per_run)} per run, batch {self.batch}; "
                f"{steps_per_run(self.config):.4g} RK4 steps per K per run; measured "
                f"{cal.rate:.2g} edge updates/s over {cal.steps} steps)")

    def time_left(self, runs: int, engine_per_run: float) -> float:
        """Seconds of ``runs`` more runs when the engine takes ``engine_per_run``
        seconds per run (the producers work ahead: no first batch to wait for)."""
        return runs * max(engine_per_run, self.generation_per_run / max(1, self.producers))

    def after_first_batch(self, runs: int, engine_per_run: float, device: str) -> str | None:
        """The line printed once the study's first batch is done, when the engine
        took ``engine_per_run`` seconds per run on it and that makes a run more than
        UPDATE_FACTOR times longer or shorter than estimated: the time left for
        ``runs`` runs at that pace. None otherwise, without runs left and for a
        study too small to measure."""
        if self.calibration is None or runs <= 0:
            return None
        ratio = self.time_left(1, engine_per_run) / self.seconds_per_run
        if 1 / UPDATE_FACTOR <= ratio <= UPDATE_FACTOR:
            return None
        return (f"estimated time left: {format_duration(self.time_left(runs, engine_per_run))} "
                f"for {runs} runs on {device} (the first batch took "
                f"~{per_run(self.time_left(1, engine_per_run))} per run, {ratio:.2g}x the "
                f"estimate)")

    def cpu_suggestion(self, runs: int) -> str | None:
        """For a study that ``--device auto`` put on the CPU and that takes more than
        CPU_NOTICE_SECONDS: a CPU-sized command and its time; None otherwise."""
        cal = self.calibration
        if cal is None or self.seconds(runs) <= CPU_NOTICE_SECONDS:
            return None
        small = SMALL_CPU_STUDY
        # The suggested command keeps every other parameter at its default.
        small_cfg = StudyConfig(runs=small["runs"], nodes=small["nodes"], seed=0)
        small_seconds = work_per_run(small_cfg) * small["runs"] / cal.rate
        return (f"estimated time on this CPU: {format_duration(self.seconds(runs))} for "
                f"{runs} runs; a CPU-sized study takes ~{format_duration(small_seconds)}: "
                f"kcbatch run --runs {small['runs']} --batch {small['batch']} --nodes "
                f"{small['nodes']} --device cpu --out results-small")

    def feasibility(self, runs: int, device: str) -> str | None:
        """For a study estimated beyond FEASIBLE_SECONDS: one line with its steps
        per run, its time and what to change; None otherwise."""
        seconds = self.seconds(runs)
        if not self.measured or seconds <= FEASIBLE_SECONDS:
            return None
        cfg = self.config
        spec = cfg.spec
        default_steps = round(10.0 / AUTO_DT_CAP)
        fit = max(1, int(FEASIBLE_SECONDS // max(self.seconds_per_run, 1e-9)))
        changes = [f"--runs {fit} fits in {format_duration(FEASIBLE_SECONDS)}"
                   if fit < runs else None,
                   "a smaller --nodes"]
        if spec.dt < AUTO_DT_CAP:
            changes.append(f"a coarser step (dt={spec.dt:.3g} is "
                           f"{AUTO_DT_CAP / spec.dt:.3g}x smaller than the default"
                           + ("; raw coupling's hubs need it: --coupling degree or a smaller "
                              "--k-max" if cfg.coupling == "raw" else "") + ")")
        if cfg.auto_transient:
            changes.append(f"a shorter --t-max (now {cfg.t_max:g})")
        what = "; ".join(c for c in changes if c)
        return (f"feasibility: {steps_per_run(cfg):.4g} RK4 steps per K per run "
                f"({steps_per_run(cfg) / default_steps:.3g}x the default protocol's "
                f"{default_steps}), ~{per_run(self.seconds_per_run)} per run: "
                f"estimated {format_duration(seconds)} for {runs} runs on {device}; to "
                f"shorten it: {what}")


def estimate_study(cfg: StudyConfig, engine: Engine, runs: int, batch: int,
                   producers: int = 1) -> StudyEstimate:
    """The expected time of ``runs`` runs of ``cfg`` on ``engine`` in batches of
    ``batch`` networks with ``producers`` producer threads: calibrated
    (:func:`calibrate`) unless the study is under QUICK_SECONDS even at
    SLOW_ENGINE_RATE."""
    work = work_per_run(cfg)
    batch = max(1, min(batch, runs))
    if work * runs <= SLOW_ENGINE_RATE * QUICK_SECONDS:
        return StudyEstimate(config=cfg, engine_per_run=work / SLOW_ENGINE_RATE,
                             generation_per_run=0.0, producers=producers, batch=batch,
                             calibration=None)
    bound = work * runs / SLOW_ENGINE_RATE
    cal = calibrate(cfg, engine, batch,
                    budget=min(CALIBRATION_SECONDS,
                               max(CALIBRATION_SECONDS / 3, 0.05 * bound)))
    return StudyEstimate(config=cfg, engine_per_run=work / cal.rate + cal.overhead / batch,
                         generation_per_run=cal.generation, producers=producers,
                         batch=batch, calibration=cal)


def per_run(seconds: float) -> str:
    """A run's seconds: two significant digits below 90 s, else :func:`format_duration`."""
    return f"{seconds:.2g} s" if seconds < 90 else format_duration(seconds)


def format_duration(seconds: float) -> str:
    """``seconds`` as a short phrase: '45 s', '4 min 23 s', '2 h 35 min', '3.1 days'."""
    if not math.isfinite(seconds):
        return "unknown"
    s = round(seconds)
    if s < 90:
        return f"{s} s"
    if s < 90 * 60:
        return f"{s // 60} min {s % 60} s"
    m = round(seconds / 60)
    if m < 48 * 60:
        return f"{m // 60} h {m % 60} min"
    return f"{seconds / 86400:.1f} days"


def auto_dt_cost(cfg: StudyConfig, engine: Engine, runs: int, batch: int,
                 rate: float | None = None) -> str:
    """The line for a ``dt = "auto"`` that chose a step below AUTO_DT_CAP: the
    steps per K per run and the estimated time of ``runs`` runs on ``engine``
    (measured as :func:`measure_rate` does, unless the work is under
    AUTO_QUICK_SECONDS even at SLOW_ENGINE_RATE; ``rate``: the edge updates/s
    already measured). ConfigError naming dt, the
    steps, the estimate and what to do when it exceeds AUTO_MAX_SECONDS."""
    spec = cfg.spec
    work = work_per_run(cfg) * runs
    default_steps = round(10.0 / AUTO_DT_CAP)
    steps = (f"dt={spec.dt:.6g} gives {spec.n_transient} + {spec.n_measure} RK4 steps per K "
             f"per run ({spec.n_steps / default_steps:.3g}x the {default_steps} of the default "
             f"protocol)")
    if rate is None and work <= SLOW_ENGINE_RATE * AUTO_QUICK_SECONDS:
        return f"dt auto: {steps}; estimated under {AUTO_QUICK_SECONDS:g} s for {runs} runs"
    if rate is None:
        rate = measure_rate(cfg, engine, batch)
    seconds = work / rate
    if seconds > AUTO_MAX_SECONDS:
        raise ConfigError(
            "dt", AUTO,
            f"{steps}: estimated {format_duration(seconds)} for {runs} runs on this engine "
            f"(measured {rate:.2g} edge updates/s; dt auto refuses more than "
            f"{format_duration(AUTO_MAX_SECONDS)}); give --dt {spec.dt:.6g} to accept the cost, "
            f"or shrink it: a smaller --k-max, fewer --runs or --nodes, or --coupling degree")
    return (f"dt auto: {steps}; estimated {format_duration(seconds)} for {runs} runs "
            f"(measured {rate:.2g} edge updates/s)")
