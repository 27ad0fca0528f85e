"""``kcbatch.load(DIR)``: a study (or a scan) read back for a notebook.

A study directory gives a :class:`LoadedStudy`: its config, the summary
(recomputed from the store as ``kcbatch report`` computes it, so a partial or
interrupted study without ``summary.json`` loads too), the per-run table as a
pandas DataFrame (``runs.csv``'s columns) and r(K) as a ``[runs, K]`` array with
its grid. A scan directory (``scan.json``) gives a :class:`LoadedScan`, one
LoadedStudy per value whose study has started. Nothing is written but what
opening a store writes (``Store.open``: WAL mode, an older schema's upgrade).

pandas (the ``notebook`` extra) is imported when :func:`load` is called, never
by ``import kcbatch``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from kcbatch.analysis.records import RunRecord
from kcbatch.export.report import read_store, study_summary
from kcbatch.export.study_outputs import jsonable, runs_table
from kcbatch.protocol.config import ConfigError, StudyConfig
from kcbatch.results.scan_layout import MANIFEST, load_scan, point_dir
from kcbatch.results.store import STORE_NAME, StoreError, run_columns, store_exists

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NOTEBOOK_EXTRA", "LoadedScan", "LoadedStudy", "load"]

NOTEBOOK_EXTRA = 'pip install "kcbatch[notebook]"'
# The store's column of each runs.csv column that a record field holds: its
# SQL type and kind say the DataFrame column's dtype.
_COLUMNS = {c.name: c for c in run_columns()}


@dataclass(frozen=True, kw_only=True, eq=False)
class LoadedStudy:
    """A study read back from its directory by :func:`load`.

    path: the study directory.
    config: the :class:`~kcbatch.protocol.config.StudyConfig` the store was
      written with, ``out`` set to ``path`` (where the study is now; a moved
      study's stored ``out`` is stale).
    summary: summary.json's ``summary`` object (a dict, non-finite numbers as
      None), recomputed from the store as ``kcbatch report`` does.
    session: the last session's device and timings (summary.json's other keys,
      docs/outputs.md "The last session"); empty before a session recorded them
      (a merged store, a study run from Python).
    runs: pandas DataFrame, one row per finished run, indexed by ``run``, its
      columns ``runs.csv``'s after ``run`` in that order (docs/outputs.md):
      float64 for numbers (NaN: no value), int64 for counts, a nullable boolean
      for ``converged``, text for the rest.
    k: ``[K]`` float64, the coupling grid [rad / time unit].
    r: ``[runs, K]`` float64, each run's time-averaged order parameter
      (dimensionless), rows in the order of ``runs``: the ``r@K=<K>`` columns.
      In an adiabatic study (``sweep="adiabatic"``) the forward branch (K
      increasing), as runs.csv's r columns.
    r_backward: ``[runs, K]`` float64, the backward branch of an adiabatic study
      in increasing-K order (a row of NaN for a run without one); None for the
      independent protocol (``config.adiabatic`` False).
    records: the runs' :class:`~kcbatch.analysis.records.RunRecord` (every
      field, r_first, r_second, r_std and kc_windows included), rows as ``runs``.
    runs_done: finished runs stored (rows of ``runs``).
    runs_total: the study's runs (``config.runs``).
    partial: None when every run of the study's run range is done; otherwise why
      not (summary ``partial.reason``: ``interrupted``, ``incomplete``, ``shard
      START:STOP``, ...).
    """

    path: Path
    config: StudyConfig
    summary: dict[str, Any]
    session: dict[str, Any]
    runs: pd.DataFrame
    k: np.ndarray
    r: np.ndarray
    r_backward: np.ndarray | None
    records: tuple[RunRecord, ...]
    runs_done: int
    runs_total: int
    partial: str | None


@dataclass(frozen=True, kw_only=True, eq=False)
class LoadedScan:
    """A scan read back from its directory by :func:`load`.

    path: the scan directory.
    param: the scanned parameter (``nodes``, ``omega_sigma``, ...).
    values: its values, in the scan's order.
    base: the config every value's study shares (``param`` holds the first
      value; ``out`` None), as ``scan.json`` holds it.
    studies: value -> :class:`LoadedStudy` of each value whose study has a
      store, in the scan's order (a value's study may be partial).
    missing: the values whose study has not started (no store yet).
    """

    path: Path
    param: str
    values: tuple[int | float, ...]
    base: StudyConfig
    studies: Mapping[int | float, LoadedStudy]
    missing: tuple[int | float, ...]

    @property
    def complete(self) -> bool:
        """Every value's study is there and none is partial."""
        return not self.missing and all(s.partial is None for s in self.studies.values())


def load(directory: str | os.PathLike) -> LoadedStudy | LoadedScan:
    """The study (``DIR/kcbatch.sqlite``: :class:`LoadedStudy`) or the scan
    (``DIR/scan.json``: :class:`LoadedScan`) in ``directory``: complete,
    partial (interrupted, a shard), merged or scanned alike.

    ImportError naming the extra to install without pandas; ConfigError for a
    ``directory`` that is not a path; StoreError, in one line naming the path,
    for a directory that does not exist or holds neither, a store that is
    damaged (a file SQLite cannot read, a value not of its column, a config
    that is not a study's) or a damaged scan manifest.
    """
    pandas = _pandas()
    path = _directory(directory)
    # store_exists: an empty leftover of a killed creation holds no study, a
    # file SQLite cannot read does (Store.open says what is wrong with it)
    study = store_exists(path / STORE_NAME)
    if (path / MANIFEST).exists():
        if study:
            raise StoreError(f"{path} holds both a study ({STORE_NAME}) and a scan "
                             f"({MANIFEST}); load the scan's studies from their own "
                             f"directories")
        return _load_scan(pandas, path)
    if not study and (path / STORE_NAME).exists():
        raise StoreError(f"{path / STORE_NAME} holds no study: it is empty (a study "
                         f"killed while its store was being created leaves one)")
    if not study:
        raise StoreError(f"no kcbatch study in {path}: it holds neither {STORE_NAME} "
                         f"nor {MANIFEST}")
    return _load_study(pandas, path)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(f"kcbatch.load needs pandas: {NOTEBOOK_EXTRA} "
                          f"(or pip install pandas)") from None
    return pandas


def _directory(directory: Any) -> Path:
    """``directory`` as an existing directory's Path: ConfigError for what is not
    a path, StoreError for a path that is not a directory."""
    if isinstance(directory, bytes) or not isinstance(directory, (str, os.PathLike)):
        raise ConfigError("directory", directory, "must be the path of a study or scan "
                                                  "directory (a string)")
    if os.fspath(directory) == "":
        raise ConfigError("directory", directory, "must be the path of a study or scan "
                                                  "directory, not empty")
    path = Path(directory)
    if not path.exists():
        raise StoreError(f"no kcbatch study at {path}: the directory does not exist")
    if not path.is_dir():
        raise StoreError(f"{path} is a file, not a study directory; load the directory "
                         f"that holds it ({path.parent})")
    return path


def _load_study(pandas: Any, path: Path) -> LoadedStudy:
    stored = read_store(path)
    config = stored.study
    summary = study_summary(stored)
    records = tuple(stored.records)
    k = np.asarray(stored.k_values, dtype=np.float64)
    r = np.array([rec.r for rec in records], dtype=np.float64).reshape(len(records), k.size)
    r_backward = (np.array([np.full(k.size, np.nan) if rec.r_backward is None
                            else rec.r_backward for rec in records],
                           dtype=np.float64).reshape(len(records), k.size)
                  if config.adiabatic else None)
    return LoadedStudy(path=path, config=config, summary=jsonable(summary.to_dict()),
                       session=dict(stored.run_info), runs=_frame(pandas, records, k), k=k, r=r,
                       r_backward=r_backward, records=records, runs_done=len(records),
                       runs_total=config.runs_value,
                       partial=None if summary.partial is None else summary.partial.reason)


def _frame(pandas: Any, records: tuple[RunRecord, ...], k: np.ndarray) -> pd.DataFrame:
    """runs.csv's table (:func:`~kcbatch.export.study_outputs.runs_table`) as a
    DataFrame indexed by run, each column typed by the store column that holds it."""
    header, rows = runs_table(records, k)
    columns = {name: [row[j] for row in rows] for j, name in enumerate(header)}
    index = pandas.Index(columns.pop("run"), dtype="int64", name="run")
    return pandas.DataFrame({name: pandas.Series(values, index=index,
                                                 dtype=_dtype(name, values))
                             for name, values in columns.items()}, index=index)


def _dtype(name: str, values: list[Any]) -> str | None:
    """The DataFrame dtype of column ``name``: float64 for REAL columns and r(K)
    (None as NaN), int64 for INTEGER ones (Int64, nullable, when one is None),
    the nullable boolean for flags; None (pandas' own text dtype) for TEXT."""
    column = _COLUMNS.get(name)
    if column is None:  # r@K=<K>, r_backward@K=<K>
        return "float64"
    if column.kind == "bool":
        return "boolean"
    sql = column.sql.split()[0]
    if sql == "REAL":
        return "float64"
    if sql == "INTEGER":
        return "Int64" if any(v is None for v in values) else "int64"
    return None


def _load_scan(pandas: Any, path: Path) -> LoadedScan:
    plan = load_scan(path)
    studies: dict[int | float, LoadedStudy] = {}
    missing: list[int | float] = []
    for value in plan.values:
        point = point_dir(path, plan.param, value)
        if store_exists(point / STORE_NAME):
            studies[value] = _load_study(pandas, point)
        else:
            missing.append(value)
    return LoadedScan(path=path, param=plan.param, values=plan.values, base=plan.base,
                      studies=MappingProxyType(studies), missing=tuple(missing))
