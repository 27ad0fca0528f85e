"""Benchmarks of the input pipeline (pytest-benchmark, CPU only, no downloads).

    python -m pytest bench/test_bench_pipeline.py -s

* ``test_bench_generation``: graphs/s of ``make_batch`` through ``produce``
  (N = 10^4, m = 3; 16 single-run chunks) with 1 and 2 producer threads.
* ``test_bench_cpu_study``: a small CPU study at the default protocol (N = 10^4,
  m = 3, dt = 0.05, t_transient = t_measure = 5) with 50 couplings, 4 runs in
  batches of 2; records how long the engine waited for its input
  (``result.times.wait / result.elapsed``; the target is under 5%).

The figures go to ``benchmark.extra_info`` (so ``--benchmark-json`` keeps them)
and are printed (visible with ``-s``).
"""
from __future__ import annotations

import pytest

from kcbatch.inputs.pipeline import PipelineTimes, chunk_runs, produce
from kcbatch.protocol.config import StudyConfig
from kcbatch.run.study import run_study

GEN = StudyConfig(seed=2026, nodes=10_000, m=3)
N_CHUNKS = 16
STUDY = StudyConfig(seed=2026, runs=4, k_num=50, batch=2, producers=1, device="cpu")
WAIT_TARGET = 0.05


@pytest.fixture(scope="module", autouse=True)
def warm():
    # numba compiles (or loads its disk cache) on first use: keep it out of the timings
    list(produce([[0]], GEN, producers=1))
    run_study(StudyConfig(seed=1, runs=1, nodes=100, k_num=2, t_transient=0.0, t_measure=0.1,
                          sample_every=1, device="cpu"))


@pytest.mark.benchmark(group="pipeline-generation")
@pytest.mark.parametrize("producers", [1, 2])
def test_bench_generation(benchmark, producers):
    chunks = chunk_runs(range(N_CHUNKS), 1)

    def generate():
        items = list(produce(chunks, GEN, producers=producers))
        assert len(items) == N_CHUNKS
        return items

    benchmark.pedantic(generate, rounds=3, iterations=1, warmup_rounds=1)
    mean = benchmark.stats.stats.mean
    rate = N_CHUNKS / mean
    benchmark.extra_info.update(producers=producers, graphs=N_CHUNKS, nodes=GEN.nodes, m=GEN.m,
                                graphs_per_s=round(rate, 2))
    print(f"\ngeneration N={GEN.nodes} m={GEN.m}, {producers} producer(s): "
          f"{rate:.1f} graphs/s ({1e3 * mean / N_CHUNKS:.2f} ms/graph, "
          f"{N_CHUNKS} graphs in {mean:.3f} s)")


@pytest.mark.benchmark(group="pipeline-study")
def test_bench_cpu_study(benchmark):
    result = benchmark.pedantic(run_study, args=(STUDY,), rounds=1, iterations=1)
    t: PipelineTimes = result.times
    frac = t.wait / result.elapsed
    after_first = sum(t.waits[1:])
    benchmark.extra_info.update(
        runs=STUDY.runs, batch=STUDY.batch, nodes=STUDY.nodes, k_num=STUDY.k_num,
        elapsed_s=round(result.elapsed, 3), engine_s=round(result.engine_seconds, 3),
        generate_s=round(t.generate, 3), wait_s=round(t.wait, 4),
        wait_after_first_batch_s=round(after_first, 4), wait_fraction=round(frac, 5),
        runs_per_s=round(STUDY.runs / result.elapsed, 4))
    print(f"\nCPU study ({STUDY.runs} runs, batch {STUDY.batch}, N={STUDY.nodes}, "
          f"{STUDY.k_num} K, {STUDY.spec.n_transient}+{STUDY.spec.n_measure} steps): "
          f"{result.elapsed:.2f} s, engine {result.engine_seconds:.2f} s, "
          f"generation {t.generate:.3f} s; engine waited {t.wait:.4f} s "
          f"= {100 * frac:.3f}% of the study ({after_first:.4f} s after the first batch)")
    assert len(result.records) == STUDY.runs
    assert frac < WAIT_TARGET, f"engine waited {100 * frac:.2f}% of the time for its input"
