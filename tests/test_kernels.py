"""The CUDA sources without a GPU: NVRTC compile, launch-wrapper checks,
source assembly, packaging. (Numerical parity of gpu-sim: test_correctness.py; a
gpu-sim study through the CLI: test_study.py::test_cli_study_matches_run_study_and_cpu.)"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kcbatch.engines import source as kernel_source
from kcbatch.engines import why_unavailable
from kcbatch.engines.launch import (
    KERNELS,
    SHARED_MAX_BLOCK,
    launch_rk4_stage,
    name_expressions,
)
from kcbatch.engines.nvrtc_check import (
    ARCHS,
    compile_kernels,
    format_report,
    nvrtc_unavailable_reason,
)
from kcbatch.engines.shared import H100_SHARED_BYTES

ROOT = Path(__file__).resolve().parent.parent
NVRTC_WHY = nvrtc_unavailable_reason()
# CI installs NVRTC (the test extra): there a missing compiler is a failure, not a skip.
needs_nvrtc = pytest.mark.skipif(NVRTC_WHY is not None and os.environ.get("CI") != "true",
                                 reason=f"{NVRTC_WHY}")


# One compile (~1.5 s of NVRTC) in the fast lane, sm_90 without fast math (the
# default build): it catches a kernel that no longer compiles, spills or outgrows
# its registers. The other arch / fast-math builds are slow.
@needs_nvrtc
@pytest.mark.parametrize("fast_math, arch", [
    pytest.param(fast_math, arch,
                 marks=() if (fast_math, arch) == (False, "sm_90") else pytest.mark.slow)
    for fast_math in (False, True) for arch in ARCHS])
def test_every_kernel_compiles_with_nvrtc(arch, fast_math):
    assert NVRTC_WHY is None, NVRTC_WHY
    res = compile_kernels(arch, fast_math=fast_math)
    print(f"\n{format_report([res])}\n{res.log if res.warnings else ''}")
    assert res.cubin_bytes > 0
    if not res.has_report:
        from kcbatch.engines.nvrtc_check import nvrtc_version
        # Seen with NVRTC 13.0 only; the version CI installs must report.
        assert nvrtc_version() < (13, 5), "NVRTC compiled but returned no ptxas -v report"
        pytest.skip(f"NVRTC {nvrtc_version()} returned no ptxas report for this compile")
    assert sorted(k.kernel for k in res.kernels) == sorted(name_expressions())
    assert not res.warnings, res.warnings
    # integrate_shared's shared memory is all dynamic: the report adds the
    # default network's bytes, within an H100 block in float32.
    shared = {k.kernel: k for k in res.kernels if k.kernel.startswith("integrate_shared")}
    assert shared and all(k.static_smem == 0 for k in shared.values())
    line = next(ln for ln in format_report([res]).splitlines() if "integrate_shared<float>" in ln)
    assert 0 < int(line.split()[-1]) <= H100_SHARED_BYTES, line
    for k in res.kernels:
        # Spills would put the gather loop's accumulators (and integrate_shared's
        # per-row state) in local memory.
        assert k.spill_stores == 0 and k.spill_loads == 0, k
        # integrate_shared's block may reach its __launch_bounds__: 64 K registers
        # per block; the 1-D kernels keep to 64 per thread for occupancy.
        most = (65536 // SHARED_MAX_BLOCK["float32" if "<float>" in k.kernel else "float64"]
                if k.kernel.startswith("integrate_shared") else 64)
        assert 0 < k.registers <= most, k


def test_sources_change_with_every_file_and_option(monkeypatch):
    """CuPy's cache keys on the source string: every kernel file and option
    must be part of it (nothing is #included)."""
    base_gpu = kernel_source.gpu_source()
    base_sim = kernel_source.sim_source()
    assert "#include" not in base_gpu.replace("#include <", "")  # no project headers
    assert kernel_source.gpu_source(fast_math=True) != base_gpu
    assert "#define KC_FAST_MATH 1" in kernel_source.gpu_source(fast_math=True)
    real_read = kernel_source.kernel_text
    for name in (kernel_source.KERNEL_FILE, kernel_source.SIM_HEADER):
        monkeypatch.setattr(kernel_source, "kernel_text",
                            lambda n, name=name: real_read(n) + ("\n// edit\n" if n == name else ""))
        assert kernel_source.sim_source() != base_sim
        if name == kernel_source.KERNEL_FILE:
            assert kernel_source.gpu_source() != base_gpu
        monkeypatch.setattr(kernel_source, "kernel_text", real_read)


def test_sim_launchers_cover_every_kernel():
    src = kernel_source.sim_source()
    for spec in KERNELS:
        for real in (("float32", "float64") if spec.templated else ("float64",)):
            # block-level kernels report whether OpenMP made a whole team
            ret = "int" if spec.block_level else "void"
            assert f'extern "C" {ret} {kernel_source.sim_launcher_name(spec.name, real)}(' in src


def _stage_args(rows=6, n_k=3, b=2, real="float32"):
    rng = np.random.default_rng(0)
    indptr = np.array([0, 1, 2, 2, 3, 4, 4], dtype=np.int64)
    indices = np.array([1, 0, 4, 3], dtype=np.int32)
    return dict(
        indptr=indptr, indices=indices,
        weight=np.ones(rows, real), omega=rng.normal(size=rows).astype(real),
        row_net=np.array([0, 0, 0, 1, 1, 1], np.int32), couplings=np.ones((b, n_k), real),
        sc_in=np.zeros((rows, n_k, 2), real), sc_out=np.zeros((rows, n_k, 2), real),
        theta=np.zeros((rows, n_k), real), acc=np.zeros((rows, n_k), real))


class _Recorder:
    xp = np

    def __init__(self):
        self.calls = []

    def launch(self, spec, real, n_threads, args):
        self.calls.append((spec.name, real, n_threads, args))


def test_launch_wrapper_casts_scalars_and_counts_threads():
    be = _Recorder()
    launch_rk4_stage(be, "float32", *_stage_args().values(), stage=2, dt=0.05)
    name, real, n_threads, args = be.calls[0]
    assert (name, real, n_threads) == ("rk4_stage", "float32", 18)
    assert type(args[-1]) is np.float32 and type(args[-2]) is np.int32
    assert type(args[-4]) is np.int32  # total: int (32-bit indexing)


@pytest.mark.parametrize("mutate,err,words", [
    (lambda a: a.update(omega=a["omega"].astype(np.float64)), TypeError, ["omega", "float64"]),
    (lambda a: a.update(indices=a["indices"].astype(np.int64)), TypeError, ["indices", "int64"]),
    (lambda a: a.update(theta=np.zeros((6, 6), np.float32)[:, ::2]), ValueError,
     ["theta", "contiguous"]),
    (lambda a: a.update(acc=np.zeros((6, 4), np.float32)), ValueError, ["acc", "shape"]),
    (lambda a: a.update(sc_in=np.zeros((6, 3), np.float32)), ValueError, ["sc_in", "[R, nK, 2]"]),
    (lambda a: a.update(couplings=np.ones((2, 2), np.float32)), ValueError, ["couplings"]),
])
def test_launch_wrapper_rejects_bad_arrays(mutate, err, words):
    args = _stage_args()
    mutate(args)
    be = _Recorder()
    with pytest.raises(err) as info:
        launch_rk4_stage(be, "float32", *args.values(), stage=0, dt=0.05)
    for w in words:
        assert w in str(info.value)
    assert not be.calls


def test_launch_wrapper_rejects_bad_stage():
    with pytest.raises(ValueError, match="stage=4"):
        launch_rk4_stage(_Recorder(), "float32", *_stage_args().values(), stage=4, dt=0.05)


@pytest.mark.slow  # gpu-sim, like the gpu-sim cases of the device parametrisation
@pytest.mark.skipif(why_unavailable("gpu-sim") is not None, reason="no C++ compiler")
@pytest.mark.parametrize("fast_math", [False, True])
def test_gpu_sim_matches_cpu_engine_on_ba_batch(fast_math):
    import kcbatch
    from kcbatch.networks import barabasi_albert
    rng = np.random.default_rng(5)
    graphs = [barabasi_albert(n, 3, s) for n, s in ((400, 1), (250, 2), (333, 3))]
    omega = [rng.normal(0, 0.5, len(g[0]) - 1) for g in graphs]
    theta0 = [rng.uniform(0, 2 * np.pi, len(g[0]) - 1) for g in graphs]
    k = np.linspace(0, 4, 7)
    kw = dict(dt=0.05, t_transient=1.0, t_measure=1.0, sample_every=4)
    cpu = kcbatch.simulate(graphs, omega, theta0, k, device="cpu", **kw)
    sim = kcbatch.simulate(graphs, omega, theta0, k, device="gpu-sim", fast_math=fast_math, **kw)
    assert np.max(np.abs(sim - cpu)) <= 1e-4
    cpu64 = kcbatch.simulate(graphs, omega, theta0, k, device="cpu", precision="float64", **kw)
    sim64 = kcbatch.simulate(graphs, omega, theta0, k, device="gpu-sim", precision="float64", **kw)
    assert np.max(np.abs(sim64 - cpu64)) <= 1e-12


def test_cuda_backend_failure_is_cached_with_one_line(monkeypatch):
    from kcbatch.engines import EngineUnavailable, cuda
    monkeypatch.setattr(cuda, "_state", cuda.GpuProblem("no CUDA device found", False))
    assert cuda.unavailable_reason() == "no CUDA device found"
    with pytest.raises(EngineUnavailable) as info:
        cuda.cupy()
    assert "\n" not in str(info.value) and "no CUDA device found" in str(info.value)


@pytest.mark.slow
def test_cpu_path_never_imports_cupy():
    code = ("import sys, numpy as np, kcbatch, networkx as nx\n"
            "g = nx.path_graph(5)\n"
            "kcbatch.simulate([g], np.zeros((1, 5)), np.zeros((1, 5)), [0.0, 1.0], device='cpu',"
            " dt=0.1, t_transient=0.1, t_measure=0.2, sample_every=1)\n"
            "assert 'cupy' not in sys.modules, 'cupy imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.slow  # builds a wheel
def test_kernel_sources_ship_inside_the_wheel(tmp_path):
    # Build from a clean copy: setuptools reuses a build/ folder left in the
    # checkout, which would hide a module missing from setup.cfg.
    src_tree = tmp_path / "src"
    shutil.copytree(ROOT, src_tree, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".gpu_*", "tests",
        "bench", "docs"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(src_tree)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("kcbatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("kcbatch/kernels/kuramoto.cu", "kcbatch/kernels/cuda_sim.h",
              "kcbatch/kernels/__init__.py"):
        assert f in names, names
    src = zipfile.ZipFile(wheel).read("kcbatch/kernels/kuramoto.cu").decode()
    assert src == (ROOT / "kernels" / "kuramoto.cu").read_text()
    # Every module of the source tree ships: a subpackage missing from setup.cfg's
    # `packages` would install a kcbatch without it (the editable install hides that).
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "kcbatch").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules and not modules - set(names), sorted(modules - set(names))


def test_launch_wrapper_refuses_more_systems_than_32_bit_indexing_allows():
    class Huge:  # only its shape is read before the refusal
        shape = (2**26, 64)

    with pytest.raises(ValueError, match="at most"):
        launch_rk4_stage(_Recorder(), "float32", *([None] * 8), Huge(), None, stage=0, dt=0.05)


def test_batch_is_capped_so_kernels_can_index_it():
    from kcbatch.engines import get_engine
    from kcbatch.engines.launch import MAX_SYSTEMS
    from kcbatch.protocol.config import StudyConfig
    from kcbatch.run.batching import choose_batch
    cfg = StudyConfig(nodes=10_000, k_num=50, batch=100_000, runs=100_000, seed=1)
    b = choose_batch(cfg, get_engine("gpu-sim"), 100_000)
    assert b * 10_000 * 50 <= MAX_SYSTEMS < (b + 1) * 10_000 * 50
