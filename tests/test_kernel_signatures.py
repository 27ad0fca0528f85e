"""The kernel signature table (``kcbatch/engines/launch.py``) checks itself
against ``kernels/kuramoto.cu``.

The sources that are compiled end with generated ``static_assert``s, one set
per kernel instantiation. These tests show that the asserts are there, that
the real table passes them under g++ (the gpu-sim build, no GPU needed), and
that a drifted table fails the build with a message naming the kernel and the
parameter — including drifts that the C++ launchers alone would convert
silently. Independently of the asserts, the table is compared with the
kernels' declarations parsed from the ``.cu`` text.
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path

import pytest

from kcbatch.engines import launch, source, why_unavailable

ROOT = Path(__file__).resolve().parent.parent
CU = ROOT / "kernels" / "kuramoto.cu"
NO_CXX = why_unavailable("gpu-sim")
needs_cxx = pytest.mark.skipif(NO_CXX is not None, reason=f"{NO_CXX}")

# What the spec's C types mean, written out here rather than taken from
# Param.c_type: T is the precision's real type, T2 its CUDA vector pair.
REALS = {"float32": ("float", "float2"), "float64": ("double", "double2")}


def _c(ctype: str, real: str) -> str:
    t, t2 = REALS[real]
    return re.sub(r"\bT\b", t, re.sub(r"\bT2\b", t2, ctype))


def _instances(spec) -> list[str]:
    return list(REALS) if spec.templated else ["float64"]


def _symbol(spec, real: str) -> str:
    return f"{spec.name}<{REALS[real][0]}>" if spec.templated else spec.name


def _cu_declarations() -> dict[str, tuple[bool, list[tuple[str, str]]]]:
    """kernel name -> (is a template, [(C type in spec notation, name)]), read
    from the ``__global__`` declarations of the .cu file."""
    text = re.sub(r"//[^\n]*", "", CU.read_text())
    out = {}
    for m in re.finditer(r"(template\s*<\s*typename\s+T\s*>\s*)?__global__\s+void\s+"
                         r"(?:__launch_bounds__\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)", text):
        params = []
        for p in m.group(3).split(","):
            p = " ".join(p.replace("__restrict__", " ").split())
            ctype, name = p.rsplit(" ", 1)
            ctype = ctype.replace("typename kc_vec2<T>::type", "T2").replace(" *", "*")
            params.append((ctype, name))
        out[m.group(2)] = (m.group(1) is not None, params)
    return out


def test_spec_table_equals_the_cu_declarations():
    decl = _cu_declarations()
    assert set(decl) == {s.name for s in launch.KERNELS}
    for spec in launch.KERNELS:
        templated, params = decl[spec.name]
        assert templated == spec.templated, spec.name
        assert params == [(p.ctype, p.name) for p in spec.params], spec.name


@pytest.mark.parametrize("which", ["sim", "gpu"])
def test_every_instantiation_has_its_generated_asserts(which):
    src = source.sim_source() if which == "sim" else source.gpu_source()
    n_asserts = 0
    for spec in launch.KERNELS:
        for real in _instances(spec):
            sym = _symbol(spec, real)
            types = ", ".join(_c(p.ctype, real) for p in spec.params)
            whole = f"static_assert(kc_same<decltype(&{sym}), void (*)({types})>::value,"
            assert src.count(whole) == 1, whole
            assert f"static_assert(kc_arity<decltype(&{sym})>::value == {len(spec.params)}, " \
                   f'"kernel {sym} ' in src
            for i, p in enumerate(spec.params):
                assert (f"static_assert(kc_same<kc_param<{i}, decltype(&{sym})>::type, "
                        f'{_c(p.ctype, real)}>::value, "kernel {sym}: parameter {i} ({p.name})'
                        ) in src
            n_asserts += 2 + len(spec.params)
    assert src.count("static_assert(") == n_asserts
    # In the sim source the checks come after the kernels and before the launchers.
    if which == "sim":
        assert src.index("kc_same<decltype(&") < src.index("// ---- generated launchers")


def _gxx_syntax(src: str, tmp_path: Path) -> subprocess.CompletedProcess:
    from kcbatch.engines.cxx import compiler
    from kcbatch.engines.sim import CXX_FLAGS
    cpp = tmp_path / "check.cpp"
    cpp.write_text(src)
    flags = [f for f in CXX_FLAGS if f not in ("-shared", "-fPIC", "-O2")]
    return subprocess.run([compiler(), *flags, "-fsyntax-only", str(cpp)],
                          capture_output=True, text=True, timeout=60)


@needs_cxx
@pytest.mark.parametrize("fast_math", [False, True])
def test_real_table_passes_the_asserts_under_gxx(tmp_path, fast_math):
    proc = _gxx_syntax(source.sim_source(fast_math=fast_math), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _drift(monkeypatch, spec_name: str, index: int, ctype: str | None) -> None:
    """Replace the KERNELS table the sources are generated from by one where
    parameter ``index`` of ``spec_name`` has ``ctype`` (None: is removed)."""
    def change(spec):
        if spec.name != spec_name:
            return spec
        params = list(spec.params)
        if ctype is None:
            del params[index]
        else:
            params[index] = dataclasses.replace(params[index], ctype=ctype)
        return dataclasses.replace(spec, params=tuple(params))
    monkeypatch.setattr(source, "KERNELS", tuple(change(s) for s in launch.KERNELS))


# (kernel, parameter index, drifted C type or None = dropped, expected message,
#  whether g++ accepts the drifted launchers when the asserts are left out)
DRIFTS = [
    ("rk4_stage", 1, "const long long*",
     "kernel rk4_stage<float>: parameter 1 (indices) is not const long long*", False),
    ("rk4_stage", 13, "int", "kernel rk4_stage<double>: parameter 13 (dt) is not int", True),
    ("sample_finalize", 3, "int", "kernel sample_finalize: parameter 3 (total) is not int", True),
    ("init_state", 0, "T*", "kernel init_state<float>: parameter 0 (theta0) is not float*", True),
    ("sample_partial", 6, None,
     "kernel sample_partial<double> does not have the 6 parameters", False),
]


@needs_cxx
@pytest.mark.parametrize("kernel,index,ctype,message,silent", DRIFTS,
                         ids=[f"{d[0]}-{d[1]}-{d[2]}" for d in DRIFTS])
def test_drifted_table_fails_the_gxx_build(monkeypatch, tmp_path, kernel, index, ctype,
                                          message, silent):
    _drift(monkeypatch, kernel, index, ctype)
    proc = _gxx_syntax(source.sim_source(), tmp_path)
    assert proc.returncode != 0
    assert "static assertion failed" in proc.stderr
    assert message in proc.stderr, proc.stderr[-3000:]
    sym = f"{kernel}<float>" if kernel != "sample_finalize" else kernel
    assert f"kernel {sym} does not have the signature of its KernelSpec '{kernel}'" \
        in proc.stderr
    if silent:
        # Without the asserts this drift builds: the launcher converts the
        # argument (or adds const) and the kernel would read the wrong bits.
        monkeypatch.setattr(source, "signature_checks", lambda: "")
        assert _gxx_syntax(source.sim_source(), tmp_path).returncode == 0


@needs_cxx
def test_checks_compare_exact_pointee_types_not_conversions(tmp_path):
    """The helpers on their own: top-level qualifiers are ignored (they are not
    part of a function type), everything else must match exactly."""
    src = source.signature_checks().split("static_assert", 1)[0] + """
void f(const int* __restrict p, const float x, long long n);
static_assert(kc_same<decltype(&f), void (*)(const int*, float, long long)>::value, "top");
static_assert(kc_arity<decltype(&f)>::value == 3, "arity");
static_assert(kc_same<kc_param<1, decltype(&f)>::type, float>::value, "p1");
static_assert(!kc_same<kc_param<0, decltype(&f)>::type, int*>::value, "pointee const");
static_assert(!kc_same<kc_param<2, decltype(&f)>::type, int>::value, "no conversion");
static_assert(kc_same<kc_param<3, decltype(&f)>::type, void>::value, "past the end");
"""
    proc = _gxx_syntax(src, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_drifted_table_fails_nvrtc(monkeypatch):
    from kcbatch.engines.nvrtc_check import compile_kernels, nvrtc_unavailable_reason
    why = nvrtc_unavailable_reason()
    if why is not None and os.environ.get("CI") != "true":  # CI installs NVRTC
        pytest.skip(why)
    _drift(monkeypatch, "rk4_stage", 11, "long long")
    with pytest.raises(RuntimeError) as info:
        compile_kernels("sm_80")
    assert "kernel rk4_stage<float>: parameter 11 (n_k) is not long long" in str(info.value)
