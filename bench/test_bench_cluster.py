"""Benchmarks of studies on Dask (``--scheduler``): what the cluster costs.

    python -m pytest bench/test_bench_cluster.py -s

* ``test_bench_overhead_per_batch``: a study of tiny batches (one 50-node
  network, 2 couplings, 2 RK4 steps: the engine's work is negligible) in this
  process and through a warm ``local:1`` cluster, one batch at a time. The
  difference per batch is the cluster's scheduling overhead: submit, scheduler,
  worker, the records back to the client.
* ``test_bench_local2_vs_one_process``: a small CPU study (8 runs of N = 2000,
  16 couplings, the default 5 + 5 protocol, batches of 2) in one process (numba
  on every core) and on a warm ``local:2`` cluster (two workers with half the
  cores each). On the same cores the ratio should be near 1: Dask adds
  processes, not cores.
* ``test_bench_local_cuda_vs_one_gpu``: the same comparison on one GPU with
  ``local-cuda`` (skipped without a GPU and dask-cuda).

Clusters are started and warmed (numba's cache loaded in every worker) before
the timing: the start-up is reported apart. Figures go to ``benchmark.extra_info``
and are printed; both sides of each ratio are measured in the same run.
"""
from __future__ import annotations

import os
import time

import pytest

from kcbatch.protocol.config import StudyConfig
from kcbatch.run.study import run_study

pytest.importorskip("distributed", reason="the dask extra (kcbatch[dask]) is not installed")

TINY = StudyConfig(seed=7, runs=40, nodes=50, m=2, k_num=2, batch=1, t_transient=0.0,
                   t_measure=0.1, dt=0.05, sample_every=1, device="cpu")
SMALL = StudyConfig(seed=2026, runs=8, nodes=2000, k_num=16, batch=2, device="cpu")
WARM = StudyConfig(seed=1, runs=4, nodes=100, k_num=2, batch=1, t_transient=0.0,
                   t_measure=0.1, sample_every=1, device="cpu")


def _session(spec: str):
    """(context manager, session, seconds to start), warmed on every worker."""
    from kcbatch.run.cluster import open_cluster
    t0 = time.perf_counter()
    ctx = open_cluster(spec)
    session = ctx.__enter__()
    run_study(WARM, scheduler=session)
    session.client.run(lambda: run_study(WARM) and None)  # every worker loads numba's cache
    return ctx, session, time.perf_counter() - t0


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _interleaved(single, clustered, rounds: int, session):
    """Best (result, wall seconds, CPU seconds) of ``rounds`` runs of each,
    alternated so that a change in the machine's load hits both sides alike.
    CPU seconds: this process's (all threads), plus, for the cluster, every
    worker process's (the scheduler and nannies of a LocalCluster live here)."""
    def worker_cpu() -> float:
        return sum(session.client.run(time.process_time).values()) if session else 0.0

    def measured(fn, on_cluster):
        c0, w0 = time.process_time(), worker_cpu() if on_cluster else 0.0
        out, wall = _timed(fn)
        cpu = time.process_time() - c0 + ((worker_cpu() - w0) if on_cluster else 0.0)
        return out, wall, cpu

    best_s, best_c = (None, float("inf"), 0.0), (None, float("inf"), 0.0)
    for _ in range(rounds):
        best_s = min(best_s, measured(single, False), key=lambda x: x[1])
        best_c = min(best_c, measured(clustered, True), key=lambda x: x[1])
    return best_s, best_c


def _one_thread(cfg: StudyConfig):
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return run_study(cfg)
    finally:
        numba.set_num_threads(before)


def _outside_engine(result) -> float:
    """Seconds of a study not spent integrating or generating networks."""
    return result.elapsed - result.engine_seconds - result.times.generate


@pytest.mark.benchmark(group="cluster-overhead")
def test_bench_overhead_per_batch(benchmark):
    run_study(WARM)
    ctx, session, start = _session("local:1")
    try:
        (single, t_single, _), (clustered, t_cluster, _) = benchmark.pedantic(
            _interleaved, args=(lambda: run_study(TINY),
                                lambda: run_study(TINY, scheduler=session), 3, session),
            rounds=1, iterations=1)
    finally:
        ctx.__exit__(None, None, None)
    assert [r.run for r in clustered.records] == [r.run for r in single.records]
    batches = TINY.runs
    # local:1 runs one batch at a time: what is not the worker's engine or
    # generation is submit -> scheduler -> worker -> records back -> store.
    per_single = _outside_engine(single) / batches
    per_cluster = _outside_engine(clustered) / batches
    overhead = (t_cluster - t_single) / batches
    load = os.getloadavg()[0]
    benchmark.extra_info.update(batches=batches, single_s=round(t_single, 4),
                                cluster_s=round(t_cluster, 4), start_s=round(start, 2),
                                outside_engine_ms_per_batch_single=round(1e3 * per_single, 2),
                                outside_engine_ms_per_batch_local1=round(1e3 * per_cluster, 2),
                                overhead_ms_per_batch=round(1e3 * overhead, 2),
                                load_average=load)
    print(f"\ntiny batches x {batches} (best of 3, interleaved; load average {load:.1f}): "
          f"one process {t_single:.3f} s, local:1 {t_cluster:.3f} s -> "
          f"{1e3 * overhead:+.1f} ms per batch; outside the engine and generation "
          f"{1e3 * per_single:.1f} ms per batch in process, {1e3 * per_cluster:.1f} ms "
          f"through the cluster; cluster start + warm-up {start:.1f} s")


@pytest.mark.benchmark(group="cluster-speedup")
def test_bench_local2_vs_one_process(benchmark):
    run_study(WARM)
    ctx, session, start = _session("local:2")
    try:
        (single, t_single, cpu_single), (clustered, t_cluster, cpu_cluster) = \
            benchmark.pedantic(_interleaved,
                               args=(lambda: run_study(SMALL),
                                     lambda: run_study(SMALL, scheduler=session), 2, session),
            rounds=1, iterations=1)
    finally:
        ctx.__exit__(None, None, None)
    assert [r.kc for r in clustered.records] == [r.kc for r in single.records]
    ratio = t_single / t_cluster
    # One numba thread, as in each worker: the engine's own scaling left out,
    # so that what differs is the cluster (processes, scheduler, transfers).
    (_, t_one, cpu_one), _ = _interleaved(lambda: _one_thread(SMALL), lambda: None, 1, None)
    load = os.getloadavg()[0]
    benchmark.extra_info.update(single_1thread_s=round(t_one, 3),
                                cpu_s_single_1thread=round(cpu_one, 3))
    benchmark.extra_info.update(runs=SMALL.runs, batch=SMALL.batch, nodes=SMALL.nodes,
                                k_num=SMALL.k_num, single_s=round(t_single, 3),
                                local2_s=round(t_cluster, 3), speedup=round(ratio, 3),
                                start_s=round(start, 2), load_average=load,
                                cpu_s_single=round(cpu_single, 3),
                                cpu_s_local2=round(cpu_cluster, 3))
    print(f"\nCPU study ({SMALL.runs} runs, N={SMALL.nodes}, {SMALL.k_num} K, batch "
          f"{SMALL.batch}; best of 2, interleaved; load average {load:.1f}): one process "
          f"{t_single:.2f} s, local:2 {t_cluster:.2f} s -> speed-up {ratio:.2f}x; CPU "
          f"{cpu_single:.2f} s vs {cpu_cluster:.2f} s (ratio {cpu_cluster / cpu_single:.2f}); "
          f"one process with 1 numba thread {t_one:.2f} s, CPU {cpu_one:.2f} s (local:2 / that: "
          f"CPU {cpu_cluster / cpu_one:.2f}, wall speed-up {t_one / t_cluster:.2f}x); "
          f"cluster start + warm-up {start:.1f} s")


@pytest.mark.gpu
@pytest.mark.benchmark(group="cluster-gpu")
def test_bench_local_cuda_vs_one_gpu(benchmark):
    pytest.importorskip("dask_cuda", reason="dask-cuda not installed (kcbatch[dask-cuda])")
    from kcbatch.engines import why_unavailable
    if why_unavailable("gpu") is not None:
        pytest.skip(f"gpu unavailable: {why_unavailable('gpu')}")
    study = StudyConfig(seed=2026, runs=512, batch=128, device="gpu")
    run_study(study.replace(runs=128))
    ctx, session, start = _session("local-cuda")
    try:
        run_study(study.replace(runs=128, device="gpu"), scheduler=session)
        _single, t_single = _timed(lambda: run_study(study))
        benchmark.pedantic(run_study, args=(study,), kwargs={"scheduler": session},
                           rounds=1, iterations=1)
        t_cluster = benchmark.stats.stats.min
        workers = len(session.worker_threads())
    finally:
        ctx.__exit__(None, None, None)
    batches = -(-study.runs // study.batch)
    benchmark.extra_info.update(runs=study.runs, batch=study.batch, workers=workers,
                                single_s=round(t_single, 3), local_cuda_s=round(t_cluster, 3),
                                start_s=round(start, 2))
    print(f"\nGPU study ({study.runs} default runs, batch {study.batch}): one process "
          f"{t_single:.2f} s, local-cuda ({workers} GPU workers) {t_cluster:.2f} s; "
          f"per batch {t_single / batches:.3f} s vs {t_cluster / batches * workers:.3f} s "
          f"GPU-seconds; start {start:.1f} s")
