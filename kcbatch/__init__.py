"""kcbatch: the Kuramoto synchronization threshold over ensembles of BA networks.

Importing kcbatch never imports CuPy; the GPU backend is resolved on first use.
"""
from ._version import __version__
from .api import find_kc, hysteresis, simulate
from .batch import Batch, pack
from .config import ConfigError, IntegrationSpec, StudyConfig
from .converge import KcEstimates
from .engines import EngineUnavailable, available
from .graphs import barabasi_albert
from .records import RunRecord
from .study import StudyResult, run_study

__all__ = [
    "__version__",
    "Batch",
    "ConfigError",
    "EngineUnavailable",
    "IntegrationSpec",
    "KcEstimates",
    "RunRecord",
    "StudyConfig",
    "StudyResult",
    "available",
    "barabasi_albert",
    "find_kc",
    "hysteresis",
    "pack",
    "run_study",
    "simulate",
]
