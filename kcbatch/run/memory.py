"""Host memory: what a study will hold at once, what this machine can give, and
the refusal when it does not fit (before anything large is allocated).

A study holds, at its peak, the batches the ``producers`` threads are making
(each with its graphs, their generator's scratch arrays and the packed copy),
``PREFETCH`` finished batches waiting (packed), and the batch the engine
integrates (the engine's :meth:`predict_bytes` on the CPU engines; on a GPU
the host keeps only the packed batch and the samples copied back).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from kcbatch.engines import Engine
from kcbatch.inputs.pipeline import (
    PREFETCH,
    packed_batch_bytes,
    predict_batch_bytes,
    producer_threads,
)
from kcbatch.protocol.choices import Device, is_auto
from kcbatch.protocol.config import ConfigError, StudyConfig, format_bytes

__all__ = ["MemoryEstimate", "available_bytes", "estimate", "fit_batch"]


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


def estimate(cfg: StudyConfig, engine: Engine, device: str, batch: int) -> MemoryEstimate:
    """The peak host memory of ``cfg`` on ``engine`` (device ``device``) at ``batch``."""
    samples = batch * cfg.k_num * cfg.spec.n_samples * 8
    threads = producer_threads(cfg.producers, device)
    in_production = (threads * predict_batch_bytes(cfg, batch)
                     + PREFETCH * packed_batch_bytes(cfg, batch))
    if device == Device.GPU:
        # Device memory is fitted by --batch auto and the out-of-memory halving;
        # the host keeps the packed batch and the samples copied back.
        engine_bytes = packed_batch_bytes(cfg, batch) + samples
    else:
        engine_bytes = engine.predict_bytes(cfg, batch)
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


def fit_batch(cfg: StudyConfig, engine: Engine, device: str, batch: int,
              available: int | None = None, *, networks_per_unit: int = 1) -> int:
    """The batch to run ``cfg`` with: ``batch`` when it fits in ``available`` bytes
    (default: :func:`available_bytes`), else, for ``--batch auto``, the largest
    smaller batch that fits. Otherwise ConfigError naming what to change, the
    estimate and the memory available. Unknown available memory: ``batch``.

    Batches are counted in networks; one ``--batch`` unit is ``networks_per_unit``
    of them (``k_num`` for an adiabatic sweep), which the advice converts to."""
    if available is None:
        available = available_bytes()
    if available is None:
        return batch
    est = estimate(cfg, engine, device, batch)
    if est.total <= available:
        return batch
    one = estimate(cfg, engine, device, 1)
    if one.total <= available:
        lo, hi = 1, batch  # est(lo) fits, est(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if estimate(cfg, engine, device, mid).total <= available:
                lo = mid
            else:
                hi = mid
        if is_auto(cfg.batch):
            return lo
        units = lo // networks_per_unit
        advice = (f"use --batch {units}" + (" or smaller" if units > 1 else "")) if units else (
            f"even --batch 1 ({networks_per_unit} networks of one K each) does not fit: use "
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
