"""Is there a CUDA device? Ask the NVIDIA driver directly (ctypes, no CuPy).

The answer decides what ``--device auto`` does: with no driver or no device it
falls back to the CPU; with a device present, a GPU stack that does not work
is an error to fix, not a reason to run for hours on the CPU. The probe also
gives ``kcbatch info`` the driver's CUDA version and each device.
"""
from __future__ import annotations

import ctypes
import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

CUDA_SUCCESS = 0
CUDA_ERROR_NO_DEVICE = 100
# The toolkit's link-time stub answers every call with this: no real driver.
CUDA_ERROR_STUB_LIBRARY = 34
_ATTR_CC_MAJOR, _ATTR_CC_MINOR = 75, 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_*
_LIBCUDA = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
_NVIDIA_PROC = Path("/proc/driver/nvidia/version")

# The oldest driver CUDA major a GPU extra exists for (cupy-cuda12x).
OLDEST_CUDA_MAJOR = 12


@dataclass(frozen=True)
class CudaDevice:
    index: int
    name: str
    total_bytes: int
    capability: tuple[int, int]  # (major, minor) compute capability

    def line(self) -> str:
        return (f"cuda device {self.index}: {self.name}, {self.total_bytes / 2**30:.1f} GiB, "
                f"compute capability {self.capability[0]}.{self.capability[1]}")


@dataclass(frozen=True)
class DriverProbe:
    """What the driver says. ``library`` None: no driver library loads.
    ``error`` set: the driver loads but cannot be queried (``cuInit`` failed).
    ``cuda_version`` as ``cuDriverGetVersion`` gives it, e.g. 13000 for CUDA 13.0."""

    library: str | None
    cuda_version: int | None = None
    devices: tuple[CudaDevice, ...] = ()
    error: str | None = None
    no_device: bool = False  # cuInit: no device, or the library is a stub
    kernel_module: str | None = None  # the NVIDIA kernel module's version, e.g. 580.95.05

    @property
    def device_present(self) -> bool:
        """A CUDA device exists, or a driver is installed that fails for a reason
        other than "no device" (a broken driver on a GPU machine)."""
        if self.library is None or self.no_device:
            return False
        return bool(self.devices) or self.error is not None

    @property
    def cuda_major(self) -> int | None:
        return None if self.cuda_version is None else self.cuda_version // 1000

    def version_text(self) -> str:
        v = self.cuda_version
        return "unknown" if v is None else f"{v // 1000}.{v % 1000 // 10}"


def gpu_extra(cuda_major: int | None) -> str:
    """The kcbatch extra whose CuPy and CUDA libraries suit a driver of this CUDA major
    (the newest when unknown: a driver supports every older CUDA of its major)."""
    return "cuda12" if cuda_major == OLDEST_CUDA_MAJOR else "cuda13"


def install_fix(cuda_major: int | None) -> str:
    extra = gpu_extra(cuda_major)
    return f"pip install 'kcbatch[{extra}]' (in a checkout: pip install '.[{extra}]')"


def _error_name(lib, code: int) -> str:
    name = ctypes.c_char_p()
    try:
        if lib.cuGetErrorName(code, ctypes.byref(name)) == CUDA_SUCCESS and name.value:
            return f"{name.value.decode()} ({code})"
    except AttributeError:
        pass
    return f"CUDA error {code}"


def _kernel_module() -> str | None:
    try:
        m = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d[\w.]*)", _NVIDIA_PROC.read_text())
    except OSError:
        return None
    return m.group(1) if m else None


def _query(lib, library: str) -> DriverProbe:
    c_int = ctypes.c_int
    version = c_int()
    cuda_version = (version.value if lib.cuDriverGetVersion(ctypes.byref(version)) == CUDA_SUCCESS
                    else None)
    module = _kernel_module()
    rc = lib.cuInit(0)
    if rc != CUDA_SUCCESS:
        return DriverProbe(library, cuda_version, (), f"cuInit failed: {_error_name(lib, rc)}",
                           rc in (CUDA_ERROR_NO_DEVICE, CUDA_ERROR_STUB_LIBRARY), module)
    count = c_int()
    rc = lib.cuDeviceGetCount(ctypes.byref(count))
    if rc != CUDA_SUCCESS:
        return DriverProbe(library, cuda_version, (),
                           f"cuDeviceGetCount failed: {_error_name(lib, rc)}", False, module)
    devices = []
    for i in range(count.value):
        dev = c_int()
        name = ctypes.create_string_buffer(256)
        mem = ctypes.c_size_t()
        major, minor = c_int(), c_int()
        if lib.cuDeviceGet(ctypes.byref(dev), i) != CUDA_SUCCESS:
            continue
        lib.cuDeviceGetName(name, len(name), dev)
        lib.cuDeviceTotalMem_v2(ctypes.byref(mem), dev)
        lib.cuDeviceGetAttribute(ctypes.byref(major), _ATTR_CC_MAJOR, dev)
        lib.cuDeviceGetAttribute(ctypes.byref(minor), _ATTR_CC_MINOR, dev)
        devices.append(CudaDevice(i, name.value.decode(errors="replace") or "?", mem.value,
                                  (major.value, minor.value)))
    return DriverProbe(library, cuda_version, tuple(devices), None, False, module)


@functools.lru_cache(maxsize=1)
def probe_driver() -> DriverProbe:
    """Load the driver library and list its devices (once per process)."""
    try:
        lib = ctypes.CDLL(_LIBCUDA)
    except OSError as exc:
        return DriverProbe(None, error=str(exc))
    try:
        return _query(lib, _LIBCUDA)
    except AttributeError as exc:  # a library by that name without the driver API
        return DriverProbe(_LIBCUDA, error=f"not a CUDA driver: {exc}", no_device=True)
