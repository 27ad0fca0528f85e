"""A whole Kc study: pipeline -> engine -> Kc per run -> store -> summary/exports."""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kcbatch.analysis.records import RunRecord
from kcbatch.analysis.summary import Summary, partial_info, summarize
from kcbatch.engines import ResolvedDevice
from kcbatch.inputs.graph_source import GraphSet, check_unchanged, listing
from kcbatch.inputs.pipeline import PipelineTimes, Produced, chunk_runs, produce
from kcbatch.inputs.step_size import AUTO_DT_CAP
from kcbatch.protocol.choices import Auto, Device, is_auto
from kcbatch.protocol.config import ConfigError, StudyConfig
from kcbatch.results.store import (
    GRAPH_FILES_META,
    STORE_NAME,
    Store,
    StoreError,
    store_exists,
    study_lock,
)
from kcbatch.run.batching import for_pending, oom_retry_size, study_batch
from kcbatch.run.plan import plan_study
from kcbatch.run.time_estimate import auto_dt_cost, compile_notice
from kcbatch.run.work_unit import compute_records, longest_steps
from kcbatch.theory.per_run import theory_settings
from kcbatch.version import __version__

log = logging.getLogger("kcbatch")


@dataclass
class StudyResult:
    """What :func:`run_study` returns.

    records: one :class:`RunRecord` per finished run of ``config.run_ids``, by run.
    r: ``[runs, nK]`` float64 time-averaged order parameter (rows as ``records``).
    summary: the :class:`~kcbatch.analysis.summary.Summary` of
      :func:`kcbatch.analysis.summary.summarize` (``summary["kc"]`` reads its
      JSON view, as summary.json holds it).
    """

    config: StudyConfig
    device: str
    batch: int
    records: list[RunRecord]
    summary: Summary
    elapsed: float
    engine_seconds: float = 0.0
    times: PipelineTimes = field(default_factory=PipelineTimes)
    interrupted: bool = False
    computed: int = 0  # runs integrated by this call (a resume skips stored ones)
    store_path: str | None = None
    notices: list[str] = field(default_factory=list)
    # On a Dask cluster: the scheduler (as typed) and, per worker address, what
    # it did (``kcbatch.run.cluster.WorkerTimes.as_dict``); empty in one process.
    scheduler: str | None = None
    workers: dict[str, dict] = field(default_factory=dict)

    @property
    def r(self) -> np.ndarray:
        return np.array([rec.r for rec in self.records])

    @property
    def k_values(self) -> np.ndarray:
        return self.config.k_values

    @property
    def wait_fraction(self) -> float:
        return self.times.wait / self.elapsed if self.elapsed > 0 else 0.0


# The meta key of a store that lists a ``graphs`` study's files: JSON [[name, sha256], ...].


def open_store(cfg: StudyConfig, *, resume: bool, graphs: GraphSet | None = None) -> Store:
    """The study's store: ``cfg.out/kcbatch.sqlite`` (or in memory without ``out``).
    A new store of a ``graphs`` study lists ``graphs``' files in its meta."""
    if cfg.out is None:
        return _created(Store.create(":memory:", cfg.to_dict(), cfg.k_values, __version__),
                        graphs)
    path = Path(cfg.out) / STORE_NAME
    if store_exists(path):  # an empty leftover of a killed creation holds nothing
        if not resume:
            raise ConfigError("out", str(cfg.out),
                              f"already holds a study ({path}); resume it with "
                              f"`kcbatch run --resume {cfg.out}` or choose another --out")
        store = Store.open(path)
        try:
            stored = store.config
            cfg.check_compatible(stored, what=f"the study stored in {cfg.out}", grow=True)
            if cfg.runs is not None and cfg.runs != stored.get("runs"):
                # more runs: the store's study is the larger one from now on (a
                # kill after this leaves a partial study that resumes as usual)
                store.set_meta("config", json.dumps({**stored, "runs": cfg.runs}))
        except BaseException:
            store.close()
            raise
        return store
    if resume:
        raise StoreError(f"nothing to resume: no study stored in {path}")
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    return _created(Store.create(path, cfg.to_dict(), cfg.k_values, __version__), graphs)


def _created(store: Store, graphs: GraphSet | None) -> Store:
    if graphs is not None:
        store.set_meta(GRAPH_FILES_META, json.dumps(listing(graphs)))
    return store


def check_stored_graphs(cfg: StudyConfig) -> None:
    """Before resuming a ``graphs`` study: GraphFileError naming the first file
    that is gone, changed or new since the stored runs (the files hashed now),
    ConfigError when the stored study is another one. Nothing to check
    without a store (``open_store`` says so)."""
    if cfg.graphs is None or cfg.out is None or not store_exists(Path(cfg.out) / STORE_NAME):
        return
    with Store.open(Path(cfg.out) / STORE_NAME) as store:
        cfg.check_compatible(store.config, what=f"the study stored in {cfg.out}", grow=True)
        listed = store.meta(GRAPH_FILES_META)
        used = sorted(store.graph_files())
    check_unchanged(cfg.graphs, used, None if listed is None else json.loads(listed))


def run_study(config: StudyConfig, *, resume: bool = False, progress: bool = False,
              stop: threading.Event | None = None,
              on_notice: Callable[[str], None] | None = None,
              on_open: Callable[[str], None] | None = None,
              abort: threading.Event | None = None,
              scheduler: Any = None, device: ResolvedDevice | None = None) -> StudyResult:
    """Run (or resume) the study of ``config``; same numbers as ``kcbatch run``.

    Finished batches go to the store as they complete; when ``stop`` is set the
    study stops taking new batches and returns with ``interrupted=True``.
    ``on_open(out)`` is called once the store in ``config.out`` is open, before
    any computing (without ``out`` the store is in memory and it is not called).
    The progress bar counts runs of the whole run range (a resume starts at the
    runs already stored) and moves with every RK4 step inside a batch.

    With ``config.graphs`` every file is read before it starts (GraphFileError,
    naming the file, line and reason, for a bad one; a notice sums up what the
    reader changed), and a resume first compares the files with those the
    stored study used (GraphFileError naming a file gone, changed or new).

    Before it starts, dt is checked against RK4's stability bound on the
    study's first networks, or chosen there for ``dt="auto"`` (a notice gives
    the value; ``StudyResult.config`` and the store hold it): see
    :mod:`kcbatch.inputs.step_size`. A later network beyond the bound makes its run
    failed, with the reason.

    Before anything large is allocated, the study's peak memory is compared
    with the memory available (ConfigError naming what to change when it does
    not fit; ``--batch auto`` shrinks to fit). While it runs, the process holds
    the lock of ``config.out`` (StoreLocked if another process holds it). When
    ``abort`` is set and an exception (a second Ctrl-C) ends the study, a
    batch still being generated is not waited for.

    ``scheduler``: None runs every batch in this process. Otherwise the batches
    run on Dask workers (``--scheduler``): a ``kcbatch.run.scheduler.SchedulerSpec``
    or its text (``"local:2"``, ``"tcp://host:8786"``) opens a cluster for this
    study alone; an open ``kcbatch.run.cluster.ClusterSession`` (``open_cluster``) is
    used as it is, so that several studies share one cluster. The records are
    the same; the store is written here, batch by batch as they arrive.

    ``device``: ``resolve_device(config.device)`` as the caller already
    resolved it in this process (the CLI's early check); None resolves it
    here. Dask workers resolve their own.
    """
    t_start = time.perf_counter()
    notices: list[str] = []

    def notice(msg: str) -> None:
        notices.append(msg)
        log.info(msg)
        if on_notice:
            on_notice(msg)

    compiling = compile_notice(config)
    if compiling:  # before the first networks are made (dt auto, the estimate, the study)
        notice(compiling)
    study_plan = plan_study(config, resume=resume, notice=notice,
                            check_stored=check_stored_graphs)
    cfg, graphs = study_plan.config, study_plan.graphs
    if scheduler is not None:
        return _run_clustered(cfg, graphs, scheduler, resume=resume, progress=progress,
                              stop=stop, notice=notice, on_open=on_open, t_start=t_start,
                              notices=notices)
    plan = study_plan.on_engine(device)
    if plan.device_notice:
        notice(plan.device_notice)
    engine = plan.engine
    runs = len(cfg.run_ids)
    # Planned (and refused when it cannot fit) before anything is made; the time
    # per run (measured on a batch like the study's) caps --batch auto and is
    # printed once the store says how many runs are pending.
    batch_fit, estimate = study_batch(cfg, engine, plan.device, runs, plan.producers)
    if is_auto(config.dt) and cfg.dt_value < AUTO_DT_CAP:
        # the cost of the run range (refused when absurd), before the store is made
        notice(auto_dt_cost(cfg, engine, runs, for_pending(batch_fit, runs),
                            rate=estimate.calibration.rate if estimate.calibration else None))
    with _opened(cfg, resume, graphs, on_open) as (store, pending):
        plan = plan.with_batch(for_pending(batch_fit, len(pending)))
        batch_size = plan.batch
        if pending:
            for line in (estimate.line(len(pending), plan.device),
                         estimate.feasibility(len(pending), plan.device),
                         estimate.cpu_suggestion(len(pending))
                         if is_auto(cfg.device) and plan.device == Device.CPU else None):
                if line:
                    notice(line)
        times = PipelineTimes()
        engine_seconds = 0.0
        interrupted = False
        computed = 0
        in_flight = batch_size
        finished_runs = len(cfg.run_ids) - len(pending)
        # a finished study resumed has nothing to show progress of
        bar = (make_progress_bar(len(cfg.run_ids), finished_runs) if progress and pending
               else _NoBar())
        # closed explicitly, so that a Ctrl-C while it joins its threads propagates
        items: Generator[Produced, None, None] | None = None
        try:
            while pending and not interrupted:
                try:
                    items = produce(chunk_runs(pending, batch_size), cfg,
                                    producers=plan.producers,
                                    times=times, abandon=abort, graph_set=graphs)
                    for item in items:
                        in_flight = len(item.runs)
                        records, dt_batch = compute_records(
                            engine, item, cfg,
                            progress=_step_progress(bar, finished_runs, len(item.runs),
                                                    longest_steps(cfg)))
                        engine_seconds += dt_batch
                        store.write_batch(records, device=plan.device, seconds=dt_batch)
                        finished = set(item.runs)
                        pending = [r for r in pending if r not in finished]
                        if computed == 0:  # the estimate again, at the first batch's pace
                            update = estimate.after_first_batch(
                                len(pending), dt_batch / len(item.runs), plan.device)
                            if update:
                                notice(update)
                        computed += len(item.runs)
                        finished_runs += len(item.runs)
                        bar.move_to(finished_runs)
                        if stop is not None and stop.is_set():
                            interrupted = bool(pending)
                            break
                except Exception as exc:
                    # half the batch that failed, not the configured one
                    retry = oom_retry_size(exc, in_flight)
                    if retry is None:
                        raise
                    if items is not None:
                        items.close()
                    batch_size = retry
                    notice(f"device out of memory; batch size halved to {batch_size} "
                           f"(finished runs are kept)")
                    engine.release_memory()
        finally:
            try:
                if items is not None:
                    items.close()
            finally:
                bar.close()
        return _result(cfg, store, device=plan.device, batch=batch_size, t_start=t_start,
                       engine_seconds=engine_seconds, times=times, interrupted=interrupted,
                       computed=computed, notices=notices)


def _result(cfg: StudyConfig, store: Store, *, interrupted: bool, t_start: float,
            **fields: Any) -> StudyResult:
    """The StudyResult of ``cfg`` from what ``store`` holds now."""
    records = store.records(cfg.run_ids)
    partial = partial_info(runs_total=cfg.runs_value, run_start=cfg.run_start,
                           run_stop=cfg.run_stop, runs_done=len(records),
                           interrupted=interrupted)
    summary = summarize(records, cfg.k_values, cfg.threshold, t_transient=cfg.t_transient,
                        t_measure=cfg.t_measure, dt=cfg.dt_value, partial=partial,
                        **theory_settings(cfg))
    return StudyResult(config=cfg, records=records, summary=summary,
                       elapsed=time.perf_counter() - t_start, interrupted=interrupted,
                       store_path=None if cfg.out is None else store.path, **fields)


def _run_clustered(cfg: StudyConfig, graphs: GraphSet | None, scheduler: Any, *,
                   resume: bool, progress: bool, stop: threading.Event | None,
                   notice: Callable[[str], None], on_open: Callable[[str], None] | None,
                   t_start: float, notices: list[str]) -> StudyResult:
    """run_study's loop on Dask workers (``kcbatch.run.cluster``): the store, its lock,
    the resume and the summary as in one process; the device and the batch size
    are those a worker's engine picks; each batch is written as it arrives."""
    from kcbatch.run.cluster import ClusterSession, open_cluster

    opened = (contextlib.nullcontext(scheduler) if isinstance(scheduler, ClusterSession)
              else open_cluster(scheduler))
    with opened as session:
        with _opened(cfg, resume, graphs, on_open) as (store, pending):
            plan = session.plan(cfg, len(pending), stop, notice) if pending else None
            device = plan.device if plan else cfg.device
            batch_size = plan.batch if plan else (1 if isinstance(cfg.batch, Auto) else cfg.batch)
            if plan is not None:
                threads = session.worker_threads()
                notice(f"Dask scheduler {session.address} ({session.spec}): {len(threads)} "
                       f"workers, {sum(threads.values())} threads; device {device}, "
                       f"batch {batch_size}")
                if plan.notice:
                    notice(f"worker {plan.worker}: {plan.notice}")
            finished_runs = len(cfg.run_ids) - len(pending)
            bar = (make_progress_bar(len(cfg.run_ids), finished_runs) if progress and pending
                   else _NoBar())

            def write(outcome) -> None:
                nonlocal finished_runs
                store.write_batch(outcome.records, device=outcome.device,
                                  seconds=outcome.engine_seconds)
                finished_runs += len(outcome.runs)
                bar.move_to(finished_runs)

            try:
                ran = (session.run(cfg, pending, batch_size, write, stop) if plan is not None
                       else None)
            finally:
                bar.close()
            workers = {} if ran is None else {a: w.as_dict() for a, w in ran.workers.items()}
            times = PipelineTimes(generate=0.0 if ran is None else ran.generate_seconds,
                                  batches=sum(w["batches"] for w in workers.values()))
            return _result(cfg, store, device=device, batch=batch_size, t_start=t_start,
                           engine_seconds=0.0 if ran is None else ran.engine_seconds,
                           times=times, interrupted=bool(pending) and (ran is None
                                                                       or ran.interrupted),
                           computed=sum(w["runs"] for w in workers.values()), notices=notices,
                           scheduler=str(session.spec), workers=workers)


@contextlib.contextmanager
def _opened(cfg: StudyConfig, resume: bool, graphs: GraphSet | None,
            on_open: Callable[[str], None] | None) -> Iterator[tuple[Store, list[int]]]:
    """The study's store, opened under what the study holds (``_hold``), with
    ``on_open`` called; yields ``(store, pending runs)`` and closes both on exit."""
    held = _hold(cfg, resume)
    try:
        store = open_store(cfg, resume=resume, graphs=graphs)
    except BaseException:
        held.close()
        raise
    try:
        if on_open is not None and cfg.out is not None:
            on_open(str(cfg.out))
        done = store.done_runs()
        yield store, [r for r in cfg.run_ids if r not in done]
    finally:
        try:
            store.close()
        finally:
            held.close()


def _hold(cfg: StudyConfig, resume: bool) -> contextlib.ExitStack:
    """What the study holds until the stack is closed: numpy's floating-point
    warnings off (an overflow shows as a failed run, never as a raw
    RuntimeWarning) and the lock of ``cfg.out`` (created for a new study; not
    taken without ``out`` or when there is nothing to resume there)."""
    stack = contextlib.ExitStack()
    stack.enter_context(np.errstate(all="ignore"))
    if cfg.out is None:
        return stack
    out = Path(cfg.out)
    if not resume:
        out.mkdir(parents=True, exist_ok=True)
    elif not out.is_dir():
        return stack  # open_store says there is nothing to resume
    stack.enter_context(study_lock(out))
    return stack


class _NoBar:
    def move_to(self, position: float) -> None:
        pass

    def close(self) -> None:
        pass


# tqdm's own count would print the fractional runs of a batch in flight; this
# shows the runs finished (floored; the epsilon absorbs float sums) and the ETA.
_BAR_FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {runs_done}/{total_fmt} runs "
               "[{elapsed}<{remaining}, {rate_fmt}]")


class _RunBar:
    """A tqdm bar over runs that moves to absolute positions (fractional inside a batch)."""

    def __init__(self, total: int, initial: int):
        import sys

        from tqdm import tqdm

        class _Tqdm(tqdm):
            @property
            def format_dict(self):
                d = super().format_dict
                d["runs_done"] = int(d["n"] + 1e-6)
                return d

        self._bar = _Tqdm(total=total, initial=initial, unit="run", file=sys.stderr,
                          dynamic_ncols=True, desc="kcbatch", smoothing=0.1,
                          bar_format=_BAR_FORMAT)

    def move_to(self, position: float) -> None:
        delta = position - self._bar.n
        if delta > 0:  # a batch retried after an out-of-memory error never moves it back
            self._bar.update(delta)

    def close(self) -> None:
        self._bar.close()


def make_progress_bar(total: int, initial: int) -> _RunBar:
    """The bar of ``kcbatch run``: ``total`` runs in the study's run range, ``initial``
    of them already stored. It has ``move_to(runs_done: float)`` and ``close()``."""
    return _RunBar(total, initial)


def _step_progress(bar, runs_before: int, batch_runs: int, n_steps: int):
    """The engine's per-step callback: a batch at step s of n_steps counts as
    ``batch_runs * s / n_steps`` runs beyond the ``runs_before`` finished ones."""
    def on_step(steps_done: int) -> None:
        bar.move_to(runs_before + batch_runs * steps_done / n_steps)
    return on_step


__all__ = ["StudyResult", "run_study", "check_stored_graphs"]
