"""The original research script's algorithm, on the CPU: the benchmark baseline.

One network and one coupling K at a time, written the way the original script
was (there on the GPU with CuPy + cuSPARSE, here with numpy + scipy.sparse):
a float32 CSR adjacency ``A`` and, per RK4 stage, two SpMVs and a handful of
element-wise array operations,

    dtheta/dt = omega + K / max(deg, 1) * (cos(theta) * (A @ sin(theta))
                                           - sin(theta) * (A @ cos(theta)))

classic RK4 with step ``dt``: ``n_transient`` steps discarded, then
``n_measure`` steps; after measurement step ``s`` (0-based) with
``s % sample_every == 0`` it samples ``r = |mean_j exp(i theta_j)|``, and
``r(K)`` is the mean of the samples. Phases are wrapped with ``mod 2pi`` after
every step. float32 throughout (complex64 for the order parameter).

``Kc`` is the first grid K with ``r(K) > threshold`` (None if none crosses).

Deliberately plain numpy/scipy, no numba, no batching over K or networks:
this is what the kcbatch engines are measured against.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

TWO_PI = np.float32(2 * np.pi)


def adjacency(indptr, indices, n=None):
    """float32 CSR adjacency from a ``(indptr, indices)`` graph."""
    indptr = np.asarray(indptr)
    n = len(indptr) - 1 if n is None else n
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, np.asarray(indices), indptr), shape=(n, n))


def simulate_one_k(A, omega, theta0, K, dt, n_transient, n_measure, sample_every):
    """Time-averaged order parameter r(K) of one network at one coupling K."""
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv_deg = (1.0 / np.maximum(deg, 1)).astype(np.float32)
    omega = np.asarray(omega, dtype=np.float32)
    kw = np.float32(K) * inv_deg          # K / max(deg, 1), per node
    dt = np.float32(dt)
    half_dt = dt / np.float32(2)
    sixth_dt = dt / np.float32(6)
    two = np.float32(2)

    def f(th):
        s = np.sin(th)
        c = np.cos(th)
        return omega + kw * (c * (A @ s) - s * (A @ c))

    th = np.asarray(theta0, dtype=np.float32).copy()
    rs = []
    for step in range(n_transient + n_measure):
        k1 = f(th)
        k2 = f(th + half_dt * k1)
        k3 = f(th + half_dt * k2)
        k4 = f(th + dt * k3)
        th = np.mod(th + sixth_dt * (k1 + two * k2 + two * k3 + k4), TWO_PI)
        s = step - n_transient
        if s >= 0 and s % sample_every == 0:
            rs.append(np.abs(np.mean(np.exp(1j * th))))
    return float(np.mean(rs))


def r_curve(A, omega, theta0, k_values, dt, n_transient, n_measure, sample_every):
    """r(K) over the grid, one K after the other (each from the same theta0)."""
    return np.array([simulate_one_k(A, omega, theta0, K, dt, n_transient, n_measure,
                                    sample_every)
                     for K in k_values])


def find_kc(k_values, r, threshold=0.5):
    """First K with r(K) > threshold, or None."""
    for K, rk in zip(k_values, r, strict=True):
        if rk > threshold:
            return float(K)
    return None


def batch_network(batch, b=0):
    """(A, omega, theta0) of network ``b`` of a packed :class:`kcbatch.inputs.batch.Batch`
    (indices made local to the network), so the baseline sees exactly the
    engine's inputs."""
    r0, r1 = int(batch.node_offset[b]), int(batch.node_offset[b + 1])
    e0, e1 = int(batch.indptr[r0]), int(batch.indptr[r1])
    indptr = batch.indptr[r0:r1 + 1] - e0
    indices = batch.indices[e0:e1] - r0
    return adjacency(indptr, indices, r1 - r0), batch.omega[r0:r1], batch.theta0[r0:r1]
