"""The package's CSR form of an undirected graph, and helpers over it.

Every graph in kcbatch is undirected and stored as CSR ``(indptr, indices)``:

  indptr   [n+1]   int64   row pointers; row ``i`` is ``indices[indptr[i]:indptr[i+1]]``
  indices  [2*E]   int32   neighbour ids, strictly increasing within a row
                           (so no duplicates), never the row itself (no self-loops)

Each undirected edge ``{u, v}`` appears twice, once in row ``u`` and once in
row ``v``.
"""
from __future__ import annotations

import math
import numbers

import numba
import numpy as np

from kcbatch.protocol.models import MAX_NODES

__all__ = ["MAX_NODES", "from_networkx", "graph_stats", "require_int", "require_real",
           "simple_csr_from_edges"]

# indices are int32, so node ids must fit in it.


def require_int(name: str, value, allowed: str) -> int:
    """``value`` as a Python int, or ValueError naming ``name``, the value and ``allowed``."""
    # bool is an Integral, but True as a node count is a bug, not a 1.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"invalid {name}={value!r}: must be an integer {allowed}")
    return int(value)


def require_real(name: str, value, allowed: str) -> float:
    """Finite ``value`` as a Python float, or ValueError naming ``name``, the value and
    ``allowed``."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
            or not math.isfinite(value)):
        raise ValueError(f"invalid {name}={value!r}: must be a finite number {allowed}")
    return float(value)


@numba.njit(cache=True, nogil=True)
def simple_csr_from_edges(n, src, dst, n_edges):
    """Sorted CSR of the simple graph behind an edge list, in O(n + E).

    ``src``, ``dst`` int32 arrays whose first ``n_edges`` entries are edges
    ``{src[j], dst[j]}`` on nodes ``0..n-1`` (the rest is ignored, so callers
    may pass an over-allocated buffer). Self-loops are dropped; an edge given
    more than once (in either orientation) is kept once.

    Returns ``(indptr int64 [n+1], indices int32 [2E], self_loops, duplicates)``
    with the counts of entries dropped for each reason.

    Rows come out sorted without a comparison sort: both orientations of each
    edge are counting-sorted by column, then stably by row (a two-pass radix
    sort), so each row's columns arrive ascending and repeats sit side by side.
    numba caches this in the callers' files: touch them after editing here.
    """
    self_loops = 0
    by_col = np.zeros(n + 1, dtype=np.int64)
    for j in range(n_edges):
        a = src[j]
        b = dst[j]
        if a == b:
            self_loops += 1
        else:
            by_col[a + 1] += 1
            by_col[b + 1] += 1
    for i in range(n):
        by_col[i + 1] += by_col[i]
    n_arcs = by_col[n]
    arc_row = np.empty(n_arcs, dtype=np.int32)
    arc_col = np.empty(n_arcs, dtype=np.int32)
    for j in range(n_edges):
        a = src[j]
        b = dst[j]
        if a != b:
            k = by_col[b]
            arc_row[k] = a
            arc_col[k] = b
            by_col[b] += 1
            k = by_col[a]
            arc_row[k] = b
            arc_col[k] = a
            by_col[a] += 1

    indptr = np.zeros(n + 1, dtype=np.int64)
    for k in range(n_arcs):
        indptr[arc_row[k] + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    indices = np.empty(n_arcs, dtype=np.int32)
    for k in range(n_arcs):
        r = arc_row[k]
        indices[fill[r]] = arc_col[k]
        fill[r] += 1

    # Drop repeats in place: a repeated edge is repeated in both its rows.
    out = 0
    start = 0
    for i in range(n):
        stop = indptr[i + 1]
        row_start = out
        for k in range(start, stop):
            if out == row_start or indices[out - 1] != indices[k]:
                indices[out] = indices[k]
                out += 1
        start = stop
        indptr[i + 1] = out
    duplicates = (n_arcs - out) // 2
    if out < n_arcs:
        indices = indices[:out].copy()
    return indptr, indices, self_loops, duplicates


def graph_stats(indptr: np.ndarray, indices: np.ndarray) -> dict:
    """Degree summary of an undirected CSR graph (each edge stored in both rows).

    Returns ``{"nodes": int, "edges": int (undirected), "mean_k": float,
    "mean_k2": float (mean of k**2), "k_max": int}``.

    Raises ``ValueError`` for a graph without nodes (its means are undefined)
    or when ``indices`` does not match ``indptr``.
    """
    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    if indptr.ndim != 1 or indptr.shape[0] < 2:
        raise ValueError(f"invalid indptr with shape {indptr.shape}: need a 1-D array of "
                         f"n+1 >= 2 row pointers (a graph with at least one node)")
    nnz = int(indptr[-1])
    if indices.shape != (nnz,) or nnz % 2:
        raise ValueError(f"invalid indices with shape {indices.shape}: indptr[-1]={nnz} "
                         f"must equal its length and be even (each edge stored twice)")
    deg = np.diff(indptr).astype(np.int64)
    nodes = int(deg.shape[0])
    # Integer sums are exact; divide once at the end.
    return {
        "nodes": nodes,
        "edges": nnz // 2,
        "mean_k": float(deg.sum()) / nodes,
        "mean_k2": float((deg * deg).sum()) / nodes,
        "k_max": int(deg.max()),
    }


def from_networkx(G) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr int64 [n+1], indices int32 [2*E])`` of an undirected networkx graph.

    Row ``i`` is node ``list(G.nodes)[i]``; neighbours are sorted by row
    number. Directed graphs, multigraphs (parallel edges would be silently
    merged) and self-loops are rejected with ``ValueError``.
    """
    if G.is_directed():
        raise ValueError("invalid G: directed graphs are not supported; "
                         "pass an undirected graph (e.g. G.to_undirected())")
    if G.is_multigraph():
        raise ValueError("invalid G: multigraphs are not supported (parallel edges have no "
                         "CSR form without duplicates); pass nx.Graph(G)")
    nodes = list(G.nodes)
    n = len(nodes)
    if n > MAX_NODES:
        raise ValueError(f"invalid G: {n} nodes, at most {MAX_NODES} fit int32 indices")
    for u in nodes:
        if u in G.adj[u]:
            raise ValueError(f"invalid G: self-loop at node {u!r}; remove it first")
    row = {u: i for i, u in enumerate(nodes)}
    deg = np.fromiter((len(G.adj[u]) for u in nodes), dtype=np.int64, count=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(deg, out=indptr[1:])
    nnz = int(indptr[-1])
    indices = np.fromiter((row[v] for u in nodes for v in G.adj[u]), dtype=np.int32, count=nnz)
    # Adjacency dicts are in insertion order; sort each row by (row id, neighbour id).
    order = np.lexsort((indices, np.repeat(np.arange(n, dtype=np.int64), deg)))
    return indptr, indices[order]
