"""Network generators and graph helpers.

Every generator returns the package's CSR form (:mod:`kcbatch.networks.csr`):
``indptr`` int64 ``[n+1]``, ``indices`` int32 ``[2E]``, rows sorted, no
self-loops, each edge in both rows. Generators draw from :mod:`.rng` only, so a
graph is a pure function of its arguments and seed.

Models: :func:`barabasi_albert` (:mod:`.ba`), :func:`erdos_renyi` (:mod:`.er`),
:func:`watts_strogatz` (:mod:`.ws`), :func:`powerlaw` (:mod:`.powerlaw`, an
erased configuration model). Users' own networks: :func:`read_graph` and
:func:`read_graphs` (:mod:`.io`, edge lists and GraphML).
"""
from kcbatch.networks.ba import barabasi_albert
from kcbatch.networks.csr import MAX_NODES, from_networkx, graph_stats
from kcbatch.networks.er import erdos_renyi
from kcbatch.networks.io import (
    GRAPH_EXTENSIONS,
    GraphFile,
    GraphFileError,
    ReadReport,
    file_sha256,
    graph_files,
    read_graph,
    read_graphs,
)
from kcbatch.networks.powerlaw import PowerLawSample, powerlaw, powerlaw_sample
from kcbatch.networks.ws import watts_strogatz

__all__ = ["GRAPH_EXTENSIONS", "MAX_NODES", "GraphFile", "GraphFileError", "PowerLawSample",
           "ReadReport", "barabasi_albert", "erdos_renyi", "file_sha256", "from_networkx",
           "graph_files", "graph_stats", "powerlaw", "powerlaw_sample", "read_graph",
           "read_graphs", "watts_strogatz"]
