"""How long a study will take on this machine, and durations as words.

The cost of a run is counted in *edge updates*: every RK4 step touches, for
each of the ``k_num`` couplings, every directed edge (a neighbour's sin/cos
gathered) and every node (its own trig), so a run costs
``n_steps * k_num * (2 E + N)`` of them, ``E`` the model's expected edges
(:func:`kcbatch.networks.models.expected_edges`) or, for the users' own
networks, the mean over the files. The engine's rate is measured on a
batch shaped like the study's (its model, N, m, K grid, precision and batch size,
or its own files,
shrunk until one RK4 step is about :data:`PROBE_STEP_WORK` edge updates) over
two steps after a warm-up step, and the study's time is its work divided by
that rate. The shape matters: a CPU engine spreads a batch's rows over its
threads, and one small network does not keep them busy (measured on 2 cores:
3x fewer edge updates/s for one 4000-node network than for the study's batch).
Graph generation runs beside the engine in producer threads and is left out.
"""
from __future__ import annotations

import math
import time

from kcbatch.engines import Engine
from kcbatch.inputs.graph_source import graph_set
from kcbatch.inputs.pipeline import make_batch
from kcbatch.inputs.step_size import AUTO_DT_CAP
from kcbatch.protocol.choices import AUTO, Auto
from kcbatch.protocol.config import ConfigError, IntegrationSpec, StudyConfig
from kcbatch.protocol.models import expected_edges, min_nodes

__all__ = ["PROBE_STEP_WORK", "SLOW_ENGINE_RATE", "CPU_NOTICE_SECONDS", "SMALL_CPU_STUDY",
           "AUTO_MAX_SECONDS", "work_per_run", "measure_rate", "cpu_fallback_notice",
           "format_duration", "auto_dt_cost"]

# Edge updates of one RK4 step of the measured batch: ~0.1-2 s on a CPU, so the
# probe (three steps) costs seconds, against the ten minutes and more it is run for.
PROBE_STEP_WORK = 1e8
# Edge updates per second below any engine we know (a 2-core laptop's CPU engine
# does ~5e8): a study that would finish within the notice's limit even at this rate
# is not worth measuring.
SLOW_ENGINE_RATE = 1e8
# ``--device auto`` on the CPU prints the estimate for studies longer than this.
CPU_NOTICE_SECONDS = 600.0
# dt auto refuses a study estimated to take longer than this on its engine [s].
AUTO_MAX_SECONDS = 24 * 3600.0
# Below this many seconds at SLOW_ENGINE_RATE, dt auto's cost is not measured.
AUTO_QUICK_SECONDS = 60.0
# The README's CPU-sized study.
SMALL_CPU_STUDY = dict(runs=8, batch=4, nodes=1000)


def mean_network(cfg: StudyConfig, nodes: int | None = None) -> tuple[float, float]:
    """(nodes, undirected edges) of an average network of ``cfg``: the model's
    (with ``nodes`` nodes instead of cfg.nodes) or the mean over its files."""
    if cfg.graphs is not None:
        files = graph_set(cfg.graphs).files
        return (sum(f.report.nodes for f in files) / len(files),
                sum(f.report.edges for f in files) / len(files))
    n = cfg.nodes if nodes is None else nodes
    return float(n), float(expected_edges(cfg.graph, n, cfg.m, cfg.gamma))


def work_per_run(cfg: StudyConfig, nodes: int | None = None) -> float:
    """Edge updates of one run of ``cfg`` (with ``nodes`` nodes instead of cfg.nodes)."""
    n, edges = mean_network(cfg, nodes)
    return float(cfg.spec.n_steps) * cfg.k_num * (2 * edges + n)


def measure_rate(cfg: StudyConfig, engine: Engine, batch: int) -> float:
    """Edge updates per second of ``engine`` on a batch like the study's: up to
    ``batch`` networks of ``cfg`` (fewer, and if need be smaller ones, so that a
    step is about PROBE_STEP_WORK), timed over two RK4 steps after one warm-up step."""
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
    per_net_step = work_per_run(probe) / probe.spec.n_steps
    size = int(min(max(1, batch), max(1, round(PROBE_STEP_WORK / per_net_step))))
    dt = cfg.dt
    if isinstance(dt, Auto):  # probe.spec has refused it (ConfigError) already
        raise RuntimeError("measure_rate needs the study's dt as a number (kcbatch.run.plan)")
    item = make_batch(list(range(size)), probe)
    engine.integrate(item.batch, IntegrationSpec(dt=dt, n_transient=0, n_measure=1,
                                                 sample_every=1))  # JIT/cache load, pages
    steps = 2
    spec = IntegrationSpec(dt=dt, n_transient=0, n_measure=steps, sample_every=steps)
    t0 = time.perf_counter()
    engine.integrate(item.batch, spec)
    return per_net_step * size * steps / max(time.perf_counter() - t0, 1e-9)


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


def cpu_fallback_notice(cfg: StudyConfig, engine: Engine, runs: int, batch: int,
                        limit: float | None = None) -> str | None:
    """One line for a study that ``--device auto`` put on the CPU: its estimated
    time and a CPU-sized command, or None when ``runs`` runs of ``cfg`` (in
    batches of ``batch``) take less than ``limit`` seconds (default
    :data:`CPU_NOTICE_SECONDS`)."""
    limit = CPU_NOTICE_SECONDS if limit is None else limit
    # an adiabatic sweep integrates every K twice (both branches)
    work = work_per_run(cfg) * runs * (2 if cfg.adiabatic else 1)
    if work <= SLOW_ENGINE_RATE * limit:
        return None
    rate = measure_rate(cfg, engine, batch)
    seconds = work / rate
    if seconds <= limit:
        return None
    small = SMALL_CPU_STUDY
    # The suggested command keeps every other parameter at its default.
    small_cfg = StudyConfig(runs=small["runs"], nodes=small["nodes"], seed=0)
    small_seconds = work_per_run(small_cfg) * small["runs"] / rate
    return (f"estimated time on this CPU: {format_duration(seconds)} for {runs} runs "
            f"(measured {rate:.2g} edge updates/s); a CPU-sized study takes "
            f"~{format_duration(small_seconds)}: kcbatch run --runs {small['runs']} "
            f"--batch {small['batch']} --nodes {small['nodes']} --device cpu "
            f"--out results-small")


def auto_dt_cost(cfg: StudyConfig, engine: Engine, runs: int, batch: int) -> str:
    """The line for a ``dt = "auto"`` that chose a step below AUTO_DT_CAP: the
    steps per K per run and the estimated time of ``runs`` runs on ``engine``
    (measured as :func:`measure_rate` does, unless the work is under
    AUTO_QUICK_SECONDS even at SLOW_ENGINE_RATE). ConfigError naming dt, the
    steps, the estimate and what to do when it exceeds AUTO_MAX_SECONDS."""
    spec = cfg.spec
    # an adiabatic sweep integrates every K twice (both branches)
    work = work_per_run(cfg) * runs * (2 if cfg.adiabatic else 1)
    default_steps = round(10.0 / AUTO_DT_CAP)
    steps = (f"dt={spec.dt:.6g} gives {spec.n_transient} + {spec.n_measure} RK4 steps per K "
             f"per run ({spec.n_steps / default_steps:.3g}x the {default_steps} of the default "
             f"protocol)")
    if work <= SLOW_ENGINE_RATE * AUTO_QUICK_SECONDS:
        return f"dt auto: {steps}; estimated under {AUTO_QUICK_SECONDS:g} s for {runs} runs"
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
