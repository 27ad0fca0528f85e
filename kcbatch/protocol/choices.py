"""The closed sets a study chooses from, as types, and the one ``auto`` sentinel.

Every member is a ``StrEnum``: it equals, hashes and formats as its string,
so the CLI, TOML files, the API and stores keep their spellings
(``Coupling("mean-degree") == "mean-degree"``), while code compares members
instead of literals. :class:`Precision` is the one record of a real type:
its name, numpy type, C type and size.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AUTO", "Auto", "Converge", "Coupling", "Device", "GraphModel", "KernelStrategy",
           "OmegaDist", "PRECISIONS", "Precision", "Sweep", "is_auto", "precision"]


class _Choice(enum.StrEnum):
    """A member that shows as its string: ``repr(Coupling.RAW) == "'raw'"``, so
    messages that quote a value read as the user typed it."""

    def __repr__(self) -> str:
        return repr(self.value)


class Auto(_Choice):
    """``auto``: a value the study chooses when it starts (dt, batch, producers,
    t_transient, device, kernel). Equal to the string ``"auto"``."""

    AUTO = "auto"


AUTO = Auto.AUTO


def is_auto(value: Any) -> bool:
    """Whether ``value`` is the ``auto`` sentinel (or its string)."""
    return isinstance(value, str) and value == AUTO


class Coupling(_Choice):
    """The coupling normalisation ``w_i`` (README, "Coupling normalisations")."""

    DEGREE = "degree"  # 1 / max(k_i, 1)
    RAW = "raw"  # 1
    MEAN_DEGREE = "mean-degree"  # 1 / <k>
    GLOBAL = "global"  # 1 / N


class OmegaDist(_Choice):
    """The law of the natural frequencies."""

    NORMAL = "normal"
    LORENTZIAN = "lorentzian"
    UNIFORM = "uniform"
    DEGREE = "degree"  # omega_i = k_i


class GraphModel(_Choice):
    """The network models (``graph=``); :mod:`kcbatch.protocol.models` has their records."""

    BA = "ba"
    ER = "er"
    WS = "ws"
    POWERLAW = "powerlaw"


class Sweep(_Choice):
    """How the K grid is walked: every K from theta0, or adiabatically up then down."""

    INDEPENDENT = "independent"
    ADIABATIC = "adiabatic"


class Converge(_Choice):
    """How ``t_transient="auto"`` spends its integration (docs/design.md, "Step 6"):
    every coupling to each network's final window and refinement from theta0
    (exhaustive), or only the couplings that can still move the crossing and
    refinement continued from the converged bracket (adaptive)."""

    ADAPTIVE = "adaptive"
    EXHAUSTIVE = "exhaustive"


class Device(_Choice):
    """A concrete engine: the GPU kernels, the CPU engine, or the kernels built with g++."""

    GPU = "gpu"
    CPU = "cpu"
    GPU_SIM = "gpu-sim"


class KernelStrategy(_Choice):
    """The GPU kernels' strategy (docs/design.md): one launch per RK4 stage over
    the batch in device memory, or one block per (network, K) with its network
    in shared memory."""

    GLOBAL = "global"
    SHARED = "shared"


@dataclass(frozen=True)
class Precision:
    """One real type of the integrated state.

    ``name``: as users type it; ``dtype``: the numpy dtype; ``c_type``: the
    kernels' C type; ``itemsize``: bytes per value."""

    name: str
    dtype: np.dtype
    c_type: str

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def scalar(self) -> type:
        """The numpy scalar type (``np.float32``)."""
        return self.dtype.type

    def __str__(self) -> str:
        return self.name


PRECISIONS: dict[str, Precision] = {
    "float32": Precision("float32", np.dtype(np.float32), "float"),
    "float64": Precision("float64", np.dtype(np.float64), "double"),
}


def precision(value: Any) -> Precision:
    """The record of ``value``: a name (``"float32"``), a numpy type or dtype,
    or a record. ValueError for anything else."""
    if isinstance(value, Precision):
        return value
    if isinstance(value, str):
        if value in PRECISIONS:
            return PRECISIONS[value]
        raise ValueError(f"invalid precision={value!r}: must be one of {', '.join(PRECISIONS)}")
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in PRECISIONS:
        raise ValueError(f"invalid precision={value!r}: must be one of {', '.join(PRECISIONS)}")
    return PRECISIONS[name]
