"""What every engine is, and the kernels' launch sequence shared by gpu and gpu-sim.

An engine integrates a packed :class:`~kcbatch.batch.Batch` under the
protocol of an :class:`~kcbatch.config.IntegrationSpec` and returns the sampled
order parameter. Beside that, a study asks its engine how large a batch may be,
how much memory a batch needs, and for one line describing the device.
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np

from ..batch import Batch
from ..config import IntegrationSpec, StudyConfig
from ..graphs.models import expected_edges
from .launch import (MAX_SYSTEMS, SAMPLE_CHUNK_ROWS, launch_init_state, launch_rk4_stage,
                     launch_sample_finalize, launch_sample_partial)

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

        ``progress``, if given, is called after each RK4 step with the steps done."""

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


def systems_limit(cfg: StudyConfig) -> int:
    """Most networks per batch: the kernels index (row, K) systems and edge
    entries with 32-bit arithmetic, and every engine keeps to that so batches
    are the same everywhere."""
    per_net_edges = 2 * network_edges(cfg)
    return max(1, min(MAX_SYSTEMS // (cfg.nodes * cfg.k_num),
                      MAX_SYSTEMS // max(1, per_net_edges)))


def network_edges(cfg: StudyConfig) -> int:
    """Undirected edges expected in one network of ``cfg``'s model (exact for BA
    and WS): a function of the config alone, so batch caps and memory
    estimates are the same on every device."""
    return expected_edges(cfg.graph, cfg.nodes, cfg.m, cfg.gamma)


def predict_kernel_bytes(cfg: StudyConfig, batch: int) -> int:
    """Bytes :meth:`KernelEngine.integrate` allocates for ``batch`` networks of
    ``cfg`` (before allocator rounding)."""
    it = np.dtype(cfg.real_dtype).itemsize
    rows = batch * cfg.nodes
    nnz = batch * 2 * network_edges(cfg)
    n_k = cfg.k_num
    n_chunks = -(-cfg.nodes // SAMPLE_CHUNK_ROWS)
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
    host once, when its samples are copied back at the end.
    """

    def __init__(self, backend):
        self.backend = backend
        self.xp = backend.xp

    def integrate(self, batch: Batch, spec: IntegrationSpec,
                  progress: StepProgress | None = None) -> np.ndarray:
        """Samples ``[B, nK, n_samples]`` float64 (host array).

        ``progress(steps)`` counts steps *launched*: it never waits for the device,
        so on a GPU it may run ahead of the kernels by the launch queue's depth."""
        xp, be = self.xp, self.backend
        real = str(batch.dtype)
        rows, n_k, b = batch.n_rows, batch.n_k, batch.n_networks
        dev = {name: xp.asarray(getattr(batch, name)) for name in (
            "indptr", "indices", "weight", "omega", "theta0", "row_net", "node_offset",
            "couplings")}
        theta = xp.empty((rows, n_k), dtype=real)                                  # [R, nK]
        acc = xp.empty((rows, n_k), dtype=real)                                    # [R, nK]
        sc = (xp.empty((rows, n_k, 2), dtype=real), xp.empty((rows, n_k, 2), dtype=real))
        max_nodes = int(np.max(np.diff(batch.node_offset)))
        n_chunks = -(-max_nodes // SAMPLE_CHUNK_ROWS)
        partial = xp.empty((b, n_chunks, n_k, 2), dtype=np.float64)               # [B, nQ, nK, 2]
        samples = xp.empty((b, n_k, spec.n_samples), dtype=np.float64)           # [B, nK, nS]
        graph = (dev["indptr"], dev["indices"], dev["weight"], dev["omega"], dev["row_net"],
                 dev["couplings"])
        launch_init_state(be, real, dev["theta0"], theta, sc[0])
        for step, q in enumerate(spec.schedule(), start=1):
            for stage in range(4):
                launch_rk4_stage(be, real, *graph, sc[stage % 2], sc[(stage + 1) % 2],
                                 theta, acc, stage, spec.dt)
            if q is not None:
                launch_sample_partial(be, real, sc[0], dev["node_offset"], partial)
                launch_sample_finalize(be, partial, dev["node_offset"], samples, q)
            if progress is not None:
                progress(step)
        return samples.get() if hasattr(samples, "get") else samples


class BackendEngine:
    """An engine = :class:`KernelEngine` over the backend ``make_backend`` builds.

    Subclasses set ``name`` and ``make_backend``; the device-memory methods
    default to a host without an allocator of its own (gpu-sim)."""

    name = ""

    def __init__(self, fast_math: bool = False):
        self.fast_math = fast_math
        self._engine = KernelEngine(self.make_backend(fast_math))

    @staticmethod
    def make_backend(fast_math: bool):
        raise NotImplementedError

    def integrate(self, batch: Batch, spec: IntegrationSpec,
                  progress: StepProgress | None = None) -> np.ndarray:
        """Samples ``[B, nK, n_samples]`` float64 (host array)."""
        return self._engine.integrate(batch, spec, progress)

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
