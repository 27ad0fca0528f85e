"""Packing many networks into one block-diagonal CSR batch.

Layout (``docs/design.md``, "Data layout"): ``B`` graphs with ``N_b`` nodes each become
one CSR over all ``R = sum_b N_b`` rows whose column indices are *global* row
ids; the state of the batch is ``theta[R, nK]`` row-major with K fastest, so
one neighbour read serves all ``nK`` systems of its network.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kcbatch.protocol.choices import Coupling, Precision
from kcbatch.protocol.choices import precision as precision_record
from kcbatch.protocol.coupling import check_coupling, row_weights

# Rows of a batch get int32 ids (indices, row_net): at most 2**31 - 1 of them.
MAX_ROWS = 2**31 - 1


@dataclass(frozen=True, eq=False)
class Batch:
    """A packed batch of ``B`` networks x ``nK`` couplings.

    Shapes (R = total rows = sum of nodes over the batch's networks):
      indptr       [R+1]   int64   CSR row pointers
      indices      [nnz]   int32   global neighbour row ids, sorted within a row
      weight       [R]     real    coupling weight w_i (``coupling.row_weights``;
                                   1 / max(k_i, 1) for the default ``degree``)
      omega        [R]     real    natural frequencies
      theta0       [R]     real    initial phases in [0, 2pi)
      row_net      [R]     int32   network index of each row
      node_offset  [B+1]   int64   first row of each network
      couplings    [B, nK] real    coupling K of each (network, K) system
    ``real`` is float32 or float64 (``dtype``).
    """

    indptr: np.ndarray
    indices: np.ndarray
    weight: np.ndarray
    omega: np.ndarray
    theta0: np.ndarray
    row_net: np.ndarray
    node_offset: np.ndarray
    couplings: np.ndarray

    @property
    def n_networks(self) -> int:
        return int(self.node_offset.shape[0] - 1)

    @property
    def n_rows(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def n_k(self) -> int:
        return int(self.couplings.shape[1])

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    @property
    def dtype(self) -> np.dtype:
        return self.omega.dtype


def pack(graphs: Sequence[tuple[np.ndarray, np.ndarray]],
         omegas: Sequence[np.ndarray],
         thetas: Sequence[np.ndarray],
         couplings: np.ndarray,
         precision: str | Precision = "float32",
         coupling: Coupling | str = Coupling.DEGREE) -> Batch:
    """Pack ``B`` CSR graphs ``(indptr, indices)`` with their frequencies,
    initial phases and ``couplings[B, nK]`` (or one ``[nK]`` grid for all)
    into a :class:`Batch`, with the weights ``w_i`` of ``coupling`` (one of
    ``coupling.COUPLINGS``; per network for ``mean-degree`` and ``global``).
    Inputs are validated (``coupling`` converted to its member once): a
    mismatch names the graph."""
    real = precision_record(precision).scalar
    coupling = check_coupling(coupling)
    b = len(graphs)
    if b < 1:
        raise ValueError("invalid graphs=[]: need at least one graph")
    if len(omegas) != b or len(thetas) != b:
        raise ValueError(f"invalid omega/theta0: got {len(omegas)} and {len(thetas)} arrays "
                         f"for {b} graphs; need one per graph")
    couplings = np.asarray(couplings, dtype=np.float64)
    if couplings.ndim == 1:
        couplings = np.broadcast_to(couplings, (b, couplings.shape[0]))
    if couplings.ndim != 2 or couplings.shape[0] != b or couplings.shape[1] < 1:
        raise ValueError(f"invalid couplings with shape {couplings.shape}: "
                         f"need [nK] or [{b}, nK] with nK >= 1")
    sizes = np.empty(b, dtype=np.int64)
    nnzs = np.empty(b, dtype=np.int64)
    for g, (indptr, indices) in enumerate(graphs):
        indptr = np.asarray(indptr)
        n = indptr.shape[0] - 1 if indptr.ndim == 1 else 0  # 0: rejected just below
        if indptr.ndim != 1 or n < 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            shown = np.array2string(indptr.ravel(), threshold=8, edgeitems=3,
                                    max_line_width=10**6)
            raise ValueError(f"invalid graph {g}: indptr (shape {indptr.shape}, {shown}) must "
                             f"be a non-decreasing 1-D array starting at 0 with at least "
                             f"2 entries")
        if np.asarray(indices).shape != (int(indptr[-1]),):
            raise ValueError(f"invalid graph {g}: indices has shape {np.shape(indices)}, "
                             f"indptr[-1]={int(indptr[-1])}")
        if len(indices) and (np.min(indices) < 0 or np.max(indices) >= n):
            ids = np.asarray(indices)
            bad = ids[(ids < 0) | (ids >= n)][0]
            raise ValueError(f"invalid graph {g}: neighbour id {bad} out of range; "
                             f"ids must lie in [0, {n})")
        for name, arr in (("omega", omegas[g]), ("theta0", thetas[g])):
            if np.shape(arr) != (n,):
                raise ValueError(f"invalid {name} for graph {g}: shape {np.shape(arr)}, "
                                 f"need ({n},) for its {n} nodes")
        sizes[g] = n
        nnzs[g] = indptr[-1]
    node_offset = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(sizes, out=node_offset[1:])
    edge_offset = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(nnzs, out=edge_offset[1:])
    rows = int(node_offset[-1])
    if rows > MAX_ROWS:
        raise ValueError(f"batch too large: {rows} rows; int32 ids allow at most {MAX_ROWS}")
    indptr_all = np.empty(rows + 1, dtype=np.int64)
    indices_all = np.empty(int(edge_offset[-1]), dtype=np.int32)
    for g, (indptr, indices) in enumerate(graphs):
        r0, r1 = node_offset[g], node_offset[g + 1]
        indptr_all[r0:r1] = np.asarray(indptr[:-1], dtype=np.int64) + edge_offset[g]
        indices_all[edge_offset[g]:edge_offset[g + 1]] = np.asarray(indices, dtype=np.int64) + r0
    indptr_all[rows] = edge_offset[-1]
    deg = np.diff(indptr_all)
    weight: np.ndarray = row_weights(deg, node_offset, coupling).astype(real)
    theta0 = np.concatenate([np.asarray(t, dtype=np.float64) for t in thetas])
    theta0 = np.mod(theta0, 2.0 * np.pi).astype(real)
    # float32 rounding can push 2pi - tiny up to exactly 2pi; keep [0, 2pi).
    theta0[theta0 >= real(2.0 * np.pi)] = 0
    return Batch(
        indptr=indptr_all,
        indices=indices_all,
        weight=weight,
        omega=np.concatenate([np.asarray(o, dtype=np.float64) for o in omegas]).astype(real),
        theta0=theta0,
        row_net=np.repeat(np.arange(b, dtype=np.int32), sizes),
        node_offset=node_offset,
        couplings=np.ascontiguousarray(couplings, dtype=real),
    )
