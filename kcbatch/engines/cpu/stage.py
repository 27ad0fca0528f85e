"""The CPU engine's RK4 stage pass, in numba (twin of kernel ``rk4_stage``).

State layout: one array ``X [R, 2 nK]`` per (sin, cos) buffer, row ``i`` holding
``sin`` of its nK stage points in ``X[i, :nK]`` and ``cos`` in ``X[i, nK:]``, so
that a neighbour's whole contribution is one contiguous run of ``2 nK`` values
(one vector loop, one stream for the prefetcher) instead of two.

Per row, the pass gathers the neighbours' (sin, cos) sums for all nK systems
(:func:`neighbour_sums`), forms the derivative with
``sum_j sin(t_j - t_i) = cos t_i sum_j sin t_j - sin t_i sum_j cos t_j``,
accumulates the RK4 weights and writes the (sin, cos) of the row's next stage
point into the other buffer.

Every (row, K) value is computed by exactly the operations, in exactly the order,
of the baseline (``bench/cpu_baseline.py``) and of the kernel: each row adds
its neighbours in CSR order, starting from the first; the same trig. Only how
the loops are grouped differs, so results are bit for bit those of the
baseline, whatever the thread count, the row chunks or the batch.
"""
from __future__ import annotations

import numba
import numpy as np

from kcbatch.engines.cpu.trig import LIMIT32, LIMIT64, fix_large, sincos

TWO_PI = 2.0 * np.pi
# Only flags that cannot change results: no reassociation or FMA contraction
# (the kernels are compiled without them too).
_FASTMATH = {"nnan", "ninf", "nsz"}
# Cost of a row's own work (derivative, RK4, sin/cos of nK points) in units of
# one neighbour's gather, measured on the 2-core development machine: ~1 ns per
# (row, K) for the row's work vs ~16 ns per neighbour (2 x 50 values).
ROW_COST = 4
# Cost units per chunk: ~100 chunks for a 10^4-node BA network, enough for the
# static split of the chunks over threads to be even.
CHUNK_COST = 1000


def row_chunks(indptr: np.ndarray) -> np.ndarray:
    """Row boundaries ``[n_chunks + 1]`` int64 of chunks of about equal work.

    numba splits a ``prange`` into equal contiguous parts per thread; with
    64-row chunks a BA network's first half of rows (its hubs) carries ~70% of
    the edges, so one thread did most of the gathering. Chunks of equal
    ``ROW_COST * rows + neighbours`` balance the threads instead. Which chunk a
    row is in never changes its numbers."""
    rows = indptr.shape[0] - 1
    cost = np.arange(rows + 1, dtype=np.int64) * ROW_COST + (indptr - indptr[0])
    n_chunks = max(1, min(rows, int(cost[-1] // CHUNK_COST)))
    targets = np.linspace(0, cost[-1], n_chunks + 1)[1:-1]
    inner = np.searchsorted(cost, targets)
    return np.unique(np.concatenate(([0], inner, [rows]))).astype(np.int64)


@numba.njit(cache=True, nogil=True, inline="always", fastmath=_FASTMATH)
def neighbour_sums(X, indices, lo, hi, out):
    """``out[:] = sum_{e=lo}^{hi-1} X[indices[e], :]``, added in CSR order.

    Four neighbours per pass over the row: each vector loop over K then costs
    one overlap check and one load/store of ``out`` per four neighbours instead
    of per neighbour (that overhead, not memory, bounds a one-neighbour loop), while
    ``(((s + x0) + x1) + x2) + x3`` keeps the order of the additions."""
    n = X.shape[1]
    e = lo
    if hi - lo >= 4:
        j0, j1, j2, j3 = indices[e], indices[e + 1], indices[e + 2], indices[e + 3]
        for k in range(n):
            out[k] = ((X[j0, k] + X[j1, k]) + X[j2, k]) + X[j3, k]
        e += 4
    elif hi - lo >= 2:
        j0, j1 = indices[e], indices[e + 1]
        for k in range(n):
            out[k] = X[j0, k] + X[j1, k]
        e += 2
    elif hi - lo == 1:
        j0 = indices[e]
        for k in range(n):
            out[k] = X[j0, k]
        e += 1
    else:
        out[:] = 0
    while e + 4 <= hi:
        j0, j1, j2, j3 = indices[e], indices[e + 1], indices[e + 2], indices[e + 3]
        for k in range(n):
            out[k] = (((out[k] + X[j0, k]) + X[j1, k]) + X[j2, k]) + X[j3, k]
        e += 4
    if e + 2 <= hi:
        j0, j1 = indices[e], indices[e + 1]
        for k in range(n):
            out[k] = (out[k] + X[j0, k]) + X[j1, k]
        e += 2
    if e < hi:
        j0 = indices[e]
        for k in range(n):
            out[k] += X[j0, k]


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def rk4_stage(indptr, indices, weight, omega, row_net,  # graph: [R+1], [nnz], [R] x 3
              couplings,       # [B, nK] the batch's coupling per (network, K), read every stage
              chunks,          # [n_chunks + 1] row boundaries (row_chunks)
              X_in,            # [R, 2 nK] sin | cos of this stage's point
              X_out,           # [R, 2 nK] out: sin | cos of the next stage point
              theta,           # [R, nK] phase at the start of the step (stage 3 updates it)
              acc,             # [R, nK] running sum f1 + 2 f2 + 2 f3
              stage, dt):
    """One RK4 stage for every (row, K) system (mirrors kernel ``rk4_stage``)."""
    n_k = theta.shape[1]
    real = X_in.dtype.type
    half = real(0.5) * dt
    sixth = dt / real(6.0)
    two_pi = real(TWO_PI)
    for c in numba.prange(chunks.shape[0] - 1):
        sums = np.empty(2 * n_k, dtype=X_in.dtype)
        f = np.empty(n_k, dtype=X_in.dtype)
        for i in range(chunks[c], chunks[c + 1]):
            neighbour_sums(X_in, indices, indptr[i], indptr[i + 1], sums)
            _row_update(weight[i], omega[i], couplings[row_net[i]], X_in[i, :n_k],
                        X_in[i, n_k:], sums[:n_k], sums[n_k:], X_out[i, :n_k],
                        X_out[i, n_k:], theta[i], acc[i], f, stage, dt, half, sixth, two_pi)


@numba.njit(cache=True, nogil=True, inline="always", fastmath=_FASTMATH)
def _row_update(w_i, om, cpl, s_i, c_i, ss, cc, s_out, c_out, th, ac, f, stage, dt, half,
                sixth, two_pi):
    # Separate sin and cos views (not X[i, k] and X[i, n_k + k]): with both
    # stores into one array LLVM cannot vectorise the loop (12x slower trig).
    real = s_i.dtype.type
    n_k = f.shape[0]
    for k in range(n_k):
        f[k] = om + cpl[k] * w_i * (c_i[k] * ss[k] - s_i[k] * cc[k])
    # the stage branch sits outside the K loops so that they vectorise
    if stage == 0:
        for k in range(n_k):
            ac[k] = f[k]
            f[k] = th[k] + half * f[k]
    elif stage == 1:
        for k in range(n_k):
            ac[k] += real(2.0) * f[k]
            f[k] = th[k] + half * f[k]
    elif stage == 2:
        for k in range(n_k):
            ac[k] += real(2.0) * f[k]
            f[k] = th[k] + dt * f[k]
    else:
        for k in range(n_k):
            t = th[k] + sixth * (ac[k] + f[k])
            t = t - two_pi * np.floor(t / two_pi)
            # floor rounding can leave t == 2pi or a hair below 0
            if t >= two_pi:
                t -= two_pi
            if t < real(0.0):
                t += two_pi
            th[k] = t
            f[k] = t
    for k in range(n_k):
        s_out[k], c_out[k] = sincos(f[k])
    fix_large(f, s_out, c_out)


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def rk4_stage_one_k(indptr, indices, weight, omega, row_net,  # graph: [R+1], [nnz], [R] x 3
                    couplings,   # [B, 1]
                    chunks,      # [n_chunks + 1] row boundaries (row_chunks)
                    X_in,        # [R, 2] sin | cos of this stage's point
                    X_out,       # [R, 2] out: sin | cos of the next stage point
                    theta,       # [R, 1] phase at the start of the step (stage 3 updates it)
                    acc,         # [R, 1] running sum f1 + 2 f2 + 2 f3
                    stage, dt,
                    ss, cc, pt):  # [R] x 3 scratch: neighbour sums, next stage point
    """:func:`rk4_stage` for batches of one K per network (the adiabatic sweep).

    With one column, :func:`rk4_stage`'s vector loops run one element and its
    per-row overhead is all there is (~80 ns a row). Here each chunk first
    sums its rows' neighbours in scalar loops, then updates its rows in loops
    over rows, which vectorise; the scratch rows are the caller's, as
    allocating them per chunk cost a third of the time. ~3x faster per stage
    at N=300. Every value is computed by the same operations in the same
    order as :func:`rk4_stage` (neighbours added in CSR order from the first,
    the same trig with the same libm fallback), so the results are those of
    :func:`rk4_stage` bit for bit."""
    real = X_in.dtype.type
    half = real(0.5) * dt
    sixth = dt / real(6.0)
    two_pi = real(TWO_PI)
    lim = LIMIT32 if X_in.itemsize == 4 else LIMIT64
    for c in numba.prange(chunks.shape[0] - 1):
        i0, i1 = chunks[c], chunks[c + 1]
        for i in range(i0, i1):
            lo, hi = indptr[i], indptr[i + 1]
            s_sum, c_sum = real(0.0), real(0.0)
            if hi > lo:
                j = indices[lo]
                s_sum, c_sum = X_in[j, 0], X_in[j, 1]
                for e in range(lo + 1, hi):
                    j = indices[e]
                    s_sum += X_in[j, 0]
                    c_sum += X_in[j, 1]
            ss[i], cc[i] = s_sum, c_sum
        # the stage branch sits outside the row loops so that they vectorise
        if stage == 0:
            for i in range(i0, i1):
                f = _f_one_k(i, omega, couplings, row_net, weight, X_in, ss, cc)
                acc[i, 0] = f
                pt[i] = theta[i, 0] + half * f
        elif stage < 3:
            h = half if stage == 1 else dt
            for i in range(i0, i1):
                f = _f_one_k(i, omega, couplings, row_net, weight, X_in, ss, cc)
                acc[i, 0] += real(2.0) * f
                pt[i] = theta[i, 0] + h * f
        else:
            for i in range(i0, i1):
                f = _f_one_k(i, omega, couplings, row_net, weight, X_in, ss, cc)
                t = theta[i, 0] + sixth * (acc[i, 0] + f)
                t = t - two_pi * np.floor(t / two_pi)
                # floor rounding can leave t == 2pi or a hair below 0
                t = t - two_pi if t >= two_pi else t
                t = t + two_pi if t < real(0.0) else t
                theta[i, 0] = t
                pt[i] = t
        big = False
        for i in range(i0, i1):
            X_out[i, 0], X_out[i, 1] = sincos(pt[i])
            big |= not (abs(pt[i]) <= lim)
        if big:  # as fix_large: libm where the reduction's range ends
            for i in range(i0, i1):
                if not (abs(pt[i]) <= lim):
                    X_out[i, 0], X_out[i, 1] = np.sin(pt[i]), np.cos(pt[i])


@numba.njit(cache=True, nogil=True, inline="always", fastmath=_FASTMATH)
def _f_one_k(i, omega, couplings, row_net, weight, X_in, ss, cc):
    # the derivative of _row_update's first loop, for row i's one column
    return omega[i] + couplings[row_net[i], 0] * weight[i] * (
        X_in[i, 1] * ss[i] - X_in[i, 0] * cc[i])
