"""gpu-sim: the CUDA kernels compiled for the CPU with g++ and called via ctypes.

:class:`SimBackend` is its :class:`~kcbatch.engines.backend.Backend`: the
GPU engine's own launch sequence (``kernel_engine.py``) runs on numpy arrays,
so CI without a GPU still executes every line of ``kernels/kuramoto.cu``.
Slow; meant for tests. The shared library is built once per source text and
cached (:mod:`kcbatch.engines.cxx`).
"""
from __future__ import annotations

import ctypes
import functools
import math

import numpy as np

from kcbatch.engines.cxx import BuildError, build, cache_problem, compiler
from kcbatch.engines.kernel_engine import BackendEngine
from kcbatch.engines.launch import BLOCK, KernelSpec
from kcbatch.engines.shared import H100_SHARED_BYTES
from kcbatch.engines.source import sim_launcher_name, sim_source

CXX_FLAGS = ("-O2", "-std=c++17", "-fopenmp", "-shared", "-fPIC", "-fno-fast-math",
             "-ffp-contract=off", "-w")


def unavailable_reason() -> str | None:
    if compiler() is None:
        return "no C++ compiler (g++) found for gpu-sim; install g++ or set CXX"
    problem = cache_problem()
    return None if problem is None else f"gpu-sim: {problem}"


@functools.cache
def _library(fast_math: bool) -> ctypes.CDLL:
    try:
        return build("gpu_sim", sim_source(fast_math=fast_math), CXX_FLAGS)
    except BuildError as exc:
        raise RuntimeError(f"gpu-sim: {exc}") from None


_CTYPES = {np.dtype(np.int64): ctypes.c_longlong, np.dtype(np.int32): ctypes.c_int,
           np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}


class SimBackend:
    """The :class:`~kcbatch.engines.backend.Backend` of the kernels' C++ builds
    over numpy arrays: the host is the device, a launch returns when its
    threads are done, so nothing is copied and nothing waits."""

    xp = np

    def __init__(self, fast_math: bool = False):
        self.fast_math = fast_math
        self._lib = _library(fast_math)
        self._fns: dict = {}

    def to_device(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a)

    def to_host(self, a: np.ndarray) -> np.ndarray:
        return a

    def _fn(self, spec: KernelSpec, real: str):
        key = (spec.name, real)
        if key in self._fns:
            return self._fns[key]
        fn = getattr(self._lib, sim_launcher_name(spec.name, real))
        types: list[type] = [ctypes.c_uint, ctypes.c_uint]
        if spec.block_level:
            types.append(ctypes.c_ulonglong)
        for p in spec.params:
            types.append(ctypes.c_void_p if p.is_pointer else _CTYPES[p.dtype(real)])
        fn.argtypes = types
        fn.restype = ctypes.c_int if spec.block_level else None
        self._fns[key] = fn
        return fn

    def launch(self, spec: KernelSpec, real: str, n_threads: int, args: list) -> None:
        fn = self._fn(spec, real if spec.templated else "float64")
        conv = [a.ctypes.data if isinstance(a, np.ndarray) else a.item() for a in args]
        fn(math.ceil(n_threads / BLOCK), BLOCK, *conv)

    def shared_limit(self) -> int:
        """The H100's opt-in limit: gpu-sim accepts what the target GPU would."""
        return H100_SHARED_BYTES

    def launch_blocks(self, spec: KernelSpec, real: str, grid: int, block: int,
                      shared_bytes: int, args: list) -> None:
        """``grid`` blocks one after another, each an OpenMP team of ``block``
        threads over ``shared_bytes`` of block-shared memory."""
        fn = self._fn(spec, real)
        conv = [a.ctypes.data if isinstance(a, np.ndarray) else a.item() for a in args]
        if fn(grid, block, shared_bytes, *conv) != 0:
            raise RuntimeError(f"gpu-sim: OpenMP gave fewer than {block} threads for one block "
                               f"of {spec.name} (is OMP_THREAD_LIMIT set?)")


class SimEngine(BackendEngine):
    """The GPU engine's launch sequence on :class:`SimBackend`."""

    name = "gpu-sim"

    @staticmethod
    def make_backend(fast_math: bool):
        return SimBackend(fast_math)

    def describe(self) -> str:
        return f"gpu-sim: the CUDA kernels compiled with {compiler()} (OpenMP), for tests"
