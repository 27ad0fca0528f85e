"""Watts–Strogatz small-world networks as CSR arrays, generated in numba.

The process is networkx's ``watts_strogatz_graph(n, k, p)`` step for step (see
:func:`watts_strogatz`), so the graphs follow its distribution. The edge set
lives in an open-addressing hash set during the rewiring (O(1) membership
tests, as networkx's adjacency dicts give), so the whole generation is
O(n k). The graph is a pure function of ``(n, k, p, seed)``.
"""
from __future__ import annotations

import numba
import numpy as np

from kcbatch.networks.csr import (
    MAX_NODES,
    require_int,
    require_real,
    simple_csr_from_edges,
)
from kcbatch.networks.rng import uniform01, uniform_below, xoshiro_seed

__all__ = ["watts_strogatz"]

_EMPTY = -1
_DELETED = -2
# Fibonacci hashing: the multiplier spreads consecutive keys (ring
# neighbours) over the whole table; the top bits index it.
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True)
def _slot(table, key, shift):
    """Index of ``key`` in ``table``, or of the empty slot that ends its probe
    sequence when absent (linear probing, tombstones skipped)."""
    mask = table.shape[0] - 1
    i = np.int64((np.uint64(key) * _HASH_MUL) >> shift)
    while True:
        t = table[i]
        if t == key or t == _EMPTY:
            return i
        i = (i + 1) & mask


@numba.njit(cache=True, nogil=True)
def _ws_csr(n, k, p, seed):
    """WS(n, k, p) from ``seed`` as CSR; see :func:`watts_strogatz`."""
    state = xoshiro_seed(seed)
    half = k // 2
    n_edges = n * half
    # Slot j*n + u holds the edge that started as (u, u+j+1 mod n); a rewiring
    # changes its far end in place. Rewired edges are never touched again (a
    # later step only removes its own lattice edge, which is still present).
    src = np.empty(n_edges, dtype=np.int32)
    dst = np.empty(n_edges, dtype=np.int32)
    deg = np.full(n, k, dtype=np.int64)

    # Keys min*n + max. Live keys never exceed n_edges and each rewiring
    # leaves at most one tombstone, so a table of >= 4 n_edges slots stays at
    # most half full and probes stay short.
    bits = 4
    while (1 << bits) < 4 * n_edges:
        bits += 1
    table = np.full(1 << bits, _EMPTY, dtype=np.int64)
    shift = np.uint64(64 - bits)

    for j in range(1, half + 1):
        for u in range(n):
            v = (u + j) % n
            src[(j - 1) * n + u] = u
            dst[(j - 1) * n + u] = v
            key = min(u, v) * n + max(u, v)
            table[_slot(table, key, shift)] = key

    # networkx's loop: neighbour distance outer, node inner; for each lattice
    # edge (u, v): with probability p draw w uniformly from all nodes, redraw
    # while w is u or already a neighbour of u, giving up (after that redraw)
    # when u is joined to every other node; else replace (u, v) by (u, w).
    for j in range(1, half + 1):
        for u in range(n):
            if uniform01(state) < p:
                w = uniform_below(state, n)
                skipped = False
                while w == u or table[_slot(table, min(u, w) * n + max(u, w), shift)] != _EMPTY:
                    w = uniform_below(state, n)
                    if deg[u] >= n - 1:
                        skipped = True
                        break
                if not skipped:
                    e = (j - 1) * n + u
                    v = dst[e]
                    table[_slot(table, min(u, v) * n + max(u, v), shift)] = _DELETED
                    key = min(u, w) * n + max(u, w)
                    table[_slot(table, key, shift)] = key
                    dst[e] = w
                    deg[v] -= 1
                    deg[w] += 1

    indptr, indices, _, _ = simple_csr_from_edges(n, src, dst, n_edges)
    return indptr, indices


def watts_strogatz(n: int, k: int, p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A Watts–Strogatz small-world graph on ``n`` nodes, as CSR.

    The process is networkx's ``watts_strogatz_graph(n, k, p)``:

    1. a ring lattice: node ``u`` joined to ``u ± 1, ..., u ± k/2`` (mod n);
    2. for ``j = 1..k/2`` (outer) and ``u = 0..n-1`` (inner), the lattice edge
       ``(u, u+j mod n)`` is rewired with probability ``p``: its far end moves
       to a node ``w`` drawn uniformly from all nodes, redrawn while ``w == u``
       or ``w`` is already a neighbour of ``u`` (so ``w`` is uniform over the
       allowed nodes); when ``u`` is already joined to every other node the
       rewiring is skipped (networkx checks this after one redraw, and so does
       this code, which matters only for the random stream).

    The graph always has ``n k / 2`` edges, every degree is ``>= k/2`` (each
    node keeps its own ``k/2`` lattice edges, rewired or not), and ``p = 0``
    gives the ring lattice. It may be disconnected for large ``p``. Only the
    random stream differs from networkx, so graphs follow the same
    distribution but are not the same graphs for the same seed.

    Random stream, in the loop order above: one
    :func:`~kcbatch.networks.rng.uniform01` draw per lattice edge, then for
    a rewired edge :func:`~kcbatch.networks.rng.uniform_below` ``(n)`` draws until
    an allowed ``w`` (or the skip). That order is part of the contract.

    Parameters
    ----------
    n : int, ``k < n <= 2**31 - 1``
    k : int, even, ``2 <= k < n`` (the CLI passes ``k = 2m``)
    p : finite real in ``[0, 1]``, the rewiring probability
    seed : int in ``[0, 2**64)``

    Returns
    -------
    indptr : ndarray, int64, shape ``[n+1]``
    indices : ndarray, int32, shape ``[n*k]``, neighbours sorted within a row.

    Raises
    ------
    ValueError
        naming the parameter, its value and what is allowed.

    Runs in a ``nogil`` numba function in O(n k).
    """
    k = require_int("k", k, "that is even and >= 2")
    if k < 2 or k % 2:
        raise ValueError(f"invalid k={k}: must be an integer that is even and >= 2")
    n = require_int("n", n, f"with k < n <= {MAX_NODES} (k={k})")
    if not k < n <= MAX_NODES:
        raise ValueError(f"invalid n={n}: must be an integer with k < n <= {MAX_NODES} (k={k})")
    prob = require_real("p", p, "in [0, 1]")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"invalid p={p!r}: must be a finite number in [0, 1]")
    seed = require_int("seed", seed, "in [0, 2**64)")
    if not 0 <= seed < 2**64:
        raise ValueError(f"invalid seed={seed}: must be an integer in [0, 2**64)")
    # Fixed argument types so there is exactly one compiled (and cached) variant.
    return _ws_csr(np.int64(n), np.int64(k), np.float64(prob), np.uint64(seed))
