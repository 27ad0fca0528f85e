"""GPU benchmarks (pytest-benchmark): both kernel strategies vs the original algorithm.

Run through ``bench/gpu_check``; skipped without a usable GPU. Every timed call
ends with a host sync (the engine copies its samples back; the baseline calls
``.get()``), and each benchmark is warmed up first (compile, allocator).

``KCBATCH_BENCH_DEVICE=gpu-sim`` (``bench/gpu_check --device gpu-sim``) runs
the engine benchmarks on gpu-sim at ``KCBATCH_BENCH_NODES`` nodes with
``KCBATCH_BENCH_STEPS`` steps, to exercise this file without a GPU; its
figures say nothing about GPU speed.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from kcbatch.engines import get_engine, why_unavailable
from kcbatch.inputs.batch import pack
from kcbatch.networks import barabasi_albert
from kcbatch.protocol.config import IntegrationSpec, StudyConfig
from kcbatch.protocol.seeding import run_inputs

DEVICE = os.environ.get("KCBATCH_BENCH_DEVICE", "gpu")
_REASON = why_unavailable(DEVICE)
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_REASON is not None, reason=f"{_REASON}")]
ON_GPU = DEVICE == "gpu"
needs_cupy = pytest.mark.skipif(not ON_GPU, reason="the baseline and copy need CuPy on a GPU")

if ON_GPU:
    CFG = StudyConfig(seed=2026)  # the default study: N=1e4, m=3, 50 K, 100+100 steps
    BATCHES = (8, 32, 64, 128)
    SHARED_BATCHES = (32, 128)
    SPLIT_BATCH = 64
else:
    _steps = int(os.environ.get("KCBATCH_BENCH_STEPS", "4"))
    CFG = StudyConfig(seed=2026, nodes=int(os.environ.get("KCBATCH_BENCH_NODES", "200")),
                      k_num=4, t_transient=_steps * 0.05 / 2, t_measure=_steps * 0.05 / 2,
                      sample_every=1, device=DEVICE)
    BATCHES = SHARED_BATCHES = (2,)
    SPLIT_BATCH = 2
# Hub splits compared: a warp (the default), half and double that, and off.
SPLITS = (16, 32, 64, 10**9)
BASELINE_K = (0.0, 2.5, 5.0)  # couplings timed for the baseline (cost does not depend on K)


def _batch(b: int, precision: str = "float32"):
    runs = [run_inputs(CFG.seed, i, CFG.nodes, CFG.omega_mu, CFG.omega_sigma) for i in range(b)]
    graphs = [barabasi_albert(CFG.nodes, CFG.m, r.graph_seed) for r in runs]
    return pack(graphs, [r.omega for r in runs], [r.theta0 for r in runs], CFG.k_values,
                precision)


def _engine_bench(benchmark, engine, batch, spec: IntegrationSpec, group: str, rounds: int = 3,
                  **extra) -> None:
    engine.integrate(batch, spec)  # warm-up: compile + allocator
    benchmark.extra_info.update(runs=batch.n_networks, nnz=batch.nnz, n_k=batch.n_k,
                                rows=batch.n_rows, steps=spec.n_transient + spec.n_measure,
                                itemsize=4, device=DEVICE, **extra)
    benchmark.group = group
    benchmark.pedantic(engine.integrate, args=(batch, spec), rounds=rounds, iterations=1)


@pytest.mark.parametrize("b", BATCHES)
def test_engine_default_study(benchmark, b):
    _engine_bench(benchmark, get_engine(DEVICE, kernel="global"), _batch(b), CFG.spec,
                  "gpu-engine", kernel="global")


@pytest.mark.parametrize("b", SHARED_BATCHES)
def test_engine_default_study_shared(benchmark, b):
    engine = get_engine(DEVICE, kernel="shared")
    batch = _batch(b)
    assert engine.strategy(batch) == "shared"
    # 2 rounds: its speed is unmeasured, and gpu_check's time limit must hold
    _engine_bench(benchmark, engine, batch, CFG.spec, "gpu-engine-shared", rounds=2,
                  kernel="shared")


class _SplitEngine:
    """integrate() = one integrate_shared launch with hub rows split at ``split``."""

    def __init__(self, split: int):
        from kcbatch.engines import shared
        self._shared, self.split = shared, split
        self._engine = get_engine(DEVICE, kernel="shared")

    def integrate(self, batch, spec):
        return self._shared.integrate_shared(self._engine.backend, batch, spec,
                                             limit=self._engine.shared_limit(),
                                             split=self.split)


@pytest.mark.parametrize("split", SPLITS)
def test_shared_hub_split(benchmark, split):
    """The load-balance choice: hub rows cut into chunks of ``split`` edges
    summed by all threads of the block, against no split (10**9)."""
    _engine_bench(benchmark, _SplitEngine(split), _batch(SPLIT_BATCH), CFG.spec,
                  "gpu-shared-split", rounds=2, kernel="shared", split=split)


@needs_cupy
@pytest.mark.parametrize("fast_math", [True])
def test_engine_default_study_fast_math(benchmark, fast_math):
    engine = get_engine("gpu", fast_math)
    b = 64
    batch = _batch(b)
    engine.integrate(batch, CFG.spec)
    benchmark.extra_info.update(runs=b, nnz=batch.nnz, n_k=batch.n_k, rows=batch.n_rows,
                                steps=CFG.spec.n_transient + CFG.spec.n_measure, itemsize=4)
    benchmark.group = "gpu-engine-fast-math"
    benchmark.pedantic(engine.integrate, args=(batch, CFG.spec), rounds=3, iterations=1)


def original_algorithm_one_k(cp, sparse, A, deg, omega, theta0, k, spec):
    """The original script's approach: one network, one K, cuSPARSE SpMV and
    CuPy element-wise operations per RK4 stage, float32."""
    inv_deg = (1.0 / cp.maximum(deg, 1)).astype(cp.float32)
    kk = cp.float32(k)
    dt = cp.float32(spec.dt)

    def f(th):
        s, c = cp.sin(th), cp.cos(th)
        return omega + kk * inv_deg * (c * (A @ s) - s * (A @ c))

    th = theta0.copy()
    rs = []
    for step in range(spec.n_transient + spec.n_measure):
        k1 = f(th)
        k2 = f(th + dt / 2 * k1)
        k3 = f(th + dt / 2 * k2)
        k4 = f(th + dt * k3)
        th = cp.mod(th + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), cp.float32(2 * np.pi))
        s = step - spec.n_transient
        if s >= 0 and s % spec.sample_every == 0:
            rs.append(cp.abs(cp.mean(cp.exp(1j * th))))
    return float(cp.mean(cp.stack(rs)).get())


@needs_cupy
def test_original_algorithm_baseline(benchmark):
    import cupy as cp
    import cupyx.scipy.sparse as sparse

    r = run_inputs(CFG.seed, 0, CFG.nodes, CFG.omega_mu, CFG.omega_sigma)
    indptr, indices = barabasi_albert(CFG.nodes, CFG.m, r.graph_seed)
    data = cp.ones(indices.shape[0], dtype=cp.float32)
    A = sparse.csr_matrix((data, cp.asarray(indices), cp.asarray(indptr)),
                          shape=(CFG.nodes, CFG.nodes))
    deg = cp.asarray(np.diff(indptr)).astype(cp.float32)
    omega = cp.asarray(r.omega, dtype=cp.float32)
    theta0 = cp.asarray(r.theta0, dtype=cp.float32)

    def run_ks():
        return [original_algorithm_one_k(cp, sparse, A, deg, omega, theta0, k, CFG.spec)
                for k in BASELINE_K]

    run_ks()  # warm-up
    benchmark.extra_info.update(k_timed=len(BASELINE_K), k_num=CFG.k_num)
    benchmark.group = "gpu-baseline"
    benchmark.pedantic(run_ks, rounds=2, iterations=1)


@needs_cupy
def test_device_copy_bandwidth(benchmark):
    """Device-to-device copy (bytes read + written), the roofline reference."""
    import cupy as cp
    n = 1 << 28  # 1 GiB of float32
    a = cp.ones(n, dtype=cp.float32)
    b = cp.empty_like(a)

    def copy():
        cp.copyto(b, a)
        cp.cuda.Device().synchronize()

    copy()
    benchmark.extra_info.update(bytes=2 * a.nbytes)
    benchmark.group = "gpu-copy"
    benchmark.pedantic(copy, rounds=10, iterations=1)
