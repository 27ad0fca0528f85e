"""Converged + refined Kc (kcbatch.find_kc) against the plain protocol, on the CPU.

    PYTHONPATH=. python -m pytest bench/test_bench_converge.py -s

Size: 8 BA networks, N=1000, m=3, 20 K in linspace(0, 4, 20) (dK = 0.21), dt=0.05,
t_measure=5, sample_every=10, float32. Group "converge":

* ``test_bench_plain``  -- the original protocol (t_transient=5);
* ``test_bench_auto``   -- ``t_transient="auto"`` (t_max=80, kc_tol=0.01) and
  ``refine=0.005``, finished networks retired.

``extra_info`` records the work in (row, K) system-steps: ``work`` (windows, with
retiring), ``work_no_retire`` (the same windows keeping every network to the end:
the saving of retiring), ``refine_work``, and ``fine_grid_work``: a grid with the
refined resolution over [k_min, k_max] ((k_max - k_min)/0.005 + 1 points) at each
network's final transient, which refinement replaces.
"""
from __future__ import annotations

import numpy as np
import pytest

import kcbatch
from kcbatch.analysis.converge import estimate_kc
from kcbatch.engines import get_engine
from kcbatch.networks import barabasi_albert

N, M, B = 1000, 3, 8
K = np.linspace(0.0, 4.0, 20)
TOL = 0.005
AUTO = dict(t_transient="auto", t_max=80.0, refine=TOL)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(2026)
    graphs = [barabasi_albert(N, M, int(rng.integers(2**62))) for _ in range(B)]
    return graphs, rng.normal(0, 0.5, (B, N)), rng.uniform(0, 2 * np.pi, (B, N))


@pytest.mark.benchmark(group="converge")
def test_bench_plain(benchmark, inputs):
    res = benchmark.pedantic(kcbatch.find_kc, args=inputs, kwargs=dict(k_values=K, device="cpu"),
                             rounds=1, iterations=1)
    benchmark.extra_info.update(work=res.work, kc_interp=res.kc_interp.tolist())


@pytest.mark.benchmark(group="converge")
def test_bench_auto(benchmark, inputs):
    res = benchmark.pedantic(kcbatch.find_kc, args=inputs,
                             kwargs=dict(k_values=K, device="cpu", **AUTO), rounds=1,
                             iterations=1)
    graphs, omega, theta0 = inputs
    batch = kcbatch.pack(graphs, list(omega), list(theta0), K)
    keep_all = estimate_kc(get_engine("cpu"), batch, K, dt=0.05, t_transient="auto",
                           t_max=80.0, retire=False)
    assert np.array_equal(keep_all.kc_interp, res.kc_interp, equal_nan=True)
    n_fine = round((K[-1] - K[0]) / TOL) + 1
    steps = np.round(res.t_transient / 0.05).astype(np.int64) + 100
    fine = int(np.sum(N * n_fine * steps))
    benchmark.extra_info.update(
        work=res.work, work_no_retire=keep_all.work, refine_work=res.refine_work,
        fine_grid_work=fine, retire_saving=1 - res.work / keep_all.work,
        refine_vs_fine_grid=res.refine_work / fine,
        t_transient=res.t_transient.tolist(), converged=res.converged.tolist(),
        kc_windows_first=res.kc_windows[:, 0].tolist(), kc_interp=res.kc_interp.tolist(),
        kc_refined=res.kc_refined.tolist(), kc_chi=res.kc_chi.tolist())
    print({k: v for k, v in benchmark.extra_info.items() if "work" in k or "saving" in k
           or k in ("t_transient", "converged")})
