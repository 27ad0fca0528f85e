"""Compile the kernels with NVRTC, without a GPU, and read the resource report.

Uses the small ctypes binding in ``nvrtc.py``, which needs the NVRTC library
but no device, driver or CuPy. The compile is the one CuPy performs at run
time (same source, same name expressions), done to a cubin for a real
architecture so ptxas reports the registers, stack and spills of every kernel.

Beside registers, the report gives each kernel's static shared memory (ptxas)
and, for integrate_shared, the dynamic shared memory a block of the default
network takes (a BA network of 10^4 nodes, m = 3, as the default study draws;
``shared.py`` computes it) against the H100's 227 KB.

Run ``python -m kcbatch.engines.nvrtc_check`` to print the report.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import numpy as np

from kcbatch.engines import nvrtc
from kcbatch.engines.launch import name_expressions
from kcbatch.engines.source import gpu_source

ARCHS = ("sm_80", "sm_90")


@dataclass(frozen=True)
class KernelResources:
    arch: str
    kernel: str  # name expression, e.g. rk4_stage<float>
    registers: int
    stack_bytes: int
    spill_stores: int
    spill_loads: int
    static_smem: int = 0  # bytes of __shared__ arrays (ptxas "bytes smem")


@dataclass(frozen=True)
class CompileResult:
    arch: str
    fast_math: bool
    log: str
    cubin_bytes: int
    kernels: tuple[KernelResources, ...]

    @property
    def has_report(self) -> bool:
        """False when NVRTC returned no ptxas -v output (NVRTC 13.0 on an H100
        machine did so for most compiles of a process; 13.5 always reports)."""
        return "ptxas info" in self.log

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.log.splitlines() if "warning" in line.lower()]


def nvrtc_unavailable_reason() -> str | None:
    """None when NVRTC loads, else one line: why, and how to get it."""
    try:
        nvrtc.version()
    except (nvrtc.NvrtcUnavailable, nvrtc.NvrtcError) as exc:
        return f"NVRTC not loadable ({exc}); fix: pip install nvidia-cuda-nvrtc"
    return None


_FUNC = re.compile(r"Function properties for (\S+)\n.*?(\d+) bytes stack frame, (\d+) bytes "
                   r"spill stores, (\d+) bytes spill loads", re.S)
_REGS = re.compile(r"Compiling entry function '(\S+)' for '(\S+)'\n(?:.*\n)*?.*?Used (\d+) "
                   r"registers([^\n]*)")
_SMEM = re.compile(r"(\d+) bytes smem")


def compile_kernels(arch: str = "sm_90", *, fast_math: bool = False) -> CompileResult:
    """NVRTC-compile every kernel instantiation for ``arch`` (e.g. ``sm_90``)."""
    exprs = name_expressions()
    opts = [f"-arch={arch}", "-std=c++17", "-Xptxas=-v"]
    try:
        out = nvrtc.compile_program(gpu_source(fast_math=fast_math), "kuramoto.cu", opts, exprs)
    except nvrtc.NvrtcError as exc:
        raise RuntimeError(f"NVRTC failed for {arch}: {exc}") from None
    log, cubin = out.log, out.cubin
    lowered = {mangled: ne for ne, mangled in out.lowered.items()}
    stack = {m[0]: (int(m[1]), int(m[2]), int(m[3])) for m in _FUNC.findall(log)}
    kernels = []
    for mangled, _arch, regs, rest in _REGS.findall(log):
        if mangled in lowered:
            st = stack.get(mangled, (0, 0, 0))
            smem = _SMEM.search(rest)
            kernels.append(KernelResources(arch, lowered[mangled], int(regs), *st,
                                           static_smem=int(smem.group(1)) if smem else 0))
    return CompileResult(arch, fast_math, log, len(cubin), tuple(kernels))


def nvrtc_version() -> tuple[int, int]:
    return nvrtc.version()


def default_dynamic_shared() -> dict[str, int | None]:
    """Dynamic shared bytes per block of integrate_shared for one network of
    the default study (BA, N = 10^4, m = 3), by precision; None where it does
    not fit an H100 block."""
    from kcbatch.engines.shared import (
        H100_SHARED_BYTES,
        batch_misfit,
        default_block,
        prepare,
        shared_bytes,
    )
    from kcbatch.inputs.batch import pack
    from kcbatch.networks import barabasi_albert
    indptr, indices = barabasi_albert(10_000, 3, 1)
    out: dict[str, int | None] = {}
    for real in ("float32", "float64"):
        batch = pack([(indptr, indices)], [np.zeros(10_000)], [np.zeros(10_000)],
                     np.ones((1, 1)), real)
        inp = prepare(batch)
        out[real] = (None if batch_misfit(batch, H100_SHARED_BYTES) else
                     shared_bytes(inp.max_nodes, inp.max_nnz, inp.max_chunks,
                                  default_block(inp.max_nodes, real), np.dtype(real).itemsize))
    return out


def format_report(results: list[CompileResult]) -> str:
    dyn = default_dynamic_shared()
    lines = [f"{'arch':6} {'fast':4} {'kernel':28} {'regs':>4} {'stack':>5} {'spill st':>8} "
             f"{'spill ld':>8} {'smem':>5} {'dyn smem (default N)':>20}"]
    for res in results:
        if not res.has_report:
            lines.append(f"{res.arch:6} {str(res.fast_math)[0]:4} compiled ({res.cubin_bytes} "
                         f"bytes of cubin); NVRTC {nvrtc_version()} returned no ptxas report")
        for k in sorted(res.kernels, key=lambda k: k.kernel):
            if k.kernel.startswith("integrate_shared"):
                d = dyn["float32" if "<float>" in k.kernel else "float64"]
                dyn_text = "does not fit" if d is None else str(d)
            else:
                dyn_text = "-"
            lines.append(f"{k.arch:6} {str(res.fast_math)[0]:4} {k.kernel:28} {k.registers:4d} "
                         f"{k.stack_bytes:5d} {k.spill_stores:8d} {k.spill_loads:8d} "
                         f"{k.static_smem:5d} {dyn_text:>20}")
        for w in res.warnings:
            lines.append(f"  warning ({res.arch}): {w}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    ap = argparse.ArgumentParser(description="NVRTC resource report of every kernel")
    ap.add_argument("--arch", action="append", choices=ARCHS,
                    help="compile for this architecture only (repeatable; default: all)")
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    args = ap.parse_args(argv)
    reason = nvrtc_unavailable_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    results = [compile_kernels(a, fast_math=f) for a in (args.arch or ARCHS)
               for f in (False, True)]
    print(format_report(results))
    if args.json:
        rows = [dict(vars(k), fast_math=r.fast_math) for r in results for k in r.kernels]
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"nvrtc": ".".join(map(str, nvrtc_version())), "kernels": rows,
                       "default_dynamic_shared": default_dynamic_shared()}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
