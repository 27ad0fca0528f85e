"""A study's store read back whole with its summary (``read_store``,
``study_summary``: what ``kcbatch report`` and ``kcbatch.load`` compute), and its
exports: summary.json, runs.csv, kc_hist.png, r_curves.png."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kcbatch.analysis.records import RunRecord
from kcbatch.analysis.summary import Summary, partial_info, summarize
from kcbatch.export.study_outputs import (
    plot_hysteresis,
    plot_kc_convergence,
    plot_kc_hist,
    plot_r_curves,
    write_runs_csv,
    write_summary_json,
)
from kcbatch.protocol.config import (
    ADDED_PROTOCOL_DEFAULTS,
    PROTOCOL_FIELDS,
    ConfigError,
    StudyConfig,
)
from kcbatch.results.store import STORE_NAME, Store, StoreError
from kcbatch.theory.per_run import theory_settings
from kcbatch.version import __version__

EXPORTS = ("summary.json", "runs.csv", "kc_hist.png", "r_curves.png")


@dataclass(frozen=True, kw_only=True)
class StoredStudy:
    """What a study's store holds: ``study`` (its config as a StudyConfig, ``out``
    the directory it was read from), ``config`` (the stored config, a dict as
    ``meta.config`` holds it, with every field a store written before that
    field existed lacks at the value it had then: ADDED_PROTOCOL_DEFAULTS, and
    StudyConfig's for the fields that do not change the numbers), ``k_values`` (the grid,
    ``[K]`` float64, rad per time unit), ``records`` (the finished runs, by run)
    and ``run_info`` (the last session's device and timings; empty before a
    session computed runs)."""

    study: StudyConfig
    config: dict[str, Any]
    k_values: np.ndarray
    records: list[RunRecord]
    run_info: dict[str, Any]


def read_store(out: str | Path) -> StoredStudy:
    """Read ``out/kcbatch.sqlite`` whole, checked (StoreError, in one line naming
    the file, for a missing, foreign or damaged store: ``Store.open``,
    ``Store.records``, and a stored config that is not a valid study's)."""
    path = Path(out) / STORE_NAME
    with Store.open(path) as store:
        stored = store.config
        # a protocol field every store has had since the first: without it the
        # numbers cannot be told apart from another study's
        lacking = [name for name in PROTOCOL_FIELDS
                   if name not in stored and name not in ADDED_PROTOCOL_DEFAULTS]
        if lacking:
            raise StoreError(f"{path} is damaged: its config lacks {', '.join(lacking)}; "
                             f"restore it from a backup")
        try:
            study = StudyConfig.from_mapping({**ADDED_PROTOCOL_DEFAULTS, **stored,
                                              "out": str(out)})
        except ConfigError as exc:
            raise StoreError(f"{path} is damaged: its config is not a study's ({exc}); "
                             f"restore it from a backup") from None
        return StoredStudy(study=study, config={**study.to_dict(), **stored},
                           k_values=store.k_values, records=store.records(),
                           run_info=json.loads(store.meta("run_info") or "{}"))


def study_summary(stored: StoredStudy) -> Summary:
    """The :class:`~kcbatch.analysis.summary.Summary` of every stored run, as
    summary.json holds it; its ``partial`` says whether runs of the study's run
    range are missing, and why (the last session's ``interrupted``)."""
    config, records = stored.config, stored.records
    start = config.get("run_start", 0)
    stop = config.get("run_stop") or config["runs"]
    partial = partial_info(runs_total=config["runs"], run_start=start, run_stop=stop,
                           runs_done=sum(1 for rec in records if start <= rec.run < stop),
                           interrupted=stored.run_info.get("interrupted"))
    return summarize(records, stored.k_values, config["threshold"],
                     t_transient=config["t_transient"], t_measure=config["t_measure"],
                     dt=config["dt"], partial=partial, **theory_settings(config))


def export_store(out: str | Path) -> Summary:
    """Recompute the summary from ``out/kcbatch.sqlite`` (:func:`study_summary`)
    and write every export into ``out``. Returns the
    :class:`~kcbatch.analysis.summary.Summary` (its ``partial`` says whether
    runs of the study are missing, and why)."""
    out = Path(out)
    stored = read_store(out)
    config, k_values, records = stored.config, stored.k_values, stored.records
    summary = study_summary(stored)
    extra = {"seed": config["seed"], "version": __version__, **stored.run_info}
    write_summary_json(out / "summary.json", summary, config, extra)
    write_runs_csv(out / "runs.csv", records, k_values)
    plot_kc_hist(out / "kc_hist.png", records, summary, config=config)
    plot_r_curves(out / "r_curves.png", records, k_values, config["threshold"],
                  summary=summary, config=config)
    plot_kc_convergence(out / "kc_convergence.png", records, config, summary)
    plot_hysteresis(out / "hysteresis.png", records, k_values, config["threshold"],
                    summary=summary, config=config)
    return summary


def record_run_info(out: str | Path, info: dict[str, Any]) -> None:
    """Keep the latest session's device/timings (and whether it was interrupted)
    in the store, for summary.json and the partial-study reason."""
    with Store.open(Path(out) / STORE_NAME) as store:
        old = json.loads(store.meta("run_info") or "{}")
        info = dict(info)
        info["elapsed_seconds_total"] = old.get("elapsed_seconds_total", 0.0) + info.get(
            "elapsed_seconds", 0.0)
        store.set_meta("run_info", json.dumps(info))


def session_info(result) -> dict[str, Any]:
    """The store's ``run_info`` of a session (docs/outputs.md, "The last session")."""
    return {"device": result.device, "batch": result.batch,
            "interrupted": result.interrupted,
            "elapsed_seconds": round(result.elapsed, 3),
            "engine_seconds": round(result.engine_seconds, 3),
            "generate_seconds": round(result.times.generate, 3),
            "engine_wait_seconds": round(result.times.wait, 3),
            "engine_wait_after_first_batch_seconds": round(result.times.steady_wait, 3),
            **({"scheduler": result.scheduler, "workers": result.workers}
               if result.scheduler else {})}
