"""Assembling the CUDA C source that is compiled, for the GPU and for gpu-sim.

(The CPU engine's native pass assembles its own, ``cpu/native.py``.)

Options reach the kernels as a generated ``#define`` preamble in front of the
file's text (the file keeps ``#ifndef`` defaults). Project headers are pasted
in, never ``#include``d: CuPy's compile cache keys on the source string it is
given, so an edit of any kernel file must change that string.

Both sources end with generated ``static_assert``s (:func:`signature_checks`)
that every kernel instantiation has exactly the parameter types its
:class:`~kcbatch.engines.launch.KernelSpec` declares: the launch checks,
NVRTC name expressions and gpu-sim launchers all trust that table, and a
drifted type would otherwise be converted silently (an ``int`` passed where
the kernel takes ``long long``). The gpu-sim build runs them with g++ in CI,
without a GPU; a static_assert emits no code.
"""
from __future__ import annotations

from kcbatch.engines.cxx import kernel_text
from kcbatch.engines.launch import (
    KERNELS,
    REAL_C,
    SHARED_MAX_BLOCK,
    SHARED_ROWS,
    KernelSpec,
    Param,
)

KERNEL_FILE = "kuramoto.cu"
SIM_HEADER = "cuda_sim.h"


def preamble(*, fast_math: bool) -> str:
    # The shared strategy's sizes come from launch.py, which the host's fit test reads.
    return (f"#define KC_FAST_MATH {int(bool(fast_math))}\n"
            f"#define KC_SHARED_ROWS_FLOAT {SHARED_ROWS['float32']}\n"
            f"#define KC_SHARED_ROWS_DOUBLE {SHARED_ROWS['float64']}\n"
            f"#define KC_SHARED_BLOCK_FLOAT {SHARED_MAX_BLOCK['float32']}\n"
            f"#define KC_SHARED_BLOCK_DOUBLE {SHARED_MAX_BLOCK['float64']}\n")


def _instantiations(spec: KernelSpec) -> tuple[str, ...]:
    """Precision names of a spec's instantiations (one, any, for a non-template)."""
    return tuple(REAL_C) if spec.templated else ("float64",)


# Type helpers of the checks, written out because NVRTC has no <type_traits>.
# kc_param<I, F>::type is parameter I of function pointer type F (void past the
# end, so a missing parameter fails its assert instead of breaking the build).
# Values are enumerators: NVRTC emits `static const` members as device globals
# (a table in the cubin), enumerators are never objects.
_CHECK_HELPERS = """\
template <typename A, typename B> struct kc_same { enum { value = 0 }; };
template <typename A> struct kc_same<A, A> { enum { value = 1 }; };
template <unsigned I, typename... A> struct kc_nth { typedef void type; };
template <typename H, typename... A> struct kc_nth<0, H, A...> { typedef H type; };
template <unsigned I, typename H, typename... A> struct kc_nth<I, H, A...> {
    typedef typename kc_nth<I - 1, A...>::type type;
};
template <unsigned I, typename F> struct kc_param;
template <unsigned I, typename... A> struct kc_param<I, void (*)(A...)> : kc_nth<I, A...> {};
template <typename F> struct kc_arity;
template <typename... A> struct kc_arity<void (*)(A...)> { enum { value = sizeof...(A) }; };"""


def signature_checks() -> str:
    """``static_assert``s that each kernel instantiation's function type is
    ``void (*)(<the spec's C types>)``, then that its arity and each parameter
    match (so the message names the parameter that drifted). Top-level
    qualifiers of parameters (``const``, ``__restrict__``) are not part of a
    function type: the pointee types and scalars are compared exactly."""
    lines = ['#line 1 "generated-signature-checks (kcbatch/engines/launch.py)"',
             _CHECK_HELPERS]
    for spec in KERNELS:
        where = f"its KernelSpec {spec.name!r} in kcbatch/engines/launch.py"
        for real in _instantiations(spec):
            sym = spec.symbol(real)
            fn = f"decltype(&{sym})"
            types = [p.c_type(real) for p in spec.params]
            declared = ", ".join(f"{t} {p.name}" for t, p in zip(types, spec.params, strict=True))
            lines.append(f"static_assert(kc_same<{fn}, void (*)({', '.join(types)})>::value,\n"
                         f'    "kernel {sym} does not have the signature of {where}: '
                         f'({declared})");')
            lines.append(f"static_assert(kc_arity<{fn}>::value == {len(types)}, "
                         f'"kernel {sym} does not have the {len(types)} parameters of {where}");')
            for i, (t, p) in enumerate(zip(types, spec.params, strict=True)):
                lines.append(f"static_assert(kc_same<kc_param<{i}, {fn}>::type, {t}>::value, "
                             f'"kernel {sym}: parameter {i} ({p.name}) is not {t} as {where} '
                             f'says");')
    return "\n".join(lines) + "\n"


def gpu_source(*, fast_math: bool = False) -> str:
    """The source given to NVRTC (``cupy.RawModule``): preamble, kernel file,
    signature checks."""
    return (preamble(fast_math=fast_math) + f"#line 1 \"{KERNEL_FILE}\"\n"
            + kernel_text(KERNEL_FILE) + "\n" + signature_checks())


def _sim_arg(p: Param, real: str) -> str:
    return f"({p.c_type(real)}){p.name}" if p.is_pointer else p.name


def sim_launcher_name(spec_name: str, real: str) -> str:
    return f"kc_sim_{spec_name}_{real}"


def sim_source(*, fast_math: bool = False) -> str:
    """The C++ translation unit of the gpu-sim backend: the CUDA built-ins
    header, the kernel file, the signature checks, and one ``extern "C"``
    launcher per instantiation (signatures generated from
    :mod:`kcbatch.engines.launch`)."""
    parts = [preamble(fast_math=fast_math), kernel_text(SIM_HEADER), f"#line 1 \"{KERNEL_FILE}\"",
             kernel_text(KERNEL_FILE), signature_checks(), "// ---- generated launchers ----"]
    for spec in KERNELS:
        for real in _instantiations(spec):
            params = ", ".join(
                f"void* {p.name}" if p.is_pointer else f"{p.c_type(real)} {p.name}"
                for p in spec.params)
            call = ", ".join(_sim_arg(p, real) for p in spec.params)
            sym = spec.symbol(real)
            if spec.block_level:
                # Returns 0, or 1 when OpenMP could not make a team of block_x threads.
                parts.append(
                    f'extern "C" int {sim_launcher_name(spec.name, real)}'
                    f"(unsigned grid_x, unsigned block_x, unsigned long long smem_bytes, "
                    f"{params}) {{\n    int status;\n"
                    f"    KC_SIM_LAUNCH_BLOCKS(grid_x, block_x, smem_bytes, status, "
                    f"({sym}({call})));\n    return status;\n}}")
                continue
            parts.append(
                f'extern "C" void {sim_launcher_name(spec.name, real)}'
                f"(unsigned grid_x, unsigned block_x, {params}) {{\n"
                f"    KC_SIM_LAUNCH(grid_x, block_x, ({sym}({call})));\n}}")
    return "\n".join(parts) + "\n"
