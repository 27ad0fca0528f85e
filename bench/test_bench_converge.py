"""The converged + refined Kc against the plain protocol, on the CPU, at the default size.

    PYTHONPATH=. python -m pytest bench/test_bench_converge.py -s

Size: the default study's networks (BA, N = 10^4, m = 3, normal omega sigma 0.5,
50 K over [0, 5], dt 0.05, 5 + 5 time units, float32), ``RUNS`` of them.

Group "converge" (the engine's integration alone, ``kcbatch.find_kc`` on the
same networks, side by side in one run):

* ``test_bench_plain``      -- the plain protocol (t_transient = 5);
* ``test_bench_adaptive``   -- ``t_transient="auto"`` (t_max 400, kc_tol 0.01),
  ``refine=0.005``, ``converge="adaptive"`` (the default);
* ``test_bench_exhaustive`` -- the same with ``converge="exhaustive"``;
* ``test_bench_exhaustive_other_theta0`` -- the exhaustive protocol from other
  initial phases: how many kc_refined stay within max(TOL, kc_tol) of the
  exhaustive ones when only the trajectory changes.

Group "converge-study" (the whole study, ``run_study`` end to end: networks,
theory, integration, store and exports): the plain study against the adaptive
converged + refined one, ``KCBATCH_BENCH_STUDY_RUNS`` runs (default ``RUNS``) in
batches of at most 32, as ``kcbatch run --runs 1000 --batch 32`` runs them:

    KCBATCH_BENCH_STUDY_RUNS=64 PYTHONPATH=. python -m pytest \
        bench/test_bench_converge.py -k study -s

``extra_info`` records the system-steps of each (windows, refinement, and the
plain protocol's for the same networks), their ratio to the plain protocol's,
the wall seconds, and for the exhaustive run how many networks' kc_refined lie
within max(TOL, kc_tol) of the adaptive one's. Ratios are comparable only within
one run (the machine is shared).
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import kcbatch
from kcbatch.networks import barabasi_albert

N, M, RUNS = 10_000, 3, 8
# The whole-study group's runs (KCBATCH_BENCH_STUDY_RUNS, default RUNS), in
# batches of at most 32 as `kcbatch run --runs 1000 --batch 32` packs them.
STUDY_RUNS = int(os.environ.get("KCBATCH_BENCH_STUDY_RUNS", RUNS))
STUDY_BATCH = min(STUDY_RUNS, 32)
K = np.linspace(0.0, 5.0, 50)
TOL, KC_TOL = 0.005, 0.01
AUTO = dict(t_transient="auto", refine=TOL)
_WALL: dict[str, float] = {}
_RESULTS: dict[str, object] = {}


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(2026)
    graphs = [barabasi_albert(N, M, int(rng.integers(2**62))) for _ in range(RUNS)]
    return graphs, rng.normal(0, 0.5, (RUNS, N)), rng.uniform(0, 2 * np.pi, (RUNS, N))


def _run(benchmark, name, inputs, **kw):
    t0 = time.perf_counter()
    res = benchmark.pedantic(kcbatch.find_kc, args=inputs,
                             kwargs=dict(k_values=K, device="cpu", **kw), rounds=1,
                             iterations=1)
    _WALL[name] = time.perf_counter() - t0
    _RESULTS[name] = res
    plain = int(res.plain_work.sum())
    spent = int(res.work.sum() + res.refine_work.sum())
    benchmark.extra_info.update(
        work_windows=int(res.work.sum()), work_refine=int(res.refine_work.sum()),
        work_plain=plain, work_ratio=spent / plain, seconds=_WALL[name],
        t_transient=res.t_transient.tolist(), kc_interp=res.kc_interp.tolist(),
        kc_refined=res.kc_refined.tolist())
    if "plain" in _WALL and name != "plain":
        benchmark.extra_info["wall_ratio"] = _WALL[name] / _WALL["plain"]
    return res


@pytest.mark.benchmark(group="converge")
def test_bench_plain(benchmark, inputs):
    _run(benchmark, "plain", inputs)


@pytest.mark.benchmark(group="converge")
def test_bench_adaptive(benchmark, inputs):
    res = _run(benchmark, "adaptive", inputs, converge="adaptive", **AUTO)
    print({k: v for k, v in benchmark.extra_info.items() if "ratio" in k or "work" in k})
    assert np.all(res.work > 0)


def _compare(benchmark, res, name: str) -> None:
    """kc_refined of ``res`` against the run ``name`` (when it ran): the pairs,
    how many lie within max(TOL, kc_tol), the largest distance, and how many
    kc_interp are equal."""
    other = _RESULTS.get(name)
    if other is None:
        return
    both = np.isfinite(res.kc_refined) & np.isfinite(other.kc_refined)  # type: ignore[attr-defined]
    diff = np.abs(res.kc_refined - other.kc_refined)[both]  # type: ignore[attr-defined]
    benchmark.extra_info.update(
        compared_with=name, refined_pairs=int(both.sum()),
        within_tolerance=int(np.sum(diff <= max(TOL, KC_TOL))),
        max_refined_difference=float(diff.max()) if diff.size else None,
        kc_interp_equal=int(np.sum(res.kc_interp == other.kc_interp)))  # type: ignore[attr-defined]
    print({k: v for k, v in benchmark.extra_info.items() if "ratio" in k or "within" in k
           or "max_" in k or "equal" in k})


@pytest.mark.benchmark(group="converge")
def test_bench_exhaustive(benchmark, inputs):
    _compare(benchmark, _run(benchmark, "exhaustive", inputs, converge="exhaustive", **AUTO),
             "adaptive")


@pytest.mark.benchmark(group="converge")
def test_bench_exhaustive_other_theta0(benchmark, inputs):
    """The exhaustive protocol again from other initial phases (same networks and
    frequencies): how far its kc_refined moves with the trajectory alone, the
    yardstick for the adaptive one's distance from it."""
    graphs, omega, theta0 = inputs
    other = np.random.default_rng(7).uniform(0, 2 * np.pi, theta0.shape)
    _compare(benchmark, _run(benchmark, "exhaustive-other", (graphs, omega, other),
                             converge="exhaustive", **AUTO), "exhaustive")


def _study(benchmark, tmp_path, name, **kw):
    cfg = kcbatch.StudyConfig(runs=STUDY_RUNS, batch=STUDY_BATCH, device="cpu", seed=7,
                              out=tmp_path / name, **kw)
    t0 = time.perf_counter()
    res = benchmark.pedantic(kcbatch.run_study, args=(cfg,), rounds=1, iterations=1)
    _WALL["study-" + name] = time.perf_counter() - t0
    benchmark.extra_info.update(seconds=_WALL["study-" + name], runs=STUDY_RUNS,
                                batch=STUDY_BATCH)
    if name != "plain" and "study-plain" in _WALL:
        benchmark.extra_info["wall_ratio"] = _WALL["study-" + name] / _WALL["study-plain"]
        work = res.summary["work"]
        benchmark.extra_info.update(work_ratio=work["ratio"], work=work)
        print({k: v for k, v in benchmark.extra_info.items() if "ratio" in k})


@pytest.mark.benchmark(group="converge-study")
def test_bench_study_plain(benchmark, tmp_path):
    _study(benchmark, tmp_path, "plain")


@pytest.mark.benchmark(group="converge-study")
def test_bench_study_adaptive(benchmark, tmp_path):
    _study(benchmark, tmp_path, "adaptive", **AUTO)
