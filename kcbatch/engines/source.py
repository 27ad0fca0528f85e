"""Assembling the CUDA C source that is compiled, for the GPU and for gpu-sim.

Options reach the kernels as a generated ``#define`` preamble in front of the
file's text (the file keeps ``#ifndef`` defaults). Project headers are pasted
in, never ``#include``d: CuPy's compile cache keys on the source string it is
given, so an edit of any kernel file must change that string.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .launch import KERNELS, REAL_C, Param

KERNEL_FILE = "kuramoto.cu"
SIM_HEADER = "cuda_sim.h"


def _read(name: str) -> str:
    try:
        from ..kernels import read_source
    except ModuleNotFoundError:
        # A source checkout on sys.path without an install: kernels/ is beside kcbatch/.
        return (Path(__file__).resolve().parents[2] / "kernels" / name).read_text("utf-8")
    return read_source(name)


def preamble(*, fast_math: bool) -> str:
    return f"#define KC_FAST_MATH {int(bool(fast_math))}\n"


def gpu_source(*, fast_math: bool = False) -> str:
    """The source given to NVRTC (``cupy.RawModule``)."""
    return preamble(fast_math=fast_math) + f"#line 1 \"{KERNEL_FILE}\"\n" + _read(KERNEL_FILE)


def _sim_arg(p: Param, real: str) -> str:
    return f"({p.c_type(real)}){p.name}" if p.is_pointer else p.name


def sim_launcher_name(spec_name: str, real: str) -> str:
    return f"kc_sim_{spec_name}_{real}"


def sim_source(*, fast_math: bool = False) -> str:
    """The C++ translation unit of the gpu-sim backend: the CUDA built-ins
    header, the kernel file, and one ``extern "C"`` launcher per instantiation
    (signatures generated from :mod:`kcbatch.engines.launch`)."""
    parts = [preamble(fast_math=fast_math), _read(SIM_HEADER), f"#line 1 \"{KERNEL_FILE}\"",
             _read(KERNEL_FILE), "// ---- generated launchers ----"]
    for spec in KERNELS:
        for real in (tuple(REAL_C) if spec.templated else ("float64",)):
            params = ", ".join(
                f"void* {p.name}" if p.is_pointer else f"{p.c_type(real)} {p.name}"
                for p in spec.params)
            call = ", ".join(_sim_arg(p, real) for p in spec.params)
            sym = spec.symbol(real)
            parts.append(
                f'extern "C" void {sim_launcher_name(spec.name, real)}'
                f"(unsigned grid_x, unsigned block_x, {params}) {{\n"
                f"    KC_SIM_LAUNCH(grid_x, block_x, ({sym}({call})));\n}}")
    return "\n".join(parts) + "\n"


def source_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]
