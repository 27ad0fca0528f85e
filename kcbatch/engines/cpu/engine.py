"""CPU engine: the RK4 protocol over a packed batch, in numba.

This is the CPU twin of ``kernels/kuramoto.cu``, step for step, and runs the
same step loop (:class:`~kcbatch.engines.stepping.SteppingSimulation`). It imports
nothing of the kernels' launch code. Each RK4 stage is one parallel
pass, :func:`kcbatch.engines.cpu.stage.rk4_stage` (mirrors the ``rk4_stage``
kernel; its module docstring gives the state layout and what makes it fast).

Trig dominates the CPU cost: numba's ``np.sin`` is scalar libm (~10
ns/element) and numpy's ufuncs need extra passes over memory, so the stage
uses :func:`kcbatch.engines.cpu.trig.sincos`, plain arithmetic that vectorises
over K. Rows are independent and each sums its neighbours in CSR order, so a
network's results do not depend on the batch it is in, nor on the threads.

Sampling mirrors ``sample_partial`` + ``sample_finalize``: per (network, K),
``r = |sum_j exp(i theta_j)| / N_b`` accumulated in float64.
"""
from __future__ import annotations

import numba
import numpy as np

from kcbatch.engines.cpu.stage import rk4_stage, rk4_stage_one_k, row_chunks
from kcbatch.engines.cpu.state import HostSimulation, order_parameter, start_phases
from kcbatch.engines.protocols import StepProgress
from kcbatch.engines.sizing import HOST_AUTO_BATCH, BatchShape, systems_limit
from kcbatch.engines.stepping import run_protocol
from kcbatch.inputs.batch import Batch
from kcbatch.protocol.config import IntegrationSpec


class CpuEngine:
    """Integrates a :class:`Batch` on the CPU with all cores (numba threads).

    Batches of more than one K per network run the native pass
    (:mod:`kcbatch.engines.cpu.native`) when it can be built here, unless
    ``native=False``; one-K batches and hosts without a C++ compiler run the
    numba pass. Both give the same numbers bit for bit. It has no fast-math
    mode: its trig is one implementation (``trig.py``)."""

    name = "cpu"

    def __init__(self, native: bool = True):
        self.native = native

    def native_reason(self) -> str | None:
        """None when the native pass is used for batches of several K, else why not."""
        if not self.native:
            return "not asked for"
        from kcbatch.engines.cpu.native import unavailable_reason
        return unavailable_reason()

    def start(self, batch: Batch, dt: float) -> HostSimulation:
        if batch.n_k > 1 and self.native_reason() is None:
            from kcbatch.engines.cpu.native import NativeSimulation
            return NativeSimulation(batch, dt, numba.get_num_threads())
        return CpuSimulation(batch, dt)

    def integrate(self, batch: Batch, spec: IntegrationSpec,
                  progress: StepProgress | None = None) -> np.ndarray:
        """Run the protocol; returns samples ``[B, nK, n_samples]`` float64.

        ``progress``, if given, is called with the steps done after each RK4
        step (numba pass) or each call of ~0.15 s of steps (native pass)."""
        return run_protocol(self.start, batch, spec, progress)

    def k_lanes(self, itemsize: int) -> int:
        # both passes compute K in 32-byte vectors (the native pass pads each
        # block of K to whole vectors)
        from kcbatch.engines.cpu.native import VECTOR_BYTES
        return VECTOR_BYTES // itemsize

    def batch_limit(self, shape: BatchShape) -> int:
        return systems_limit(shape)

    def auto_batch(self, shape: BatchShape) -> int:
        return HOST_AUTO_BATCH

    def predict_bytes(self, shape: BatchShape, batch: int) -> int:
        """Host bytes of :meth:`integrate`'s arrays and the packed batch."""
        it = shape.precision.itemsize
        rows = batch * shape.nodes
        n_k = shape.n_k
        # theta, acc, X[2] (sin | cos) with K padded to the native pass's blocks
        # (at least what the numba pass needs), the (sin, cos) copies sampling makes,
        # and the native pass's snapshots of X for a measurement call's samples
        from kcbatch.engines.cpu.native import SNAPSHOT_BYTES, planned_k
        lanes = planned_k(n_k, numba.get_num_threads(), it, batch)
        snapshots = min(SNAPSHOT_BYTES, shape.n_samples * rows * lanes * 2 * it)
        state = rows * (lanes * 6 + n_k * 2) * it + snapshots
        graph = shape.packed_bytes(batch) + (batch + 1) * 8  # and node_offset
        return state + graph + batch * n_k * (it + shape.n_samples * 8)

    def describe(self) -> str:
        threads = numba.get_num_threads()
        reason = self.native_reason()
        if reason is None:
            from kcbatch.engines.cpu.native import CXX_FLAGS
            from kcbatch.engines.cxx import compiler
            return (f"cpu: native pass ({compiler()} {' '.join(CXX_FLAGS[:2])}), {threads} "
                    f"threads; numba for one K per network")
        return f"cpu: numba, {threads} threads (native pass: {reason})"

    def release_memory(self) -> None:
        pass

    def memory_in_use(self) -> int | None:
        return None


class CpuSimulation(HostSimulation):
    """:class:`~kcbatch.engines.protocols.Simulation` on the CPU: the state of
    :meth:`CpuEngine.integrate`, continued in pieces."""

    def __init__(self, batch: Batch, dt: float):
        self.dt = batch.dtype.type(dt)
        self.steps = 0
        self._load(batch)
        self._state(*start_phases(batch))

    def _load(self, batch: Batch) -> None:
        self.batch = batch
        self.graph = (batch.indptr, batch.indices, batch.weight, batch.omega, batch.row_net)
        # [B, nK], read by every stage: replacing it between steps changes the
        # couplings from the next step on (no padding or copy to keep in step).
        self.couplings = batch.couplings
        self.chunks = row_chunks(batch.indptr)

    def _state(self, theta: np.ndarray, S0: np.ndarray, C0: np.ndarray) -> None:
        # Double-buffered (sin | cos) [R, 2 nK]: stage s reads buffer s % 2 and
        # writes the other; the second buffer and acc are scratch rewritten every step.
        n_k = theta.shape[1]
        X0 = np.empty((theta.shape[0], 2 * n_k), dtype=theta.dtype)
        X0[:, :n_k], X0[:, n_k:] = S0, C0
        self.theta = theta
        self.X = (X0, np.empty_like(X0))
        self.acc = np.empty_like(theta)
        # rk4_stage_one_k's scratch rows [R] x 3 (neighbour sums, next point), made
        # once here rather than every step
        self.scratch = tuple(np.empty(theta.shape[0], theta.dtype) for _ in range(3)) \
            if n_k == 1 else ()

    def phases(self) -> np.ndarray:
        """The current phases ``[R, nK]`` (the state itself, not a copy)."""
        return self.theta

    @property
    def S(self) -> np.ndarray:
        """sin of the current phases, ``[R, nK]`` (a view)."""
        return self.X[0][:, :self.batch.n_k]

    @property
    def C(self) -> np.ndarray:
        """cos of the current phases, ``[R, nK]`` (a view)."""
        return self.X[0][:, self.batch.n_k:]

    def _step(self) -> None:
        X = self.X
        if self.scratch:  # one K per network (adiabatic sweeps): ~3x faster, same numbers
            for stage in range(4):
                rk4_stage_one_k(*self.graph, self.couplings, self.chunks, X[stage % 2],
                                X[1 - stage % 2], self.theta, self.acc, stage, self.dt,
                                *self.scratch)
        else:
            for stage in range(4):
                rk4_stage(*self.graph, self.couplings, self.chunks, X[stage % 2],
                          X[1 - stage % 2], self.theta, self.acc, stage, self.dt)
        self.steps += 1

    def _new_samples(self, n_samples: int) -> np.ndarray:
        return np.empty((self.batch.n_networks, self.batch.n_k, n_samples),
                        dtype=np.float64)  # [B, nK, nS]

    def _sample(self, samples: np.ndarray, index: int) -> None:
        samples[:, :, index] = order_parameter(self.S, self.C, self.batch.node_offset)
