"""How ``--device`` resolves, on the CPU, with a faked driver and a faked CuPy.

No CUDA device: ``auto`` falls back to the CPU with a one-line notice. A device
present but a GPU stack that does not work: ``auto`` stops with the reason and
the fix. Also the ctypes probes themselves: the driver probe against a fake
``libcuda`` built here with the C compiler, and the NVRTC binding against the
real NVRTC where one is installed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kcbatch.cli import main
from kcbatch.engines import GpuUnusable, nvrtc, probe, resolve_device, why_unavailable
from kcbatch.engines import cuda as cuda_backend

H100 = probe.CudaDevice(0, "Fake H100", 80 * 2**30, (9, 0))
NO_DRIVER = probe.DriverProbe(None, error="libcuda.so.1: cannot open shared object file")
ZERO_DEVICES = probe.DriverProbe("libcuda.so.1", 13000, ())
NO_DEVICE_ERROR = probe.DriverProbe("libcuda.so.1", 13000, (),
                                    "cuInit failed: CUDA_ERROR_NO_DEVICE (100)", True)
CUDA13 = probe.DriverProbe("libcuda.so.1", 13000, (H100,))
CUDA12 = probe.DriverProbe("libcuda.so.1", 12040, (H100,))

STUDY = ["run", "--runs", "2", "--nodes", "100", "--k-num", "4", "--t-transient", "0.5",
         "--t-measure", "0.5", "--sample-every", "2", "--quiet"]


@pytest.fixture(autouse=True)
def fresh_backend(monkeypatch):
    """Every test resolves the backend anew; the real cached state comes back after."""
    monkeypatch.setattr(cuda_backend, "_state", cuda_backend._UNSET)


def fake_driver(monkeypatch, drv: probe.DriverProbe) -> list[int]:
    calls: list[int] = []

    def probe_driver():
        calls.append(1)
        return drv
    monkeypatch.setattr(probe, "probe_driver", probe_driver)
    return calls


def no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ModuleNotFoundError


def no_nvrtc(monkeypatch):
    def load():
        raise nvrtc.NvrtcUnavailable("libnvrtc not found (tried libnvrtc.so.13)")
    monkeypatch.setattr(nvrtc, "_load", load)


class FakeArray:
    def __init__(self, a, sum_error=None):
        self.a, self.sum_error = a, sum_error

    def sum(self):
        if self.sum_error:
            raise self.sum_error
        return types.SimpleNamespace(item=lambda: self.a.sum())


def fake_cupy(monkeypatch, *, runtime=13000, devices=1, compile_error=None, wrong=False,
              sum_error=None, alloc_error=None) -> types.ModuleType:
    """A CuPy with just what the backend check uses. Its RawKernel emulates the
    probe kernel's contract (x[i] = 2i + 1 for i < n), or fails like NVRTC does."""
    cp = types.ModuleType("cupy")
    cp.float32, cp.int32 = np.float32, np.int32
    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(
        runtimeGetVersion=lambda: runtime, getDeviceCount=lambda: devices))

    def zeros(n, dtype):
        if alloc_error:
            raise alloc_error
        return FakeArray(np.zeros(n, dtype), sum_error)
    cp.zeros = zeros
    cp.asnumpy = lambda x: x.a.copy()

    def raw_kernel(code, name):
        assert name in code
        if compile_error:
            raise compile_error

        def launch(grid, block, args):
            x, n = args
            i = np.arange(grid[0] * block[0])
            i = i[i < int(n)]
            x.a[i] = i if wrong else 2 * i + 1
        return launch
    cp.RawKernel = raw_kernel
    monkeypatch.setitem(sys.modules, "cupy", cp)
    return cp


def stop_message() -> str:
    with pytest.raises(GpuUnusable) as info:
        resolve_device("auto")
    msg = str(info.value)
    assert "\n" not in msg
    assert "--device cpu" in msg
    return msg


# --------------------------------------------------------------------------- no device: fall back

@pytest.mark.parametrize("drv", [NO_DRIVER, ZERO_DEVICES, NO_DEVICE_ERROR],
                         ids=["no-libcuda", "zero-devices", "cuinit-no-device"])
def test_auto_falls_back_when_there_is_no_cuda_device(monkeypatch, drv):
    fake_driver(monkeypatch, drv)
    fake_cupy(monkeypatch)  # a working CuPy does not matter without a device
    device, notice = resolve_device("auto")
    assert device == "cpu"
    assert notice and "\n" not in notice and notice.endswith("running on the CPU")
    assert ("no NVIDIA driver" if drv.library is None else "no CUDA device") in notice


# --------------------------------------------------------------------------- device present: stop

def test_auto_stops_when_cupy_is_missing(monkeypatch):
    fake_driver(monkeypatch, CUDA13)
    no_cupy(monkeypatch)
    msg = stop_message()
    assert "CuPy is not installed" in msg
    assert "pip install 'kcbatch[cuda13]'" in msg


def test_the_extra_named_matches_the_driver(monkeypatch):
    fake_driver(monkeypatch, CUDA12)
    no_cupy(monkeypatch)
    msg = stop_message()
    assert "kcbatch[cuda12]" in msg and "cuda13" not in msg


def test_auto_stops_when_cupy_import_is_broken(monkeypatch):
    fake_driver(monkeypatch, CUDA13)

    def broken():
        raise RuntimeError("CUDA environment is not correctly set up\nmore detail")
    monkeypatch.setattr(cuda_backend, "_import_cupy", broken)
    msg = stop_message()
    assert "CuPy does not import (RuntimeError: CUDA environment is not correctly set up)" in msg
    assert "more detail" not in msg


def test_auto_stops_when_the_test_kernel_does_not_compile(monkeypatch):
    fake_driver(monkeypatch, CUDA13)
    fake_cupy(monkeypatch, compile_error=RuntimeError(
        "CuPy failed to load libnvrtc.so.13: OSError: libnvrtc.so.13: cannot open shared "
        "object file\nTraceback-ish second line"))
    msg = stop_message()
    assert "a test kernel does not compile or run" in msg
    assert "libnvrtc.so.13: cannot open shared object file" in msg
    assert "second line" not in msg
    assert "pip install 'kcbatch[cuda13]'" in msg


def test_auto_stops_when_cupys_own_reduction_does_not_compile(monkeypatch):
    fake_driver(monkeypatch, CUDA13)
    fake_cupy(monkeypatch, sum_error=RuntimeError(
        'catastrophic error: cannot open source file "cuda_fp16.h"'))
    msg = stop_message()
    assert "CuPy's own kernels do not compile" in msg and "cuda_fp16.h" in msg


def test_auto_stops_when_the_test_kernel_writes_wrong_values(monkeypatch):
    fake_driver(monkeypatch, CUDA13)
    fake_cupy(monkeypatch, wrong=True)
    assert "wrote wrong values" in stop_message()


class CUDARuntimeError(RuntimeError):
    """Named like CuPy's runtime errors, which the check tells from compile errors."""


@pytest.mark.parametrize("where", ["alloc", "launch"])
def test_a_device_error_points_at_the_device_not_the_install(monkeypatch, where):
    fake_driver(monkeypatch, CUDA13)
    err = CUDARuntimeError("cudaErrorDevicesUnavailable: CUDA-capable device(s) is/are busy")
    fake_cupy(monkeypatch, **({"alloc_error": err} if where == "alloc" else
                              {"compile_error": err}))
    msg = stop_message()
    assert "cudaErrorDevicesUnavailable" in msg
    assert "nvidia-smi" in msg and "pip install" not in msg


def test_auto_stops_when_cupy_is_built_for_a_newer_cuda_than_the_driver(monkeypatch):
    fake_driver(monkeypatch, CUDA12)
    fake_cupy(monkeypatch, runtime=13000)
    msg = stop_message()
    assert "built for CUDA 13.0 but the driver supports CUDA 12.4" in msg
    assert "pip uninstall cupy-cuda13x" in msg and "kcbatch[cuda12]" in msg


def test_auto_stops_on_a_driver_too_old_or_failing(monkeypatch):
    fake_driver(monkeypatch, probe.DriverProbe("libcuda.so.1", 11080, (H100,)))
    fake_cupy(monkeypatch)
    msg = stop_message()
    assert "CUDA 11.8 only" in msg and "update the NVIDIA driver" in msg

    monkeypatch.setattr(cuda_backend, "_state", cuda_backend._UNSET)
    fake_driver(monkeypatch, probe.DriverProbe("libcuda.so.1", 13000, (),
                                               "cuInit failed: CUDA_ERROR_UNKNOWN (999)"))
    msg = stop_message()
    assert "CUDA_ERROR_UNKNOWN (999)" in msg and "repair the NVIDIA driver" in msg


# --------------------------------------------------------------------------- device present and working

def test_auto_picks_the_gpu_when_everything_works(monkeypatch):
    fake_driver(monkeypatch, CUDA13)
    fake_cupy(monkeypatch)
    assert resolve_device("auto") == ("gpu", None)
    assert why_unavailable("gpu") is None


def test_explicit_devices_pass_through_unchanged(monkeypatch):
    fake_driver(monkeypatch, CUDA13)
    no_cupy(monkeypatch)
    for dev in ("cpu", "gpu", "gpu-sim"):
        assert resolve_device(dev) == (dev, None)


def test_the_backend_is_checked_once_per_process(monkeypatch):
    calls = fake_driver(monkeypatch, CUDA13)
    no_cupy(monkeypatch)
    for _ in range(3):
        with pytest.raises(GpuUnusable):
            resolve_device("auto")
        assert why_unavailable("gpu").startswith("CuPy is not installed")
    assert len(calls) == 1


# --------------------------------------------------------------------------- the CLI

def test_cli_auto_with_a_broken_gpu_exits_2_with_one_line_and_no_cpu_study(monkeypatch,
                                                                            tmp_path):
    import kcbatch.run.study
    fake_driver(monkeypatch, CUDA13)
    no_cupy(monkeypatch)

    def must_not_run(*a, **k):
        raise AssertionError("a study was started")
    monkeypatch.setattr(kcbatch.run.study, "run_study", must_not_run)
    monkeypatch.chdir(tmp_path)
    # No --seed and no --out: nothing may be printed or created before the stop.
    result = CliRunner().invoke(main, STUDY + ["--device", "auto"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: --device auto: a CUDA device is present but unusable")
    assert "kcbatch[cuda13]" in lines[0] and "--device cpu" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_auto_without_a_device_runs_on_the_cpu_with_one_notice(monkeypatch, tmp_path):
    fake_driver(monkeypatch, ZERO_DEVICES)
    no_cupy(monkeypatch)
    result = CliRunner().invoke(main, STUDY + ["--device", "auto", "--seed", "1",
                                               "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, (result.output, result.exception)
    notices = [ln for ln in result.stderr.splitlines() if "CPU" in ln]
    assert notices == ["no CUDA device (the driver reports 0 devices); running on the CPU"]
    assert re.search(r"^device cpu,", result.stdout, re.M), result.stdout


def test_cli_explicit_gpu_without_a_device_exits_2(monkeypatch, tmp_path):
    fake_driver(monkeypatch, NO_DRIVER)
    result = CliRunner().invoke(main, STUDY + ["--device", "gpu", "--seed", "1",
                                               "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("Error: device 'gpu' is unusable: no NVIDIA driver")
    assert not (tmp_path / "o" / "kcbatch.sqlite").exists()


def _count_resolutions(monkeypatch) -> list[str]:
    """Every resolve_device call from here on, by the device asked for."""
    import kcbatch.engines
    import kcbatch.run.plan
    calls: list[str] = []

    def counted(device):
        calls.append(device)
        return resolve_device(device)
    monkeypatch.setattr(kcbatch.engines, "resolve_device", counted)
    monkeypatch.setattr(kcbatch.run.plan, "resolve_device", counted)
    return calls


def test_a_cli_study_resolves_its_device_once(monkeypatch, tmp_path):
    fake_driver(monkeypatch, ZERO_DEVICES)
    no_cupy(monkeypatch)
    calls = _count_resolutions(monkeypatch)
    result = CliRunner().invoke(main, STUDY + ["--device", "auto", "--seed", "1",
                                               "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, (result.output, result.exception)
    assert calls == ["auto"]
    # the study ran with that resolution, its notice printed once
    assert [ln for ln in result.stderr.splitlines() if "CPU" in ln] == [
        "no CUDA device (the driver reports 0 devices); running on the CPU"]
    assert re.search(r"^device cpu,", result.stdout, re.M), result.stdout


def test_a_cli_scan_resolves_its_device_once_for_every_value(monkeypatch, tmp_path):
    calls = _count_resolutions(monkeypatch)
    result = CliRunner().invoke(main, ["scan", "--param", "m", "--values", "2,3",
                                       *STUDY[1:], "--device", "cpu", "--seed", "1",
                                       "--out", str(tmp_path / "scan")])
    assert result.exit_code == 0, (result.output, result.exception)
    assert calls == ["cpu"]


def _info() -> list[str]:
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout.splitlines()


def _one(lines: list[str], prefix: str) -> str:
    hits = [ln for ln in lines if ln.startswith(prefix)]
    assert len(hits) == 1, (prefix, lines)
    return hits[0]


def test_info_on_a_gpu_machine_with_only_a_driver(monkeypatch):
    fake_driver(monkeypatch, probe.DriverProbe(
        "libcuda.so.1", 12040, (H100, probe.CudaDevice(1, "Fake A100", 40 * 2**30, (8, 0))),
        kernel_module="550.54.15"))
    no_cupy(monkeypatch)
    no_nvrtc(monkeypatch)
    lines = _info()
    fix = "fix: pip install 'kcbatch[cuda12]'"
    assert _one(lines, "driver:") == "driver: CUDA 12.4 (libcuda.so.1, kernel module 550.54.15)"
    assert _one(lines, "cuda device 0:") == \
        "cuda device 0: Fake H100, 80.0 GiB, compute capability 9.0"
    assert _one(lines, "cuda device 1:") == \
        "cuda device 1: Fake A100, 40.0 GiB, compute capability 8.0"
    assert _one(lines, "cupy:").startswith(f"cupy: not installed; {fix}")
    assert fix in _one(lines, "cuda runtime:")
    nv = _one(lines, "nvrtc:")
    assert nv.startswith("nvrtc: not found (libnvrtc not found") and fix in nv
    gpu = _one(lines, "device gpu ")
    assert re.fullmatch(r"device gpu\s*: unusable: CuPy is not installed; " + re.escape(fix)
                        + r".*", gpu)
    assert re.fullmatch(r"device cpu\s*: usable", _one(lines, "device cpu "))


def test_info_on_a_machine_without_a_gpu(monkeypatch):
    fake_driver(monkeypatch, NO_DRIVER)
    no_cupy(monkeypatch)
    no_nvrtc(monkeypatch)
    lines = _info()
    assert _one(lines, "driver:").startswith("driver: not found (libcuda.so.1: cannot open")
    assert "fix: install the NVIDIA driver" in _one(lines, "driver:")
    assert _one(lines, "cuda devices:") == "cuda devices: none (no driver)"
    assert _one(lines, "cupy:") == "cupy: not installed (needed only with a GPU)"
    assert "pip install nvidia-cuda-nvrtc" in _one(lines, "nvrtc:")
    assert "unusable: no NVIDIA driver" in _one(lines, "device gpu ")


def test_info_reports_cupy_and_its_runtime(monkeypatch):
    fake_driver(monkeypatch, NO_DRIVER)
    fake_cupy(monkeypatch, runtime=13020).__version__ = "14.2.0"
    lines = _info()
    assert _one(lines, "cupy:") == "cupy: 14.2.0"
    assert _one(lines, "cuda runtime:") == "cuda runtime: 13.2 (CuPy's)"


def test_info_reports_the_nvrtc_in_use(monkeypatch):
    fake_driver(monkeypatch, NO_DRIVER)
    try:
        major, minor = nvrtc.version()
    except nvrtc.NvrtcUnavailable as exc:
        pytest.skip(str(exc))
    assert _one(_info(), "nvrtc:") == f"nvrtc: {major}.{minor} ({nvrtc.library()})"


# --------------------------------------------------------------------------- the driver probe (ctypes)

FAKE_LIBCUDA = r"""
#include <stdio.h>
#include <stdlib.h>
static int env(const char* k, int d) { const char* v = getenv(k); return v ? atoi(v) : d; }
int cuDriverGetVersion(int* v) { *v = env("FAKE_CUDA_VERSION", 13000); return 0; }
int cuInit(unsigned flags) { return env("FAKE_CUINIT", 0); }
int cuDeviceGetCount(int* n) { *n = env("FAKE_CUDA_COUNT", 2); return 0; }
int cuDeviceGet(int* dev, int i) { *dev = i; return 0; }
int cuDeviceGetName(char* s, int len, int dev) { snprintf(s, len, "Fake GPU %d", dev); return 0; }
int cuDeviceTotalMem_v2(size_t* b, int dev) { *b = (size_t)(dev + 1) << 33; return 0; }
int cuDeviceGetAttribute(int* v, int attr, int dev) {
    *v = attr == 75 ? 9 : attr == 76 ? dev : -1; return 0; }
int cuGetErrorName(int e, const char** s) {
    *s = e == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN"; return 0; }
"""


@pytest.fixture(scope="module")
def fake_libcuda(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a fake libcuda")
    d = tmp_path_factory.mktemp("libcuda")
    (d / "fake.c").write_text(FAKE_LIBCUDA)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(d / "libcuda.so.1"), str(d / "fake.c")],
                   check=True)
    return d / "libcuda.so.1"


def _probe(monkeypatch, lib: Path, **env) -> probe.DriverProbe:
    monkeypatch.setattr(probe, "_LIBCUDA", str(lib))
    for k in ("FAKE_CUDA_VERSION", "FAKE_CUINIT", "FAKE_CUDA_COUNT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))
    return probe.probe_driver.__wrapped__()  # bypass the per-process cache


def test_driver_probe_lists_devices(monkeypatch, fake_libcuda):
    drv = _probe(monkeypatch, fake_libcuda, FAKE_CUDA_VERSION=12080)
    assert drv.library == str(fake_libcuda) and drv.error is None
    assert drv.cuda_version == 12080 and drv.cuda_major == 12 and drv.version_text() == "12.8"
    assert drv.devices == (probe.CudaDevice(0, "Fake GPU 0", 8 * 2**30, (9, 0)),
                           probe.CudaDevice(1, "Fake GPU 1", 16 * 2**30, (9, 1)))
    assert drv.device_present


def test_driver_probe_without_devices(monkeypatch, fake_libcuda, tmp_path):
    assert not _probe(monkeypatch, fake_libcuda, FAKE_CUDA_COUNT=0).device_present
    drv = _probe(monkeypatch, fake_libcuda, FAKE_CUINIT=100)
    assert not drv.device_present and "CUDA_ERROR_NO_DEVICE (100)" in drv.error
    drv = _probe(monkeypatch, fake_libcuda, FAKE_CUINIT=999)
    assert drv.device_present and "CUDA_ERROR_UNKNOWN (999)" in drv.error  # broken driver
    drv = _probe(monkeypatch, tmp_path / "libcuda.so.1")
    assert drv.library is None and not drv.device_present and "libcuda.so.1" in drv.error


def test_kernel_module_version_is_read_from_proc(monkeypatch, tmp_path):
    for text, want in [
        ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build  "
         "(dvs-builder@U22)  Tue Sep 23 09:41:52 UTC 2025\nGCC version:  gcc 12\n", "580.95.05"),
        ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC "
         "2023\n", "535.104.05"),
    ]:
        (tmp_path / "version").write_text(text)
        monkeypatch.setattr(probe, "_NVIDIA_PROC", tmp_path / "version")
        assert probe._kernel_module() == want
    monkeypatch.setattr(probe, "_NVIDIA_PROC", tmp_path / "missing")
    assert probe._kernel_module() is None


# --------------------------------------------------------------------------- the NVRTC binding (ctypes)

def test_nvrtc_search_skips_libraries_that_are_not_nvrtc(monkeypatch, tmp_path, fake_libcuda):
    lib = tmp_path / "nvidia" / "cu13" / "lib"
    lib.mkdir(parents=True)
    shutil.copy(fake_libcuda, lib / "libnvrtc.so.13")  # loads, but has no nvrtcVersion
    monkeypatch.setattr(nvrtc, "_site_dirs", lambda: [tmp_path])
    monkeypatch.setattr(nvrtc, "_SONAMES", ())
    monkeypatch.setattr(nvrtc, "_TOOLKIT_LIBS", ())
    assert nvrtc.candidates() == [str(lib / "libnvrtc.so.13")]
    with pytest.raises(nvrtc.NvrtcUnavailable) as info:
        nvrtc._load.__wrapped__()
    assert str(lib / "libnvrtc.so.13") in str(info.value)
    assert "nvrtcVersion" in str(info.value)


def test_nvrtc_from_a_wheel_preloads_its_builtins_globally(monkeypatch, tmp_path, fake_libcuda):
    # NVRTC opens libnvrtc-builtins by soname at compile time; a wheel's lib dir is
    # on no loader path, so the builtins must already be loaded (RTLD_GLOBAL) or a
    # later CuPy compile in the same process fails (seen on an H200 without a toolkit).
    lib = tmp_path / "nvidia" / "cu13" / "lib"
    lib.mkdir(parents=True)
    for name in ("libnvrtc.so.13", "libnvrtc-builtins.so.13.0"):
        shutil.copy(fake_libcuda, lib / name)
    monkeypatch.setattr(nvrtc, "_site_dirs", lambda: [tmp_path])
    monkeypatch.setattr(nvrtc, "_SONAMES", ())
    monkeypatch.setattr(nvrtc, "_TOOLKIT_LIBS", ())
    loads = []
    real_cdll = nvrtc.ctypes.CDLL

    def recording_cdll(path, mode=0, *args, **kw):
        loads.append((os.path.basename(str(path)), mode))
        return real_cdll(path, mode, *args, **kw)

    monkeypatch.setattr(nvrtc.ctypes, "CDLL", recording_cdll)
    with pytest.raises(nvrtc.NvrtcUnavailable):  # the fake has no nvrtcVersion
        nvrtc._load.__wrapped__()
    names = [n for n, _ in loads]
    assert names.index("libnvrtc-builtins.so.13.0") < names.index("libnvrtc.so.13"), loads
    assert dict(loads)["libnvrtc-builtins.so.13.0"] & os.RTLD_GLOBAL, loads


def _needs_nvrtc():
    try:
        return nvrtc.version()
    except nvrtc.NvrtcUnavailable as exc:
        if os.environ.get("CI") == "true":  # CI installs NVRTC (the test extra)
            raise
        pytest.skip(str(exc))


def test_nvrtc_binding_compiles_lowers_names_and_reports_errors():
    _needs_nvrtc()
    src = "template <class T> __global__ void g(T* x) { x[threadIdx.x] = T(1); }\n"
    out = nvrtc.compile_program(src, "t.cu", ["-arch=sm_80"], ["g<float>", "g<double>"])
    # Itanium C++ ABI: void g<float>(float*) and void g<double>(double*).
    assert out.lowered == {"g<float>": "_Z1gIfEvPT_", "g<double>": "_Z1gIdEvPT_"}
    assert out.cubin[:4] == b"\x7fELF"
    with pytest.raises(nvrtc.NvrtcError) as info:
        nvrtc.compile_program("__global__ void h() { undeclared_name(); }\n", "bad.cu",
                              ["-arch=sm_80"])
    assert "NVRTC_ERROR_COMPILATION" in str(info.value)
    assert "bad.cu" in str(info.value) and "undeclared_name" in str(info.value)


def test_the_backend_check_kernel_compiles():
    _needs_nvrtc()
    out = nvrtc.compile_program(cuda_backend.PROBE_KERNEL, "probe.cu", ["-arch=sm_80"])
    assert out.cubin[:4] == b"\x7fELF" and b"kcbatch_probe" in out.cubin
