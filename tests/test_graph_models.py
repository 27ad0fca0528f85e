"""Tests for the Erdős–Rényi, Watts–Strogatz and power-law generators in kcbatch.networks.

Each generator gets: the CSR contract over several (n, parameter, seed); what
its process forces exactly (edge counts, minimum degrees); an exact match with
a plain-Python version of its process on a reference xoshiro256** stream;
its exact law on graphs small enough to enumerate; its distribution against
networkx's generator (or the exact degree law, for the power law) over many
samples; determinism, threads and argument validation. Every distribution test
is shown to reject a wrong generator with the same seeds and thresholds.
"""
from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from reference import RefXoshiro, csr_from_edges
from scipy import optimize, stats

from kcbatch.networks import er as er_module
from kcbatch.networks import (
    erdos_renyi,
    from_networkx,
    powerlaw,
    powerlaw_sample,
    watts_strogatz,
)

# Significance for every distribution test: seeds are fixed, so outcomes are
# deterministic; a correct generator sits far above it and the wrong ones
# shown below land many orders of magnitude under it.
ALPHA = 1e-3


# --------------------------------------------------------------------------
# Shared helpers: CSR checks, a reference stream, goodness of fit
# --------------------------------------------------------------------------

def check_csr(indptr, indices, n):
    """The package's CSR contract, checked from scratch."""
    assert indptr.dtype == np.int64 and indptr.shape == (n + 1,)
    assert indices.dtype == np.int32 and indices.ndim == 1
    assert indptr[0] == 0 and indptr[-1] == indices.shape[0]
    deg = np.diff(indptr)
    assert deg.min() >= 0
    if indices.size:
        assert indices.min() >= 0 and indices.max() < n
    rows = np.repeat(np.arange(n), deg)
    assert not np.any(indices == rows), "self-loop"
    same_row = rows[1:] == rows[:-1]
    assert np.all(np.diff(indices.astype(np.int64))[same_row] > 0), "row not strictly increasing"
    A = sp.csr_array((np.ones(indices.shape[0]), indices, indptr), shape=(n, n))
    assert (A != A.T).nnz == 0, "not symmetric"


def edge_set(indptr, indices):
    return frozenset((u, int(v)) for u in range(len(indptr) - 1)
                     for v in indices[indptr[u]:indptr[u + 1]] if v > u)


def assert_same_csr(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def gof_pvalue(samples, law):
    """Chi-square goodness of fit of sampled outcomes against an exact law
    {outcome: probability}. An outcome the law cannot produce gives p = 0."""
    counts = Counter(samples)
    if not set(counts) <= set(law):
        return 0.0
    keys = list(law)
    observed = np.array([counts.get(k, 0) for k in keys], dtype=float)
    expected = np.array([float(law[k]) for k in keys]) * len(samples)
    assert expected.min() >= 5  # the chi-square approximation needs it
    return stats.chisquare(observed, expected).pvalue


def ks_pvalues(a, b):
    """Two-sample KS p-value per column (one statistic per graph; graphs independent)."""
    return [stats.ks_2samp(a[:, j], b[:, j]).pvalue for j in range(a.shape[1])]


def nx_degrees(G):
    return np.array([d for _, d in sorted(G.degree())], dtype=np.int64)


# --------------------------------------------------------------------------
# Erdős–Rényi
# --------------------------------------------------------------------------

ER_CASES = [
    (1, 0.0, 0),           # a single node
    (2, 1.0, 3),           # p = 1: the one edge
    (2, 0.5, 1),
    (10, 9, 2),            # mean degree n-1: complete
    (50, 0, 3),            # empty
    (300, 4.5, 7),
    (2000, 6, 2**64 - 1),  # largest seed
    (3000, 0.01, 4),       # very sparse: long geometric skips
    (200, 150.0, 5),       # dense
]


@pytest.mark.parametrize("n,k,seed", ER_CASES)
def test_er_structure(n, k, seed):
    indptr, indices = erdos_renyi(n, k, seed)
    check_csr(indptr, indices, n)
    pairs = n * (n - 1) // 2
    if k == n - 1:
        assert indices.shape[0] == 2 * pairs
    if k == 0:
        assert indices.shape[0] == 0


def ref_er_edges(n, mean_degree, seed):
    """Batagelj–Brandes over the lower triangle, on the reference stream."""
    p = mean_degree / (n - 1) if n > 1 else 0.0
    if p >= 1:
        return [(v, w) for v in range(1, n) for w in range(v)]
    if p <= 0:
        return []
    rng = RefXoshiro.seeded(seed)
    lp = math.log1p(-p)
    total = n * (n - 1) // 2
    v, w, edges = 1, -1, []
    while v < n:
        skip = math.floor(math.log(1.0 - rng.uniform01()) / lp)
        if skip >= total - (v * (v - 1) // 2 + w + 1):
            break
        w += 1 + skip
        while w >= v and v < n:
            w -= v
            v += 1
        if v < n:
            edges.append((v, w))
    return edges


@pytest.mark.parametrize("n,k,seed", [(2, 0.5, 9), (40, 3, 1), (500, 6, 2**64 - 1),
                                      (300, 0.2, 8), (60, 59, 3), (100, 80, 4)])
def test_er_matches_reference_process_exactly(n, k, seed):
    assert_same_csr(erdos_renyi(n, k, seed), csr_from_edges(n, ref_er_edges(n, k, seed)))


@pytest.mark.parametrize("cap", [0, 1, 7, 1000])
def test_er_growing_the_edge_buffer_changes_nothing(cap):
    """The buffer starts at mean + 6 sd, so growth almost never happens in use;
    force it through the internal entry point with tiny initial sizes."""
    n, k, seed = 2000, 6.0, 11
    grown = er_module._er_csr(np.int64(n), np.float64(k / (n - 1)), np.uint64(seed), np.int64(cap))
    assert_same_csr(grown, erdos_renyi(n, k, seed))


def er_law(n, p):
    """{edge set: probability}: every pair independently an edge with probability p."""
    pairs = list(itertools.combinations(range(n), 2))
    law = {}
    for mask in range(1 << len(pairs)):
        chosen = frozenset(pairs[i] for i in range(len(pairs)) if mask >> i & 1)
        law[chosen] = p ** len(chosen) * (1 - p) ** (len(pairs) - len(chosen))
    return law


@pytest.mark.slow
def test_er_exact_law_on_four_nodes():
    """All 64 graphs on 4 nodes with their exact G(n, p) probabilities; also
    P(edge) = p for each pair by a binomial test."""
    n, p, samples = 4, 0.4, 20_000
    law = er_law(n, p)
    ours = [edge_set(*erdos_renyi(n, p * (n - 1), s)) for s in range(samples)]
    p_ours = gof_pvalue(ours, law)
    # Wrong: p 10% too high.
    wrong = [edge_set(*erdos_renyi(n, 1.1 * p * (n - 1), s)) for s in range(samples)]
    p_wrong = gof_pvalue(wrong, law)
    print(f"ER exact law: ours p={p_ours:.3g}, p*1.1 p={p_wrong:.3g}")
    assert p_ours > ALPHA
    assert p_wrong < 1e-6
    for pair in itertools.combinations(range(n), 2):
        hits = sum(pair in g for g in ours)
        assert stats.binomtest(hits, samples, p).pvalue > ALPHA / 6, pair


def test_er_degree_of_a_node_is_binomial():
    """Degree of node 0 (first in the pair order) and node n-1 (last) over
    independent graphs: exactly Binomial(n-1, p)."""
    n, k, graphs = 60, 5.0, 4000
    p = k / (n - 1)
    deg = np.array([np.diff(erdos_renyi(n, k, s)[0])[[0, n - 1]] for s in range(graphs)])
    pmf = stats.binom.pmf(np.arange(n), n - 1, p)
    for col in range(2):
        observed = np.bincount(deg[:, col], minlength=n).astype(float)
        # Pool both tails into bins with expected counts >= 5.
        lo, hi = 1, 10
        obs = np.concatenate([[observed[:lo + 1].sum()], observed[lo + 1:hi], [observed[hi:].sum()]])
        exp = np.concatenate([[pmf[:lo + 1].sum()], pmf[lo + 1:hi], [pmf[hi:].sum()]]) * graphs
        assert exp.min() >= 5
        assert stats.chisquare(obs, exp).pvalue > ALPHA / 2


N_ER, K_ER, GRAPHS_ER = 200, 4.0, 300


def er_features(deg):
    """Per-graph statistics: edges, mean k^2, k_max, fraction isolated."""
    deg = np.asarray(deg, dtype=np.int64)
    return np.array([deg.sum() / 2, (deg * deg).mean(), deg.max(), (deg == 0).mean()])


@pytest.fixture(scope="module")
def networkx_er_features():
    p = K_ER / (N_ER - 1)
    return np.array([er_features(nx_degrees(nx.gnp_random_graph(N_ER, p, seed=10_000 + s)))
                     for s in range(GRAPHS_ER)])


@pytest.mark.slow
def test_er_matches_networkx_gnp(networkx_er_features):
    ours = np.array([er_features(np.diff(erdos_renyi(N_ER, K_ER, s)[0])) for s in range(GRAPHS_ER)])
    pvalues = ks_pvalues(ours, networkx_er_features)
    print("ER KS p-values vs gnp_random_graph (E, <k^2>, k_max, isolated):", pvalues)
    assert min(pvalues) > ALPHA / 4, pvalues


@pytest.mark.parametrize("wrong", ["p+10%", "G(n,M)"])
@pytest.mark.slow
def test_er_networkx_test_rejects_wrong_generators(networkx_er_features, wrong):
    if wrong == "p+10%":
        degs = [np.diff(erdos_renyi(N_ER, 1.1 * K_ER, s)[0]) for s in range(GRAPHS_ER)]
    else:
        # Right mean degree, wrong law: the edge count is fixed, not binomial.
        m = round(K_ER * N_ER / 2)
        degs = [nx_degrees(nx.gnm_random_graph(N_ER, m, seed=20_000 + s)) for s in range(GRAPHS_ER)]
    pvalues = ks_pvalues(np.array([er_features(d) for d in degs]), networkx_er_features)
    print(f"ER KS p-values, wrong generator {wrong}:", pvalues)
    assert min(pvalues) < ALPHA / 4, pvalues


# --------------------------------------------------------------------------
# Watts–Strogatz
# --------------------------------------------------------------------------

WS_CASES = [
    (3, 2, 0.5, 0),        # a triangle: every rewiring is skipped
    (5, 2, 0.5, 1),
    (5, 4, 1.0, 2),        # K5: every rewiring is skipped
    (10, 4, 1.0, 3),       # everything rewired
    (8, 6, 1.0, 4),        # dense: the skip branch is reached
    (300, 10, 0.5, 5),
    (1000, 6, 0.1, 6),
    (50, 2, 0.3, 2**64 - 1),
]


@pytest.mark.parametrize("n,k,p,seed", WS_CASES)
def test_ws_structure(n, k, p, seed):
    indptr, indices = watts_strogatz(n, k, p, seed)
    check_csr(indptr, indices, n)
    # Rewiring moves an edge's far end, so the count never changes, and each
    # node keeps its own k/2 lattice edges.
    assert indices.shape[0] == n * k
    assert np.diff(indptr).min() >= k // 2


@pytest.mark.parametrize("n,k", [(3, 2), (7, 2), (12, 4), (101, 10), (1000, 6)])
def test_ws_p0_is_networkx_ring_lattice(n, k):
    assert_same_csr(watts_strogatz(n, k, 0.0, 17), from_networkx(nx.watts_strogatz_graph(n, k, 0.0)))


def ref_ws_edges(n, k, p, seed):
    """networkx's watts_strogatz_graph loop, verbatim in structure, on the reference stream."""
    rng = RefXoshiro.seeded(seed)
    adj = [set() for _ in range(n)]
    for j in range(1, k // 2 + 1):
        for u in range(n):
            v = (u + j) % n
            adj[u].add(v)
            adj[v].add(u)
    for j in range(1, k // 2 + 1):
        for u in range(n):
            v = (u + j) % n
            if rng.uniform01() < p:
                w = rng.below(n)
                while w == u or w in adj[u]:
                    w = rng.below(n)
                    if len(adj[u]) >= n - 1:
                        break
                else:
                    adj[u].discard(v)
                    adj[v].discard(u)
                    adj[u].add(w)
                    adj[w].add(u)
    return [(u, v) for u in range(n) for v in adj[u] if u < v]


@pytest.mark.parametrize("n,k,p,seed", [(5, 2, 0.5, 1), (8, 6, 1.0, 4), (9, 6, 0.7, 8),
                                        (200, 4, 0.3, 2**64 - 1), (1000, 8, 0.05, 12)])
def test_ws_matches_reference_process_exactly(n, k, p, seed):
    assert_same_csr(watts_strogatz(n, k, p, seed), csr_from_edges(n, ref_ws_edges(n, k, p, seed)))


def ws_law(n, k, p):
    """{edge set: exact probability} of networkx's process, by enumeration.

    At each lattice edge (u, v): keep it with probability 1 - p; else, when u
    has a non-neighbour other than itself, move the far end to one of them
    uniformly (redrawing from all nodes until allowed is uniform over the
    allowed ones); else keep it.
    """
    law = {}

    def step(idx, edges, prob):
        if idx == n * (k // 2):
            law[edges] = law.get(edges, 0) + prob
            return
        j, u = divmod(idx, n)
        v = (u + j + 1) % n
        nbrs = {b for a, b in edges if a == u} | {a for a, b in edges if b == u}
        allowed = [w for w in range(n) if w != u and w not in nbrs]
        if not allowed:
            step(idx + 1, edges, prob)
            return
        step(idx + 1, edges, prob * (1 - p))
        old = frozenset([(min(u, v), max(u, v))])
        for w in allowed:
            step(idx + 1, edges - old | {(min(u, w), max(u, w))}, prob * p / len(allowed))

    ring = frozenset((min(u, (u + j) % n), max(u, (u + j) % n))
                     for j in range(1, k // 2 + 1) for u in range(n))
    step(0, ring, Fraction(1))
    assert sum(law.values()) == 1
    return law


@pytest.mark.slow
def test_ws_exact_law_on_five_nodes():
    """The exact law of WS(5, 2, 1/2) (the enumeration checked against networkx
    itself), matched by ours and failed by a too-small p."""
    n, k, p, samples = 5, 2, Fraction(1, 2), 20_000
    law = ws_law(n, k, p)
    ours = [edge_set(*watts_strogatz(n, k, 0.5, s)) for s in range(samples)]
    theirs = [frozenset((min(a, b), max(a, b)) for a, b in nx.watts_strogatz_graph(n, k, 0.5, seed=s).edges)
              for s in range(samples)]
    wrong = [edge_set(*watts_strogatz(n, k, 0.4, s)) for s in range(samples)]
    p_ours, p_nx, p_wrong = (gof_pvalue(x, law) for x in (ours, theirs, wrong))
    print(f"WS exact law ({len(law)} graphs): ours p={p_ours:.3g}, networkx p={p_nx:.3g}, "
          f"p=0.4 p={p_wrong:.3g}")
    assert p_ours > ALPHA and p_nx > ALPHA
    assert p_wrong < 1e-6


N_WS, K_WS, P_WS, GRAPHS_WS = 300, 6, 0.1, 200


def mean_clustering(indptr, indices, n):
    """Mean local clustering (0 for degree < 2), from triangle counts diag(A^3)/2."""
    A = sp.csr_array((np.ones(indices.shape[0]), indices, indptr), shape=(n, n))
    tri = np.asarray((A @ A).multiply(A).sum(axis=1)).ravel() / 2
    deg = np.diff(indptr).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(deg > 1, 2 * tri / (deg * (deg - 1)), 0.0)
    return c.mean()


def ws_features(indptr, indices, n, k):
    """Per-graph statistics: edges off the lattice (rewired), clustering, <k^2>, k_max."""
    rows = np.repeat(np.arange(n), np.diff(indptr))
    gap = np.abs(rows - indices)
    ring_distance = np.minimum(gap, n - gap)
    deg = np.diff(indptr).astype(np.int64)
    return np.array([(ring_distance > k // 2).sum() / 2, mean_clustering(indptr, indices, n),
                     (deg * deg).mean(), deg.max()])


@pytest.fixture(scope="module")
def networkx_ws_features():
    return np.array([ws_features(*from_networkx(nx.watts_strogatz_graph(N_WS, K_WS, P_WS, seed=10_000 + s)),
                                 N_WS, K_WS) for s in range(GRAPHS_WS)])


@pytest.mark.slow
def test_ws_matches_networkx(networkx_ws_features):
    ours = np.array([ws_features(*watts_strogatz(N_WS, K_WS, P_WS, s), N_WS, K_WS)
                     for s in range(GRAPHS_WS)])
    pvalues = ks_pvalues(ours, networkx_ws_features)
    print("WS KS p-values vs networkx (rewired, clustering, <k^2>, k_max):", pvalues)
    assert min(pvalues) > ALPHA / 4, pvalues


@pytest.mark.parametrize("p_wrong", [0.0, 0.13])
@pytest.mark.slow
def test_ws_networkx_test_rejects_wrong_p(networkx_ws_features, p_wrong):
    wrong = np.array([ws_features(*watts_strogatz(N_WS, K_WS, p_wrong, s), N_WS, K_WS)
                      for s in range(GRAPHS_WS)])
    pvalues = ks_pvalues(wrong, networkx_ws_features)
    print(f"WS KS p-values, p={p_wrong}:", pvalues)
    assert min(pvalues) < ALPHA / 4, pvalues


# --------------------------------------------------------------------------
# Power law (erased configuration model)
# --------------------------------------------------------------------------

PL_CASES = [
    (2, 2.5, 1, 0),        # the smallest: one possible degree, 1
    (4, 2.5, 1, 1),
    (10, 3.0, 9, 2),       # min_degree = n - 1: every degree n-1, heavy erasing
    (1000, 2.05, 1, 3),    # gamma near 2: huge hubs
    (5000, 3.0, 3, 4),
    (300, 10.0, 5, 5),
    (50, 2.5, 2, 2**64 - 1),
    # An even sum is (nearly) impossible: every node draws an odd min_degree
    # and n is odd; the fallback adds one stub instead of looping forever.
    (3, 1000.0, 1, 0),
    (7, 200.0, 3, 4),
]


@pytest.mark.parametrize("n,gamma,kmin,seed", PL_CASES)
def test_powerlaw_structure(n, gamma, kmin, seed):
    s = powerlaw_sample(n, gamma, kmin, seed)
    check_csr(s.indptr, s.indices, n)
    assert s.degrees.dtype == np.int64 and s.degrees.shape == (n,)
    assert s.degrees.min() >= kmin and s.degrees.max() <= n - 1
    assert s.degrees.sum() % 2 == 0
    # Erasing only removes stub pairs: the books balance, node by node too.
    assert s.indices.shape[0] // 2 == s.degrees.sum() // 2 - s.self_loops - s.multi_edges
    assert np.all(np.diff(s.indptr) <= s.degrees)
    assert_same_csr((s.indptr, s.indices), powerlaw(n, gamma, kmin, seed))
    if gamma >= 200:
        assert sorted(s.degrees.tolist()) == [kmin] * (n - 1) + [kmin + 1]


def matching_law(degrees):
    """{erased edge set: exact probability} over all perfect matchings of the stubs."""
    stubs = [v for v, d in enumerate(degrees) for _ in range(d)]

    def matchings(items):
        if not items:
            yield []
            return
        first = items[0]
        for i in range(1, len(items)):
            for rest in matchings(items[1:i] + items[i + 1:]):
                yield [(first, items[i])] + rest

    counts = Counter(frozenset((min(a, b), max(a, b)) for a, b in m if a != b)
                     for m in matchings(stubs))
    total = sum(counts.values())
    return {g: Fraction(c, total) for g, c in counts.items()}


def loop_avoiding_pairing(degrees, rnd):
    """A WRONG pairing: join two random free stubs, redrawing self-loops
    (restart when stuck), a tempting 'fix' that is not the configuration model."""
    while True:
        free = [v for v, d in enumerate(degrees) for _ in range(d)]
        edges = set()
        while free:
            if len(set(free)) == 1:
                break
            i, j = rnd.sample(range(len(free)), 2)
            if free[i] == free[j]:
                continue
            a, b = free[i], free[j]
            for x in sorted((i, j), reverse=True):
                free.pop(x)
            edges.add((min(a, b), max(a, b)))
        if not free:
            return frozenset(edges)


@pytest.mark.slow
def test_powerlaw_pairing_exact_law():
    """gamma = 60 makes every degree min_degree = 2 (P(k=3)/P(k=2) = 1.5**-60),
    so the graph is the erased uniform matching of 10 stubs: its exact law
    enumerated over all 945 matchings."""
    n, kmin, samples = 5, 2, 20_000
    law = matching_law([kmin] * n)
    ours = []
    for s in range(samples):
        sample = powerlaw_sample(n, 60.0, kmin, s)
        assert np.all(sample.degrees == kmin)
        ours.append(edge_set(sample.indptr, sample.indices))
    rnd = random.Random(7)
    wrong = [loop_avoiding_pairing([kmin] * n, rnd) for _ in range(samples)]
    p_ours, p_wrong = gof_pvalue(ours, law), gof_pvalue(wrong, law)
    print(f"pairing exact law ({len(law)} graphs): ours p={p_ours:.3g}, loop-avoiding p={p_wrong:.3g}")
    assert p_ours > ALPHA
    assert p_wrong < 1e-6


def test_powerlaw_self_loops_match_configuration_model():
    """Given the degrees, a uniform matching makes sum_i C(k_i, 2) / (2M - 1)
    self-loops on average (each pair of a node's stubs is matched with
    probability 1/(2M-1)); counts are close to Poisson, so the total over
    independent graphs is within a few sqrt(expected) of its mean."""
    observed = expected = 0.0
    for s in range(40):
        sample = powerlaw_sample(2000, 2.3, 2, s)
        d = sample.degrees.astype(float)
        observed += sample.self_loops
        expected += (d * (d - 1) / 2).sum() / (d.sum() - 1)
    z = (observed - expected) / math.sqrt(expected)
    print(f"self-loops: observed {observed:.0f}, expected {expected:.1f}, z={z:.2f}")
    assert abs(z) < 4


def discrete_pmf(gamma, kmin, kmax):
    k = np.arange(kmin, kmax + 1, dtype=float)
    w = k ** -gamma
    return k, w / w.sum()


def pareto_floor_degrees(n, gamma, kmin, rng):
    """A WRONG degree law: the continuous Pareto(kmin, gamma) rounded down."""
    return np.minimum(np.floor(kmin * (1 - rng.random(n)) ** (-1 / (gamma - 1))), n - 1).astype(np.int64)


def pmf_chisquare_pvalue(degrees, gamma, kmin, kmax):
    """Chi-square of pooled degrees against the exact pmf, tail bins merged to
    expected counts >= 20."""
    k, pmf = discrete_pmf(gamma, kmin, kmax)
    observed = np.bincount(degrees - kmin, minlength=k.shape[0]).astype(float)
    expected = pmf * degrees.shape[0]
    cut = int(np.argmax(expected[::-1].cumsum()[::-1] < 20))  # first k whose tail is thin
    obs = np.append(observed[:cut], observed[cut:].sum())
    exp = np.append(expected[:cut], expected[cut:].sum())
    return stats.chisquare(obs, exp).pvalue


def test_powerlaw_degrees_follow_the_exact_pmf():
    n, gamma, kmin, graphs = 5000, 2.5, 2, 20
    ours = np.concatenate([powerlaw_sample(n, gamma, kmin, s).degrees for s in range(graphs)])
    p_ours = pmf_chisquare_pvalue(ours, gamma, kmin, n - 1)
    rng = np.random.default_rng(3)
    wrong = np.concatenate([pareto_floor_degrees(n, gamma, kmin, rng) for _ in range(graphs)])
    p_wrong = pmf_chisquare_pvalue(wrong, gamma, kmin, n - 1)
    print(f"degree pmf chi-square: ours p={p_ours:.3g}, floored Pareto p={p_wrong:.3g}")
    assert p_ours > ALPHA
    assert p_wrong < 1e-6


def mle_gamma(degrees, kmin, kmax):
    """Discrete maximum-likelihood exponent (Clauset, Shalizi & Newman 2009,
    eq. 3.7) for the power law truncated to [kmin, kmax], and its standard
    error 1/sqrt(N Var(ln K)) (inverse Fisher information at the estimate)."""
    degrees = degrees[degrees >= kmin]
    mean_log = np.log(degrees.astype(float)).mean()
    k = np.arange(kmin, kmax + 1, dtype=float)
    log_k = np.log(k)

    def neg_loglik(g):
        return g * mean_log + np.log(np.sum(k ** -g))

    g = optimize.minimize_scalar(neg_loglik, bounds=(2.0001, 20.0), method="bounded",
                                 options={"xatol": 1e-10}).x
    _, pmf = discrete_pmf(g, kmin, kmax)
    var_log = np.sum(pmf * log_k ** 2) - np.sum(pmf * log_k) ** 2
    return g, 1 / math.sqrt(degrees.shape[0] * var_log)


@pytest.mark.parametrize("gamma,kmin", [(2.5, 2), (3.0, 3)])
def test_powerlaw_exponent_by_maximum_likelihood(gamma, kmin):
    """The MLE of the drawn degrees is within 4 standard errors of gamma (the
    MLE is asymptotically normal with that SE, so a correct generator fails
    with probability ~6e-5; N = 10**5 makes SE ~ 0.005). The graph's degrees
    after erasing (those still >= kmin) are allowed 4 SE plus 0.02 for the
    erasing bias: erasing removes ~0.2% (gamma 3) to ~4% (gamma 2.5) of the
    edges, almost all at hubs, which weigh little in the MLE's mean of
    ln k; the shift it causes here is ~0.002 and ~0.01. A generator with
    gamma off by 0.1 is rejected."""
    n, graphs = 10_000, 10
    samples = [powerlaw_sample(n, gamma, kmin, s) for s in range(graphs)]
    drawn = np.concatenate([s.degrees for s in samples])
    g, se = mle_gamma(drawn, kmin, n - 1)
    final = np.concatenate([np.diff(s.indptr) for s in samples])
    g_final, se_final = mle_gamma(final, kmin, n - 1)
    off = np.concatenate([powerlaw_sample(n, gamma + 0.1, kmin, s).degrees for s in range(graphs)])
    g_off, _ = mle_gamma(off, kmin, n - 1)
    print(f"MLE gamma={gamma}: drawn {g:.4f} ± {se:.4f}, after erasing {g_final:.4f}, "
          f"generator at gamma+0.1: {g_off:.4f}")
    assert abs(g - gamma) < 4 * se
    assert abs(g_final - gamma) < 4 * se_final + 0.02
    assert abs(g_off - gamma) > 4 * se


def test_powerlaw_few_edges_erased_at_gamma_3():
    """gamma = 3, kmin = 3, n = 10**4: the expected number of multi-edges is
    about (<k(k-1)>/<k>)**2 / 4 and of self-loops <k(k-1)>/(2<k>), a handful
    against ~2.6e4 edges; fewer than 1% of the stub pairs may be erased."""
    for s in range(5):
        sample = powerlaw_sample(10_000, 3.0, 3, s)
        d = sample.degrees.astype(float)
        ratio = (d * (d - 1)).mean() / d.mean()
        expected = ratio ** 2 / 4 + ratio / 2
        erased = sample.self_loops + sample.multi_edges
        pairs = d.sum() / 2
        print(f"seed {s}: erased {erased} of {pairs:.0f} (theory ~{expected:.0f})")
        assert erased < 0.01 * pairs
        assert erased < 3 * expected + 10


# --------------------------------------------------------------------------
# Determinism, threads, validation (all three generators)
# --------------------------------------------------------------------------

GENERATORS = {
    "er": (erdos_renyi, dict(n=2000, mean_degree=6.0)),
    "ws": (watts_strogatz, dict(n=2000, k=6, p=0.1)),
    "powerlaw": (powerlaw, dict(n=2000, gamma=2.5, min_degree=3)),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_graph_and_seeds_differ(name):
    gen, kw = GENERATORS[name]
    assert_same_csr(gen(**kw, seed=2024), gen(**kw, seed=2024))
    graphs = [gen(**kw, seed=s) for s in (0, 1, 2, 3, 2**32, 2**64 - 1)]
    assert len({(a.tobytes(), b.tobytes()) for a, b in graphs}) == len(graphs)


@pytest.mark.parametrize("name", GENERATORS)
def test_numpy_scalar_arguments_give_the_same_graph(name):
    gen, kw = GENERATORS[name]
    as_numpy = {k: np.int32(v) if isinstance(v, int) else np.float64(v) for k, v in kw.items()}
    assert_same_csr(gen(**kw, seed=2**64 - 1), gen(**as_numpy, seed=np.uint64(2**64 - 1)))


@pytest.mark.parametrize("name", GENERATORS)
def test_threads_give_the_same_graphs(name):
    gen, kw = GENERATORS[name]
    seeds = list(range(12))
    serial = [gen(**kw, seed=s) for s in seeds]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda s: gen(**kw, seed=s), seeds))
    for a, b in zip(serial, threaded, strict=True):
        assert_same_csr(a, b)


@pytest.mark.parametrize("gen,kwargs,name,allowed", [
    (erdos_renyi, dict(n=0, mean_degree=0, seed=0), "n", "1 <= n"),
    (erdos_renyi, dict(n=2**31, mean_degree=1, seed=0), "n", "n <= 2147483647"),
    (erdos_renyi, dict(n=10.0, mean_degree=1, seed=0), "n", "integer"),
    (erdos_renyi, dict(n=True, mean_degree=1, seed=0), "n", "integer"),
    (erdos_renyi, dict(n=10, mean_degree=-0.5, seed=0), "mean_degree", "0 <= mean_degree <= n - 1 = 9"),
    (erdos_renyi, dict(n=10, mean_degree=9.5, seed=0), "mean_degree", "0 <= mean_degree <= n - 1 = 9"),
    (erdos_renyi, dict(n=10, mean_degree=float("nan"), seed=0), "mean_degree", "finite"),
    (erdos_renyi, dict(n=10, mean_degree=float("inf"), seed=0), "mean_degree", "finite"),
    (erdos_renyi, dict(n=10, mean_degree="3", seed=0), "mean_degree", "finite number"),
    (erdos_renyi, dict(n=10, mean_degree=True, seed=0), "mean_degree", "finite number"),
    (erdos_renyi, dict(n=10, mean_degree=3, seed=-1), "seed", "[0, 2**64)"),
    (erdos_renyi, dict(n=10, mean_degree=3, seed=2**64), "seed", "[0, 2**64)"),
    (watts_strogatz, dict(n=10, k=3, p=0.1, seed=0), "k", "even and >= 2"),
    (watts_strogatz, dict(n=10, k=0, p=0.1, seed=0), "k", "even and >= 2"),
    (watts_strogatz, dict(n=10, k=2.0, p=0.1, seed=0), "k", "integer"),
    (watts_strogatz, dict(n=6, k=6, p=0.1, seed=0), "n", "k < n"),
    (watts_strogatz, dict(n=4, k=6, p=0.1, seed=0), "n", "(k=6)"),
    (watts_strogatz, dict(n=10, k=2, p=1.5, seed=0), "p", "in [0, 1]"),
    (watts_strogatz, dict(n=10, k=2, p=-0.1, seed=0), "p", "in [0, 1]"),
    (watts_strogatz, dict(n=10, k=2, p=None, seed=0), "p", "finite number"),
    (watts_strogatz, dict(n=10, k=2, p=0.5, seed=1.5), "seed", "integer"),
    (powerlaw, dict(n=10, gamma=2.0, min_degree=1, seed=0), "gamma", "> 2"),
    (powerlaw, dict(n=10, gamma=1.5, min_degree=1, seed=0), "gamma", "> 2"),
    (powerlaw, dict(n=10, gamma=float("inf"), min_degree=1, seed=0), "gamma", "finite"),
    (powerlaw, dict(n=10, gamma=3.0, min_degree=0, seed=0), "min_degree", ">= 1"),
    (powerlaw, dict(n=10, gamma=3.0, min_degree=2.0, seed=0), "min_degree", "integer"),
    (powerlaw, dict(n=3, gamma=3.0, min_degree=3, seed=0), "n", "min_degree < n"),
    (powerlaw, dict(n=3, gamma=3.0, min_degree=5, seed=0), "n", "(min_degree=5)"),
    (powerlaw, dict(n=10, gamma=3.0, min_degree=2, seed=None), "seed", "integer"),
])
def test_invalid_arguments(gen, kwargs, name, allowed):
    with pytest.raises(ValueError) as info:
        gen(**kwargs)
    msg = str(info.value)
    assert msg.startswith(f"invalid {name}={kwargs[name]!r}: must be "), msg
    assert allowed in msg, msg
