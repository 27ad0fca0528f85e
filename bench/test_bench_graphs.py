"""Benchmarks: numba BA generator vs networkx (+ conversion to scipy CSR).

    PYTHONPATH=. python -m pytest bench/test_bench_graphs.py -s

The two ``benchmark`` tests share the group "ba" so pytest-benchmark reports
them side by side. ``test_numba_at_least_100x_faster`` is the performance
acceptance check (a timed assert, so it lives here and not in tests/).
"""
from __future__ import annotations

import itertools
import time

import networkx as nx
import pytest

from kcbatch.networks import barabasi_albert

N, M = 10_000, 3
EDGES = M + (N - M - 1) * M


@pytest.fixture(scope="module", autouse=True)
def compiled():
    # The first call compiles (or loads numba's cache); keep it out of every timing.
    barabasi_albert(N, M, 0)


def networkx_csr(seed):
    return nx.to_scipy_sparse_array(nx.barabasi_albert_graph(N, M, seed=seed), format="csr")


@pytest.mark.benchmark(group="ba")
def test_bench_numba_ba(benchmark):
    seeds = itertools.count(1)
    _indptr, indices = benchmark(lambda: barabasi_albert(N, M, next(seeds)))
    assert indices.shape == (2 * EDGES,)


@pytest.mark.benchmark(group="ba")
def test_bench_networkx_ba(benchmark):
    seeds = itertools.count(1)
    A = benchmark(lambda: networkx_csr(next(seeds)))
    assert A.nnz == 2 * EDGES


def best_time(fn, repeats):
    best = float("inf")
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        best = min(best, time.perf_counter() - t0)
    return best


def test_numba_at_least_100x_faster():
    # Warm-up: numba compiled by the fixture; one networkx call warms its
    # dispatch machinery and imports.
    barabasi_albert(N, M, 1)
    networkx_csr(1)
    # Best of several: the minimum is the least noisy estimate on a shared machine.
    t_numba = best_time(lambda i: barabasi_albert(N, M, 100 + i), repeats=50)
    t_networkx = best_time(lambda i: networkx_csr(100 + i), repeats=5)
    ratio = t_networkx / t_numba
    print(f"\nBA(n={N}, m={M}) per graph: numba {t_numba * 1e3:.3f} ms, "
          f"networkx + to_scipy_sparse_array {t_networkx * 1e3:.1f} ms, ratio {ratio:.0f}x")
    assert ratio >= 100, f"numba generator only {ratio:.1f}x faster than networkx"
