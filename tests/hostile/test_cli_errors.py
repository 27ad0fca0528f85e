"""Each error a CLI command reports: its one line (or lines) on stderr and its
exit status, for every kind of exception ``kcbatch.cli.errors.one_line_errors``
maps, raised where each command does its work."""
from __future__ import annotations

import sqlite3

import pytest
from helpers import invoke

from kcbatch.engines import EngineUnavailable
from kcbatch.networks.io import GraphFileError
from kcbatch.protocol.config import ConfigError
from kcbatch.results.store import STORE_NAME, Store, StoreError, StoreIOError
from kcbatch.run.scheduler import ClusterError

OPTIONS = ["--runs", "2", "--nodes", "100", "--k-num", "4", "--t-transient", "0.5",
           "--t-measure", "0.5", "--sample-every", "2", "--device", "cpu", "--seed", "1",
           "--quiet"]

# (exception, stderr with OUT for the study's directory, exit status) for `kcbatch run`
RUN_CASES = [
    (ConfigError("nodes", 3, "must be >= 4"), "Error: invalid nodes=3: must be >= 4\n", 2),
    (StoreError("the store is locked"), "Error: the store is locked\n", 2),
    (EngineUnavailable("no GPU"), "Error: no GPU\n", 2),
    (GraphFileError("g.txt", "bad edge", line=3),
     "Error: invalid graph file g.txt, line 3: bad edge\n", 2),
    (ClusterError("a worker died"),
     "Error: a worker died; the finished batches are kept in the store\n"
     "resume with: kcbatch run --resume OUT\n", 1),
    (OSError(28, "No space left on device", "OUT/runs.csv"),
     "Error: writing OUT/runs.csv failed: No space left on device; the finished batches are "
     "kept in the store: free some space or fix the permissions, then resume\n"
     "resume with: kcbatch run --resume OUT\n", 1),
    (sqlite3.OperationalError("disk I/O error"),
     "Error: writing the store in OUT failed (disk I/O error); the finished batches are kept "
     "in the store: free some space or fix the permissions, then resume\n"
     "resume with: kcbatch run --resume OUT\n", 1),
    (StoreIOError("writing OUT/kcbatch.sqlite failed"),
     "Error: writing OUT/kcbatch.sqlite failed; the finished batches are kept in the store: "
     "free some space or fix the permissions, then resume\n"
     "resume with: kcbatch run --resume OUT\n", 1),
    (sqlite3.DatabaseError("file is not a database"),
     "Error: the store in OUT is damaged (SQLite: file is not a database); restore it from a "
     "backup, or start a new study in another --out\n", 2),
    (KeyboardInterrupt(),
     "aborted; finished batches are in the store\nresume with: kcbatch run --resume OUT\n",
     130),
]


def _raiser(exc: BaseException):
    def raise_it(*args, **kwargs):
        raise exc
    return raise_it


def _ids(cases) -> list[str]:
    return [type(case[0]).__name__ for case in cases]


def _check(result, stderr: str, code: int, out) -> None:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stderr.replace(str(out), "OUT") == stderr
    assert result.stdout == ""


@pytest.mark.parametrize("exc, stderr, code", RUN_CASES, ids=_ids(RUN_CASES))
def test_run_reports_each_error(tmp_path, monkeypatch, exc, stderr, code):
    """The error after the study's store was made (what the lines say is kept)."""
    import kcbatch.run.study
    out = tmp_path / "study"

    def store_then_raise(cfg, **kwargs):  # the study's store exists when it fails
        out.mkdir(parents=True, exist_ok=True)
        Store.create(out / STORE_NAME, cfg.to_dict(), cfg.k_values, "x").close()
        raise exc
    monkeypatch.setattr(kcbatch.run.study, "run_study", store_then_raise)
    _check(invoke(["run", *OPTIONS, "--out", out]), stderr, code, out)


NOTHING_STORED = ("; nothing was stored: free some space or fix the permissions, then run "
                  "the same command again\n")


@pytest.mark.parametrize("exc, line", [
    (OSError(28, "No space left on device", "OUT/kcbatch.sqlite.creating"),
     "Error: writing OUT/kcbatch.sqlite.creating failed: No space left on device"),
    (sqlite3.OperationalError("database or disk is full"),
     "Error: writing the store in OUT failed (database or disk is full)"),
], ids=["OSError", "OperationalError"])
def test_run_that_failed_before_its_store_existed_says_so(tmp_path, monkeypatch, exc, line):
    """No store (its creation failed): nothing to resume, so no resume command."""
    import kcbatch.run.study
    monkeypatch.setattr(kcbatch.run.study, "run_study", _raiser(exc))
    out = tmp_path / "study"
    _check(invoke(["run", *OPTIONS, "--out", out]), line + NOTHING_STORED, 1, out)


# The run-time errors of RUN_CASES when no store was made yet (a scheduler that
# cannot be reached, a directory that cannot be written): no line says that
# finished batches are kept, and there is no resume command.
NO_STORE_CASES = [
    (ClusterError("a worker died"), "Error: a worker died\n", 1),
    (OSError(28, "No space left on device", "OUT/runs.csv"),
     "Error: writing OUT/runs.csv failed: No space left on device; nothing was stored: free "
     "some space or fix the permissions, then run the same command again\n", 1),
    (StoreIOError("writing OUT/kcbatch.sqlite failed"),
     "Error: writing OUT/kcbatch.sqlite failed; nothing was stored: free some space or fix "
     "the permissions, then run the same command again\n", 1),
    (KeyboardInterrupt(), "aborted before anything was stored\n", 130),
]


@pytest.mark.parametrize("exc, stderr, code", NO_STORE_CASES, ids=_ids(NO_STORE_CASES))
def test_run_error_before_a_store_claims_none(tmp_path, monkeypatch, exc, stderr, code):
    import kcbatch.run.study
    monkeypatch.setattr(kcbatch.run.study, "run_study", _raiser(exc))
    out = tmp_path / "study"
    _check(invoke(["run", *OPTIONS, "--out", out]), stderr, code, out)
    assert not (out / STORE_NAME).exists()


SCAN_RESUME = "resume with: kcbatch scan --resume OUT\n"
SCAN_CASES = [
    *[case for case in RUN_CASES[:4]],
    (ClusterError("a worker died"),
     "Error: a worker died; finished sub-studies and batches are kept\n" + SCAN_RESUME, 1),
    (OSError(13, "Permission denied", "OUT/scan.csv"),
     "Error: writing OUT/scan.csv failed: Permission denied; the finished batches are kept "
     "in the store: free some space or fix the permissions, then resume\n"
     "resume with: kcbatch scan --resume OUT\n", 1),
    (sqlite3.DatabaseError("file is not a database"),
     "Error: a store of the scan in OUT is damaged (SQLite: file is not a database); remove "
     "that value's directory and resume the scan\n", 2),
    (KeyboardInterrupt(), "aborted; finished sub-studies and batches are kept\n" + SCAN_RESUME,
     130),
]


@pytest.mark.parametrize("exc, stderr, code", SCAN_CASES, ids=_ids(SCAN_CASES))
def test_scan_reports_each_error(tmp_path, monkeypatch, exc, stderr, code):
    import kcbatch.run.scan
    monkeypatch.setattr(kcbatch.run.scan, "run_scan", _raiser(exc))
    out = tmp_path / "scan"
    result = invoke(["scan", "--param", "m", "--values", "2,3", *OPTIONS,
                     "--out", out])
    assert result.exit_code == code, (result.exit_code, result.output)
    # the scan says where its points go before it runs them
    assert result.stderr.replace(str(out), "OUT").endswith(stderr)


@pytest.mark.parametrize("exc, stderr, code", [
    (StoreError("shards of different studies"), "Error: shards of different studies\n", 2),
    (ConfigError("runs", 3, "must match"), "Error: invalid runs=3: must match\n", 2),
    (OSError(28, "No space left on device", "OUT/kcbatch.sqlite"),
     "Error: writing OUT/kcbatch.sqlite failed: No space left on device; free some space or "
     "fix the permissions, then merge again\n", 1),
    (sqlite3.DatabaseError("file is not a database"),
     "Error: a shard's store is damaged (SQLite: file is not a database); restore it from a "
     "backup or run that shard again\n", 2),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None)
def test_merge_reports_each_error(tmp_path, monkeypatch, exc, stderr, code):
    import kcbatch.run.merge
    monkeypatch.setattr(kcbatch.run.merge, "merge_stores", _raiser(exc))
    out = tmp_path / "merged"
    _check(invoke(["merge", out, tmp_path]), stderr, code, out)


@pytest.mark.parametrize("exc, stderr, code", [
    (StoreError("no store in OUT"), "Error: no store in OUT\n", 2),
    (sqlite3.OperationalError("database is locked"),
     "Error: writing the store in OUT failed (database is locked); free some space or fix the "
     "permissions, then run `kcbatch report OUT` again\n", 1),
    (sqlite3.DatabaseError("file is not a database"),
     "Error: the store in OUT is damaged (SQLite: file is not a database); restore it from a "
     "backup, or start a new study in another --out\n", 2),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None)
def test_report_reports_each_error(tmp_path, monkeypatch, exc, stderr, code):
    import kcbatch.export.report
    monkeypatch.setattr(kcbatch.export.report, "export_store", _raiser(exc))
    _check(invoke(["report", tmp_path]), stderr, code, tmp_path)


TUNE_CASES = [RUN_CASES[0], *RUN_CASES[2:4]]


@pytest.mark.parametrize("exc, stderr, code", TUNE_CASES, ids=_ids(TUNE_CASES))
def test_tune_reports_each_error(tmp_path, monkeypatch, exc, stderr, code):
    import kcbatch.run.tuning
    monkeypatch.setattr(kcbatch.run.tuning, "tune", _raiser(exc))
    result = invoke(["tune", "--nodes", "100", "--k-num", "4", "--t-transient", "0.5",
                     "--t-measure", "0.5", "--device", "cpu", "--dt", "0.01"])
    _check(result, stderr, code, tmp_path)


@pytest.mark.parametrize("exc", [ClusterError("x"), OSError(5, "EIO"),
                                 sqlite3.DatabaseError("x"), KeyboardInterrupt()],
                         ids=lambda e: type(e).__name__)
def test_kinds_without_their_argument_propagate(exc):
    from kcbatch.cli.errors import one_line_errors
    with pytest.raises(type(exc)), one_line_errors():
        raise exc
