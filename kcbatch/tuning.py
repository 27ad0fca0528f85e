"""``kcbatch tune``: throughput over batch sizes on the current device."""
from __future__ import annotations

import time
from typing import Sequence

from .config import IntegrationSpec, StudyConfig
from .engines import get_engine, resolve_device
from .estimate import format_duration
from .pipeline import make_batch
from .study import choose_batch


def tune(cfg: StudyConfig, sizes: Sequence[int] | None, steps: int) -> str:
    """Time ``steps`` RK4 steps per batch size (after a warm-up), scale to the
    study's step count, and recommend the smallest batch within 5% of the best
    runs/s. Returns the table as text, then the estimated time of the study of
    ``cfg`` (its runs at the recommended batch's runs/s; integration only, graph
    generation runs beside it)."""
    device, notice = resolve_device(cfg.device)
    engine = get_engine(device, cfg.fast_math)
    if sizes is None:
        cap = choose_batch(cfg.replace(batch="auto"), engine, 1 << 20)
        sizes = [1 << i for i in range(16) if (1 << i) <= cap]
    total_steps = cfg.spec.n_steps
    spec = IntegrationSpec(dt=cfg.dt, n_transient=0, n_measure=steps, sample_every=steps)
    rows = []
    for b in sizes:
        item = make_batch(list(range(b)), cfg)
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
        rows.append((b, runs_per_s, engine.predict_bytes(cfg, b), pool_bytes))
    best_rate = max(r[1] for r in rows)
    pick = min(r[0] for r in rows if r[1] >= 0.95 * best_rate)
    lines = [f"device {device}" + (f" ({notice})" if notice else "")
             + f"; N={cfg.nodes}, m={cfg.m}, {cfg.k_num} K, {total_steps} steps, {cfg.precision}",
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
