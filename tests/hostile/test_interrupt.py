"""Interrupting ``kcbatch run`` in real subprocesses: SIGINT, SIGTERM, SIGKILL.

Each test starts ``python -m kcbatch run`` on a small CPU study, waits until
the store holds a finished run (polling SQLite read-only), signals the
process, checks the store, resumes it and compares the final store with an
uninterrupted run of the same study (computed once per module). Every
subprocess is bounded by a timeout and killed if it overruns. Marked ``slow``
(real processes, seconds each): the fast lane ``-m "not slow"`` skips the file.
"""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import (
    KCBATCH,
    PROCESS_TIMEOUT,
    StderrWatch,
    finished_runs,
    kcbatch_env,
    run_kcbatch,
)

from kcbatch.results.store import STORE_NAME

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform == "win32",
                                 reason="POSIX signals (SIGINT/SIGTERM/SIGKILL semantics)")]

# ~3 s of CPU on an idle 2-core machine (12 batches of one network), several
# times that under load; what matters is that it is far longer than one batch.
STUDY = ["--runs", "12", "--nodes", "2000", "--m", "3", "--k-num", "8",
         "--t-transient", "2", "--t-measure", "2", "--dt", "0.05", "--sample-every", "10",
         "--seed", "20240601", "--device", "cpu", "--quiet"]
RUNS = 12
TIMEOUT = PROCESS_TIMEOUT  # seconds, per subprocess
IGNORED_COLUMNS = ("seconds", "batch_id")


def kcbatch_run(*args, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return run_kcbatch("run", *args, timeout=timeout)


def wait_for_a_finished_run(proc: subprocess.Popen, out: Path) -> int:
    deadline = time.monotonic() + TIMEOUT
    n = 0
    while time.monotonic() < deadline and proc.poll() is None:
        n = finished_runs(out)
        if n >= 1:
            break
        time.sleep(0.02)
    assert proc.poll() is None, (
        f"the study ended (status {proc.returncode}) before it could be signalled")
    assert 1 <= n < RUNS, f"{n} runs stored before the deadline"
    return n


def start_and_signal(out: Path, sig: int, *extra: str) -> tuple[int, str, str, int]:
    """Start a study, send ``sig`` once the store has a finished run; return
    (exit status, stdout, stderr, runs stored when the signal was sent)."""
    proc = subprocess.Popen([*KCBATCH, "run", *STUDY, *extra, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=kcbatch_env(), stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        n = wait_for_a_finished_run(proc, out)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, stdout, stderr, n


def runs_table(out: Path) -> list[tuple]:
    """Every row of ``runs`` (all columns but seconds/batch_id), by run."""
    with sqlite3.connect(out / STORE_NAME) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(runs)")
                if r[1] not in IGNORED_COLUMNS]
        assert "run" in cols and "r" in cols and "kc" in cols
        return con.execute(f"SELECT {', '.join(cols)} FROM runs ORDER BY run").fetchall()


def assert_only_complete_batches(out: Path) -> int:
    """The store opens, is intact, and holds whole batches only; returns the run count."""
    con = sqlite3.connect(out / STORE_NAME)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        batches = con.execute("SELECT id, first_run, n_runs FROM batches ORDER BY id").fetchall()
        total = 0
        for bid, first_run, n_runs in batches:
            runs = [r for (r,) in con.execute(
                "SELECT run FROM runs WHERE batch_id=? ORDER BY run", (bid,))]
            assert len(runs) == n_runs, f"batch {bid}: {len(runs)} of {n_runs} runs stored"
            assert runs[0] == first_run
            total += n_runs
        orphans = con.execute("SELECT count(*) FROM runs WHERE batch_id IS NULL OR batch_id "
                              "NOT IN (SELECT id FROM batches)").fetchone()[0]
        assert orphans == 0, f"{orphans} runs without a batch"
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == total
        return total
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[tuple]:
    """The uninterrupted study's runs table (after warming numba's disk cache)."""
    root = tmp_path_factory.mktemp("interrupt_ref")
    warm = kcbatch_run("--runs", "1", "--nodes", "50", "--k-num", "2", "--t-transient", "0",
                       "--t-measure", "0.1", "--dt", "0.05", "--sample-every", "1",
                       "--seed", "1", "--device", "cpu", "--quiet", "--out", root / "warm")
    assert warm.returncode == 0, warm.stderr
    ref = kcbatch_run(*STUDY, "--batch", "1", "--out", root / "ref")
    assert ref.returncode == 0, ref.stderr
    rows = runs_table(root / "ref")
    assert [r[0] for r in rows] == list(range(RUNS))
    assert_only_complete_batches(root / "ref")
    return rows


@pytest.mark.parametrize("sig,status,batch,said", [
    (signal.SIGINT, 130, 1, "SIGINT: finishing the batch in flight"),
    (signal.SIGTERM, 143, 2, "SIGTERM: stopping now")], ids=["SIGINT", "SIGTERM"])
def test_signal_stores_finished_batches_and_resume_completes(tmp_path, reference, sig,
                                                             status, batch, said):
    out = tmp_path / "study"
    rc, _stdout, stderr, _ = start_and_signal(out, sig, "--batch", str(batch))
    assert rc == status, (rc, stderr)
    assert said in stderr, stderr
    resume = f"kcbatch run --resume {out}"
    assert resume in stderr, stderr
    assert "Traceback" not in stderr
    stored = assert_only_complete_batches(out)
    assert 1 <= stored < RUNS
    if sig == signal.SIGINT:
        assert f"interrupted: {stored} of {RUNS} runs finished" in stderr
    else:
        assert "aborted; finished batches are in the store" in stderr
    # what is stored is final: identical to the uninterrupted study's rows
    assert runs_table(out) == reference[:stored]

    # resume with exactly the printed command
    cmd = resume.split()
    assert cmd[:3] == ["kcbatch", "run", "--resume"]
    done = kcbatch_run(*cmd[2:])
    assert done.returncode == 0, done.stderr
    assert "interrupted" not in done.stderr
    assert assert_only_complete_batches(out) == RUNS
    assert runs_table(out) == reference
    assert (out / "summary.json").is_file() and (out / "runs.csv").is_file()


def test_sigkill_leaves_a_consistent_store_that_resumes(tmp_path, reference):
    out = tmp_path / "study"
    rc, _stdout, _stderr, _ = start_and_signal(out, signal.SIGKILL, "--batch", "3")
    assert rc == -signal.SIGKILL
    stored = assert_only_complete_batches(out)
    assert stored % 3 == 0 and 3 <= stored < RUNS
    assert runs_table(out) == reference[:stored]

    done = kcbatch_run("--resume", out)
    assert done.returncode == 0, done.stderr
    assert assert_only_complete_batches(out) == RUNS
    assert runs_table(out) == reference


def _study_process(out, batch: int, marker: str) -> tuple[subprocess.Popen, StderrWatch]:
    """The study in a process of its own (batches of ``batch``), its stderr
    watched for ``marker``."""
    proc = subprocess.Popen([*KCBATCH, "run", *STUDY, "--batch", str(batch), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=kcbatch_env(), stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, StderrWatch(proc, marker)


def test_second_sigint_aborts_the_batch_in_flight(tmp_path, reference):
    out = tmp_path / "study"
    # batches of 4: the second signal lands while a whole batch is being integrated
    proc, watch = _study_process(out, 4, "finishing the batch in flight")
    try:
        wait_for_a_finished_run(proc, out)
        proc.send_signal(signal.SIGINT)
        # two signals before Python runs its handler would count as one: wait for the first
        assert watch.seen.wait(TIMEOUT), watch.text
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=TIMEOUT)
    finally:
        watch.finish()
    stderr = watch.text
    assert proc.returncode == 130, stderr
    assert "aborted; finished batches are in the store" in stderr
    assert f"kcbatch run --resume {out}" in stderr
    assert "Traceback" not in stderr
    stored = assert_only_complete_batches(out)
    assert stored % 4 == 0 and 4 <= stored < RUNS, stored
    assert runs_table(out) == reference[:stored]


def test_sigterm_stops_the_batch_in_flight(tmp_path, reference):
    """A batch scheduler's one SIGTERM (it kills the job a little later): the
    study stops without finishing the batch in flight, whose integration takes
    seconds (the whole study is one batch), exits 143 with the store intact
    and the resume command, which then completes the study."""
    from kcbatch.results.store import LOCK_NAME

    out = tmp_path / "study"
    proc, watch = _study_process(out, RUNS, "SIGTERM")
    try:
        deadline = time.monotonic() + TIMEOUT
        # the lock appears once the store is open: the one batch is being made
        while not (out / LOCK_NAME).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, watch.text
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=TIMEOUT)
    finally:
        watch.finish()
    stderr = watch.text
    assert proc.returncode == 143, stderr
    assert "SIGTERM: stopping now" in stderr and "Traceback" not in stderr, stderr
    assert f"resume with: kcbatch run --resume {out}" in stderr
    assert assert_only_complete_batches(out) == 0  # the batch in flight was not finished
    done = kcbatch_run("--resume", out)
    assert done.returncode == 0, done.stderr
    assert runs_table(out) == reference


def test_sigint_while_starting_is_one_line(tmp_path):
    """Ctrl-C while the command is still importing (before any study handler):
    one line, status 130, no traceback. ``-X importtime`` shows when numpy,
    the package's first heavy import, is in: kcbatch's own import is running."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "kcbatch", "run",
                             *STUDY, "--out", str(tmp_path / "study")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=kcbatch_env(), stdin=subprocess.DEVNULL, start_new_session=True)
    watch = StderrWatch(proc, " numpy\n")
    try:
        assert watch.seen.wait(TIMEOUT), watch.text
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=TIMEOUT)
    finally:
        watch.finish()
    lines = [ln for ln in watch.lines if ln.strip() and not ln.startswith("import time:")]
    assert proc.returncode == 130, watch.text[-2000:]
    assert lines == ["interrupted (SIGINT)\n"], lines
    assert not (tmp_path / "study").exists()
