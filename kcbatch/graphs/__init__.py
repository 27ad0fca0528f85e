"""Network generators and graph helpers.

Every generator returns the package's CSR form (:mod:`kcbatch.graphs.csr`):
``indptr`` int64 ``[n+1]``, ``indices`` int32 ``[2E]``, rows sorted, no
self-loops, each edge in both rows. Generators draw from :mod:`.rng` only, so a
graph is a pure function of its arguments and seed.
"""
from .ba import barabasi_albert
from .csr import MAX_NODES, from_networkx, graph_stats

__all__ = ["MAX_NODES", "barabasi_albert", "from_networkx", "graph_stats"]
