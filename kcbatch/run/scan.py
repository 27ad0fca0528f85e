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
from kcbatch.protocol.config import (
    MAX_CONFIG_BYTES,
    ConfigError,
    NotARegularFile,
    StudyConfig,
    read_regular_file,
)
from kcbatch.protocol.seeding import draw_seed
from kcbatch.results.scan_layout import MANIFEST, ScanPlan, format_value, point_dir, point_out
from kcbatch.results.store import STORE_NAME, Store, StoreError, store_exists, study_lock
from kcbatch.run.study import StudyResult, run_study

__all__ = ["MANIFEST", "SCAN_PARAMS", "ScanPlan", "ScanResult", "check_param", "check_values",
           "create_scan", "load_scan", "parse_values", "point_dir", "point_state", "rebase",
           "run_point", "run_scan"]

# The numeric protocol fields a scan may vary. Not runs (the points would share
# their first runs, not a scan) nor seed (every point has the master seed).
SCAN_PARAMS = ("nodes", "m", "ws_p", "gamma", "omega_mu", "omega_sigma", "k_min", "k_max",
               "k_num", "dt", "t_transient", "t_measure", "sample_every", "threshold",
               "kc_tol", "t_max", "refine", "refine_points")
_INT_PARAMS = ("nodes", "m", "k_num", "sample_every", "refine_points")


def check_param(param: str) -> None:
    if param not in SCAN_PARAMS:
        raise ConfigError("param", param, f"must be one of {', '.join(SCAN_PARAMS)}")


# The most values one scan takes (README, "Limits"): each is a study of its own.
MAX_SCAN_VALUES = 1000


def parse_values(param: str, text: str) -> list[int | float]:
    """``"250,500,1e3"`` -> ``[250, 500, 1000]``: numbers separated by commas,
    integers for integer fields (``1e3`` reads as 1000; ``1.5`` stays a float
    for the config's own check to refuse), at least two, no repeats."""
    check_param(param)
    items = [t.strip() for t in str(text).split(",")]
    if len(items) > MAX_SCAN_VALUES:
        raise ConfigError("values", f"{len(items)} values",
                          f"at most {MAX_SCAN_VALUES} values per scan (a study each; README, "
                          f"Limits)")
    values: list[int | float] = []
    for item in items:
        try:
            v: int | float = float(item)
        except ValueError:
            raise ConfigError("values", text, f"must be numbers separated by commas "
                                              f"({item!r} is not a number)") from None
        if param in _INT_PARAMS and float(v).is_integer():
            v = int(v)
        values.append(v)
    if len(values) < 2:
        raise ConfigError("values", text, "must hold at least 2 values (one value is a "
                                          "study: use kcbatch run)")
    seen: set[float] = set()
    for v in values:
        if v in seen:
            raise ConfigError("values", text, f"must not repeat a value ({v!r} is given twice)")
        seen.add(v)
    return values


def check_values(base: StudyConfig, param: str, values: Sequence[int | float]) -> None:
    """ConfigError, naming the value, for the first value that makes an invalid study."""
    for value in values:
        base.replace(**{param: value})


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


def load_scan(out: str | Path) -> ScanPlan:
    """The scan stored in ``out``. StoreError, in one line, when there is none
    or its manifest is unreadable or damaged: not a regular file of at most
    MAX_CONFIG_BYTES, not JSON, not an object with ``param`` (a scan
    parameter), ``values`` (2 to MAX_SCAN_VALUES distinct numbers) and ``base``
    (a study config valid at every value)."""
    out = Path(out)
    path = out / MANIFEST
    try:
        text = read_regular_file(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise StoreError(f"nothing to resume: no {MANIFEST} in {out}") from None
    except OSError as exc:
        raise StoreError(f"the scan manifest {path} cannot be read "
                         f"({exc.strerror or exc})") from None
    except NotARegularFile as exc:
        raise StoreError(f"the scan manifest {path} {exc}") from None

    def damaged(what: str) -> StoreError:
        return StoreError(f"the scan manifest {path} is damaged: {what}; restore it from a "
                          f"backup, or start a new scan in another --out")

    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise damaged(f"not JSON ({exc})") from None
    if not (isinstance(doc, dict) and isinstance(doc.get("param"), str)
            and isinstance(doc.get("values"), list) and isinstance(doc.get("base"), dict)):
        raise damaged("not a JSON object with param, values and base")
    param, values = doc["param"], doc["values"]
    try:
        check_param(param)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise damaged(f"its values {_shown(values)} are not all numbers")
        values = parse_values(param, ",".join(repr(v) for v in values))
        base = StudyConfig.from_mapping(doc["base"])
        check_values(base, param, values)
    except ConfigError as exc:
        raise damaged(str(exc)) from None
    return ScanPlan(param=param, values=tuple(values), base=base, out=out)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
