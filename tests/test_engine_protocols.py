"""The engines' seams: the Engine/Simulation/Backend protocols, the one step
loop, and the CPU engine's independence from the kernels' launch code.

The CuPy backend is checked structurally (CuPy is not imported: its class is
compared with the protocol, and an instance is made without ``__init__``),
the gpu-sim backend both structurally and as a live instance.
"""
from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
from helpers import device_unusable
from test_architecture import PACKAGES, Project

from kcbatch.engines import BatchShape, Engine, Simulation, get_engine
from kcbatch.engines.backend import Backend
from kcbatch.engines.cpu import CpuSimulation
from kcbatch.engines.cpu.native import NativeSimulation
from kcbatch.engines.kernel_engine import KernelSimulation, predict_kernel_bytes
from kcbatch.engines.sizing import systems_limit
from kcbatch.engines.stepping import SteppingSimulation
from kcbatch.protocol.choices import precision

needs_sim = pytest.mark.skipif(device_unusable("gpu-sim") is not None,
                               reason=f"gpu-sim unavailable: {device_unusable('gpu-sim')}")

BACKEND_METHODS = ("to_device", "to_host", "launch", "launch_blocks", "shared_limit")
BACKEND_DATA = ("xp", "fast_math")


def _parameters(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _backend_classes():
    # Importing these modules imports no CuPy (checked below in a fresh process).
    from kcbatch.engines.cuda import CupyBackend
    from kcbatch.engines.sim import SimBackend
    return CupyBackend, SimBackend


@pytest.mark.parametrize("which", [0, 1], ids=["CupyBackend", "SimBackend"])
def test_both_backends_have_the_protocols_methods_with_its_signatures(which):
    cls = _backend_classes()[which]
    for name in BACKEND_METHODS:
        assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks {name}"
        assert _parameters(getattr(cls, name)) == _parameters(getattr(Backend, name)), name
    # the data members are set by __init__ (or on the class)
    init = inspect.getsource(cls)
    for name in BACKEND_DATA:
        assert f"self.{name} =" in init or f"    {name} =" in init, (cls.__name__, name)


@pytest.mark.parametrize("which", [0, 1], ids=["CupyBackend", "SimBackend"])
def test_both_backends_satisfy_the_runtime_protocol(which):
    cls = _backend_classes()[which]
    # An instance without __init__ (which would need CuPy or a g++ build), with
    # the data members __init__ sets: isinstance checks every member.
    obj = cls.__new__(cls)
    obj.xp, obj.fast_math = np, False
    assert isinstance(obj, Backend)
    assert not isinstance(object(), Backend)


@needs_sim
def test_the_gpu_sim_backend_and_engines_are_what_the_protocols_say():
    engine = get_engine("gpu-sim")
    assert isinstance(engine.backend, Backend)
    assert isinstance(engine, Engine) and isinstance(get_engine("cpu"), Engine)
    a = np.arange(3.0)
    assert engine.backend.to_host(engine.backend.to_device(a)) is a


def test_cuda_module_imports_no_cupy():
    code = ("import sys; import kcbatch.engines.cuda, kcbatch.engines.backend; "
            "print(any(m == 'cupy' or m.startswith('cupy.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_measure_loop():
    # The numba pass and the kernels' global strategy step and sample only;
    # the loop itself is SteppingSimulation's.
    for cls in (CpuSimulation, KernelSimulation):
        assert issubclass(cls, SteppingSimulation)
        assert cls.measure is SteppingSimulation.measure
        assert cls.advance is SteppingSimulation.advance
    assert issubclass(NativeSimulation, SteppingSimulation)


def test_simulations_satisfy_the_protocol():
    from kcbatch.inputs.pipeline import make_batch
    from kcbatch.protocol.config import StudyConfig
    cfg = StudyConfig(runs=2, nodes=30, m=2, k_num=3, seed=3, device="cpu")
    batch = make_batch([0, 1], cfg).batch
    cpu = get_engine("cpu")
    assert isinstance(cpu.start(batch, 0.05), Simulation)  # the native pass, where built
    assert isinstance(CpuSimulation(batch, 0.05), Simulation)


# ----------------------------------------------------------------------- what engines see

ENGINE_LAUNCH_SIDE = {"kcbatch.engines.launch", "kcbatch.engines.kernel_engine",
                      "kcbatch.engines.shared", "kcbatch.engines.source",
                      "kcbatch.engines.backend", "kcbatch.engines.cuda", "kcbatch.engines.sim"}


def test_the_cpu_engine_imports_none_of_the_kernels_launch_code():
    project = Project.load(PACKAGES)
    g = project.graph(type_checking=True)
    cpu = [m for m in project.modules if m.startswith("kcbatch.engines.cpu")]
    assert "kcbatch.engines.cpu.engine" in cpu
    seen, todo = set(), list(cpu)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(g.get(m, {}))
    assert not seen & ENGINE_LAUNCH_SIDE, sorted(seen & ENGINE_LAUNCH_SIDE)


def test_no_engine_module_knows_the_study_config():
    project = Project.load(PACKAGES)
    bad = [f"{project.where(imp)} imports {', '.join(imp.names)}" for imp in project.imports
           if imp.importer.startswith("kcbatch.engines") and "StudyConfig" in imp.names]
    assert not bad, bad


def test_the_kernels_byte_formula_is_the_one_of_its_arrays():
    # theta, acc, two (sin, cos) buffers; the packed graph and node_offset;
    # couplings, sample_partial's chunks and the samples.
    shape = BatchShape(nodes=1000, edges=2000, n_k=50, n_samples=60,
                       precision=precision("float32"))
    b, it, rows, nnz = 8, 4, 8 * 1000, 8 * 2 * 2000
    want = (rows * 50 * it * 6
            + (rows + 1) * 8 + nnz * 4 + rows * (4 + 3 * it) + (b + 1) * 8
            + b * 50 * it + b * 4 * 50 * 2 * 8 + b * 50 * 60 * 8)
    assert predict_kernel_bytes(shape, b) == want
    assert shape.packed_bytes(b) == 8 * (rows + 1) + 4 * nnz + rows * (4 + 3 * it)
    assert systems_limit(shape) == (2**31 - 1) // (1000 * 50)
