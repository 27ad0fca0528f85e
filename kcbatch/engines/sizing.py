"""What an engine's batch-size and memory answers read, and the batch cap every engine keeps.

A :class:`BatchShape` describes the networks a batch will hold (their size,
couplings, samples and precision) before any is made: the batch planner
(``kcbatch.run.batching``) builds it from a study and asks an engine
``batch_limit(shape)``, ``auto_batch(shape)`` and ``predict_bytes(shape, batch)``.
Engines never see a study's config.
"""
from __future__ import annotations

from dataclasses import dataclass

from kcbatch.protocol.choices import Precision

# The kernels index (row, K) systems and edge entries with 32-bit arithmetic
# (rk4_stage, init_state); every engine keeps to that cap so that batches are
# the same on every device.
MAX_SYSTEMS = 2**31 - 1
# ``--batch auto`` on engines without device memory to fit (cpu, gpu-sim).
HOST_AUTO_BATCH = 8


@dataclass(frozen=True)
class BatchShape:
    """The networks of a batch, before it is made.

    ``nodes``: nodes of the largest network; ``edges``: undirected edges of
    one network (the model's expected count, or the most of one file);
    ``n_k``: coupling columns per network (1 for an adiabatic sweep's
    networks); ``n_samples``: r samples per (network, K) system;
    ``precision``: the real type of the state."""

    nodes: int
    edges: int
    n_k: int
    n_samples: int
    precision: Precision

    def packed_bytes(self, networks: int) -> int:
        """Bytes of a packed :class:`~kcbatch.inputs.batch.Batch` of ``networks``
        networks: ``indptr [R+1]`` int64, ``indices [nnz]`` int32, then per row
        ``weight``, ``omega``, ``theta0`` (real) and ``row_net`` (int32)."""
        rows = networks * self.nodes
        it = self.precision.itemsize
        return 8 * (rows + 1) + 4 * 2 * self.edges * networks + rows * (4 + 3 * it)


def systems_limit(shape: BatchShape) -> int:
    """Most networks of ``shape`` per batch under :data:`MAX_SYSTEMS`, for the
    (row, K) systems and for the edge entries."""
    per_net_edges = 2 * shape.edges
    return max(1, min(MAX_SYSTEMS // (shape.nodes * shape.n_k),
                      MAX_SYSTEMS // max(1, per_net_edges)))
