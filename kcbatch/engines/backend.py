"""Where the kernels of ``kernels/kuramoto.cu`` run: the :class:`Backend` protocol.

The kernels' launch sequence (``kernel_engine.py``, ``shared.py``) is written
once over a backend: CuPy on a CUDA device (``cuda.CupyBackend``) or the
kernels compiled for the CPU with g++ over numpy arrays (``sim.SimBackend``,
``gpu-sim``). A backend allocates arrays with ``xp`` (numpy's API: cupy or
numpy), copies host arrays in (:meth:`to_device`) and results out
(:meth:`to_host`, which waits for the launches before it: the one
synchronisation of a batch), and launches a kernel of the signature table
(``launch.py``) over threads (:meth:`launch`) or blocks (:meth:`launch_blocks`).
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from kcbatch.engines.launch import KernelSpec


@runtime_checkable
class Backend(Protocol):
    """What the kernels' launch sequence needs of a device."""

    xp: Any  # the array module: cupy or numpy (empty, empty_like, concatenate, ...)
    fast_math: bool

    def to_device(self, a: np.ndarray) -> Any:
        """``a`` as an array of this backend (the same array where that is the host)."""

    def to_host(self, a: Any) -> np.ndarray:
        """``a`` as a host array, once the launches before this call are done."""

    def launch(self, spec: KernelSpec, real: str, n_threads: int, args: list) -> None:
        """``spec``'s instantiation for ``real`` over ``n_threads`` threads (1-D, in
        blocks of ``launch.BLOCK``); ``args`` checked and cast by ``launch.py``."""

    def launch_blocks(self, spec: KernelSpec, real: str, grid: int, block: int,
                      shared_bytes: int, args: list) -> None:
        """A block-level kernel: ``grid`` blocks of ``block`` threads with
        ``shared_bytes`` of dynamic shared memory each."""

    def shared_limit(self) -> int:
        """Dynamic shared memory one block may use on this device (bytes)."""
