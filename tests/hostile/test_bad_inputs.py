"""Every failure a clear message: one table of bad inputs and failures, each run
through the real command line.

Each case gives the argv (``{d}`` is the case's own directory, ``{study}`` a
copy of a small finished study), a setup that prepares files (a damaged
store, a held lock, a TOML file), a fault injected in-process where the
failure is a run-time one (a full disk, a signal during the exports), the
exit status and the words the error line must contain. The test asserts the
status, no traceback anywhere, and:

* status 2 (bad input): exactly one non-empty stderr line, ``Error: ...``;
* status 1 (run-time I/O failure): the error line and the resume command,
  and the store still intact (``PRAGMA integrity_check``, whole batches);
* otherwise the words appear in stderr.

Cases that could allocate a lot run in a real process under an address-space
limit (RLIMIT_AS), so an attempt to allocate would crash instead of passing.
The double Ctrl-C during graph generation is a separate test (a real process
and two signals).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import StderrWatch, run_cli

import kcbatch.export.report
from kcbatch.results.store import LOCK_NAME, STORE_NAME, Store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and rlimits")

KCBATCH = [sys.executable, "-m", "kcbatch"]
# A valid study small enough to run in about a second (flags given later override these).
TINY = ["run", "--runs", "3", "--batch", "1", "--nodes", "100", "--k-num", "4",
        "--t-transient", "0.5", "--t-measure", "0.5", "--sample-every", "2",
        "--device", "cpu", "--seed", "1", "--quiet"]
# Address space for the processes that must refuse before allocating: enough for
# Python, numpy and numba (~0.4 GB mapped), far below any of their studies.
ADDRESS_SPACE = 3 * 2**30
TIMEOUT = 120


@dataclass
class Ctx:
    """What a case's setup and check see: its directory, the finished study to
    copy from, values for the argv/words templates, and cleanups."""

    d: Path
    study: Path
    values: dict[str, Any] = field(default_factory=dict)
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def fmt(self, text: str) -> str:
        return text.format(d=self.d, study=self.d / "study", **self.values)


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    code: int
    words: tuple[str, ...]
    setup: Callable[[Ctx], None] | None = None
    fault: Callable[[pytest.MonkeyPatch, Ctx], None] | None = None
    check: Callable[[Ctx, str], None] | None = None
    limited: bool = False  # a real process under RLIMIT_AS
    slow: bool = False  # the slow lane's (a real process each: the fast lane has unit tests)


# --------------------------------------------------------------------------- setups

def copy_study(ctx: Ctx) -> None:
    shutil.copytree(ctx.study, ctx.d / "study")


def store_of(ctx: Ctx) -> Path:
    return ctx.d / "study" / STORE_NAME


def random_bytes(ctx: Ctx) -> None:
    copy_study(ctx)
    store_of(ctx).write_bytes(os.urandom(8192))
    for extra in ("-wal", "-shm"):
        Path(str(store_of(ctx)) + extra).unlink(missing_ok=True)


def corrupt_header(ctx: Ctx) -> None:
    """Overwrite SQLite's 100-byte header (magic, page size, versions) with junk."""
    copy_study(ctx)
    _checkpoint(store_of(ctx))
    data = bytearray(store_of(ctx).read_bytes())
    data[:100] = bytes((37 * i + 11) % 256 for i in range(100))
    store_of(ctx).write_bytes(bytes(data))


def schema_version(value: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        copy_study(ctx)
        with contextlib.closing(sqlite3.connect(store_of(ctx))) as con, con:
            con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (value,))
    return setup


def foreign_database(ctx: Ctx) -> None:
    (ctx.d / "study").mkdir()
    with contextlib.closing(sqlite3.connect(store_of(ctx))) as con, con:
        con.execute("CREATE TABLE notes (text TEXT)")


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the database file, so the file alone is the store."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")


def toml(text: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        (ctx.d / "study.toml").write_text(text)
    return setup


def store_sql(statement: str, *params: Any) -> Callable[[Ctx], None]:
    """A copy of the finished study with ``statement`` run on its store."""
    def setup(ctx: Ctx) -> None:
        copy_study(ctx)
        with contextlib.closing(sqlite3.connect(store_of(ctx))) as con, con:
            con.execute(statement, params)
    return setup


def scan_manifest(text: str) -> Callable[[Ctx], None]:
    """A scan directory ``{d}/s`` whose scan.json holds ``text``."""
    def setup(ctx: Ctx) -> None:
        (ctx.d / "s").mkdir()
        (ctx.d / "s" / "scan.json").write_text(text)
    return setup


def special_file(name: str, kind: str) -> Callable[[Ctx], None]:
    """``{d}/NAME`` as a FIFO (``fifo``: a read would block), a link to
    /dev/zero (``zero``: a read never ends) or a sparse regular file one byte
    over a limit (``big:BYTES``: no data written)."""
    def setup(ctx: Ctx) -> None:
        path = ctx.d / name
        path.parent.mkdir(exist_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "zero":
            path.symlink_to("/dev/zero")
        else:
            with open(path, "wb") as f:
                f.truncate(int(kind.split(":")[1]) + 1)
    return setup


def symlinked_study(ctx: Ctx) -> None:
    copy_study(ctx)
    (ctx.d / "alias").symlink_to(ctx.d / "study", target_is_directory=True)


def held_by_another_process(ctx: Ctx) -> None:
    """A second real process holds the study directory's lock (kcbatch's own code)."""
    copy_study(ctx)
    code = ("import sys; from kcbatch.results.store import study_lock\n"
            "with study_lock(sys.argv[1]):\n"
            "    print('locked', flush=True); sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(ctx.d / "study")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def release():
        proc.stdin.close()
        proc.wait(timeout=TIMEOUT)

    ctx.cleanup.callback(release)
    assert proc.stdout.readline().strip() == "locked"
    ctx.values["pid"] = proc.pid


# --------------------------------------------------------------------------- faults

class _FullDisk:
    """A connection whose second statement of a transaction fails as SQLite does
    on a full disk (SQLITE_FULL), after the first one went through: the batch's
    transaction must then be rolled back whole."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        self._statements = 0

    def _count(self) -> None:
        self._statements += 1
        if self._statements == 2:
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, *args):
        self._count()
        return self._conn.execute(*args)

    def executemany(self, *args):
        self._count()
        return self._conn.executemany(*args)

    def __enter__(self):
        return self._conn.__enter__()

    def __exit__(self, *exc):
        return self._conn.__exit__(*exc)


def disk_full_at_batch(n: int) -> Callable[[pytest.MonkeyPatch, Ctx], None]:
    """The n-th batch (1-based) meets a full disk in the middle of its transaction."""
    def fault(mp: pytest.MonkeyPatch, ctx: Ctx) -> None:
        original = Store.write_batch
        calls = []

        def write_batch(self, records, **kw):
            calls.append(1)
            if len(calls) != n:
                return original(self, records, **kw)
            real, self.conn = self.conn, _FullDisk(self.conn)
            try:
                return original(self, records, **kw)
            finally:
                self.conn = real

        mp.setattr(Store, "write_batch", write_batch)
    return fault


def exports_fail(mp: pytest.MonkeyPatch, ctx: Ctx) -> None:
    def no_space(path, *args, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    mp.setattr(kcbatch.export.report, "write_runs_csv", no_space)


def signal_during_exports(sig: int) -> Callable[[pytest.MonkeyPatch, Ctx], None]:
    def fault(mp: pytest.MonkeyPatch, ctx: Ctx) -> None:
        original = kcbatch.export.report.write_runs_csv

        def write_runs_csv(*args, **kw):
            os.kill(os.getpid(), sig)
            time.sleep(0.05)  # the handler runs here, in the middle of the exports
            return original(*args, **kw)
        mp.setattr(kcbatch.export.report, "write_runs_csv", write_runs_csv)
    return fault


# --------------------------------------------------------------------------- checks

def store_intact(runs: int) -> Callable[[Ctx, str], None]:
    """The store passes SQLite's integrity check and holds ``runs`` whole batches'
    runs; the printed resume command then completes the study."""
    def check(ctx: Ctx, stderr: str) -> None:
        path = ctx.d / "out" / STORE_NAME
        with contextlib.closing(sqlite3.connect(path)) as con:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == runs
            stored = con.execute("SELECT sum(n_runs) FROM batches").fetchone()[0] or 0
            assert stored == runs
        resume = stderr.strip().splitlines()[-1]
        assert resume == f"resume with: kcbatch run --resume {ctx.d / 'out'}"
        done = invoke(resume.split(": ", 1)[1].split()[1:])
        assert done.exit_code == 0, done.output
        with contextlib.closing(sqlite3.connect(path)) as con:
            assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 3
    return check


def runs_failed_with_reason(ctx: Ctx, stderr: str) -> None:
    with contextlib.closing(sqlite3.connect(ctx.d / "out" / STORE_NAME)) as con:
        rows = con.execute("SELECT status, fail_reason FROM runs").fetchall()
    assert len(rows) == 3
    for status, reason in rows:
        assert status == "failed" and "overflow float32" in reason, (status, reason)


def exports_written(ctx: Ctx, stderr: str) -> None:
    for name in ("summary.json", "runs.csv", "kc_hist.png", "r_curves.png"):
        assert (ctx.d / "out" / name).is_file(), name


def nothing_created(ctx: Ctx, stderr: str) -> None:
    assert not (ctx.d / "out").exists()


def merge_not_created(ctx: Ctx, stderr: str) -> None:
    assert not (ctx.d / "merged").exists()


# --------------------------------------------------------------------------- the table

OUT = ("--out", "{d}/out")
RESUME = ("run", "--resume", "{study}", "--quiet")
REPORT = ("report", "{study}")
MERGE = ("merge", "{d}/merged", "{study}")
DAMAGED = {
    "random-bytes": (random_bytes, ("not a readable kcbatch store", "restore it")),
    "corrupt-header": (corrupt_header, ("not a readable kcbatch store", "restore it")),
    "schema-version-unparsable": (schema_version("one"),
                                  ("schema_version", "'one'", "not a number", "restore it")),
}

CASES: dict[str, Case] = {}
for _name, (_setup, _words) in DAMAGED.items():
    for _cmd, _argv in (("resume", RESUME), ("report", REPORT), ("merge", MERGE)):
        CASES[f"damaged-store-{_name}-{_cmd}"] = Case(
            _argv, 2, (STORE_NAME, *_words), setup=_setup,
            check=merge_not_created if _cmd == "merge" else None)

CASES.update({
    "store-schema-from-the-future": Case(REPORT, 2, ("schema 99", "upgrade kcbatch"),
                                         setup=schema_version("99")),
    # a protocol field every store has had, gone: not read as its default
    "store-config-lacks-nodes": Case(
        REPORT, 2, (STORE_NAME, "damaged", "config lacks nodes", "restore it"),
        setup=store_sql("UPDATE meta SET value=json_remove(value, '$.nodes') "
                        "WHERE key='config'")),
    "store-foreign-database": Case(RESUME, 2, ("not a kcbatch store", "meta", "another --out"),
                                   setup=foreign_database),

    # --nodes beyond what fits: refused before allocating (real process, RLIMIT_AS)
    "nodes-above-index-limit": Case(
        ("run", "--nodes", "3000000000", "--runs", "2", "--device", "cpu", "--seed", "1",
         "--quiet", *OUT), 2, ("nodes=3000000000", "2147483647"), limited=True,
        check=nothing_created),
    "nodes-beyond-memory": Case(
        ("run", "--nodes", "2000000000", "--runs", "2", "--device", "cpu", "--seed", "1",
         "--quiet", *OUT), 2, ("nodes=2000000000", "memory", "available", "smaller --nodes"),
        limited=True, check=nothing_created),
    "batch-beyond-memory": Case(
        ("run", "--nodes", "2000000", "--k-num", "4", "--runs", "4096", "--batch", "1024",
         "--device", "cpu", "--seed", "1", "--quiet", *OUT), 2,
        ("batch=1024", "memory", "available", "--batch "), limited=True, check=nothing_created),

    # dt too small: step count and memory named, no hang, nothing allocated
    "dt-1e-300": Case((*TINY, "--dt", "1e-300"), 2, ("dt=1e-300", "RK4 steps", "larger dt")),
    "dt-subnormal": Case((*TINY, "--dt", "5e-324"), 2, ("dt=5e-324", "inf RK4 steps")),
    "dt-1e-9-every-step": Case((*TINY, "--dt", "1e-9", "--sample-every", "1"), 2,
                               ("dt=1e-09", "1e+09 RK4 steps", "r samples", "GB")),
    "samples-beyond-memory": Case(
        ("run", "--nodes", "100", "--runs", "2", "--k-num", "50", "--dt", "1e-7",
         "--t-transient", "0", "--t-measure", "5", "--sample-every", "1", "--device", "cpu",
         "--seed", "1", "--quiet", *OUT), 2,
        ("dt=1e-07", "50000000 RK4 steps", "r samples", "memory", "sample_every"),
        limited=True, check=nothing_created),

    # dt beyond RK4's stability bound at the largest coupling: the largest dt allowed
    "dt-5": Case((*TINY, "--dt", "5"), 2, ("dt=5.0", "unstable", "largest dt allowed is 0.278")),
    "dt-1e20": Case((*TINY, "--dt", "1e20"), 2, ("dt=1e+20", "largest dt allowed is 0.278")),
    "dt-unstable-at-k-max-1": Case((*TINY, "--dt", "2", "--k-max", "1"), 2,
                                   ("dt=2.0", "K_max=1", "largest dt allowed is 1.39")),

    # a full disk mid-run (the store / its WAL) and failing exports: exit 1, resume
    "disk-full-mid-run": Case((*TINY, *OUT), 1, ("database or disk is full", "resume"),
                              fault=disk_full_at_batch(2), check=store_intact(1)),
    "exports-fail": Case((*TINY, *OUT), 1, ("runs.csv", "No space left on device"),
                         fault=exports_fail, check=store_intact(3)),

    # a second process resuming the same directory
    "resume-while-another-process-runs-it": Case(
        RESUME, 2, ("in use by another kcbatch process", "pid {pid}", "{study}"),
        setup=held_by_another_process),

    # out: wrong type in TOML, empty on the command line
    "toml-out-wrong-type": Case(("run", "--config", "{d}/study.toml", "--quiet"), 2,
                                ("out=5", "directory path"), setup=toml("runs = 2\nout = 5\n")),
    "out-empty": Case((*TINY, "--out", ""), 2, ("out=''", "not empty")),
    "resume-empty": Case(("run", "--resume", "", "--quiet"), 2, ("resume=''", "not empty")),

    "k-num-1-with-a-range": Case((*TINY, "--k-num", "1", "--k-min", "0.5", "--k-max", "2"), 2,
                                 ("k_num=1", "k_min == k_max", "--k-max 0.5", "--k-num >= 2")),

    "merge-same-shard-twice": Case(("merge", "{d}/merged", "{study}", "{study}"), 2,
                                   ("shards", "given twice"), setup=copy_study,
                                   check=merge_not_created),
    "merge-same-shard-by-two-paths": Case(("merge", "{d}/merged", "{study}", "{d}/alias"), 2,
                                          ("shards", "given twice", "the same store"),
                                          setup=symlinked_study, check=merge_not_created),

    # overflow: the runs fail with a reason, numpy prints nothing (warnings are errors here)
    "omega-overflows-float32": Case((*TINY, "--omega-sigma", "1e39", *OUT), 0, (),
                                    check=runs_failed_with_reason),

    # a signal during the final exports: the exports finish, the status says signalled
    "sigint-during-exports": Case((*TINY, *OUT), 130, ("SIGINT", "complete"),
                                  fault=signal_during_exports(signal.SIGINT),
                                  check=exports_written),
    "sigterm-during-exports": Case((*TINY, *OUT), 143, ("SIGTERM", "complete"),
                                   fault=signal_during_exports(signal.SIGTERM),
                                   check=exports_written),

    # click's own usage errors, one line like the rest
    "click-not-an-integer": Case((*TINY, "--runs", "many"), 2,
                                 ("--runs", "'many'", "integer", "kcbatch run --help")),
    "click-unknown-option": Case((*TINY, "--no-such-flag"), 2,
                                 ("--no-such-flag", "kcbatch run --help")),
    "click-bad-choice": Case((*TINY, "--device", "tpu"), 2,
                             ("--device", "'tpu'", "'cpu'", "'gpu'")),
    "click-missing-argument": Case(("merge",), 2, ("Missing argument", "OUT_DIR")),
    "click-unknown-command": Case(("bogus",), 2, ("bogus", "kcbatch --help")),
})

# Findings of an adversarial harness (issue 22): each case hung, allocated
# without bound, printed a traceback or was silently wrong before its fix. The
# real-process ones are slow; tests/hostile/test_input_bounds.py checks the same
# limits in-process for the fast lane.
CASES.update({
    # an --out that cannot be made (Linux's /proc says writable to root): refused
    # before any work, exit 2, and no line about a store that does not exist
    **({"out-under-proc": Case((*TINY, "--out", "/proc/kcbatch-no-such-dir"), 2,
                               ("out='/proc/kcbatch-no-such-dir'", "refuses a new directory")),
        "scan-out-under-proc": Case(("scan", "--param", "nodes", "--values", "100,200",
                                     *TINY[1:5], *TINY[7:], "--out", "/proc/kcbatch-no-such-dir"),
                                    2, ("out='/proc/kcbatch-no-such-dir'", "refuses")),
        "merge-out-under-proc": Case(("merge", "/proc/kcbatch-no-such-dir", "{study}"), 2,
                                     ("out='/proc/kcbatch-no-such-dir'", "refuses"),
                                     setup=copy_study)}
       if Path("/proc/self").is_dir() else {}),

    # a refine TOL float64 cannot resolve: refused, not a refinement that never ends
    "refine-1e-17": Case((*TINY, "--refine", "1e-17", *OUT), 2,
                         ("refine=1e-17", "at least 1.28e-13", "float64"), limited=True, slow=True,
                         check=nothing_created),
    "refine-1e-300": Case((*TINY, "--refine", "1e-300", *OUT), 2,
                          ("refine=1e-300", "at least 1.28e-13"), limited=True, slow=True,
                          check=nothing_created),

    # a spread whose theory overflows float64: refused before a store is made
    "omega-sigma-1e308": Case((*TINY, "--omega-sigma", "1e308", *OUT), 2,
                              ("omega_sigma=1e+308", "between 1e-100 and 1e+100"),
                              check=nothing_created),
    "omega-sigma-subnormal": Case((*TINY, "--omega-sigma", "5e-324", *OUT), 2,
                                  ("omega_sigma=5e-324", "or between 1e-100"),
                                  check=nothing_created),

    # counts beyond the documented limits: refused before anything is allocated
    "runs-3e9": Case((*TINY, "--runs", "3000000000", *OUT), 2,
                     ("runs=3000000000", "<= 1000000", "Limits"), limited=True, slow=True,
                     check=nothing_created),
    "runs-1e8": Case((*TINY, "--runs", "100000000", *OUT), 2,
                     ("runs=100000000", "<= 1000000"), limited=True, slow=True, check=nothing_created),
    "k-num-3e9": Case((*TINY, "--k-num", "3000000000", *OUT), 2,
                      ("k_num=3000000000", "<= 10000", "Limits"), limited=True, slow=True,
                      check=nothing_created),
    "refine-points-3e9": Case((*TINY, "--refine", "0.01", "--refine-points", "3000000000",
                               *OUT), 2, ("refine_points=3000000000", "<= 1000"),
                              limited=True, slow=True, check=nothing_created),
    "batch-3e9": Case((*TINY, "--batch", "3000000000", *OUT), 2,
                      ("batch=3000000000", "<= 1000000"), limited=True, slow=True, check=nothing_created),
    "producers-1e6": Case((*TINY, "--producers", "1000000", *OUT), 2,
                          ("producers=1000000", "<= 256"), limited=True, slow=True,
                          check=nothing_created),
    "tune-batches-3e9": Case(("tune", "--runs", "2", "--nodes", "100", "--device", "cpu",
                              "--batches", "1,3000000000"), 2,
                             ("batches='1,3000000000'", ">= 1 and <= 1000000"),
                             limited=True, slow=True),
    "tune-batches-beyond-memory": Case(
        ("tune", "--runs", "2", "--nodes", "2000000", "--k-num", "4", "--device", "cpu",
         "--batches", "1,4096"), 2, ("batches=4096", "memory", "available"), limited=True, slow=True),
    "tune-steps-1e9": Case(("tune", "--runs", "2", "--nodes", "100", "--device", "cpu",
                            "--steps", "1000000000"), 2,
                           ("steps=1000000000", ">= 1 and <= 10000"), limited=True, slow=True),
    "scheduler-local-64": Case((*TINY, "--scheduler", "local:64", *OUT), 2,
                               ("scheduler='local:64'", "at most", "CPU core"), limited=True, slow=True,
                               check=nothing_created),
    "scan-1001-values": Case(("scan", "--param", "nodes",
                              "--values", ",".join(str(100 + i) for i in range(1001)),
                              "--runs", "2", "--device", "cpu", "--out", "{d}/scan"), 2,
                             ("values='1001 values'", "at most 1000"), limited=True, slow=True),

    # files that are not regular, or too large: refused before they are opened
    "config-dev-zero": Case(("run", "--config", "/dev/zero", "--quiet"), 2,
                            ("config='/dev/zero'", "character device", "regular file"),
                            limited=True, slow=True),
    "config-fifo": Case(("run", "--config", "{d}/study.toml", "--quiet"), 2,
                        ("study.toml", "FIFO", "regular file"), limited=True, slow=True,
                        setup=special_file("study.toml", "fifo")),
    "config-over-1-MB": Case(("run", "--config", "{d}/study.toml", "--quiet"), 2,
                             ("study.toml", "more than the 1 MB"),
                             setup=special_file("study.toml", "big:1000000")),
    "graphs-fifo": Case((*TINY[:1], "--graphs", "{d}/g.txt", *TINY[7:], *OUT), 2,
                        ("g.txt", "FIFO", "regular file"), limited=True, slow=True,
                        setup=special_file("g.txt", "fifo"), check=nothing_created),
    "graphs-dev-zero": Case((*TINY[:1], "--graphs", "{d}/g.txt", *TINY[7:], *OUT), 2,
                            ("g.txt", "character device"), limited=True, slow=True,
                            setup=special_file("g.txt", "zero"), check=nothing_created),
    # a damaged value in a store: one line naming the run and the column
    **{f"store-{name}-{cmd}": Case(argv, 2, (*words, "restore it"), setup=setup,
                                   check=merge_not_created if cmd == "merge" else None)
       for name, (setup, words) in {
           "r-not-json": (store_sql("UPDATE runs SET r='[0.1,' WHERE run=1"),
                          ("run 1's r", "'[0.1,'", "not a JSON array of numbers")),
           "r-wrong-length": (store_sql("UPDATE runs SET r='[0.1, 0.2]' WHERE run=0"),
                              ("run 0's r holds 2 values", "one per K (4)")),
           "r-strings": (store_sql("""UPDATE runs SET r_std='["a", "b", "c", "d"]'"""),
                         ("run 0's r_std", "not a JSON array of numbers")),
           "r-object": (store_sql("UPDATE runs SET r_first='{}' WHERE run=2"),
                        ("run 2's r_first", "not a JSON array")),
           "kc-text": (store_sql("UPDATE runs SET kc_interp='abc' WHERE run=0"),
                       ("run 0's kc_interp is 'abc'", "not a number")),
           "run-info-not-json": (store_sql("UPDATE meta SET value='[1,' WHERE key='run_info'"),
                                 ("run_info is '[1,'", "not the JSON object of a session")),
           "run-info-strings": (store_sql("UPDATE meta SET value=? WHERE key='run_info'",
                                          '{"interrupted": "no", "elapsed_seconds": "x"}'),
                                ("run_info",)),
           "k-values-strings": (store_sql("UPDATE meta SET value='[\"a\"]' "
                                          "WHERE key='k_values'"),
                                ("k_values is missing or unreadable",)),
           # run indices outside the study's 0..runs-1
           "run-99": (store_sql("UPDATE runs SET run=99 WHERE run=0"),
                      ("run 99", "runs are 0 to 2")),
           "run-negative": (store_sql("UPDATE runs SET run=-1 WHERE run=2"),
                            ("run -1", "runs are 0 to 2")),
       }.items()
       for cmd, argv in (("report", REPORT), ("resume", RESUME), ("merge", MERGE))},

    # scan --resume with a damaged scan.json: one line naming the manifest
    **{f"scan-json-{name}": Case(("scan", "--resume", "{d}/s", "--quiet"), 2,
                                 ("scan.json", *words), setup=setup,
                                 limited=name == "fifo", slow=name == "fifo")  # a FIFO read would block
       for name, (setup, words) in {
           "not-json": (scan_manifest('{"param": '), ("damaged", "not JSON")),
           "a-list": (scan_manifest("[]"), ("damaged", "param, values and base")),
           "base-a-list": (scan_manifest('{"param": "nodes", "values": [100, 200], '
                                         '"base": []}'), ("damaged", "param, values and base")),
           "values-a-string": (scan_manifest('{"param": "nodes", "values": "abc", '
                                             '"base": {}}'), ("damaged",)),
           "values-strings": (scan_manifest('{"param": "nodes", "values": ["a", "b"], '
                                            '"base": {}}'), ("damaged", "not all numbers")),
           "param-unknown": (scan_manifest('{"param": "banana", "values": [1, 2], '
                                           '"base": {}}'), ("damaged", "param='banana'")),
           "base-invalid": (scan_manifest('{"param": "nodes", "values": [100, 200], '
                                          '"base": {"runs": -1}}'), ("damaged", "runs=-1")),
           "value-invalid": (scan_manifest('{"param": "nodes", "values": [100, -5], '
                                           '"base": {"runs": 2}}'), ("damaged", "nodes=-5")),
           "nested": (scan_manifest("[" * 100000), ("damaged", "not JSON")),
           "fifo": (special_file("s/scan.json", "fifo"), ("FIFO", "regular file")),
       }.items()},

    # one field spelled two ways in a TOML file: refused naming both, not the last wins
    "toml-nodes-and-n": Case(("run", "--config", "{d}/study.toml", "--quiet"), 2,
                             ("config key='n'", "sets nodes", "'nodes'"),
                             setup=toml("runs = 2\nnodes = 100\nn = 200\n")),
    "toml-k-num-and-k-num": Case(("run", "--config", "{d}/study.toml", "--quiet"), 2,
                                 ("config key='k-num'", "sets k_num", "'k_num'"),
                                 setup=toml("[study]\nruns = 2\nk_num = 4\nk-num = 5\n")),

    "graphs-over-1-GB": Case((*TINY[:1], "--graphs", "{d}/g.txt", *TINY[7:], *OUT), 2,
                             ("g.txt", "more than the 1 GB"), limited=True, slow=True,
                             setup=special_file("g.txt", "big:1000000000"),
                             check=nothing_created),
})


# --------------------------------------------------------------------------- running

def invoke(argv):
    return run_cli(argv, prog_name="kcbatch")


def _limit_address_space():
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_case(case: Case, ctx: Ctx, monkeypatch) -> tuple[int, str, str]:
    argv = [ctx.fmt(a) for a in case.argv]
    if case.limited:
        proc = subprocess.run([*KCBATCH, *argv], capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                              preexec_fn=_limit_address_space)
        return proc.returncode, proc.stdout, proc.stderr
    if case.fault is not None:
        case.fault(monkeypatch, ctx)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's overflow warnings included
        result = invoke(argv)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"unhandled {result.exception!r}\n{result.output}")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad_inputs") / "study"
    result = invoke([*TINY, "--out", out])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if c.slow else n
                                  for n, c in CASES.items()])
def test_bad_input_gives_one_clear_line(name, tmp_path, finished_study, monkeypatch):
    case = CASES[name]
    ctx = Ctx(d=tmp_path, study=finished_study)
    with ctx.cleanup:
        if case.setup is not None:
            case.setup(ctx)
        code, stdout, stderr = run_case(case, ctx, monkeypatch)
        assert "Traceback" not in stdout + stderr, stdout + stderr
        assert "Warning" not in stderr, stderr
        assert code == case.code, (code, stdout, stderr)
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        words = [ctx.fmt(w) for w in case.words]
        if code == 2:
            assert stdout == "", stdout
            assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
        elif code == 1:
            assert len(lines) == 2 and lines[0].startswith("Error: "), stderr
            assert lines[1].startswith("resume with: kcbatch run --resume "), stderr
        text = lines[0] if code in (1, 2) else stderr
        for word in words:
            assert word in text, f"{word!r} not in {text!r}"
        if case.check is not None:
            monkeypatch.undo()  # the check (e.g. a resume) runs without the fault
            case.check(ctx, stderr)


def test_table_covers_every_exit_path():
    """The table holds bad inputs (2), run-time failures (1), signals (130, 143)."""
    assert {c.code for c in CASES.values()} == {0, 1, 2, 130, 143}
    assert sum(c.limited for c in CASES.values()) >= 3


# --------------------------------------------------------------------------- the rules behind

@pytest.mark.parametrize("k_max", [0.5, 5.0, 12.0])
def test_dt_bound_is_where_rk4_stops_being_stable(k_max):
    """The refused dt is where RK4 really becomes unstable: for the linearised
    coupling J = -K diag(1/k) L of a tree (bipartite: the random-walk Laplacian
    reaches its largest possible eigenvalue, 2), RK4's step matrix has spectral
    radius <= 1 just below the bound and > 1 just above it."""
    import networkx as nx
    import numpy as np

    from kcbatch.protocol.config import ConfigError, StudyConfig, max_stable_dt

    g = nx.random_labeled_tree(60, seed=3)
    a = nx.to_numpy_array(g)
    deg = a.sum(axis=1)
    jac = -k_max * (np.diag(deg) - a) / deg[:, None]

    def radius(h):
        z = h * jac
        step = np.eye(len(a)) + z + z @ z / 2 + z @ z @ z / 6 + z @ z @ z @ z / 24
        return max(abs(np.linalg.eigvals(step)))

    bound = max_stable_dt(k_max, 1.0)
    assert radius(bound * 0.999) <= 1 + 1e-9
    assert radius(bound * 1.01) > 1.001
    cfg = dict(k_max=k_max, t_transient=0.0, sample_every=1)
    with pytest.raises(ConfigError) as ei:
        StudyConfig(dt=bound * 1.01, t_measure=bound * 1.01, **cfg)
    assert ei.value.param == "dt"
    shown = float(str(ei.value).split("largest dt allowed is ")[1].split(";")[0])
    assert bound * 0.999 <= shown <= bound * (1 + 1e-9)
    StudyConfig(dt=shown, t_measure=shown, **cfg)  # the suggested dt is accepted


def test_batch_auto_shrinks_to_fit_and_a_fixed_batch_is_refused():
    from kcbatch.engines import get_engine
    from kcbatch.protocol.config import ConfigError, StudyConfig
    from kcbatch.run.batching import fit_batch, memory_estimate

    engine = get_engine("cpu")
    cfg = StudyConfig(runs=64, nodes=5000, batch=32, device="cpu", seed=1)
    sizes = [memory_estimate(cfg, engine, "cpu", b).total for b in range(1, 33)]
    assert sizes == sorted(sizes) and sizes[0] > 0  # more networks, more memory
    room = sizes[7]  # exactly what a batch of 8 needs
    assert fit_batch(cfg.replace(batch="auto"), engine, "cpu", 32, available=room) == 8
    assert fit_batch(cfg, engine, "cpu", 8, available=room) == 8
    with pytest.raises(ConfigError) as ei:
        fit_batch(cfg, engine, "cpu", 32, available=room)
    assert ei.value.param == "batch" and "use --batch 8" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        fit_batch(cfg, engine, "cpu", 32, available=sizes[0] - 1)
    assert ei.value.param == "nodes" and "smaller --nodes" in str(ei.value)


def test_an_adiabatic_batch_too_large_is_advised_in_batch_units(monkeypatch):
    from kcbatch.engines import get_engine
    from kcbatch.protocol.config import ConfigError, StudyConfig
    from kcbatch.run.batching import fitted_batch, memory_estimate

    engine = get_engine("cpu")
    # --batch 4 of an 8-K sweep: 32 networks of one K each
    cfg = StudyConfig(runs=64, nodes=5000, k_num=8, batch=4, sweep="adiabatic", device="cpu",
                      seed=1)
    # estimated for the layout the batches have: one coupling column per network
    need = [memory_estimate(cfg, engine, "cpu", b).total for b in range(1, 33)]
    monkeypatch.setattr("kcbatch.run.batching.available_bytes", lambda: need[19])  # 20 networks fit
    with pytest.raises(ConfigError) as ei:
        fitted_batch(cfg, engine, "cpu", 64)
    assert "a batch of 32 networks" in str(ei.value) and "use --batch 2 or smaller" in str(ei.value)
    assert fitted_batch(cfg.replace(batch="auto"), engine, "cpu", 64) == 20
    monkeypatch.setattr("kcbatch.run.batching.available_bytes", lambda: need[5])  # not one unit of 8
    with pytest.raises(ConfigError) as ei:
        fitted_batch(cfg.replace(batch=1), engine, "cpu", 64)
    assert "even --batch 1 (8 networks" in str(ei.value) and "--k-num" in str(ei.value)


def test_the_lock_is_reentrant_in_a_process_and_exclusive_between_descriptors(tmp_path):
    import fcntl

    from kcbatch.results.store import StoreLocked, study_lock

    with study_lock(tmp_path), study_lock(tmp_path):  # run_study inside the CLI's hold
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
        with open(tmp_path / LOCK_NAME) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert not (tmp_path / LOCK_NAME).exists()  # released: removed, anyone may take it
    with open(tmp_path / LOCK_NAME, "a+") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StoreLocked):
            with study_lock(tmp_path):
                pass


# --------------------------------------------------------------------------- double Ctrl-C

@pytest.mark.slow
def test_second_sigint_during_graph_generation_aborts_at_once(tmp_path):
    """Two SIGINTs while the producers generate 3-million-node graphs (seconds
    per batch): the process exits 130 within a couple of seconds of the second,
    printing the resume command."""
    out = tmp_path / "big"
    proc = subprocess.Popen(
        [*KCBATCH, "run", "--runs", "8", "--batch", "4", "--nodes", "3000000", "--k-num", "2",
         "--t-transient", "0", "--t-measure", "0.1", "--sample-every", "1", "--device", "cpu",
         "--seed", "1", "--quiet", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
        start_new_session=True)
    watch = StderrWatch(proc, "finishing the batch in flight")
    try:
        # The lock file appears once the store is open: generation has begun.
        deadline = time.monotonic() + TIMEOUT
        while not (out / LOCK_NAME).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None, watch.text
        proc.send_signal(signal.SIGINT)
        assert watch.seen.wait(TIMEOUT), watch.text
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=TIMEOUT)
        took = time.monotonic() - t0
    finally:
        watch.finish()
    stderr = watch.text
    assert proc.returncode == 130, stderr
    assert took < 3.0, f"exited {took:.1f} s after the second SIGINT"
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert f"resume with: kcbatch run --resume {out}" in stderr
    with contextlib.closing(sqlite3.connect(out / STORE_NAME)) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


# --------------------------------------------------------------------------- a real full disk

@contextlib.contextmanager
def small_filesystem(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (root only; skips where mounting fails)."""
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)]).returncode != 0:
            subprocess.run(["umount", "-l", str(path)])


def kcbatch_process(*args) -> tuple[int, list[str]]:
    proc = subprocess.run([*KCBATCH, *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc.returncode, [ln for ln in proc.stderr.splitlines() if ln.strip()]


def assert_whole_batches(store: Path) -> int:
    with contextlib.closing(sqlite3.connect(store)) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        assert runs == (con.execute("SELECT sum(n_runs) FROM batches").fetchone()[0] or 0)
        return runs


@pytest.mark.slow
def test_a_full_disk_while_creating_the_store_leaves_nothing_and_the_rerun_starts(tmp_path):
    """The filesystem is full before the store is whole: exit 1 with one line
    that says nothing was stored (no resume command, there is nothing to
    resume), nothing left in the directory; with space again, the same command
    runs the study."""
    runs = 3
    study = ["run", "--runs", runs, "--nodes", "60", "--k-num", "3", "--t-transient", "0.5",
             "--t-measure", "0.5", "--sample-every", "2", "--device", "cpu", "--seed", "1",
             "--quiet"]
    with small_filesystem(tmp_path / "disk", "1m") as disk:
        out = disk / "out"
        out.mkdir()
        st = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * ((st.f_bavail - 4) * st.f_frsize))
        code, lines = kcbatch_process(*study, "--out", out)
        assert code == 1, lines
        assert len(lines) == 1 and lines[0].startswith("Error: "), lines
        assert "database or disk is full" in lines[0] and str(out) in lines[0]
        assert lines[0].endswith("nothing was stored: free some space or fix the "
                                 "permissions, then run the same command again")
        assert list(out.iterdir()) == []
        (disk / "filler").unlink()
        code, lines = kcbatch_process(*study, "--out", out)
        assert code == 0, lines
        assert assert_whole_batches(out / STORE_NAME) == runs
        assert not (out / LOCK_NAME).exists()


@pytest.mark.slow
def test_a_really_full_disk_mid_run_then_resume(tmp_path):
    """The store's WAL meets a full filesystem mid-run (SQLite's own SQLITE_FULL):
    exit 1, the error and the resume command, whole batches kept; with space
    again, that command completes the study. Then, with the disk full again, the
    exports of ``report`` and of a resume fail the same clear way."""
    runs = 40
    study = ["run", "--runs", runs, "--batch", "1", "--nodes", "100", "--k-num", "50",
             "--t-transient", "0.5", "--t-measure", "0.5", "--sample-every", "2",
             "--device", "cpu", "--seed", "1", "--quiet"]
    with small_filesystem(tmp_path / "disk", "160k") as disk:
        out = disk / "out"
        code, lines = kcbatch_process(*study, "--out", out)
        assert code == 1, lines
        assert len(lines) == 2 and lines[0].startswith("Error: "), lines
        assert "database or disk is full" in lines[0] and str(out) in lines[0]
        assert lines[1] == f"resume with: kcbatch run --resume {out}"
        stored = assert_whole_batches(out / STORE_NAME)
        assert 1 <= stored < runs

        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
        code, lines = kcbatch_process(*lines[1].split(": ", 1)[1].split()[1:], "--quiet")
        assert code == 0, lines
        assert assert_whole_batches(out / STORE_NAME) == runs

        for name in ("summary.json", "runs.csv", "kc_hist.png", "r_curves.png"):
            (out / name).unlink()
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * free)
        code, lines = kcbatch_process("report", out)
        assert code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), lines
        code, lines = kcbatch_process("run", "--resume", out, "--quiet")
        assert code == 1 and len(lines) == 2, lines
        assert lines[1] == f"resume with: kcbatch run --resume {out}"
        (disk / "filler").unlink()  # reading a WAL store needs room for its -shm file
        assert assert_whole_batches(out / STORE_NAME) == runs
