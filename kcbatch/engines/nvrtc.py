"""A small ctypes binding of NVRTC: compile CUDA C++ to a cubin without CuPy or a GPU.

NVRTC needs neither a driver nor a device, so the kernels can be
compile-checked on any machine that has the library. The library is looked
for where CuPy 14 (through cuda-pathfinder) looks, in the same order:
NVIDIA's pip wheels in site-packages (``nvidia/cu13/lib``, the CUDA 13 layout;
``nvidia/cuda_nvrtc/lib``, CUDA 12), then the system loader, then
``$CUDA_PATH`` / ``$CUDA_HOME`` and ``/usr/local/cuda``.
"""
from __future__ import annotations

import ctypes
import functools
import os
import site
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Newest first: a machine with both majors compiles with the newer NVRTC.
_WHEEL_LIBS = ("nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cuda_nvrtc/lib/libnvrtc.so.12")
_SONAMES = ("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so")
_TOOLKIT_LIBS = ("lib64/libnvrtc.so", "lib/libnvrtc.so", "targets/x86_64-linux/lib/libnvrtc.so")

NVRTC_SUCCESS = 0


class NvrtcUnavailable(RuntimeError):
    """No loadable NVRTC library; the message says where it was looked for."""


class NvrtcError(RuntimeError):
    """An NVRTC call failed; for a failed compile the message ends with the log."""


@dataclass(frozen=True)
class Compiled:
    """One compiled program: the log (ptxas report with ``-Xptxas=-v``), each name
    expression's lowered (mangled) symbol, and the cubin bytes."""

    log: str
    lowered: dict[str, str]
    cubin: bytes


def _site_dirs() -> list[Path]:
    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    dirs += [p for p in sys.path if p]
    seen: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p not in seen and p.is_dir():
            seen.append(p)
    return seen


def candidates() -> list[str]:
    """Every path or soname tried, in order (``_load`` takes the first that loads)."""
    out = [str(d / rel) for d in _site_dirs() for rel in _WHEEL_LIBS if (d / rel).is_file()]
    out += list(_SONAMES)
    roots = [os.environ.get(v) for v in ("CUDA_PATH", "CUDA_HOME")] + ["/usr/local/cuda"]
    out += [str(Path(r) / rel) for r in roots if r for rel in _TOOLKIT_LIBS
            if (Path(r) / rel).is_file()]
    return out


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    c_int, c_size, c_char_p = ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p
    prog_p = ctypes.POINTER(ctypes.c_void_p)
    strs = ctypes.POINTER(c_char_p)
    sigs = {
        "nvrtcVersion": [ctypes.POINTER(c_int), ctypes.POINTER(c_int)],
        "nvrtcCreateProgram": [prog_p, c_char_p, c_char_p, c_int, strs, strs],
        "nvrtcDestroyProgram": [prog_p],
        "nvrtcAddNameExpression": [ctypes.c_void_p, c_char_p],
        "nvrtcCompileProgram": [ctypes.c_void_p, c_int, strs],
        "nvrtcGetProgramLogSize": [ctypes.c_void_p, ctypes.POINTER(c_size)],
        "nvrtcGetProgramLog": [ctypes.c_void_p, ctypes.c_char_p],
        "nvrtcGetLoweredName": [ctypes.c_void_p, c_char_p, ctypes.POINTER(c_char_p)],
        "nvrtcGetCUBINSize": [ctypes.c_void_p, ctypes.POINTER(c_size)],
        "nvrtcGetCUBIN": [ctypes.c_void_p, ctypes.c_char_p],
    }
    for name, args in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = c_int
    lib.nvrtcGetErrorString.argtypes = [c_int]
    lib.nvrtcGetErrorString.restype = c_char_p
    return lib


def _preload_builtins(lib_dir: Path) -> None:
    """Load ``libnvrtc-builtins`` from ``lib_dir`` into the global namespace.

    NVRTC dlopen()s its builtins by soname when it compiles. A wheel's lib
    directory is on no loader path, so CuPy (through cuda-pathfinder) preloads
    the builtins when IT loads NVRTC -- but skips that when it finds libnvrtc
    already loaded, by us. Seen on an H200 with the system toolkit hidden:
    after ``kcbatch info`` had used this binding, CuPy's compile failed with
    "failed to open libnvrtc-builtins.so.13.0". Preloading here makes the
    soname resolvable for every later compile in the process."""
    for builtins in sorted(lib_dir.glob("libnvrtc-builtins.so*")):
        try:
            ctypes.CDLL(str(builtins), mode=os.RTLD_GLOBAL)
        except OSError:
            continue  # the libnvrtc next to it will say what is wrong


@functools.lru_cache(maxsize=1)
def _load() -> tuple[ctypes.CDLL, str]:
    tried = candidates()
    errors = []
    for cand in tried:
        try:
            if os.path.isabs(cand):
                _preload_builtins(Path(cand).parent)
            lib = ctypes.CDLL(cand, mode=os.RTLD_GLOBAL)
            lib.nvrtcVersion  # noqa: B018  (a library by that name that is not NVRTC fails here)
        except (OSError, AttributeError) as exc:
            if os.path.isabs(cand):  # a file that exists but does not load: say why
                errors.append(f"{cand}: {exc}")
            continue
        return _declare(lib), cand
    raise NvrtcUnavailable("libnvrtc not found (tried " + ", ".join(tried) + ")"
                           + "".join(f"; {e}" for e in errors))


def library() -> str:
    """The path (or soname) of the NVRTC library in use; raises NvrtcUnavailable."""
    return _load()[1]


def _check(lib: ctypes.CDLL, result: int, call: str) -> None:
    if result != NVRTC_SUCCESS:
        msg = lib.nvrtcGetErrorString(result)
        raise NvrtcError(f"{call}: {msg.decode() if msg else result}")


def version() -> tuple[int, int]:
    """NVRTC's (major, minor); raises NvrtcUnavailable."""
    lib = _load()[0]
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(lib, lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def _strings(items: list[str]):
    arr = (ctypes.c_char_p * max(1, len(items)))()
    for i, s in enumerate(items):
        arr[i] = s.encode()
    return arr


def _read(lib, prog, size_fn, get_fn) -> bytes:
    size = ctypes.c_size_t()
    _check(lib, getattr(lib, size_fn)(prog, ctypes.byref(size)), size_fn)
    buf = ctypes.create_string_buffer(size.value)
    _check(lib, getattr(lib, get_fn)(prog, buf), get_fn)
    return buf.raw


def compile_program(source: str, name: str, options: list[str],
                    name_expressions: Sequence[str] = ()) -> Compiled:
    """Compile ``source`` with ``options`` (e.g. ``-arch=sm_90``: a real arch gives a
    cubin). Raises NvrtcError with the compile log when the source does not compile."""
    lib = _load()[0]
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0,
                                       None, None), "nvrtcCreateProgram")
    try:
        for ne in name_expressions:
            _check(lib, lib.nvrtcAddNameExpression(prog, ne.encode()), "nvrtcAddNameExpression")
        result = lib.nvrtcCompileProgram(prog, len(options), _strings(options))
        log = _read(lib, prog, "nvrtcGetProgramLogSize", "nvrtcGetProgramLog").rstrip(
            b"\0").decode(errors="replace")
        if result != NVRTC_SUCCESS:
            err = lib.nvrtcGetErrorString(result)
            raise NvrtcError(f"{err.decode() if err else result}\n{log}")
        lowered = {}
        for ne in name_expressions:
            out = ctypes.c_char_p()
            _check(lib, lib.nvrtcGetLoweredName(prog, ne.encode(), ctypes.byref(out)),
                   "nvrtcGetLoweredName")
            lowered[ne] = (out.value or b"").decode()
        cubin = _read(lib, prog, "nvrtcGetCUBINSize", "nvrtcGetCUBIN")
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return Compiled(log, lowered, cubin)
