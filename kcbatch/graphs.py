"""Barabási–Albert networks as CSR arrays, generated in numba.

Every graph here is undirected and stored as CSR ``(indptr, indices)``:

  indptr   [n+1]   int64   row pointers; row ``i`` is ``indices[indptr[i]:indptr[i+1]]``
  indices  [2*E]   int32   neighbour ids, strictly increasing within a row
                           (so no duplicates), never the row itself (no self-loops)

Each undirected edge ``{u, v}`` appears twice, once in row ``u`` and once in
row ``v``.

Random numbers come from xoshiro256** (Blackman & Vigna) seeded through
splitmix64, both implemented below as ``njit`` functions over an explicit
``uint64[4]`` state. Keeping the state in an array we own (rather than numba's
``np.random``, which is one hidden stream per thread) makes a graph a pure
function of ``(n, m, seed)``: the same in any thread, process or batch order.
That stream, and the order in which the generator consumes it, are part of the
contract: a recorded ``graph_seed`` must rebuild the same graph later.
"""
from __future__ import annotations

import numbers

import numba
import numpy as np

__all__ = ["barabasi_albert", "graph_stats", "from_networkx"]

# indices are int32, so node ids must fit in it.
MAX_NODES = 2**31 - 1

_U64 = np.uint64
# numba types ``uint64 <op> int64`` as float64, so every operand that meets a
# uint64 is a uint64 constant, shift counts included.
_SM_GAMMA = _U64(0x9E3779B97F4A7C15)
_SM_MUL1 = _U64(0xBF58476D1CE4E5B9)
_SM_MUL2 = _U64(0x94D049BB133111EB)
_U1 = _U64(1)
_U5 = _U64(5)
_U7 = _U64(7)
_U9 = _U64(9)
_U17 = _U64(17)
_U27 = _U64(27)
_U30 = _U64(30)
_U31 = _U64(31)
_U32 = _U64(32)
_U45 = _U64(45)
_MASK32 = _U64(0xFFFFFFFF)
_TWO32 = _U64(1 << 32)


@numba.njit(cache=True, nogil=True)
def _splitmix64_next(sm):
    """Advance the splitmix64 state ``sm`` (uint64[1], in place); return the next output."""
    sm[0] += _SM_GAMMA
    z = sm[0]
    z = (z ^ (z >> _U30)) * _SM_MUL1
    z = (z ^ (z >> _U27)) * _SM_MUL2
    return z ^ (z >> _U31)


@numba.njit(cache=True, nogil=True)
def _xoshiro_seed(seed):
    """xoshiro256** state (uint64[4]) for a uint64 ``seed``.

    Filled from splitmix64 as the xoshiro authors recommend: it spreads
    nearby seeds (0, 1, 2, ...) over unrelated states and, being a bijection
    of its counter, never yields the all-zero state xoshiro cannot leave.
    """
    sm = np.empty(1, dtype=np.uint64)
    sm[0] = seed
    s = np.empty(4, dtype=np.uint64)
    for i in range(4):
        s[i] = _splitmix64_next(sm)
    return s


@numba.njit(cache=True, nogil=True)
def _rotl(x, k):
    return (x << k) | (x >> (_U64(64) - k))


@numba.njit(cache=True, nogil=True)
def _xoshiro_next(s):
    """Advance the xoshiro256** state ``s`` (uint64[4], in place); return the next uint64."""
    result = _rotl(s[1] * _U5, _U7) * _U9
    t = s[1] << _U17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], _U45)
    return result


@numba.njit(cache=True, nogil=True)
def _uniform_below(s, bound):
    """Uniform integer in ``[0, bound)`` (``bound`` int64 >= 1), without modulo bias.

    Bounds below 2**32 (every realistic repeated-node list) use Lemire's
    multiply-shift on the top 32 bits of one draw: ``(x * bound) >> 32`` maps
    ``[0, 2**32)`` onto ``[0, bound)``; the few ``x`` whose low product half
    falls below ``2**32 mod bound`` are the excess that would bias small
    values, so they are redrawn. The modulo is only computed on that rare
    path. Larger bounds fall back to masking to the next power of two and
    rejecting values >= bound (at most half the draws).
    """
    b = _U64(bound)
    if b <= _MASK32:
        # The high bits of xoshiro256** are its best ones.
        prod = (_xoshiro_next(s) >> _U32) * b
        low = prod & _MASK32
        if low < b:
            threshold = (_TWO32 - b) % b
            while low < threshold:
                prod = (_xoshiro_next(s) >> _U32) * b
                low = prod & _MASK32
        return np.int64(prod >> _U32)
    mask = b - _U1
    shift = _U1
    while shift < _U64(64):
        mask |= mask >> shift
        shift <<= _U1
    while True:
        x = _xoshiro_next(s) & mask
        if x < b:
            return np.int64(x)


@numba.njit(cache=True, nogil=True)
def _ba_csr(n, m, seed):
    """BA(n, m) from ``seed`` as CSR; see :func:`barabasi_albert` for the process.

    Edges are recorded as ``(new node, older node)`` in the order they are
    made (the star's ``(i, 0)`` first, then each new node's ``m`` targets,
    ascending), which is what makes the CSR fill below come out sorted.
    """
    state = _xoshiro_seed(seed)
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
            t = repeated[_uniform_below(state, n_rep)]
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
        for j in range(m):
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


def _require_int(name: str, value, allowed: str) -> int:
    # bool is an Integral, but True as a node count is a bug, not a 1.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"invalid {name}={value!r}: must be an integer {allowed}")
    return int(value)


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
    picked, so the minimum degree can be below ``m`` (as in networkx). Only the random stream differs
    from networkx, so graphs follow the same distribution but are not the
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
    m = _require_int("m", m, ">= 1")
    if m < 1:
        raise ValueError(f"invalid m={m}: must be an integer >= 1")
    n = _require_int("n", n, f"with m < n <= {MAX_NODES} (m={m})")
    if not m < n <= MAX_NODES:
        raise ValueError(f"invalid n={n}: must be an integer with m < n <= {MAX_NODES} (m={m})")
    seed = _require_int("seed", seed, "in [0, 2**64)")
    if not 0 <= seed < 2**64:
        raise ValueError(f"invalid seed={seed}: must be an integer in [0, 2**64)")
    # Fixed argument types so there is exactly one compiled (and cached) variant.
    return _ba_csr(np.int64(n), np.int64(m), np.uint64(seed))


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
