"""``kcbatch scan``: one complete sub-study per value of one numeric parameter.

A scan of ``param`` over ``values`` in ``DIR`` holds ``DIR/scan.json`` (the
manifest: param, values, the base config with its master seed), one ordinary
study per value in ``DIR/<param>=<value>/`` (its own store and exports, so
``kcbatch run --resume`` and ``kcbatch report`` work on it alone), and, once
every point is complete, ``scan.csv``, ``kc_vs_<param>.png`` and for ``nodes``
``fit.json`` (``scan_export.py``).

Every point is the base config with ``param`` replaced and the same master
seed, so a point's runs depend only on (seed, value, run index) and equal a
stand-alone study of that config. Each point is one call of
:func:`kcbatch.run.study.run_study`: whatever run_study learns to take (an
executor, a sweep) is passed in one place, :func:`run_point`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kcbatch.engines import ResolvedDevice
from kcbatch.export.report import (
    export_store,
    record_run_info,
    session_info,
)
from kcbatch.protocol.choices import Coupling, is_auto
from kcbatch.protocol.config import ConfigError, StudyConfig
from kcbatch.protocol.seeding import draw_seed
from kcbatch.results.scan_layout import (
    MANIFEST,
    ScanPlan,
    check_param,
    check_values,
    format_value,
    point_out,
)
from kcbatch.results.store import STORE_NAME, Store, store_exists, study_lock
from kcbatch.run.study import StudyResult, run_study

# The scan's parameters, values and manifest: kcbatch.results.scan_layout.
__all__ = ["ScanResult", "create_scan", "point_state", "rebase", "run_point", "run_scan"]


def create_scan(base: StudyConfig, param: str, values: Sequence[int | float],
                out: str | Path) -> ScanPlan:
    """A new scan in ``out``: every point's config checked, a master seed drawn
    when ``base`` has none, the manifest written. ConfigError for a bad param,
    value or directory (one that already holds a scan or a study)."""
    check_param(param)
    out = Path(out)
    if (out / MANIFEST).exists():
        raise ConfigError("out", str(out), f"already holds a scan ({out / MANIFEST}); resume "
                                           f"it with `kcbatch scan --resume {out}`")
    if store_exists(out / STORE_NAME):  # an empty leftover of a killed creation is none
        raise ConfigError("out", str(out), "holds a study, not a scan; choose another --out")
    if base.seed is None:
        base = base.replace(seed=draw_seed())
    plan = ScanPlan(param=param, values=tuple(values), base=base.replace(out=None), out=out)
    check_values(plan.base, param, plan.values)
    _check_stable(plan)
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(plan)
    return plan


def _check_stable(plan: ScanPlan) -> None:
    """Refuse a dt beyond RK4's bound at any value before the first study starts
    (a larger N has larger hubs: raw coupling's bound shrinks along a nodes
    scan), as run_study would refuse it at that value's start."""
    from kcbatch.inputs.step_size import prepare_dt
    for value, cfg in plan.points():
        if is_auto(cfg.dt) or cfg.coupling == Coupling.DEGREE:
            continue  # auto is chosen per value; degree coupling's bound is the config's
        try:
            prepare_dt(cfg)
        except ConfigError as exc:
            raise ConfigError(exc.param, exc.value,
                              f"{exc.allowed} (at {plan.param}={format_value(value)})") from None


def _write_manifest(plan: ScanPlan) -> None:
    from kcbatch.export.study_outputs import atomic_file
    with atomic_file(plan.out / MANIFEST, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(plan.manifest(), indent=2) + "\n")


def rebase(plan: ScanPlan, base: StudyConfig) -> ScanPlan:
    """``plan`` computed with ``base`` (the stored base with flags that say how to
    compute: device, batch, ...). ConfigError naming the field when ``base``
    changes the protocol (other than the scanned parameter, which it does not set)."""
    base.check_compatible({**plan.base.to_dict(), plan.param: getattr(base, plan.param)},
                          what=f"the scan stored in {plan.out}")
    return dataclasses.replace(plan, base=base.replace(out=None))


def point_state(cfg: StudyConfig) -> str:
    """``done`` (every run stored), ``partial`` (a store with runs missing) or
    ``missing`` (no store yet, or only an empty leftover of a killed creation)
    for the sub-study of ``cfg``."""
    path = point_out(cfg) / STORE_NAME
    if not store_exists(path):
        return "missing"
    with Store.open(path) as store:
        done = store.done_runs()
    return "done" if all(r in done for r in cfg.run_ids) else "partial"


def run_point(cfg: StudyConfig, *, resume: bool, progress: bool = False,
              stop: threading.Event | None = None, abort: threading.Event | None = None,
              on_notice: Callable[[str], None] | None = None,
              scheduler: Any = None, device: ResolvedDevice | None = None) -> StudyResult:
    """One sub-study, as ``kcbatch run --out`` runs it: run_study, the session's
    timings kept in its store, and its exports (runs.csv, summary.json, plots),
    all under its directory's lock. ``scheduler`` and ``device`` as for
    run_study (an open ``ClusterSession`` lets every value share one Dask
    cluster)."""
    out = point_out(cfg)
    with contextlib.ExitStack() as locked:
        def on_open(out: str) -> None:
            locked.enter_context(study_lock(out))  # re-entrant: held across the exports
        result = run_study(cfg, resume=resume, progress=progress, stop=stop,
                           on_notice=on_notice, on_open=on_open, abort=abort,
                           scheduler=scheduler, device=device)
        if result.computed:
            record_run_info(out, session_info(result))
        export_store(out)
    return result


@dataclass
class ScanResult:
    """What :func:`run_scan` did: per value its state before (``done``, ``partial``,
    ``missing``), the runs computed now, the values ``completed``; ``interrupted`` when ``stop``
    ended it; ``rows`` (scan.csv's) and ``fit`` once every point is complete."""

    plan: ScanPlan
    states: dict[Any, str] = field(default_factory=dict)
    computed: dict[Any, int] = field(default_factory=dict)
    completed: list[Any] = field(default_factory=list)
    interrupted: bool = False
    rows: list[dict[str, Any]] | None = None
    fit: dict[str, Any] | None = None


def run_scan(plan: ScanPlan, *, progress: bool = False, stop: threading.Event | None = None,
             abort: threading.Event | None = None,
             on_notice: Callable[[str], None] | None = None,
             on_point: Callable[[int, Any, str], None] | None = None,
             on_done: Callable[[Any, StudyResult], None] | None = None,
             scheduler: Any = None, device: ResolvedDevice | None = None) -> ScanResult:
    """Run (or finish) every point of ``plan`` in order: a complete one is
    skipped (its exports rewritten if missing), a partial one resumed, a missing
    one started. When ``stop`` is set the point in flight stops after its batch
    and the scan returns ``interrupted``; otherwise scan.csv, the figure and
    (nodes) the fit are written. ``on_point(index, value, state)`` before each point,
    ``on_done(value, result)`` after each one computed. ``scheduler`` (a
    ``--scheduler`` spec or text) runs every value's batches on one Dask cluster,
    opened once for the whole scan. ``device``: ``resolve_device`` of the
    scan's device as the caller resolved it in this process (every value
    shares it; no scan parameter changes it); None resolves it per value."""
    from kcbatch.run.cluster import (  # dask is imported only when one opens
        ClusterSession,
        open_cluster,
    )

    if scheduler is not None and not isinstance(scheduler, ClusterSession):
        with open_cluster(scheduler) as session:
            return run_scan(plan, progress=progress, stop=stop, abort=abort,
                            on_notice=on_notice, on_point=on_point, on_done=on_done,
                            scheduler=session, device=device)
    from kcbatch.export.scan_outputs import write_scan_outputs

    result = ScanResult(plan=plan)
    for i, (value, cfg) in enumerate(plan.points()):
        state = point_state(cfg)
        if state != "done" and stop is not None and stop.is_set():
            result.interrupted = True  # stopped after the previous value's last batch
            return result
        result.states[value] = state
        if on_point is not None:
            on_point(i, value, state)
        if state == "done":
            out = point_out(cfg)
            if not (out / "summary.json").exists():
                export_store(out)  # killed between its last batch and its exports
            result.computed[value] = 0
            result.completed.append(value)
            continue
        try:
            point = run_point(cfg, resume=state == "partial", progress=progress, stop=stop,
                              abort=abort, on_notice=on_notice, scheduler=scheduler,
                              device=device)
        except ConfigError as exc:
            raise ConfigError(exc.param, exc.value, f"{exc.allowed} (at {plan.param}="
                                                    f"{format_value(value)})") from None
        result.computed[value] = point.computed
        if on_done is not None:
            on_done(value, point)
        if point.interrupted:
            result.interrupted = True
            return result
        result.completed.append(value)
    result.rows, result.fit = write_scan_outputs(plan)
    return result
