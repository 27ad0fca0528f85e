"""Where a study's batches run: ``--scheduler`` / ``--scheduler-file``, parsed.

An execution option, not a protocol field (``config.PROTOCOL_FIELDS``): the
records are the same in one process and on any Dask cluster. This module never
imports dask, so that the CLI can check the flags and say what to install
before anything heavy is loaded; :mod:`kcbatch.run.cluster` runs the batches.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from typing import overload

from kcbatch.protocol.config import ConfigError, NotARegularFile, read_regular_file

DASK_EXTRA = 'pip install "kcbatch[dask]"'
DASK_CUDA_EXTRA = 'pip install "kcbatch[dask-cuda]"'
SCHEDULER_FORMS = ("local:N (N worker processes on this machine)",
                   "local-cuda (one worker per visible GPU)",
                   "a scheduler address such as tcp://host:8786")
# local:N's bound (README, "Limits"): a worker process per CPU core this process
# may use (each worker integrates on its share of them, at least one), or this
# many where there are fewer cores; every worker is a Python process of its own.
MIN_LOCAL_WORKERS_LIMIT = 4


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def max_local_workers() -> int:
    """The most worker processes ``--scheduler local:N`` starts here."""
    return max(MIN_LOCAL_WORKERS_LIMIT, usable_cores())


# The addresses kcbatch connects to: tcp://HOST[:PORT], or tls://HOST[:PORT]
# with Dask's TLS settings (a scheduler in another process; inproc:// would be
# one inside this process, which kcbatch never starts, and ucx:// needs
# transports kcbatch does not install). HOST: a name, IPv4, or [IPv6].
_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?/?$")
_OTHER_PROTOCOL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# A scheduler file is a small JSON object (dask scheduler --scheduler-file).
MAX_SCHEDULER_FILE_BYTES = 10**6


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
        _check_scheduler_file(path)
        return SchedulerSpec("file", target=os.path.abspath(path))
    if scheduler is None:
        return None
    value = scheduler.strip()
    if value == "local-cuda":
        return SchedulerSpec("local-cuda")
    if value.startswith("local:"):
        n = value[len("local:"):]
        most = max_local_workers()
        if n.isdigit() and 1 <= int(n) <= most:
            return SchedulerSpec("local", workers=int(n))
        raise ConfigError("scheduler", scheduler,
                          f"local:N needs a number of worker processes N >= 1, e.g. local:2, "
                          f"and at most {most} (one per CPU core this process may use, or "
                          f"{MIN_LOCAL_WORKERS_LIMIT} on fewer cores: README, Limits)")
    problem = address_problem(value)
    if problem is None:
        return SchedulerSpec("address", target=value)
    raise ConfigError("scheduler", scheduler, problem)


def host_port(address: str) -> tuple[str, int]:
    """(host, port) of an address :func:`address_problem` accepts; the port
    defaults to Dask's scheduler port, 8786."""
    m = _ADDRESS.match(address)
    if m is None:
        raise ValueError(f"not a tcp:// or tls:// address: {address!r}")
    return m.group(2).strip("[]"), int(m.group(3)[1:]) if m.group(3) else 8786


def address_of_file(path: str) -> str:
    """The scheduler address a scheduler file holds, read and checked again
    (:func:`_check_scheduler_file`: the file may have changed since the options
    were read)."""
    return _scheduler_file_address(path)


def address_problem(address: str) -> str | None:
    """None for an address kcbatch connects to (tcp://HOST[:PORT], tls://...),
    else what is wrong with it and the forms allowed."""
    m = _ADDRESS.match(address)
    if m is not None:
        if m.group(3) is None or 1 <= int(m.group(3)[1:]) <= 65535:
            return None
        return f"has port {m.group(3)[1:]}: a TCP port is 1 to 65535"
    other = _OTHER_PROTOCOL.match(address)
    if other is not None and other.group(1).lower() not in ("tcp", "tls"):
        return (f"{other.group(1)}:// is not a transport kcbatch connects over: give the "
                f"scheduler's tcp://HOST:PORT (or tls://HOST:PORT with Dask's TLS settings)")
    return "must be one of " + "; ".join(SCHEDULER_FORMS)


def _check_scheduler_file(path: str) -> None:
    """ConfigError unless ``path`` is a scheduler file: a regular file (not a
    FIFO or a device) of at most MAX_SCHEDULER_FILE_BYTES holding a JSON
    object whose ``address`` is one kcbatch connects to."""
    _scheduler_file_address(path)


def _scheduler_file_address(path: str) -> str:
    """The address of the scheduler file ``path`` (:func:`_check_scheduler_file`'s
    checks, ConfigError naming scheduler_file)."""
    fix = "give the file `dask scheduler --scheduler-file PATH` writes"
    try:
        doc = json.loads(read_regular_file(path, MAX_SCHEDULER_FILE_BYTES).decode("utf-8"))
    except OSError as exc:
        raise ConfigError("scheduler_file", path,
                          f"must be a readable scheduler file ({exc.strerror or exc})") from None
    except NotARegularFile as exc:
        raise ConfigError("scheduler_file", path, f"must be a scheduler file; it {exc}") \
            from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ConfigError("scheduler_file", path, f"is not JSON, so not a Dask scheduler "
                                                  f"file; {fix}") from None
    address = doc.get("address") if isinstance(doc, dict) else None
    if not isinstance(address, str):
        raise ConfigError("scheduler_file", path, f"holds no scheduler address (a JSON object "
                                                  f"with \"address\": \"tcp://HOST:PORT\"); {fix}")
    problem = address_problem(address)
    if problem is not None:
        raise ConfigError("scheduler_file", path, f"holds the address {address!r}, which "
                                                  f"{problem}")
    return address


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
