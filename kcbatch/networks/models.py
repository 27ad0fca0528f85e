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

from collections.abc import Callable

import numpy as np

from kcbatch.networks.ba import barabasi_albert
from kcbatch.networks.er import erdos_renyi
from kcbatch.networks.powerlaw import powerlaw
from kcbatch.networks.ws import watts_strogatz
from kcbatch.protocol.choices import GraphModel
from kcbatch.protocol.models import model as model_record

CSR = tuple[np.ndarray, np.ndarray]

_GENERATORS: dict[GraphModel, Callable[[int, int, float, float, int], CSR]] = {
    GraphModel.BA: lambda n, m, ws_p, gamma, seed: barabasi_albert(n, m, seed),
    GraphModel.ER: lambda n, m, ws_p, gamma, seed: erdos_renyi(n, 2 * m, seed),
    GraphModel.WS: lambda n, m, ws_p, gamma, seed: watts_strogatz(n, 2 * m, ws_p, seed),
    GraphModel.POWERLAW: lambda n, m, ws_p, gamma, seed: powerlaw(n, gamma, m, seed),
}


def generate(model: str, n: int, m: int, seed: int, *, ws_p: float = 0.1,
             gamma: float = 3.0) -> CSR:
    """The network of ``model`` on ``n`` nodes with size parameter ``m``, as CSR
    (``indptr`` int64 ``[n+1]``, ``indices`` int32 ``[2E]``); a pure function
    of its arguments. ValueError for an unknown model or out-of-range sizes."""
    make = _GENERATORS[model_record(model).name]
    return make(n, m, ws_p, gamma, seed)
