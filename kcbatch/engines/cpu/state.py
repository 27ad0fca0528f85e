"""What both CPU passes (numba ``engine.py``, native ``native.py``) share around
the integration: the start state, the order parameter's sampling, and new
couplings and sub-batches, which rebuild a simulation from its phases."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np

from kcbatch.engines.cpu.trig import sincos_array
from kcbatch.engines.stepping import SteppingSimulation
from kcbatch.engines.steps import checked_couplings, select_networks
from kcbatch.inputs.batch import Batch


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


class HostSimulation(SteppingSimulation):
    """A CPU pass's :class:`~kcbatch.engines.protocols.Simulation`: it has
    ``batch``, ``couplings [B, nK]``, ``S``/``C [R, nK]``, :meth:`phases`, and
    ``_load(batch)`` / ``_state(theta, S0, C0)`` to (re)build its arrays."""

    batch: Batch
    couplings: np.ndarray  # [B, nK]

    def _load(self, batch: Batch) -> None:
        raise NotImplementedError

    def _state(self, theta: np.ndarray, S0: np.ndarray, C0: np.ndarray) -> None:
        raise NotImplementedError

    @property
    def S(self) -> np.ndarray:
        """sin of the current phases, ``[R, nK]``."""
        raise NotImplementedError

    @property
    def C(self) -> np.ndarray:
        """cos of the current phases, ``[R, nK]``."""
        raise NotImplementedError

    def phases(self) -> np.ndarray:
        """The current phases ``[R, nK]``."""
        raise NotImplementedError

    def set_couplings(self, couplings: np.ndarray) -> None:
        # the graph stays; every later step reads the new array
        self.couplings = checked_couplings(self.batch, couplings)
        self.batch = dataclasses.replace(self.batch, couplings=self.couplings)

    def retain(self, networks: np.ndarray) -> None:
        sub, rows = select_networks(self.batch, networks)
        theta, S0, C0 = self.phases()[rows], self.S[rows], self.C[rows]
        # the couplings in use, which need not be the batch's any more
        couplings = np.ascontiguousarray(self.couplings[np.asarray(networks, dtype=np.int64)])
        self._load(sub)
        self.couplings = couplings
        self._state(theta, S0, C0)

    def take(self, batch: Batch, rows: np.ndarray, cols: np.ndarray) -> HostSimulation:
        theta, S0, C0 = self.phases()[rows, cols], self.S[rows, cols], self.C[rows, cols]
        new = copy.copy(self)  # the engine's settings; every array is replaced below
        new._load(batch)
        new._state(theta, S0, C0)
        return new
