"""kcbatch: the Kuramoto synchronization threshold over ensembles of random networks
(Barabasi-Albert by default; Erdos-Renyi, Watts-Strogatz, power law, or graph files).

Importing kcbatch never imports CuPy (the GPU backend is resolved on first use)
nor pandas (imported by ``kcbatch.load``, the notebook view of a study).
"""
# ruff: noqa: E402  (the CLI's SIGINT handler goes in before the heavy imports below)
import multiprocessing as _multiprocessing
import signal as _signal
import sys as _sys


def _interrupted(signum, _frame):  # pragma: no cover - ends the process
    _sys.stderr.write("interrupted (SIGINT)\n")
    raise SystemExit(130)


# Started as the command line (`python -m kcbatch`, during whose package import
# argv[0] is "-m", or the `kcbatch` script): a Ctrl-C outside a study (this
# import, reading the options, report, merge) ends the process with one line
# and status 130 instead of a traceback; a study's own handler
# (kcbatch.cli.signals) takes over while it computes. Imported as a library,
# nothing changes; nor in a process multiprocessing started (a local Dask
# worker, which inherits the script's argv and ignores SIGINT).
_argv0 = (getattr(_sys, "argv", None) or [""])[0]
if (_argv0 == "-m" or _argv0.replace("\\", "/").rsplit("/", 1)[-1] in ("kcbatch", "kcbatch.exe")
        ) and _multiprocessing.parent_process() is None:
    try:
        _signal.signal(_signal.SIGINT, _interrupted)
    except ValueError:  # not the main thread: the default handler stays
        pass

from kcbatch import theory
from kcbatch.analysis.converge import KcEstimates
from kcbatch.analysis.records import RunRecord
from kcbatch.api import find_kc, hysteresis, simulate
from kcbatch.engines import EngineUnavailable, available
from kcbatch.export.notebook import LoadedScan, LoadedStudy, load
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
    "LoadedScan",
    "LoadedStudy",
    "RunRecord",
    "StudyConfig",
    "StudyResult",
    "available",
    "barabasi_albert",
    "find_kc",
    "hysteresis",
    "load",
    "pack",
    "run_study",
    "simulate",
    "theory",
]
