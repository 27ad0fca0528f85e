"""The shared-memory strategy (integrate_shared): host-side inputs and fit test,
kernel selection, and, on gpu-sim (one OpenMP team per block, real barriers),
parity with the independent float64 reference and with the global kernels.

gpu-sim cases are ``slow`` like every gpu-sim case (CI runs them); together
they run every line of integrate_shared: unsplit and split rows, several rows
per thread, hubs of degree > blockDim, several block sizes, both precisions.
"""
from __future__ import annotations

import numpy as np
import pytest
import reference
from helpers import assert_usage_error, device_params, device_unusable, invoke

from kcbatch.api import _pack_inputs
from kcbatch.engines import get_engine
from kcbatch.engines import shared as shared_mod
from kcbatch.engines.launch import (
    SHARED_MAX_BLOCK,
    SHARED_ROWS,
    launch_integrate_shared,
)
from kcbatch.engines.shared import (
    H100_SHARED_BYTES,
    batch_misfit,
    integrate_shared,
    misfit,
    prepare,
    shared_bytes,
)
from kcbatch.networks import barabasi_albert
from kcbatch.protocol.config import (
    PROTOCOL_FIELDS,
    ConfigError,
    IntegrationSpec,
    StudyConfig,
)

needs_sim = pytest.mark.skipif(device_unusable("gpu-sim") is not None,
                               reason=str(device_unusable("gpu-sim")))


def _star_plus_ba(n: int, seed: int):
    """A BA graph of ``n`` nodes with node 0 joined to every other node: one
    hub of degree n - 1 (more than any block size used here)."""
    indptr, indices = barabasi_albert(n, 2, seed)
    adj = np.zeros((n, n), dtype=bool)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    adj[rows, indices] = True
    adj[0, 1:] = adj[1:, 0] = True
    return reference.csr_from_edges(n, np.argwhere(np.triu(adj, 1)))


def _inputs(graphs, seed: int, k_values, precision: str = "float32"):
    rng = np.random.default_rng(seed)
    omega = [rng.normal(0.0, 0.5, len(g[0]) - 1) for g in graphs]
    theta0 = [rng.uniform(0.0, 2 * np.pi, len(g[0]) - 1) for g in graphs]
    batch, _ = _pack_inputs(graphs, omega, theta0, np.asarray(k_values), precision, "degree")
    return batch, omega, theta0


# ---------------------------------------------------------------- host side, no kernels

def test_chunks_cover_each_split_row_in_order():
    graphs = [_star_plus_ba(90, 1), barabasi_albert(70, 3, 2)]
    batch, _, _ = _inputs(graphs, 0, [1.0])
    split = 8
    inp = prepare(batch, split)
    deg = np.diff(batch.indptr)
    for b in range(batch.n_networks):
        r0, r1 = batch.node_offset[b], batch.node_offset[b + 1]
        e0 = batch.indptr[r0]
        chunks = inp.chunk_edges[inp.chunk_offset[b]:inp.chunk_offset[b + 1]]
        covered = []
        for r in range(r0, r1):
            lo, hi = inp.row_edges[r]
            assert (lo, hi) == (batch.indptr[r] - e0, batch.indptr[r + 1] - e0)
            c0, c1 = inp.row_chunks[r]
            if deg[r] <= split:
                assert c0 == c1
                continue
            mine = chunks[c0:c1]
            # contiguous, each at most `split` edges, exactly the row's edges
            assert mine[0, 0] == lo and mine[-1, 1] == hi
            assert np.all(mine[1:, 0] == mine[:-1, 1])
            assert np.all((mine[:, 1] - mine[:, 0] >= 1) & (mine[:, 1] - mine[:, 0] <= split))
            covered.append((c0, c1))
        # every chunk of the network belongs to exactly one split row
        assert sum(c1 - c0 for c0, c1 in covered) == len(chunks)
        # neighbour ids local to the network, as uint16
        local = inp.local_indices[batch.indptr[r0]:batch.indptr[r1]]
        assert local.dtype == np.uint16
        assert np.array_equal(local.astype(np.int64) + r0, batch.indices[batch.indptr[r0]:
                                                                          batch.indptr[r1]])


def test_a_default_network_fits_an_h100_block_but_not_in_float64():
    graph = barabasi_albert(10_000, 3, 7)
    batch, _, _ = _inputs([graph], 0, [1.0])
    assert batch_misfit(batch, H100_SHARED_BYTES) is None
    inp = prepare(batch)
    need = shared_bytes(inp.max_nodes, inp.max_nnz, inp.max_chunks, 1024, 4)
    # (sin, cos) pairs + uint16 neighbour ids dominate: the 80 KB + 120 KB
    assert 8 * 10_000 + 2 * inp.max_nnz < need <= H100_SHARED_BYTES
    batch64, _, _ = _inputs([graph], 0, [1.0], "float64")
    assert "10000 nodes" in batch_misfit(batch64, H100_SHARED_BYTES)


def test_misfit_names_rows_and_bytes():
    rows = SHARED_ROWS["float32"] * SHARED_MAX_BLOCK["float32"]
    assert misfit(rows, 6 * rows, 0, 4, H100_SHARED_BYTES) is None
    assert "rows" in misfit(rows + 1, 6 * rows, 0, 4, H100_SHARED_BYTES)
    assert "bytes of shared memory" in misfit(rows, 6 * rows, 0, 4, 48 * 1024)


def test_kernel_is_an_execution_option():
    assert "kernel" not in PROTOCOL_FIELDS  # a resume may change it
    stored = StudyConfig(runs=4, seed=1, kernel="global").to_dict()
    StudyConfig(runs=4, seed=1, kernel="shared", device="gpu-sim").check_compatible(
        stored, what="the stored study")


@pytest.mark.parametrize("kernel,device,words", [
    ("shared", "cpu", ["kernel='shared'", "auto or global", "gpu-sim"]),
    ("fast", "auto", ["kernel='fast'", "auto, global, shared"]),
    (None, "auto", ["kernel=None"]),
])
def test_bad_kernel_is_a_config_error(kernel, device, words):
    with pytest.raises(ConfigError) as info:
        StudyConfig(runs=2, kernel=kernel, device=device)
    for w in words:
        assert w in str(info.value)
    if kernel == "shared":
        with pytest.raises(ConfigError, match="auto or global"):
            get_engine("cpu", kernel="shared")


def test_cli_refuses_shared_on_cpu(tmp_path):
    res = invoke(["run", "--runs", "2", "--nodes", "50", "--device", "cpu", "--kernel",
                  "shared", "--out", tmp_path / "o"])
    assert_usage_error(res, "kernel='shared'", "auto or global")
    assert not (tmp_path / "o").exists()


def test_simulate_refuses_shared_on_cpu():
    import kcbatch
    g = barabasi_albert(40, 2, 1)
    with pytest.raises(ConfigError, match="kernel='shared'"):
        kcbatch.simulate([g], np.zeros(40), np.zeros(40), [1.0], device="cpu", kernel="shared",
                         t_transient=0.1, t_measure=0.1, sample_every=1)


class _Recorder:
    xp = np

    def __init__(self):
        self.calls = []

    def launch_blocks(self, spec, real, grid, block, smem, args):
        self.calls.append((spec.name, real, grid, block, smem, args))


def _launch_args(batch, n_measure=4, every=2):
    inp = prepare(batch)
    return dict(row_edges=inp.row_edges, local_indices=inp.local_indices, weight=batch.weight,
                omega=batch.omega, theta0=batch.theta0, node_offset=batch.node_offset,
                edge_offset=inp.edge_offset, couplings=batch.couplings,
                row_chunks=inp.row_chunks, chunk_edges=inp.chunk_edges,
                chunk_offset=inp.chunk_offset,
                samples=np.zeros((batch.n_networks, batch.n_k, -(-n_measure // every))),
                theta=np.zeros((batch.n_rows, batch.n_k), dtype=batch.dtype), mode=0,
                n_transient=3, n_measure=n_measure, sample_every=every, dt=0.05)


def test_launch_wrapper_checks_arrays_and_block():
    batch, _, _ = _inputs([barabasi_albert(60, 2, 1), barabasi_albert(50, 2, 2)], 0,
                          [0.5, 1.0, 2.0])
    be = _Recorder()
    launch_integrate_shared(be, "float32", **_launch_args(batch), block=64, shared_bytes=999)
    name, real, grid, block, smem, args = be.calls[0]
    assert (name, real, grid, block, smem) == ("integrate_shared", "float32", 6, 64, 999)
    assert type(args[-1]) is np.float32
    bad = _launch_args(batch)
    bad["local_indices"] = bad["local_indices"].astype(np.int32)
    with pytest.raises(TypeError, match="local_indices"):
        launch_integrate_shared(be, "float32", **bad, block=64, shared_bytes=999)
    for block in (48, 2048):
        with pytest.raises(ValueError, match="block"):
            launch_integrate_shared(be, "float32", **_launch_args(batch), block=block,
                                    shared_bytes=999)
    with pytest.raises(ValueError, match="samples"):
        launch_integrate_shared(be, "float32", **_launch_args(batch, n_measure=7, every=3)
                                | {"n_measure": 4}, block=64, shared_bytes=999)
    with pytest.raises(ValueError, match="mode=4"):
        launch_integrate_shared(be, "float32", **_launch_args(batch) | {"mode": 4}, block=64,
                                shared_bytes=999)
    with pytest.raises(ValueError, match="theta"):
        launch_integrate_shared(be, "float32", **_launch_args(batch)
                                | {"theta": np.zeros((batch.n_rows, 2), np.float32)},
                                block=64, shared_bytes=999)
    assert len(be.calls) == 1


@needs_sim
def test_auto_runs_global_until_shared_is_measured_faster(monkeypatch):
    batch, _, _ = _inputs([barabasi_albert(60, 2, 1)], 0, [1.0])
    big, _, _ = _inputs([barabasi_albert(11_000, 1, 1)], 0, [1.0])
    auto = get_engine("gpu-sim", kernel="auto")
    assert shared_mod.AUTO_PICKS_SHARED is False
    assert auto.strategy(batch) == "global"
    assert get_engine("gpu-sim", kernel="shared").strategy(batch) == "shared"
    assert get_engine("gpu-sim", kernel="global").strategy(batch) == "global"
    # once switched on, auto takes shared where the network fits and global elsewhere
    monkeypatch.setattr("kcbatch.engines.kernel_engine.AUTO_PICKS_SHARED", True)
    assert auto.strategy(batch) == "shared"
    assert auto.strategy(big) == "global"
    with pytest.raises(ConfigError, match=r"kernel='shared'.*rows"):
        get_engine("gpu-sim", kernel="shared").strategy(big)


# ---------------------------------------------------------------- the kernel runs
# On gpu-sim (slow, one OpenMP team per block) and, with ``pytest -m gpu``
# (bench/gpu_check), on a real GPU.

DT, N_TR, N_ME, EVERY = 0.05, 6, 8, 3
SPEC = IntegrationSpec(dt=DT, n_transient=N_TR, n_measure=N_ME, sample_every=EVERY)
K = np.array([0.0, 1.5, 4.0])
KERNEL_DEVICES = device_params(("gpu-sim", "gpu"))
# shared == global with split off: identical float32 arithmetic under g++
# (-ffp-contract=off); NVRTC may contract the two kernels' expressions into
# FMAs differently.
SAME_TOL = {"gpu-sim": 1e-12, "gpu": 1e-5}


def _shared(device, batch, spec=SPEC, **kw):
    engine = get_engine(device, kernel="shared")
    return integrate_shared(engine.backend, batch, spec, limit=engine.shared_limit(),
                            **kw)


def _global(device, batch, spec=SPEC):
    return get_engine(device, kernel="global").integrate(batch, spec)


@pytest.mark.parametrize("device", KERNEL_DEVICES)
@pytest.mark.parametrize("precision,tol", [("float32", 2e-5), ("float64", 1e-11)])
@pytest.mark.parametrize("block,split", [(32, 8), (64, 1000), (96, 4)])
def test_shared_matches_the_float64_reference(device, precision, tol, block, split):
    # 300 + 130 rows over 32..96 threads: up to 10 rows per thread (the float
    # maximum at block 32); the star's hub (degree 299 > block) is split across
    # threads unless split=1000.
    graphs = [_star_plus_ba(300, 3), barabasi_albert(130, 3, 4)]
    batch, omega, theta0 = _inputs(graphs, 5, K, precision)
    if precision == "float64" and block == 32:
        block = 64  # 300 rows take 5 double rows per thread at most 8
    got = _shared(device, batch, block=block, split=split)
    assert got.shape == (2, len(K), -(-N_ME // EVERY)) and np.all(np.isfinite(got))
    for b, g in enumerate(graphs):
        want = reference.reference_samples(g, omega[b], theta0[b], K, DT, N_TR, N_ME, EVERY)
        assert np.max(np.abs(got[b] - want)) <= tol


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_shared_equals_global_within_float32_rounding(device):
    graphs = [_star_plus_ba(120, 6), barabasi_albert(200, 3, 7)]
    batch, _, _ = _inputs(graphs, 8, K)
    glob = _global(device, batch)
    # split off: every row summed by its owner in edge order, like rk4_stage: the
    # same float32 states; only r's double sum runs in another order.
    assert np.max(np.abs(_shared(device, batch, block=64, split=10**6) - glob)) \
        <= SAME_TOL[device]
    # split on: hub sums in another float32 order
    split = _shared(device, batch, block=32, split=16)
    assert 0 < np.max(np.abs(split - glob)) <= 1e-5
    # barriers and a fixed reduction tree: the same bits whatever the schedule
    np.testing.assert_array_equal(_shared(device, batch, block=32, split=16), split)
    # the block size moves nothing but the order of r's double sum
    assert np.max(np.abs(_shared(device, batch, block=128, split=16) - split)) <= 1e-12


# ---------------------------------------------------------------- continued: SharedSimulation
@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_simulation_in_pieces_is_one_launch_bit_for_bit(device, monkeypatch):
    graphs = [_star_plus_ba(120, 6), barabasi_albert(200, 3, 7)]  # a split hub
    batch, _, _ = _inputs(graphs, 8, K)
    whole = _shared(device, batch)
    monkeypatch.setattr(shared_mod, "STEPS_PER_LAUNCH", 4)
    sim = get_engine(device, kernel="shared").start(batch, DT)
    assert isinstance(sim, shared_mod.SharedSimulation)
    seen = []
    sim.advance(2, seen.append)
    sim.advance(N_TR - 2, seen.append)            # one launch of 4
    got = sim.measure(N_ME, EVERY, seen.append)   # launches of 3, 3, 2 steps
    np.testing.assert_array_equal(got, whole)
    assert sim.steps == N_TR + N_ME and seen == [2, 6, 9, 12, 14]
    assert sim.measure(0, EVERY).shape == (2, len(K), 0) and sim.steps == N_TR + N_ME


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_simulation_follows_global_through_couplings_and_retain(device):
    # every degree <= the split: no hub chunks, so the float32 states are the
    # global kernels'; r's double sums differ in order only
    graphs = [barabasi_albert(150, 1, 3), barabasi_albert(100, 2, 6), barabasi_albert(120, 2, 5)]
    batch, _, _ = _inputs(graphs, 9, K)
    assert np.diff(batch.indptr).max() <= shared_mod.DEFAULT_SPLIT

    def script(sim):
        out = [sim.measure(4, 2)]
        sim.set_couplings(batch.couplings[:, ::-1] * 0.5)
        sim.advance(3)
        out.append(sim.measure(4, 2))
        sim.retain(np.array([0, 2]))
        out.append(sim.measure(5, 2))
        return out, sim.steps, sim.batch.n_networks

    got = script(get_engine(device, kernel="shared").start(batch, DT))
    want = script(get_engine(device, kernel="global").start(batch, DT))
    assert got[1:] == want[1:] == (16, 2)
    for g, w in zip(got[0], want[0], strict=True):
        assert g.shape == w.shape and np.max(np.abs(g - w)) <= SAME_TOL[device]
    # the new couplings mattered: the same script without them differs
    sim = get_engine(device, kernel="shared").start(batch, DT)
    sim.measure(4, 2)
    sim.advance(3)
    assert np.max(np.abs(sim.measure(4, 2) - got[0][1])) > 1e-3


@pytest.mark.slow
@needs_sim
def test_converged_refined_and_adiabatic_runs_on_shared_equal_global(monkeypatch):
    import kcbatch
    launches = []
    run = shared_mod.SharedSimulation._run
    monkeypatch.setattr(shared_mod.SharedSimulation, "_run",
                        lambda self, *a: launches.append(a) or run(self, *a))
    graphs = [barabasi_albert(80, 2, s) for s in (1, 2)]
    rng = np.random.default_rng(4)
    omega, theta0 = rng.normal(0, 0.5, (2, 80)), rng.uniform(0, 2 * np.pi, (2, 80))
    k = np.linspace(0.0, 3.0, 5)
    kw = dict(k_values=k, t_transient="auto", t_max=10.0, t_measure=1.0, sample_every=2,
              refine=0.2, refine_points=3, device="gpu-sim")
    got = kcbatch.find_kc(graphs, omega, theta0, kernel="shared", **kw)
    n_shared = len(launches)
    want = kcbatch.find_kc(graphs, omega, theta0, kernel="global", **kw)
    assert n_shared > 0 and len(launches) == n_shared  # each ran its own strategy
    for name in ("kc", "kc_interp", "kc_refined", "t_transient", "converged"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=0,
                                   atol=1e-9, err_msg=name)
    assert np.max(np.abs(got.r - want.r)) <= 1e-12
    hk = dict(k_values=k, t_transient=0.5, t_measure=0.5, sample_every=2, device="gpu-sim")
    fs, bs = kcbatch.hysteresis(graphs, omega, theta0, kernel="shared", **hk)
    assert len(launches) > n_shared
    fg, bg = kcbatch.hysteresis(graphs, omega, theta0, kernel="global", **hk)
    assert max(np.max(np.abs(fs - fg)), np.max(np.abs(bs - bg))) <= 1e-12


@pytest.mark.gpu
@pytest.mark.skipif(device_unusable("gpu") is not None, reason=str(device_unusable("gpu")))
def test_gpu_shared_on_default_networks_matches_global():
    """Two default-size networks (N = 10^4: 1024 threads x 10 rows, 218 KB of
    shared memory per block, hubs split) on the real device."""
    graphs = [barabasi_albert(10_000, 3, s) for s in (1, 2)]
    batch, _, _ = _inputs(graphs, 3, np.linspace(0.0, 5.0, 6))
    spec = IntegrationSpec(dt=0.05, n_transient=20, n_measure=20, sample_every=10)
    assert get_engine("gpu", kernel="shared").strategy(batch) == "shared"
    assert np.max(np.abs(_shared("gpu", batch, spec) - _global("gpu", batch, spec))) <= 1e-4


@pytest.mark.slow
@needs_sim
def test_study_with_kernel_shared_matches_global(tmp_path):
    from kcbatch.run.study import run_study
    kw = dict(runs=3, nodes=150, k_num=4, k_max=4.0, t_transient=0.3, t_measure=0.4,
              sample_every=2, seed=11, device="gpu-sim", batch=2)
    got = run_study(StudyConfig(**kw, kernel="shared"))
    want = run_study(StudyConfig(**kw, kernel="global"))
    r_got = np.array([rec.r for rec in got.records])
    r_want = np.array([rec.r for rec in want.records])
    assert r_got.shape == (3, 4) and np.max(np.abs(r_got - r_want)) <= 1e-5
    # the fast-math build runs the same kernel (its own instantiation)
    fast = run_study(StudyConfig(**kw, kernel="shared", fast_math=True))
    assert np.max(np.abs(np.array([rec.r for rec in fast.records]) - r_want)) <= 1e-4


@pytest.mark.slow
@needs_sim
@pytest.mark.parametrize("extra", [dict(t_transient="auto", t_max=1.2, refine=0.5),
                                   dict(sweep="adiabatic")])
def test_converged_and_adiabatic_studies_with_kernel_shared_match_global(extra):
    from kcbatch.run.study import run_study
    kw = dict(runs=2, nodes=100, m=2, k_num=4, k_max=4.0, t_transient=0.3, t_measure=0.4,
              sample_every=2, seed=12, device="gpu-sim", batch=2)
    got = run_study(StudyConfig(**{**kw, **extra}, kernel="shared")).records
    want = run_study(StudyConfig(**{**kw, **extra}, kernel="global")).records
    assert len(got) == len(want) == 2
    for g, w in zip(got, want, strict=True):
        assert np.max(np.abs(np.asarray(g.r) - np.asarray(w.r))) <= 1e-5
        # grid values and flags equal; interpolated crossings move with r's rounding
        for name in ("kc", "kc_forward", "kc_backward", "t_transient_used", "converged"):
            assert getattr(g, name) == getattr(w, name), name
        for name in ("kc_interp", "kc_refined"):
            a, b = getattr(g, name), getattr(w, name)
            assert (a is None) == (b is None) and (a is None or abs(a - b) <= 1e-4), name


@pytest.mark.slow
@needs_sim
def test_cli_shared_on_a_network_too_large_is_one_line(tmp_path):
    res = invoke(["run", "--runs", "1", "--nodes", "20000", "--k-num", "2", "--device",
                  "gpu-sim", "--kernel", "shared", "--seed", "1", "--out", tmp_path / "o"])
    assert_usage_error(res, "kernel='shared'", "20000 nodes", "--kernel global or auto")
