"""What every engine is, and the kernels' launch sequence shared by gpu and gpu-sim.

An engine integrates a packed :class:`~kcbatch.inputs.batch.Batch` under the
protocol of an :class:`~kcbatch.protocol.config.IntegrationSpec` and returns the sampled
order parameter. Beside that, a study asks its engine how large a batch may be,
how much memory a batch needs, and for one line describing the device.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from kcbatch.engines.launch import (
    MAX_SYSTEMS,
    SAMPLE_CHUNK_ROWS,
    launch_init_state,
    launch_rk4_stage,
    launch_sample_finalize,
    launch_sample_partial,
)
from kcbatch.engines.shared import (
    AUTO_PICKS_SHARED,
    SharedSimulation,
    batch_misfit,
    integrate_shared,
    misfit,
)
from kcbatch.engines.steps import check_steps, checked_couplings, select_networks
from kcbatch.inputs.batch import Batch
from kcbatch.inputs.graph_source import network_size
from kcbatch.protocol.config import ConfigError, IntegrationSpec, StudyConfig

# ``--batch auto`` on engines without device memory to fit (cpu, gpu-sim).
HOST_AUTO_BATCH = 8


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

    def batch_limit(self, cfg: StudyConfig) -> int:
        """The largest batch (networks) this engine can take for ``cfg``."""

    def auto_batch(self, cfg: StudyConfig) -> int:
        """What ``--batch auto`` picks for ``cfg`` (before capping to the runs left)."""

    def predict_bytes(self, cfg: StudyConfig, batch: int) -> int:
        """Bytes of the arrays one batch of ``batch`` networks of ``cfg`` allocates."""

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

    def set_couplings(self, couplings: np.ndarray) -> None:
        """Replace the couplings ``[B, nK]`` of every (network, K) system,
        keeping the phases: the next steps integrate at the new K (the
        adiabatic sweep, kcbatch/analysis/sweep.py)."""


def systems_limit(cfg: StudyConfig) -> int:
    """Most networks per batch: the kernels index (row, K) systems and edge
    entries with 32-bit arithmetic, and every engine keeps to that so batches
    are the same everywhere."""
    per_net_edges = 2 * network_edges(cfg)
    return max(1, min(MAX_SYSTEMS // (network_nodes(cfg) * cfg.k_num),
                      MAX_SYSTEMS // max(1, per_net_edges)))


def network_edges(cfg: StudyConfig) -> int:
    """Undirected edges expected in one network of ``cfg``'s model (exact for BA
    and WS), or the most of one file with ``graphs``: a function of the config
    (and its files) alone, so batch caps and memory estimates are the same on
    every device."""
    return network_size(cfg)[1]


def network_nodes(cfg: StudyConfig) -> int:
    """Nodes of ``cfg``'s networks (the largest file's with ``graphs``)."""
    return network_size(cfg)[0]


def predict_kernel_bytes(cfg: StudyConfig, batch: int) -> int:
    """Bytes :meth:`KernelEngine.integrate` allocates for ``batch`` networks of
    ``cfg`` (before allocator rounding)."""
    it = np.dtype(cfg.real_dtype).itemsize
    rows = batch * network_nodes(cfg)
    nnz = batch * 2 * network_edges(cfg)
    n_k = cfg.k_num
    n_chunks = -(-network_nodes(cfg) // SAMPLE_CHUNK_ROWS)
    state = rows * n_k * it * (2 + 2 * 2)  # theta, acc, sc[2] of pairs
    graph = (rows + 1) * 8 + nnz * 4 + rows * (4 + 3 * it) + (batch + 1) * 8
    small = (batch * n_k * it + batch * n_chunks * n_k * 2 * 8
             + batch * n_k * cfg.spec.n_samples * 8)
    return state + graph + small


class KernelEngine:
    """The kernels' launch sequence over one backend (``xp`` = cupy or numpy).

    Per RK4 step it launches ``rk4_stage`` four times (double-buffered
    (sin, cos) arrays) and, on sampling steps, ``sample_partial`` +
    ``sample_finalize``. Samples stay on the device; the batch syncs with the
    host once per measurement, when its samples are copied back.
    """

    def __init__(self, backend):
        self.backend = backend
        self.xp = backend.xp

    def start(self, batch: Batch, dt: float) -> KernelSimulation:
        return KernelSimulation(self.backend, batch, dt)

    def integrate(self, batch: Batch, spec: IntegrationSpec,
                  progress: StepProgress | None = None) -> np.ndarray:
        """Samples ``[B, nK, n_samples]`` float64 (host array).

        ``progress(steps)`` counts steps *launched*: it never waits for the device,
        so on a GPU it may run ahead of the kernels by the launch queue's depth."""
        sim = self.start(batch, spec.dt)
        sim.advance(spec.n_transient, progress)
        return sim.measure(spec.n_measure, spec.sample_every, progress)


class SteppingSimulation:
    """What every Simulation shares: ``advance`` as repeated ``_step`` (one RK4
    step of every system, ``steps`` += 1), which each engine implements."""

    steps: int

    def _step(self) -> None:
        raise NotImplementedError

    def advance(self, n_steps: int, progress: StepProgress | None = None) -> None:
        check_steps(n_steps)
        for _ in range(n_steps):
            self._step()
            if progress is not None:
                progress(self.steps)


class KernelSimulation(SteppingSimulation):
    """:class:`Simulation` over the kernels: ``init_state`` at creation, then
    four ``rk4_stage`` launches per step; ``measure`` adds the sampling launches."""

    _GRAPH = ("indptr", "indices", "weight", "omega", "row_net", "couplings")

    def __init__(self, backend, batch: Batch, dt: float):
        self.backend, self.xp = backend, backend.xp
        self.real = str(batch.dtype)
        self.dt = dt
        self.steps = 0
        self._load(batch)
        theta = self.xp.empty((batch.n_rows, batch.n_k), dtype=self.real)        # [R, nK]
        sc0 = self.xp.empty((batch.n_rows, batch.n_k, 2), dtype=self.real)       # [R, nK, 2]
        launch_init_state(backend, self.real, self.xp.asarray(batch.theta0), theta, sc0)
        self._state(theta, sc0)

    def _load(self, batch: Batch) -> None:
        self.batch = batch
        self.dev = {name: self.xp.asarray(getattr(batch, name))
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

    def measure(self, n_steps: int, sample_every: int,
                progress: StepProgress | None = None) -> np.ndarray:
        check_steps(n_steps, sample_every)
        xp, b, n_k = self.xp, self.batch.n_networks, self.batch.n_k
        max_nodes = int(np.max(np.diff(self.batch.node_offset)))
        n_chunks = -(-max_nodes // SAMPLE_CHUNK_ROWS)
        partial = xp.empty((b, n_chunks, n_k, 2), dtype=np.float64)              # [B, nQ, nK, 2]
        samples = xp.empty((b, n_k, -(-n_steps // sample_every)), dtype=np.float64)  # [B, nK, nS]
        for s in range(n_steps):
            self._step()
            if s % sample_every == 0:
                launch_sample_partial(self.backend, self.real, self.sc[0],
                                      self.dev["node_offset"], partial)
                launch_sample_finalize(self.backend, partial, self.dev["node_offset"],
                                       samples, s // sample_every)
            if progress is not None:
                progress(self.steps)
        return samples.get() if hasattr(samples, "get") else samples

    def set_couplings(self, couplings: np.ndarray) -> None:
        new = checked_couplings(self.batch, couplings)
        # Only the [B, nK] couplings travel to the device; the graph and the
        # phases stay where they are.
        self.batch = dataclasses.replace(self.batch, couplings=new)
        self.dev["couplings"] = self.xp.asarray(new)
        self.graph = tuple(self.dev[name] for name in self._GRAPH)

    def retain(self, networks: np.ndarray) -> None:
        sub, rows = select_networks(self.batch, networks)
        idx = self.xp.asarray(rows)
        theta = self.xp.ascontiguousarray(self.theta[idx])
        sc0 = self.xp.ascontiguousarray(self.sc[0][idx])
        self._load(sub)
        self._state(theta, sc0)


class BackendEngine:
    """An engine = :class:`KernelEngine` over the backend ``make_backend`` builds.

    ``kernel`` (``config.KERNEL_CHOICES``) picks the strategy of
    :meth:`integrate`: ``global`` (the :class:`KernelEngine` launch sequence),
    ``shared`` (one ``integrate_shared`` launch, ``shared.py``), ``auto``
    (shared where a network fits once ``shared.AUTO_PICKS_SHARED`` is on,
    else global). :meth:`start` follows the same choice.

    Subclasses set ``name`` and ``make_backend``; the device-memory methods
    default to a host without an allocator of its own (gpu-sim)."""

    name = ""

    def __init__(self, fast_math: bool = False, kernel: str = "auto"):
        self.fast_math = fast_math
        self.kernel = kernel
        self._engine = KernelEngine(self.make_backend(fast_math))

    @staticmethod
    def make_backend(fast_math: bool):
        raise NotImplementedError

    def shared_limit(self) -> int:
        """Dynamic shared memory one block may use on this device (bytes)."""
        return self._engine.backend.shared_limit()

    def kernel_misfit(self, cfg: StudyConfig) -> str | None:
        """With ``kernel = shared``: why ``cfg``'s networks cannot fit one block
        (nodes and expected edges, before any hub chunks), else None."""
        if self.kernel != "shared":
            return None
        return misfit(network_nodes(cfg), 2 * network_edges(cfg), 0,
                      np.dtype(cfg.real_dtype).itemsize, self.shared_limit())

    def strategy(self, batch: Batch) -> str:
        """``shared`` or ``global``: what :meth:`integrate` runs ``batch`` with.
        ConfigError when ``kernel = shared`` and a network does not fit."""
        if self.kernel == "global" or (self.kernel == "auto" and not AUTO_PICKS_SHARED):
            return "global"
        why = batch_misfit(batch, self.shared_limit())
        if why is None:
            return "shared"
        if self.kernel == "auto":
            return "global"
        raise ConfigError("kernel", self.kernel, f"needs every network in one block's shared "
                          f"memory, but {why}; use kernel global or auto")

    def integrate(self, batch: Batch, spec: IntegrationSpec,
                  progress: StepProgress | None = None) -> np.ndarray:
        """Samples ``[B, nK, n_samples]`` float64 (host array).

        The shared strategy is one launch: ``progress`` hears of all steps at once."""
        if self.strategy(batch) == "global":
            return self._engine.integrate(batch, spec, progress)
        samples = integrate_shared(self._engine.backend, batch, spec, limit=self.shared_limit())
        if progress is not None:
            progress(spec.n_steps)
        return samples

    def start(self, batch: Batch, dt: float) -> KernelSimulation | SharedSimulation:
        """The step-wise :class:`Simulation` of ``batch`` with the strategy
        :meth:`strategy` picks, as :meth:`integrate` would run it."""
        if self.strategy(batch) == "global":
            return self._engine.start(batch, dt)
        return SharedSimulation(self._engine.backend, batch, dt, limit=self.shared_limit())

    def batch_limit(self, cfg: StudyConfig) -> int:
        return systems_limit(cfg)

    def auto_batch(self, cfg: StudyConfig) -> int:
        return HOST_AUTO_BATCH

    def predict_bytes(self, cfg: StudyConfig, batch: int) -> int:
        return predict_kernel_bytes(cfg, batch)

    def describe(self) -> str:
        return self.name

    def release_memory(self) -> None:
        pass

    def memory_in_use(self) -> int | None:
        return None
