"""Building C++ translation units into cached shared libraries (gpu-sim and the
CPU engine's native pass), loaded with ctypes, and reading the kernel files
they are made from.

A library is built once per (source text, compiler, flags, host) and cached
under ``$KCBATCH_CACHE_DIR`` (default ``~/.cache/kcbatch``); the key hashes all
of them, so an edited source or another machine's CPU never loads a stale or
foreign build (a home directory may be shared by cluster nodes of different
CPUs, and ``-march=native`` code can crash on another model).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path


def kernel_text(name: str) -> str:
    """The text of ``kernels/<name>`` (installed as ``kcbatch.kernels``)."""
    try:
        from kcbatch.kernels import read_source
    except ModuleNotFoundError:
        # A source checkout on sys.path without an install: kernels/ is beside kcbatch/.
        return (Path(__file__).resolve().parents[2] / "kernels" / name).read_text("utf-8")
    return read_source(name)


class BuildError(RuntimeError):
    """The compiler rejected a translation unit; the message ends with its log."""


def compiler() -> str | None:
    """The C++ compiler: ``$CXX``, else ``g++``, else ``c++`` on the PATH."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def cache_dir() -> Path:
    d = os.environ.get("KCBATCH_CACHE_DIR")
    return Path(d) if d else Path.home() / ".cache" / "kcbatch"


@functools.cache
def host_signature() -> str:
    """The CPU model and instruction-set flags of this host (Linux), else its
    architecture: part of every cache key of ``-march=native`` builds."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    keep = [ln for ln in lines if ln.split(":")[0].strip() in ("model name", "flags", "Features")]
    return platform.machine() + "|" + "|".join(sorted(set(keep)))


def build(stem: str, source: str, flags: tuple[str, ...]) -> ctypes.CDLL:
    """Compile ``source`` with ``flags`` (or reuse the cached build) and load it.

    Raises :class:`BuildError` when there is no compiler, it cannot be run
    or it fails."""
    cxx = compiler()
    if cxx is None:
        raise BuildError("no C++ compiler (g++) found; install g++ or set CXX")
    key = hashlib.sha256("\0".join((source, cxx, *flags, host_signature())).encode())
    out = cache_dir() / f"{stem}_{key.hexdigest()[:20]}.so"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            cpp = Path(tmp) / f"{stem}.cpp"
            cpp.write_text(source)
            so = Path(tmp) / f"{stem}.so"
            try:
                proc = subprocess.run([cxx, *flags, str(cpp), "-o", str(so)],
                                      capture_output=True, text=True)
            except OSError as exc:  # $CXX names no runnable program
                raise BuildError(f"compiling {stem} with {cxx} failed: {exc}") from exc
            if proc.returncode != 0:
                raise BuildError(f"compiling {stem} with {cxx} failed:\n{proc.stderr[-4000:]}")
            os.replace(so, out)  # atomic: concurrent builders never see a partial file
    return ctypes.CDLL(str(out))
