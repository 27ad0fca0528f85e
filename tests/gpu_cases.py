"""Shared random batches for the engine parity tests (GPU and gpu-sim)."""
from __future__ import annotations

import numpy as np

from kcbatch.graphs import barabasi_albert


def random_batch(n_graphs: int, nodes: int, m: int, seed: int):
    """``n_graphs`` BA graphs with Gaussian omega (sigma 0.5) and uniform theta0."""
    rng = np.random.default_rng(seed)
    graphs = [barabasi_albert(nodes, m, int(rng.integers(2**62))) for _ in range(n_graphs)]
    omega = rng.normal(0.0, 0.5, (n_graphs, nodes))
    theta0 = rng.uniform(0.0, 2 * np.pi, (n_graphs, nodes))
    return graphs, omega, theta0
