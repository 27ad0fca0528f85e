"""What every Simulation checks and does to a batch's state, engine-independent.

``check_steps`` validates step counts, ``select_networks`` cuts a sub-batch
(and says which rows of the state to keep), ``select_systems`` does the same
for chosen (network, K) systems (and says which rows and columns),
``checked_couplings`` validates a new ``[B, nK]`` coupling array: for the
CPU engine (``cpu/``), the kernels' global strategy (``kernel_engine.py``)
and the shared one (``shared.py``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kcbatch.inputs.batch import Batch


def check_steps(n_steps: int, sample_every: int = 1) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"invalid n_steps={n_steps!r}: must be an integer >= 0")
    if isinstance(sample_every, bool) or not isinstance(sample_every, (int, np.integer)) \
            or sample_every < 1:
        raise ValueError(f"invalid sample_every={sample_every!r}: must be an integer >= 1")


def select_networks(batch: Batch, networks: np.ndarray) -> tuple[Batch, np.ndarray]:
    """The sub-batch of ``networks`` and its rows in ``batch``.

    ``networks`` [M] int: indices into ``batch``, in any order, repeats allowed
    (each occurrence is a network of its own in the sub-batch). Returns ``(sub,
    rows)``: ``sub`` is laid out as :func:`~kcbatch.inputs.batch.pack` would lay
    out those networks alone, in order; ``rows`` ``[R']`` int64 are their rows
    in ``batch`` (to gather state ``[R, nK]`` with)."""
    nets = np.asarray(networks)
    if nets.ndim != 1 or nets.size == 0 or not np.issubdtype(nets.dtype, np.integer) \
            or nets.min() < 0 or nets.max() >= batch.n_networks:
        raise ValueError(f"invalid networks={networks!r}: need a non-empty 1-D array of "
                         f"indices in [0, {batch.n_networks})")
    nets = nets.astype(np.int64)
    off = batch.node_offset
    sizes = off[nets + 1] - off[nets]
    node_offset = np.zeros(nets.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=node_offset[1:])
    rows = np.concatenate([np.arange(off[b], off[b + 1]) for b in nets])
    # each kept row moves by the same amount as its network's first row
    shift = np.repeat(off[nets] - node_offset[:-1], sizes)
    deg = np.diff(batch.indptr)[rows]
    indptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(deg, out=indptr[1:])
    # edge entries of the kept rows, in row order (each network's are contiguous)
    spans = [np.arange(batch.indptr[off[b]], batch.indptr[off[b + 1]]) for b in nets]
    edges = np.concatenate(spans)
    indices = (batch.indices[edges].astype(np.int64)
               - np.repeat(shift, deg)).astype(np.int32)
    sub = Batch(indptr=indptr, indices=indices, weight=batch.weight[rows],
                omega=batch.omega[rows], theta0=batch.theta0[rows],
                row_net=np.repeat(np.arange(nets.size, dtype=np.int32), sizes),
                node_offset=node_offset,
                couplings=np.ascontiguousarray(batch.couplings[nets]))
    return sub, rows


def select_systems(batch: Batch, networks: np.ndarray, columns: np.ndarray,
                   couplings: np.ndarray) -> tuple[Batch, np.ndarray, np.ndarray]:
    """A batch of chosen (network, K) systems, and where their state is.

    networks [M] int: indices into ``batch`` (any order, repeats allowed: each
      occurrence is a network of the new batch). columns [M, W] int: for each,
      the K columns of ``batch`` whose state its W systems continue (repeats
      allowed). couplings [M, W]: the systems' couplings from now on.
    Returns ``(sub, rows, cols)``: the new batch (couplings ``[M, W]``) and the
    gather indices ``rows``, ``cols`` ``[R', W]`` int64 such that
    ``state[rows, cols]`` is the new ``[R', W]`` state of any ``[R, nK]`` one
    (``Simulation.take``)."""
    nets = np.asarray(networks)
    cols = np.asarray(columns)
    if cols.ndim != 2 or cols.shape[0] != nets.shape[0] or cols.shape[1] < 1 \
            or not np.issubdtype(cols.dtype, np.integer) or cols.min() < 0 \
            or cols.max() >= batch.n_k:
        raise ValueError(f"invalid columns with shape {cols.shape}: need [{nets.shape[0]}, W] "
                         f"indices in [0, {batch.n_k})")
    sub, rows = select_networks(batch, nets)
    sub = dataclasses.replace(sub, couplings=checked_couplings(sub, couplings, cols.shape))
    sizes = np.diff(sub.node_offset)
    cols = np.repeat(cols.astype(np.int64), sizes, axis=0)
    return sub, np.ascontiguousarray(np.broadcast_to(rows[:, None], cols.shape)), cols


def checked_couplings(batch: Batch, couplings: np.ndarray,
                      shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``couplings`` as the batch's real type, C-contiguous; ValueError unless
    its shape is ``shape`` (default the batch's ``[B, nK]``; a batch whose
    systems change, ``[B, W]``)."""
    new = np.ascontiguousarray(couplings, dtype=batch.dtype)
    want = batch.couplings.shape if shape is None else tuple(shape)
    if new.shape != want:
        raise ValueError(f"invalid couplings with shape {new.shape}: need {want} "
                         f"(networks, K)")
    return new
