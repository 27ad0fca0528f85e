"""Engines: one interface (:class:`Engine`), one implementation per device.

An engine integrates a packed :class:`~kcbatch.inputs.batch.Batch` with the protocol
of an :class:`~kcbatch.protocol.config.IntegrationSpec` and returns the sampled order
parameter ``[B, nK, n_samples]`` (float64). Devices (``config.DEVICES``):

* ``cpu``     — numpy + numba, and a native pass built with g++ (``cpu/``),
  always available;
* ``gpu``     — CuPy RawKernels (``cuda.py``), needs CuPy and a CUDA device;
* ``gpu-sim`` — the same kernels compiled for the CPU with g++ (``sim.py``),
  slow, exists to test the kernels without a GPU;
* ``auto``    — ``gpu`` when usable; ``cpu`` (with a notice) when there is no
  CUDA device; :class:`GpuUnusable` when a device is there but the GPU stack
  does not work (running hours on the CPU would hide a fixable install).

Layout: ``protocols.py`` (what an engine and a simulation are),
``sizing.py`` (:class:`BatchShape`, what the batch planner asks engines
about), ``stepping.py`` (the one step loop), ``cpu/`` (the CPU engine),
``kernel_engine.py`` (the kernels' launch sequence over a ``backend.Backend``:
``cuda.py`` for gpu, ``sim.py`` for gpu-sim) with ``launch.py`` (the kernels'
signatures), ``shared.py`` (the shared-memory strategy) and ``source.py``.

This module is the package's public face: code outside ``engines/`` imports
from here only. Nothing here imports CuPy at module import time.
"""
from __future__ import annotations

import functools

from kcbatch.engines.protocols import Engine, EngineUnavailable, Simulation, StepProgress
from kcbatch.engines.sizing import BatchShape
from kcbatch.engines.steps import checked_couplings, select_networks, select_systems
from kcbatch.protocol.choices import AUTO, Auto, Device, KernelStrategy, is_auto
from kcbatch.protocol.config import DEVICE_CHOICES, DEVICES, check_kernel

__all__ = ["DEVICES", "BatchShape", "Engine", "EngineUnavailable", "GpuUnusable", "available",
           "checked_couplings",
           "get_engine", "ResolvedDevice",
           "Simulation", "gpu_auto_batch", "gpu_predict_bytes", "gpu_stack_lines",
           "kernel_misfit", "nvrtc_unavailable_reason", "resolve_device", "select_networks",
           "select_systems", "StepProgress", "why_unavailable"]


class GpuUnusable(EngineUnavailable):
    """``--device auto`` found a CUDA device it cannot use; the message gives the
    reason and the fix (the extra to install, or ``--device cpu``) in one line."""


def why_unavailable(device: str) -> str | None:
    """None when ``device`` can run here, else a one-line reason."""
    if device == Device.CPU:
        return None
    if device == Device.GPU:
        from kcbatch.engines import cuda
        return cuda.unavailable_reason()
    if device == Device.GPU_SIM:
        from kcbatch.engines import sim
        return sim.unavailable_reason()
    return f"unknown device {device!r}: must be one of {', '.join(DEVICE_CHOICES)}"


def gpu_auto_batch(shape: BatchShape, free_bytes: int) -> int:
    """What ``--batch auto`` picks for networks of ``shape`` on a GPU with
    ``free_bytes`` free (before the planner caps it by the runs and the
    systems limit); needs no GPU or CuPy."""
    from kcbatch.engines.cuda import auto_batch_for
    return auto_batch_for(shape, free_bytes)


def gpu_predict_bytes(shape: BatchShape, batch: int) -> int:
    """Device bytes the GPU engine allocates for ``batch`` networks of ``shape``
    (its ``predict_bytes``); needs no GPU or CuPy."""
    from kcbatch.engines.kernel_engine import predict_kernel_bytes
    return predict_kernel_bytes(shape, batch)


def nvrtc_unavailable_reason() -> str | None:
    """None when the kernels can be compiled with NVRTC here (no GPU needed)."""
    from kcbatch.engines.nvrtc_check import nvrtc_unavailable_reason as reason
    return reason()


def available(device: str) -> bool:
    return why_unavailable(device) is None


def gpu_stack_lines() -> list[str]:
    """For ``kcbatch info``: driver, each CUDA device, CuPy, CUDA runtime and NVRTC,
    one line each, with the fix for each missing piece."""
    from kcbatch.engines.diagnose import stack_lines
    return stack_lines()


# What resolve_device returns: the concrete device and the notice of an
# ``auto`` that fell back to the CPU (None otherwise).
ResolvedDevice = tuple[str, str | None]


def resolve_device(device: str) -> ResolvedDevice:
    """Map ``auto`` to a concrete device. Returns (device, notice or None).

    Raises GpuUnusable when ``auto`` meets a CUDA device that does not work.
    The GPU stack beneath is checked once per process, so the answer for one
    ``device`` does not change within a process; a caller that resolved it
    passes the pair on (``run_study(device=...)``) instead of asking again."""
    if not is_auto(device):
        return device, None
    from kcbatch.engines import cuda
    problem = cuda.problem()
    if problem is None:
        return Device.GPU, None
    if problem.device_present:
        fix = f"{problem.fix}, or" if problem.fix else "use"
        raise GpuUnusable(f"--device auto: a CUDA device is present but unusable: "
                          f"{problem.reason}; fix: {fix} --device cpu to run on the CPU anyway")
    return Device.CPU, f"{problem.reason}; running on the CPU"


def get_engine(device: str, fast_math: bool = False,
               kernel: KernelStrategy | Auto | str = AUTO) -> Engine:
    """The engine for a concrete device (raises EngineUnavailable with the reason).

    ``fast_math`` selects the float32 trig intrinsic of the CUDA kernels (gpu,
    gpu-sim); the CPU engine has one trig implementation and ignores it.
    ``kernel`` (``config.KERNEL_CHOICES``) is the GPU kernels' strategy; on the
    CPU ``auto`` and ``global`` mean its one algorithm and ``shared`` is a
    ConfigError."""
    strategy = check_kernel(kernel, device)
    if device == Device.CPU:
        strategy = AUTO
    return _engine(device, bool(fast_math) and device != Device.CPU, strategy)


def kernel_misfit(engine: Engine, shape: BatchShape) -> str | None:
    """With ``kernel = shared``: why networks of ``shape`` cannot fit one block of
    ``engine``'s device (before the exact check of every batch), else None."""
    check = getattr(engine, "kernel_misfit", None)
    return None if check is None else check(shape)


@functools.cache
def _engine(device: str, fast_math: bool, kernel: KernelStrategy | Auto) -> Engine:
    reason = why_unavailable(device)
    if reason is not None:
        raise EngineUnavailable(f"device {device!r} is unusable: {reason}")
    if device == Device.CPU:
        from kcbatch.engines.cpu import CpuEngine
        return CpuEngine()
    if device == Device.GPU:
        from kcbatch.engines.cuda import GpuEngine
        return GpuEngine(fast_math, kernel)
    from kcbatch.engines.sim import SimEngine
    return SimEngine(fast_math, kernel)
