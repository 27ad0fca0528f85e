"""Signatures of the kernels in ``kernels/kuramoto.cu`` and their typed launch wrappers.

CuPy checks nothing about a RawKernel's arguments: a float64 array passed where
the kernel reads float32, a non-contiguous view or a wrong shape silently gives
garbage. Every launch therefore goes through a wrapper below that checks dtype,
contiguity and shape, and casts scalars to the kernel's C types. The same specs
generate the C++ launchers of the ``gpu-sim`` backend, so both backends call the
kernels with the same signatures.

C types in a spec: ``T`` is the real type (float or double), ``T2`` its vector
pair (float2 / double2: arrays with a trailing axis of 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kcbatch.engines.sizing import MAX_SYSTEMS
from kcbatch.protocol.choices import PRECISIONS

# C name of each precision's real type.
REAL_C = {name: p.c_type for name, p in PRECISIONS.items()}
_SCALAR_DTYPES = {"long long": np.int64, "int": np.int32, "double": np.float64}
_POINTER_DTYPES = {"long long": np.int64, "int": np.int32, "double": np.float64,
                   "unsigned short": np.uint16}

# Threads per block of every launch; all kernels are 1-D and barrier-free.
# 128 beat 256 and 512 by 2-5% for rk4_stage on an H100 (default study).
BLOCK = 128
# Rows summed by one thread of sample_partial.
SAMPLE_CHUNK_ROWS = 256
# integrate_shared by precision: rows owned per thread and the most threads
# per block (kc_shared_rows in kuramoto.cu, its __launch_bounds__): what keeps
# the per-row state in registers without spills (bench/kernel_resources.txt).
SHARED_ROWS = {"float32": 10, "float64": 8}
SHARED_MAX_BLOCK = {"float32": 1024, "float64": 512}
# integrate_shared's mode bits (KC_SHARED_FROM_STATE / _TO_STATE in kuramoto.cu).
SHARED_FROM_STATE = 1
SHARED_TO_STATE = 2


@dataclass(frozen=True)
class Param:
    name: str
    ctype: str  # e.g. "const T*", "T2*", "long long", "T"
    shape: str = ""  # shape comment, e.g. "[R, nK]"

    @property
    def is_pointer(self) -> bool:
        return self.ctype.endswith("*")

    @property
    def base(self) -> str:
        return self.ctype.replace("const ", "").rstrip("*").strip()

    def c_type(self, real: str) -> str:
        t = REAL_C[real]
        return (self.ctype.replace("T2", t + "2") if "T2" in self.ctype
                else self.ctype.replace("T", t) if self.base == "T" else self.ctype)

    def dtype(self, real: str):
        if self.base in ("T", "T2"):
            return np.dtype(real)
        return np.dtype((_POINTER_DTYPES if self.is_pointer else _SCALAR_DTYPES)[self.base])


@dataclass(frozen=True)
class KernelSpec:
    name: str
    params: tuple[Param, ...]
    templated: bool = True
    # Uses block barriers and dynamic shared memory: launched with an explicit
    # grid, block and shared size (``launch_blocks``), one OpenMP team per block on gpu-sim.
    block_level: bool = False

    def symbol(self, real: str) -> str:
        """The name expression of the kernel instantiation (``rk4_stage<float>``)."""
        return f"{self.name}<{REAL_C[real]}>" if self.templated else self.name


INIT_STATE = KernelSpec("init_state", (
    Param("theta0", "const T*", "[R]"),
    Param("theta", "T*", "[R, nK]"),
    Param("sc", "T2*", "[R, nK, 2]"),
    Param("total", "int"),
    Param("n_k", "int"),
))
RK4_STAGE = KernelSpec("rk4_stage", (
    Param("indptr", "const long long*", "[R+1]"),
    Param("indices", "const int*", "[nnz]"),
    Param("weight", "const T*", "[R]"),
    Param("omega", "const T*", "[R]"),
    Param("row_net", "const int*", "[R]"),
    Param("couplings", "const T*", "[B, nK]"),
    Param("sc_in", "const T2*", "[R, nK, 2]"),
    Param("sc_out", "T2*", "[R, nK, 2]"),
    Param("theta", "T*", "[R, nK]"),
    Param("acc", "T*", "[R, nK]"),
    Param("total", "int"),
    Param("n_k", "int"),
    Param("stage", "int"),
    Param("dt", "T"),
))
SAMPLE_PARTIAL = KernelSpec("sample_partial", (
    Param("sc", "const T2*", "[R, nK, 2]"),
    Param("node_offset", "const long long*", "[B+1]"),
    Param("partial", "double*", "[B, nQ, nK, 2]"),
    Param("total", "long long"),
    Param("n_k", "int"),
    Param("n_chunks", "int"),
    Param("chunk_rows", "int"),
))
SAMPLE_FINALIZE = KernelSpec("sample_finalize", (
    Param("partial", "const double*", "[B, nQ, nK, 2]"),
    Param("node_offset", "const long long*", "[B+1]"),
    Param("samples", "double*", "[B, nK, nS]"),
    Param("total", "long long"),
    Param("n_k", "int"),
    Param("n_chunks", "int"),
    Param("n_samples", "int"),
    Param("sample", "int"),
), templated=False)

INTEGRATE_SHARED = KernelSpec("integrate_shared", (
    Param("row_edges", "const int*", "[R, 2]"),
    Param("local_indices", "const unsigned short*", "[nnz]"),
    Param("weight", "const T*", "[R]"),
    Param("omega", "const T*", "[R]"),
    Param("theta0", "const T*", "[R]"),
    Param("node_offset", "const long long*", "[B+1]"),
    Param("edge_offset", "const long long*", "[B+1]"),
    Param("couplings", "const T*", "[B, nK]"),
    Param("row_chunks", "const int*", "[R, 2]"),
    Param("chunk_edges", "const int*", "[C, 2]"),
    Param("chunk_offset", "const long long*", "[B+1]"),
    Param("samples", "double*", "[B, nK, nS]"),
    Param("theta", "T*", "[R, nK]"),
    Param("mode", "int"),
    Param("n_k", "int"),
    Param("n_transient", "int"),
    Param("n_measure", "int"),
    Param("sample_every", "int"),
    Param("n_samples", "int"),
    Param("dt", "T"),
), block_level=True)

KERNELS = (INIT_STATE, RK4_STAGE, SAMPLE_PARTIAL, SAMPLE_FINALIZE, INTEGRATE_SHARED)


def name_expressions(block_level: bool | None = None) -> list[str]:
    """Every kernel instantiation, for ``RawModule(name_expressions=...)``;
    only the block-level ones (True) or only the others (False)."""
    out: list[str] = []
    for spec in KERNELS:
        if block_level is not None and spec.block_level != block_level:
            continue
        for real in (REAL_C if spec.templated else ("float32",)):
            sym = spec.symbol(real)
            if sym not in out:
                out.append(sym)
    return out


def _check(kernel: str, p: Param, arr: Any, real: str, shape: tuple[int, ...]) -> None:
    want = p.dtype(real)
    if arr.dtype != want:
        raise TypeError(f"{kernel}: {p.name} has dtype {arr.dtype}, kernel reads {want} "
                        f"({p.ctype})")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{kernel}: {p.name} must be C-contiguous")
    if tuple(arr.shape) != shape:
        raise ValueError(f"{kernel}: {p.name} has shape {tuple(arr.shape)}, "
                         f"expected {p.shape} = {shape}")


def _arguments(spec: KernelSpec, real: str, values: dict[str, Any],
               shapes: dict[str, tuple[int, ...]]) -> list:
    args = []
    for p in spec.params:
        v = values[p.name]
        if p.is_pointer:
            _check(spec.name, p, v, real, shapes[p.name])
            args.append(v)
        else:
            args.append(p.dtype(real).type(v))
    return args


def _launch(backend, spec: KernelSpec, real: str, n_threads: int,
            values: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> None:
    args = _arguments(spec, real, values, shapes)
    if n_threads > 0:
        backend.launch(spec, real, n_threads, args)


def _systems(rows: int, n_k: int, kernel: str) -> int:
    total = rows * n_k
    if total > MAX_SYSTEMS:
        raise ValueError(f"{kernel}: {rows} rows x {n_k} couplings = {total} systems; "
                         f"a batch may hold at most {MAX_SYSTEMS} (use a smaller batch)")
    return total


def launch_init_state(backend, real: str,
                      theta0,  # [R]
                      theta,   # [R, nK]
                      sc):     # [R, nK, 2]
    rows, n_k = theta.shape
    total = _systems(rows, n_k, "init_state")
    _launch(backend, INIT_STATE, real, total,
            dict(theta0=theta0, theta=theta, sc=sc, total=total, n_k=n_k),
            dict(theta0=(rows,), theta=(rows, n_k), sc=(rows, n_k, 2)))


def launch_rk4_stage(backend, real: str,
                     indptr,     # [R+1]
                     indices,    # [nnz]
                     weight,     # [R]
                     omega,      # [R]
                     row_net,    # [R]
                     couplings,  # [B, nK]
                     sc_in,      # [R, nK, 2]
                     sc_out,     # [R, nK, 2]
                     theta,      # [R, nK]
                     acc,        # [R, nK]
                     stage: int, dt: float):
    rows, n_k = theta.shape
    if not 0 <= stage <= 3:
        raise ValueError(f"rk4_stage: stage={stage} must be 0..3")
    total = _systems(rows, n_k, "rk4_stage")
    if indices.shape[0] > MAX_SYSTEMS:
        # The kernel reads row pointers as 32-bit ints.
        raise ValueError(f"rk4_stage: {indices.shape[0]} edge entries; a batch may hold at "
                         f"most {MAX_SYSTEMS} (use a smaller batch)")
    _launch(backend, RK4_STAGE, real, total,
            dict(indptr=indptr, indices=indices, weight=weight, omega=omega,
                 row_net=row_net, couplings=couplings, sc_in=sc_in, sc_out=sc_out,
                 theta=theta, acc=acc, total=total, n_k=n_k, stage=stage, dt=dt),
            dict(indptr=(rows + 1,), indices=(indices.shape[0],), weight=(rows,),
                 omega=(rows,), row_net=(rows,), couplings=(couplings.shape[0], n_k),
                 sc_in=(rows, n_k, 2), sc_out=(rows, n_k, 2), theta=(rows, n_k),
                 acc=(rows, n_k)))


def launch_sample_partial(backend, real: str,
                          sc,           # [R, nK, 2]
                          node_offset,  # [B+1]
                          partial):     # [B, nQ, nK, 2]
    rows, n_k, _ = sc.shape
    b, n_chunks = partial.shape[0], partial.shape[1]
    total = b * n_chunks * n_k
    _launch(backend, SAMPLE_PARTIAL, real, total,
            dict(sc=sc, node_offset=node_offset, partial=partial, total=total, n_k=n_k,
                 n_chunks=n_chunks, chunk_rows=SAMPLE_CHUNK_ROWS),
            dict(sc=(rows, n_k, 2), node_offset=(b + 1,), partial=(b, n_chunks, n_k, 2)))


def launch_sample_finalize(backend,
                           partial,      # [B, nQ, nK, 2]
                           node_offset,  # [B+1]
                           samples,      # [B, nK, nS]
                           sample: int):
    b, n_chunks, n_k, _ = partial.shape
    n_samples = samples.shape[2]
    if not 0 <= sample < n_samples:
        raise ValueError(f"sample_finalize: sample={sample} must be in [0, {n_samples})")
    total = b * n_k
    _launch(backend, SAMPLE_FINALIZE, "float64", total,
            dict(partial=partial, node_offset=node_offset, samples=samples, total=total,
                 n_k=n_k, n_chunks=n_chunks, n_samples=n_samples, sample=sample),
            dict(partial=(b, n_chunks, n_k, 2), node_offset=(b + 1,),
                 samples=(b, n_k, n_samples)))


def launch_integrate_shared(backend, real: str, *,
                            row_edges,      # [R, 2]
                            local_indices,  # [nnz] uint16
                            weight,         # [R]
                            omega,          # [R]
                            theta0,         # [R]
                            node_offset,    # [B+1]
                            edge_offset,    # [B+1]
                            couplings,      # [B, nK]
                            row_chunks,     # [R, 2]
                            chunk_edges,    # [C, 2]
                            chunk_offset,   # [B+1]
                            samples,        # [B, nK, nS]
                            theta,          # [R, nK] phases in/out (mode)
                            mode: int,
                            n_transient: int, n_measure: int, sample_every: int,
                            dt: float, block: int, shared_bytes: int):
    """One launch of ``B * nK`` blocks of ``block`` threads with ``shared_bytes``
    of dynamic shared memory each (``shared.py`` checks the fit beforehand).

    ``mode``: ``SHARED_FROM_STATE`` starts from ``theta`` rather than ``theta0``,
    ``SHARED_TO_STATE`` leaves the final phases in ``theta`` (0: ``theta`` unused)."""
    rows = theta0.shape[0]
    b, n_k = couplings.shape
    n_samples = samples.shape[2]
    if not (32 <= block <= SHARED_MAX_BLOCK[real] and block % 32 == 0):
        raise ValueError(f"integrate_shared: block={block} must be a multiple of 32 in "
                         f"[32, {SHARED_MAX_BLOCK[real]}]")
    if b * n_k > MAX_SYSTEMS:
        raise ValueError(f"integrate_shared: {b} networks x {n_k} couplings is more blocks "
                         f"than a grid holds (use a smaller batch)")
    if mode & ~(SHARED_FROM_STATE | SHARED_TO_STATE):
        raise ValueError(f"integrate_shared: mode={mode} is not a combination of "
                         f"{SHARED_FROM_STATE} (from theta) and {SHARED_TO_STATE} (to theta)")
    if n_samples != -(-n_measure // sample_every):
        raise ValueError(f"integrate_shared: samples has {n_samples} per system, the protocol "
                         f"takes {-(-n_measure // sample_every)}")
    args = _arguments(INTEGRATE_SHARED, real, dict(
        row_edges=row_edges, local_indices=local_indices, weight=weight, omega=omega,
        theta0=theta0, node_offset=node_offset, edge_offset=edge_offset, couplings=couplings,
        row_chunks=row_chunks, chunk_edges=chunk_edges, chunk_offset=chunk_offset,
        samples=samples, theta=theta, mode=mode, n_k=n_k, n_transient=n_transient,
        n_measure=n_measure,
        sample_every=sample_every, n_samples=n_samples, dt=dt), dict(
        row_edges=(rows, 2), local_indices=(local_indices.shape[0],), weight=(rows,),
        omega=(rows,), theta0=(rows,), node_offset=(b + 1,), edge_offset=(b + 1,),
        couplings=(b, n_k), row_chunks=(rows, 2), chunk_edges=(chunk_edges.shape[0], 2),
        chunk_offset=(b + 1,), samples=(b, n_k, n_samples), theta=(rows, n_k)))
    if b * n_k > 0:
        backend.launch_blocks(INTEGRATE_SHARED, real, b * n_k, block, shared_bytes, args)
