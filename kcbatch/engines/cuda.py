"""The GPU engine: the kernels' launch sequence over CuPy, and the lazy CuPy backend.

:class:`CupyBackend` is the :class:`~kcbatch.engines.backend.Backend` of the
``gpu`` device; :class:`GpuEngine` runs ``kernel_engine.BackendEngine`` over it.

Importing kcbatch never imports CuPy. The first GPU use checks the whole stack
once per process and caches the outcome: a working backend, or a
:class:`GpuProblem` saying in one line what is wrong, whether a CUDA device is
there at all (``--device auto`` falls back to the CPU only when none is), and
the fix. The check asks the driver for devices (``probe.py``, no CuPy), then
imports CuPy, compiles and launches one tiny kernel and one of CuPy's own
reductions, so a missing NVRTC or CUDA header is found here rather than in the
middle of a study.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from kcbatch.engines import probe
from kcbatch.engines.kernel_engine import BackendEngine, predict_kernel_bytes
from kcbatch.engines.launch import BLOCK, KernelSpec, name_expressions
from kcbatch.engines.protocols import EngineUnavailable
from kcbatch.engines.sizing import BatchShape
from kcbatch.engines.source import gpu_source

# --batch auto: the largest batch whose predicted arrays fit this fraction of
# free device memory, capped where throughput stops growing (128 on an H100).
GPU_MEMORY_FRACTION = 0.7
GPU_AUTO_BATCH_CAP = 128


def auto_batch_for(shape: BatchShape, free_bytes: int) -> int:
    """``--batch auto`` on a GPU with ``free_bytes`` of free memory: the most
    networks of ``shape`` whose predicted arrays fit GPU_MEMORY_FRACTION of it,
    at most GPU_AUTO_BATCH_CAP (0 when not even one fits). Pure: no CuPy, no device."""
    fit = int(GPU_MEMORY_FRACTION * free_bytes // predict_kernel_bytes(shape, 1))
    return min(fit, GPU_AUTO_BATCH_CAP)


# The backend check's kernel: x[i] = 2i + 1, so sum(x[:n]) = n**2 exactly in float32.
PROBE_KERNEL = ('extern "C" __global__ void kcbatch_probe(float* x, int n) {\n'
                '    int i = blockIdx.x * blockDim.x + threadIdx.x;\n'
                '    if (i < n) x[i] = 2.0f * i + 1.0f;\n}\n')
PROBE_N = 32


@dataclass(frozen=True)
class GpuProblem:
    """Why the gpu device is unusable. ``device_present``: a CUDA device (or a
    failing driver) exists, so falling back to the CPU would hide a broken install."""

    reason: str
    device_present: bool
    fix: str | None = None

    def line(self) -> str:
        return self.reason + (f"; fix: {self.fix}" if self.fix else "")


_UNSET = object()
_state: Any = _UNSET  # the cupy module, or a GpuProblem


def one_line(exc: BaseException, limit: int = 240) -> str:
    """``Type: first line of the message`` (compile errors carry whole logs)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


CHECK_DEVICE = "check the GPU with nvidia-smi (busy, out of memory, or in exclusive-process mode?)"


def _is_device_error(exc: BaseException) -> bool:
    """CuPy's errors from the driver or runtime, as opposed to compile errors."""
    return type(exc).__name__ in ("CUDADriverError", "CUDARuntimeError", "OutOfMemoryError")


def _import_cupy():
    import cupy
    return cupy


def _check_backend() -> Any:
    """The cupy module when the GPU works, else a GpuProblem."""
    drv = probe.probe_driver()
    if drv.library is None:
        return GpuProblem(f"no NVIDIA driver ({drv.error})", False,
                          "install the NVIDIA driver if this machine has an NVIDIA GPU")
    if not drv.device_present:
        why = drv.error or "the driver reports 0 devices"
        return GpuProblem(f"no CUDA device ({why})", False)
    if drv.error is not None:
        return GpuProblem(f"the NVIDIA driver is installed but fails ({drv.error})", True,
                          "repair the NVIDIA driver (nvidia-smi must work)")
    major = drv.cuda_major
    if major is not None and major < probe.OLDEST_CUDA_MAJOR:
        return GpuProblem(f"the NVIDIA driver supports CUDA {drv.version_text()} only; "
                          f"CUDA {probe.OLDEST_CUDA_MAJOR} or newer is needed", True,
                          "update the NVIDIA driver")
    install = probe.install_fix(major)
    try:
        cp = _import_cupy()
    except ModuleNotFoundError as exc:
        if exc.name != "cupy":  # cupy is there but one of its modules is not
            return GpuProblem(f"CuPy does not import ({one_line(exc)})", True, install)
        return GpuProblem("CuPy is not installed", True, install)
    except Exception as exc:  # a broken install can raise anything at import
        return GpuProblem(f"CuPy does not import ({one_line(exc)})", True, install)
    try:
        runtime = int(cp.cuda.runtime.runtimeGetVersion())
    except Exception as exc:
        return GpuProblem(f"CuPy's CUDA runtime does not load ({one_line(exc)})", True,
                          install)
    if major is not None and runtime // 1000 > major:
        return GpuProblem(f"CuPy is built for CUDA {runtime // 1000}.{runtime % 1000 // 10} but "
                          f"the driver supports CUDA {drv.version_text()}", True,
                          f"pip uninstall cupy-cuda{runtime // 1000}x, then {install}")
    try:
        n = int(cp.cuda.runtime.getDeviceCount())
    except Exception as exc:
        return GpuProblem(f"CuPy sees no usable device ({one_line(exc)})", True, install)
    if n < 1:
        return GpuProblem("CuPy sees no CUDA device although the driver lists one", True,
                          install)
    try:
        x = cp.zeros(PROBE_N, dtype=cp.float32)
    except Exception as exc:
        return GpuProblem(f"the device does not allocate memory ({one_line(exc)})", True,
                          CHECK_DEVICE)
    try:
        cp.RawKernel(PROBE_KERNEL, "kcbatch_probe")((1,), (PROBE_N,), (x, cp.int32(PROBE_N)))
        values = [float(v) for v in cp.asnumpy(x)]
    except Exception as exc:  # NVRTC missing or failing, or the launch failing
        return GpuProblem(f"a test kernel does not compile or run ({one_line(exc)})", True,
                          CHECK_DEVICE if _is_device_error(exc) else install)
    if values != [2.0 * i + 1.0 for i in range(PROBE_N)]:
        return GpuProblem("a test kernel ran but wrote wrong values", True, CHECK_DEVICE)
    try:
        total = float(x.sum().item())  # CuPy's own reduction: needs the CUDA headers
    except Exception as exc:
        return GpuProblem(f"CuPy's own kernels do not compile or run ({one_line(exc)})", True,
                          CHECK_DEVICE if _is_device_error(exc) else install)
    if total != float(PROBE_N ** 2):
        return GpuProblem(f"CuPy's sum gave {total}, not {PROBE_N ** 2}", True, CHECK_DEVICE)
    return cp


def _resolve():
    global _state
    if _state is _UNSET:
        _state = _check_backend()
    return _state


def problem() -> GpuProblem | None:
    """None when the gpu device works here, else why not (checked once per process)."""
    s = _resolve()
    return s if isinstance(s, GpuProblem) else None


def unavailable_reason() -> str | None:
    p = problem()
    return None if p is None else p.line()


def cupy():
    """The cupy module (raises EngineUnavailable with the cached reason)."""
    p = problem()
    if p is not None:
        raise EngineUnavailable(f"GPU unusable: {p.line()}")
    return _state


# The module of the 1-D kernels (the global strategy).
STAGE_KERNELS = "stage kernels"


@functools.cache
def _module(device_id: int, fast_math: bool, which: str = STAGE_KERNELS):
    """One compiled RawModule per (device, options, which): ``STAGE_KERNELS``,
    or one block-level instantiation (``integrate_shared<float>``), compiled
    on its first use only: NVRTC takes seconds for it, and a study of the
    global strategy should not wait for it. CuPy also caches on disk keyed on
    the source text."""
    cp = cupy()
    exprs = name_expressions(block_level=False) if which == STAGE_KERNELS else [which]
    with cp.cuda.Device(device_id):
        mod = cp.RawModule(code=gpu_source(fast_math=fast_math), options=("-std=c++17",),
                           name_expressions=exprs)
        mod.compile()
    return mod


class CupyBackend:
    """The :class:`~kcbatch.engines.backend.Backend` of CuPy on the current device."""

    def __init__(self, fast_math: bool = False):
        self.xp = cupy()
        self.fast_math = fast_math

    def to_device(self, a: Any) -> Any:
        return self.xp.asarray(a)

    def to_host(self, a: Any) -> Any:
        """A host copy of the device array ``a`` (waits for the launches before it)."""
        return a.get()

    def launch(self, spec: KernelSpec, real: str, n_threads: int, args: list) -> None:
        mod = _module(self.xp.cuda.Device().id, self.fast_math)
        fn = mod.get_function(spec.symbol(real))
        fn((math.ceil(n_threads / BLOCK),), (BLOCK,), tuple(args))

    def shared_limit(self) -> int:
        """The device's opt-in dynamic shared memory per block (227 KB on an H100)."""
        return _shared_optin(self.xp.cuda.Device().id)

    def launch_blocks(self, spec: KernelSpec, real: str, grid: int, block: int,
                      shared_bytes: int, args: list) -> None:
        mod = _module(self.xp.cuda.Device().id, self.fast_math, spec.symbol(real))
        fn = mod.get_function(spec.symbol(real))
        # Beyond 48 KB a kernel must opt in to its dynamic shared size.
        if fn.max_dynamic_shared_size_bytes < shared_bytes:
            fn.max_dynamic_shared_size_bytes = shared_bytes
        fn((grid,), (block,), tuple(args), shared_mem=shared_bytes)


@functools.cache
def _shared_optin(device_id: int) -> int:
    props = cupy().cuda.runtime.getDeviceProperties(device_id)
    return int(props.get("sharedMemPerBlockOptin", props["sharedMemPerBlock"]))


class GpuEngine(BackendEngine):
    """Integrates batches on the current CUDA device with CuPy RawKernels."""

    name = "gpu"

    @staticmethod
    def make_backend(fast_math: bool):
        return CupyBackend(fast_math)

    def auto_batch(self, shape: BatchShape) -> int:
        free, _total = cupy().cuda.runtime.memGetInfo()
        return auto_batch_for(shape, free)

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
