"""GPU engine: the RK4 protocol as a sequence of RawKernel launches.

:class:`KernelEngine` holds the launch sequence once, generic over a backend
(CuPy on a GPU, or ``engine_sim.SimBackend`` running the same kernels on the
CPU). Per RK4 step it launches ``rk4_stage`` four times (double-buffered
(sin, cos) arrays) and, on sampling steps, ``sample_partial`` +
``sample_finalize``. Samples stay on the device; the batch syncs with the host
once, when its samples are copied back at the end.
"""
from __future__ import annotations

import numpy as np

from .batch import Batch
from .config import IntegrationSpec
from .kernel_specs import (SAMPLE_CHUNK_ROWS, launch_init_state, launch_rk4_stage,
                           launch_sample_finalize, launch_sample_partial)

_ITEM = {"float32": 4, "float64": 8}


def predict_device_bytes(*, nodes: int, m: int, k_num: int, precision: str, batch: int,
                         n_samples: int) -> int:
    """Device bytes one batch of ``batch`` BA networks needs (arrays allocated
    by :meth:`KernelEngine.integrate`, before allocator rounding)."""
    it = _ITEM[precision]
    rows = batch * nodes
    edges = m + (nodes - m - 1) * m
    nnz = batch * 2 * edges
    n_chunks = -(-nodes // SAMPLE_CHUNK_ROWS)
    state = rows * k_num * it * (2 + 2 * 2)  # theta, acc, sc[2] of pairs
    graph = (rows + 1) * 8 + nnz * 4 + rows * (4 + 3 * it) + (batch + 1) * 8
    small = batch * k_num * it + batch * n_chunks * k_num * 2 * 8 + batch * k_num * n_samples * 8
    return state + graph + small


class KernelEngine:
    """The kernels' launch sequence over one backend (``xp`` = cupy or numpy)."""

    def __init__(self, backend):
        self.backend = backend
        self.xp = backend.xp

    def integrate(self, batch: Batch, spec: IntegrationSpec) -> np.ndarray:
        """Samples ``[B, nK, n_samples]`` float64 (host array)."""
        xp, be = self.xp, self.backend
        real = str(batch.dtype)
        rows, n_k, b = batch.n_rows, batch.n_k, batch.n_networks
        dev = {name: xp.asarray(getattr(batch, name)) for name in (
            "indptr", "indices", "inv_deg", "omega", "theta0", "row_net", "node_offset",
            "couplings")}
        theta = xp.empty((rows, n_k), dtype=real)
        acc = xp.empty((rows, n_k), dtype=real)
        sc = (xp.empty((rows, n_k, 2), dtype=real), xp.empty((rows, n_k, 2), dtype=real))
        max_nodes = int(np.max(np.diff(batch.node_offset)))
        n_chunks = -(-max_nodes // SAMPLE_CHUNK_ROWS)
        partial = xp.empty((b, n_chunks, n_k, 2), dtype=np.float64)
        samples = xp.empty((b, n_k, spec.n_samples), dtype=np.float64)
        graph = (dev["indptr"], dev["indices"], dev["inv_deg"], dev["omega"], dev["row_net"],
                 dev["couplings"])
        launch_init_state(be, real, dev["theta0"], theta, sc[0])
        q = 0
        for step in range(spec.n_transient + spec.n_measure):
            for stage in range(4):
                launch_rk4_stage(be, real, *graph, sc[stage % 2], sc[(stage + 1) % 2],
                                 theta, acc, stage, spec.dt)
            s = step - spec.n_transient
            if s >= 0 and s % spec.sample_every == 0:
                launch_sample_partial(be, real, sc[0], dev["node_offset"], partial)
                launch_sample_finalize(be, partial, dev["node_offset"], samples, q)
                q += 1
        return samples.get() if hasattr(samples, "get") else samples


class BackendEngine:
    """An engine = :class:`KernelEngine` over the backend ``make_backend`` builds."""

    name = ""

    def __init__(self, precision: str = "float32", fast_math: bool = False):
        self.precision = precision
        self.fast_math = fast_math
        self._engine = KernelEngine(self.make_backend(fast_math))

    @staticmethod
    def make_backend(fast_math: bool):
        raise NotImplementedError

    def integrate(self, batch: Batch, spec: IntegrationSpec) -> np.ndarray:
        """Samples ``[B, nK, n_samples]`` float64 (host array)."""
        return self._engine.integrate(batch, spec)


class GpuEngine(BackendEngine):
    """Integrates batches on the current CUDA device with CuPy RawKernels."""

    name = "gpu"

    @staticmethod
    def make_backend(fast_math: bool):
        from ._cuda_backend import CupyBackend
        return CupyBackend(fast_math)
