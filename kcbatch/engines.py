"""Engine registry: one interface, several implementations.

An engine integrates a packed :class:`~kcbatch.batch.Batch` with the protocol
of an :class:`~kcbatch.config.IntegrationSpec` and returns the sampled order
parameter ``[B, nK, n_samples]`` (float64). Devices:

* ``cpu``     — numpy + numba (``engine_cpu``), always available;
* ``gpu``     — CuPy RawKernels (``engine_gpu``), needs CuPy and a CUDA device;
* ``gpu-sim`` — the same kernels compiled for the CPU with g++ (``engine_sim``),
  slow, exists to test the kernels without a GPU;
* ``auto``    — ``gpu`` when usable, else ``cpu``.

Nothing here imports CuPy at module import time.
"""
from __future__ import annotations

import functools

DEVICES = ("cpu", "gpu", "gpu-sim")


class EngineUnavailable(RuntimeError):
    """The requested device cannot be used; the message says why in one line."""


def why_unavailable(device: str) -> str | None:
    """None when ``device`` can run here, else a one-line reason."""
    if device == "cpu":
        return None
    if device == "gpu":
        from . import _cuda_backend
        return _cuda_backend.unavailable_reason()
    if device == "gpu-sim":
        from . import engine_sim
        return engine_sim.unavailable_reason()
    return f"unknown device {device!r}: must be one of auto, {', '.join(DEVICES)}"


def available(device: str) -> bool:
    return why_unavailable(device) is None


def resolve_device(device: str) -> tuple[str, str | None]:
    """Map ``auto`` to a concrete device. Returns (device, notice or None)."""
    if device != "auto":
        return device, None
    reason = why_unavailable("gpu")
    if reason is None:
        return "gpu", None
    return "cpu", f"no usable GPU ({reason}); running on the CPU"


@functools.lru_cache(maxsize=None)
def get_engine(device: str, precision: str = "float32", fast_math: bool = False):
    """The engine for a concrete device (raises EngineUnavailable with the reason)."""
    reason = why_unavailable(device)
    if reason is not None:
        raise EngineUnavailable(f"device {device!r} is unusable: {reason}")
    if device == "cpu":
        from .engine_cpu import CpuEngine
        return CpuEngine(precision, fast_math)
    if device == "gpu":
        from .engine_gpu import GpuEngine
        return GpuEngine(precision, fast_math)
    from .engine_sim import SimEngine
    return SimEngine(precision, fast_math)
