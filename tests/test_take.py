"""``Simulation.take``: chosen (network, K) systems continue in a new simulation.

One body over every engine (the CPU engine's numba and native passes, the
kernels' global and shared strategies on gpu-sim and the GPU): a system whose
coupling is kept goes on bit for bit as in the simulation it came from, however
its network and columns are regrouped (repeats, other orders, other widths);
a system given a new coupling continues its source's phases at that coupling.
The reference for "goes on" is the same engine left alone, and for the
continuation :func:`reference.reference_r` (no engine code) started from the
phases the engine had."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import device_params, random_batch

from kcbatch import pack
from kcbatch.engines import get_engine, select_systems

K = np.array([0.3, 0.8, 1.2, 1.6, 2.4])
DT = 0.05

ENGINES = [pytest.param("cpu", "native", id="cpu"),
           pytest.param("cpu", "numba", id="cpu-numba"),
           *(pytest.param(p.values[0], kernel, id=f"{p.id}-{kernel}", marks=p.marks)
             for p in device_params(("gpu-sim", "gpu")) for kernel in ("global", "shared"))]


def _engine(device, variant):
    if device == "cpu":
        from kcbatch.engines.cpu.engine import CpuEngine
        return CpuEngine(native=variant != "numba")
    return get_engine(device, kernel=variant)


def _batch():
    graphs, omega, theta0 = random_batch(3, 60, 2, 17)
    return pack(graphs, list(omega), list(theta0), K)


@pytest.mark.parametrize(("device", "variant"), ENGINES)
def test_taken_systems_go_on_bit_for_bit(device, variant):
    engine, batch = _engine(device, variant), _batch()
    whole = engine.start(batch, DT)
    whole.advance(40)
    # network 2 twice (two column sets), network 0 once with columns reversed
    # and repeated; network 1 dropped
    nets = np.array([2, 0, 2])
    cols = np.array([[4, 1, 1], [3, 2, 0], [0, 2, 3]])
    part = whole.take(*select_systems(batch, nets, cols, batch.couplings[nets[:, None], cols]))
    assert part.steps == whole.steps == 40 and part.batch.n_networks == 3
    got = part.measure(30, 3)                        # [3, 3, 10]
    want = whole.measure(30, 3)                      # [3, 5, 10]: the source went on alone
    assert got.shape == (3, 3, 10)
    for m, (b, c) in enumerate(zip(nets, cols, strict=True)):
        np.testing.assert_array_equal(got[m], want[b][c])


@pytest.mark.parametrize(("device", "variant"), ENGINES)
def test_new_couplings_continue_the_source_phases(device, variant):
    from reference import reference_r
    engine = _engine(device, variant)
    graphs, omega, theta0 = random_batch(3, 60, 2, 17)
    batch = pack(graphs, list(omega), list(theta0), K)
    sim = engine.start(batch, DT)
    sim.advance(60)
    cont = sim.take(*select_systems(batch, np.array([1]), np.array([[2, 2]]),
                                    np.array([[1.3, 1.45]])))
    got = cont.measure(9, 4)[0]                          # [2, 3]
    # the same continuation by the reference RK4 from the phases the engine had
    lo, hi = batch.node_offset[1], batch.node_offset[2]
    start = _phases(sim)[lo:hi, 2].astype(np.float64)
    want = reference_r(graphs[1], omega[1], start, [1.3, 1.45], DT, 0, 9, 4)
    np.testing.assert_allclose(got.mean(axis=1), want, atol=1e-4)
    assert abs(want[1] - want[0]) > 1e-3               # the two couplings differ visibly


def _phases(sim) -> np.ndarray:
    """The phases ``[R, nK]`` of any engine's simulation, on the host."""
    if hasattr(sim, "phases"):
        return np.asarray(sim.phases())
    return np.asarray(sim.backend.to_host(sim.theta))


def test_select_systems_checks_its_columns():
    batch = _batch()
    with pytest.raises(ValueError, match="columns"):
        select_systems(batch, np.array([0]), np.array([[5]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="networks"):
        select_systems(batch, np.array([3]), np.array([[0]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="couplings"):
        select_systems(batch, np.array([0]), np.array([[0, 1]]), np.array([[1.0]]))
