"""What every engine is: the :class:`Engine` and :class:`Simulation` protocols.

An engine integrates a packed :class:`~kcbatch.inputs.batch.Batch` under the
protocol of an :class:`~kcbatch.protocol.config.IntegrationSpec` and returns the sampled
order parameter. Beside that, the batch planner asks it how large a batch of a
:class:`~kcbatch.engines.sizing.BatchShape` may be, how much memory one needs,
and for one line describing the device. Nothing here knows a device: the CPU
engine (``engines/cpu/``) and the kernels' engines (``kernel_engine.py``) both
satisfy these protocols.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from kcbatch.engines.sizing import BatchShape
from kcbatch.inputs.batch import Batch
from kcbatch.protocol.config import IntegrationSpec


class EngineUnavailable(RuntimeError):
    """The requested device cannot be used; the message says why in one line."""


# Called with the number of RK4 steps of the batch launched so far (1..spec.n_steps),
# so that a progress bar can move inside a batch that takes minutes.
StepProgress = Callable[[int], None]


@runtime_checkable
class Engine(Protocol):
    """The interface of every device's engine."""

    name: str

    def integrate(self, batch: Batch, spec: IntegrationSpec,
                  progress: StepProgress | None = None) -> np.ndarray:
        """Samples of r, ``[B, nK, spec.n_samples]`` float64 (host array).

        ``progress``, if given, is called with the steps done after each RK4
        step, or after each group of steps an engine runs in one call (the
        CPU's native pass: a call of ~0.15 s; the shared GPU kernel: a launch)."""

    def start(self, batch: Batch, dt: float) -> Simulation:
        """A :class:`Simulation` of ``batch`` at ``theta0`` (no step taken yet).

        ``integrate(batch, spec)`` is ``start(batch, spec.dt)``, ``advance(
        spec.n_transient)``, ``measure(spec.n_measure, spec.sample_every)``:
        the same launches in the same order, so the same numbers bit for bit."""

    def k_lanes(self, itemsize: int) -> int:
        """How many K of one network the engine integrates together (a vector
        of reals of ``itemsize`` bytes; 1 where every (row, K) system is its
        own thread): a batch of fewer K per network costs as much as this."""

    def batch_limit(self, shape: BatchShape) -> int:
        """The largest batch (networks of ``shape``) this engine can take."""

    def auto_batch(self, shape: BatchShape) -> int:
        """What ``--batch auto`` picks for networks of ``shape`` (before capping
        to the runs left)."""

    def predict_bytes(self, shape: BatchShape, batch: int) -> int:
        """Bytes of the arrays one batch of ``batch`` networks of ``shape`` allocates."""

    def describe(self) -> str:
        """One line for ``kcbatch info``."""

    def release_memory(self) -> None:
        """Give cached device memory back (after an out-of-memory error)."""

    def memory_in_use(self) -> int | None:
        """Bytes the engine's allocator holds now, or None where it has none."""


@runtime_checkable
class Simulation(Protocol):
    """A batch being integrated, continued in pieces (``Engine.start``).

    ``steps`` counts the RK4 steps taken since ``theta0``; ``batch`` is the
    batch it integrates (after :meth:`retain`, the smaller one)."""

    batch: Batch
    steps: int

    def advance(self, n_steps: int, progress: StepProgress | None = None) -> None:
        """``n_steps`` RK4 steps, no sampling. ``progress(steps)`` after each
        step or group of steps run at once (see :meth:`Engine.integrate`)."""

    def measure(self, n_steps: int, sample_every: int,
                progress: StepProgress | None = None) -> np.ndarray:
        """``n_steps`` RK4 steps sampling r after step ``s`` (0-based, counted
        from this call) when ``s % sample_every == 0``; samples
        ``[B, nK, ceil(n_steps / sample_every)]`` float64 (host array)."""

    def retain(self, networks: np.ndarray) -> None:
        """Keep only ``networks`` (increasing indices into ``batch``), with
        their state: the others stop costing work. A network's numbers do not
        change (section 2 of docs/design.md: nothing of a network reads
        another's rows), so this is a pure saving."""

    def take(self, batch: Batch, rows: np.ndarray, cols: np.ndarray) -> Simulation:
        """A new simulation of ``batch`` (same engine, same ``steps``) whose
        state ``[R', W]`` is this one's at ``[rows, cols]``; this one is unchanged.

        rows, cols [R', W] int64: where each new (row, K) system's phase is,
        in this simulation's ``[R, nK]`` state. The caller gives each new
        network the graph, frequencies and weights of the network its rows
        come from (:func:`~kcbatch.engines.steps.select_systems` builds both for
        systems picked per network). A system whose coupling is kept goes on
        exactly as it would have here, bit for bit (nothing of a system reads
        another's state); one with a new coupling continues its source's phases
        at that coupling (a continuation: kcbatch/analysis/adaptive.py)."""

    def set_couplings(self, couplings: np.ndarray) -> None:
        """Replace the couplings ``[B, nK]`` of every (network, K) system,
        keeping the phases: the next steps integrate at the new K (the
        adiabatic sweep, kcbatch/analysis/sweep.py)."""
