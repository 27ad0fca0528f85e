"""The shared-memory strategy's host side: what a batch needs, whether it fits, one launch.

``integrate_shared`` (kernels/kuramoto.cu) integrates one (network, K) system
per thread block with the network in dynamic shared memory. This module
builds its extra inputs from a :class:`~kcbatch.inputs.batch.Batch` (neighbour ids
local to the network as uint16, the chunks that split hub rows across the
block's threads), computes the shared bytes a block needs (the same layout
the kernel carves), and says in one line why a network does not fit.

:meth:`Engine.integrate` is one launch for the whole protocol.
:class:`SharedSimulation` is the step-wise
:class:`~kcbatch.engines.protocols.Simulation` (``start``: converged transients,
refinement, adiabatic sweeps) over the same kernel: each ``advance`` or
``measure`` is one launch that starts from the phases the previous one left
in a ``[R, nK]`` array. The phases are the whole state between steps, so a
protocol cut into launches gives the numbers of one launch, bit for bit.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from kcbatch.engines.backend import Backend
from kcbatch.engines.launch import (
    SHARED_FROM_STATE,
    SHARED_MAX_BLOCK,
    SHARED_ROWS,
    SHARED_TO_STATE,
    launch_integrate_shared,
)
from kcbatch.engines.protocols import StepProgress
from kcbatch.engines.steps import check_steps, checked_couplings, select_networks
from kcbatch.inputs.batch import Batch
from kcbatch.protocol.config import IntegrationSpec

# Opt-in shared memory per block of an H100 (and H200): what gpu-sim assumes.
H100_SHARED_BYTES = 227 * 1024
# Rows of higher degree are summed in chunks of this many edges by all threads
# of the block (a BA hub of degree ~300 becomes ~10 chunks). A warp's width;
# bench/gpu_check measures the alternatives (a split past the largest degree
# turns splitting off).
DEFAULT_SPLIT = 32
# `--kernel auto` picks the shared strategy only once it has been measured
# faster than the global kernels on a device (bench/gpu_check); until then
# auto means global everywhere.
AUTO_PICKS_SHARED = False
# Neighbour ids are stored as uint16 within a network.
MAX_UINT16_NODES = 2**16


def _align16(x: int) -> int:
    return (x + 15) // 16 * 16


def shared_bytes(nodes: int, nnz: int, chunks: int, block: int, itemsize: int) -> int:
    """Dynamic shared bytes of one block (kuramoto.cu's layout): (sin, cos)
    pairs of ``nodes`` rows, ``block`` double2 reduction slots, ``chunks``
    partial-sum pairs, ``nnz`` uint16 neighbour ids; each part 16-byte aligned."""
    return (_align16(nodes * 2 * itemsize) + _align16(block * 16)
            + _align16(chunks * 2 * itemsize) + _align16(nnz * 2))


def default_block(nodes: int, real: str) -> int:
    """Threads per block for networks of at most ``nodes`` rows of precision
    ``real``: one per row up to the kernel's maximum, in whole warps."""
    return min(SHARED_MAX_BLOCK[real], max(32, -(-nodes // 32) * 32))


def misfit(nodes: int, nnz: int, chunks: int, itemsize: int, limit: int,
           block: int | None = None) -> str | None:
    """None when a network of ``nodes`` rows, ``nnz`` edge entries and ``chunks``
    hub chunks fits one block, else why not (one line)."""
    real = "float32" if itemsize == 4 else "float64"
    block = default_block(nodes, real) if block is None else block
    rows = SHARED_ROWS[real]
    most = min(MAX_UINT16_NODES, block * rows)
    if nodes > most:
        return (f"a network of {nodes} nodes has more rows than one block holds ({block} "
                f"threads x {rows} rows = {most})")
    need = shared_bytes(nodes, nnz, chunks, block, itemsize)
    if need > limit:
        return (f"a network of {nodes} nodes and {nnz // 2} edges needs {need} bytes of "
                f"shared memory per block, the device allows {limit}")
    return None


@dataclass(frozen=True)
class SharedInputs:
    """The kernel's inputs beyond the batch, all indices local to the network.
    Shapes: ``row_edges [R, 2]`` int32 (each row's edge range),
    ``local_indices [nnz]`` uint16 (neighbour rows), ``edge_offset [B+1]``
    int64 (each network's first edge entry), ``row_chunks [R, 2]`` int32
    (the row's chunk range; empty for rows their owner sums), ``chunk_edges
    [C, 2]`` int32 (edge range of each chunk), ``chunk_offset [B+1]`` int64
    (each network's first chunk)."""

    row_edges: np.ndarray
    local_indices: np.ndarray
    edge_offset: np.ndarray
    row_chunks: np.ndarray
    chunk_edges: np.ndarray
    chunk_offset: np.ndarray
    split: int
    max_nodes: int
    max_nnz: int
    max_chunks: int


def prepare(batch: Batch, split: int = DEFAULT_SPLIT) -> SharedInputs:
    """The shared kernel's inputs for ``batch``, hub rows (degree > ``split``)
    cut into chunks of at most ``split`` edges."""
    if split < 1:
        raise ValueError(f"invalid split={split!r}: must be >= 1")
    off, indptr = batch.node_offset, batch.indptr
    sizes = np.diff(off)
    first_edge = indptr[off[:-1]]                              # [B]
    net_nnz = indptr[off[1:]] - first_edge                     # [B]
    local = (batch.indices.astype(np.int64)
             - np.repeat(off[:-1], net_nnz)).astype(np.uint16)
    deg = np.diff(indptr)                                      # [R]
    n_ch = np.where(deg > split, -(-deg // split), 0)          # chunks per row
    row_first_edge = np.repeat(first_edge, sizes)              # [R]
    ends = np.concatenate(([0], np.cumsum(n_ch)))               # [R+1]
    chunk_offset = ends[off].astype(np.int64)                  # [B+1]
    starts = ends[:-1]                                         # global first chunk of each row
    first_chunk = starts - np.repeat(chunk_offset[:-1], sizes)
    row_chunks = np.stack([first_chunk, first_chunk + n_ch], axis=1)
    row_edges = np.stack([indptr[:-1] - row_first_edge, indptr[1:] - row_first_edge], axis=1)
    rows = np.repeat(np.arange(batch.n_rows), n_ch)            # [C]
    q = np.arange(rows.size) - np.repeat(starts, n_ch)         # chunk number within its row
    lo = indptr[rows] - row_first_edge[rows] + q * split
    hi = np.minimum(lo + split, indptr[rows + 1] - row_first_edge[rows])
    return SharedInputs(
        row_edges=np.ascontiguousarray(row_edges, dtype=np.int32), local_indices=local,
        edge_offset=np.ascontiguousarray(indptr[off], dtype=np.int64),
        row_chunks=np.ascontiguousarray(row_chunks, dtype=np.int32),
        chunk_edges=np.ascontiguousarray(np.stack([lo, hi], axis=1), dtype=np.int32),
        chunk_offset=chunk_offset, split=int(split),
        max_nodes=int(sizes.max()) if sizes.size else 0,
        max_nnz=int(net_nnz.max()) if net_nnz.size else 0,
        max_chunks=int(np.diff(chunk_offset).max()) if sizes.size else 0)


def batch_misfit(batch: Batch, limit: int, split: int = DEFAULT_SPLIT,
                 block: int | None = None) -> str | None:
    """None when every network of ``batch`` fits one block of ``limit`` shared
    bytes, else why not (:func:`misfit`'s line for the largest network)."""
    inp = prepare(batch, split)
    return misfit(inp.max_nodes, inp.max_nnz, inp.max_chunks, np.dtype(batch.dtype).itemsize,
                  limit, block)


class _Launcher:
    """A batch's device arrays for ``integrate_shared`` and its launch geometry.
    ValueError (the :func:`misfit` line) when a network does not fit ``limit``."""

    _BATCH = ("weight", "omega", "theta0", "node_offset", "couplings")
    _INPUTS = ("row_edges", "local_indices", "edge_offset", "row_chunks", "chunk_edges",
               "chunk_offset")

    def __init__(self, backend: Backend, batch: Batch, limit: int, block: int | None,
                 split: int):
        self.backend, self.xp = backend, backend.xp
        inp = prepare(batch, split)
        itemsize = np.dtype(batch.dtype).itemsize
        self.block = default_block(inp.max_nodes, str(batch.dtype)) if block is None else block
        why = misfit(inp.max_nodes, inp.max_nnz, inp.max_chunks, itemsize, limit, self.block)
        if why is not None:
            raise ValueError(why)
        self.shared_bytes = shared_bytes(inp.max_nodes, inp.max_nnz, inp.max_chunks,
                                         self.block, itemsize)
        self.real = str(batch.dtype)
        self.dev = {name: backend.to_device(getattr(batch, name)) for name in self._BATCH}
        self.dev.update({name: backend.to_device(getattr(inp, name)) for name in self._INPUTS})

    def set_couplings(self, couplings: np.ndarray) -> None:
        self.dev["couplings"] = self.backend.to_device(couplings)

    def __call__(self, theta, mode: int, n_transient: int, n_measure: int, sample_every: int,
                 dt: float):
        """Samples ``[B, nK, ceil(n_measure / sample_every)]`` float64 (device array)
        of one launch; ``theta [R, nK]`` per ``mode``."""
        b, n_k = self.dev["couplings"].shape
        samples = self.xp.empty((b, n_k, -(-n_measure // sample_every)), dtype=np.float64)
        launch_integrate_shared(self.backend, self.real, **self.dev, samples=samples,
                                theta=theta, mode=mode, n_transient=n_transient,
                                n_measure=n_measure, sample_every=sample_every, dt=dt,
                                block=self.block, shared_bytes=self.shared_bytes)
        return samples


def integrate_shared(backend: Backend, batch: Batch, spec: IntegrationSpec, *, limit: int,
                     block: int | None = None, split: int = DEFAULT_SPLIT) -> np.ndarray:
    """Samples ``[B, nK, spec.n_samples]`` float64 (host array) from one
    ``integrate_shared`` launch of ``block`` threads per (network, K)
    (default: :func:`default_block`). Raises ValueError (the :func:`misfit`
    line) when a network of the batch does not fit ``limit`` bytes per block."""
    launch = _Launcher(backend, batch, limit, block, split)
    unused = backend.xp.empty((batch.n_rows, batch.n_k), dtype=batch.dtype)  # [R, nK], mode 0
    return backend.to_host(launch(unused, 0, spec.n_transient, spec.n_measure,
                                  spec.sample_every, spec.dt))


# Steps per launch of SharedSimulation.advance/measure: long enough that the
# launch overhead vanishes, short enough that progress moves (~10^2 steps take
# well under a second on a GPU at the default size).
STEPS_PER_LAUNCH = 500


class SharedSimulation:
    """:class:`~kcbatch.engines.protocols.Simulation` over ``integrate_shared``.

    The phases ``theta [R, nK]`` stay on the device between launches; before
    the first step they are ``theta0`` (mode without ``SHARED_FROM_STATE``).
    Every launch re-reads the couplings, so :meth:`set_couplings` takes effect
    from the next step on, as with the global kernels."""

    def __init__(self, backend: Backend, batch: Batch, dt: float, *, limit: int,
                 block: int | None = None, split: int = DEFAULT_SPLIT):
        self.backend, self.xp = backend, backend.xp
        self.dt = dt
        self.steps = 0
        self._limit, self._block, self._split = limit, block, split
        self._load(batch)
        self.theta = self.xp.empty((batch.n_rows, batch.n_k), dtype=batch.dtype)  # [R, nK]

    def _load(self, batch: Batch) -> None:
        self.batch = batch
        self._launch = _Launcher(self.backend, batch, self._limit, self._block, self._split)

    def _run(self, n_transient: int, n_measure: int, sample_every: int):
        mode = SHARED_TO_STATE | (SHARED_FROM_STATE if self.steps else 0)
        samples = self._launch(self.theta, mode, n_transient, n_measure, sample_every, self.dt)
        self.steps += n_transient + n_measure
        return samples

    def advance(self, n_steps: int, progress: StepProgress | None = None) -> None:
        check_steps(n_steps)
        left = n_steps
        while left:
            n = min(left, STEPS_PER_LAUNCH)
            self._run(n, 0, 1)
            left -= n
            if progress is not None:
                progress(self.steps)

    def measure(self, n_steps: int, sample_every: int,
                progress: StepProgress | None = None) -> np.ndarray:
        """``[B, nK, ceil(n_steps / sample_every)]`` float64 host array; r sampled
        after measurement steps 0, sample_every, ... Launches of whole multiples
        of ``sample_every`` steps keep the samples where one launch puts them."""
        check_steps(n_steps, sample_every)
        if n_steps == 0:
            b, n_k = self.batch.couplings.shape
            return np.empty((b, n_k, 0), dtype=np.float64)
        per = max(1, STEPS_PER_LAUNCH // sample_every) * sample_every
        parts, done = [], 0
        while done < n_steps:
            n = min(per, n_steps - done)
            parts.append(self._run(0, n, sample_every))
            done += n
            if progress is not None:
                progress(self.steps)
        return self.backend.to_host(self.xp.concatenate(parts, axis=2))

    def set_couplings(self, couplings: np.ndarray) -> None:
        new = checked_couplings(self.batch, couplings)
        self.batch = dataclasses.replace(self.batch, couplings=new)
        self._launch.set_couplings(new)

    def retain(self, networks: np.ndarray) -> None:
        # self.batch carries the couplings in use (set_couplings replaces them there)
        sub, rows = select_networks(self.batch, networks)
        theta = self.xp.ascontiguousarray(self.theta[self.backend.to_device(rows)])
        self._load(sub)
        self.theta = theta

    def take(self, batch: Batch, rows: np.ndarray, cols: np.ndarray) -> SharedSimulation:
        # before the first step theta is not written yet: the launches start
        # from the batch's theta0 (the same for every K of a row)
        theta = self.xp.ascontiguousarray(
            self.theta[self.backend.to_device(rows), self.backend.to_device(cols)])  # [R', W]
        new = copy.copy(self)  # backend, dt and launch settings; arrays replaced below
        new._load(batch)
        new.theta = theta
        return new
