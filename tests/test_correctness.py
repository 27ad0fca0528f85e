"""Parity of every engine with the independent float64 reference (tests/reference.py).

One test body, parametrised over the devices (the ``device`` argument:
tests/conftest.py runs it on cpu, gpu-sim and gpu, skipping those unusable here and
marking the gpu cases ``gpu``) and both precisions.

Tolerances (absolute, on r and on every sample of r):

* float64: 1e-9.  Engine and reference differ only in the order of float64
  operations (the engine uses sin(a-b) = sin a cos b - cos a sin b and sums in
  its own order), i.e. ~1e-16 per operation, amplified by at most a few orders of
  magnitude by the dynamics over the ~80 steps used here (measured: <= 4e-15).
* float32: 1e-4.  float32 rounding (eps 6e-8 on phases in [0, 2pi) -> ~4e-7 rad)
  accumulated over ~80 RK4 steps gives |r32 - r64| ~ 1e-6 on these problems
  (measured max over all cases and samples: 5e-6 on cpu, gpu-sim and an H100,
  9e-6 with fast_math on the H100), while a protocol error such as sampling one step early/late moves r by ~1e-3
  or more: ``test_off_by_one_is_detectable`` proves, with the reference alone,
  that every such mistake moves r by more than 10x this tolerance.
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import reference  # tests/reference.py: imports nothing from kcbatch
from reference import csr_from_edges

import kcbatch

TOL = {"float64": 1e-9, "float32": 1e-4}
PRECISIONS = ("float64", "float32")

# Short protocol so the slow backends stay cheap: 40 transient + 40 measurement
# steps; 40 is not a multiple of 3, so the sample count ceil(40/3) = 14 also
# checks the ceil (a floor would give 13).
DT, T_TR, T_ME, EVERY = 0.05, 2.0, 2.0, 3
N_TR, N_ME = 40, 40
K_GRID = np.array([0.0, 0.5, 1.0, 2.0, 3.5, 6.0, 8.0])
THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


# --------------------------------------------------------------------------- graphs

def insert_isolated(csr, positions):
    """Insert isolated nodes so they end up at ``positions`` (sorted) in the new graph."""
    indptr, indices = csr
    n = len(indptr) - 1
    new_n = n + len(positions)
    old_to_new = np.array([i for i in range(new_n) if i not in set(positions)])
    edges = []
    for i in range(n):
        for j in indices[indptr[i]:indptr[i + 1]]:
            if i < j:
                edges.append((old_to_new[i], old_to_new[j]))
    return csr_from_edges(new_n, edges)


def ba(n, m, seed):
    from kcbatch.networks import barabasi_albert
    indptr, indices = barabasi_albert(n, m, seed)
    return np.asarray(indptr), np.asarray(indices)


def graph(name):
    if name == "isolated+component":       # node 0 isolated; triangle with a tail
        return csr_from_edges(5, [(1, 2), (2, 3), (3, 1), (3, 4)])
    if name == "star12":
        return csr_from_edges(12, [(0, i) for i in range(1, 12)])
    if name == "path15":
        return csr_from_edges(15, [(i, i + 1) for i in range(14)])
    if name == "complete10":
        return csr_from_edges(10, [(i, j) for i in range(10) for j in range(i + 1, 10)])
    if name == "ba80m2+isolated":          # isolated nodes in the middle and at the end
        return insert_isolated(ba(80, 2, seed=7), [40, 81])
    if name.startswith("ba"):                # "ba<n>m<m>"
        n, m = name[2:].split("m")
        return ba(int(n), int(m), seed=1000 + int(n) + int(m))
    raise KeyError(name)


CASES = ["isolated+component", "star12", "path15", "complete10",
         "ba50m1", "ba120m2", "ba200m3", "ba300m4", "ba80m2+isolated", "drift:ba60m2"]


def case_inputs(name):
    """(csr, omega, theta0) of a case, seeded from its name."""
    seed = sum(ord(c) * 31 ** i for i, c in enumerate(name)) % 2**32
    rng = np.random.default_rng(seed)
    drift = name.startswith("drift:")
    csr = graph(name.split(":", 1)[1] if drift else name)
    n = len(csr[0]) - 1
    # drift: a large common frequency makes every phase wrap several times in the window
    omega = rng.normal(4.0 if drift else 0.0, 0.5, size=n)
    theta0 = rng.uniform(0.0, 2 * math.pi, size=n)
    return csr, omega, theta0


_REF_CACHE = {}


def ref_samples(name, k=K_GRID, n_tr=N_TR, n_me=N_ME, every=EVERY, shift=0, coupling="degree"):
    key = (name, tuple(k), n_tr, n_me, every, shift, coupling)
    if key not in _REF_CACHE:
        csr, omega, theta0 = case_inputs(name)
        _REF_CACHE[key] = reference.reference_samples(csr, omega, theta0, k, DT, n_tr, n_me,
                                                      every, sample_shift=shift,
                                                      coupling=coupling)
    return _REF_CACHE[key]


def sim(graphs, omega, theta0, k=K_GRID, *, device, precision, **kw):
    kw = {"dt": DT, "t_transient": T_TR, "t_measure": T_ME, "sample_every": EVERY, **kw}
    return kcbatch.simulate(graphs, omega, theta0, k, device=device, precision=precision, **kw)


def kc(r, k, threshold):
    return reference.reference_kc(r, k, threshold)


def assert_same_kc(r, r_ref, k, tol):
    """Kc from the engine's r equals Kc from the reference's r for every threshold,
    unless the reference r at some K up to the later crossing is within ``tol`` of the
    threshold (then either answer is legitimate)."""
    for thr in THRESHOLDS:
        a, b = kc(r, k, thr), kc(r_ref, k, thr)
        if a == b:
            continue
        last = k[-1] if None in (a, b) else max(a, b)
        ambiguous = np.any(np.abs(r_ref[k <= last] - thr) <= tol)
        assert ambiguous, f"Kc differs at threshold {thr}: engine {a}, reference {b}"


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", CASES)
def test_engine_matches_reference(case, device, precision):
    """Every sample of r(t) (and so r(K)) and Kc agree with the float64 reference."""
    csr, omega, theta0 = case_inputs(case)
    want = ref_samples(case)
    got = sim([csr], omega[None], theta0[None], device=device, precision=precision,
              return_samples=True)
    assert got.dtype == np.float64
    assert got.shape == (1, len(K_GRID), math.ceil(N_ME / EVERY)) == (1,) + want.shape
    tol = TOL[precision]
    err = np.abs(got[0] - want)
    assert err.max() <= tol, f"max |sample - ref| = {err.max():.3g} (K index, sample) " \
                             f"{np.unravel_index(err.argmax(), err.shape)}"
    r_ref = want.mean(axis=1)
    r = got[0].mean(axis=1)
    assert np.all((r >= -tol) & (r <= 1 + tol))
    assert_same_kc(r, r_ref, K_GRID, tol)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_default_return_is_mean_of_samples(device, precision):
    csr, omega, theta0 = case_inputs("ba120m2")
    r = sim([csr], [omega], [theta0], device=device, precision=precision)
    assert r.shape == (1, len(K_GRID)) and r.dtype == np.float64
    np.testing.assert_allclose(r[0], ref_samples("ba120m2").mean(axis=1),
                               rtol=0, atol=TOL[precision])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_sampling_variants(device, precision):
    """Other (n_transient, n_measure, sample_every): no transient, sample every
    step, one sample only, a non-integer-looking t_measure (21 steps, ceil(21/4)=6)."""
    case = "ba50m1"
    csr, omega, theta0 = case_inputs(case)
    k = np.array([0.0, 1.0, 4.0])
    for t_tr, t_me, every in [(0.0, 1.0, 4), (0.5, 1.05, 4), (1.0, 0.5, 1), (1.0, 1.0, 20)]:
        n_tr, n_me = round(t_tr / DT), round(t_me / DT)
        want = ref_samples(case, k, n_tr, n_me, every)
        got = sim([csr], [omega], [theta0], k, device=device, precision=precision,
                  t_transient=t_tr, t_measure=t_me, sample_every=every, return_samples=True)
        assert got.shape == (1, len(k), math.ceil(n_me / every))
        np.testing.assert_allclose(got[0], want, rtol=0, atol=TOL[precision],
                                   err_msg=f"t_tr={t_tr} t_me={t_me} every={every}")


def test_fast_math_float32(device):
    """fast_math (approximate sin/cos where the backend has them, e.g. CUDA's
    __sinf on phases kept in [0, 2pi)) still meets the float32 tolerance."""
    for case in ["star12", "ba200m3", "drift:ba60m2"]:
        csr, omega, theta0 = case_inputs(case)
        got = sim([csr], [omega], [theta0], device=device, precision="float32",
                  fast_math=True, return_samples=True)[0]
        np.testing.assert_allclose(got, ref_samples(case), rtol=0, atol=TOL["float32"],
                                   err_msg=case)


BATCH = ["ba50m1", "star12", "ba200m3", "isolated+component", "ba80m2+isolated", "ba120m2"]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_batching_invariance(device, precision):
    """Graphs of different sizes in one call: each graph's r equals the reference and
    the r of a call with that graph alone (to roundoff: 1e-12 / 1e-6)."""
    inputs = [case_inputs(c) for c in BATCH]
    csrs, omegas, thetas = zip(*inputs, strict=True)
    together = sim(list(csrs), list(omegas), list(thetas), device=device, precision=precision)
    assert together.shape == (len(BATCH), len(K_GRID))
    roundoff = {"float64": 1e-12, "float32": 1e-6}[precision]
    for g, (case, (csr, omega, theta0)) in enumerate(zip(BATCH, inputs, strict=True)):
        alone = sim([csr], [omega], [theta0], device=device, precision=precision)
        np.testing.assert_allclose(together[g], alone[0], rtol=0, atol=roundoff,
                                   err_msg=f"graph {g} ({case}) batched vs alone")
        np.testing.assert_allclose(together[g], ref_samples(case).mean(axis=1), rtol=0,
                                   atol=TOL[precision], err_msg=f"graph {g} ({case}) vs ref")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_per_graph_couplings(device, precision):
    """k_values of shape [G, nK]: each graph integrated with its own K grid."""
    cases = ["ba50m1", "ba120m2", "star12"]
    inputs = [case_inputs(c) for c in cases]
    csrs, omegas, thetas = zip(*inputs, strict=True)
    ks = np.array([[0.0, 1.0, 8.0], [0.5, 2.0, 3.5], [6.0, 0.0, 1.0]])
    r = sim(list(csrs), list(omegas), list(thetas), ks, device=device, precision=precision)
    assert r.shape == ks.shape
    for g, case in enumerate(cases):
        want = ref_samples(case, ks[g]).mean(axis=1)
        np.testing.assert_allclose(r[g], want, rtol=0, atol=TOL[precision],
                                   err_msg=f"graph {g} ({case})")


COUPLINGS = ("degree", "raw", "mean-degree", "global")


# Largest stiffness max_i(K w_i k_i) of each coupling's grid (stable at DT up to 13.9);
# different per coupling, so that raw, mean-degree and global, whose K w_i all
# scale like 1/k_max below, do not integrate the very same products K w_i.
STIFFNESS = {"degree": 8.0, "raw": 8.0, "mean-degree": 6.0, "global": 4.0}


def coupling_grid(csr, coupling):
    """K_GRID scaled to the graph: largest K w_i k_i = STIFFNESS[coupling] (w from the
    reference), from incoherence towards locking whatever the normalisation."""
    degree = np.diff(np.asarray(csr[0])).astype(np.float64)
    max_wk = np.max(reference.coupling_weight(degree, coupling) * degree)
    return K_GRID * (STIFFNESS[coupling] / K_GRID.max()) / max_wk


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("coupling", COUPLINGS)
def test_every_coupling_matches_reference(device, precision, coupling):
    """All CASES in ONE call (sizes 5 to 300, isolated nodes in and between graphs,
    each graph on its own K grid): every sample of every graph agrees with the
    float64 reference for that coupling. mean-degree and global weights belong to
    each network: a batch-wide <k> or N would be off by a factor of up to 60."""
    inputs = [case_inputs(c) for c in CASES]
    csrs, omegas, thetas = zip(*inputs, strict=True)
    ks = np.stack([coupling_grid(csr, coupling) for csr in csrs])
    got = sim(list(csrs), list(omegas), list(thetas), ks, device=device, precision=precision,
              coupling=coupling, return_samples=True)
    assert got.shape == (len(CASES), len(K_GRID), math.ceil(N_ME / EVERY))
    for g, case in enumerate(CASES):
        want = ref_samples(case, ks[g], coupling=coupling)
        err = np.abs(got[g] - want)
        where = np.unravel_index(err.argmax(), err.shape)
        assert err.max() <= TOL[precision], f"{case}: max |sample - ref| = {err.max():.3g} at {where}"
        r_ref = want.mean(axis=1)
        assert_same_kc(got[g].mean(axis=1), r_ref, ks[g], TOL[precision])


def test_the_couplings_give_different_dynamics():
    """The parity above can fail: on a graph with unequal degrees, the four
    normalisations at the same K grid give r curves far apart (the reference alone)."""
    csr, omega, theta0 = case_inputs("ba120m2")
    k = np.array([0.5, 1.0, 2.0])
    curves = {c: reference.reference_r(csr, omega, theta0, k, DT, N_TR, N_ME, EVERY,
                                       coupling=c) for c in COUPLINGS}
    for a in COUPLINGS:
        for b in COUPLINGS:
            if a < b:
                assert np.abs(curves[a] - curves[b]).max() > 100 * TOL["float32"], (a, b)


def test_input_forms_agree():
    """networkx graphs, CSR pairs, lists of 1-D arrays and 2-D arrays give the same r."""
    # two graphs of the same size, for the 2-D form
    csr_a, om_a, th_a = case_inputs("ba50m1")
    csr_b = ba(50, 3, seed=99)
    rng = np.random.default_rng(5)
    om_b, th_b = rng.normal(0, 0.5, 50), rng.uniform(0, 2 * math.pi, 50)
    ref = np.stack([reference.reference_r(c, o, t, K_GRID, DT, N_TR, N_ME, EVERY)
                    for c, o, t in [(csr_a, om_a, th_a), (csr_b, om_b, th_b)]])

    def to_nx(csr):
        indptr, indices = csr
        g = nx.Graph()
        g.add_nodes_from(range(len(indptr) - 1))
        for i in range(len(indptr) - 1):
            g.add_edges_from((i, int(j)) for j in indices[indptr[i]:indptr[i + 1]])
        return g

    forms = {
        "csr+lists": ([csr_a, csr_b], [om_a, om_b], [th_a, th_b]),
        "csr+2d": ([csr_a, csr_b], np.stack([om_a, om_b]), np.stack([th_a, th_b])),
        "networkx+2d": ([to_nx(csr_a), to_nx(csr_b)], np.stack([om_a, om_b]),
                        np.stack([th_a, th_b])),
        "tuple-of-graphs": ((csr_a, csr_b), (om_a, om_b), (th_a, th_b)),
    }
    for form, (gs, om, th) in forms.items():
        r = sim(gs, om, th, device="cpu", precision="float64")
        np.testing.assert_allclose(r, ref, rtol=0, atol=TOL["float64"], err_msg=form)


def test_reference_matches_networkx_adjacency():
    """Sanity of the reference itself: CSR pair, dense matrix and networkx graph agree,
    K = 0 on a graph is free rotation (r from the exact phases), and r is in [0, 1]."""
    csr, omega, theta0 = case_inputs("ba50m1")
    n = len(omega)
    dense = np.zeros((n, n))
    for i in range(n):
        dense[i, csr[1][csr[0][i]:csr[0][i + 1]]] = 1
    assert np.array_equal(dense, dense.T)
    k = np.array([0.0, 2.0])
    a = reference.reference_samples(csr, omega, theta0, k, DT, N_TR, N_ME, EVERY)
    b = reference.reference_samples(dense, omega, theta0, k, DT, N_TR, N_ME, EVERY)
    c = reference.reference_samples(nx.from_numpy_array(dense), omega, theta0, k, DT,
                                    N_TR, N_ME, EVERY)
    np.testing.assert_allclose(a, b, atol=1e-13, rtol=0)
    np.testing.assert_allclose(a, c, atol=1e-13, rtol=0)
    # K = 0: theta(t) = theta0 + omega t exactly (RK4 is exact for constant rhs)
    times = (N_TR + 1 + np.arange(0, N_ME, EVERY)) * DT
    exact = [abs(np.mean(np.exp(1j * (theta0 + omega * t)))) for t in times]
    np.testing.assert_allclose(a[0], exact, atol=1e-12, rtol=0)
    assert np.all((a >= 0) & (a <= 1 + 1e-12))


def test_off_by_one_is_detectable():
    """The float32 tolerance is tight enough to see protocol mistakes.

    Sampling one step early or late (before instead of after step s, one transient
    step too many/few) or dropping the last sample (floor instead of ceil) must
    move r(K), computed by the reference, by more than 10x TOL['float32'] at some
    K of the grid on every case, and by more than 5x at the median K.  (Where the
    system is fully locked, r is constant in time and such a mistake is invisible
    -- and harmless.)  Measured on this machine: the engines' float32 error is at
    most ~5e-6, the mistakes move r by ~6e-4 (median) to 1e-2 (max).
    """
    tol = TOL["float32"]
    for case in ["ba120m2", "star12", "ba300m4"]:
        base = ref_samples(case)
        r0 = base.mean(axis=1)
        mistakes = {
            "one step early": ref_samples(case, shift=-1).mean(axis=1),
            "one step late": ref_samples(case, shift=+1).mean(axis=1),
            "floor(n/every) samples": base[:, : N_ME // EVERY].mean(axis=1),
        }
        assert N_ME // EVERY < base.shape[1]
        for what, r1 in mistakes.items():
            move = np.abs(r1 - r0)
            assert move.max() > 10 * tol, (case, what, move)
            assert np.median(move) > 5 * tol, (case, what, move)
