"""``kcbatch.load(DIR)``: a study read back for a notebook (its runs as a pandas
DataFrame, r(K) as an array with its grid, the summary as ``kcbatch report``
makes it) for complete, partial, merged, adiabatic and scanned studies; damaged
stores refused in one line naming the path.

Every expectation is read independently of kcbatch.load: runs.csv with the csv
module, summary.json with json, the records with ``Store.records``."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import r_columns, read_csv

import kcbatch
from kcbatch.export.report import export_store, record_run_info, session_info
from kcbatch.protocol.config import ConfigError, StudyConfig
from kcbatch.results.store import STORE_NAME, Store, StoreError
from kcbatch.run.merge import merge_stores
from kcbatch.run.scan import create_scan, run_point, run_scan
from kcbatch.run.study import run_study
from kcbatch.version import __version__

pd = pytest.importorskip("pandas", reason='pandas is not installed (kcbatch[notebook]; '
                                          '.[test] installs it)')

ROOT = Path(__file__).resolve().parent.parent
# Small and fast on the CPU: about a second per study on 2 cores.
STUDY = dict(nodes=200, m=2, k_num=6, t_transient=1.0, t_measure=1.0, sample_every=5, seed=3,
             device="cpu", batch=2)


def _records(out: Path):
    with Store.open(out / STORE_NAME) as store:
        return store.records()


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """Study directories: ``full`` (4 runs, exported as ``kcbatch run`` does), its
    shards ``a`` (runs 0-1) and ``b`` (2-3) as run_study leaves them (no
    exports), ``merged`` (``kcbatch merge a b``), ``stopped`` (stopped after its
    first batch of 2, the session recorded as the CLI records it) and ``sweep``
    (adiabatic, 2 runs, exported)."""
    base = tmp_path_factory.mktemp("load")
    out = {name: base / name for name in ("full", "a", "b", "merged", "stopped", "sweep")}
    run_study(StudyConfig(runs=4, out=out["full"], **STUDY))
    export_store(out["full"])
    run_study(StudyConfig(runs=4, run_start=0, run_stop=2, out=out["a"], **STUDY))
    run_study(StudyConfig(runs=4, run_start=2, run_stop=4, out=out["b"], **STUDY))
    merge_stores(out["merged"], [out["a"], out["b"]])
    stop = threading.Event()
    stop.set()  # the batch in flight finishes, no other starts
    stopped = run_study(StudyConfig(runs=4, out=out["stopped"], **STUDY), stop=stop)
    assert stopped.interrupted and len(stopped.records) == 2
    record_run_info(out["stopped"], session_info(stopped))
    run_study(StudyConfig(runs=2, sweep="adiabatic", out=out["sweep"], **STUDY))
    export_store(out["sweep"])
    return out


# --------------------------------------------------------------------------- runs.csv

def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _assert_same_cell(cell: str, value, where: str) -> None:
    """A runs.csv cell (as the csv module reads it) against the DataFrame's value."""
    if cell == "":
        assert _missing(value), f"{where}: empty in runs.csv, {value!r} loaded"
    elif isinstance(value, str):
        assert value == cell, where
    elif isinstance(value, (bool, np.bool_)):
        assert cell == str(bool(value)), where
    elif isinstance(value, (int, np.integer)):
        assert int(cell) == value, where
    else:
        want = float(cell)
        assert (math.isnan(want) and math.isnan(value)) or want == value, \
            f"{where}: {cell} in runs.csv, {value!r} loaded"


def _assert_frame_is_runs_csv(frame, path: Path) -> None:
    header, rows = read_csv(path)
    assert header[0] == "run" and frame.index.name == "run"
    assert list(frame.columns) == header[1:]
    assert frame.index.tolist() == [int(row["run"]) for row in rows]
    for name in header[1:]:
        for row, value in zip(rows, frame[name].tolist(), strict=True):
            _assert_same_cell(row[name], value, f"run {row['run']} {name}")


@pytest.mark.parametrize("name", ["full", "merged", "sweep"])
def test_the_runs_are_runs_csv_column_by_column(made, name):
    s = kcbatch.load(made[name])
    assert isinstance(s, kcbatch.LoadedStudy)
    _assert_frame_is_runs_csv(s.runs, made[name] / "runs.csv")


def test_r_and_k_are_the_r_columns_the_records_and_the_grid(made):
    s = kcbatch.load(made["full"])
    header, rows = read_csv(made["full"] / "runs.csv")
    from_csv = np.array([[float(row[c]) for c in r_columns(header)] for row in rows])
    assert s.r.dtype == np.float64 and s.r.shape == (4, 6)
    assert np.array_equal(s.r, from_csv)
    records = _records(made["full"])
    assert np.array_equal(s.r, np.array([rec.r for rec in records]))
    assert np.array_equal(s.r, s.runs[r_columns(header)].to_numpy())
    assert s.k.dtype == np.float64 and np.array_equal(s.k, StudyConfig(**STUDY).k_values)
    assert s.r_backward is None
    assert [rec.run for rec in s.records] == s.runs.index.tolist() == [0, 1, 2, 3]
    assert all(np.array_equal(a.r, b.r) for a, b in zip(s.records, records, strict=True))


def test_the_columns_are_typed_for_analysis(made):
    runs = kcbatch.load(made["full"]).runs
    for name in ("kc", "kc_interp", "mean_k", "kc_qmf", "seconds", "kc_refined"):
        assert runs[name].dtype == np.float64, name
    for name in ("nodes", "edges", "k_max"):
        assert runs[name].dtype == np.int64, name
    assert str(runs["converged"].dtype) == "boolean"
    assert (runs["nodes"] == STUDY["nodes"]).all()
    assert runs["kc_interp"].describe()["count"] == runs["kc_interp"].notna().sum()


def test_summary_config_and_session_are_summary_json(made):
    s = kcbatch.load(made["full"])
    doc = json.loads((made["full"] / "summary.json").read_text())
    assert s.summary == doc["summary"]
    assert s.config.to_dict() == {**doc["config"], "out": str(made["full"])}
    assert s.config.out == made["full"] and s.path == made["full"]
    assert s.session == {k: v for k, v in doc.items()
                         if k not in ("summary", "config", "seed", "version")}
    assert (s.runs_done, s.runs_total, s.partial) == (4, 4, None)


def test_a_moved_study_loads_with_out_where_it_is_now(made, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(made["full"], moved)
    s = kcbatch.load(str(moved))
    assert s.path == moved and s.config.out == moved
    assert s.config == StudyConfig.from_mapping({**kcbatch.load(made["full"]).config.to_dict(),
                                                 "out": moved})
    pd.testing.assert_frame_equal(s.runs, kcbatch.load(made["full"]).runs)


# --------------------------------------------------------------------------- partial, merged

def test_a_shard_without_exports_loads_as_partial(made):
    assert not (made["a"] / "summary.json").exists()
    s = kcbatch.load(made["a"])
    assert (s.runs_done, s.runs_total, s.partial) == (2, 4, "shard 0:2")
    assert s.runs.index.tolist() == [0, 1] and s.r.shape == (2, 6)
    assert s.summary["partial"] == {"runs_done": 2, "runs_total": 4, "run_range": [0, 2],
                                    "reason": "shard 0:2"}
    assert np.array_equal(s.r, np.array([rec.r for rec in _records(made["a"])]))


def test_an_interrupted_study_loads_as_partial(made):
    assert not (made["stopped"] / "summary.json").exists()
    s = kcbatch.load(made["stopped"])
    assert (s.runs_done, s.runs_total, s.partial) == (2, 4, "interrupted")
    assert s.session["interrupted"] is True
    full = kcbatch.load(made["full"])  # the same runs: results never depend on interruptions
    pd.testing.assert_frame_equal(s.runs.drop(columns="seconds"),
                                  full.runs.loc[[0, 1]].drop(columns="seconds"))
    # kcbatch report writes the summary load computed
    export_store(made["stopped"])
    assert json.loads((made["stopped"] / "summary.json").read_text())["summary"] == s.summary


def test_a_study_without_a_finished_run_loads_empty(made, tmp_path):
    cfg = StudyConfig(runs=4, out=tmp_path / "e", **STUDY)
    (tmp_path / "e").mkdir()
    # what a study killed in its first batch leaves: the store, no run
    Store.create(tmp_path / "e" / STORE_NAME, cfg.to_dict(), cfg.k_values, __version__).close()
    s = kcbatch.load(tmp_path / "e")
    assert (s.runs_done, s.runs_total, s.partial) == (0, 4, "incomplete")
    header, _ = read_csv(made["full"] / "runs.csv")  # the same study's columns
    assert s.runs.shape == (0, len(header) - 1) and list(s.runs.columns) == header[1:]
    assert s.r.shape == (0, 6) and s.summary["runs"] == 0 and s.records == ()


def test_a_merged_study_loads_every_run_as_the_unsharded_study(made):
    merged, full = kcbatch.load(made["merged"]), kcbatch.load(made["full"])
    assert (merged.runs_done, merged.runs_total, merged.partial) == (4, 4, None)
    # sharding never changes the results; only the runs' share of batch time differs
    pd.testing.assert_frame_equal(merged.runs.drop(columns="seconds"),
                                  full.runs.drop(columns="seconds"))
    assert np.array_equal(merged.r, full.r)
    shards = _records(made["a"]) + _records(made["b"])
    assert np.array_equal(merged.r, np.array([rec.r for rec in shards]))
    assert merged.session == {}  # a merge records no session


def test_an_adiabatic_study_r_is_the_forward_branch(made):
    s = kcbatch.load(made["sweep"])
    records = _records(made["sweep"])
    assert np.array_equal(s.r, np.array([rec.sweep.r_forward for rec in records]))
    assert np.array_equal(s.r_backward, np.array([rec.sweep.r_backward for rec in records]))
    backward = [c for c in s.runs.columns if c.startswith("r_backward@K=")]
    assert len(backward) == 6 and np.array_equal(s.runs[backward].to_numpy(), s.r_backward)


# --------------------------------------------------------------------------- scans

def test_a_scan_loads_one_study_per_value_started(tmp_path):
    base = StudyConfig(runs=2, **{**STUDY, "nodes": 100})
    plan = create_scan(base, "nodes", [100, 150], tmp_path / "s")
    run_point(plan.point_config(100), resume=False)
    scan = kcbatch.load(tmp_path / "s")
    assert isinstance(scan, kcbatch.LoadedScan)
    manifest = json.loads((tmp_path / "s" / "scan.json").read_text())
    assert (scan.param, list(scan.values)) == (manifest["param"], manifest["values"])
    assert list(scan.studies) == [100] and scan.missing == (150,) and not scan.complete
    run_scan(plan)
    scan = kcbatch.load(tmp_path / "s")
    assert list(scan.studies) == [100, 150] and scan.missing == () and scan.complete
    assert scan.base.to_dict() == {**manifest["base"], "out": None}
    for value, study in scan.studies.items():
        point = tmp_path / "s" / f"nodes={value}"
        assert study.path == point and study.config.nodes == value
        assert (study.runs["nodes"] == value).all()
        _assert_frame_is_runs_csv(study.runs, point / "runs.csv")
        doc = json.loads((point / "summary.json").read_text())
        assert study.summary == doc["summary"]


# --------------------------------------------------------------------------- refusals

def _copy(made, tmp_path: Path) -> Path:
    d = tmp_path / "copy"
    shutil.copytree(made["full"], d)
    return d


def _sql(statement: str, *params):
    def damage(d: Path) -> Path:
        with contextlib.closing(sqlite3.connect(d / STORE_NAME)) as con, con:
            con.execute(statement, params)
        return d
    return damage


def _truncated(d: Path) -> Path:
    store = d / STORE_NAME
    with open(store, "r+b") as fh:
        fh.truncate(store.stat().st_size // 2)
    return d


def _garbage(d: Path) -> Path:
    (d / STORE_NAME).write_bytes(b"not a database " * 100)
    return d


def _empty_file(d: Path) -> Path:
    (d / STORE_NAME).write_bytes(b"")
    return d


def _no_store(d: Path) -> Path:
    (d / STORE_NAME).unlink()
    return d


def _scan_json(text: str):
    def damage(d: Path) -> Path:
        s = d.parent / "scan"
        s.mkdir()
        (s / "scan.json").write_text(text)
        return s
    return damage


def _both(d: Path) -> Path:
    (d / "scan.json").write_text("{}")
    return d


REFUSED = {
    "does-not-exist": (lambda d: d / "nowhere", ("does not exist",)),
    "a-file": (lambda d: d / "runs.csv", ("is a file", "not a study directory")),
    "no-store": (_no_store, ("no kcbatch study in", "neither kcbatch.sqlite nor scan.json")),
    "empty-store": (_empty_file, ("kcbatch.sqlite", "holds no study")),
    "garbage": (_garbage, ("kcbatch.sqlite", "not a readable kcbatch store")),
    "truncated": (_truncated, ("kcbatch.sqlite", "not a readable kcbatch store")),
    "r-not-json": (_sql("UPDATE runs SET r='[0.1,' WHERE run=1"),
                   ("kcbatch.sqlite", "run 1's r", "not a JSON array of numbers")),
    "kc-text": (_sql("UPDATE runs SET kc_interp='abc' WHERE run=2"),
                ("kcbatch.sqlite", "run 2's kc_interp", "not a number")),
    "config-invalid": (_sql("UPDATE meta SET value=? WHERE key='config'",
                            json.dumps({**StudyConfig(runs=4, **STUDY).to_dict(), "nodes": -5})),
                       ("kcbatch.sqlite", "config", "nodes=-5")),
    "config-lacks-nodes": (_sql("UPDATE meta SET value=json_remove(value, '$.nodes') "
                                "WHERE key='config'"),
                           ("kcbatch.sqlite", "damaged", "config lacks nodes")),
    "config-not-json": (_sql("UPDATE meta SET value='{' WHERE key='config'"),
                        ("kcbatch.sqlite", "config is missing or unreadable")),
    "scan-json-damaged": (_scan_json('{"param": '), ("scan.json", "damaged", "not JSON")),
    "study-and-scan": (_both, ("both a study", "and a scan")),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_damaged_or_missing_study_is_refused_in_one_line_naming_the_path(made, tmp_path,
                                                                            name):
    damage, words = REFUSED[name]
    target = damage(_copy(made, tmp_path))
    with pytest.raises(StoreError) as caught:
        kcbatch.load(target)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert str(target) in message, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("value", [3, None, b"dir", ""])
def test_what_is_not_a_path_is_a_config_error(value):
    with pytest.raises(ConfigError, match=r"^invalid directory=.*study or scan directory"):
        kcbatch.load(value)


def test_without_pandas_one_line_says_what_to_install(made, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    with pytest.raises(ImportError) as caught:
        kcbatch.load(made["full"])
    message = str(caught.value)
    assert "\n" not in message and caught.value.__cause__ is None
    assert 'pip install "kcbatch[notebook]"' in message and "pip install pandas" in message


def test_import_kcbatch_does_not_import_pandas():
    code = "import kcbatch, sys; assert 'pandas' not in sys.modules, 'pandas imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- documentation

def _outputs_md_section(title: str) -> str:
    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)
    return next(p for p in parts[1:] if p.splitlines()[0].strip() == title)


def test_outputs_md_documents_every_field_of_what_load_returns():
    documented = set(re.findall(r"`([^`]+)`", _outputs_md_section("In Python: kcbatch.load")))
    for cls in (kcbatch.LoadedStudy, kcbatch.LoadedScan):
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in documented]
        assert not missing, f"{cls.__name__} fields not in docs/outputs.md: {missing}"
    assert "complete" in documented


def test_readme_shows_load_in_a_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### In a notebook", 1)[1].split("\n#", 1)[0]
    assert 'kcbatch.load("results")' in section and "s.r.mean(axis=0)" in section
    assert 'pip install "kcbatch[notebook]"' in section
