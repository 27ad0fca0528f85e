"""The integrator is classic 4th-order RK4, and the model is the right physics.

* ``test_rk4_convergence_order``: empirical convergence order of the sampled r(t)
  (float64, CPU engine) against a much finer step; must be ~4.
* ``test_dense_graph_matches_mean_field``: on a dense random graph, long-time r(K)
  approaches the infinite-N self-consistent Kuramoto curve for Gaussian
  frequencies (float32, CPU engine, the production precision).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

import kcbatch
from kcbatch.networks import barabasi_albert


def erdos_renyi_csr(n, p, seed):
    """G(n, p) as (indptr int64, indices int32) with sorted rows (vectorised)."""
    rng = np.random.default_rng(seed)
    iu, ju = np.triu_indices(n, 1)
    keep = rng.random(iu.size) < p
    i, j = iu[keep], ju[keep]
    rows, cols = np.concatenate([i, j]), np.concatenate([j, i])
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(rows, minlength=n))
    return indptr, cols.astype(np.int32)


# --------------------------------------------------------------------------- RK4 order

def test_rk4_convergence_order():
    """Halving dt divides the error of every r sample by ~2^4 = 16.

    The sample *times* are kept identical across dt.  Sample c is taken after
    measurement step s = c * sample_every, i.e. at time
    t_transient_steps*dt + (c*sample_every + 1)*dt; with t_transient = T0 - dt
    (an integer number of steps), sample_every = E0 * h0/dt and t_measure fixed,
    sample c sits at T0 + c*E0*h0 for every dt.  (Keeping t_transient fixed would
    move every sample by one step dt, a first-order error that would hide RK4's
    fourth order.)  r is invariant to the [0, 2pi) wrap, so comparing r samples
    across dt is safe even when the phases wrap a different number of times.

    Regime: dt = 0.1 ... 0.0125 with couplings up to K = 3 on a BA graph (relaxation
    rates <~ 2K = 6, so rate*dt <= 0.6): the measured error ratios are 14.2, 15.0,
    15.5 (fitted order 3.90, tending to 4) and the errors, 1.6e-6 ... 4.9e-10, stay
    five or more orders of magnitude above float64 roundoff (~1e-15); the reference
    step h0/256 has an error ~1e-14, negligible against the smallest one compared.
    """
    n = 40
    indptr, indices = barabasi_albert(n, 2, 3)
    rng = np.random.default_rng(1)
    omega = rng.normal(0.0, 1.0, n)
    theta0 = rng.uniform(0.0, 2 * math.pi, n)
    k = np.array([0.5, 1.5, 3.0])
    h0, t0, window, e0 = 0.2, 2.0, 2.0, 1  # samples at t = 2.0, 2.2, ..., 3.8

    def samples(dt):
        f = round(h0 / dt)
        return kcbatch.simulate([(indptr, indices)], [omega], [theta0], k, dt=dt,
                                t_transient=t0 - dt, t_measure=window, sample_every=e0 * f,
                                device="cpu", precision="float64", return_samples=True)[0]

    fine = samples(h0 / 256)
    dts = np.array([h0 / 2, h0 / 4, h0 / 8, h0 / 16])
    errors = []
    for dt in dts:
        s = samples(dt)
        assert s.shape == fine.shape == (len(k), 10)
        errors.append(np.sqrt(np.mean((s - fine) ** 2)))
    errors = np.array(errors)
    assert errors.min() > 1e-11, errors        # far above float64 roundoff
    assert errors.max() < 1e-4, errors         # asymptotic regime, not O(1) chaos
    order, _ = np.polyfit(np.log(dts), np.log(errors), 1)
    ratios = errors[:-1] / errors[1:]
    assert 3.6 <= order <= 4.4, (order, errors)
    assert np.all((ratios > 2 ** 3.5) & (ratios < 2 ** 4.5)), ratios


# --------------------------------------------------------------------------- physics

SIGMA = 0.5


def gaussian_pdf(w):
    return math.exp(-w * w / (2 * SIGMA ** 2)) / (SIGMA * math.sqrt(2 * math.pi))


def mean_field_r(k):
    """Infinite-N stationary r(K) of the Kuramoto model with Gaussian g(omega):
    the largest root of r = K r * int_{-pi/2}^{pi/2} cos^2(t) g(K r sin t) dt
    (Kuramoto's self-consistency; the drifting oscillators contribute nothing to r
    for a symmetric g).  r = 0 below Kc = 2 / (pi g(0))."""
    def excess(r):
        val, _ = integrate.quad(lambda t: math.cos(t) ** 2 * gaussian_pdf(k * r * math.sin(t)),
                                -math.pi / 2, math.pi / 2, epsabs=1e-13, epsrel=1e-12)
        return k * val - 1.0

    if excess(1e-12) <= 0:
        return 0.0
    return optimize.brentq(excess, 1e-12, 1.0, xtol=1e-12)


def test_mean_field_curve_sanity():
    kc_inf = 2 / (math.pi * gaussian_pdf(0.0))
    assert kc_inf == pytest.approx(0.7978845608, abs=1e-9)  # = 2 sigma sqrt(2/pi)
    assert mean_field_r(0.9 * kc_inf) == 0.0
    # just above onset, r ~ sqrt(16 mu / (pi Kc^4 (-g''(0)))), mu = K - Kc (Kuramoto 1984)
    mu = 1e-4 * kc_inf
    g2 = -gaussian_pdf(0.0) / SIGMA ** 2
    approx = math.sqrt(16 * mu / (math.pi * kc_inf ** 4 * -g2))
    assert mean_field_r(kc_inf + mu) == pytest.approx(approx, rel=1e-2)
    rs = [mean_field_r(k) for k in (1.0, 1.2, 1.6, 2.5, 5.0)]
    assert all(0 < a < b < 1 for a, b in zip(rs, rs[1:], strict=False))


@pytest.mark.slow  # N = 3000 dense graph, 250 RK4 steps: ~20 s on 2 cores
def test_dense_graph_matches_mean_field():
    """Dense Erdős–Rényi graph: long-time r(K) follows the infinite-N curve.

    Why mean field with coupling K: the engine's coupling is (K / k_i) sum_j A_ij
    sin(theta_j - theta_i) = K Im(z_i e^{-i theta_i}), where z_i is the average of
    e^{i theta_j} over i's k_i neighbours.  On G(N, p) with k_i ~ pN = 600 >> 1 the
    neighbours are a random subset, independent of the phases, so z_i = r e^{i psi}
    + O(1/sqrt(k_i)): this is the classic all-to-all model with coupling K (not
    K p N: the 1/k_i normalisation removes the degree), Kc_inf = 2/(pi g(0)) = 0.798.

    Setup: N = 3000, p = 0.2; the frequencies are the Gaussian quantiles
    sigma * Phi^{-1}((j + 1/2)/N) in random order, which removes the O(1/sqrt N)
    sample-to-sample disorder of N random draws (that alone shifted r by ~0.01 at
    N = 2000 in trials), uniform random theta0, float32 (production precision),
    dt = 0.2 (rates <= 2.5, RK4 error ~1e-4: dt = 0.1 gave the same r to 1e-3).
    The growth from r ~ 1/sqrt(N) takes ~20 time units at K = 1.2 (trials), so
    t_transient = 30 and r is averaged over t_measure = 20 (20 samples).

    Tolerance, above onset (K = 1.2, 1.6, 2.5; r_inf = 0.851, 0.937, 0.978):
    |r - r_inf| <= 0.01.  Finite size: r(t) fluctuates by ~0.003 (K = 1.2, N =
    2000) and averaging 20 samples shrinks that; the graph's local-field noise
    O(1/sqrt k) affects r at second order, O(1/k) ~ 0.002; finite time and dt add
    < 1e-3.  Observed: r - r_inf = -1.0e-3, -3.6e-4, -1.0e-4.  A factor-2 error in
    the coupling is caught: with 2K the same run gives r - r_inf = +0.125, +0.050,
    +0.017; with K/2 it gives -0.80, -0.85, -0.11.  A 1/N instead of 1/k_i
    normalisation means coupling K p <= 0.5 < Kc, r ~ 0.
    Below onset (K = 0.4): incoherent, r = O(1/sqrt N) (~0.016 for independent
    phases, enhanced ~2x by the coupling at K = Kc/2; observed 0.035): require
    r < 0.1.
    """
    n, p = 3000, 0.2
    csr = erdos_renyi_csr(n, p, seed=11)
    rng = np.random.default_rng(12)
    omega = rng.permutation(SIGMA * stats.norm.ppf((np.arange(n) + 0.5) / n))
    theta0 = rng.uniform(0.0, 2 * math.pi, n)
    k = np.array([0.4, 1.2, 1.6, 2.5])
    r = kcbatch.simulate([csr], [omega], [theta0], k, dt=0.2, t_transient=30.0,
                         t_measure=20.0, sample_every=5, device="cpu",
                         precision="float32")[0]
    r_inf = np.array([mean_field_r(x) for x in k])
    assert r_inf[0] == 0.0 and np.all(r_inf[1:] > 0.8)
    assert r[0] < 0.1, r
    np.testing.assert_allclose(r[1:], r_inf[1:], rtol=0, atol=0.01)
