"""The CPU engine: the RK4 protocol over a packed batch on all cores.

``engine.py`` (:class:`CpuEngine`, the numba pass's :class:`CpuSimulation`),
``stage.py`` (the numba pass's RK4 stage), ``trig.py`` (its sin/cos),
``native.py`` (the native pass, ``kernels/kuramoto_cpu.cpp`` built with g++),
``state.py`` (what both passes share around the integration). Nothing here
imports the kernels' launch code (``engines/launch.py``, ``kernel_engine.py``).
"""
from __future__ import annotations

from kcbatch.engines.cpu.engine import CpuEngine, CpuSimulation

__all__ = ["CpuEngine", "CpuSimulation"]
