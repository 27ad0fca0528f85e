"""The network models a study may name (``graph=``), as the protocol sees them:
the parameters each reads, the fewest nodes each allows, and the edges each
is expected to have. The generators are in :mod:`kcbatch.networks.models`.
"""
from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["GRAPH_MODELS", "MAX_NODES", "USES_GAMMA", "USES_WS_P", "expected_edges", "min_nodes"]

# Node ids are int32 in the CSR arrays and the kernels.
MAX_NODES = 2**31 - 1
# The one table of models (CLI choices, config validation).
GRAPH_MODELS = ("ba", "er", "ws", "powerlaw")
# The models that read ws_p / gamma; every other model refuses a non-default value.
USES_WS_P = ("ws",)
USES_GAMMA = ("powerlaw",)


def min_nodes(model: str, m: int) -> tuple[int, str, str]:
    """The fewest nodes ``model`` allows with size ``m``, the size it must exceed
    as text (``"m=3"``, ``"2m=6"``) and why (for messages)."""
    if model in ("er", "ws"):
        why = ("the ER mean degree 2m must be <= nodes - 1" if model == "er"
               else "the WS ring of 2m neighbours needs 2m < nodes")
        return 2 * m + 1, f"2m={2 * m}", why
    if model == "powerlaw":
        return m + 1, f"m={m}", "the power law's minimum degree m needs m < nodes"
    return m + 1, f"m={m}", "the BA seed star has m+1 nodes"


def expected_edges(model: str, n: int, m: int, gamma: float = 3.0) -> int:
    """Undirected edges one network of ``model`` is expected to have (exact for
    ``ba`` and ``ws``; the mean for ``er``; for ``powerlaw`` the mean of the
    drawn degree sequence before erasing, an upper bound of the mean after).
    For memory estimates and the batch cap, which must not depend on a draw."""
    if model == "ba":
        return m + (n - m - 1) * m
    if model == "ws":
        return n * m
    if model == "er":
        return math.ceil(n * m)  # C(n,2) * 2m/(n-1)
    return math.ceil(n * _powerlaw_mean_degree(n, m, float(gamma)) / 2)


# Degrees summed term by term up to here, the rest of the tail by its integral.
_EXPLICIT_DEGREES = 100_000


@functools.lru_cache(maxsize=64)
def _powerlaw_mean_degree(n: int, m: int, gamma: float) -> float:
    """Mean of P(k) ~ k**-gamma on [m, n-1] (the drawn degrees)."""
    top = min(n - 1, m + _EXPLICIT_DEGREES)
    k = np.arange(m, top + 1, dtype=np.float64)
    w = (k / m) ** -gamma
    num, den = float(np.sum(k * w)), float(np.sum(w))
    if top < n - 1:
        # the tail by the midpoint rule: x**(1-gamma), x**-gamma over (top+1/2, n-1/2)
        a, b = (top + 0.5) / m, (n - 0.5) / m
        num += m * m * (a ** (2 - gamma) - b ** (2 - gamma)) / (gamma - 2)
        den += m * (a ** (1 - gamma) - b ** (1 - gamma)) / (gamma - 1)
    return num / den
