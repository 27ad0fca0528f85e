"""Tests for kcbatch.theory.mean_field against oracles computed here: scipy's densities and
adaptive quadrature, closed forms, LAPACK/ARPACK eigenvalues, networkx degrees."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from reference import csr_from_edges
from scipy import integrate, stats
from scipy.sparse.linalg import eigsh

from kcbatch.networks import barabasi_albert
from kcbatch.theory import mean_field as theory

SIGMA = 0.5
DENSITIES = ("normal", "lorentzian", "uniform")


def scipy_density(dist, sigma):
    """The frequency density, centred at 0, from scipy.stats."""
    return {"normal": stats.norm(0, sigma),
            "lorentzian": stats.cauchy(0, sigma),
            "uniform": stats.uniform(-sigma, 2 * sigma)}[dist].pdf


def order_integral(u, dist, sigma):
    """int_{-pi/2}^{pi/2} cos^2(t) g(u sin t) dt by adaptive quadrature."""
    g = scipy_density(dist, sigma)
    # Breakpoints where g(u sin t) changes fast (and the uniform's edges).
    pts = sorted({math.asin(min(1.0, sigma * x / u)) for x in (0.25, 1, 4, 16)}) if u > 0 else None
    half = integrate.quad(lambda t: math.cos(t) ** 2 * g(u * math.sin(t)), 0, math.pi / 2,
                          points=pts, epsabs=0, epsrel=1e-12, limit=400)[0]
    return 2 * half


def graph(G):
    """(indptr, indices, dense adjacency) of a networkx graph, built without kcbatch."""
    G = nx.convert_node_labels_to_integers(G)
    indptr, indices = csr_from_edges(G.number_of_nodes(), G.edges())
    return indptr, indices, nx.to_numpy_array(G, nodelist=range(G.number_of_nodes()))


def weights(deg, coupling):
    deg = np.asarray(deg, float)
    n = deg.size
    return {"degree": 1 / np.maximum(deg, 1), "raw": np.ones(n),
            "mean-degree": np.full(n, n / deg.sum()), "global": np.full(n, 1 / n)}[coupling]


def dense_lambda_max(A, coupling):
    """Largest eigenvalue of W A, from numpy's general (non-symmetric) eigensolver."""
    ev = np.linalg.eigvals(weights(A.sum(axis=1), coupling)[:, None] * A)
    assert np.abs(ev.imag).max() < 1e-8  # W A is similar to a symmetric matrix
    return ev.real.max()


GRAPHS = {
    # 200 nodes keep numpy's dense O(N^3) eigvals cheap; a hub-dominated BA
    # spectrum all the same. The 3000-node BA graph is checked against ARPACK below.
    "ba": lambda: nx.barabasi_albert_graph(200, 3, seed=4),
    "star (bipartite)": lambda: nx.star_graph(30),
    "path (bipartite)": lambda: nx.path_graph(60),
    "grid (bipartite)": lambda: nx.grid_2d_graph(12, 9),
    "isolated nodes": lambda: nx.disjoint_union(nx.empty_graph(5),
                                                nx.barabasi_albert_graph(80, 2, seed=1)),
    "two components": lambda: nx.disjoint_union(nx.barabasi_albert_graph(120, 2, seed=2),
                                                nx.barabasi_albert_graph(90, 4, seed=3)),
    "two equal components": lambda: nx.disjoint_union(nx.cycle_graph(9), nx.cycle_graph(9)),
    "single edge": lambda: nx.path_graph(2),
}


# --------------------------------------------------------------------------
# Frequency densities and Kc0
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dist", DENSITIES)
@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_density_matches_scipy(dist, sigma):
    g = theory.density(dist, sigma)
    w = np.linspace(-4 * sigma, 4 * sigma, 161)
    np.testing.assert_allclose(g(w), scipy_density(dist, sigma)(w), rtol=1e-13, atol=0)
    lo, hi = (-sigma, sigma) if dist == "uniform" else (-np.inf, np.inf)
    assert integrate.quad(g, lo, hi, epsabs=1e-13)[0] == pytest.approx(1, abs=1e-10)


@pytest.mark.parametrize("dist, closed_form", [("normal", math.sqrt(8 / math.pi)),
                                               ("lorentzian", 2.0),
                                               ("uniform", 4 / math.pi)])
@pytest.mark.parametrize("sigma", [0.5, 1.3])
def test_kc0_closed_forms_against_the_onset_of_the_self_consistency(dist, closed_form, sigma):
    # Onset: K r = u -> 0+ in r = K r J(K r), so Kc0 = 1 / J(0+), J by quadrature.
    onset = 1 / order_integral(1e-9 * sigma, dist, sigma)
    assert theory.kc0(dist, sigma) == pytest.approx(onset, rel=1e-9)
    assert theory.kc0(dist, sigma) == pytest.approx(closed_form * sigma, rel=1e-14)
    g0 = scipy_density(dist, sigma)(0.0)
    assert theory.g_centre(dist, sigma) == pytest.approx(g0, rel=1e-14)


def test_kc0_scales_with_sigma():
    # A wrong sigma exponent (sigma^2, sqrt) would pass at sigma = 1 only.
    for dist in DENSITIES:
        assert theory.kc0(dist, 3.0) == pytest.approx(3 * theory.kc0(dist, 1.0), rel=1e-14)


# --------------------------------------------------------------------------
# The all-to-all r(K)
# --------------------------------------------------------------------------

def test_gaussian_known_value():
    # Issue 9: for the Gaussian with sigma = 0.5, r reaches 0.5 at K = 0.8740.
    assert round(theory.k_at_r(0.5, "normal", 0.5), 4) == 0.8740
    r = theory.r_all_to_all(np.array([0.8739, 0.8740, 0.8741]), "normal", 0.5)
    assert r[0] < 0.5 < r[2] and r[1] == pytest.approx(0.5, abs=2e-4)


@pytest.mark.parametrize("sigma", [0.5, 1.7])
def test_lorentzian_closed_form(sigma):
    # Within ~1e-15 of Kc0, r ~ 1e-8 is set by rounding (in the closed form too): the grid
    # steps over Kc0, and the points above it come no closer than 1e-12.
    k = np.concatenate((np.linspace(0, 40 * sigma, 800),
                        2 * sigma * (1 + np.logspace(-12, -1, 12))))
    expected = np.sqrt(np.clip(1 - 2 * sigma / np.maximum(k, 1e-300), 0, None))
    np.testing.assert_allclose(theory.r_all_to_all(k, "lorentzian", sigma), expected,
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("dist", ["normal", "uniform"])
@pytest.mark.parametrize("k_over_kc0", [1.001, 1.05, 1.3, 2.0, 5.0, 40.0])
def test_r_solves_the_self_consistency(dist, k_over_kc0):
    # Independent check of the solution: r = K r J(K r) with J by adaptive quadrature.
    k = k_over_kc0 * theory.kc0(dist, SIGMA)
    r = float(theory.r_all_to_all(k, dist, SIGMA))
    assert 0 < r < 1
    assert k * order_integral(k * r, dist, SIGMA) == pytest.approx(1, abs=1e-10)


@pytest.mark.parametrize("dist", DENSITIES)
def test_r_zero_below_kc0_and_increasing_above(dist):
    k_c = theory.kc0(dist, SIGMA)
    below = np.array([-1.0, 0.0, 0.5 * k_c, k_c * (1 - 1e-12), k_c])
    assert np.all(theory.r_all_to_all(below, dist, SIGMA) == 0)
    k = k_c * np.linspace(1.0001, 30, 300)
    r = theory.r_all_to_all(k.reshape(20, 15), dist, SIGMA)
    assert r.shape == (20, 15)
    r = r.ravel()
    assert np.all(r > 0) and np.all(r < 1) and np.all(np.diff(r) > 0)


def test_uniform_jumps_to_pi_over_4():
    # First-order transition of the uniform distribution (Pazó 2005): r(Kc0+) = pi/4.
    # Just above: u = K r = sigma / cos(b), and for the uniform density
    # J(u) = (pi/2 - b + sin b cos b) / (2 sigma) = (1 - 4 b^3 / (3 pi)) / Kc0 + O(b^5),
    # so K / Kc0 - 1 = eps gives b = (3 pi eps / 4)^(1/3) and r - pi/4 = (pi/8) b^2.
    k_c = theory.kc0("uniform", SIGMA)
    eps = np.array([1e-9, 1e-12])
    r = theory.r_all_to_all(np.concatenate(([k_c], k_c * (1 + eps))), "uniform", SIGMA)
    assert r[0] == 0
    expected = math.pi / 8 * (3 * math.pi * eps / 4) ** (2 / 3)
    np.testing.assert_allclose(r[1:] - math.pi / 4, expected, rtol=3e-3)  # O(b) corrections
    np.testing.assert_allclose(theory.k_at_r([0.0, 0.3, math.pi / 4 - 1e-9], "uniform", SIGMA),
                               k_c, rtol=1e-12)


def test_gaussian_square_root_onset():
    # r^2 ~ 16 (K - Kc0) / (pi Kc0^4 (-g''(0))), from expanding J(u) to order u^2:
    # J(u) = pi g(0)/2 + g''(0) u^2 int cos^2 sin^2 / 2 = pi g(0)/2 + pi g''(0) u^2 / 16.
    sigma = SIGMA
    k_c = sigma * math.sqrt(8 / math.pi)
    g2 = -1 / (sigma ** 3 * math.sqrt(2 * math.pi))  # g''(0) of the normal density
    for eps in (1e-4, 1e-6):
        k = k_c * (1 + eps)
        predicted = math.sqrt(16 * (k - k_c) / (math.pi * k_c ** 4 * -g2))
        r = float(theory.r_all_to_all(k, "normal", sigma))
        assert r == pytest.approx(predicted, rel=5 * eps)


@pytest.mark.parametrize("dist", DENSITIES)
def test_k_at_r_inverts_r(dist):
    r = np.array([0.0, 0.01, 0.2, 0.5, 0.8, 0.95, 0.999])
    if dist == "uniform":
        r = r[r > math.pi / 4]  # below that every r sits at Kc0 (the jump)
    k = theory.k_at_r(r, dist, SIGMA)
    assert isinstance(k, np.ndarray) and k.shape == r.shape
    # r = 0 sits at Kc0, where r(K) rises like a square root: checked below instead.
    np.testing.assert_allclose(theory.r_all_to_all(k[r > 0], dist, SIGMA), r[r > 0], atol=1e-8)
    assert theory.k_at_r(0.0, dist, SIGMA) == pytest.approx(theory.kc0(dist, SIGMA), rel=1e-12)


# --------------------------------------------------------------------------
# Largest eigenvalue of the coupling matrix
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("coupling", theory.COUPLINGS)
def test_lambda_max_against_dense_eigenvalues(name, coupling):
    indptr, indices, A = graph(GRAPHS[name]())
    lam = theory.lambda_max(indptr, indices, coupling)
    assert lam == pytest.approx(dense_lambda_max(A, coupling), rel=1e-8)


@pytest.mark.parametrize("coupling", theory.COUPLINGS)
def test_lambda_max_against_arpack_on_ba(coupling):
    indptr, indices = barabasi_albert(3000, 3, 11)
    n = indptr.shape[0] - 1
    rows = np.repeat(np.arange(n), np.diff(indptr))
    w = weights(np.diff(indptr), coupling)
    M = sp.csr_matrix((w[rows], indices, indptr), shape=(n, n))  # M_ij = w_i A_ij
    S = sp.diags(np.sqrt(1 / w)) @ M @ sp.diags(np.sqrt(w))   # similar and symmetric
    ref = eigsh(S, k=1, which="LA", tol=1e-14)[0][0]
    assert theory.lambda_max(indptr, indices, coupling) == pytest.approx(ref, rel=1e-8)


def test_lambda_max_closed_forms_of_bipartite_graphs():
    # Spectra symmetric about 0: a sign-blind iteration would oscillate or return -lambda.
    for n in (2, 5, 101):
        indptr, indices, _ = graph(nx.star_graph(n - 1))
        lam = theory.lambda_max(indptr, indices, "raw")
        assert lam == pytest.approx(math.sqrt(n - 1), rel=1e-10)
    for n in (3, 40, 400):
        indptr, indices, _ = graph(nx.path_graph(n))
        assert theory.lambda_max(indptr, indices, "raw") == pytest.approx(
            2 * math.cos(math.pi / (n + 1)), rel=1e-9)


@pytest.mark.parametrize("make", [
    lambda: barabasi_albert(2000, 3, 5),
    lambda: nx.barabasi_albert_graph(500, 2, seed=9),
    lambda: nx.star_graph(50),
    lambda: nx.path_graph(300),
    lambda: nx.watts_strogatz_graph(400, 6, 0.1, seed=2),
    lambda: nx.disjoint_union(nx.path_graph(10), nx.complete_graph(6)),
    lambda: nx.disjoint_union(nx.empty_graph(4), nx.cycle_graph(11)),
])
def test_degree_normalisation_has_lambda_one(make):
    # Rows of D^-1 A sum to 1 wherever k_i > 0, so the Perron value of every component is 1.
    G = make()
    indptr, indices = graph(G)[:2] if isinstance(G, nx.Graph) else G
    assert theory.lambda_max(indptr, indices, "degree") == pytest.approx(1, rel=1e-10)


def test_lambda_max_warns_when_out_of_products():
    indptr, indices, _ = graph(nx.path_graph(2000))
    with pytest.warns(RuntimeWarning, match="no convergence"):
        lam = theory.lambda_max(indptr, indices, "raw", max_products=45)
    exact = 2 * math.cos(math.pi / 2001)
    assert lam <= exact * (1 + 1e-12) and lam > 1.9


# --------------------------------------------------------------------------
# Network thresholds
# --------------------------------------------------------------------------

@pytest.mark.parametrize("coupling", theory.COUPLINGS)
@pytest.mark.parametrize("dist", DENSITIES)
@pytest.mark.slow
def test_thresholds_against_degree_moments(coupling, dist):
    G = nx.disjoint_union(nx.barabasi_albert_graph(700, 3, seed=7), nx.empty_graph(3))
    indptr, indices, A = graph(G)
    k = np.array([d for _, d in sorted(G.degree())], float)
    n, k1, k2 = k.size, k.mean(), (k ** 2).mean()
    k_c = {"normal": SIGMA * math.sqrt(8 / math.pi), "lorentzian": 2 * SIGMA,
           "uniform": 4 * SIGMA / math.pi}[dist]
    hmf = {"raw": k_c * k1 / k2, "degree": k_c, "mean-degree": k_c * k1 ** 2 / k2,
           "global": k_c * n * k1 / k2}[coupling]
    mf = {"raw": k_c / k1, "degree": k_c, "mean-degree": k_c, "global": k_c * n / k1}[coupling]
    got = theory.thresholds(indptr, indices, coupling, dist, SIGMA)
    assert set(got) == {"kc_mf", "kc_hmf", "kc_qmf"}
    assert got["kc_mf"] == pytest.approx(mf, rel=1e-12)
    assert got["kc_hmf"] == pytest.approx(hmf, rel=1e-12)
    assert got["kc_qmf"] == pytest.approx(k_c / dense_lambda_max(A, coupling), rel=1e-8)


def test_raw_coupling_thresholds_fall_with_heterogeneity():
    # BA: <k^2> grows with N, and lambda_max(A) >= sqrt(<k^2>) >= <k>, so
    # kc_qmf <= Kc0 / sqrt(<k^2>) and kc_hmf < kc_mf.
    indptr, indices = barabasi_albert(5000, 3, 2)
    k = np.diff(indptr).astype(float)
    got = theory.thresholds(indptr, indices, "raw", "normal", SIGMA)
    k_c = SIGMA * math.sqrt(8 / math.pi)
    assert got["kc_qmf"] <= k_c / math.sqrt((k ** 2).mean()) * (1 + 1e-12)
    assert got["kc_hmf"] < got["kc_mf"]


@pytest.mark.parametrize("G", [nx.complete_graph(25), nx.circulant_graph(60, [1, 2, 5]),
                               nx.cycle_graph(31)], ids=["complete", "circulant", "cycle"])
@pytest.mark.parametrize("coupling", theory.COUPLINGS)
def test_all_three_agree_on_regular_graphs(G, coupling):
    # <k^2> = <k>^2 and lambda_max(A) = k: homogeneous, annealed and quenched coincide.
    indptr, indices, _ = graph(G)
    got = theory.thresholds(indptr, indices, coupling, "lorentzian", SIGMA)
    assert got["kc_hmf"] == pytest.approx(got["kc_mf"], rel=1e-12)
    assert got["kc_qmf"] == pytest.approx(got["kc_mf"], rel=1e-10)
    if coupling == "global" and G.number_of_nodes() == 25 and G.number_of_edges() == 300:
        # Complete graph with K/N: Kuramoto's model, Kc0 up to the N/(N-1) self-term.
        assert got["kc_mf"] == pytest.approx(2 * SIGMA * 25 / 24, rel=1e-12)


def test_graph_without_edges_never_synchronises():
    indptr, indices, _ = graph(nx.empty_graph(6))
    got = theory.thresholds(indptr, indices, "raw", "normal", SIGMA)
    assert got == {"kc_mf": math.inf, "kc_hmf": math.inf, "kc_qmf": math.inf}
    assert theory.lambda_max(indptr, indices, "degree") == 0.0


# --------------------------------------------------------------------------
# Where the theory does not apply, and bad input
# --------------------------------------------------------------------------

def test_degree_frequencies_have_no_theory():
    indptr, indices = barabasi_albert(300, 3, 1)
    assert not theory.theory_applies("degree")
    assert all(theory.theory_applies(d) for d in DENSITIES)
    reason = theory.why_theory_does_not_apply("degree")
    assert isinstance(reason, str) and "\n" not in reason and "density" in reason
    assert theory.why_theory_does_not_apply("normal") is None
    for coupling in theory.COUPLINGS:
        assert theory.thresholds(indptr, indices, coupling, "degree", SIGMA) == \
            {"kc_mf": None, "kc_hmf": None, "kc_qmf": None}
    assert theory.kc_qmf(indptr, indices, "raw", "degree", SIGMA) is None
    for call in (lambda: theory.kc0("degree", SIGMA),
                 lambda: theory.r_all_to_all([1.0], "degree", SIGMA),
                 lambda: theory.k_at_r(0.5, "degree", SIGMA)):
        with pytest.raises(ValueError, match=r"^invalid dist='degree': .*density"):
            call()


@pytest.mark.parametrize("call, param", [
    (lambda: theory.kc0("gauss", 1.0), "dist"),
    (lambda: theory.kc0("normal", 0.0), "sigma"),
    (lambda: theory.kc0("normal", -1.0), "sigma"),
    (lambda: theory.kc0("normal", float("nan")), "sigma"),
    (lambda: theory.kc0("normal", "big"), "sigma"),
    (lambda: theory.r_all_to_all([1.0, float("inf")], "normal", 1.0), "k_values"),
    (lambda: theory.k_at_r(1.0, "normal", 1.0), "r_target"),
    (lambda: theory.k_at_r(-0.1, "normal", 1.0), "r_target"),
    (lambda: theory.coupling_weights(np.array([0, 1, 2]), "sqrt"), "coupling"),
    (lambda: theory.thresholds(np.array([0, 1, 2]), np.array([1, 0], np.int32), "raw",
                               "normal", -2.0), "sigma"),
    (lambda: theory.lambda_max(np.array([0, 1, 2]), np.array([1], np.int32), "raw"), "indices"),
])
def test_bad_input_names_the_parameter(call, param):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"invalid {param}") and "\n" not in message
