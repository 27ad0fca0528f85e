"""kcbatch: the Kuramoto synchronization threshold over ensembles of random networks
(Barabasi-Albert by default; Erdos-Renyi, Watts-Strogatz, power law, or graph files).

Importing kcbatch never imports CuPy; the GPU backend is resolved on first use.
"""
from kcbatch import theory
from kcbatch.analysis.converge import KcEstimates
from kcbatch.analysis.records import RunRecord
from kcbatch.api import find_kc, hysteresis, simulate
from kcbatch.engines import EngineUnavailable, available
from kcbatch.inputs.batch import Batch, pack
from kcbatch.networks import barabasi_albert
from kcbatch.protocol.config import ConfigError, IntegrationSpec, StudyConfig
from kcbatch.run.study import StudyResult, run_study
from kcbatch.version import __version__

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
    "theory",
]
