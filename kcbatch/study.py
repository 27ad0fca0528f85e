"""A whole Kc study: pipeline -> engine -> Kc per run -> store -> summary/exports."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._version import __version__
from .config import ConfigError, StudyConfig
from .engines import Engine, get_engine, resolve_device
from .kc import make_record
from .pipeline import PipelineTimes, chunk_runs, produce
from .records import RunRecord
from .seeding import draw_seed
from .stats import summarize
from .store import STORE_NAME, Store, StoreError

log = logging.getLogger("kcbatch")


@dataclass
class StudyResult:
    """What :func:`run_study` returns.

    records: one :class:`RunRecord` per finished run of ``config.run_ids``, by run.
    r: ``[runs, nK]`` float64 time-averaged order parameter (rows as ``records``).
    summary: the dict of :func:`kcbatch.stats.summarize`.
    """

    config: StudyConfig
    device: str
    batch: int
    records: list[RunRecord]
    summary: dict[str, Any]
    elapsed: float
    engine_seconds: float = 0.0
    times: PipelineTimes = field(default_factory=PipelineTimes)
    interrupted: bool = False
    computed: int = 0  # runs integrated by this call (a resume skips stored ones)
    store_path: str | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def r(self) -> np.ndarray:
        return np.array([rec.r for rec in self.records])

    @property
    def k_values(self) -> np.ndarray:
        return self.config.k_values

    @property
    def wait_fraction(self) -> float:
        return self.times.wait / self.elapsed if self.elapsed > 0 else 0.0


def choose_batch(cfg: StudyConfig, engine: Engine, pending: int) -> int:
    """Batch size: the configured one, or for ``auto`` the engine's choice (on a
    GPU the largest that fits its share of free memory), never more than the
    runs left or the engine's limit."""
    limit = engine.batch_limit(cfg)
    wanted = engine.auto_batch(cfg) if cfg.batch == "auto" else int(cfg.batch)
    return max(1, min(wanted, pending, limit))


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"


def open_store(cfg: StudyConfig, *, resume: bool) -> Store:
    """The study's store: ``cfg.out/kcbatch.sqlite`` (or in memory without ``out``)."""
    if cfg.out is None:
        return Store.create(":memory:", cfg.to_dict(), cfg.k_values, __version__)
    path = Path(cfg.out) / STORE_NAME
    if path.exists():
        if not resume:
            raise ConfigError("out", str(cfg.out),
                              f"already holds a study ({path}); resume it with "
                              f"`kcbatch run --resume {cfg.out}` or choose another --out")
        store = Store.open(path)
        try:
            cfg.check_compatible(store.config, what=f"the study stored in {cfg.out}")
        except ConfigError:
            store.close()
            raise
        return store
    if resume:
        raise StoreError(f"nothing to resume: no {STORE_NAME} in {cfg.out}")
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    return Store.create(path, cfg.to_dict(), cfg.k_values, __version__)


def run_study(config: StudyConfig, *, resume: bool = False, progress: bool = False,
              stop: threading.Event | None = None,
              on_notice: Callable[[str], None] | None = None) -> StudyResult:
    """Run (or resume) the study of ``config``; same numbers as ``kcbatch run``.

    Finished batches go to the store as they complete; when ``stop`` is set the
    study stops taking new batches and returns with ``interrupted=True``.
    """
    t_start = time.perf_counter()
    notices: list[str] = []

    def notice(msg: str) -> None:
        notices.append(msg)
        log.info(msg)
        if on_notice:
            on_notice(msg)

    cfg = config if config.seed is not None else config.replace(seed=draw_seed())
    device, why = resolve_device(cfg.device)
    if why:
        notice(why)
    engine = get_engine(device, cfg.fast_math)
    store = open_store(cfg, resume=resume)
    try:
        done = store.done_runs()
        pending = [r for r in cfg.run_ids if r not in done]
        batch_size = choose_batch(cfg, engine, max(1, len(pending)))
        k_values = cfg.k_values
        spec = cfg.spec
        times = PipelineTimes()
        engine_seconds = 0.0
        interrupted = False
        computed = 0
        in_flight = batch_size
        bar = _progress(len(pending), progress)
        try:
            while pending and not interrupted:
                try:
                    for item in produce(chunk_runs(pending, batch_size), cfg,
                                        producers=cfg.producers, times=times):
                        in_flight = len(item.runs)
                        t0 = time.perf_counter()
                        samples = engine.integrate(item.batch, spec)
                        dt_batch = time.perf_counter() - t0
                        engine_seconds += dt_batch
                        records = [
                            make_record(run=run, seed_material=item.seed_material[j],
                                        stats=item.stats[j], samples=samples[j],
                                        n_first_half=spec.n_first_half, k_values=k_values,
                                        threshold=cfg.threshold,
                                        seconds=dt_batch / len(item.runs))
                            for j, run in enumerate(item.runs)]
                        store.write_batch(records, device=device, seconds=dt_batch)
                        finished = set(item.runs)
                        pending = [r for r in pending if r not in finished]
                        computed += len(item.runs)
                        bar.update(len(item.runs))
                        if stop is not None and stop.is_set():
                            interrupted = bool(pending)
                            break
                except Exception as exc:
                    if not _is_oom(exc) or in_flight == 1:
                        raise
                    batch_size = in_flight // 2  # the batch that failed, not the configured one
                    notice(f"device out of memory; batch size halved to {batch_size} "
                           f"(finished runs are kept)")
                    engine.release_memory()
        finally:
            bar.close()
        records = store.records(cfg.run_ids)
        summary = summarize(records, k_values, cfg.threshold, t_transient=cfg.t_transient)
        return StudyResult(config=cfg, device=device, batch=batch_size, records=records,
                           summary=summary, elapsed=time.perf_counter() - t_start,
                           engine_seconds=engine_seconds, times=times, interrupted=interrupted,
                           computed=computed,
                           store_path=None if cfg.out is None else store.path, notices=notices)
    finally:
        store.close()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    import sys

    from tqdm import tqdm
    return tqdm(total=total, unit="run", file=sys.stderr, dynamic_ncols=True,
                desc="kcbatch", smoothing=0.1)


__all__ = ["StudyResult", "run_study", "choose_batch"]
