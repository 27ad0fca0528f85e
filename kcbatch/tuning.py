"""``kcbatch tune``: throughput over batch sizes on the current device."""
from __future__ import annotations

import time
from typing import Sequence

from .config import IntegrationSpec, StudyConfig
from .engine_gpu import predict_device_bytes
from .engines import get_engine, resolve_device
from .pipeline import make_batch
from .study import choose_batch


def tune(cfg: StudyConfig, sizes: Sequence[int] | None, steps: int) -> str:
    """Time ``steps`` RK4 steps per batch size (after a warm-up), scale to the
    study's step count, and recommend the smallest batch within 5% of the best
    runs/s. Returns the table as text."""
    device, notice = resolve_device(cfg.device)
    engine = get_engine(device, cfg.precision, cfg.fast_math)
    if sizes is None:
        cap = choose_batch(cfg.replace(batch="auto"), device, 1 << 20)
        sizes = [1 << i for i in range(16) if (1 << i) <= cap]
    total_steps = cfg.spec.n_transient + cfg.spec.n_measure
    spec = IntegrationSpec(dt=cfg.dt, n_transient=0, n_measure=steps, sample_every=steps)
    rows = []
    for b in sizes:
        item = make_batch(list(range(b)), seed=cfg.seed, nodes=cfg.nodes, m=cfg.m,
                          omega_mu=cfg.omega_mu, omega_sigma=cfg.omega_sigma,
                          k_values=cfg.k_values, precision=cfg.precision)
        pool_bytes = None
        engine.integrate(item.batch, spec)  # warm-up (compile, allocator)
        if device == "gpu":
            from ._cuda_backend import cupy
            pool = cupy().get_default_memory_pool()
            pool.free_all_blocks()
            base = pool.total_bytes()
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            engine.integrate(item.batch, spec)  # returns host data: synchronised
            best = min(best, time.perf_counter() - t0)
        if device == "gpu":
            pool_bytes = pool.total_bytes() - base
        runs_per_s = b / (best * total_steps / steps)
        pred = predict_device_bytes(nodes=cfg.nodes, m=cfg.m, k_num=cfg.k_num,
                                    precision=cfg.precision, batch=b,
                                    n_samples=cfg.spec.n_samples)
        rows.append((b, runs_per_s, pred, pool_bytes))
    best_rate = max(r[1] for r in rows)
    pick = min(r[0] for r in rows if r[1] >= 0.95 * best_rate)
    lines = [f"device {device}" + (f" ({notice})" if notice else "")
             + f"; N={cfg.nodes}, m={cfg.m}, {cfg.k_num} K, {total_steps} steps, {cfg.precision}",
             f"{'batch':>6} {'runs/s':>10} {'predicted MiB':>14} {'pool MiB':>10}"]
    for b, rate, pred, pool_b in rows:
        pool_s = "-" if pool_b is None else f"{pool_b / 2**20:.1f}"
        lines.append(f"{b:6d} {rate:10.2f} {pred / 2**20:14.1f} {pool_s:>10}")
    lines.append(f"recommended: --batch {pick} (smallest within 5% of the best runs/s)")
    return "\n".join(lines)
