"""Vectorisable sin/cos for the CPU engine's numba loops.

numba's ``np.sin``/``np.cos`` call scalar libm (~10 ns/element), and numpy's
ufuncs need a separate pass over memory. Written as plain arithmetic —
Cody–Waite reduction to ``r`` in [-pi/4, pi/4] with ``x = q pi/2 + r``, then
minimax polynomials — the loop over K vectorises (AVX2: 8 float32 lanes).

Accuracy (tested in tests/test_cpu_trig.py against numpy): float32 within
~2 ulp, float64 within ~2 ulp, for |x| up to ~1e4 (float32) / ~1e9 (float64),
the phases here being in [0, 2pi) plus one RK4 increment. NaN and inf give NaN.
Coefficients: Cephes ``sinf``/``cosf`` (float32) and fdlibm ``__kernel_sin/cos``
(float64).
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
    """(sin x, cos x) — numba-only; see module docstring."""
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


@numba.njit(cache=True)
def sincos_array(x, s_out, c_out):
    """Elementwise (sin, cos) of a 1-D array, with the libm fallback of large
    |x| exactly as the engine does it (used by tests and benchmarks)."""
    for i in range(x.shape[0]):
        s_out[i], c_out[i] = sincos(x[i])
    fix_large(x, s_out, c_out)


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
