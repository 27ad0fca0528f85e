"""A numba CPU engine frozen as the benchmark baseline of the package's CPU engine
(bench/test_bench_cpu_engine.py).

A self-contained numba pass (``_rk4_stage``:
one parallel pass per RK4 stage over rows in fixed 64-row chunks, separate sin
and cos arrays ``[R, nK]``, one neighbour at a time) with its vectorisable
sin/cos (the algorithm of ``kcbatch/engines/cpu/trig.py``) and a minimal driver,
:func:`integrate`, that runs the protocol exactly as ``CpuEngine.integrate`` does.
Copied rather than imported so that changes to the package cannot move the
baseline.
"""
from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload

_F32 = np.float32
# Beyond these |x| the reduction loses accuracy (q * P1 stops being exact):
# callers use libm there (only reached when phases blow up).
LIMIT32 = 6.0e4
LIMIT64 = 1.0e9


def sincos(x):
    """(sin x, cos x), numba-only (a frozen copy of kcbatch/engines/cpu/trig.py's)."""
    raise NotImplementedError("sincos is only callable from numba-compiled code")


@numba.njit(inline="always")
def _quadrant(s, c, q):
    # x = q pi/2 + r: rotate (sin r, cos r) by q quarter turns, branch-free so
    # the K loop stays vectorised (selects, no jumps).
    swap = (q & 1) != 0
    s1 = c if swap else s
    c1 = -s if swap else c
    s2 = -s1 if (q & 2) != 0 else s1
    c2 = -c1 if (q & 2) != 0 else c1
    return s2, c2


@numba.njit(inline="always")
def _sincos32(x):
    two_over_pi = _F32(0.63661977236758134308)
    qf = np.rint(x * two_over_pi)
    # pi/2 in three float32 parts (Cephes DP1..DP3, doubled): q*P1 is exact.
    r = ((x - qf * _F32(1.5703125)) - qf * _F32(4.837512969970703125e-4)) \
        - qf * _F32(7.54978995489188216e-8)
    z = r * r
    s = r + r * z * (_F32(-1.6666654611e-1) + z * (_F32(8.3321608736e-3)
                                                  + z * _F32(-1.9515295891e-4)))
    c = _F32(1.0) - _F32(0.5) * z + z * z * (_F32(4.166664568298827e-2) + z * (
        _F32(-1.388731625493765e-3) + z * _F32(2.443315711809948e-5)))
    q = np.int32(qf)  # |qf| < 2**16 where used (LIMIT32); NaN/inf: r is NaN anyway
    return _quadrant(s, c, q)


@numba.njit(inline="always")
def _sincos64(x):
    qf = np.rint(x * 0.63661977236758134308)
    # fdlibm's pio2_1 (33 bits), pio2_2, pio2_2t.
    r = ((x - qf * 1.57079632673412561417e+00) - qf * 6.07710050630396597660e-11) \
        - qf * 2.02226624879595063154e-21
    z = r * r
    s = r + r * z * (-1.66666666666666324348e-01 + z * (8.33333333332248946124e-03 + z * (
        -1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 + z * (
            -2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)))))
    c = 1.0 - 0.5 * z + z * z * (4.16666666666666019037e-02 + z * (
        -1.38888888888741095749e-03 + z * (2.48015872894767294178e-05 + z * (
            -2.75573143513906633035e-07 + z * (2.08757232129817482790e-09
                                               + z * -1.13596475577881948265e-11)))))
    q = np.int64(qf)
    return _quadrant(s, c, q)


@overload(sincos, inline="always")
def _sincos_overload(x):
    if x == numba.float32:
        return lambda x: _sincos32(x)
    if x == numba.float64:
        return lambda x: _sincos64(x)
    return None


@numba.njit(inline="always")
def fix_large(x, s_out, c_out):
    """Recompute with libm where |x| is beyond the reduction's range (or not finite)."""
    lim = LIMIT32 if x.itemsize == 4 else LIMIT64
    big = False
    for i in range(x.shape[0]):
        big |= not (abs(x[i]) <= lim)
    if big:
        for i in range(x.shape[0]):
            if not (abs(x[i]) <= lim):
                s_out[i] = np.sin(x[i])
                c_out[i] = np.cos(x[i])


TWO_PI = 2.0 * np.pi
# Rows per parallel chunk: the per-row scratch is allocated once per chunk.
_CHUNK = 64
# Only flags that cannot change results: no reassociation or FMA contraction
# (the kernels are compiled without them too).
_FASTMATH = {"nnan", "ninf", "nsz"}


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FASTMATH)
def _rk4_stage(indptr, indices, weight, omega, row_net, couplings,
               # graph: [R+1], [nnz], [R] x 3, [B, nK]
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


def _order_parameter(S, C, node_offset):
    starts = node_offset[:-1]
    sc = np.add.reduceat(C, starts, axis=0, dtype=np.float64)
    ss = np.add.reduceat(S, starts, axis=0, dtype=np.float64)
    return np.hypot(sc, ss) / np.diff(node_offset).astype(np.float64)[:, None]


@numba.njit(cache=True)
def _sincos_array(x, s_out, c_out):
    for i in range(x.shape[0]):
        s_out[i], c_out[i] = sincos(x[i])
    fix_large(x, s_out, c_out)


def integrate(batch, spec):
    """Samples ``[B, nK, spec.n_samples]`` float64 of ``batch`` under ``spec``
    (the protocol of ``CpuEngine.integrate``)."""
    dt = batch.dtype.type(spec.dt)
    graph = (batch.indptr, batch.indices, batch.weight, batch.omega, batch.row_net,
             batch.couplings)
    theta = np.repeat(batch.theta0[:, None], batch.n_k, axis=1)   # [R, nK]
    S = (np.empty_like(theta), np.empty_like(theta))
    C = (np.empty_like(theta), np.empty_like(theta))
    _sincos_array(theta.reshape(-1), S[0].reshape(-1), C[0].reshape(-1))
    acc = np.empty_like(theta)
    samples = np.empty((batch.n_networks, batch.n_k, spec.n_samples))
    for s in range(spec.n_transient + spec.n_measure):
        for stage in range(4):
            _rk4_stage(*graph, S[stage % 2], C[stage % 2], S[1 - stage % 2],
                       C[1 - stage % 2], theta, acc, stage, dt)
        m = s - spec.n_transient
        if m >= 0 and m % spec.sample_every == 0:
            samples[:, :, m // spec.sample_every] = _order_parameter(S[0], C[0],
                                                                    batch.node_offset)
    return samples
