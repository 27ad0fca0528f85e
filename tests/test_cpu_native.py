"""The CPU engine's native pass (kcbatch/engines/cpu/native.py, kernels/kuramoto_cpu.cpp)
against its independent twin, the numba pass (cpu.CpuSimulation): the same numbers
bit for bit for every plan shape and block width, beyond the trig reduction's range,
for rows without neighbours, through the Simulation protocol in pieces, whatever the
threads, the plan, the call's schedule (tasks whole or in segments, rows shared) or the
batch; the engine's choice between the two passes and its
fallback; the build cache's key; the invariants of ``plan``.

Small networks and few steps: every comparison is exact (assert_array_equal), so a
handful of RK4 steps already tells a different operation order apart."""
from __future__ import annotations

import dataclasses
import functools
import itertools
import platform

import numba
import numpy as np
import pytest
from reference import csr_from_edges

from kcbatch.engines import cxx
from kcbatch.engines.cpu import CpuEngine, CpuSimulation
from kcbatch.engines.cpu import native as cpu_native
from kcbatch.engines.cpu.native import MAX_VECS, VECTOR_BYTES, Group, NativeSimulation
from kcbatch.engines.cpu.trig import LIMIT32, LIMIT64
from kcbatch.inputs.batch import pack
from kcbatch.inputs.pipeline import make_batch
from kcbatch.networks import barabasi_albert
from kcbatch.protocol.config import IntegrationSpec, StudyConfig

_REASON = cpu_native.unavailable_reason()
if _REASON is not None:
    pytest.skip(f"native CPU pass unavailable: {_REASON}", allow_module_level=True)

DTYPES = [np.float32, np.float64]
# 20 steps; 12 measurement steps sampled every 5: ceil -> 3 samples, the last
# group of steps shorter than the others
SPEC = IntegrationSpec(dt=0.05, n_transient=8, n_measure=12, sample_every=5)


# --------------------------------------------------------------------------- helpers

@functools.cache
def _batch(n_k: int, dtype, runs: tuple[int, ...] = (0, 1, 2), nodes: int = 200,
           own_couplings: bool = True):
    """A batch of BA networks; ``own_couplings``: a different random K row per
    network (so that a block's couplings must follow row_net), else the grid."""
    cfg = StudyConfig(seed=21, nodes=nodes, m=2, k_num=n_k, k_min=0.0, k_max=6.0,
                      precision=np.dtype(dtype).name)
    b = make_batch(list(runs), cfg).batch
    if not own_couplings:
        return b
    rng = np.random.default_rng([n_k, len(runs), nodes])
    return dataclasses.replace(b, couplings=rng.uniform(0.0, 6.0, (b.n_networks, n_k))
                               .astype(dtype))


def _state(sim) -> tuple:
    """(phases, sin, cos, steps) of either pass, as new arrays."""
    theta = sim.phases() if isinstance(sim, NativeSimulation) else sim.theta.copy()
    return theta, np.array(sim.S), np.array(sim.C), sim.steps


def _run(sim, spec: IntegrationSpec = SPEC) -> tuple:
    """The protocol of ``integrate``: (samples, *state)."""
    sim.advance(spec.n_transient)
    return (sim.measure(spec.n_measure, spec.sample_every),) + _state(sim)


def _assert_same(got: tuple, want: tuple, what: str = "") -> None:
    """Bitwise equality, item by item (arrays: also dtype and shape)."""
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if isinstance(w, np.ndarray):
            assert g.dtype == w.dtype and g.shape == w.shape, f"{what} item {i}"
        np.testing.assert_array_equal(g, w, err_msg=f"{what} item {i}")


@functools.cache
def _numba(n_k: int, dtype) -> tuple:
    """The numba pass on ``_batch(n_k, dtype)`` (independent of threads: test_cpu_engine)."""
    b = _batch(n_k, dtype)
    out = _run(CpuSimulation(b, SPEC.dt))
    samples = out[0]
    # not a degenerate run: r differs between K, networks and samples
    assert np.unique(samples).size > samples.size // 2
    return out


def _native(batch, threads: int, spec: IntegrationSpec = SPEC) -> tuple[NativeSimulation, tuple]:
    sim = NativeSimulation(batch, spec.dt, threads)
    return sim, _run(sim, spec)


def _kind(p: tuple[Group, ...]) -> str:
    if len(p) == 2:
        return "two groups"
    return "by block" if p[0].by_block else "rows shared"


def _lanes(p: tuple[Group, ...], itemsize: int) -> int:
    """The K lanes a plan allocates: its groups' blocks times their width."""
    total = 0
    for g in p:
        width = g.vecs * VECTOR_BYTES // itemsize
        total += -(-(g.k1 - g.k0) // width) * width
    return total


# ------------------------------------------------ 1. every plan shape and block width

# (itemsize, n_k, threads) -> the plan shape the case is there for, for the
# batches of NETS networks of _batch
NETS = 3
SHAPES = {
    (4, 2, 1): "by block", (4, 2, 2): "by block",
    (4, 2, 3): "by block", (4, 2, 8): "rows shared",
    (4, 5, 1): "by block", (4, 5, 2): "by block",
    (4, 5, 3): "by block", (4, 5, 8): "rows shared",
    (4, 13, 1): "by block", (4, 13, 2): "by block",
    (4, 13, 3): "by block", (4, 13, 8): "rows shared",
    (4, 30, 1): "by block", (4, 30, 2): "by block",
    (4, 30, 3): "by block", (4, 30, 8): "by block",
    (4, 50, 1): "two groups", (4, 50, 2): "two groups",
    (4, 50, 3): "two groups", (4, 50, 8): "two groups",
    (8, 2, 1): "by block", (8, 2, 2): "by block",
    (8, 2, 3): "by block", (8, 2, 8): "rows shared",
    (8, 5, 1): "by block", (8, 5, 2): "by block",
    (8, 5, 3): "by block", (8, 5, 8): "rows shared",
    (8, 13, 1): "by block", (8, 13, 2): "by block",
    (8, 13, 3): "by block", (8, 13, 8): "by block",
    (8, 30, 1): "by block", (8, 30, 2): "by block",
    (8, 30, 3): "by block", (8, 30, 8): "two groups",
    (8, 50, 1): "two groups", (8, 50, 2): "two groups",
    (8, 50, 3): "two groups", (8, 50, 8): "two groups",
}


def test_the_cases_reach_every_shape_and_entry_point():
    """The cases of the next test cover, per precision, the three plan shapes and
    the four block widths (1-4 vectors), and a group of several blocks: fails if
    ``plan`` moves them elsewhere."""
    for itemsize, name in ((4, "float32"), (8, "float64")):
        plans = [cpu_native.plan(n_k, t, itemsize, NETS) for (i, n_k, t) in SHAPES
                 if i == itemsize]
        assert {_kind(p) for p in plans} == {"by block", "rows shared", "two groups"}, name
        assert {g.vecs for p in plans for g in p} == set(range(1, MAX_VECS + 1)), name
        lanes = VECTOR_BYTES // itemsize
        by_block = [g for p in plans for g in p if g.by_block]
        assert any(-(-(g.k1 - g.k0) // (g.vecs * lanes)) > 2 for g in by_block), name


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_k", [2, 5, 13, 30, 50])
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_samples_and_state_are_the_numba_pass_bit_for_bit(dtype, n_k, threads):
    itemsize = np.dtype(dtype).itemsize
    b = _batch(n_k, dtype)
    sim, got = _native(b, threads)
    assert _kind(sim.plan) == SHAPES[itemsize, n_k, threads], sim.plan
    assert b.n_networks == NETS and sim.plan == cpu_native.plan(n_k, threads, itemsize, NETS)
    # what the groups allocated is what the plan says, and what planned_k counts
    allocated = sum(g.theta.shape[0] * g.theta.shape[2] for g in sim.groups)
    assert allocated == _lanes(sim.plan, itemsize) == cpu_native.planned_k(
        n_k, threads, itemsize, NETS)
    _assert_same(got, _numba(n_k, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("custom", [
    # several blocks with rows shared, then a block per thread
    (Group(0, 40, 1, False), Group(40, 50, 2, True)),
    # three groups, uneven boundaries, every width
    (Group(0, 3, 1, True), Group(3, 20, 3, False), Group(20, 47, 4, True),
     Group(47, 50, 2, False)),
    # all blocks shared, the widest blocks
    (Group(0, 50, MAX_VECS, False),),
], ids=["shared-then-block", "four-groups", "all-shared"])
def test_any_plan_gives_the_same_numbers(monkeypatch, dtype, custom):
    """Which group a K is in, its block's width and who runs the block change no
    number (plans that ``plan`` itself does not make, forced in)."""
    monkeypatch.setattr(cpu_native, "plan", lambda n_k, threads, itemsize, networks=1: custom)
    sim, got = _native(_batch(50, dtype), 2)
    assert sim.plan == custom and len(sim.groups) == len(custom)
    _assert_same(got, _numba(50, dtype))


# --------------------------------------------------------- 2. beyond the trig's range

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("threads", [2, 3])
def test_phases_beyond_the_reduction_take_libm_and_wrap(dtype, threads):
    lim = LIMIT32 if dtype == np.float32 else LIMIT64
    b = _batch(13, dtype)
    theta0 = b.theta0.copy()
    theta0[::37] = 3 * lim
    theta0[5::41] = -3 * lim
    b = dataclasses.replace(b, theta0=theta0)
    want = _run(CpuSimulation(b, SPEC.dt))
    sim = NativeSimulation(b, SPEC.dt, threads)
    # the first step's stage points of those rows are beyond the range (libm),
    # its end wraps them
    sim.advance(1)
    big = np.abs(theta0) > lim
    assert np.all(sim.phases()[big] < dtype(2 * np.pi))
    sim.advance(SPEC.n_transient - 1)
    samples = sim.measure(SPEC.n_measure, SPEC.sample_every)
    got = (samples,) + _state(sim)
    _assert_same(got, want)
    theta = got[1]
    assert np.all((theta >= 0) & (theta < dtype(2 * np.pi)))
    # the large rows changed the numbers (their sin/cos are not the in-range ones)
    assert not np.array_equal(samples, _numba(13, dtype)[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 3])
def test_the_wrap_fixups_just_below_multiples_of_two_pi(dtype, threads):
    """Phases a hair below k 2pi (or 0), where ``u - 2pi floor(u / 2pi)`` rounds
    to 2pi or below 0: both fix-ups at the end of a step, as the numba pass."""
    tp = dtype(2 * np.pi)
    below = [np.nextafter(dtype(k) * tp, dtype(-np.inf)) for k in range(1, 3000)]
    cand = np.array(below + [dtype(-1e-30)], dtype=dtype)
    raw = cand - tp * np.floor(cand / tp)
    pick = np.concatenate([np.flatnonzero(raw < 0)[:4], np.flatnonzero(raw >= tp)[:4]])
    assert (raw[pick] < 0).any() and (raw[pick] >= tp).any()  # both fix-ups are needed
    t = cand[pick]
    want_first = raw[pick].copy()
    want_first[want_first >= tp] -= tp
    want_first[want_first < 0] += tp
    # rows 3.. of network 0, at rest in K column 0 (omega = 0, K = 0): the step
    # leaves t as it is, then wraps it
    b = _batch(5, dtype)
    rows = np.arange(3, 3 + t.size)
    theta0, omega, cpl = b.theta0.copy(), b.omega.copy(), b.couplings.copy()
    theta0[rows], omega[rows], cpl[:, 0] = t, 0, 0
    b = dataclasses.replace(b, theta0=theta0, omega=omega, couplings=cpl)
    sims = NativeSimulation(b, SPEC.dt, threads), CpuSimulation(b, SPEC.dt)
    for sim in sims:
        sim.advance(1)
    got, want = (_state(sim) for sim in sims)
    np.testing.assert_array_equal(got[0][rows, 0], want_first)
    _assert_same(got, want)
    _assert_same(_run(sims[0]), _run(sims[1]))
    assert np.all((got[0] >= 0) & (got[0] < tp))


# ------------------------------------------------------------- 3. rows of degree 0

def _with_isolated(n: int, m: int, seed: int, positions: list[int]):
    """BA(n, m) with isolated nodes inserted to sit at ``positions``."""
    indptr, indices = (np.asarray(a) for a in barabasi_albert(n, m, seed))
    new_id = np.setdiff1d(np.arange(n + len(positions)), positions)
    edges = [(new_id[i], new_id[j]) for i in range(n)
             for j in indices[indptr[i]:indptr[i + 1]] if i < j]
    return csr_from_edges(n + len(positions), edges)


def _isolated_batch(dtype, n_k: int, edgeless_only: bool):
    edgeless = (np.zeros(8, dtype=np.int64), np.zeros(0, dtype=np.int32))  # 7 nodes
    graphs = [edgeless] if edgeless_only else [
        _with_isolated(150, 2, 3, [0, 77, 152]),  # first, middle, last node
        edgeless,                                 # a whole network of degree 0
        _with_isolated(100, 3, 4, [100, 101, 102]),  # the batch ends with them
    ]
    rng = np.random.default_rng(17)
    sizes = [len(g[0]) - 1 for g in graphs]
    return pack(graphs, [rng.normal(0.0, 1.0, n) for n in sizes],
                [rng.uniform(0.0, 2 * np.pi, n) for n in sizes],
                rng.uniform(0.0, 6.0, (len(graphs), n_k)), precision=np.dtype(dtype).name)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_k, threads", [(13, 2), (5, 3), (13, 8)])
@pytest.mark.parametrize("edgeless_only", [False, True], ids=["mixed", "no-edges-at-all"])
def test_rows_without_neighbours(dtype, n_k, threads, edgeless_only):
    b = _isolated_batch(dtype, n_k, edgeless_only)
    deg = np.diff(b.indptr)
    assert deg[-1] == 0 and (deg == 0).sum() == (7 if edgeless_only else 13)
    assert (b.nnz == 0) == edgeless_only
    _sim, got = _native(b, threads)
    _assert_same(got, _run(CpuSimulation(b, SPEC.dt)))


# -------------------------------------------------- 4. the Simulation protocol in pieces

def _checked(sim, progress_calls: list, call, n: int):
    """Run ``call(progress)`` (n steps): progress is called with increasing step
    counts, past the steps before, ending at the steps after."""
    before, seen = sim.steps, []
    out = call(seen.append)
    assert sim.steps == before + n
    if n:
        assert seen and seen[0] > before and seen[-1] == sim.steps, seen
        assert all(a < b for a, b in itertools.pairwise(seen)), seen
    else:
        assert seen == []
    progress_calls.append(seen)
    return out


def _protocol(sim, n_k: int) -> tuple[list, list]:
    """A sequence of every protocol call; returns the outputs and states after
    each, and the progress seen."""
    rng = np.random.default_rng(5)
    out, seen = [], []
    out.append(_state(sim))
    _checked(sim, seen, lambda p: sim.advance(7, p), 7)
    out.append(_state(sim))
    out.append(_checked(sim, seen, lambda p: sim.measure(11, 3, p), 11))
    out.append(_state(sim))
    _checked(sim, seen, lambda p: sim.advance(0, p), 0)
    sim.set_couplings(rng.uniform(0.0, 8.0, (3, n_k)))  # float64: cast to the batch's
    sim.advance(4)
    out.append(_state(sim))
    out.append(_checked(sim, seen, lambda p: sim.measure(25, 4, p), 25))
    sim.retain(np.array([0, 2]))
    assert sim.batch.n_networks == 2
    out.append(_state(sim))
    out.append(_checked(sim, seen, lambda p: sim.measure(6, 1, p), 6))
    sim.set_couplings(rng.uniform(0.0, 8.0, (2, n_k)))
    out.append(sim.measure(5, 5))
    sim.retain(np.array([1]))
    _checked(sim, seen, lambda p: sim.advance(13, p), 13)
    out.append(_state(sim))
    return out, seen


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_k, threads", [(50, 2), (5, 2), (13, 3)])
def test_the_protocol_in_pieces_is_the_numba_pass(dtype, n_k, threads):
    b = _batch(n_k, dtype)
    got, got_seen = _protocol(NativeSimulation(b, SPEC.dt, threads), n_k)
    want, want_seen = _protocol(CpuSimulation(b, SPEC.dt), n_k)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        _assert_same(g if isinstance(g, tuple) else (g,), w if isinstance(w, tuple) else (w,),
                     f"output {i}")
    # progress may be coarser than the numba pass's every step, never finer
    for g, w in zip(got_seen, want_seen, strict=True):
        assert set(g) <= set(w)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_advance_in_pieces_is_one_advance(dtype):
    b = _batch(50, dtype)
    whole = NativeSimulation(b, SPEC.dt, 2)
    whole.advance(37)
    pieces = NativeSimulation(b, SPEC.dt, 2)
    seen: list = []
    for n, progress in ((1, None), (0, None), (9, seen.append), (0, seen.append),
                        (13, seen.append), (14, None)):
        pieces.advance(n, progress)
    assert pieces.steps == whole.steps == 37
    # each call's progress ends at its last step; increasing, within the calls
    assert 10 in seen and seen[-1] == 23 and seen[0] > 1
    assert all(a < b for a, b in itertools.pairwise(seen)), seen
    _assert_same(_state(pieces), _state(whole))
    _assert_same((pieces.measure(12, 4),), (whole.measure(12, 4),))


def test_bad_couplings_and_steps_are_refused_as_by_the_numba_pass():
    b = _batch(13, np.float32)
    for sim in (NativeSimulation(b, SPEC.dt, 2), CpuSimulation(b, SPEC.dt)):
        with pytest.raises(ValueError, match="shape"):
            sim.set_couplings(np.ones((2, 13)))
        with pytest.raises(ValueError, match="n_steps"):
            sim.advance(-1)
        with pytest.raises(ValueError, match="sample_every"):
            sim.measure(4, 0)
        assert sim.steps == 0


# -------------------------------------------------- 5. threads and batch composition

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_independent_of_the_threads(dtype):
    plans = set()
    for n_k in (30, 50):
        b = _batch(n_k, dtype)
        runs = {t: _native(b, t) for t in (1, 2, 3, 8)}
        plans |= {(n_k, sim.plan) for sim, _ in runs.values()}
        for t in (2, 3, 8):
            _assert_same(runs[t][1], runs[1][1], f"n_k={n_k}, {t} threads")
    # the thread counts gave different plans, else the test would show little
    assert len(plans) >= 3


# The call's schedules (kuramoto_cpu.cpp, run_call): tasks through the whole call in
# order (segment_work 0), tasks in segments taken least advanced first (here down to
# one step, so that tasks move between threads at every step), and rows shared with
# chunks taken from a counter and a barrier per stage. Each forced on plans with tasks
# of one width, of two widths, or shared rows, with fewer and more threads than tasks.
SCHEDULE_PLANS = {
    "one-width": (Group(0, 50, 1, True),),
    "two-widths": (Group(0, 48, 3, True), Group(48, 50, 1, True)),
    "shared": (Group(0, 50, 2, False),),
    "shared-and-tasks": (Group(0, 16, 2, False), Group(16, 50, 4, True)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("segment", [0, 1, 10 ** 12], ids=["whole-call", "one-step",
                                                           "longest"])
@pytest.mark.parametrize("groups", list(SCHEDULE_PLANS), ids=list(SCHEDULE_PLANS))
def test_every_schedule_gives_the_same_numbers(monkeypatch, dtype, segment, groups):
    """Which thread runs which steps of a task, in segments of any length, never
    changes a number: the numba pass's, bit for bit, on 1, 2, 3 and 8 threads."""
    custom = SCHEDULE_PLANS[groups]
    monkeypatch.setattr(cpu_native, "plan", lambda n_k, threads, itemsize, networks=1: custom)
    monkeypatch.setattr(cpu_native, "segment_work", lambda *a: segment)
    for threads in (1, 2, 3, 8):
        sim, got = _native(_batch(50, dtype), threads)
        assert sim.plan == custom and sim._segment_work == segment
        _assert_same(got, _numba(50, dtype), f"{threads} threads")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("groups", ["shared", "shared-and-tasks"])
def test_a_shared_team_that_goes_on_as_one_thread_gives_the_same_numbers(monkeypatch, dtype,
                                                                        groups):
    """A rows-shared team that leaves its stages to one member (kuramoto_cpu.cpp,
    SoloWatch; forced here: windows of 0 ns and a ratio no team reaches) gives
    the numba pass's numbers bit for bit; with the watch off no call goes on
    alone, so both paths ran. 1000 nodes: 7 row chunks per network, which the one
    member must all take."""
    custom = SCHEDULE_PLANS[groups]
    monkeypatch.setattr(cpu_native, "plan", lambda n_k, threads, itemsize, networks=1: custom)
    monkeypatch.setattr(cpu_native, "SOLO_WINDOW_NS", 0)
    batch = _batch(50, dtype, nodes=1000)
    want = _run(CpuSimulation(batch, SPEC.dt))
    for ratio, solo in ((1e9, True), (0.0, False)):
        monkeypatch.setattr(cpu_native, "SOLO_RATIO", ratio)
        for threads in (1, 2, 3):
            sim, got = _native(batch, threads)
            assert (sim.solo_calls > 0) == solo, (ratio, threads, sim.solo_calls)
            _assert_same(got, want, f"ratio {ratio}, {threads} threads")


def test_segments_only_where_tasks_are_few():
    """segment_work: SEGMENT_SYSTEM_STEPS for fewer than TASKS_PER_THREAD tasks per
    thread, else 0 (a task through the whole call); shared groups are no tasks."""
    lanes = VECTOR_BYTES // 4
    per = cpu_native.TASKS_PER_THREAD
    seg = cpu_native.SEGMENT_SYSTEM_STEPS
    two = (Group(0, 48, 3, True), Group(48, 50, 1, True))  # 3 tasks per network
    assert cpu_native.segment_work(two, 2, 4, 1) == seg
    for threads in (1, 2, 3, 8):
        for nets in (1, 2, 3, 5, 8, 40):
            tasks = 3 * nets
            want = seg if tasks < per * threads else 0
            assert cpu_native.segment_work(two, threads, 4, nets) == want, (threads, nets)
    shared = (Group(0, 8 * lanes, 1, False), Group(8 * lanes, 9 * lanes, 1, True))
    assert cpu_native.segment_work(shared, 1, 4, per - 1) == seg  # per - 1 tasks
    assert cpu_native.segment_work(shared, 1, 4, per) == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_a_network_alone_or_in_a_batch_is_the_same(dtype):
    together = _batch(13, dtype, runs=(0, 1, 2), own_couplings=False)
    _sim, (samples, theta, *_) = _native(together, 2)
    off = together.node_offset
    for run in range(3):
        alone = _batch(13, dtype, runs=(run,), own_couplings=False)
        _, (s1, theta1, *_) = _native(alone, 2)
        np.testing.assert_array_equal(samples[run], s1[0], err_msg=f"run {run}")
        np.testing.assert_array_equal(theta[off[run]:off[run + 1]], theta1,
                                      err_msg=f"run {run}")


# ------------------------------------------------- 6. the engine's choice and fallback

def test_the_engine_takes_the_native_pass_for_several_k():
    eng = CpuEngine()
    assert eng.native_reason() is None and "native pass" in eng.describe()
    sim = eng.start(_batch(13, np.float32), SPEC.dt)
    assert type(sim) is NativeSimulation and sim.threads == numba.get_num_threads()
    one_k = make_batch([0, 1], StudyConfig(seed=3, nodes=120, m=2, k_num=1, k_min=1.0,
                                           k_max=1.0)).batch
    assert type(eng.start(one_k, SPEC.dt)) is CpuSimulation
    off = CpuEngine(native=False)
    assert type(off.start(_batch(13, np.float32), SPEC.dt)) is CpuSimulation
    assert "not asked for" in off.describe()
    # integrate through the engine: the numba pass's numbers
    np.testing.assert_array_equal(eng.integrate(_batch(13, np.float32), SPEC),
                                  _numba(13, np.float32)[0])


@pytest.mark.parametrize("value", ["0", "off"])
def test_turned_off_by_the_environment(monkeypatch, value):
    monkeypatch.setenv(cpu_native.ENV, value)
    eng = CpuEngine()
    assert eng.native_reason() == f"turned off by {cpu_native.ENV}={value}"
    assert type(eng.start(_batch(13, np.float64), SPEC.dt)) is CpuSimulation
    text = eng.describe()
    assert text.startswith("cpu: numba") and f"{cpu_native.ENV}={value}" in text
    np.testing.assert_array_equal(eng.integrate(_batch(13, np.float64), SPEC),
                                  _numba(13, np.float64)[0])


def test_without_a_compiler_the_engine_falls_back_to_numba(monkeypatch, tmp_path):
    want = NativeSimulation(_batch(13, np.float32), SPEC.dt, 2)
    want = _run(want)[0]
    # _built forgets the real build (lru_cache), and again at the end, with the
    # environment restored, so that later tests load the real one
    cpu_native._built.cache_clear()
    try:
        monkeypatch.delenv(cpu_native.ENV, raising=False)
        monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
        monkeypatch.setenv("KCBATCH_CACHE_DIR", str(tmp_path / "cache"))
        reason = cpu_native.unavailable_reason()
        assert reason is not None and "\n" not in reason and "no-such-g++" in reason
        eng = CpuEngine()
        assert eng.native_reason() == reason and reason in eng.describe()
        assert type(eng.start(_batch(13, np.float32), SPEC.dt)) is CpuSimulation
        np.testing.assert_array_equal(eng.integrate(_batch(13, np.float32), SPEC), want)
        assert not list((tmp_path / "cache").glob("*.so"))
    finally:
        cpu_native._built.cache_clear()
        monkeypatch.undo()
    assert cpu_native.unavailable_reason() is None


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 flags")
def test_the_build_without_avx_gives_the_same_numbers(monkeypatch):
    """Built for baseline x86-64 (SSE2: no AVX, so rounding, floor and the
    fallback test take their portable per-lane code), the pass still gives
    the numba pass's numbers bit for bit."""
    flags = tuple("-march=x86-64" if f == "-march=native" else f for f in cpu_native.CXX_FLAGS)
    assert flags != cpu_native.CXX_FLAGS
    cpu_native._built.cache_clear()
    try:
        monkeypatch.setattr(cpu_native, "CXX_FLAGS", flags)
        b = _batch(13, np.float32)
        big = b.theta0.copy()
        big[::11] = 3 * LIMIT32  # the libm fallback, through the portable test
        b = dataclasses.replace(b, theta0=big)
        for threads in (1, 2):
            _assert_same(_run(NativeSimulation(b, SPEC.dt, threads)),
                         _run(CpuSimulation(b, SPEC.dt)), f"{threads} threads")
        b64 = _batch(5, np.float64)
        _assert_same(_run(NativeSimulation(b64, SPEC.dt, 2)), _run(CpuSimulation(b64, SPEC.dt)))
    finally:
        monkeypatch.undo()
        cpu_native._built.cache_clear()


def test_a_failing_build_is_tried_once_and_its_error_is_the_reason(monkeypatch, tmp_path):
    # a "compiler" that counts its runs and fails with an error line, as g++ does
    runs = tmp_path / "runs"
    fake = tmp_path / "fake-g++"
    fake.write_text(f"#!/bin/sh\necho run >> {runs}\n"
                    "echo 'kuramoto_cpu.cpp:1:1: error: no omp.h here' >&2\nexit 1\n")
    fake.chmod(0o755)
    cpu_native._built.cache_clear()
    try:
        monkeypatch.delenv(cpu_native.ENV, raising=False)
        monkeypatch.setenv("CXX", str(fake))
        monkeypatch.setenv("KCBATCH_CACHE_DIR", str(tmp_path / "cache"))
        reasons = {cpu_native.unavailable_reason() for _ in range(3)}
        eng = CpuEngine()
        assert type(eng.start(_batch(5, np.float32), SPEC.dt)) is CpuSimulation
        (reason,) = reasons
        assert "fake-g++" in reason and "error: no omp.h here" in reason and "\n" not in reason
        assert runs.read_text().count("run") == 1
    finally:
        cpu_native._built.cache_clear()
        monkeypatch.undo()
    assert cpu_native.unavailable_reason() is None


@pytest.mark.parametrize("name, dtype", [("indices", np.int64), ("indptr", np.int32),
                                         ("row_net", np.int64), ("weight", np.float64)])
def test_arrays_of_another_type_are_refused_not_misread(name, dtype):
    b = _batch(5, np.float32)
    bad = dataclasses.replace(b, **{name: getattr(b, name).astype(dtype)})
    with pytest.raises(ValueError, match=f"batch.{name} is {np.dtype(dtype)}"):
        NativeSimulation(bad, SPEC.dt, 2)
    strided = dataclasses.replace(b, omega=np.repeat(b.omega, 2)[::2])
    with pytest.raises(ValueError, match=r"batch\.omega .*not C-contiguous"):
        NativeSimulation(strided, SPEC.dt, 2)


def test_long_advances_are_cut_into_calls_of_bounded_work(monkeypatch):
    """A C++ call cannot be interrupted: advance cuts it by CALL_SYSTEM_STEPS,
    which changes no number."""
    b = _batch(13, np.float32)
    want = _run(NativeSimulation(b, SPEC.dt, 2))
    calls = []
    monkeypatch.setattr(cpu_native, "CALL_SYSTEM_STEPS", 3 * b.n_rows * b.n_k + 1)
    sim = NativeSimulation(b, SPEC.dt, 2)
    real_run = sim._run
    monkeypatch.setattr(sim, "_run", lambda n, *a: calls.append(n) or real_run(n, *a))
    _assert_same(_run(sim), want)
    assert max(calls) == 3 and sum(calls) == SPEC.n_transient + SPEC.n_measure
    assert calls[:3] == [3, 3, SPEC.n_transient - 6]


@pytest.mark.parametrize("snapshots", [1, 2, 100])
def test_a_measurement_is_one_call_with_its_samples_taken_inside(monkeypatch, snapshots):
    """measure's samples come from snapshots taken inside the C++ call; however
    few fit a call, the samples are the numba pass's."""
    b = _batch(13, np.float64)
    sim = NativeSimulation(b, SPEC.dt, 2)
    one = sum(g.X[0].nbytes for g in sim.groups)
    monkeypatch.setattr(cpu_native, "SNAPSHOT_BYTES", snapshots * one)
    calls = []
    real_run = sim._run
    monkeypatch.setattr(sim, "_run", lambda n, *a: calls.append((n,) + a) or real_run(n, *a))
    ref = CpuSimulation(b, SPEC.dt)
    for n, every in ((23, 4), (1, 3), (9, 9), (10, 1)):
        calls.clear()
        got = sim.measure(n, every)
        _assert_same((got,) + _state(sim), (ref.measure(n, every),) + _state(ref), f"{n}/{every}")
        n_samples = -(-n // every)
        # a call per `snapshots` samples, each snapshot at a sampling step
        assert len(calls) == -(-n_samples // snapshots) and sum(c[0] for c in calls) == n
        assert sum(c[1] for c in calls) == n_samples


# ---------------------------------------------------------------- 7. the build cache

TINY = 'extern "C" int kc_tiny_answer() { return 42; }\n'
TINY_FLAGS = ("-O1", "-shared", "-fPIC")


def test_the_cache_key_holds_the_host_signature(monkeypatch, tmp_path):
    assert cxx.host_signature().startswith(platform.machine() + "|")
    cache = tmp_path / "cache"
    monkeypatch.setenv("KCBATCH_CACHE_DIR", str(cache))
    builds = {}
    for sig in ("cpu A|flags: avx2", "cpu A|flags: avx2", "cpu B|flags: avx512f"):
        monkeypatch.setattr(cxx, "host_signature", lambda sig=sig: sig)
        assert cxx.build("kc_tiny", TINY, TINY_FLAGS).kc_tiny_answer() == 42
        builds[sig] = sorted(p.name for p in cache.glob("kc_tiny_*.so"))
    a, b = builds.values()
    assert len(a) == 1 and len(b) == 2 and a[0] in b  # A built once, reused; B its own
    # the flags and the source are in the key too
    cxx.build("kc_tiny", TINY, TINY_FLAGS + ("-O2",))
    cxx.build("kc_tiny", TINY + "// edited\n", TINY_FLAGS)
    assert len(list(cache.glob("kc_tiny_*.so"))) == 4


def test_a_source_that_does_not_compile_raises_build_error(monkeypatch, tmp_path):
    monkeypatch.setenv("KCBATCH_CACHE_DIR", str(tmp_path))
    with pytest.raises(cxx.BuildError) as err:
        cxx.build("kc_broken", 'extern "C" int f() { return kc_never_declared; }\n',
                  TINY_FLAGS)
    text = str(err.value)
    assert text.startswith("compiling kc_broken with ") and "kc_never_declared" in text
    assert "error" in text.lower()
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("*.cpp"))


def test_a_compiler_that_cannot_run_raises_build_error(monkeypatch, tmp_path):
    monkeypatch.setenv("KCBATCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    with pytest.raises(cxx.BuildError, match="no-such-g\\+\\+"):
        cxx.build("kc_tiny", TINY, TINY_FLAGS)


# ------------------------------------------------------------------ 8. plan invariants

@pytest.mark.parametrize("itemsize", [4, 8])
def test_plan_invariants(itemsize):
    lanes = VECTOR_BYTES // itemsize
    for n_k, threads, nets in itertools.product(range(1, 71), range(1, 9), (1, 3, 8)):
        p = cpu_native.plan(n_k, threads, itemsize, nets)
        where = f"n_k={n_k} threads={threads} networks={nets} itemsize={itemsize}: {p}"
        assert 1 <= len(p) <= 2, where
        assert p[0].k0 == 0 and p[-1].k1 == n_k, where
        assert all(a.k1 == b.k0 for a, b in itertools.pairwise(p)), where
        assert all(g.k0 < g.k1 and 1 <= g.vecs <= MAX_VECS for g in p), where
        assert all(isinstance(g.by_block, bool) for g in p), where
        padded = _lanes(p, itemsize)
        assert padded == cpu_native.planned_k(n_k, threads, itemsize, nets), where
        # each group pads by less than one of the widest blocks
        assert n_k <= padded < n_k + len(p) * MAX_VECS * lanes, where
        if len(p) == 2:  # whole blocks, then the K left over in a narrower block, all tasks
            width = p[0].vecs * lanes
            assert p[0].by_block and p[1].by_block, where
            assert p[0].k1 % width == 0 and p[1].vecs < p[0].vecs, where
            assert p[1].k1 - p[1].k0 < width, where
            assert -(-(p[1].k1 - p[1].k0) // lanes) == p[1].vecs, where
        if not p[0].by_block:  # rows shared: one group, and only with threads to share
            assert len(p) == 1 and threads > 1, where
    # the default study on 2 threads: two blocks of 24 and the last 2 K in a block of 8,
    # three tasks; in batches of 8 too, every block in tasks of one network
    assert cpu_native.plan(50, 2, 4) == (Group(0, 48, 3, True), Group(48, 50, 1, True))
    assert all(g.by_block for g in cpu_native.plan(50, 2, 4, 8))
    # one block and threads to share it: its rows are shared
    assert cpu_native.plan(8, 2, 4) == (Group(0, 8, 1, False),)
