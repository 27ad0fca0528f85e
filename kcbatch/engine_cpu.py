"""CPU engine: the RK4 protocol over a packed batch, numpy trig + numba gathers.

This is the CPU twin of ``kernels/kuramoto.cu``. Each RK4 stage is the same two
phases as on the GPU:

1. trig of the stage point: ``S, C = sin(P), cos(P)`` over ``[R, nK]`` —
   numpy's float32 ``sin``/``cos`` are SIMD (~0.5 ns/element) while numba's
   are scalar libm (~10 ns/element), so this phase stays in numpy
   (the kernel computes it at the end of ``rk4_stage`` instead);
2. ``_rk4_stage`` (mirrors the ``rk4_stage`` kernel): per row, gather the
   neighbours' (sin, cos) for all nK systems at once, form the derivative with
   ``sum_j sin(t_j - t_i) = cos t_i sum_j sin t_j - sin t_i sum_j cos t_j``,
   accumulate the RK4 weights and write the next stage point (or, in the last
   stage, the wrapped new phase).

Sampling mirrors ``sample_partial`` + ``sample_finalize``: per (network, K),
``r = |sum_j exp(i theta_j)| / N_b`` accumulated in float64.
"""
from __future__ import annotations

import numba
import numpy as np

from .batch import Batch
from .config import IntegrationSpec

TWO_PI = 2.0 * np.pi
_CHUNK = 64


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=False)
def _rk4_stage(indptr, indices, inv_deg, omega, row_net, couplings,  # graph, per row / [B, nK]
               S, C,           # [R, nK] sin/cos of this stage's point
               theta,          # [R, nK] phase at the start of the step
               acc,            # [R, nK] running sum f1 + 2 f2 + 2 f3
               point,          # [R, nK] out: next stage point (stages 0-2)
               stage, dt):
    """One RK4 stage (mirrors kernel ``rk4_stage``); stage 3 updates ``theta``."""
    n_rows, n_k = S.shape
    real = S.dtype.type
    half = real(0.5) * dt
    sixth = dt / real(6.0)
    two_pi = real(TWO_PI)
    # Rows go in chunks so the per-row accumulators are allocated once per chunk.
    n_chunks = (n_rows + _CHUNK - 1) // _CHUNK
    for chunk in numba.prange(n_chunks):
        ss = np.empty(n_k, dtype=S.dtype)
        cc = np.empty(n_k, dtype=S.dtype)
        for i in range(chunk * _CHUNK, min(n_rows, (chunk + 1) * _CHUNK)):
            _row_update(indptr, indices, inv_deg, omega, row_net, couplings, S, C, theta,
                        acc, point, stage, dt, half, sixth, two_pi, i, ss, cc)


@numba.njit(cache=True, nogil=True, inline="always")
def _row_update(indptr, indices, inv_deg, omega, row_net, couplings, S, C, theta, acc, point,
                stage, dt, half, sixth, two_pi, i, ss, cc):
    real = S.dtype.type
    n_k = S.shape[1]
    ss[:] = 0
    cc[:] = 0
    for e in range(indptr[i], indptr[i + 1]):
        j = indices[e]
        for k in range(n_k):
            ss[k] += S[j, k]
            cc[k] += C[j, k]
    b = row_net[i]
    w_i = inv_deg[i]
    om = omega[i]
    for k in range(n_k):
        f = om + couplings[b, k] * w_i * (C[i, k] * ss[k] - S[i, k] * cc[k])
        if stage == 0:
            acc[i, k] = f
            point[i, k] = theta[i, k] + half * f
        elif stage == 1:
            acc[i, k] += real(2.0) * f
            point[i, k] = theta[i, k] + half * f
        elif stage == 2:
            acc[i, k] += real(2.0) * f
            point[i, k] = theta[i, k] + dt * f
        else:
            t = theta[i, k] + sixth * (acc[i, k] + f)
            t = t - two_pi * np.floor(t / two_pi)
            # floor rounding can leave t == 2pi or a hair below 0
            if t >= two_pi:
                t -= two_pi
            if t < real(0.0):
                t += two_pi
            theta[i, k] = t


def order_parameter(S: np.ndarray, C: np.ndarray, node_offset: np.ndarray) -> np.ndarray:
    """r[b, k] = |sum over network b's rows of (C + iS)| / N_b, float64 [B, nK]
    (mirrors ``sample_partial`` + ``sample_finalize``)."""
    starts = node_offset[:-1]
    sc = np.add.reduceat(C, starts, axis=0, dtype=np.float64)
    ss = np.add.reduceat(S, starts, axis=0, dtype=np.float64)
    n = np.diff(node_offset).astype(np.float64)[:, None]
    return np.hypot(sc, ss) / n


class CpuEngine:
    """Integrates a :class:`Batch` on the CPU with all cores (numba threads)."""

    name = "cpu"

    def __init__(self, precision: str = "float32", fast_math: bool = False):
        self.precision = precision
        self.fast_math = fast_math  # no effect: numpy's trig is already vectorised

    def integrate(self, batch: Batch, spec: IntegrationSpec) -> np.ndarray:
        """Run the protocol; returns samples ``[B, nK, n_samples]`` float64."""
        real = batch.dtype.type
        rows, n_k = batch.n_rows, batch.n_k
        theta = np.repeat(batch.theta0[:, None], n_k, axis=1)
        S = np.empty_like(theta)
        C = np.empty_like(theta)
        acc = np.empty_like(theta)
        point = np.empty_like(theta)
        samples = np.empty((batch.n_networks, n_k, spec.n_samples), dtype=np.float64)
        dt = real(spec.dt)
        args = (batch.indptr, batch.indices, batch.inv_deg, batch.omega, batch.row_net,
                batch.couplings)
        np.sin(theta, out=S)
        np.cos(theta, out=C)
        q = 0
        for step in range(spec.n_transient + spec.n_measure):
            for stage in range(4):
                if stage:
                    np.sin(point, out=S)
                    np.cos(point, out=C)
                _rk4_stage(*args, S, C, theta, acc, point, stage, dt)
            np.sin(theta, out=S)
            np.cos(theta, out=C)
            s = step - spec.n_transient
            if s >= 0 and s % spec.sample_every == 0:
                samples[:, :, q] = order_parameter(S, C, batch.node_offset)
                q += 1
        assert q == spec.n_samples and rows == theta.shape[0]
        return samples
