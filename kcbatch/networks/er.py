"""Erdős–Rényi G(n, p) networks as CSR arrays, generated in numba.

Each of the ``n(n-1)/2`` node pairs is an edge independently with probability
``p = mean_degree / (n - 1)``, so degrees are Binomial(n-1, p) with mean
``mean_degree``. The pairs are not visited one by one: Batagelj and Brandes
(Phys. Rev. E 71, 036113, 2005) jump from one edge to the next by a geometric
number of skipped pairs, which costs O(n + E) instead of O(n^2). The graph is
returned in the package's CSR form (:mod:`kcbatch.networks.csr`) and is a pure
function of ``(n, mean_degree, seed)``.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from kcbatch.networks.csr import (
    MAX_NODES,
    require_int,
    require_real,
    simple_csr_from_edges,
)
from kcbatch.networks.rng import geometric_skip, xoshiro_seed

__all__ = ["erdos_renyi"]


@numba.njit(cache=True, nogil=True)
def _er_walk(state, n, log1mp, src, dst, e, v, w):
    """Continue the walk from the last edge ``(v, w)`` (``(1, -1)`` at the
    start), filling ``src``/``dst`` from ``e``. Returns ``(e, v, w, done)``;
    not done means the buffers are full and the caller grows them.

    Pairs ``(v, w)`` with ``w < v`` are taken in the order
    ``(1,0), (2,0), (2,1), (3,0), ...`` (row ``v`` ascending, then ``w``); one
    :func:`geometric_skip` draw gives the number of non-edges before each
    edge. The buffers are arguments, never reassigned here, which keeps this
    loop free of reference counting.
    """
    total = n * (n - 1) // 2
    while e < src.shape[0]:
        skip = geometric_skip(state, log1mp)
        # Pairs left after (v, w) bound the jump; comparing as floats first
        # keeps huge skips from overflowing the integer conversion.
        if skip >= total - (v * (v - 1) // 2 + w + 1):
            return e, v, w, True
        w += 1 + np.int64(skip)
        while w >= v:
            w -= v
            v += 1
        if v >= n:
            # Unreachable when the float comparison above is exact (fewer
            # than 2**53 pairs); a guard against its rounding beyond that.
            return e, v, w, True
        src[e] = v
        dst[e] = w
        e += 1
    return e, v, w, False


@numba.njit(cache=True, nogil=True)
def _er_csr(n, p, seed, cap):
    """G(n, p) from ``seed`` as CSR; see :func:`erdos_renyi`.

    ``cap`` is the initial edge buffer size, ``-1`` for a few standard
    deviations above the mean (tests pass small values to exercise growth).
    """
    if p >= 1.0:
        # Complete graph, no draws: log(1 - p) would be -inf.
        src = np.empty(n * (n - 1) // 2, dtype=np.int32)
        dst = np.empty(n * (n - 1) // 2, dtype=np.int32)
        e = 0
        for v in range(1, n):
            for w in range(v):
                src[e] = v
                dst[e] = w
                e += 1
        indptr, indices, _, _ = simple_csr_from_edges(n, src, dst, e)
        return indptr, indices
    if p <= 0.0:
        return simple_csr_from_edges(n, np.empty(0, np.int32), np.empty(0, np.int32), 0)[:2]
    state = xoshiro_seed(seed)
    log1mp = math.log1p(-p)
    if cap < 0:
        mean = p * (n * (n - 1) // 2)
        # Six standard deviations above the mean: growing is rare.
        cap = np.int64(mean + 6.0 * math.sqrt(mean) + 16.0)
    src = np.empty(cap, dtype=np.int32)
    dst = np.empty(cap, dtype=np.int32)
    e, v, w, done = _er_walk(state, n, log1mp, src, dst, 0, np.int64(1), np.int64(-1))
    while not done:
        src = _grown(src, e)
        dst = _grown(dst, e)
        e, v, w, done = _er_walk(state, n, log1mp, src, dst, e, v, w)
    indptr, indices, _, _ = simple_csr_from_edges(n, src, dst, e)
    return indptr, indices


@numba.njit(cache=True, nogil=True)
def _grown(a, used):
    b = np.empty(2 * a.shape[0] + 16, dtype=a.dtype)
    b[:used] = a[:used]
    return b


def erdos_renyi(n: int, mean_degree: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An Erdős–Rényi G(n, p) graph with ``p = mean_degree / (n - 1)``, as CSR.

    The law is networkx's ``gnp_random_graph(n, p)`` (every pair independently
    an edge with probability ``p``); the number of edges is
    Binomial(n(n-1)/2, p) and each degree Binomial(n-1, p). The graph may be
    disconnected and have isolated nodes (for ``mean_degree < log n`` it
    usually does). Only the random stream differs from networkx, so graphs
    follow the same distribution but are not the same graphs for the same seed.

    Random stream: one :func:`~kcbatch.networks.rng.geometric_skip` draw per
    edge plus one that ends the walk, none for ``p`` equal to 0 or 1. That
    order is part of the contract: a seed rebuilds the same graph.

    Parameters
    ----------
    n : int, ``1 <= n <= 2**31 - 1``
    mean_degree : finite real, ``0 <= mean_degree <= n - 1`` (``n - 1`` gives
        the complete graph, 0 the empty one)
    seed : int in ``[0, 2**64)``

    Returns
    -------
    indptr : ndarray, int64, shape ``[n+1]``
    indices : ndarray, int32, shape ``[2*E]``, neighbours sorted within a row.

    Raises
    ------
    ValueError
        naming the parameter, its value and what is allowed.

    Runs in a ``nogil`` numba function in O(n + E), so several graphs can be
    generated in parallel threads.
    """
    n = require_int("n", n, f"with 1 <= n <= {MAX_NODES}")
    if not 1 <= n <= MAX_NODES:
        raise ValueError(f"invalid n={n}: must be an integer with 1 <= n <= {MAX_NODES}")
    k = require_real("mean_degree", mean_degree, f"with 0 <= mean_degree <= n - 1 = {n - 1}")
    if not 0.0 <= k <= n - 1:
        raise ValueError(f"invalid mean_degree={mean_degree!r}: must be a finite number "
                         f"with 0 <= mean_degree <= n - 1 = {n - 1}")
    seed = require_int("seed", seed, "in [0, 2**64)")
    if not 0 <= seed < 2**64:
        raise ValueError(f"invalid seed={seed}: must be an integer in [0, 2**64)")
    p = k / (n - 1) if n > 1 else 0.0
    # Fixed argument types so there is exactly one compiled (and cached) variant.
    return _er_csr(np.int64(n), np.float64(min(p, 1.0)), np.uint64(seed), np.int64(-1))
