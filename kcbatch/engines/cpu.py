"""CPU engine: the RK4 protocol over a packed batch, in numba.

This is the CPU twin of ``kernels/kuramoto.cu``, step for step, and runs the
same step loop (``IntegrationSpec.schedule``). Each RK4 stage
is one pass, ``_rk4_stage`` (mirrors the ``rk4_stage`` kernel): per row, gather
the neighbours' (sin, cos) of the stage point for all nK systems at once, form
the derivative with
``sum_j sin(t_j - t_i) = cos t_i sum_j sin t_j - sin t_i sum_j cos t_j``,
accumulate the RK4 weights, and write the (sin, cos) of the row's *next* stage
point (or, in the last stage, of the wrapped new phase) into the other buffer.

Trig dominates the CPU cost: numba's ``np.sin`` is scalar libm (~10
ns/element) and numpy's ufuncs need extra passes over memory, so the stage
uses :func:`kcbatch.engines.cpu_trig.sincos`, plain arithmetic that vectorises
over K. Rows are independent and each sums its neighbours in CSR order, so a
network's results do not depend on the batch it is in.

Sampling mirrors ``sample_partial`` + ``sample_finalize``: per (network, K),
``r = |sum_j exp(i theta_j)| / N_b`` accumulated in float64.
"""
from __future__ import annotations

import dataclasses

import numba
import numpy as np

from ..batch import Batch
from ..config import IntegrationSpec, StudyConfig
from .base import (HOST_AUTO_BATCH, StepProgress, SteppingSimulation, check_steps,
                   checked_couplings, network_edges, network_nodes, select_networks, systems_limit)
from .cpu_trig import fix_large, sincos, sincos_array

TWO_PI = 2.0 * np.pi
# Rows per parallel chunk: the per-row scratch is allocated once per chunk.
_CHUNK = 64
# Only flags that cannot change results: no reassociation or FMA contraction
# (the kernels are compiled without them too).
_FASTMATH = {"nnan", "ninf", "nsz"}


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def _rk4_stage(indptr, indices, weight, omega, row_net, couplings,  # graph: [R+1],[nnz],[R]x3,[B,nK]
               S_in, C_in,     # [R, nK] sin/cos of this stage's point
               S_out, C_out,   # [R, nK] out: sin/cos of the next stage point
               theta,          # [R, nK] phase at the start of the step (stage 3 updates it)
               acc,            # [R, nK] running sum f1 + 2 f2 + 2 f3
               stage, dt):
    """One RK4 stage for every (row, K) system (mirrors kernel ``rk4_stage``)."""
    n_rows, n_k = S_in.shape
    real = S_in.dtype.type
    half = real(0.5) * dt
    sixth = dt / real(6.0)
    two_pi = real(TWO_PI)
    n_chunks = (n_rows + _CHUNK - 1) // _CHUNK
    for chunk in numba.prange(n_chunks):
        ss = np.empty(n_k, dtype=S_in.dtype)
        cc = np.empty(n_k, dtype=S_in.dtype)
        for i in range(chunk * _CHUNK, min(n_rows, (chunk + 1) * _CHUNK)):
            _row_update(indptr, indices, weight, omega, row_net, couplings, S_in, C_in,
                        S_out, C_out, theta, acc, stage, dt, half, sixth, two_pi, i, ss, cc)


@numba.njit(cache=True, nogil=True, inline="always", fastmath=_FASTMATH)
def _row_update(indptr, indices, weight, omega, row_net, couplings, S_in, C_in, S_out, C_out,
                theta, acc, stage, dt, half, sixth, two_pi, i, ss, cc):
    real = S_in.dtype.type
    n_k = S_in.shape[1]
    ss[:] = 0
    cc[:] = 0
    for e in range(indptr[i], indptr[i + 1]):
        j = indices[e]
        for k in range(n_k):
            ss[k] += S_in[j, k]
            cc[k] += C_in[j, k]
    b = row_net[i]
    w_i = weight[i]
    om = omega[i]
    # ss becomes f, then the next point; the stage branch sits outside the K
    # loops so that they vectorise.
    for k in range(n_k):
        ss[k] = om + couplings[b, k] * w_i * (C_in[i, k] * ss[k] - S_in[i, k] * cc[k])
    if stage == 0:
        for k in range(n_k):
            acc[i, k] = ss[k]
            ss[k] = theta[i, k] + half * ss[k]
    elif stage == 1:
        for k in range(n_k):
            acc[i, k] += real(2.0) * ss[k]
            ss[k] = theta[i, k] + half * ss[k]
    elif stage == 2:
        for k in range(n_k):
            acc[i, k] += real(2.0) * ss[k]
            ss[k] = theta[i, k] + dt * ss[k]
    else:
        for k in range(n_k):
            t = theta[i, k] + sixth * (acc[i, k] + ss[k])
            t = t - two_pi * np.floor(t / two_pi)
            # floor rounding can leave t == 2pi or a hair below 0
            if t >= two_pi:
                t -= two_pi
            if t < real(0.0):
                t += two_pi
            theta[i, k] = t
            ss[k] = t
    for k in range(n_k):
        S_out[i, k], C_out[i, k] = sincos(ss[k])
    fix_large(ss, S_out[i], C_out[i])


def order_parameter(S: np.ndarray, C: np.ndarray, node_offset: np.ndarray) -> np.ndarray:
    """r[b, k] = |sum over network b's rows of (C + iS)| / N_b, float64 [B, nK]
    (mirrors ``sample_partial`` + ``sample_finalize``)."""
    starts = node_offset[:-1]
    sc = np.add.reduceat(C, starts, axis=0, dtype=np.float64)
    ss = np.add.reduceat(S, starts, axis=0, dtype=np.float64)
    n = np.diff(node_offset).astype(np.float64)[:, None]
    return np.hypot(sc, ss) / n


class CpuEngine:
    """Integrates a :class:`Batch` on the CPU with all cores (numba threads).

    It has no fast-math mode: its trig is one implementation (``cpu_trig``)."""

    name = "cpu"

    def start(self, batch: Batch, dt: float) -> "CpuSimulation":
        return CpuSimulation(batch, dt)

    def integrate(self, batch: Batch, spec: IntegrationSpec,
                  progress: StepProgress | None = None) -> np.ndarray:
        """Run the protocol; returns samples ``[B, nK, n_samples]`` float64.

        ``progress``, if given, is called after each RK4 step with the steps done."""
        sim = self.start(batch, spec.dt)
        sim.advance(spec.n_transient, progress)
        return sim.measure(spec.n_measure, spec.sample_every, progress)

    def batch_limit(self, cfg: StudyConfig) -> int:
        return systems_limit(cfg)

    def auto_batch(self, cfg: StudyConfig) -> int:
        return HOST_AUTO_BATCH

    def predict_bytes(self, cfg: StudyConfig, batch: int) -> int:
        """Host bytes of :meth:`integrate`'s arrays and the packed batch."""
        it = np.dtype(cfg.real_dtype).itemsize
        rows = batch * network_nodes(cfg)
        nnz = batch * 2 * network_edges(cfg)
        state = rows * cfg.k_num * it * 6  # theta, acc, S[2], C[2]
        graph = (rows + 1) * 8 + nnz * 4 + rows * (4 + 3 * it) + (batch + 1) * 8
        return state + graph + batch * cfg.k_num * (it + cfg.spec.n_samples * 8)

    def describe(self) -> str:
        return f"cpu: numba, {numba.get_num_threads()} threads"

    def release_memory(self) -> None:
        pass

    def memory_in_use(self) -> int | None:
        return None


class CpuSimulation(SteppingSimulation):
    """:class:`~kcbatch.engines.base.Simulation` on the CPU: the state of
    :meth:`CpuEngine.integrate`, continued in pieces."""

    def __init__(self, batch: Batch, dt: float):
        self.dt = batch.dtype.type(dt)
        self.steps = 0
        self._load(batch)
        theta = np.repeat(batch.theta0[:, None], batch.n_k, axis=1)   # [R, nK]
        S0, C0 = np.empty_like(theta), np.empty_like(theta)
        sincos_array(theta.reshape(-1), S0.reshape(-1), C0.reshape(-1))
        self._state(theta, S0, C0)

    def _load(self, batch: Batch) -> None:
        self.batch = batch
        self.graph = (batch.indptr, batch.indices, batch.weight, batch.omega, batch.row_net,
                      batch.couplings)

    def _state(self, theta: np.ndarray, S0: np.ndarray, C0: np.ndarray) -> None:
        # Double-buffered (sin, cos): stage s reads buffer s % 2, writes the other;
        # the second buffers and acc are scratch rewritten every step.
        self.theta = theta
        self.S = (S0, np.empty_like(theta))
        self.C = (C0, np.empty_like(theta))
        self.acc = np.empty_like(theta)

    def _step(self) -> None:
        S, C = self.S, self.C
        for stage in range(4):
            _rk4_stage(*self.graph, S[stage % 2], C[stage % 2], S[1 - stage % 2],
                       C[1 - stage % 2], self.theta, self.acc, stage, self.dt)
        self.steps += 1

    def measure(self, n_steps: int, sample_every: int,
                progress: StepProgress | None = None) -> np.ndarray:
        check_steps(n_steps, sample_every)
        samples = np.empty((self.batch.n_networks, self.batch.n_k,
                            -(-n_steps // sample_every)), dtype=np.float64)  # [B, nK, nS]
        for s in range(n_steps):
            self._step()
            if s % sample_every == 0:
                samples[:, :, s // sample_every] = order_parameter(
                    self.S[0], self.C[0], self.batch.node_offset)
            if progress is not None:
                progress(self.steps)
        return samples

    def set_couplings(self, couplings: np.ndarray) -> None:
        new = checked_couplings(self.batch, couplings)
        self._load(dataclasses.replace(self.batch, couplings=new))

    def retain(self, networks: np.ndarray) -> None:
        sub, rows = select_networks(self.batch, networks)
        theta, S0, C0 = self.theta[rows], self.S[0][rows], self.C[0][rows]
        self._load(sub)
        self._state(theta, S0, C0)
