"""The adiabatic sweep: each coupling continues from the previous one's phases.

The independent protocol starts every K from ``theta0``. The adiabatic sweep
(``sweep="adiabatic"``, the protocol of hysteresis studies) walks the grid
instead, on every network of a batch at once:

* **forward branch**: the first K starts from ``theta0``; each later K starts
  from the final phases of the previous K, reached after its transient
  (``n_transient`` steps) and its measurement (``n_measure`` steps, r sampled
  every ``sample_every`` steps exactly as in the protocol);
* **backward branch**: continues from the forward branch's final phases and
  goes down the same grid, K_max first: at K_max it takes a new transient and
  a new measurement from where the forward branch ended, then K_{nK-2}, ...,
  K_0. It is reported in increasing-K order.

A study's ``dwell`` sets the time at each K, measurement included: its
``n_transient`` is ``(dwell - t_measure)/dt`` (``t_transient`` without dwell).

The simulation keeps one system per network (a batch packed with one coupling
column) and only its coupling changes between steps
(``Simulation.set_couplings``): the phases never leave the device. Each
branch is sequential in K, so a device is kept full by batching many networks
(a study takes ``k_num`` times more networks per batch than the independent
protocol: the same number of (row, K) systems; the batch planner,
``kcbatch.run.batching``, lays the batches out so).

Per run (:func:`hysteresis`): ``kc_forward``, the first K of the forward
branch with r > threshold; ``kc_backward``, the smallest K at which the
backward branch's r exceeds the threshold and stays above it at every larger
K; the hysteresis width ``kc_forward - kc_backward``; and the loop area
``integral of (r_backward - r_forward) dK`` by the trapezoid rule on the grid.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from kcbatch.engines import Engine, Simulation
from kcbatch.inputs.batch import Batch
from kcbatch.protocol.config import decimal_value

__all__ = ["SweepSamples", "LoopMeasures", "one_column", "run_sweep", "loop_measures",
           "kc_forward", "kc_backward", "loop_area"]


@dataclass(frozen=True, eq=False)
class SweepSamples:
    """The r samples of both branches, float64 ``[B, nK, n_samples]`` each,
    K in increasing grid order (the backward branch's too)."""

    forward: np.ndarray
    backward: np.ndarray


@dataclass(frozen=True)
class LoopMeasures:
    """The loop of one run (couplings in rad per time unit; area in r x K).

    kc_forward / kc_backward: None when the branch has no such crossing
    (forward never above the threshold; backward not above it at K_max).
    width: kc_forward - kc_backward, None unless both exist.
    loop_area: trapezoid integral of r_backward - r_forward over the grid
    (0 for a one-point grid).
    """

    kc_forward: float | None
    kc_backward: float | None
    width: float | None
    loop_area: float


def one_column(batch: Batch) -> Batch:
    """``batch`` with a single coupling column (its first K): the sweep's
    layout, one system per network; the graph arrays are shared, not copied."""
    return dataclasses.replace(batch, couplings=np.ascontiguousarray(batch.couplings[:, :1]))


def run_sweep(engine: Engine, batch: Batch, couplings: np.ndarray, *, dt: float,
              n_transient: int, n_measure: int, sample_every: int,
              progress=None) -> SweepSamples:
    """Both branches of every network of ``batch`` on ``engine``.

    batch: packed networks (any number of coupling columns: only the first
      is used, as a layout; :func:`one_column`).
    couplings: ``[B, nK]`` the grid of each network (the batch's real type),
      walked left to right (forward) then right to left (backward).
    dt [time units], n_transient, n_measure, sample_every [steps]: the
      protocol applied at every K of both branches.
    progress: called with the RK4 steps done so far, out of
      ``2 * nK * (n_transient + n_measure)``.
    """
    grid = np.asarray(couplings)
    n_k = grid.shape[1]
    sim = engine.start(one_column(batch), dt)
    forward = [_at(sim, grid[:, i:i + 1], n_transient, n_measure, sample_every, progress)
               for i in range(n_k)]
    backward = [_at(sim, grid[:, i:i + 1], n_transient, n_measure, sample_every, progress)
                for i in reversed(range(n_k))]
    return SweepSamples(forward=np.concatenate(forward, axis=1),
                        backward=np.concatenate(backward[::-1], axis=1))


def _at(sim: Simulation, k: np.ndarray, n_transient: int, n_measure: int, sample_every: int,
        progress) -> np.ndarray:
    """One K of a branch: samples ``[B, 1, n_samples]``."""
    sim.set_couplings(k)
    sim.advance(n_transient, progress)
    return sim.measure(n_measure, sample_every, progress)


def kc_forward(k_values: np.ndarray, r_forward: np.ndarray, threshold: float) -> float | None:
    """The first grid K with r_forward > threshold, or None."""
    above = np.flatnonzero(np.asarray(r_forward) > threshold)
    return decimal_value(k_values[above[0]]) if above.size else None


def kc_backward(k_values: np.ndarray, r_backward: np.ndarray, threshold: float) -> float | None:
    """The smallest grid K from which r_backward stays above ``threshold`` at
    every larger K, or None when it is not above it at K_max."""
    below = np.flatnonzero(~(np.asarray(r_backward) > threshold))
    if below.size == 0:
        return decimal_value(k_values[0])
    last = int(below[-1])
    return decimal_value(k_values[last + 1]) if last + 1 < len(k_values) else None


def loop_area(k_values: np.ndarray, r_forward: np.ndarray, r_backward: np.ndarray) -> float:
    """Trapezoid rule of r_backward - r_forward over the grid (K in rad per
    time unit; 0 for a single K)."""
    k = np.asarray(k_values, dtype=np.float64)
    d = np.asarray(r_backward, dtype=np.float64) - np.asarray(r_forward, dtype=np.float64)
    return float(np.sum(0.5 * (d[1:] + d[:-1]) * np.diff(k)))


def loop_measures(k_values: np.ndarray, r_forward: np.ndarray, r_backward: np.ndarray,
               threshold: float) -> LoopMeasures:
    """The :class:`LoopMeasures` of one run's branches (``[nK]`` each, increasing K)."""
    k = np.asarray(k_values, dtype=np.float64)
    fwd = kc_forward(k, r_forward, threshold)
    bwd = kc_backward(k, r_backward, threshold)
    width = None if fwd is None or bwd is None else decimal_value(fwd - bwd)
    return LoopMeasures(kc_forward=fwd, kc_backward=bwd, width=width,
                      loop_area=loop_area(k, r_forward, r_backward))
