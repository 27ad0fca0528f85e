"""The CPU engine's pass (kcbatch/engines/cpu/stage.py): its neighbour sums keep the
CSR order, its row chunks cover every row with even work, and its numbers depend
neither on the thread count, nor on the chunks, nor on the batch a network is in.
(Accuracy against the float64 reference: test_correctness.py.)"""
from __future__ import annotations

import numba
import numpy as np
import pytest

from kcbatch.engines import get_engine
from kcbatch.engines.cpu import engine as cpu_mod
from kcbatch.engines.cpu.stage import (
    CHUNK_COST,
    ROW_COST,
    neighbour_sums,
    rk4_stage,
    rk4_stage_one_k,
    row_chunks,
)
from kcbatch.engines.cpu.trig import LIMIT32, LIMIT64
from kcbatch.inputs.pipeline import make_batch
from kcbatch.protocol.config import StudyConfig

CFG = StudyConfig(seed=7, nodes=300, m=2, k_num=6, t_transient=0.5, t_measure=0.5,
                  sample_every=2)


def _sequential_sums(X, indices, lo, hi):
    """float32/64 sums one neighbour after the other, in numpy (no FMA, no reordering)."""
    s = np.zeros(X.shape[1], dtype=X.dtype)
    for e in range(lo, hi):
        s = s + X[indices[e]]
    return s


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_neighbour_sums_keep_the_csr_order(dtype):
    rng = np.random.default_rng(3)
    # Magnitudes spread over 8 decades so that any other order rounds differently.
    X = (rng.standard_normal((40, 14)) * 10.0 ** rng.integers(-4, 4, (40, 14))).astype(dtype)
    indices = rng.integers(0, 40, 200).astype(np.int32)
    out = np.empty(14, dtype=dtype)
    reordered_differs = False
    for deg in range(0, 12):
        lo = 7 * deg
        neighbour_sums(X, indices, lo, lo + deg, out)
        want = _sequential_sums(X, indices, lo, lo + deg)
        np.testing.assert_array_equal(out, want, err_msg=f"degree {deg}")
        rev = _sequential_sums(X, indices[lo:lo + deg][::-1].copy(), 0, deg)
        reordered_differs |= not np.array_equal(rev, want)
    assert reordered_differs, "the data do not tell summation orders apart"


def test_row_chunks_cover_every_row_with_even_work():
    b = make_batch([0, 1], StudyConfig(seed=1, nodes=3000, m=3)).batch
    chunks = row_chunks(b.indptr)
    assert chunks[0] == 0 and chunks[-1] == b.n_rows and np.all(np.diff(chunks) > 0)
    cost = np.diff(chunks) * ROW_COST + np.diff(b.indptr[chunks])
    biggest_row = ROW_COST + np.diff(b.indptr).max()
    assert cost.max() <= cost.sum() / (len(chunks) - 1) + biggest_row
    assert cost.sum() // CHUNK_COST - 1 <= len(chunks) - 1 <= cost.sum() // CHUNK_COST + 1
    single = row_chunks(np.array([0, 5], dtype=np.int64))
    assert single.tolist() == [0, 1]


@pytest.fixture(scope="module")
def batch():
    return make_batch([0, 1, 2], CFG).batch


def test_same_numbers_with_one_or_more_threads(batch):
    eng = get_engine("cpu")
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    if threads < 2:
        pytest.skip("numba has a single thread here")
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = eng.integrate(batch, CFG.spec)
        numba.set_num_threads(threads)
        more = eng.integrate(batch, CFG.spec)
    finally:
        numba.set_num_threads(saved)
    np.testing.assert_array_equal(one, more)


@pytest.mark.parametrize("chunking", ["one chunk", "one row each"])
def test_same_numbers_whatever_the_chunks(batch, chunking):
    eng = get_engine("cpu")
    want = eng.integrate(batch, CFG.spec)
    sim = eng.start(batch, CFG.spec.dt)
    rows = batch.n_rows
    sim.chunks = (np.array([0, rows]) if chunking == "one chunk"
                  else np.arange(rows + 1)).astype(np.int64)
    sim.advance(CFG.spec.n_transient)
    got = sim.measure(CFG.spec.n_measure, CFG.spec.sample_every)
    np.testing.assert_array_equal(got, want)


def test_a_network_alone_or_in_a_batch_is_the_same(batch):
    eng = get_engine("cpu")
    together = eng.integrate(batch, CFG.spec)
    for run in range(3):
        alone = eng.integrate(make_batch([run], CFG).batch, CFG.spec)
        np.testing.assert_array_equal(together[run], alone[0], err_msg=f"run {run}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_one_k_pass_is_the_general_pass_bit_for_bit(dtype):
    cfg = StudyConfig(seed=5, nodes=200, m=3, k_num=1, k_min=2.0, k_max=2.0,
                      precision="float32" if dtype == np.float32 else "float64")
    b = make_batch([0, 1, 2, 3], cfg).batch
    rng = np.random.default_rng(8)
    theta0 = rng.uniform(0, 2 * np.pi, (b.n_rows, 1)).astype(dtype)
    # phases past the trig reduction's range take the libm path, then wrap at stage 3
    lim = LIMIT32 if dtype == np.float32 else LIMIT64
    theta0[::37, 0] = 3 * lim
    couplings = rng.uniform(0, 4, (b.n_networks, 1)).astype(dtype)  # one K per network
    chunks = row_chunks(b.indptr)
    dt = dtype(0.05)
    states = []
    for stage_pass in (rk4_stage, rk4_stage_one_k):
        theta, acc = theta0.copy(), np.zeros_like(theta0)
        X = (np.concatenate([np.sin(theta0), np.cos(theta0)], axis=1),
             np.empty((b.n_rows, 2), dtype))
        scratch = () if stage_pass is rk4_stage else tuple(
            np.full(b.n_rows, np.nan, dtype) for _ in range(3))
        for _step in range(3):
            for stage in range(4):
                stage_pass(b.indptr, b.indices, b.weight, b.omega, b.row_net, couplings, chunks,
                           X[stage % 2], X[1 - stage % 2], theta, acc, stage, dt, *scratch)
        states.append((theta, acc, X[0]))
    for got, want in zip(states[1], states[0], strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.all((states[1][0] >= 0) & (states[1][0] < 2 * np.pi))


def test_one_k_batches_take_the_one_k_pass(monkeypatch):
    cfg = StudyConfig(seed=6, nodes=150, m=2, k_num=1, k_min=1.0, k_max=1.0, t_transient=0.3,
                      t_measure=0.3, sample_every=2)
    b = make_batch([0, 1], cfg).batch
    fast = get_engine("cpu").integrate(b, cfg.spec)
    calls = []
    monkeypatch.setattr(cpu_mod, "rk4_stage_one_k",
                        lambda *a: calls.append(1) or rk4_stage(*a[:-3]))
    assert np.array_equal(get_engine("cpu").integrate(b, cfg.spec), fast)
    assert len(calls) == 4 * cfg.spec.n_steps
