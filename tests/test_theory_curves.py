"""kcbatch.theory.r_curve / kc_at_threshold against closed forms and independent solvers.

The independent solvers here use scipy's adaptive quadrature and root finders
and share no code with kcbatch.theory: a node's locked contribution
phi(a) = int_{-a}^{a} sqrt(1 - (w/a)^2) g(w) dw is integrated directly.
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from scipy import integrate, optimize

import kcbatch.theory as theory
from kcbatch.networks import from_networkx

SIGMA = 0.5


def g_normal(w: float, sigma: float = SIGMA) -> float:
    return math.exp(-0.5 * (w / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def phi_quad(a: float, sigma: float = SIGMA) -> float:
    """A node's mean locked contribution at coupling strength a (normal g)."""
    if a <= 0:
        return 0.0
    val, _ = integrate.quad(lambda w: math.sqrt(max(0.0, 1 - (w / a) ** 2)) * g_normal(w, sigma),
                            -a, a, epsabs=1e-14, epsrel=1e-12, limit=200)
    return val


def raw_graph(seed: int = 3, n: int = 60):
    G = nx.gnm_random_graph(n, 4 * n, seed=seed)
    return from_networkx(G)


@pytest.mark.parametrize("model", ["mf", "hmf", "qmf"])
@pytest.mark.parametrize("graph,coupling,factor", [
    (nx.cycle_graph(40), "degree", 1.0),  # regular: every theory is all-to-all
    (nx.cycle_graph(40), "raw", 2.0),  # K_eff = K k
    (nx.complete_graph(12), "global", 11 / 12),  # K_eff = K (N-1)/N
    (nx.random_regular_graph(4, 30, seed=1), "mean-degree", 1.0),
])
def test_lorentzian_regular_graphs_follow_the_closed_form(model, graph, coupling, factor):
    ks = np.array([0.3, 0.9, 1.05, 1.5, 2.5, 7.0])
    r = theory.r_curve(graph, ks, model=model, coupling=coupling, omega_dist="lorentzian",
                       omega_sigma=SIGMA)
    k_eff = ks * factor
    expected = np.sqrt(np.maximum(0.0, 1 - 2 * SIGMA / k_eff))
    np.testing.assert_allclose(r, expected, rtol=1e-7, atol=1e-9)
    kc = theory.kc_at_threshold(graph, 0.5, model=model, coupling=coupling,
                                omega_dist="lorentzian", omega_sigma=SIGMA)
    # r = 1/2 at K_eff = 2 sigma / (1 - 1/4)
    assert kc == pytest.approx(2 * SIGMA / 0.75 / factor, rel=1e-7)


def test_mf_degree_coupling_is_the_all_to_all_self_consistency():
    ks = np.array([1.0, 1.2, 2.0, 4.0])
    r = theory.r_curve(raw_graph(), ks, model="mf", coupling="degree", omega_sigma=SIGMA)
    for k, got in zip(ks, r, strict=True):
        kc0 = 2 / (math.pi * g_normal(0.0))
        if k <= kc0:
            assert got == 0.0
            continue
        want = optimize.brentq(lambda x, k=k: phi_quad(k * x) - x, 1e-9, 1.0, xtol=1e-15)
        assert got == pytest.approx(want, rel=1e-9)


def hmf_independent(indptr, k, coupling="raw"):
    deg = np.diff(indptr).astype(float)
    w = {"raw": np.ones_like(deg), "degree": 1 / np.maximum(deg, 1)}[coupling]
    s = w * deg

    def excess(big_r):
        return sum(d * phi_quad(k * si * big_r) for d, si in zip(deg, s, strict=True)) \
            / deg.sum() - big_r

    if excess(1e-9) <= 0:
        return 0.0
    big_r = optimize.brentq(excess, 1e-9, 1.0, xtol=1e-14)
    return float(np.mean([phi_quad(k * si * big_r) for si in s]))


@pytest.mark.slow  # ~10 s of scipy quadrature
def test_hmf_equals_brute_force_quadrature_on_a_heterogeneous_graph():
    G = nx.barabasi_albert_graph(80, 2, seed=5)
    indptr, indices = from_networkx(G)
    ks = np.array([0.05, 0.2, 0.4, 0.8])
    got = theory.r_curve((indptr, indices), ks, model="hmf", coupling="raw", omega_sigma=SIGMA)
    want = [hmf_independent(indptr, k) for k in ks]
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    # its crossing of 0.5, by root finding on the independent curve
    kc = optimize.brentq(lambda k: hmf_independent(indptr, k) - 0.5, 0.05, 2.0, xtol=1e-13)
    assert theory.kc_at_threshold((indptr, indices), 0.5, model="hmf", coupling="raw",
                                  omega_sigma=SIGMA) == pytest.approx(kc, rel=1e-8)


def qmf_independent(indptr, indices, k):
    """Local fields r_i = sum_j A_ij phi(K r_j) (raw coupling) by a Newton-type solver."""
    n = len(indptr) - 1
    A = np.zeros((n, n))
    for i in range(n):
        A[i, indices[indptr[i]:indptr[i + 1]]] = 1.0
    deg = A.sum(axis=1)
    sol = optimize.root(lambda r: r - A @ np.array([phi_quad(k * x) for x in r]), deg,
                        method="hybr", options={"xtol": 1e-13})
    assert sol.success, sol.message
    return float(np.mean([phi_quad(k * x) for x in sol.x]))


@pytest.mark.slow  # ~30 s: scipy quadrature inside a Newton solve
def test_qmf_equals_an_independent_fixed_point_solver():
    indptr, indices = raw_graph(seed=7, n=40)
    ks = np.array([0.2, 0.35, 0.6])
    got = theory.r_curve((indptr, indices), ks, model="qmf", coupling="raw", omega_sigma=SIGMA)
    want = [qmf_independent(indptr, indices, k) for k in ks]
    np.testing.assert_allclose(got, want, rtol=1e-7)
    kc = optimize.brentq(lambda k: qmf_independent(indptr, indices, k) - 0.5, 0.1, 1.0,
                         xtol=1e-12)
    assert theory.kc_at_threshold((indptr, indices), 0.5, model="qmf", coupling="raw",
                                  omega_sigma=SIGMA) == pytest.approx(kc, rel=1e-7)


@pytest.mark.parametrize("model,onset", [("hmf", theory.kc_hmf), ("qmf", theory.kc_qmf)])
@pytest.mark.parametrize("coupling", ["raw", "mean-degree", "global"])
def test_curves_leave_zero_at_the_onset_and_cross_at_kc_at_threshold(model, onset, coupling):
    G = nx.barabasi_albert_graph(300, 3, seed=11)
    indptr, indices = from_networkx(G)
    k0 = onset(indptr, indices, coupling, "normal", SIGMA)
    below, above = theory.r_curve(G, [k0 * 0.999, k0 * 1.01], model=model, coupling=coupling,
                                  omega_sigma=SIGMA)
    assert below == 0.0 and above > 0.0
    for t in (0.3, 0.5, 0.8):
        kc = theory.kc_at_threshold(G, t, model=model, coupling=coupling, omega_sigma=SIGMA)
        lo, hi = theory.r_curve(G, [kc * (1 - 1e-6), kc * (1 + 1e-6)], model=model,
                                coupling=coupling, omega_sigma=SIGMA)
        assert lo < t <= hi
        assert kc > k0  # the crossing is above the onset


def test_without_edges_there_is_no_crossing():
    G = nx.empty_graph(10)
    for model in ("mf", "hmf", "qmf"):
        assert theory.kc_at_threshold(G, 0.5, model=model, coupling="raw") == math.inf
        assert np.all(theory.r_curve(G, [1.0, 10.0], model=model, coupling="raw") == 0.0)


@pytest.mark.parametrize("kwargs,needle", [
    ({"model": "nope"}, "invalid model='nope'"),
    ({"model": "hmf", "omega_dist": "degree"}, "invalid omega_dist='degree'"),
    ({"model": "hmf", "omega_sigma": 0.0}, "invalid sigma=0.0"),
    ({"model": "hmf", "coupling": "weird"}, "invalid coupling='weird'"),
    ({"model": "qmf", "omega_mu": math.nan}, "invalid omega_mu=nan"),
])
def test_bad_arguments_name_the_parameter(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        theory.r_curve(nx.cycle_graph(5), [1.0], **kwargs)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, True])
def test_threshold_outside_zero_one_is_refused(threshold):
    with pytest.raises(ValueError, match="invalid threshold"):
        theory.kc_at_threshold(nx.cycle_graph(5), threshold, model="mf")
