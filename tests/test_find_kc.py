"""kcbatch.find_kc and the converged protocol (kcbatch/analysis/converge.py, issue 10 items 1-4).

Independent checks: continuation against one long integration, "auto" against a
long fixed transient, refinement against the float64 reference of
tests/reference.py on a dense grid, the chi peak against Kuramoto's all-to-all
onset (kcbatch.theory.mean_field.kc0, itself checked in test_theory.py).
"""
from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pytest
from helpers import random_batch
from reference import reference_r

import kcbatch
from kcbatch import ConfigError, IntegrationSpec, pack
from kcbatch.analysis.converge import estimate_kc, window_starts
from kcbatch.engines import get_engine
from kcbatch.theory.mean_field import kc0


def _inputs(n_graphs=3, nodes=80, m=3, seed=5):
    graphs, omega, theta0 = random_batch(n_graphs, nodes, m, seed)
    return graphs, omega, theta0


def _regular_case():
    """A 20-regular graph, N=400, whose K just above onset (0.9) sits near
    r = 0.2 for T = 10..20 and crosses 0.5 only after T = 40: critical slowing down."""
    n = 400
    g = nx.random_regular_graph(20, n, seed=1)
    rng = np.random.default_rng(3)
    omega = rng.normal(0, 0.5, n)
    omega -= omega.mean()
    theta0 = rng.uniform(0, 2 * np.pi, n)
    return [g], [omega], [theta0], np.linspace(0.8, 1.6, 9)


# ----------------------------------------------------------------- continuation

@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.slow
def test_continuation_equals_one_long_integration(device, precision):
    graphs, omega, theta0 = _inputs()
    batch = pack(graphs, list(omega), list(theta0), np.linspace(0, 3, 6), precision)
    engine = get_engine(device)
    spec = IntegrationSpec(dt=0.05, n_transient=37, n_measure=23, sample_every=4)
    want = engine.integrate(batch, spec)
    sim = engine.start(batch, 0.05)
    for n in (0, 10, 27):           # 37 transient steps in pieces, one of them empty
        sim.advance(n)
    got = sim.measure(23, 4)
    assert sim.steps == 60
    # bitwise on every device: the same launches in the same order
    assert np.array_equal(got, want)
    # a second window continues the trajectory: the protocol with a longer transient
    sim.advance(40)
    later = sim.measure(23, 4)
    assert np.array_equal(later, engine.integrate(
        batch, dataclasses.replace(spec, n_transient=100)))
    assert not np.array_equal(later, got)


@pytest.mark.slow
def test_retain_keeps_each_network_its_numbers(device):
    graphs, omega, theta0 = random_batch(4, 70, 2, 9)
    nodes = [40, 70, 55, 70]          # different sizes so the rows really move
    graphs = [nx.barabasi_albert_graph(n, 2, seed=i) for i, n in enumerate(nodes)]
    om = [omega[i][:n] for i, n in enumerate(nodes)]
    th = [theta0[i][:n] for i, n in enumerate(nodes)]
    k = np.array([[0.5, 1.0, 2.0], [0.7, 1.1, 1.9], [0.2, 0.4, 3.0], [1.0, 2.0, 2.5]])
    csr = [kcbatch.networks.from_networkx(g) for g in graphs]
    batch = pack(csr, om, th, k)
    engine = get_engine(device)
    sim = engine.start(batch, 0.05)
    sim.advance(30)
    sim.retain(np.array([1, 3]))
    assert sim.batch.n_networks == 2
    got = sim.measure(20, 5)
    for pos, b in enumerate((1, 3)):
        alone = pack([csr[b]], [om[b]], [th[b]], k[b])
        want = engine.integrate(alone, IntegrationSpec(dt=0.05, n_transient=30, n_measure=20,
                                                       sample_every=5))
        assert np.array_equal(got[pos], want[0])


# ----------------------------------------------------------------- fixed protocol

def test_fixed_transient_r_is_simulate_r():
    graphs, omega, theta0 = _inputs()
    k = np.linspace(0, 3, 7)
    res = kcbatch.find_kc(graphs, omega, theta0, k, device="cpu")
    r = kcbatch.simulate(graphs, omega, theta0, k, device="cpu")
    assert np.array_equal(res.r, r)
    samples = kcbatch.simulate(graphs, omega, theta0, k, device="cpu", return_samples=True)
    assert np.array_equal(res.r_std, samples.std(axis=2))
    n = np.array([80.0] * 3)
    assert np.allclose(res.chi, n[:, None] * samples.var(axis=2))
    for g in range(3):
        want = kcbatch.analysis.crossing.first_crossing(k, r[g], 0.5)
        assert res.kc[g] == want.kc and res.kc_interp[g] == want.kc_interp
    assert not res.converged.any() and not res.auto
    assert np.all(res.t_transient == 5.0)
    assert np.all(np.isnan(res.kc_refined))


def test_window_schedule():
    assert window_starts(0.05, 400.0, 100) == [100, 200, 400, 800, 1600, 3200, 6400, 8000]
    # windows never overlap: with t_measure = 8 the step is at least 8
    assert window_starts(0.5, 30.0, 16) == [10, 26, 52, 60]
    assert window_starts(0.5, 3.0, 2) == [6]


# ----------------------------------------------------------------- auto

@pytest.mark.slow
def test_auto_matches_long_fixed_transient_and_batch_is_irrelevant():
    graphs, omega, theta0, k = _regular_case()
    more, om2, th2 = random_batch(2, 120, 4, 3)
    g_all = [more[0], kcbatch.networks.from_networkx(graphs[0]), more[1]]
    om_all = [om2[0], omega[0], om2[1]]
    th_all = [th2[0], theta0[0], th2[1]]
    res = kcbatch.find_kc(g_all, om_all, th_all, k, device="cpu", t_transient="auto",
                          t_max=320.0, dt=0.1)
    alone = kcbatch.find_kc(graphs, omega, theta0, k, device="cpu", t_transient="auto",
                            t_max=320.0, dt=0.1)
    for f in ("kc", "kc_interp", "kc_chi", "kc_sigma", "t_transient", "converged", "r",
              "r_std", "kc_windows"):
        assert np.array_equal(getattr(res, f)[1], getattr(alone, f)[0], equal_nan=True), f
    long = kcbatch.find_kc(graphs, omega, theta0, k, device="cpu", t_transient=320.0, dt=0.1)
    assert alone.converged[0]
    assert abs(alone.kc_interp[0] - long.kc_interp[0]) < 0.05
    # the original protocol's number (first window) is far off: the test can tell
    assert abs(alone.kc_windows[0, 1] - long.kc_interp[0]) > 0.2
    # the final window is the fixed protocol at that transient, bit for bit: for
    # every coupling integrated to it (the adaptive protocol retires the others)
    fixed = kcbatch.simulate(graphs, omega, theta0, k, device="cpu", dt=0.1,
                             t_transient=float(alone.t_transient[0]))
    final = alone.last_window[0] == alone.last_window[0].max()
    assert final.sum() >= 3 and np.array_equal(alone.r[0, final], fixed[0, final])
    every = kcbatch.find_kc(graphs, omega, theta0, k, device="cpu", t_transient="auto",
                            t_max=320.0, dt=0.1, converge="exhaustive")
    assert every.t_transient[0] == alone.t_transient[0]
    assert np.array_equal(every.r, fixed)


@pytest.mark.slow
def test_critical_slowing_down_does_not_stop_at_a_quiet_window():
    graphs, omega, theta0, k = _regular_case()
    r10, r20 = (kcbatch.simulate(graphs, omega, theta0, k, device="cpu", dt=0.1,
                                 t_transient=t)[0] for t in (10.0, 20.0))
    # just above onset r hardly moves between these windows: a rule on r would stop
    assert abs(r20[1] - r10[1]) < 0.05 and r20[1] < 0.25
    res = kcbatch.find_kc(graphs, omega, theta0, k, device="cpu", t_transient="auto",
                          t_max=320.0, dt=0.1)
    assert res.t_transient[0] >= 80.0
    # it crossed later, well below the early windows' crossing
    assert res.kc_interp[0] < 0.95 < res.kc_windows[0, 2]
    # right-censored windows never count as settled
    assert np.isnan(res.kc_windows[0, 0])


@pytest.mark.slow
def test_settled_network_stops_despite_jitter():
    graphs, omega, theta0, k = _regular_case()
    batch = pack([kcbatch.networks.from_networkx(graphs[0])], omega, theta0, k)
    engine = get_engine("cpu")
    kw = dict(dt=0.1, t_transient="auto", t_max=320.0, converge="exhaustive")
    noisy = estimate_kc(engine, batch, k, **kw)
    plain = estimate_kc(engine, batch, k, noise_factor=0.0, **kw)
    # window to window the settled crossing jitters by more than kc_tol ...
    late = noisy.kc_windows[0, 4:][np.isfinite(noisy.kc_windows[0, 4:])]
    assert np.max(np.abs(np.diff(np.concatenate([[noisy.kc_windows[0, 3]], late])))) > 0.01
    # ... so the fixed-tolerance rule runs on, while the noise-aware rule stops
    assert noisy.converged[0] and noisy.t_transient[0] < plain.t_transient[0]
    assert noisy.work.sum() < plain.work.sum()
    # both see the same trajectory: equal crossings wherever both measured
    both = np.isfinite(noisy.kc_windows) & np.isfinite(plain.kc_windows)
    assert np.array_equal(noisy.kc_windows[both], plain.kc_windows[both])


@pytest.mark.slow
def test_retiring_changes_no_number():
    graphs, omega, theta0 = random_batch(4, 60, 2, 21)
    batch = pack(graphs, list(omega), list(theta0), np.linspace(0, 4, 9))
    engine = get_engine("cpu")
    kw = dict(dt=0.1, t_transient="auto", t_max=40.0, refine=0.05, converge="exhaustive")
    a = estimate_kc(engine, batch, np.linspace(0, 4, 9), retire=True, **kw)
    b = estimate_kc(engine, batch, np.linspace(0, 4, 9), retire=False, **kw)
    for f in dataclasses.fields(a):
        if f.name in ("work",):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f") if isinstance(
            x, np.ndarray) else x == y, f.name
    assert np.all(a.work <= b.work) and a.work.sum() < b.work.sum()


# ----------------------------------------------------------------- refinement

def test_refinement_against_dense_float64_reference():
    g = nx.barabasi_albert_graph(30, 2, seed=4)
    rng = np.random.default_rng(8)
    omega, theta0 = rng.normal(0, 0.5, 30), rng.uniform(0, 2 * np.pi, 30)
    k = np.linspace(0, 3, 7)
    tol = 0.02
    kw = dict(dt=0.05, t_transient=2.0, t_measure=2.0, sample_every=5)
    res = kcbatch.find_kc([g], [omega], [theta0], k, refine=tol, device="cpu",
                          precision="float64", **kw)
    i = int(np.flatnonzero(res.r[0] > 0.5)[0])
    dense = np.linspace(k[i - 1], k[i], 101)         # spacing 0.005, well below tol
    r = reference_r(g, omega, theta0, dense, 0.05, 40, 40, 5)
    j = int(np.flatnonzero(r > 0.5)[0])
    ref = dense[j - 1] + (0.5 - r[j - 1]) / (r[j] - r[j - 1]) * (dense[j] - dense[j - 1])
    assert abs(res.kc_refined[0] - ref) <= tol
    # the grid alone is off by more than tol here, so the test can fail
    assert abs(res.kc_interp[0] - ref) > tol
    assert res.refine_work > 0


# ----------------------------------------------------------------- chi peak

@pytest.mark.slow
def test_chi_peak_approaches_all_to_all_onset():
    target = kc0("normal", 0.5)
    k = np.linspace(0.4, 1.4, 21)
    dist = []
    for n in (50, 200, 800):
        rng = np.random.default_rng(n)
        g = nx.complete_graph(n)
        peaks = []
        for _rep in range(2):
            omega = np.sqrt(2) * 0.5 * _gauss_quantiles(n, rng)
            theta0 = rng.uniform(0, 2 * np.pi, n)
            res = kcbatch.find_kc([g], [omega], [theta0], k, device="cpu", dt=0.1,
                                  t_transient=20.0, t_measure=20.0, sample_every=2)
            peaks.append(res.kc_chi[0])
        dist.append(abs(np.mean(peaks) - target))
    assert dist[2] < dist[0] and dist[2] < 0.15, dist


def _gauss_quantiles(n, rng):
    """Normal(0, 1/sqrt 2) frequencies at their quantiles (deterministic, zero mean):
    the finite-N spread of Kc is then the dynamics', not the sample's."""
    from scipy.special import erfinv
    u = (np.arange(n) + 0.5) / n
    return rng.permutation(erfinv(2 * u - 1))


# ----------------------------------------------------------------- devices, inputs

@pytest.mark.slow
def test_cpu_and_gpu_sim_agree():
    if kcbatch.engines.why_unavailable("gpu-sim"):
        pytest.skip("gpu-sim unavailable")
    graphs, omega, theta0 = _inputs(2, 60, 2, 13)
    k = np.linspace(0, 3, 7)
    kw = dict(t_transient="auto", t_max=20.0, refine=0.05, dt=0.05)
    a = kcbatch.find_kc(graphs, omega, theta0, k, device="cpu", **kw)
    b = kcbatch.find_kc(graphs, omega, theta0, k, device="gpu-sim", **kw)
    assert np.allclose(a.r, b.r, atol=1e-4)
    assert np.array_equal(a.t_transient, b.t_transient)
    assert np.allclose(a.kc_refined, b.kc_refined, atol=1e-3, equal_nan=True)


@pytest.mark.parametrize("kw, param", [
    (dict(threshold=1.5), "threshold"),
    (dict(t_transient="soon"), "t_transient"),
    (dict(t_transient=-1.0), "t_transient"),
    (dict(refine=0.0), "refine"),
    (dict(refine_points=0), "refine_points"),
    (dict(kc_tol=float("nan")), "kc_tol"),
    (dict(t_transient="auto", t_max=-5.0), "t_max"),
    (dict(t_transient="auto", t_max=12.33), "t_max"),
    (dict(t_transient="auto", dt=0.3, t_measure=0.9, sample_every=1, t_max=9.0), "dt"),
    (dict(precision="half"), "precision"),
    (dict(coupling="none"), "coupling"),
    (dict(k_values=np.array([1.0, 0.5])), "k_values"),
])
def test_bad_arguments_name_themselves(kw, param):
    graphs, omega, theta0 = _inputs(1, 20, 2, 1)
    k = kw.pop("k_values", np.linspace(0, 2, 3))
    with pytest.raises(ConfigError) as err:
        kcbatch.find_kc(graphs, omega, theta0, k, device="cpu", **kw)
    assert err.value.param == param
    assert "\n" not in str(err.value)
