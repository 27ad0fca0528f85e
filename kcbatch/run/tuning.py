"""``kcbatch tune``: throughput over batch sizes on the current device."""
from __future__ import annotations

import time
from collections.abc import Sequence

from kcbatch.engines import get_engine, resolve_device
from kcbatch.inputs.graph_source import graph_set
from kcbatch.inputs.pipeline import make_batch
from kcbatch.protocol.choices import AUTO, Auto, Device
from kcbatch.protocol.config import ConfigError, IntegrationSpec, StudyConfig
from kcbatch.protocol.models import expected_edges
from kcbatch.run.batching import choose_batch, device_bytes, fit_batch
from kcbatch.run.time_estimate import format_duration

# Limits of ``kcbatch tune`` (README, "Limits"): batch sizes tried, and RK4
# steps timed per measurement (each size is integrated three times).
MAX_TUNE_SIZES = 64
MAX_TUNE_STEPS = 10_000


def _networks(cfg: StudyConfig) -> str:
    """The study's networks for the header: the model and its size (its expected
    edges), or the files and their sizes."""
    if cfg.graphs is not None:
        gs = graph_set(cfg.graphs)
        return (f"graphs {cfg.graphs} ({len(gs.files)} files, up to {gs.max_nodes} nodes "
                f"and {gs.max_edges} edges)")
    extra = {"ws": f", p={cfg.ws_p:g}", "powerlaw": f", gamma={cfg.gamma:g}"}.get(cfg.graph, "")
    edges = expected_edges(cfg.graph, cfg.nodes, cfg.m, cfg.gamma)
    return f"graph {cfg.graph} (N={cfg.nodes}, m={cfg.m}{extra}, ~{edges} edges)"


# The process's warm-up: repeated until two calls agree within this fraction,
# at most WARM_UP_CALLS calls.
WARM_UP_AGREE = 0.1
WARM_UP_CALLS = 8


def _warm_up(engine, batch, spec: IntegrationSpec) -> None:
    """Integrate ``batch`` until two successive calls take the same time (within
    WARM_UP_AGREE): the first calls of a process run slower (compilation,
    allocator, thread pool), and one warm-up call per size left the first row
    of the table slow (1.18 against 1.87 runs/s for the same size, measured)."""
    last = None
    for _ in range(WARM_UP_CALLS):
        t0 = time.perf_counter()
        engine.integrate(batch, spec)
        took = time.perf_counter() - t0
        if last is not None and abs(took - last) <= WARM_UP_AGREE * max(last, took):
            return
        last = took


def tune(cfg: StudyConfig, sizes: Sequence[int] | None, steps: int) -> str:
    """Time ``steps`` RK4 steps per batch size (after a warm-up), scale to the
    study's step count, and recommend the smallest batch within 5% of the best
    runs/s. Returns the table as text, then the estimated time of the study of
    ``cfg`` (its runs at the recommended batch's runs/s; integration only, graph
    generation runs beside it)."""
    device, notice = resolve_device(cfg.device)
    engine = get_engine(device, cfg.fast_math, cfg.kernel)
    if sizes is None:
        cap = choose_batch(cfg.replace(batch=AUTO), engine, 1 << 20)
        sizes = [1 << i for i in range(16) if (1 << i) <= cap]
    else:
        for b in sizes:  # each size given must fit the memory here, as a study's batch
            try:
                fit_batch(cfg.replace(batch=b), engine, Device(device), b)
            except ConfigError as exc:
                raise ConfigError("batches", b, exc.allowed) from None
    total_steps = cfg.spec.n_steps
    dt = cfg.dt
    if isinstance(dt, Auto):  # cfg.spec has refused it (ConfigError) already
        raise RuntimeError("tune needs the study's dt as a number")
    spec = IntegrationSpec(dt=dt, n_transient=0, n_measure=steps, sample_every=steps)
    rows = []
    networks = graph_set(cfg.graphs) if cfg.graphs is not None else None  # read once
    item = make_batch(list(range(sizes[0])), cfg, networks)  # warmed up, then timed first
    _warm_up(engine, item.batch, spec)
    for i, b in enumerate(sizes):
        if i:
            item = make_batch(list(range(b)), cfg, networks)
        engine.integrate(item.batch, spec)  # warm-up (compile, allocator)
        engine.release_memory()
        base = engine.memory_in_use()
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            engine.integrate(item.batch, spec)  # returns host data: synchronised
            best = min(best, time.perf_counter() - t0)
        used = engine.memory_in_use()
        pool_bytes = None if used is None or base is None else used - base
        runs_per_s = b / (best * total_steps / steps)
        rows.append((b, runs_per_s, device_bytes(cfg, engine, b), pool_bytes))
    best_rate = max(r[1] for r in rows)
    pick = min(r[0] for r in rows if r[1] >= 0.95 * best_rate)
    lines = [f"device {device}" + (f" ({notice})" if notice else "")
             + f"; {_networks(cfg)}, {cfg.k_num} K, {total_steps} steps, {cfg.precision}",
             f"{'batch':>6} {'runs/s':>10} {'predicted MiB':>14} {'pool MiB':>10}"]
    for b, rate, pred, pool_b in rows:
        pool_s = "-" if pool_b is None else f"{pool_b / 2**20:.1f}"
        lines.append(f"{b:6d} {rate:10.2f} {pred / 2**20:14.1f} {pool_s:>10}")
    lines.append(f"recommended: --batch {pick} (smallest within 5% of the best runs/s)")
    pick_rate = next(rate for b, rate, *_ in rows if b == pick)
    runs = len(cfg.run_ids)
    lines.append(f"estimated time of the configured study: {format_duration(runs / pick_rate)} "
                 f"({runs} runs at {pick_rate:.3g} runs/s, --batch {pick}, device {device})")
    return "\n".join(lines)
