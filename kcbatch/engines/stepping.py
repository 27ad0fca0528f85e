"""The one step loop of the engines that step a batch one RK4 step at a time.

``run_protocol`` is :meth:`~kcbatch.engines.protocols.Engine.integrate` of the CPU
engine and of the kernels' global strategy: ``start``, ``advance(n_transient)``,
``measure(n_measure, sample_every)``.
:class:`SteppingSimulation` is the loop: ``advance`` repeats ``_step``, and
``measure`` samples r after measurement step ``s`` (0-based) when
``s % sample_every == 0``, into sample ``s // sample_every``. The CPU engine's
numba pass and the kernels' global strategy implement only ``_step`` and the
sampling (``_new_samples``, ``_sample``, ``_to_host``); passes that run many
steps per call (the CPU's native pass, the shared kernel) keep that rule in
their own calls.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kcbatch.engines.protocols import Simulation, StepProgress
from kcbatch.engines.steps import check_steps
from kcbatch.inputs.batch import Batch
from kcbatch.protocol.config import IntegrationSpec


def run_protocol(start: Callable[[Batch, float], Simulation], batch: Batch,
                 spec: IntegrationSpec, progress: StepProgress | None = None) -> np.ndarray:
    """``spec``'s protocol on ``batch``: samples ``[B, nK, spec.n_samples]`` float64
    (host array) of ``start(batch, spec.dt)`` (an engine's ``start``), then
    ``advance(spec.n_transient)``, then ``measure(spec.n_measure, spec.sample_every)``."""
    sim = start(batch, spec.dt)
    sim.advance(spec.n_transient, progress)
    return sim.measure(spec.n_measure, spec.sample_every, progress)


class SteppingSimulation:
    """What every Simulation shares: ``advance`` as repeated ``_step`` (one RK4
    step of every system, ``steps`` += 1), which each engine implements, and
    ``measure`` as the same loop with samples taken by ``_sample``."""

    batch: Batch
    steps: int

    def _step(self) -> None:
        raise NotImplementedError

    def _new_samples(self, n_samples: int) -> Any:
        """An array for ``n_samples`` samples, ``[B, nK, n_samples]`` float64, where
        ``_sample`` writes them (and any scratch the sampling needs)."""
        raise NotImplementedError

    def _sample(self, samples: Any, index: int) -> None:
        """r of the current state into ``samples[:, :, index]``."""
        raise NotImplementedError

    def _to_host(self, samples: Any) -> np.ndarray:
        """``samples`` as a host array."""
        return samples

    def advance(self, n_steps: int, progress: StepProgress | None = None) -> None:
        check_steps(n_steps)
        for _ in range(n_steps):
            self._step()
            if progress is not None:
                progress(self.steps)

    def measure(self, n_steps: int, sample_every: int,
                progress: StepProgress | None = None) -> np.ndarray:
        check_steps(n_steps, sample_every)
        samples = self._new_samples(-(-n_steps // sample_every))  # [B, nK, nS]
        for s in range(n_steps):
            self._step()
            if s % sample_every == 0:
                self._sample(samples, s // sample_every)
            if progress is not None:
                progress(self.steps)
        return self._to_host(samples)
