"""The kernels' launch sequence, shared by the ``gpu`` and ``gpu-sim`` engines.

:class:`KernelSimulation` is the global strategy over a
:class:`~kcbatch.engines.backend.Backend`: ``init_state`` once, four
``rk4_stage`` launches per RK4 step (double-buffered (sin, cos) arrays), and
``sample_partial`` + ``sample_finalize`` on sampling steps; the samples stay on
the device and the batch syncs with the host once per measurement, when they
are copied back. :class:`BackendEngine` is an engine over one backend: it picks
the global or the shared strategy (``shared.py``) per batch and answers the
batch planner's questions from the kernels' byte formula
(:func:`predict_kernel_bytes`).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np

from kcbatch.engines.backend import Backend
from kcbatch.engines.launch import (
    SAMPLE_CHUNK_ROWS,
    launch_init_state,
    launch_rk4_stage,
    launch_sample_finalize,
    launch_sample_partial,
)
from kcbatch.engines.protocols import StepProgress
from kcbatch.engines.shared import (
    AUTO_PICKS_SHARED,
    SharedSimulation,
    batch_misfit,
    integrate_shared,
    misfit,
)
from kcbatch.engines.sizing import HOST_AUTO_BATCH, BatchShape, systems_limit
from kcbatch.engines.stepping import SteppingSimulation, run_protocol
from kcbatch.engines.steps import checked_couplings, select_networks
from kcbatch.inputs.batch import Batch
from kcbatch.protocol.choices import AUTO, Auto, KernelStrategy, is_auto
from kcbatch.protocol.config import ConfigError, IntegrationSpec


def predict_kernel_bytes(shape: BatchShape, batch: int) -> int:
    """Bytes :meth:`BackendEngine.integrate` allocates for ``batch`` networks of
    ``shape`` (before allocator rounding)."""
    it = shape.precision.itemsize
    rows = batch * shape.nodes
    n_k = shape.n_k
    n_chunks = -(-shape.nodes // SAMPLE_CHUNK_ROWS)
    state = rows * n_k * it * (2 + 2 * 2)  # theta, acc, sc[2] of pairs
    graph = shape.packed_bytes(batch) + (batch + 1) * 8  # and node_offset
    small = (batch * n_k * it + batch * n_chunks * n_k * 2 * 8
             + batch * n_k * shape.n_samples * 8)
    return state + graph + small


class KernelSimulation(SteppingSimulation):
    """:class:`~kcbatch.engines.protocols.Simulation` over the kernels:
    ``init_state`` at creation, then four ``rk4_stage`` launches per step;
    samples by ``sample_partial`` + ``sample_finalize``."""

    _GRAPH = ("indptr", "indices", "weight", "omega", "row_net", "couplings")

    def __init__(self, backend: Backend, batch: Batch, dt: float):
        self.backend, self.xp = backend, backend.xp
        self.real = str(batch.dtype)
        self.dt = dt
        self.steps = 0
        self._load(batch)
        theta = self.xp.empty((batch.n_rows, batch.n_k), dtype=self.real)        # [R, nK]
        sc0 = self.xp.empty((batch.n_rows, batch.n_k, 2), dtype=self.real)       # [R, nK, 2]
        launch_init_state(backend, self.real, backend.to_device(batch.theta0), theta, sc0)
        self._state(theta, sc0)

    def _load(self, batch: Batch) -> None:
        self.batch = batch
        self.dev = {name: self.backend.to_device(getattr(batch, name))
                    for name in self._GRAPH + ("node_offset",)}
        self.graph = tuple(self.dev[name] for name in self._GRAPH)

    def _state(self, theta, sc0) -> None:
        """Adopt ``theta [R, nK]`` and the (sin, cos) pairs ``sc0 [R, nK, 2]``;
        ``acc`` and the second pair buffer are scratch rewritten every step."""
        self.theta = theta
        self.acc = self.xp.empty_like(theta)
        self.sc = (sc0, self.xp.empty_like(sc0))

    def _step(self) -> None:
        for stage in range(4):
            # mypy maps the variable-length *self.graph onto every remaining parameter
            launch_rk4_stage(self.backend, self.real, *self.graph,  # type: ignore[call-arg]
                             self.sc[stage % 2], self.sc[(stage + 1) % 2], self.theta, self.acc,
                             stage, self.dt)
        self.steps += 1

    def _new_samples(self, n_samples: int) -> Any:
        b, n_k = self.batch.n_networks, self.batch.n_k
        max_nodes = int(np.max(np.diff(self.batch.node_offset)))
        n_chunks = -(-max_nodes // SAMPLE_CHUNK_ROWS)
        self._partial = self.xp.empty((b, n_chunks, n_k, 2), dtype=np.float64)  # [B, nQ, nK, 2]
        return self.xp.empty((b, n_k, n_samples), dtype=np.float64)          # [B, nK, nS]

    def _sample(self, samples: Any, index: int) -> None:
        launch_sample_partial(self.backend, self.real, self.sc[0], self.dev["node_offset"],
                              self._partial)
        launch_sample_finalize(self.backend, self._partial, self.dev["node_offset"], samples,
                               index)

    def _to_host(self, samples: Any) -> np.ndarray:
        return self.backend.to_host(samples)

    def set_couplings(self, couplings: np.ndarray) -> None:
        new = checked_couplings(self.batch, couplings)
        # Only the [B, nK] couplings travel to the device; the graph and the
        # phases stay where they are.
        self.batch = dataclasses.replace(self.batch, couplings=new)
        self.dev["couplings"] = self.backend.to_device(new)
        self.graph = tuple(self.dev[name] for name in self._GRAPH)

    def retain(self, networks: np.ndarray) -> None:
        sub, rows = select_networks(self.batch, networks)
        idx = self.backend.to_device(rows)
        theta = self.xp.ascontiguousarray(self.theta[idx])
        sc0 = self.xp.ascontiguousarray(self.sc[0][idx])
        self._load(sub)
        self._state(theta, sc0)

    def take(self, batch: Batch, rows: np.ndarray, cols: np.ndarray) -> KernelSimulation:
        r, c = self.backend.to_device(rows), self.backend.to_device(cols)  # [R', W]
        theta = self.xp.ascontiguousarray(self.theta[r, c])    # [R', W]
        sc0 = self.xp.ascontiguousarray(self.sc[0][r, c])      # [R', W, 2]
        new = copy.copy(self)  # backend and dt; every array is replaced below
        new._load(batch)
        new._state(theta, sc0)
        return new


class BackendEngine:
    """An engine over the :class:`~kcbatch.engines.backend.Backend` that
    ``make_backend`` builds.

    ``kernel`` (``config.KERNEL_CHOICES``) picks the strategy of
    :meth:`integrate`: ``global`` (:class:`KernelSimulation`'s launch sequence),
    ``shared`` (one ``integrate_shared`` launch, ``shared.py``), ``auto``
    (shared where a network fits once ``shared.AUTO_PICKS_SHARED`` is on,
    else global). :meth:`start` follows the same choice.

    Subclasses set ``name`` and ``make_backend``; the device-memory methods
    default to a host without an allocator of its own (gpu-sim)."""

    name = ""

    def __init__(self, fast_math: bool = False, kernel: KernelStrategy | Auto | str = AUTO):
        self.fast_math = fast_math
        self.kernel: KernelStrategy | Auto = AUTO if is_auto(kernel) else KernelStrategy(kernel)
        self.backend: Backend = self.make_backend(fast_math)

    @staticmethod
    def make_backend(fast_math: bool) -> Backend:
        raise NotImplementedError

    def shared_limit(self) -> int:
        """Dynamic shared memory one block may use on this device (bytes)."""
        return self.backend.shared_limit()

    def kernel_misfit(self, shape: BatchShape) -> str | None:
        """With ``kernel = shared``: why networks of ``shape`` cannot fit one block
        (nodes and expected edges, before any hub chunks), else None."""
        if self.kernel != KernelStrategy.SHARED:
            return None
        return misfit(shape.nodes, 2 * shape.edges, 0, shape.precision.itemsize,
                      self.shared_limit())

    def strategy(self, batch: Batch) -> KernelStrategy:
        """``shared`` or ``global``: what :meth:`integrate` runs ``batch`` with.
        ConfigError when ``kernel = shared`` and a network does not fit."""
        auto = is_auto(self.kernel)
        if self.kernel == KernelStrategy.GLOBAL or (auto and not AUTO_PICKS_SHARED):
            return KernelStrategy.GLOBAL
        why = batch_misfit(batch, self.shared_limit())
        if why is None:
            return KernelStrategy.SHARED
        if auto:
            return KernelStrategy.GLOBAL
        raise ConfigError("kernel", self.kernel, f"needs every network in one block's shared "
                          f"memory, but {why}; use kernel global or auto")

    def integrate(self, batch: Batch, spec: IntegrationSpec,
                  progress: StepProgress | None = None) -> np.ndarray:
        """Samples ``[B, nK, n_samples]`` float64 (host array).

        Global strategy: ``progress(steps)`` counts steps *launched*: it never
        waits for the device, so on a GPU it may run ahead of the kernels by the
        launch queue's depth. The shared strategy is one launch: ``progress``
        hears of all steps at once."""
        if self.strategy(batch) == KernelStrategy.GLOBAL:
            return run_protocol(self._start_global, batch, spec, progress)
        samples = integrate_shared(self.backend, batch, spec, limit=self.shared_limit())
        if progress is not None:
            progress(spec.n_steps)
        return samples

    def start(self, batch: Batch, dt: float) -> KernelSimulation | SharedSimulation:
        """The step-wise :class:`~kcbatch.engines.protocols.Simulation` of ``batch``
        with the strategy :meth:`strategy` picks, as :meth:`integrate` would run it."""
        if self.strategy(batch) == KernelStrategy.GLOBAL:
            return self._start_global(batch, dt)
        return SharedSimulation(self.backend, batch, dt, limit=self.shared_limit())

    def _start_global(self, batch: Batch, dt: float) -> KernelSimulation:
        return KernelSimulation(self.backend, batch, dt)

    def k_lanes(self, itemsize: int) -> int:
        return 1  # a thread per (row, K) system, or a block per (network, K)

    def batch_limit(self, shape: BatchShape) -> int:
        return systems_limit(shape)

    def auto_batch(self, shape: BatchShape) -> int:
        return HOST_AUTO_BATCH

    def predict_bytes(self, shape: BatchShape, batch: int) -> int:
        return predict_kernel_bytes(shape, batch)

    def describe(self) -> str:
        return self.name

    def release_memory(self) -> None:
        pass

    def memory_in_use(self) -> int | None:
        return None
