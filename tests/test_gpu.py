"""GPU engine tests: run only where CuPy and a CUDA device work (marker ``gpu``).

The gpu cases of the device-parametrised tests (test_correctness.py, the CLI study
in test_study.py) carry the same marker: ``pytest -m gpu tests`` runs them all."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import random_batch

import kcbatch
from kcbatch.engines import why_unavailable

_REASON = why_unavailable("gpu")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_REASON is not None, reason=f"{_REASON}")]

TIMES = dict(dt=0.05, t_transient=2.0, t_measure=2.0, sample_every=5)
K = np.linspace(0.0, 4.0, 9)


@pytest.mark.parametrize("n_graphs,nodes,m", [(1, 300, 1), (3, 1000, 3), (8, 2000, 2)])
@pytest.mark.parametrize("fast_math", [False, True])
def test_gpu_matches_cpu_float32(n_graphs, nodes, m, fast_math):
    graphs, omega, theta0 = random_batch(n_graphs, nodes, m, seed=nodes + m)
    cpu = kcbatch.simulate(graphs, omega, theta0, K, device="cpu", **TIMES)
    gpu = kcbatch.simulate(graphs, omega, theta0, K, device="gpu", fast_math=fast_math, **TIMES)
    assert gpu.shape == cpu.shape
    assert np.max(np.abs(gpu - cpu)) <= 1e-4


def test_gpu_matches_cpu_float64():
    graphs, omega, theta0 = random_batch(4, 800, 3, seed=7)
    kw = dict(TIMES, precision="float64")
    cpu = kcbatch.simulate(graphs, omega, theta0, K, device="cpu", **kw)
    gpu = kcbatch.simulate(graphs, omega, theta0, K, device="gpu", **kw)
    assert np.max(np.abs(gpu - cpu)) <= 1e-9


def test_gpu_results_independent_of_batch_size():
    graphs, omega, theta0 = random_batch(6, 500, 3, seed=11)
    whole = kcbatch.simulate(graphs, omega, theta0, K, device="gpu", **TIMES)
    parts = np.concatenate([
        kcbatch.simulate(graphs[i:i + 2], omega[i:i + 2], theta0[i:i + 2], K, device="gpu",
                         **TIMES)
        for i in range(0, 6, 2)])
    single = kcbatch.simulate(graphs[3:4], omega[3:4], theta0[3:4], K, device="gpu", **TIMES)
    # Each system is summed in CSR order by one thread: batching changes nothing.
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(whole[3:4], single)


def test_gpu_memory_prediction_within_10_percent():
    import cupy

    from kcbatch.engines import get_engine
    from kcbatch.inputs.batch import pack
    from kcbatch.protocol.config import IntegrationSpec, StudyConfig

    nodes, m, b, n_k = 5000, 3, 6, 50
    spec = IntegrationSpec(dt=0.05, n_transient=1, n_measure=10, sample_every=5)
    graphs, omega, theta0 = random_batch(b, nodes, m, seed=3)
    batch = pack(graphs, list(omega), list(theta0), np.linspace(0, 5, n_k), "float32")
    engine = get_engine("gpu")
    pool = cupy.get_default_memory_pool()
    engine.integrate(batch, spec)  # compile first: the module is not pool memory
    pool.free_all_blocks()
    before = pool.used_bytes()
    # Measure the peak: the pool keeps every block of the finished call cached.
    engine.integrate(batch, spec)
    measured = pool.total_bytes() - before
    cfg = StudyConfig(nodes=nodes, m=m, k_num=n_k, k_max=5.0, t_transient=0.05,
                      t_measure=0.5, sample_every=5, precision="float32", seed=1)
    assert cfg.spec.n_samples == spec.n_samples
    from kcbatch.run.batching import batch_shape
    predicted = engine.predict_bytes(batch_shape(cfg), b)
    assert abs(predicted - measured) <= 0.10 * measured, (predicted, measured)


def test_gpu_auto_batch_fits_memory():
    import cupy

    from kcbatch.engines import get_engine
    from kcbatch.protocol.config import StudyConfig
    from kcbatch.run.batching import choose_batch, device_bytes

    cfg = StudyConfig(batch="auto", device="gpu", seed=1)
    engine = get_engine("gpu")
    b = choose_batch(cfg, engine, 10_000)
    free, _ = cupy.cuda.runtime.memGetInfo()
    need = device_bytes(cfg, engine, b)
    assert 1 <= b and need <= free
