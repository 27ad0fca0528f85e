"""Studies on a Dask cluster (``--scheduler``): the same records as one process.

Every cluster here is real: distributed's ``LocalCluster`` of worker processes
(or a ``dask scheduler`` / ``dask worker`` pair of subprocesses), the CPU engine,
no mock. The single-process study of the same config is the reference, computed
once per module; records are compared bitwise (``assert_same_records``). One
3-worker cluster is shared by the module's in-process tests; the tests that
start their own clusters or real ``kcbatch`` processes are ``slow``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import (
    KCBATCH,
    PROCESS_TIMEOUT,
    StderrWatch,
    assert_same_records,
    assert_usage_error,
    device_unusable,
    finished_runs,
    kcbatch_env,
    ok,
    run_cli,
)

from kcbatch import StudyConfig
from kcbatch.protocol.config import ConfigError
from kcbatch.results.store import STORE_NAME, Store
from kcbatch.run.scheduler import ClusterError, SchedulerSpec, parse_scheduler
from kcbatch.run.study import run_study

pytest.importorskip("distributed", reason="the dask extra (kcbatch[dask]) is not installed")

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# 12 runs of small networks in batches of 2: 6 batches, a few seconds of CPU.
STUDY = dict(runs=12, nodes=200, m=3, k_num=8, batch=2, seed=20261126, device="cpu")
FLAGS = ["--runs", "12", "--nodes", "200", "--m", "3", "--k-num", "8", "--batch", "2",
         "--seed", "20261126", "--device", "cpu", "--quiet"]


def stored_records(out: Path):
    with Store.open(out / STORE_NAME) as store:
        return store.records()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def reference():
    """The single-process records of STUDY (runs 0-11)."""
    return run_study(StudyConfig(**STUDY)).records


@pytest.fixture(scope="module")
def cluster3():
    """One LocalCluster of 3 worker processes for the module's in-process tests."""
    from kcbatch.run.cluster import open_cluster
    with open_cluster(SchedulerSpec("local", workers=3)) as session:
        yield session


# --------------------------------------------------------------------------- no dask

def test_import_kcbatch_does_not_import_dask():
    code = ("import sys, kcbatch, kcbatch.cli, kcbatch.run.scheduler, kcbatch.run.cluster_task; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'dask_cuda')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=PROCESS_TIMEOUT).stdout
    assert out.strip() == "[]", out


@pytest.mark.parametrize("value, needle", [
    ("banana", "local:N"), ("local:0", "N >= 1"), ("local:x", "N >= 1"),
    ("host:8786", "tcp://host:8786")])
def test_bad_scheduler_is_one_line(value, needle, tmp_path):
    line = assert_usage_error(run_cli(["run", *FLAGS, "--scheduler", value,
                                       "--out", tmp_path / "o"]), needle)
    assert f"scheduler={value!r}" in line
    assert not (tmp_path / "o").exists()


def test_scheduler_file_missing_or_with_scheduler(tmp_path):
    missing = tmp_path / "nope.json"
    assert_usage_error(run_cli(["run", *FLAGS, "--scheduler-file", missing]),
                       str(missing), "scheduler file")
    missing.write_text("{}")
    assert_usage_error(run_cli(["run", *FLAGS, "--scheduler-file", missing,
                                "--scheduler", "local:2"]), "cannot be combined")


def test_missing_extra_names_the_pip_command(monkeypatch, tmp_path):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    assert_usage_error(run_cli(["run", *FLAGS, "--scheduler", "local:2"]),
                       'pip install "kcbatch[dask]"')
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "dask_cuda" else real(name, *a))
    assert_usage_error(run_cli(["run", *FLAGS, "--scheduler", "local-cuda"]),
                       'pip install "kcbatch[dask-cuda]"')


def test_info_shows_the_extra(monkeypatch):
    import importlib.metadata

    from distributed import __version__ as dist_version
    text = ok(["info"]).output
    assert f"distributed {dist_version}: --scheduler usable" in text
    real = importlib.metadata.version

    def version(name):
        if name == "distributed":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)
    monkeypatch.setattr(importlib.metadata, "version", version)
    text = ok(["info"]).output
    assert 'dask extra: not installed (--scheduler needs it: pip install "kcbatch[dask]")' \
        in text


def test_parse_scheduler_forms():
    assert parse_scheduler() is None
    assert parse_scheduler("local:3") == SchedulerSpec("local", workers=3)
    assert parse_scheduler("local-cuda") == SchedulerSpec("local-cuda")
    assert parse_scheduler("tcp://10.0.0.1:8786") == SchedulerSpec("address",
                                                                   target="tcp://10.0.0.1:8786")
    with pytest.raises(ConfigError, match="local:N"):
        parse_scheduler("local")


def test_local_workers_share_the_cores():
    from kcbatch.run.cluster import local_worker_env
    assert local_worker_env(2, cores=16)["NUMBA_NUM_THREADS"] == "8"
    assert local_worker_env(3, cores=16)["NUMBA_NUM_THREADS"] == "5"
    assert local_worker_env(4, cores=2)["NUMBA_NUM_THREADS"] == "1"


def test_cannot_connect_names_the_address():
    from kcbatch.run.cluster import open_cluster
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=r"at tcp://127\.0\.0\.1:9 within 0\.5 s"):
        with open_cluster("tcp://127.0.0.1:9", timeout=0.5):
            pass
    assert time.monotonic() - t0 < 30


# --------------------------------------------------------------------------- one cluster

def test_three_workers_same_records(cluster3, reference):
    result = run_study(StudyConfig(**STUDY), scheduler=cluster3)
    assert_same_records(result.records, reference)
    assert result.computed == 12 and not result.interrupted
    assert result.scheduler == "local:3"
    workers = set(cluster3.worker_threads())
    assert len(workers) == 3 and set(result.workers) <= workers
    assert sum(w["runs"] for w in result.workers.values()) == 12
    assert sum(w["batches"] for w in result.workers.values()) == 6


def test_local_workers_get_their_share_of_threads(cluster3):
    threads = cluster3.client.run(lambda: __import__("numba").config.NUMBA_NUM_THREADS)
    assert set(threads.values()) == {max(1, (len(os.sched_getaffinity(0))) // 3)}


def test_shard_merged_with_a_clustered_shard(cluster3, reference, tmp_path):
    run_study(StudyConfig(**STUDY, run_start=0, run_stop=5, out=tmp_path / "a"))
    run_study(StudyConfig(**STUDY, run_start=5, run_stop=12, out=tmp_path / "b"),
              scheduler=cluster3)
    ok(["merge", tmp_path / "m", tmp_path / "a", tmp_path / "b"])
    assert_same_records(stored_records(tmp_path / "m"), reference)


def test_clustered_resume_of_a_single_process_start(cluster3, reference, tmp_path):
    out = tmp_path / "s"
    stop = threading.Event()
    stop.set()  # stops after the first batch
    first = run_study(StudyConfig(**STUDY, out=out), stop=stop)
    assert first.interrupted and len(first.records) == 2
    ok(["run", "--resume", out, "--scheduler", cluster3.address, "--quiet"])
    assert_same_records(stored_records(out), reference)
    info = json.loads((out / "summary.json").read_text())
    assert info["scheduler"] == cluster3.address
    assert sum(w["runs"] for w in info["workers"].values()) == 10
    # docs/outputs.md documents the fields a clustered session adds
    text = (Path(__file__).parent.parent / "docs" / "outputs.md").read_text("utf-8")
    added = {"scheduler", "workers"} | {f"workers.<address>.{k}" for w in
                                        info["workers"].values() for k in w}
    assert {f"`{f}`" for f in added if f"`{f}`" not in text} == set()


def test_resuming_a_finished_study_on_the_cluster_computes_nothing(cluster3, reference,
                                                                   tmp_path):
    # Nothing pending: no worker is asked for a plan, and the result still
    # names the device and holds every record.
    out = tmp_path / "s"
    run_study(StudyConfig(**STUDY, out=out))
    again = run_study(StudyConfig(**STUDY, out=out), resume=True, scheduler=cluster3.address)
    assert again.computed == 0 and not again.interrupted
    assert again.device == STUDY["device"]
    assert_same_records(again.records, reference)


@pytest.mark.slow  # two CLI scans with their exports (~2.5 s)
def test_scan_on_the_cluster_equals_the_single_process_scan(cluster3, tmp_path):
    """`kcbatch scan --scheduler ADDRESS`: every value's sub-study runs on the
    cluster and holds the records of the same scan run in one process, and the
    scan's table is the same."""
    args = ["scan", "--param", "nodes", "--values", "100,150", "--runs", "4", "--m", "3",
            "--k-num", "6", "--batch", "2", "--seed", "7", "--device", "cpu", "--quiet"]
    ok(args + ["--out", tmp_path / "one"])
    ok(args + ["--out", tmp_path / "dask", "--scheduler", cluster3.address])
    for point in ("nodes=100", "nodes=150"):
        assert_same_records(stored_records(tmp_path / "dask" / point),
                            stored_records(tmp_path / "one" / point))
        info = json.loads((tmp_path / "dask" / point / "summary.json").read_text())
        assert info["scheduler"] == cluster3.address
        assert sum(w["runs"] for w in info["workers"].values()) == 4
    assert (tmp_path / "dask" / "scan.csv").read_text() == \
        (tmp_path / "one" / "scan.csv").read_text()


def test_worker_without_the_device_is_named(cluster3):
    from kcbatch.engines import why_unavailable
    from kcbatch.run.cluster import WorkerUnusable
    if device_unusable("gpu") is None:
        pytest.skip("this machine has a usable GPU")
    with pytest.raises(WorkerUnusable) as info:
        run_study(StudyConfig(**{**STUDY, "device": "gpu"}), scheduler=cluster3)
    msg = str(info.value)
    assert any(msg.startswith(f"worker {w}: ") for w in cluster3.worker_threads()), msg
    assert why_unavailable("gpu") in msg


@pytest.mark.slow
def test_killed_worker_costs_only_time(reference, tmp_path):
    """A worker process SIGKILLed while it integrates a batch: Dask reruns the
    batch elsewhere; nothing is lost or written twice."""
    from kcbatch.run.cluster import open_cluster
    cfg = StudyConfig(**{**STUDY, "batch": 3}, out=tmp_path / "k")
    with open_cluster("local:2") as session:
        pids = session.client.run(os.getpid)
        box: dict = {}
        thread = threading.Thread(target=lambda: box.update(r=run_study(cfg, scheduler=session)))
        thread.start()
        try:
            def busy():
                return {a: ts for a, ts in session.client.processing().items() if ts}
            wait_for(lambda: busy(), PROCESS_TIMEOUT, "a batch on a worker")
            victim = next(iter(busy()))
            os.kill(pids[victim], signal.SIGKILL)
        finally:
            thread.join(PROCESS_TIMEOUT)
    assert not thread.is_alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pids[victim], 0)
    result = box["r"]
    assert not result.interrupted
    assert_same_records(result.records, reference)
    assert_same_records(stored_records(cfg.out), reference)
    with Store.open(cfg.out / STORE_NAME) as store:
        batches = store.conn.execute("SELECT COUNT(*), SUM(n_runs) FROM batches").fetchone()
    assert tuple(batches) == (4, 12)


# --------------------------------------------------------------------------- own clusters

@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_same_records_for_any_number_of_workers(workers, reference, tmp_path):
    out = tmp_path / "o"
    ok(["run", *FLAGS, "--scheduler", f"local:{workers}", "--out", out])
    assert_same_records(stored_records(out), reference)
    info = json.loads((out / "summary.json").read_text())
    assert info["scheduler"] == f"local:{workers}" and len(info["workers"]) == workers


def _start(args, **kw) -> subprocess.Popen:
    return subprocess.Popen([*KCBATCH, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=kcbatch_env(),
                            stdin=subprocess.DEVNULL, **kw)


@pytest.mark.slow
@POSIX
def test_ctrl_c_keeps_batches_and_resumes(reference, tmp_path):
    """Ctrl-C in a terminal signals the whole process group, workers included:
    the workers keep their batches, the client stores them and exits 130."""
    out = tmp_path / "c"
    proc = _start(["run", *FLAGS, "--batch", "1", "--scheduler", "local:2", "--out", out],
                  start_new_session=True)
    try:
        watch = StderrWatch(proc, "finishing the batch in flight")
        wait_for(lambda: finished_runs(out) >= 1 or proc.poll() is not None,
                 PROCESS_TIMEOUT, "a stored batch")
        assert proc.poll() is None, watch.text
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(PROCESS_TIMEOUT) == 130, watch.text
        watch.join()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert f"resume with: kcbatch run --resume {out} --scheduler local:2" in watch.text
    assert "Traceback" not in watch.text
    done = finished_runs(out)
    assert 1 <= done < 12
    ok(["run", "--resume", out, "--scheduler", "local:2", "--quiet"])
    assert_same_records(stored_records(out), reference)


@pytest.mark.slow
@POSIX
def test_scheduler_file_cluster_and_lost_scheduler(reference, tmp_path):
    """``dask scheduler --scheduler-file`` and ``dask worker`` processes, as on
    an HPC cluster: same records; then the scheduler killed mid-study: exit 1,
    the finished batches kept, the resume command printed."""
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    worker = [sys.executable, "-m", "distributed.cli.dask_worker"]
    file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([*dask, "--scheduler-file", file, "--port", "0",
                               "--no-dashboard", "--host", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_for(file.exists, PROCESS_TIMEOUT, "the scheduler file")
        procs.append(subprocess.Popen([*worker, "--scheduler-file", file, "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ok(["run", *FLAGS, "--scheduler-file", file, "--out", tmp_path / "f"])
        assert_same_records(stored_records(tmp_path / "f"), reference)

        out = tmp_path / "lost"
        proc = _start(["run", *FLAGS, "--batch", "1", "--scheduler-file", file, "--out", out])
        wait_for(lambda: finished_runs(out) >= 1 or proc.poll() is not None,
                 PROCESS_TIMEOUT, "a stored batch")
        procs[0].kill()
        _, err = proc.communicate(timeout=PROCESS_TIMEOUT)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "lost the connection to the Dask scheduler" in err
    assert f"resume with: kcbatch run --resume {out} --scheduler-file {file}" in err
    assert 1 <= finished_runs(out) < 12
    ok(["run", "--resume", out, "--quiet"])
    assert_same_records(stored_records(out), reference)


def test_a_future_cancelled_after_its_status_was_read_is_a_lost_scheduler():
    """The race behind a traceback once seen in CI: the scheduler went away
    between reading a future's status and asking its result, which raised
    distributed's FutureCancelledError; the study must stop with one line."""
    from kcbatch.run.cluster import ClusterSession

    class FutureCancelledError(Exception):  # distributed's, matched by name
        pass

    class Future:
        status = "finished"

        def result(self):
            raise FutureCancelledError("kcbatch-runs-1-1 cancelled for reason: "
                                       "scheduler-connection-lost.")

    class Client:
        status = "running"

        class scheduler:
            address = "tcp://127.0.0.1:8786"

    session = ClusterSession(SchedulerSpec.__new__(SchedulerSpec), Client())
    with pytest.raises(ClusterError, match="lost the connection to the Dask scheduler at "
                                           r"tcp://127\.0\.0\.1:8786"):
        session._result(Future(), "batch 1")

    class Broken(Future):
        def result(self):
            raise ValueError("a worker's own error")

    with pytest.raises(ValueError, match="own error"):  # other errors are not hidden
        session._result(Broken(), "batch 1")


def test_a_scheduler_gone_during_a_round_trip_is_a_lost_scheduler():
    """The race behind an 'I/O error: free some space' line once seen in CI: the
    scheduler died after the status check and before the next round trip to
    it (the workers' thread count), which raised an OSError."""
    from kcbatch.run.cluster import ClusterSession

    class CommClosedError(OSError):  # distributed's is an OSError too
        pass

    class Client:
        status = "running"

        class scheduler:
            address = "tcp://127.0.0.1:8786"

        def nthreads(self):
            raise CommClosedError("in <TCP (closed)>: Stream is closed")

    session = ClusterSession(SchedulerSpec.__new__(SchedulerSpec), Client())
    with pytest.raises(ClusterError, match="lost the connection to the Dask scheduler at "
                                           r"tcp://127\.0\.0\.1:8786"):
        session.worker_threads()


@pytest.mark.gpu
def test_local_cuda_same_records_as_one_gpu(tmp_path):
    pytest.importorskip("dask_cuda", reason='dask-cuda not installed (kcbatch[dask-cuda])')
    if device_unusable("gpu") is not None:
        pytest.skip(f"gpu unavailable: {device_unusable('gpu')}")
    cfg = StudyConfig(**{**STUDY, "device": "gpu"})
    want = run_study(cfg).records
    result = run_study(cfg, scheduler="local-cuda")
    assert_same_records(result.records, want)
    assert {w["device"] for w in result.workers.values()} == {"gpu"}


def test_a_batch_too_big_for_the_device_is_split_on_the_worker(reference):
    """Out of memory on a worker: its batch is computed in halves there, with the
    same records (run_study halves its batch in one process)."""
    from helpers import FaultyEngine

    from kcbatch.engines import get_engine
    from kcbatch.run.cluster_task import records_for
    engine = FaultyEngine(get_engine("cpu"), exc=lambda: MemoryError("device full"),
                          fail_on=lambda call, batch: batch.n_networks > 1)
    records, _, _ = records_for(engine, StudyConfig(**STUDY), [3, 4, 5])
    assert_same_records(records, reference[3:6])
    assert engine.sizes == [3, 1, 2, 1, 1]
