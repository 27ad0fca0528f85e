"""The shared-memory strategy's host side: what a batch needs, whether it fits, one launch.

``integrate_shared`` (kernels/kuramoto.cu) integrates one (network, K) system
per thread block with the network in dynamic shared memory. This module
builds its extra inputs from a :class:`~kcbatch.batch.Batch` (neighbour ids
local to the network as uint16, the chunks that split hub rows across the
block's threads), computes the shared bytes a block needs (the same layout
the kernel carves), and says in one line why a network does not fit.

The strategy covers :meth:`Engine.integrate` only: the whole protocol is one
launch, so there is no state between steps to continue from. The step-wise
:class:`~kcbatch.engines.base.Simulation` (``start``, used by converged
transients) always runs the global kernels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..batch import Batch
from ..config import IntegrationSpec
from .launch import SHARED_MAX_BLOCK, SHARED_ROWS, launch_integrate_shared

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


def chunk_bound(nnz: int, split: int) -> int:
    """At most this many chunks for a network of ``nnz`` edge entries: a row
    of degree d > split gives ceil(d / split) < 2 d / split chunks."""
    return 2 * nnz // split + 1


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


def integrate_shared(backend, batch: Batch, spec: IntegrationSpec, *, limit: int,
                     block: int | None = None, split: int = DEFAULT_SPLIT) -> np.ndarray:
    """Samples ``[B, nK, spec.n_samples]`` float64 (host array) from one
    ``integrate_shared`` launch of ``block`` threads per (network, K)
    (default: :func:`default_block`). Raises ValueError (the :func:`misfit`
    line) when a network of the batch does not fit ``limit`` bytes per block."""
    xp = backend.xp
    inp = prepare(batch, split)
    block = default_block(inp.max_nodes, str(batch.dtype)) if block is None else block
    why = misfit(inp.max_nodes, inp.max_nnz, inp.max_chunks, np.dtype(batch.dtype).itemsize,
                 limit, block)
    if why is not None:
        raise ValueError(why)
    need = shared_bytes(inp.max_nodes, inp.max_nnz, inp.max_chunks, block,
                        np.dtype(batch.dtype).itemsize)
    samples = xp.empty((batch.n_networks, batch.n_k, spec.n_samples), dtype=np.float64)
    dev = {name: xp.asarray(getattr(batch, name))
           for name in ("weight", "omega", "theta0", "node_offset", "couplings")}
    for name in ("row_edges", "local_indices", "edge_offset", "row_chunks", "chunk_edges",
                 "chunk_offset"):
        dev[name] = xp.asarray(getattr(inp, name))
    launch_integrate_shared(backend, str(batch.dtype), **dev, samples=samples,
                            n_transient=spec.n_transient, n_measure=spec.n_measure,
                            sample_every=spec.sample_every, dt=spec.dt, block=block,
                            shared_bytes=need)
    return samples.get() if hasattr(samples, "get") else samples
