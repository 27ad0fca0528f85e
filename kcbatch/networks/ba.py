"""Barabási–Albert networks as CSR arrays, generated in numba.

The graph is returned in the package's CSR form (see :mod:`kcbatch.networks.csr`).
Random numbers come from :mod:`kcbatch.networks.rng` (xoshiro256** over a state
array we own), so a graph is a pure function of ``(n, m, seed)``.
"""
from __future__ import annotations

import numba
import numpy as np

from kcbatch.networks.csr import MAX_NODES, require_int
from kcbatch.networks.rng import uniform_below, xoshiro_seed

__all__ = ["barabasi_albert"]


@numba.njit(cache=True, nogil=True)
def _ba_csr(n, m, seed):
    """BA(n, m) from ``seed`` as CSR; see :func:`barabasi_albert` for the process.

    Edges are recorded as ``(new node, older node)`` in the order they are
    made (the star's ``(i, 0)`` first, then each new node's ``m`` targets,
    ascending), which is what makes the CSR fill below come out sorted.
    """
    state = xoshiro_seed(seed)
    n_edges = m + (n - m - 1) * m
    src = np.empty(n_edges, dtype=np.int32)
    dst = np.empty(n_edges, dtype=np.int32)
    # One entry per edge end: node v appears deg(v) times, so a uniform pick
    # from the filled prefix is a pick proportional to degree.
    repeated = np.empty(2 * n_edges, dtype=np.int32)

    # Initial star, in networkx's order: the hub m times, then leaves 1..m.
    for i in range(m):
        src[i] = i + 1
        dst[i] = 0
        repeated[i] = 0
        repeated[m + i] = i + 1
    n_rep = 2 * m
    e = m

    # picked_by[v] == source  <=>  v is already a target of this source;
    # O(1) per draw instead of scanning the m targets so far.
    picked_by = np.full(n, -1, dtype=np.int32)
    for source in range(m + 1, n):
        first = e
        # networkx's _random_subset: draw with replacement from the repeated
        # list, discard repeats, until m distinct targets are found.
        while e - first < m:
            t = repeated[uniform_below(state, n_rep)]
            if picked_by[t] != source:
                picked_by[t] = source
                src[e] = source
                dst[e] = t
                e += 1
        # The list only grows after all m targets are drawn, so every draw
        # of this step sees the same degrees (as in networkx).
        for j in range(first, e):
            repeated[n_rep] = dst[j]
            n_rep += 1
        for _ in range(m):
            repeated[n_rep] = source
            n_rep += 1
        # Sorting this source's targets now (m entries) makes every CSR row
        # come out sorted from the fill below, which is cheaper than sorting
        # the rows afterwards. The list above keeps draw order.
        for a in range(first + 1, e):
            x = dst[a]
            b = a - 1
            while b >= first and dst[b] > x:
                dst[b + 1] = dst[b]
                b -= 1
            dst[b + 1] = x

    # Counting sort of both edge ends by row (stable, so creation order is
    # kept within a row).
    indptr = np.zeros(n + 1, dtype=np.int64)
    for j in range(n_edges):
        indptr[src[j] + 1] += 1
        indptr[dst[j] + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    indices = np.empty(2 * n_edges, dtype=np.int32)
    for j in range(n_edges):
        u = src[j]
        v = dst[j]
        indices[fill[u]] = v
        fill[u] += 1
        indices[fill[v]] = u
        fill[v] += 1

    # Edges are in creation order with each source's targets ascending, so
    # row u receives first its own targets (all < u, ascending; for the star's
    # leaves that is just the hub) and then the later nodes that chose it (all
    # > u, in creation order): the row is already sorted.
    return indptr, indices


def barabasi_albert(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A Barabási–Albert graph on ``n`` nodes, ``m`` edges per new node, as CSR.

    The process is exactly networkx's ``barabasi_albert_graph(n, m)`` (default
    ``initial_graph``):

    1. start from a star on nodes ``0..m``: hub 0 joined to each of ``1..m``;
    2. keep a list holding each node once per unit of its degree;
    3. for each new node ``s = m+1, ..., n-1``: draw uniformly from that list
       (so proportionally to degree), with replacement, discarding nodes
       already drawn, until ``m`` distinct targets are found; join ``s`` to
       them; then append the targets and ``m`` copies of ``s`` to the list.

    The result has ``E = m + (n - m - 1) * m`` edges and is connected (a
    tree when ``m == 1``). Nodes ``m+1..n-1`` and the hub have degree >= m,
    but the star's leaves ``1..m`` start at degree 1 and keep it unless
    picked, so the minimum degree can be below ``m`` (as in networkx). Only the random
    stream differs from networkx, so graphs follow the same distribution but are not the
    same graphs for the same seed.

    Parameters
    ----------
    n : int, ``m < n <= 2**31 - 1``
    m : int, ``>= 1``
    seed : int in ``[0, 2**64)``; the graph is a pure function of ``(n, m, seed)``.

    Returns
    -------
    indptr : ndarray, int64, shape ``[n+1]``
    indices : ndarray, int32, shape ``[2*E]``, neighbours sorted within a row.

    Raises
    ------
    ValueError
        if a parameter is not an integer (bools rejected) or out of range; the
        message names the parameter, its value and what is allowed.

    The work runs in a ``nogil`` numba function, so several graphs can be
    generated in parallel threads. The first call compiles it (or loads it
    from numba's on-disk cache).
    """
    m = require_int("m", m, ">= 1")
    if m < 1:
        raise ValueError(f"invalid m={m}: must be an integer >= 1")
    n = require_int("n", n, f"with m < n <= {MAX_NODES} (m={m})")
    if not m < n <= MAX_NODES:
        raise ValueError(f"invalid n={n}: must be an integer with m < n <= {MAX_NODES} (m={m})")
    seed = require_int("seed", seed, "in [0, 2**64)")
    if not 0 <= seed < 2**64:
        raise ValueError(f"invalid seed={seed}: must be an integer in [0, 2**64)")
    # Fixed argument types so there is exactly one compiled (and cached) variant.
    return _ba_csr(np.int64(n), np.int64(m), np.uint64(seed))
