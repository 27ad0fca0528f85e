"""The study's network models by name: ``m`` sets the size of every one.

| name       | generator                          | size from ``m``                  |
|------------|------------------------------------|----------------------------------|
| ``ba``     | ``barabasi_albert(n, m, seed)``    | m edges per new node             |
| ``er``     | ``erdos_renyi(n, 2m, seed)``       | mean degree 2m                   |
| ``ws``     | ``watts_strogatz(n, 2m, ws_p, seed)`` | ring of 2m neighbours, rewired with ws_p |
| ``powerlaw`` | ``powerlaw(n, gamma, m, seed)``  | minimum degree m, exponent gamma |

All four give about ``n m`` edges (the power law ``n <k> / 2`` with
``<k> = m (gamma-1)/(gamma-2)`` for large n), so ``m`` compares like with like.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from kcbatch.inputs.graphs.ba import barabasi_albert
from kcbatch.inputs.graphs.er import erdos_renyi
from kcbatch.inputs.graphs.powerlaw import powerlaw
from kcbatch.inputs.graphs.ws import watts_strogatz

# The one table of models (CLI choices, config validation).
GRAPH_MODELS = ("ba", "er", "ws", "powerlaw")
# The models that read ws_p / gamma; every other model refuses a non-default value.
USES_WS_P = ("ws",)
USES_GAMMA = ("powerlaw",)

CSR = tuple[np.ndarray, np.ndarray]

_GENERATORS: dict[str, Callable[[int, int, float, float, int], CSR]] = {
    "ba": lambda n, m, ws_p, gamma, seed: barabasi_albert(n, m, seed),
    "er": lambda n, m, ws_p, gamma, seed: erdos_renyi(n, 2 * m, seed),
    "ws": lambda n, m, ws_p, gamma, seed: watts_strogatz(n, 2 * m, ws_p, seed),
    "powerlaw": lambda n, m, ws_p, gamma, seed: powerlaw(n, gamma, m, seed),
}


def generate(model: str, n: int, m: int, seed: int, *, ws_p: float = 0.1,
             gamma: float = 3.0) -> CSR:
    """The network of ``model`` on ``n`` nodes with size parameter ``m``, as CSR
    (``indptr`` int64 ``[n+1]``, ``indices`` int32 ``[2E]``); a pure function
    of its arguments. ValueError for an unknown model or out-of-range sizes."""
    try:
        make = _GENERATORS[model]
    except (KeyError, TypeError):
        raise ValueError(f"invalid graph={model!r}: must be one of "
                         f"{', '.join(GRAPH_MODELS)}") from None
    return make(n, m, ws_p, gamma, seed)


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
