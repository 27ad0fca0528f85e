"""The package's CSR form of an undirected graph, and helpers over it.

Every graph in kcbatch is undirected and stored as CSR ``(indptr, indices)``:

  indptr   [n+1]   int64   row pointers; row ``i`` is ``indices[indptr[i]:indptr[i+1]]``
  indices  [2*E]   int32   neighbour ids, strictly increasing within a row
                           (so no duplicates), never the row itself (no self-loops)

Each undirected edge ``{u, v}`` appears twice, once in row ``u`` and once in
row ``v``.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["MAX_NODES", "from_networkx", "graph_stats", "require_int"]

# indices are int32, so node ids must fit in it.
MAX_NODES = 2**31 - 1


def require_int(name: str, value, allowed: str) -> int:
    """``value`` as a Python int, or ValueError naming ``name``, the value and ``allowed``."""
    # bool is an Integral, but True as a node count is a bug, not a 1.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"invalid {name}={value!r}: must be an integer {allowed}")
    return int(value)


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
