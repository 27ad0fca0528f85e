"""The GPU engine: the kernels' launch sequence over CuPy, and the lazy CuPy backend.

Importing kcbatch never imports CuPy. The first GPU use resolves it here and
caches the outcome: a working backend, or one clear line saying why the GPU is
unusable (no CuPy, no device, driver too old, NVRTC missing, ...).
"""
from __future__ import annotations

import functools
import math
from typing import Any

from ..config import StudyConfig
from .base import BackendEngine, EngineUnavailable, predict_kernel_bytes
from .launch import BLOCK, KernelSpec, name_expressions
from .source import gpu_source

# --batch auto: the largest batch whose predicted arrays fit this fraction of
# free device memory, capped where throughput stops growing (128 on an H100).
GPU_MEMORY_FRACTION = 0.7
GPU_AUTO_BATCH_CAP = 128

_UNSET = object()
_state: Any = _UNSET  # the cupy module, or a str reason


def _resolve():
    global _state
    if _state is not _UNSET:
        return _state
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken install raising anything
        _state = (f"CuPy is not importable ({type(exc).__name__}: {exc}); "
                  "install kcbatch[cuda13] or kcbatch[cuda12]")
        return _state
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        _state = f"no usable NVIDIA driver or GPU ({type(exc).__name__}: {exc})"
        return _state
    if n < 1:
        _state = "no CUDA device found"
        return _state
    try:
        cupy.zeros(1, dtype=cupy.float32).sum().item()
    except Exception as exc:
        _state = f"the CUDA device does not work ({type(exc).__name__}: {exc})"
        return _state
    _state = cupy
    return _state


def unavailable_reason() -> str | None:
    s = _resolve()
    return s if isinstance(s, str) else None


def cupy():
    """The cupy module (raises EngineUnavailable with the cached reason)."""
    s = _resolve()
    if isinstance(s, str):
        raise EngineUnavailable(f"GPU unusable: {s}")
    return s


@functools.lru_cache(maxsize=None)
def _module(device_id: int, fast_math: bool):
    """One compiled RawModule per (device, options); CuPy also caches on disk
    keyed on the source text."""
    cp = cupy()
    with cp.cuda.Device(device_id):
        mod = cp.RawModule(code=gpu_source(fast_math=fast_math), options=("-std=c++17",),
                           name_expressions=name_expressions())
        mod.compile()
    return mod


class CupyBackend:
    """Launches kernels with CuPy on the current device."""

    def __init__(self, fast_math: bool = False):
        self.xp = cupy()
        self.fast_math = fast_math

    def launch(self, spec: KernelSpec, real: str, n_threads: int, args: list) -> None:
        mod = _module(self.xp.cuda.Device().id, self.fast_math)
        fn = mod.get_function(spec.symbol(real))
        fn((math.ceil(n_threads / BLOCK),), (BLOCK,), tuple(args))


class GpuEngine(BackendEngine):
    """Integrates batches on the current CUDA device with CuPy RawKernels."""

    name = "gpu"

    @staticmethod
    def make_backend(fast_math: bool):
        return CupyBackend(fast_math)

    def auto_batch(self, cfg: StudyConfig) -> int:
        free, _total = cupy().cuda.runtime.memGetInfo()
        fit = int(GPU_MEMORY_FRACTION * free // predict_kernel_bytes(cfg, 1))
        return min(fit, GPU_AUTO_BATCH_CAP)

    def describe(self) -> str:
        cp = cupy()
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        free, total = cp.cuda.runtime.memGetInfo()
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"gpu: {name}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free"

    def release_memory(self) -> None:
        cupy().get_default_memory_pool().free_all_blocks()

    def memory_in_use(self) -> int | None:
        return int(cupy().get_default_memory_pool().total_bytes())
