"""The one batch planner: how many networks a batch holds, what it costs, and
what to do when it does not fit. A study (``run/study.py``), a Dask worker
(``run/cluster_task.py``) and ``kcbatch tune`` ask it; nothing else decides a
batch size.

* **Layout.** :func:`batch_shape` is the networks a study's batches really
  hold, as the engines see them (:class:`~kcbatch.engines.BatchShape`): an
  adiabatic sweep keeps one coupling column per network and takes ``k_num``
  networks per ``--batch`` unit (:func:`networks_per_unit`), the same (row, K)
  systems as the independent protocol's batch; :func:`unit_shape` is one
  ``--batch`` unit as one network of ``k_num`` systems, what ``--batch auto``
  sizes.
* **Size.** :func:`choose_batch`: the configured batch or, for ``auto`` (the
  default), the engine's ``auto_batch`` capped so that a batch holds at most
  about :data:`~kcbatch.run.time_estimate.LOSS_SECONDS` of work (what an
  interrupted study can lose), and always by the runs left and the engine's
  32-bit limit;
  :func:`fitted_batch`: that, fitted to the host memory (:func:`fit_batch`);
  :func:`study_batch`: the batch a study's runs go in, with the time estimate
  that caps it (a single-process study and each Dask worker's probe).
* **Bytes.** :func:`estimate`: what a study holds at its peak, from the
  producers' batches (:func:`predict_batch_bytes`, :func:`packed_batch_bytes`)
  and the engine's own formula (``Engine.predict_bytes``, which only this
  module calls).
* **Out of memory.** :func:`is_oom` recognises a device's or the host's
  out-of-memory error; :func:`oom_retry_size` is the batch to retry with
  (half the one that failed).

Host memory: a study holds, at its peak, the batches the ``producers`` threads
are making (each with its graphs, their generator's scratch arrays and the
packed copy), ``PREFETCH`` finished batches waiting (packed), and the batch the
engine integrates (the engine's ``predict_bytes`` on the CPU engines; on a GPU
the host keeps only the packed batch and the samples copied back).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from kcbatch.engines import BatchShape, Engine
from kcbatch.inputs.graph_source import network_size
from kcbatch.inputs.pipeline import PREFETCH, producer_threads
from kcbatch.protocol.choices import Device, is_auto, precision
from kcbatch.protocol.config import ConfigError, StudyConfig, format_bytes
from kcbatch.run.time_estimate import LOSS_SECONDS, StudyEstimate, estimate_study

__all__ = ["MemoryEstimate", "available_bytes", "batch_networks", "batch_shape",
           "choose_batch", "device_bytes", "memory_estimate", "fit_batch", "fitted_batch",
           "for_pending", "is_oom", "loss_capped", "study_batch",
           "networks_per_unit", "oom_retry_size", "packed_batch_bytes", "predict_batch_bytes",
           "unit_shape"]


# ------------------------------------------------------------------------------ layout

def networks_per_unit(cfg: StudyConfig) -> int:
    """Networks per ``--batch`` unit: ``k_num`` for an adiabatic sweep (one
    system per network), else 1."""
    return cfg.k_num if cfg.adiabatic else 1


def batch_networks(cfg: StudyConfig, batch: int) -> int:
    """Networks per batch for ``batch`` (``--batch``) units."""
    return batch * networks_per_unit(cfg)


def _shape(cfg: StudyConfig, n_k: int) -> BatchShape:
    nodes, edges = network_size(cfg)  # the largest network's, for file graphs
    return BatchShape(nodes=nodes, edges=edges, n_k=n_k, n_samples=cfg.spec.n_samples,
                      precision=precision(cfg.precision))


def batch_shape(cfg: StudyConfig) -> BatchShape:
    """The networks ``cfg``'s batches hold: its model's (or largest file's)
    size, its samples and precision, with ``k_num`` coupling columns, or one
    for an adiabatic sweep."""
    return _shape(cfg, 1 if cfg.adiabatic else cfg.k_num)


def unit_shape(cfg: StudyConfig) -> BatchShape:
    """One ``--batch`` unit of ``cfg`` as one network of ``k_num`` systems (an
    adiabatic sweep's unit is ``k_num`` networks of one K: the same systems)."""
    return _shape(cfg, cfg.k_num)


# -------------------------------------------------------------------------------- size

def loss_capped(units: int, seconds_per_run: float | None) -> int:
    """``units`` (``--batch`` units) capped so that a batch of runs taking
    ``seconds_per_run`` each holds at most LOSS_SECONDS of work (at least 1);
    ``units`` when the time is unknown (None)."""
    if seconds_per_run is None or seconds_per_run <= 0:
        return units
    return max(1, min(units, int(LOSS_SECONDS // seconds_per_run)))


def choose_batch(cfg: StudyConfig, engine: Engine, pending: int,
                 seconds_per_run: float | None = None) -> int:
    """Batch size in networks (the work unit's size, chosen where the engine
    runs): the configured one, or for ``auto`` the engine's choice (on a GPU
    the largest that fits its share of free memory) capped by
    :func:`loss_capped` when ``seconds_per_run`` (the estimate of
    :mod:`kcbatch.run.time_estimate`) is known, never more than the runs left
    or the engine's limit."""
    limit = engine.batch_limit(batch_shape(cfg))
    if is_auto(cfg.batch):
        wanted = loss_capped(engine.auto_batch(unit_shape(cfg)), seconds_per_run)
    else:
        wanted = int(cfg.batch)
    return max(1, min(batch_networks(cfg, wanted), pending, limit))


def fitted_batch(cfg: StudyConfig, engine: Engine, device: Device, pending: int) -> int:
    """:func:`choose_batch`, shrunk (``--batch auto``) or refused (ConfigError)
    to fit the memory here (:func:`fit_batch`)."""
    return fit_batch(cfg, engine, device, choose_batch(cfg, engine, pending))


def study_batch(cfg: StudyConfig, engine: Engine, device: Device, runs: int,
                producers: int = 1) -> tuple[int, StudyEstimate]:
    """(batch, estimate) for ``runs`` runs of ``cfg`` on ``engine``: the memory's
    fit (:func:`fitted_batch`, refused with ConfigError when nothing fits), the
    study's time measured on a batch that size (:func:`estimate_study`) and,
    for ``--batch auto``, that batch capped by the estimate (:func:`loss_capped`)."""
    memory_fit = fitted_batch(cfg, engine, device, runs)
    estimate = estimate_study(cfg, engine, runs, memory_fit, producers)
    return min(memory_fit, choose_batch(cfg, engine, runs, estimate.seconds_per_run)), estimate


def for_pending(batch: int, pending: int) -> int:
    """A planned ``batch`` for the ``pending`` runs left (a resume): never more
    than those, at least 1."""
    return max(1, min(batch, pending))


# ------------------------------------------------------------------------------- bytes

def packed_batch_bytes(cfg: StudyConfig, batch: int) -> int:
    """Bytes of the packed :class:`~kcbatch.inputs.batch.Batch` of ``batch`` runs of ``cfg``."""
    return batch_shape(cfg).packed_bytes(batch)


def predict_batch_bytes(cfg: StudyConfig, batch: int) -> int:
    """Peak bytes :func:`~kcbatch.inputs.pipeline.make_batch` holds while it makes
    ``batch`` runs of ``cfg``: every run's graph and inputs, one generator
    call's scratch arrays, the packed batch and the packing's float64 temporaries."""
    n, e = network_size(cfg)
    per_run = 8 * (n + 1) + 4 * 2 * e + 16 * n  # CSR + omega, theta0 (float64)
    scratch = 4 * e + 4 * e + 4 * 2 * e + 4 * n + 8 * n  # src, dst, repeated, picked_by, fill
    temporaries = 16 * batch * n + 8 * 2 * e
    return batch * per_run + scratch + packed_batch_bytes(cfg, batch) + temporaries


def device_bytes(cfg: StudyConfig, engine: Engine, batch: int) -> int:
    """Bytes ``engine`` allocates for a batch of ``batch`` networks of ``cfg``
    (its own formula, for ``cfg``'s layout)."""
    return engine.predict_bytes(batch_shape(cfg), batch)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a study holds at its peak with batches of ``batch`` networks.

    generation: the batches in the producers' hands, all together.
    engine: the batch being integrated (host memory), of which ``samples`` are
      the r samples ``[batch, nK, n_samples]`` float64.
    """

    batch: int
    generation: int
    engine: int
    samples: int

    @property
    def total(self) -> int:
        return self.generation + self.engine


def memory_estimate(cfg: StudyConfig, engine: Engine, device: Device,
                    batch: int) -> MemoryEstimate:
    """The peak host memory of ``cfg`` on ``engine`` (device ``device``) with
    batches of ``batch`` networks (laid out as :func:`batch_shape`)."""
    shape = batch_shape(cfg)
    samples = batch * shape.n_k * shape.n_samples * 8
    threads = producer_threads(cfg.producers, device)
    in_production = (threads * predict_batch_bytes(cfg, batch)
                     + PREFETCH * packed_batch_bytes(cfg, batch))
    if device == Device.GPU:
        # Device memory is fitted by --batch auto and the out-of-memory halving;
        # the host keeps the packed batch and the samples copied back.
        engine_bytes = packed_batch_bytes(cfg, batch) + samples
    else:
        engine_bytes = engine.predict_bytes(shape, batch)
    return MemoryEstimate(batch=batch, generation=in_production, engine=engine_bytes,
                          samples=samples)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """What the cgroup (v2) memory limit leaves, when there is one."""
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as fh:
            current = int(fh.read().strip())
        return max(0, int(limit) - current)
    except (OSError, ValueError):
        return None


def _address_space_available() -> int | None:
    """What RLIMIT_AS leaves of this process's address space, when it is limited."""
    try:
        import resource
        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    used = 0
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - used)


def available_bytes() -> int | None:
    """Memory this process can still use: the smallest of the system's available
    RAM, the cgroup's room and the address-space limit; None when none is known."""
    known = [v for v in (_meminfo_available(), _cgroup_available(),
                         _address_space_available()) if v is not None]
    return min(known) if known else None


def fit_batch(cfg: StudyConfig, engine: Engine, device: Device, batch: int,
              available: int | None = None) -> int:
    """The batch to run ``cfg`` with: ``batch`` when it fits in ``available`` bytes
    (default: :func:`available_bytes`), else, for ``--batch auto``, the largest
    smaller batch that fits. Otherwise ConfigError naming what to change, the
    estimate and the memory available. Unknown available memory: ``batch``.

    Batches are counted in networks; one ``--batch`` unit is
    :func:`networks_per_unit` of them (``k_num`` for an adiabatic sweep), which
    the advice converts to."""
    if available is None:
        available = available_bytes()
    if available is None:
        return batch
    est = memory_estimate(cfg, engine, device, batch)
    if est.total <= available:
        return batch
    one = memory_estimate(cfg, engine, device, 1)
    if one.total <= available:
        lo, hi = 1, batch  # est(lo) fits, est(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if memory_estimate(cfg, engine, device, mid).total <= available:
                lo = mid
            else:
                hi = mid
        if is_auto(cfg.batch):
            return lo
        per_unit = networks_per_unit(cfg)
        units = lo // per_unit
        advice = (f"use --batch {units}" + (" or smaller" if units > 1 else "")) if units else (
            f"even --batch 1 ({per_unit} networks of one K each) does not fit: use "
            f"fewer K (--k-num) or --sweep independent")
        raise ConfigError("batch", cfg.batch,
                          f"a batch of {batch} networks needs about {_parts(est)} of memory "
                          f"but {format_bytes(available)} is available; {advice}")
    if one.samples > one.total / 2:
        spec = cfg.spec
        raise ConfigError(
            "dt", cfg.dt,
            f"gives {spec.n_steps} RK4 steps per run and {spec.n_samples} r samples per "
            f"coupling (sample_every={cfg.sample_every}): one network needs about "
            f"{_parts(one)} of memory but {format_bytes(available)} is available; use a "
            f"larger dt or sample_every")
    raise ConfigError("nodes", cfg.nodes,
                      f"even a batch of one network needs about {_parts(one)} of memory "
                      f"but {format_bytes(available)} is available; use a smaller --nodes")


def _parts(est: MemoryEstimate) -> str:
    return (f"{format_bytes(est.total)} (graph generation {format_bytes(est.generation)}, "
            f"engine {format_bytes(est.engine)}"
            + (f" with r samples {format_bytes(est.samples)}"
               if est.samples >= 0.1 * est.engine else "") + ")")


# ----------------------------------------------------------------------- out of memory

def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` says that memory ran out: the host's MemoryError or a
    device allocator's OutOfMemoryError (CuPy's, recognised by name: CuPy is
    imported only on a GPU)."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"


def oom_retry_size(exc: BaseException, size: int) -> int | None:
    """The batch to retry with after ``exc`` ended a batch of ``size`` networks:
    half of it when ``exc`` is an out-of-memory error (:func:`is_oom`) and
    ``size > 1`` (a run's records do not depend on its batch), else None: the
    error is not the planner's to handle."""
    if not is_oom(exc) or size <= 1:
        return None
    return size // 2
