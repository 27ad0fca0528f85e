"""The network models a study may name (``graph=``), as the protocol sees them:
the parameters each reads, the fewest nodes each allows, and the edges each
is expected to have. The generators are in :mod:`kcbatch.networks.models`.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kcbatch.protocol.choices import GraphModel

__all__ = ["GRAPH_MODELS", "MAX_NODES", "MODELS", "ModelRecord", "USES_GAMMA", "USES_WS_P",
           "expected_edges", "min_nodes", "model"]

# Node ids are int32 in the CSR arrays and the kernels.
MAX_NODES = 2**31 - 1


@dataclass(frozen=True)
class ModelRecord:
    """One network model as the protocol sees it.

    ``name``: the model (``graph=``); ``reads``: the optional parameters it
    reads besides ``nodes`` and ``m`` (every other model refuses a changed
    value of them); ``size_factor``: the model's size is ``size_factor * m``
    (``"m"`` or ``"2m"`` in messages) and ``nodes`` must exceed it; ``why``:
    the reason, for messages; ``edges(n, m, gamma)``: the undirected edges one
    network is expected to have (see :func:`expected_edges`)."""

    name: GraphModel
    reads: tuple[str, ...]
    size_factor: int
    why: str
    edges: Callable[[int, int, float], int]

    def min_nodes(self, m: int) -> tuple[int, str, str]:
        """The fewest nodes this model allows with size ``m``, the size it must
        exceed as text (``"m=3"``, ``"2m=6"``) and why."""
        size = self.size_factor * m
        shown = f"m={m}" if self.size_factor == 1 else f"{self.size_factor}m={size}"
        return size + 1, shown, self.why


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


# The one table of models (CLI choices, config validation, memory estimates).
MODELS: dict[GraphModel, ModelRecord] = {rec.name: rec for rec in (
    ModelRecord(GraphModel.BA, (), 1, "the BA seed star has m+1 nodes",
                lambda n, m, gamma: m + (n - m - 1) * m),
    ModelRecord(GraphModel.ER, (), 2, "the ER mean degree 2m must be <= nodes - 1",
                lambda n, m, gamma: math.ceil(n * m)),  # C(n,2) * 2m/(n-1)
    ModelRecord(GraphModel.WS, ("ws_p",), 2, "the WS ring of 2m neighbours needs 2m < nodes",
                lambda n, m, gamma: n * m),
    ModelRecord(GraphModel.POWERLAW, ("gamma",), 1,
                "the power law's minimum degree m needs m < nodes",
                lambda n, m, gamma: math.ceil(n * _powerlaw_mean_degree(n, m, float(gamma)) / 2)),
)}
GRAPH_MODELS = tuple(str(name) for name in MODELS)
# The models that read ws_p / gamma; every other model refuses a non-default value.
USES_WS_P = tuple(str(r.name) for r in MODELS.values() if "ws_p" in r.reads)
USES_GAMMA = tuple(str(r.name) for r in MODELS.values() if "gamma" in r.reads)


def model(name: str) -> ModelRecord:
    """The record of model ``name``; ValueError naming the value and the choices."""
    try:
        return MODELS[GraphModel(name)]
    except (ValueError, TypeError):
        raise ValueError(f"invalid graph={name!r}: must be one of "
                         f"{', '.join(GRAPH_MODELS)}") from None


def min_nodes(name: str, m: int) -> tuple[int, str, str]:
    """The fewest nodes model ``name`` allows with size ``m``, the size it must
    exceed as text (``"m=3"``, ``"2m=6"``) and why (for messages)."""
    return model(name).min_nodes(m)


def expected_edges(name: str, n: int, m: int, gamma: float = 3.0) -> int:
    """Undirected edges one network of model ``name`` is expected to have (exact
    for ``ba`` and ``ws``; the mean for ``er``; for ``powerlaw`` the mean of the
    drawn degree sequence before erasing, an upper bound of the mean after).
    For memory estimates and the batch cap, which must not depend on a draw."""
    return model(name).edges(n, m, gamma)
