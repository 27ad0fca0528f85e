"""What a Dask worker runs for a study: pure functions of the config and the runs.

A task receives the study's :class:`StudyConfig` (its protocol fields decide the
numbers; ``dt`` already resolved by the client) and a run range, generates the
networks from the run seeds (``pipeline.make_batch``; graphs are never
shipped), integrates them on the worker's own engine (``work.compute_records``)
and returns the records with the worker's name, device and seconds. The
records are those a single-process study computes for the same runs.

Expected failures come back as values, not exceptions, so that the client can
name the worker (an exception raised in a task reaches the client without it):
``WorkerProblem`` for an unusable device or a config the worker cannot run.
Nothing here imports dask at module level: ``distributed`` is asked for the
worker's address inside the task only.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from kcbatch.analysis.records import RunRecord
from kcbatch.engines import EngineUnavailable, get_engine, resolve_device
from kcbatch.inputs.pipeline import make_batch
from kcbatch.networks.io import GraphFileError
from kcbatch.protocol.config import ConfigError, StudyConfig
from kcbatch.run.batching import oom_retry_size, study_batch
from kcbatch.run.work_unit import compute_records
from kcbatch.version import __version__

# One batch on the engine at a time per worker process, whatever its thread
# count: numba's parallel regions must not be entered from two threads at
# once, and a GPU does not go faster with two batches. A second thread still
# generates the next batch's networks while the engine integrates.
_ENGINE_LOCK = threading.Lock()


@dataclass(frozen=True)
class WorkerProblem:
    """Why a worker could not run the study: ``kind`` "device" (the engine's
    EngineUnavailable message), "config" (ConfigError's param/value/allowed)
    "version" (its kcbatch differs from the client's) or "input" (it cannot read
    the study's network files)."""

    worker: str
    kind: str
    message: str
    param: str = ""
    value: object = None
    allowed: str = ""


@dataclass(frozen=True)
class WorkerPlan:
    """A worker's answer to :func:`probe`: the device its engine runs on and
    the batch size it would use for the study (the configured one, or for
    ``auto`` its engine's choice fitted to its memory and capped at about a
    minute of its work, as a single-process study's:
    :func:`kcbatch.run.batching.study_batch`)."""

    worker: str
    device: str
    batch: int
    notice: str | None = None


@dataclass(frozen=True)
class BatchOutcome:
    """One finished batch: ``records`` in run order, the worker that computed
    it, its device, the engine's seconds and the generation's seconds."""

    runs: list[int]
    records: list[RunRecord]
    worker: str
    device: str
    engine_seconds: float
    generate_seconds: float


def worker_name() -> str:
    """This worker's address (``tcp://host:port``), or "local" outside a worker."""
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _device(cfg: StudyConfig, worker: str):
    """(device, engine, notice) on this worker, or a WorkerProblem."""
    try:
        device, notice = resolve_device(cfg.device)
        return device, get_engine(device, cfg.fast_math, cfg.kernel), notice
    except EngineUnavailable as exc:
        return WorkerProblem(worker, "device", str(exc))


def probe(cfg: StudyConfig, pending: int, client_version: str) -> WorkerPlan | WorkerProblem:
    """Device and batch size this worker would use for ``pending`` runs of ``cfg``."""
    worker = worker_name()
    if client_version != __version__:
        return WorkerProblem(worker, "version",
                             f"kcbatch {__version__} on the worker, {client_version} on the "
                             f"client: install the same version on both (results could "
                             f"differ)")
    found = _device(cfg, worker)
    if isinstance(found, WorkerProblem):
        return found
    device, engine, notice = found
    try:
        # as a single-process study's: fitted to this worker's memory and, for
        # --batch auto, capped at about LOSS_SECONDS of this worker's time
        batch, _ = study_batch(cfg, engine, device, max(1, pending))
    except ConfigError as exc:
        return WorkerProblem(worker, "config", str(exc), exc.param, exc.value, exc.allowed)
    return WorkerPlan(worker, device, batch, notice)


def compute_batch(cfg: StudyConfig, runs: list[int]) -> BatchOutcome | WorkerProblem:
    """The records of ``runs`` of the study ``cfg``, computed on this worker."""
    worker = worker_name()
    found = _device(cfg, worker)
    if isinstance(found, WorkerProblem):
        return found
    device, engine, _ = found
    try:
        # As in run_study: an overflow shows as a failed run, not as a warning in the log.
        with np.errstate(all="ignore"):
            records, seconds, generated = records_for(engine, cfg, list(runs))
    except (GraphFileError, OSError) as exc:  # e.g. --graphs not on this machine's disk
        return WorkerProblem(worker, "input", f"{type(exc).__name__}: {exc}")
    return BatchOutcome(list(runs), records, worker, device, seconds, generated)


def records_for(engine, cfg: StudyConfig,
                runs: list[int]) -> tuple[list[RunRecord], float, float]:
    """(records, engine seconds, generation seconds) of ``runs``; a batch that
    does not fit the device's memory is split in halves (a run's records do not
    depend on the batch it is in), as run_study halves its batch."""
    item = make_batch(runs, cfg)
    try:
        with _ENGINE_LOCK:
            records, seconds = compute_records(engine, item, cfg)
        return records, seconds, item.gen_seconds
    except Exception as exc:
        half = oom_retry_size(exc, len(runs))
        if half is None:
            raise
    generated = item.gen_seconds
    del item
    engine.release_memory()
    a, b = records_for(engine, cfg, runs[:half]), records_for(engine, cfg, runs[half:])
    return a[0] + b[0], a[1] + b[1], generated + a[2] + b[2]


__all__ = ["BatchOutcome", "WorkerPlan", "WorkerProblem", "compute_batch", "probe",
           "records_for", "worker_name"]
