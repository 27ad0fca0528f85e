"""The GPU stack, piece by piece, for ``kcbatch info``: one line per piece, with the
fix for each missing one (driver, CUDA devices, CuPy, its CUDA runtime, NVRTC)."""
from __future__ import annotations

from kcbatch.engines import nvrtc, probe
from kcbatch.engines.cuda import one_line


def _cupy_lines(fix: str, needed: bool) -> list[str]:
    """``needed``: a CUDA device is present, so a missing piece gets its fix."""
    def tail(why: str) -> str:
        return f" ({why}); fix: {fix}" if needed else f" ({why}; needed only with a GPU)"
    try:
        import cupy
    except Exception as exc:  # not installed, or a broken install raising anything
        if isinstance(exc, ModuleNotFoundError) and exc.name == "cupy":
            what = "not installed" + (f"; fix: {fix}" if needed else " (needed only with a GPU)")
        else:
            what = "does not import" + tail(one_line(exc))
        return [f"cupy: {what}", "cuda runtime: unknown" + tail("it comes with CuPy")]
    lines = [f"cupy: {cupy.__version__}"]
    try:
        v = int(cupy.cuda.runtime.runtimeGetVersion())
        lines.append(f"cuda runtime: {v // 1000}.{v % 1000 // 10} (CuPy's)")
    except Exception as exc:
        lines.append("cuda runtime: does not load" + tail(one_line(exc)))
    return lines


def _nvrtc_line(fix: str, needed: bool) -> str:
    try:
        major, minor = nvrtc.version()
        return f"nvrtc: {major}.{minor} ({nvrtc.library()})"
    except (nvrtc.NvrtcUnavailable, nvrtc.NvrtcError) as exc:
        tail = (f"; fix: {fix}" if needed else
                " (needed only with a GPU, or to compile-check the kernels: "
                "pip install nvidia-cuda-nvrtc)")
        return f"nvrtc: not found ({exc}){tail}"


def stack_lines() -> list[str]:
    """Driver, each CUDA device, CuPy, CUDA runtime, NVRTC: one line each."""
    drv = probe.probe_driver()
    fix = probe.install_fix(drv.cuda_major)
    if drv.library is None:
        lines = [f"driver: not found ({drv.error}); fix: install the NVIDIA driver if this "
                 "machine has an NVIDIA GPU"]
    else:
        module = f", kernel module {drv.kernel_module}" if drv.kernel_module else ""
        lines = [f"driver: CUDA {drv.version_text()} ({drv.library}{module})"]
        if drv.cuda_major is not None and drv.cuda_major < probe.OLDEST_CUDA_MAJOR:
            lines[0] += (f"; too old: CUDA {probe.OLDEST_CUDA_MAJOR} or newer is needed; "
                         "fix: update the NVIDIA driver")
    if drv.devices:
        lines += [d.line() for d in drv.devices]
    elif drv.device_present:
        lines.append(f"cuda devices: unknown ({drv.error}); fix: repair the NVIDIA driver "
                     "(nvidia-smi must work)")
    else:
        why = ("no driver" if drv.library is None
               else drv.error or "the driver reports 0 devices")
        lines.append(f"cuda devices: none ({why})")
    lines += _cupy_lines(fix, drv.device_present)
    lines.append(_nvrtc_line(fix, drv.device_present))
    return lines
