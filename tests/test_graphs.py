"""Tests for kcbatch.networks: the numba Barabási–Albert generator and CSR helpers."""
from __future__ import annotations

import itertools
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from reference import RefXoshiro, csr_from_edges, ref_splitmix64
from scipy import stats
from scipy.sparse.csgraph import connected_components

from kcbatch.networks import barabasi_albert, from_networkx, graph_stats, rng


def n_edges(n, m):
    return m + (n - m - 1) * m


def neighbour_lists(indptr, indices):
    return [indices[indptr[i]:indptr[i + 1]].tolist() for i in range(len(indptr) - 1)]


# --------------------------------------------------------------------------
# Structural invariants
# --------------------------------------------------------------------------

CASES = [
    (2, 1, 0),           # n = m + 1: just the star (a single edge)
    (3, 1, 1),
    (500, 1, 7),         # m = 1: a tree
    (6, 5, 11),          # n = m + 1 with a bigger star
    (7, 5, 3),           # n = m + 2
    (400, 5, 5),
    (2000, 3, 123),
    (50, 2, 2**64 - 1),  # largest seed
]


@pytest.mark.parametrize("n,m,seed", CASES)
def test_structure(n, m, seed):
    indptr, indices = barabasi_albert(n, m, seed)
    assert indptr.dtype == np.int64 and indptr.shape == (n + 1,)
    assert indices.dtype == np.int32 and indices.shape == (2 * n_edges(n, m),)
    assert indptr[0] == 0 and indptr[-1] == indices.shape[0]
    deg = np.diff(indptr)
    # Not min(deg) >= m: the star's leaves 1..m start with degree 1 and may
    # never be picked (networkx's graphs have such nodes too).
    assert deg[0] >= m and deg[1:m + 1].min() >= 1
    if n > m + 1:
        assert deg[m + 1:].min() >= m
    assert indices.min() >= 0 and indices.max() < n

    rows = np.repeat(np.arange(n), deg)
    assert not np.any(indices == rows), "self-loop"
    # Strictly increasing within each row <=> sorted and no duplicates.
    same_row = rows[1:] == rows[:-1]
    assert np.all(np.diff(indices.astype(np.int64))[same_row] > 0)

    A = sp.csr_array((np.ones(indices.shape[0]), indices, indptr), shape=(n, n))
    assert (A != A.T).nnz == 0, "not symmetric"
    n_comp, _ = connected_components(A, directed=False)
    assert n_comp == 1


def test_m1_is_a_tree():
    indptr, indices = barabasi_albert(300, 1, 42)
    G = nx.Graph()
    G.add_nodes_from(range(300))
    for u, row in enumerate(neighbour_lists(indptr, indices)):
        G.add_edges_from((u, v) for v in row)
    assert nx.is_tree(G)


@pytest.mark.parametrize("n,m,seed", CASES)
def test_forced_by_the_process(n, m, seed):
    """What the rule fixes regardless of the random draws.

    Node ids are creation order, so a node's neighbours with smaller ids are
    exactly the edges it made when it arrived: the hub 0 made none, each leaf
    1..m made one (to the hub) and every later node made exactly m.
    """
    nbrs = neighbour_lists(*barabasi_albert(n, m, seed))
    assert nbrs[0][:m] == list(range(1, m + 1))
    for leaf in range(1, m + 1):
        assert [v for v in nbrs[leaf] if v < leaf] == [0]
    for s in range(m + 1, n):
        assert len([v for v in nbrs[s] if v < s]) == m


@pytest.mark.parametrize("m", [1, 2, 5])
def test_n_equals_m_plus_1_is_the_star(m):
    indptr, indices = barabasi_albert(m + 1, m, 99)
    ref = from_networkx(nx.star_graph(m))
    np.testing.assert_array_equal(indptr, ref[0])
    np.testing.assert_array_equal(indices, ref[1])


# --------------------------------------------------------------------------
# Exact law of the first steps
# --------------------------------------------------------------------------

def subset_probability(weights, subset):
    """P(the m distinct targets == subset) when drawing with replacement
    proportionally to ``weights`` and discarding repeats. Discarding repeats
    makes each accepted draw proportional to weight among the not-yet-chosen
    nodes, so sum over the orders in which the subset can be found."""
    total = sum(weights.values())
    p = Fraction(0)
    for order in itertools.permutations(subset):
        q, left = Fraction(1), total
        for v in order:
            q *= Fraction(weights[v], left)
            left -= weights[v]
        p += q
    return p


def exact_ba_law(n, m):
    """{frozenset of edges: exact probability} of networkx's BA process."""
    star = frozenset((i, 0) for i in range(1, m + 1))
    deg = {0: m, **{i: 1 for i in range(1, m + 1)}}
    law = {}

    def grow(source, edges, deg, p):
        if source == n:
            law[edges] = law.get(edges, 0) + p
            return
        for subset in itertools.combinations(sorted(deg), m):
            q = subset_probability(deg, subset)
            d = dict(deg)
            for t in subset:
                d[t] += 1
            d[source] = m
            grow(source + 1, edges | {(source, t) for t in subset}, d, p * q)

    grow(m + 1, star, deg, Fraction(1))
    assert sum(law.values()) == 1
    return law


def edge_set(indptr, indices):
    return frozenset((u, v) for u, row in enumerate(neighbour_lists(indptr, indices))
                     for v in row if v < u)


def uniform_attachment_edges(n, m, rnd):
    """A WRONG generator: targets uniform over existing nodes, ignoring degree."""
    edges = {(i, 0) for i in range(1, m + 1)}
    for s in range(m + 1, n):
        targets = set()
        while len(targets) < m:
            targets.add(rnd.randrange(s))
        edges |= {(s, t) for t in targets}
    return frozenset(edges)


def gof_pvalue(samples, law):
    """Chi-square goodness of fit of sampled graphs against the exact law."""
    counts = Counter(samples)
    assert set(counts) <= set(law), "a graph the process cannot produce"
    keys = sorted(law, key=sorted)
    observed = np.array([counts.get(k, 0) for k in keys], dtype=float)
    expected = np.array([float(law[k]) for k in keys]) * len(samples)
    assert expected.min() >= 5  # the chi-square approximation needs it
    return stats.chisquare(observed, expected).pvalue


# (5, 2): the hub has weight 2 of 4 when node 3 picks 2 of {0, 1, 2}, then
# node 4 picks 2 of 4 nodes with the updated degrees (18 graphs).
# (6, 1): the m = 1 tree process, 2*3*4*5 = 120 graphs.
# (6, 4): n = m + 2: node 5 joins 4 of the 5 star nodes, leaving out the hub
# with P = 4!/(8*7*6*5) = 1/70 and each leaf with P = 69/280.
@pytest.mark.parametrize("n,m,samples", [(5, 2, 20_000), (6, 1, 30_000), (6, 4, 20_000)])
@pytest.mark.slow
def test_first_steps_follow_the_exact_law(n, m, samples):
    law = exact_ba_law(n, m)
    ours = [edge_set(*barabasi_albert(n, m, seed)) for seed in range(samples)]
    p_ours = gof_pvalue(ours, law)
    rnd = random.Random(1234)
    wrong = [uniform_attachment_edges(n, m, rnd) for _ in range(samples)]
    p_wrong = gof_pvalue(wrong, law)
    print(f"chi-square GOF BA({n}, {m}): ours p={p_ours:.3g}, uniform attachment p={p_wrong:.3g}")
    # Fixed seeds: deterministic. The correct generator sits far above 1e-3,
    # the uniform-attachment one many orders of magnitude below it.
    assert p_ours > 1e-3, p_ours
    assert p_wrong < 1e-6, p_wrong


# --------------------------------------------------------------------------
# The random stream: published test vectors and an exact Python reference
# --------------------------------------------------------------------------

def ref_barabasi_albert_edges(n, m, seed):
    """networkx's process written out plainly, on the reference stream."""
    rng = RefXoshiro.seeded(seed)
    edges = [(i, 0) for i in range(1, m + 1)]
    repeated = [0] * m + list(range(1, m + 1))
    for s in range(m + 1, n):
        targets = []
        while len(targets) < m:
            t = repeated[rng.below(len(repeated))]
            if t not in targets:
                targets.append(t)
        edges += [(s, t) for t in targets]
        repeated += targets + [s] * m
    return edges


def test_splitmix64_published_vector():
    # Vigna's splitmix64.c from state 0.
    sm = np.zeros(1, dtype=np.uint64)
    got = [int(rng.splitmix64_next(sm)) for _ in range(4)]
    assert got == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC]
    s, ref = 0, []
    for _ in range(4):
        s, z = ref_splitmix64(s)
        ref.append(z)
    assert ref == got


def test_xoshiro256ss_published_vector():
    # The reference xoshiro256** outputs from state {1, 2, 3, 4}.
    want = [11520, 0, 1509978240, 1215971899390074240, 1216172134540287360, 607988272756665600]
    state = np.array([1, 2, 3, 4], dtype=np.uint64)
    assert [int(rng.xoshiro_next(state)) for _ in range(6)] == want
    ref = RefXoshiro([1, 2, 3, 4])
    assert [ref.next() for _ in range(6)] == want


@pytest.mark.parametrize("seed", [0, 1, 2**63, 2**64 - 1])
def test_seeding_matches_reference(seed):
    assert rng.xoshiro_seed(np.uint64(seed)).tolist() == RefXoshiro.seeded(seed).s


@pytest.mark.parametrize("bound", [1, 3, 1000, 2**31 + 1, 2**32 - 1, 2**32, 2**40 + 3, 2**63 - 1])
def test_uniform_below_matches_reference(bound):
    # 2**31 + 1 rejects almost half the draws, so the rejection path is covered;
    # bounds >= 2**32 take the mask-and-reject branch.
    state = rng.xoshiro_seed(np.uint64(77))
    ref = RefXoshiro.seeded(77)
    got = [int(rng.uniform_below(state, bound)) for _ in range(2000)]
    assert got == [ref.below(bound) for _ in range(2000)]
    assert 0 <= min(got) and max(got) < bound


def test_uniform_below_is_uniform():
    state = rng.xoshiro_seed(np.uint64(5))
    draws = np.array([rng.uniform_below(state, 6) for _ in range(60_000)])
    assert stats.chisquare(np.bincount(draws, minlength=6)).pvalue > 1e-3


@pytest.mark.parametrize("n,m,seed", [(2, 1, 3), (40, 1, 8), (300, 3, 2**64 - 1), (120, 7, 12345)])
def test_matches_reference_process_exactly(n, m, seed):
    indptr, indices = barabasi_albert(n, m, seed)
    ref_indptr, ref_indices = csr_from_edges(n, ref_barabasi_albert_edges(n, m, seed))
    np.testing.assert_array_equal(indptr, ref_indptr)
    np.testing.assert_array_equal(indices, ref_indices)


# --------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------

def test_same_seed_same_graph():
    a = barabasi_albert(1000, 3, 2024)
    b = barabasi_albert(1000, 3, 2024)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_different_seeds_different_graphs():
    graphs_ = [barabasi_albert(1000, 3, s) for s in (0, 1, 2, 3, 2**32, 2**64 - 1)]
    keys = {(p.tobytes(), i.tobytes()) for p, i in graphs_}
    assert len(keys) == len(graphs_)


def test_numpy_integer_arguments_give_the_same_graph():
    a = barabasi_albert(500, 2, 2**64 - 1)
    b = barabasi_albert(np.int32(500), np.int64(2), np.uint64(2**64 - 1))
    np.testing.assert_array_equal(a[1], b[1])


def test_threads_give_the_same_graphs():
    seeds = list(range(16))
    serial = [barabasi_albert(3000, 3, s) for s in seeds]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda s: barabasi_albert(3000, 3, s), seeds))
    for (p1, i1), (p2, i2) in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(i1, i2)


# --------------------------------------------------------------------------
# Degree distribution against networkx
# --------------------------------------------------------------------------
#
# Test choice. Degrees inside one graph are dependent (they sum to exactly 2E
# and hubs compete for the same attachment mass), so a chi-square on degree
# counts pooled over graphs treats dependent values as independent and its
# null distribution is only approximately chi-square. Instead each graph gives
# ONE value of a statistic, graphs are independent, and a two-sample
# Kolmogorov-Smirnov test compares our values with networkx's; that is exact
# for independent samples (conservative when values tie, as integers do). Three
# statistics cover the whole distribution:
#   mean of k^2        the tail (hubs dominate it; it is what sets Kc),
#   k_max              the extreme hub (~ m sqrt(n) here, ~ m log n without PA),
#   fraction k == m    the body (2/(m+2) for BA, 1/(m+1) for uniform attachment).
# Bonferroni over the three: reject when any p < ALPHA / 3. Seeds are fixed,
# so the outcome is deterministic; ALPHA = 1e-3 leaves a correct generator a
# wide margin while the wrong ones below land at p ~ 1e-30 or smaller.

N_DIST, M_DIST, GRAPHS = 1000, 3, 150
ALPHA = 1e-3


def degree_features(deg):
    deg = np.asarray(deg, dtype=np.int64)
    return np.array([(deg * deg).mean(), deg.max(), (deg == M_DIST).mean()])


def mixed_attachment_degrees(n, m, seed, p_pref):
    """A WRONG generator family: each draw is preferential with probability
    ``p_pref``, else uniform over existing nodes. ``p_pref = 0`` is uniform
    attachment (exponential degree tail); ``p_pref = 0.9`` is shifted-linear
    attachment, a power law with exponent 3 + 2(1-p)/p ~ 3.2 instead of 3."""
    rnd = random.Random(seed)
    deg = [m] + [1] * m + [0] * (n - m - 1)
    repeated = [0] * m + list(range(1, m + 1))
    for s in range(m + 1, n):
        targets = set()
        while len(targets) < m:
            if rnd.random() < p_pref:
                targets.add(repeated[rnd.randrange(len(repeated))])
            else:
                targets.add(rnd.randrange(s))
        for t in targets:
            deg[t] += 1
        deg[s] = m
        repeated += list(targets) + [s] * m
    return deg


def ks_pvalues(a, b):
    return [stats.ks_2samp(a[:, j], b[:, j]).pvalue for j in range(a.shape[1])]


@pytest.fixture(scope="module")
def networkx_features():
    return np.array([
        degree_features([d for _, d in nx.barabasi_albert_graph(N_DIST, M_DIST, seed=10_000 + s).degree()])
        for s in range(GRAPHS)
    ])


@pytest.mark.slow
def test_degree_distribution_matches_networkx(networkx_features):
    ours = np.array([degree_features(np.diff(barabasi_albert(N_DIST, M_DIST, s)[0]))
                     for s in range(GRAPHS)])
    pvalues = ks_pvalues(ours, networkx_features)
    print("KS p-values ours vs networkx (mean k^2, k_max, P(k=m)):", pvalues)
    assert min(pvalues) > ALPHA / 3, pvalues


@pytest.mark.parametrize("p_pref", [0.0, 0.9], ids=["uniform", "90pct-preferential"])
@pytest.mark.slow
def test_degree_test_rejects_wrong_generators(networkx_features, p_pref):
    wrong = np.array([degree_features(mixed_attachment_degrees(N_DIST, M_DIST, 20_000 + s, p_pref))
                      for s in range(GRAPHS)])
    pvalues = ks_pvalues(wrong, networkx_features)
    print(f"KS p-values wrong generator p_pref={p_pref} vs networkx:", pvalues)
    assert min(pvalues) < ALPHA / 3, pvalues


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,name", [
    (dict(n=10, m=0, seed=0), "m"),
    (dict(n=10, m=-2, seed=0), "m"),
    (dict(n=10, m=1.5, seed=0), "m"),
    (dict(n=10, m=True, seed=0), "m"),
    (dict(n=10, m=None, seed=0), "m"),
    (dict(n=3, m=3, seed=0), "n"),
    (dict(n=2, m=3, seed=0), "n"),
    (dict(n=2**31, m=3, seed=0), "n"),
    (dict(n=10.0, m=3, seed=0), "n"),
    (dict(n="10", m=3, seed=0), "n"),
    (dict(n=np.bool_(True), m=3, seed=0), "n"),
    (dict(n=10, m=3, seed=-1), "seed"),
    (dict(n=10, m=3, seed=2**64), "seed"),
    (dict(n=10, m=3, seed=1.0), "seed"),
    (dict(n=10, m=3, seed=False), "seed"),
    (dict(n=10, m=3, seed=None), "seed"),
])
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError) as info:
        barabasi_albert(**kwargs)
    msg = str(info.value)
    assert f"invalid {name}={kwargs[name]!r}:" in msg
    assert "must be an integer" in msg


def test_invalid_message_says_what_is_allowed():
    with pytest.raises(ValueError, match=r"invalid m=0: must be an integer >= 1"):
        barabasi_albert(10, 0, 0)
    with pytest.raises(ValueError, match=r"invalid n=3: .*m < n.*\(m=3\)"):
        barabasi_albert(3, 3, 0)
    with pytest.raises(ValueError, match=r"invalid seed=-1: .*\[0, 2\*\*64\)"):
        barabasi_albert(10, 3, -1)


# --------------------------------------------------------------------------
# from_networkx and graph_stats
# --------------------------------------------------------------------------

def networkx_csr(G):
    A = nx.to_scipy_sparse_array(G, nodelist=list(G.nodes), format="csr")
    A.sort_indices()
    return A.indptr, A.indices


@pytest.mark.parametrize("G", [
    nx.karate_club_graph(),
    nx.relabel_nodes(nx.gnm_random_graph(60, 150, seed=3), {i: f"v{59 - i}" for i in range(60)}),
    nx.barabasi_albert_graph(200, 2, seed=1),
    nx.empty_graph(4),
], ids=["karate", "string-labels", "nx-ba", "isolated"])
def test_from_networkx_matches_networkx_adjacency(G):
    indptr, indices = from_networkx(G)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    ref_indptr, ref_indices = networkx_csr(G)
    np.testing.assert_array_equal(indptr, ref_indptr)
    np.testing.assert_array_equal(indices, ref_indices)


def test_from_networkx_row_order_is_node_order():
    G = nx.Graph([("c", "a"), ("a", "b")])  # nodes: c, a, b
    indptr, indices = from_networkx(G)
    assert neighbour_lists(indptr, indices) == [[1], [0, 2], [1]]


def test_round_trip_through_networkx():
    indptr, indices = barabasi_albert(500, 4, 31)
    G = nx.Graph()
    G.add_nodes_from(range(500))
    G.add_edges_from((u, int(v)) for u, row in enumerate(neighbour_lists(indptr, indices)) for v in row)
    back = from_networkx(G)
    np.testing.assert_array_equal(back[0], indptr)
    np.testing.assert_array_equal(back[1], indices)


def test_from_networkx_empty_graph():
    indptr, indices = from_networkx(nx.Graph())
    assert indptr.tolist() == [0] and indices.shape == (0,)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32


def test_from_networkx_rejects():
    with pytest.raises(ValueError, match="directed"):
        from_networkx(nx.DiGraph([(0, 1)]))
    with pytest.raises(ValueError, match="multigraph"):
        from_networkx(nx.MultiGraph([(0, 1), (0, 1)]))
    with pytest.raises(ValueError, match=r"self-loop at node 'x'"):
        from_networkx(nx.Graph([("a", "x"), ("x", "x")]))


def direct_stats(G):
    deg = np.array([d for _, d in G.degree()], dtype=float)
    return dict(nodes=G.number_of_nodes(), edges=G.number_of_edges(), mean_k=deg.mean(),
                mean_k2=(deg ** 2).mean(), k_max=int(deg.max()))


@pytest.mark.parametrize("G", [nx.karate_club_graph(), nx.barabasi_albert_graph(300, 3, seed=4),
                               nx.path_graph(5), nx.empty_graph(3)],
                         ids=["karate", "ba", "path", "no-edges"])
def test_graph_stats_against_numpy(G):
    got = graph_stats(*from_networkx(G))
    want = direct_stats(G)
    assert set(got) == set(want)
    assert got["nodes"] == want["nodes"] and got["edges"] == want["edges"]
    assert got["k_max"] == want["k_max"]
    assert got["mean_k"] == pytest.approx(want["mean_k"], rel=1e-12)
    assert got["mean_k2"] == pytest.approx(want["mean_k2"], rel=1e-12)
    assert isinstance(got["nodes"], int) and isinstance(got["edges"], int)
    assert isinstance(got["k_max"], int)
    assert isinstance(got["mean_k"], float) and isinstance(got["mean_k2"], float)


def test_graph_stats_of_generated_graph():
    n, m = 1000, 3
    indptr, indices = barabasi_albert(n, m, 8)
    s = graph_stats(indptr, indices)
    deg = np.bincount(indices, minlength=n)  # degree counted from the column side
    assert s["edges"] == n_edges(n, m)
    assert s["mean_k"] == pytest.approx(2 * n_edges(n, m) / n)
    assert s["mean_k2"] == pytest.approx(np.mean(deg.astype(float) ** 2))
    assert s["k_max"] == deg.max()


def test_graph_stats_rejects_bad_csr():
    with pytest.raises(ValueError, match="indptr"):
        graph_stats(np.array([0]), np.array([], dtype=np.int32))
    with pytest.raises(ValueError, match="indices"):
        graph_stats(np.array([0, 1, 2]), np.array([1], dtype=np.int32))
