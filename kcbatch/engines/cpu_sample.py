"""What both CPU passes (numba ``cpu.py``, native ``cpu_native.py``) share around
the integration: the start state and the order parameter's sampling."""
from __future__ import annotations

import numpy as np

from ..batch import Batch
from .cpu_trig import sincos_array


def start_phases(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``theta0`` for every K and its (sin, cos): three ``[R, nK]`` arrays
    (mirrors kernel ``init_state``, with the CPU engine's trig)."""
    theta = np.repeat(batch.theta0[:, None], batch.n_k, axis=1)
    S0, C0 = np.empty_like(theta), np.empty_like(theta)
    sincos_array(theta.reshape(-1), S0.reshape(-1), C0.reshape(-1))
    return theta, S0, C0


def order_parameter(S: np.ndarray, C: np.ndarray, node_offset: np.ndarray) -> np.ndarray:
    """r[b, k] = |sum over network b's rows of (C + iS)| / N_b, float64 [B, nK]
    (mirrors ``sample_partial`` + ``sample_finalize``)."""
    starts = node_offset[:-1]
    sc = np.add.reduceat(C, starts, axis=0, dtype=np.float64)
    ss = np.add.reduceat(S, starts, axis=0, dtype=np.float64)
    n = np.diff(node_offset).astype(np.float64)[:, None]
    return np.hypot(sc, ss) / n
