"""Coupling normalisations: the per-node weight ``w_i`` of

    dtheta_i/dt = omega_i + K w_i sum_j A_ij sin(theta_j - theta_i)

* ``degree``: 1 / max(k_i, 1), the original study: each node follows the mean
  phase of its neighbours;
* ``raw``: 1, the plain network Kuramoto model (hubs lead; Kc ~ <k>/<k^2>);
* ``mean-degree``: 1 / <k>, raw coupling rescaled by the network's mean degree
  <k> = 2E/N;
* ``global``: 1 / N, the all-to-all model's normalisation kept on the network.

``<k>`` and ``N`` are those of the node's own network, so a batch of networks
of different sizes gets each network's own weights. Weights are computed in
float64; the batch rounds them to its precision once (``batch.pack``).
"""
from __future__ import annotations

import numpy as np

from kcbatch.protocol.choices import Coupling

# The one table of coupling normalisations (CLI choices, config validation).
COUPLINGS = tuple(str(c) for c in Coupling)


def check_coupling(coupling: object) -> Coupling:
    """``coupling`` as its member; ValueError naming the value and the choices
    unless it is one of COUPLINGS. The check at the edge (``pack``); what comes
    after takes the member unchecked."""
    if not isinstance(coupling, str) or coupling not in COUPLINGS:
        raise ValueError(f"invalid coupling={coupling!r}: must be one of {', '.join(COUPLINGS)}")
    return Coupling(coupling)


def row_weights(degree: np.ndarray, node_offset: np.ndarray, coupling: Coupling) -> np.ndarray:
    """``w_i`` of every row of a batch, float64 ``[R]``.

    degree: ``[R]`` integer degrees k_i; node_offset: ``[B+1]`` first row of each
    network (every network has at least one row); coupling: a checked member
    (:func:`check_coupling` at the edge), not checked again. For
    ``mean-degree`` a network without edges (``<k> = 0``) gets ``w = 1``: its
    coupling sums are all zero, so any finite weight gives the same dynamics.
    """
    deg = np.asarray(degree)
    if coupling == Coupling.DEGREE:
        return 1.0 / np.maximum(deg, 1)
    if coupling == Coupling.RAW:
        return np.ones(deg.shape[0], dtype=np.float64)
    sizes: np.ndarray = np.diff(np.asarray(node_offset, dtype=np.int64))  # [B] nodes per network
    if coupling == Coupling.GLOBAL:
        return np.repeat(1.0 / sizes.astype(np.float64), sizes)
    # 1/<k> = N / sum_i k_i = N / 2E, one rounding
    sums = np.add.reduceat(deg.astype(np.float64), np.asarray(node_offset[:-1], dtype=np.int64))
    w = sizes / np.where(sums > 0, sums, 1.0)
    return np.repeat(np.where(sums > 0, w, 1.0), sizes)


def max_weighted_degree(degree: np.ndarray, node_offset: np.ndarray,
                        coupling: Coupling) -> np.ndarray:
    """``max_i (w_i k_i)`` of each network, float64 ``[B]``: the graph's part of
    the RK4 stability bound (``config.max_stable_dt``). 0 for a network
    without edges. ``coupling``: a checked member, as for :func:`row_weights`."""
    deg = np.asarray(degree)
    wk = row_weights(deg, node_offset, coupling) * deg
    return np.maximum.reduceat(wk, np.asarray(node_offset[:-1], dtype=np.int64))
