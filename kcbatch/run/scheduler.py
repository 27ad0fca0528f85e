"""Where a study's batches run: ``--scheduler`` / ``--scheduler-file``, parsed.

An execution option, not a protocol field (``config.PROTOCOL_FIELDS``): the
records are the same in one process and on any Dask cluster. This module never
imports dask, so that the CLI can check the flags and say what to install
before anything heavy is loaded; :mod:`kcbatch.run.cluster` runs the batches.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
from dataclasses import dataclass
from typing import overload

from kcbatch.protocol.config import ConfigError

DASK_EXTRA = 'pip install "kcbatch[dask]"'
DASK_CUDA_EXTRA = 'pip install "kcbatch[dask-cuda]"'
SCHEDULER_FORMS = ("local:N (N worker processes on this machine)",
                   "local-cuda (one worker per visible GPU)",
                   "a scheduler address such as tcp://host:8786")
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")


class ClusterError(RuntimeError):
    """The cluster failed the study at run time (no connection, scheduler lost,
    a batch that keeps killing workers): the message says what, in one line.
    Finished batches are in the store; the study can be resumed."""


@dataclass(frozen=True)
class SchedulerSpec:
    """One way to run batches on Dask.

    kind: "local" (a LocalCluster of ``workers`` processes), "local-cuda"
    (dask-cuda's LocalCUDACluster), "address" (connect to ``target``, a
    scheduler address) or "file" (connect through the scheduler file ``target``).
    """

    kind: str
    workers: int = 0
    target: str = ""

    def __str__(self) -> str:
        if self.kind == "local":
            return f"local:{self.workers}"
        if self.kind == "local-cuda":
            return "local-cuda"
        return self.target if self.kind == "address" else f"file {self.target}"

    @property
    def flag(self) -> str:
        """The option that selects it again, e.g. for the resume command."""
        if self.kind == "file":
            return f"--scheduler-file {self.target}"
        return f"--scheduler {self}"

    @property
    def needs_dask_cuda(self) -> bool:
        return self.kind == "local-cuda"


@overload
def parse_scheduler(scheduler: str, scheduler_file: None = None) -> SchedulerSpec: ...


@overload
def parse_scheduler(scheduler: str | None = None,
                    scheduler_file: str | os.PathLike | None = None) -> SchedulerSpec | None: ...


def parse_scheduler(scheduler: str | None = None,
                    scheduler_file: str | os.PathLike | None = None) -> SchedulerSpec | None:
    """The spec of ``--scheduler VALUE`` or ``--scheduler-file PATH`` (at most
    one of them), None for neither (one process, as without Dask). ConfigError
    naming the value and the allowed forms for a bad one."""
    if scheduler is not None and scheduler_file is not None:
        raise ConfigError("scheduler_file", str(scheduler_file),
                          f"cannot be combined with --scheduler {scheduler}: give one of them")
    if scheduler_file is not None:
        path = os.fspath(scheduler_file)
        if not os.path.isfile(path):
            raise ConfigError("scheduler_file", path,
                              "must be an existing scheduler file (written by "
                              "`dask scheduler --scheduler-file PATH`)")
        return SchedulerSpec("file", target=os.path.abspath(path))
    if scheduler is None:
        return None
    value = scheduler.strip()
    if value == "local-cuda":
        return SchedulerSpec("local-cuda")
    if value.startswith("local:"):
        n = value[len("local:"):]
        if n.isdigit() and int(n) >= 1:
            return SchedulerSpec("local", workers=int(n))
        raise ConfigError("scheduler", scheduler,
                          "local:N needs a number of worker processes N >= 1, e.g. local:2")
    if _ADDRESS.match(value):
        return SchedulerSpec("address", target=value)
    raise ConfigError("scheduler", scheduler, "must be one of " + "; ".join(SCHEDULER_FORMS))


def missing_extra(spec: SchedulerSpec) -> str | None:
    """None when the packages ``spec`` needs are installed, else the line saying
    which extra to install (checked without importing them)."""
    for module in ("dask", "distributed"):
        if importlib.util.find_spec(module) is None:
            return f"--scheduler {spec} needs dask and distributed: {DASK_EXTRA}"
    if spec.needs_dask_cuda and importlib.util.find_spec("dask_cuda") is None:
        return f"--scheduler local-cuda needs dask-cuda: {DASK_CUDA_EXTRA}"
    return None


def require_extra(spec: SchedulerSpec) -> None:
    """ConfigError naming the extra to install when ``spec`` cannot run here."""
    problem = missing_extra(spec)
    if problem is not None:
        raise ConfigError("scheduler", str(spec), problem)


def extra_lines() -> list[str]:
    """For ``kcbatch info``: the Dask packages installed (versions) or the extra
    to install, without importing them."""
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    dask, distributed, dask_cuda = (version(d) for d in ("dask", "distributed", "dask-cuda"))
    if dask and distributed:
        line = f"dask {dask}, distributed {distributed}: --scheduler usable"
    else:
        line = f"dask extra: not installed (--scheduler needs it: {DASK_EXTRA})"
    cuda = (f"dask-cuda {dask_cuda}: --scheduler local-cuda usable" if dask_cuda else
            f"dask-cuda: not installed (--scheduler local-cuda needs it: {DASK_CUDA_EXTRA})")
    return [line, cuda]
