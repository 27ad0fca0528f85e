"""Tests of the study pipeline: producers, batching, the store, resume, shards, CLI.

Everything runs on the CPU engine with tiny studies (150 nodes, 5 couplings,
t_transient = t_measure = 0.5), so the whole file takes seconds. The CLI is
driven in-process with click's CliRunner (the same ``main`` as the
``kcbatch`` command); tests/hostile/test_interrupt.py drives real subprocesses.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_same_records, assert_usage_error, invoke, ok

import kcbatch.inputs.pipeline as pipeline
from kcbatch.analysis.records import RunRecord
from kcbatch.analysis.summary import format_summary
from kcbatch.export.report import EXPORTS
from kcbatch.inputs.pipeline import PipelineTimes, chunk_runs, make_batch, produce
from kcbatch.networks import barabasi_albert
from kcbatch.protocol.config import ConfigError, StudyConfig
from kcbatch.protocol.seeding import run_inputs
from kcbatch.results.store import STORE_NAME, Store, StoreError
from kcbatch.run.study import run_study

# A tiny study with a few crossings (so the Kc fields are not all None).
TINY = dict(runs=6, nodes=150, m=3, k_min=0.0, k_max=12.0, k_num=5, dt=0.05,
            t_transient=0.5, t_measure=0.5, sample_every=2, seed=7, device="cpu")
# The same study as CLI flags.
TINY_FLAGS = ["--runs", "6", "--nodes", "150", "--m", "3", "--k-min", "0", "--k-max", "12",
              "--k-num", "5", "--dt", "0.05", "--t-transient", "0.5", "--t-measure", "0.5",
              "--sample-every", "2", "--seed", "7", "--device", "cpu", "--quiet"]

PRODUCER_PREFIX = "kcbatch-producer"


def tiny(**changes) -> StudyConfig:
    return StudyConfig(**{**TINY, "batch": 2, **changes})


def producer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.name.startswith(PRODUCER_PREFIX) and t.is_alive()]


def assert_no_producer_threads(timeout: float = 5.0) -> None:
    # shutdown(wait=True) joins the workers before produce() returns, so they
    # should be gone at once; the grace period only absorbs thread teardown.
    deadline = time.monotonic() + timeout
    while producer_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert producer_threads() == [], f"producer threads left alive: {producer_threads()}"


def store_records(out: Path) -> list[RunRecord]:
    with Store.open(Path(out) / STORE_NAME) as s:
        return s.records()


@pytest.fixture(scope="module")
def reference() -> list[RunRecord]:
    """The uninterrupted, unsharded 6-run tiny study (in memory)."""
    res = run_study(tiny(batch=1, producers=1))
    assert len(res.records) == 6 and not res.interrupted
    # The protocol above is meant to give crossings as well as censored runs.
    assert any(r.kc is not None for r in res.records)
    assert all(r.status == "ok" for r in res.records)
    return res.records


# --------------------------------------------------------------------- determinism


@pytest.mark.parametrize("batch", [1, 2, 5])
@pytest.mark.parametrize("producers", [1, 2])
def test_records_do_not_depend_on_batch_size_or_producers(reference, batch, producers):
    res = run_study(tiny(batch=batch, producers=producers))
    assert res.batch == batch
    assert res.times.batches == -(-TINY["runs"] // batch)
    assert_same_records(res.records, reference)
    np.testing.assert_array_equal(res.r, np.array([r.r for r in reference]))


def test_run_inputs_depend_only_on_seed_and_run():
    cfg = tiny()
    both = make_batch([3, 1], cfg)
    alone = {1: make_batch([1], cfg), 3: make_batch([3], cfg)}
    assert both.runs == [3, 1]
    b = both.batch
    assert b.n_networks == 2
    for j, run in enumerate(both.runs):
        one = alone[run].batch
        r0, r1 = int(b.node_offset[j]), int(b.node_offset[j + 1])
        assert r1 - r0 == cfg.nodes == one.n_rows
        e0, e1 = int(b.indptr[r0]), int(b.indptr[r1])
        # the graph: row pointers relative to the network's first edge, local ids
        np.testing.assert_array_equal(b.indptr[r0:r1 + 1] - e0, one.indptr)
        np.testing.assert_array_equal(b.indices[e0:e1] - r0, one.indices)
        np.testing.assert_array_equal(b.weight[r0:r1], one.weight)
        np.testing.assert_array_equal(b.omega[r0:r1], one.omega)
        np.testing.assert_array_equal(b.theta0[r0:r1], one.theta0)
        np.testing.assert_array_equal(b.row_net[r0:r1], np.full(cfg.nodes, j))
        np.testing.assert_array_equal(b.couplings[j], one.couplings[0])
        assert both.stats[j] == alone[run].stats[0]
        assert both.seed_material[j] == alone[run].seed_material[0]
        # ... and they are the documented streams of (seed, run)
        inp = run_inputs(cfg.seed, run, cfg.nodes, cfg.omega_mu, cfg.omega_sigma)
        indptr, indices = barabasi_albert(cfg.nodes, cfg.m, inp.graph_seed)
        np.testing.assert_array_equal(one.indptr, indptr)
        np.testing.assert_array_equal(one.indices, indices)
        np.testing.assert_array_equal(one.omega, inp.omega.astype(np.float32))
        # the documented stream: SeedSequence(seed).spawn(runs)[run]
        spawned = np.random.SeedSequence(cfg.seed).spawn(cfg.runs)[run]
        mine = np.random.Generator(np.random.PCG64(spawned))
        assert int(mine.integers(0, 2**63 - 1, dtype=np.int64)) == inp.graph_seed
    # different runs really are different networks
    assert not np.array_equal(alone[1].batch.omega, alone[3].batch.omega)


# ------------------------------------------------------------- producer threads


def _failing_ba(bad_seed: int):
    real = pipeline.generate  # the model registry: graphs.models.generate

    def ba_that_fails(model, n, m, seed, **params):
        if seed == bad_seed:
            raise RuntimeError(f"synthetic generator failure for graph seed {seed}")
        return real(model, n, m, seed, **params)

    return ba_that_fails


def test_producer_exception_reaches_consumer_with_traceback(monkeypatch):
    cfg = tiny()
    bad_run = 4
    bad_seed = run_inputs(cfg.seed, bad_run, cfg.nodes, cfg.omega_mu,
                          cfg.omega_sigma).graph_seed
    monkeypatch.setattr(pipeline, "generate", _failing_ba(bad_seed))
    delivered = []
    with pytest.raises(RuntimeError, match="synthetic generator failure") as info:
        for item in produce(chunk_runs(range(6), 1), cfg, producers=2):
            delivered.append(item.runs)
    # in-order delivery up to the failing chunk, then the producer's exception
    assert delivered == [[0], [1], [2], [3]]
    text = "".join(traceback.format_exception(info.value))
    assert "make_batch" in text and "ba_that_fails" in text, text
    assert_no_producer_threads()


def test_producer_exception_propagates_out_of_run_study(monkeypatch):
    cfg = tiny(producers=2, batch=2)
    bad_seed = run_inputs(cfg.seed, 3, cfg.nodes, cfg.omega_mu, cfg.omega_sigma).graph_seed
    monkeypatch.setattr(pipeline, "generate", _failing_ba(bad_seed))
    with pytest.raises(RuntimeError, match="synthetic generator failure") as info:
        run_study(cfg)
    text = "".join(traceback.format_exception(info.value))
    assert "make_batch" in text and "ba_that_fails" in text and "run_study" in text, text
    assert_no_producer_threads()


def test_closing_the_generator_early_cancels_pending_work(monkeypatch):
    cfg = tiny()
    real = pipeline.make_batch
    started: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def blocking_make_batch(chunk, cfg):
        with lock:
            started.append(chunk[0])
        if chunk[0] != 0:
            # hold both workers busy so the queued chunks are still pending at close()
            release.wait(timeout=60)
        return real(chunk, cfg)

    monkeypatch.setattr(pipeline, "make_batch", blocking_make_batch)
    gen = produce(chunk_runs(range(20), 1), cfg, producers=2, prefetch=2)
    first = next(gen)
    assert first.runs == [0]
    assert len(producer_threads()) == 2
    # In flight: chunks 1-4 (producers + prefetch = 4 ahead); 5-19 not submitted.
    futures = list(gen.gi_frame.f_locals["pending"])
    assert len(futures) == 4
    deadline = time.monotonic() + 30
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(started) == [0, 1, 2]  # both workers are now blocked in 1 and 2

    def release_once_cancelled():
        # let the workers go only when close() has cancelled the queued chunks,
        # so nothing but close() can stop them from running 3 and 4
        end = time.monotonic() + 30
        while not all(f.cancelled() for f in futures[2:]) and time.monotonic() < end:
            time.sleep(0.005)
        release.set()

    helper = threading.Thread(target=release_once_cancelled)
    helper.start()
    gen.close()  # cancels 3 and 4, then joins the workers (which finish 1 and 2)
    helper.join()
    assert_no_producer_threads()
    assert [f.cancelled() for f in futures] == [False, False, True, True]
    assert all(f.done() for f in futures)
    time.sleep(0.05)
    assert sorted(started) == [0, 1, 2], f"cancelled or unsubmitted work ran: {started}"


def test_breaking_out_of_the_loop_leaves_no_thread():
    cfg = tiny()
    for item in produce(chunk_runs(range(6), 1), cfg, producers=2):
        assert item.runs == [0]
        break
    # the generator is released by the loop; CPython finalizes it at once
    assert_no_producer_threads()


def test_pipeline_times_are_recorded():
    cfg = tiny()
    times = PipelineTimes()
    items = list(produce(chunk_runs(range(6), 2), cfg, producers=2, times=times))
    assert [it.runs for it in items] == [[0, 1], [2, 3], [4, 5]]
    assert times.batches == 3 and len(times.waits) == 3
    assert all(it.gen_seconds > 0 for it in items)
    assert times.generate == pytest.approx(sum(it.gen_seconds for it in items))
    assert times.generate > 0
    # the consumer had nothing to do: it waited for the first batch at least
    assert times.waits[0] > 0 and times.wait > 0
    assert times.wait == pytest.approx(sum(times.waits))

    res = run_study(tiny(batch=2))
    t = res.times
    assert t.batches == 3 and len(t.waits) == 3
    assert t.generate > 0 and t.wait > 0 and t.waits[0] > 0
    assert res.engine_seconds > 0 and res.elapsed > res.engine_seconds
    assert 0 < res.wait_fraction < 1


# ---------------------------------------------------------------------- failures


def test_non_finite_phases_fail_the_run_not_the_study(tmp_path):
    # A real numerical fault, no injection: with omega_sigma = 2e37 the float32
    # RK4 sum f1 + 2 f2 + 2 f3 + f4 (~6 omega) overflows to inf for networks whose
    # largest |omega| exceeds ~5.7e37, the wrap turns inf into NaN, and the NaN
    # spreads to the whole network; the other networks stay finite.
    cfg = tiny(omega_sigma=2e37, seed=1, batch=3, out=tmp_path / "nan")
    res = run_study(cfg)
    failed = [r.run for r in res.records if r.status == "failed"]
    ok = [r.run for r in res.records if r.status == "ok"]
    assert failed == [2, 3, 5] and ok == [0, 1, 4]  # both kinds, across both batches
    assert len(res.records) == 6 and not res.interrupted
    for r in res.records:
        if r.status == "failed":
            assert r.fail_reason and "non-finite" in r.fail_reason
            assert r.kc is None and r.kc_interp is None and r.stationarity is None
            assert r.censored == "none"
            assert not np.all(np.isfinite(r.r))
        else:
            assert r.fail_reason is None and np.all(np.isfinite(r.r))
    s = res.summary
    assert s["runs"] == 6 and s["ok"] == 3 and s["failed"] == 3
    assert s["failed_runs"] == failed
    n_left = sum(r.status == "ok" and r.censored == "left" for r in res.records)
    n_right = sum(r.status == "ok" and r.censored == "right" for r in res.records)
    assert (s["censored_left"], s["censored_right"]) == (n_left, n_right)
    assert s["censored_left"] + s["censored_right"] <= s["ok"]
    assert any("failed" in w for w in s["warnings"])
    # the store keeps them (status and reason, NaN r as JSON null)
    stored = store_records(cfg.out)
    assert_same_records(stored, res.records)
    with sqlite3.connect(Path(cfg.out) / STORE_NAME) as con:
        rows = con.execute("SELECT run, status, fail_reason FROM runs WHERE status='failed' "
                           "ORDER BY run").fetchall()
    assert [r[0] for r in rows] == failed and all(r[2] for r in rows)


class OutOfMemoryError(Exception):
    """Named like cupy.cuda.memory.OutOfMemoryError, which run_study recognises by name."""


def test_engine_error_keeps_finished_batches_and_leaves_no_thread(tmp_path, monkeypatch,
                                                                 faulty_engines, reference):
    cfg = tiny(batch=2, producers=2, out=tmp_path / "s")
    faulty_engines(exc=RuntimeError("synthetic engine failure"), fail_on={2})
    with pytest.raises(RuntimeError, match="synthetic engine failure"):
        run_study(cfg)
    assert_no_producer_threads()
    assert_same_records(store_records(cfg.out), reference[:2])
    monkeypatch.undo()
    res = run_study(cfg, resume=True)
    assert_same_records(res.records, reference)


@pytest.mark.parametrize("exc, fail_on, sizes, halvings", [
    # once, on the 2nd batch: 4 (ok: runs 0-3), then 2 (OOM: runs 4-5); what is halved
    # is the batch that failed, not the configured one: 1, 1
    (MemoryError("synthetic OOM"), {2}, [4, 2, 1, 1], 1),
    # CuPy's exception (recognised by its name) on every batch of more than one
    # network: halved twice, 4 -> 2 -> 1, then the six runs one by one
    (lambda: OutOfMemoryError("out of memory allocating 1 GiB"),
     lambda call, batch: batch.n_networks > 1, [4, 2] + [1] * 6, 2),
], ids=["MemoryError-once", "cupy-OutOfMemoryError-above-1"])
def test_out_of_memory_halves_the_batch_and_loses_nothing(faulty_engines, reference, exc,
                                                          fail_on, sizes, halvings):
    notices = []
    engines = faulty_engines(exc=exc, fail_on=fail_on)
    res = run_study(tiny(batch=4), on_notice=notices.append)
    assert engines[0].sizes == sizes
    assert res.batch == 1
    halved = [n for n in notices if "out of memory" in n and "halved" in n]
    assert len(halved) == halvings, notices
    assert "halved to 1" in halved[-1], notices
    assert_same_records(res.records, reference)
    assert_no_producer_threads()


def test_out_of_memory_at_batch_one_is_raised(faulty_engines):
    engines = faulty_engines(exc=OutOfMemoryError("out of memory"))
    with pytest.raises(OutOfMemoryError):
        run_study(tiny(batch=1))
    assert engines[0].sizes == [1]  # nothing left to halve: no retry
    assert_no_producer_threads()


# ------------------------------------------------------------------------ resume


def test_stop_then_resume_equals_uninterrupted(tmp_path, monkeypatch, faulty_engines,
                                               reference):
    cfg = tiny(batch=2, out=tmp_path / "study")
    stop = threading.Event()
    wrappers = faulty_engines(after=lambda call, batch: stop.set())
    first = run_study(cfg, stop=stop)
    assert first.interrupted
    assert wrappers[0].calls == 1
    assert [r.run for r in first.records] == [0, 1]  # exactly the first batch
    assert [r.run for r in store_records(cfg.out)] == [0, 1]
    assert_no_producer_threads()
    monkeypatch.undo()

    # without resume=True an existing study is refused (naming `out`)
    with pytest.raises(ConfigError) as info:
        run_study(cfg)
    assert info.value.param == "out"

    second = run_study(cfg, resume=True)
    assert not second.interrupted
    assert second.times.batches == 2  # only the 4 missing runs were computed
    assert_same_records(second.records, reference)
    assert_same_records(store_records(cfg.out), reference)
    # the batches table: three batches of two, every run in one of them
    with sqlite3.connect(Path(cfg.out) / STORE_NAME) as con:
        assert con.execute("SELECT n_runs FROM batches ORDER BY id").fetchall() == [(2,)] * 3
        assert con.execute("SELECT count(*) FROM runs WHERE batch_id IS NULL").fetchone() == (0,)


def test_resume_may_change_how_but_not_what(tmp_path, reference):
    cfg = tiny(runs=6, run_stop=2, batch=1, out=tmp_path / "s")
    run_study(cfg)
    # batch/producers are not protocol fields: resuming with others is fine
    res = run_study(cfg.replace(run_stop=None, batch=3, producers=2), resume=True)
    assert_same_records(res.records, reference)


def test_resume_refuses_a_different_protocol(tmp_path):
    cfg = tiny(runs=6, run_stop=2, out=tmp_path / "s")
    run_study(cfg)
    for field, value in (("nodes", 999), ("seed", 8), ("dt", 0.025), ("precision", "float64")):
        with pytest.raises(ConfigError) as info:
            run_study(cfg.replace(**{field: value}), resume=True)
        assert info.value.param == field
        assert field in str(info.value)
    with pytest.raises(StoreError, match="nothing to resume"):
        run_study(cfg.replace(out=tmp_path / "empty"), resume=True)
    # the CLI: exit 2, message names the field; the store is untouched
    assert_usage_error(invoke(["run", "--resume", cfg.out, "--nodes", "999", "--quiet"]),
                       "nodes", "999")
    assert [r.run for r in store_records(cfg.out)] == [0, 1]
    # a new study into a directory that holds one: exit 2, pointing at --resume
    assert_usage_error(invoke(["run", *TINY_FLAGS, "--out", cfg.out]),
                       f"kcbatch run --resume {cfg.out}")
    assert [r.run for r in store_records(cfg.out)] == [0, 1]


# ------------------------------------------------------------------------ shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Shard directories: run_study with a run range, i.e. ``kcbatch run --run-range``
    without the exports, which merge does not read (a CLI shard against the full
    study: test_cli.py::test_run_range_shard_matches_full_study)."""
    root = tmp_path_factory.mktemp("shards")
    made = {}
    specs = {
        "a": (0, 3, {}), "b": (3, 6, {}),
        "c": (0, 4, {}), "d": (2, 6, {}),
        "e": (0, 2, {}), "f": (4, 6, {}),
        "seed8": (3, 6, {"seed": 8}), "nodes160": (3, 6, {"nodes": 160}),
    }
    for name, (start, stop, extra) in specs.items():
        out = root / name
        run_study(tiny(batch=2, run_start=start, run_stop=stop, out=out, **extra))
        made[name] = out
    made["root"] = root
    return made


def test_shards_hold_their_range(shards):
    assert [r.run for r in store_records(shards["a"])] == [0, 1, 2]
    assert [r.run for r in store_records(shards["b"])] == [3, 4, 5]


def test_merge_equals_unsharded_study(shards, reference):
    out = shards["root"] / "merged_ab"
    res = ok(["merge", out, shards["a"], shards["b"]])
    assert "6 of 6 runs" in res.output
    assert "overlap" not in res.output and "missing" not in res.output
    assert_same_records(store_records(out), reference)
    for name in EXPORTS:
        assert (out / name).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["runs"] == 6
    # merging again into the same directory is refused
    assert_usage_error(invoke(["merge", out, shards["a"], shards["b"]]), "already exists")


@pytest.mark.parametrize("other,field", [("seed8", "seed"), ("nodes160", "nodes")])
def test_merge_refuses_shards_of_different_studies(shards, other, field):
    out = shards["root"] / f"bad_{other}"
    assert_usage_error(invoke(["merge", out, shards["a"], shards[other]]), f"invalid {field}=")
    assert not (out / STORE_NAME).exists()


def test_merge_reports_overlapping_shards(shards, reference):
    out = shards["root"] / "merged_cd"
    res = ok(["merge", out, shards["c"], shards["d"]])
    assert "overlapping runs" in res.output and "2-3" in res.output, res.output
    assert "missing" not in res.output
    # the overlap is the same numbers in both shards, so the merge is the study
    assert_same_records(store_records(out), reference)


@pytest.mark.slow
def test_merge_reports_missing_runs_and_resume_completes_them(shards, reference):
    out = shards["root"] / "merged_ef"
    res = ok(["merge", out, shards["e"], shards["f"]])
    assert "4 of 6 runs" in res.output
    assert "missing runs: 2-3" in res.output, res.output
    assert f"kcbatch run --resume {out}" in res.output
    assert [r.run for r in store_records(out)] == [0, 1, 4, 5]
    done = ok(["run", "--resume", out, "--quiet"])
    assert "interrupted" not in done.output
    assert_same_records(store_records(out), reference)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["runs"] == 6


# ------------------------------------------------------------------------ report


@pytest.mark.slow
def test_report_regenerates_exports_from_the_store_alone(tmp_path):
    out = tmp_path / "study"
    ok(["run", *TINY_FLAGS, "--batch", "3", "--out", out])
    before = {name: (out / name).read_bytes() for name in EXPORTS}
    # a directory holding nothing but a copy of the store
    alone = tmp_path / "alone"
    alone.mkdir()
    with sqlite3.connect(out / STORE_NAME) as src, \
            sqlite3.connect(alone / STORE_NAME) as dst:
        src.backup(dst)
    assert sorted(p.name for p in alone.iterdir()) == [STORE_NAME]
    res = ok(["report", alone])
    assert format_summary(json.loads(before["summary.json"])["summary"]) in res.stdout
    for name in EXPORTS:
        assert (alone / name).is_file(), name
    # the text exports are identical to the ones written by `run`
    assert (alone / "runs.csv").read_bytes() == before["runs.csv"]
    assert json.loads((alone / "summary.json").read_bytes()) == \
        json.loads(before["summary.json"])
    for png in ("kc_hist.png", "r_curves.png"):
        assert (alone / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # and `report` on the original directory rewrites deleted exports
    for name in EXPORTS:
        (out / name).unlink()
    ok(["report", out])
    assert (out / "runs.csv").read_bytes() == before["runs.csv"]
    assert all((out / name).is_file() for name in EXPORTS)
    # a directory without a store: exit 2, no traceback
    assert_usage_error(invoke(["report", tmp_path]), "no kcbatch store", str(tmp_path))


@pytest.mark.parametrize("device, cores, want", [("gpu", 16, 4), ("gpu", 3, 2), ("gpu", 2, 1),
                                                 ("gpu", None, 1), ("cpu", 16, 1),
                                                 ("gpu-sim", 16, 1)])
def test_auto_producers_use_idle_host_cores_only_beside_a_gpu(monkeypatch, device, cores, want):
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: cores)
    assert pipeline.producer_threads("auto", device) == want
    assert pipeline.producer_threads(3, device) == 3  # a number is taken as given


def test_producers_default_to_auto_and_the_study_resolves_it(monkeypatch):
    assert StudyConfig().producers == "auto" and tiny(producers="auto").producers == "auto"
    with pytest.raises(ConfigError, match=r"producers='many'.*or 'auto'"):
        tiny(producers="many")
    seen = []
    real = pipeline.produce

    def spy(*args, producers, **kw):
        seen.append(producers)
        return real(*args, producers=producers, **kw)

    monkeypatch.setattr("kcbatch.run.study.produce", spy)
    run_study(tiny(runs=2, producers="auto"))
    assert seen == [1]  # tiny runs on the cpu: its engine needs the cores


def test_memory_estimate_counts_the_resolved_producers(monkeypatch):
    from kcbatch.engines import get_engine
    from kcbatch.run.batching import memory_estimate
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 16)
    engine = get_engine("cpu")
    cfg = StudyConfig(nodes=2000, seed=1)
    auto = memory_estimate(cfg.replace(producers="auto"), engine, "gpu", 8).generation
    assert auto == memory_estimate(cfg.replace(producers=4), engine, "gpu", 8).generation
    assert auto > memory_estimate(cfg.replace(producers=1), engine, "gpu", 8).generation


def test_cli_refuses_producers_that_are_no_number(tmp_path):
    res = invoke(["run", "--runs", "1", "--producers", "lots", "--out", tmp_path / "o"])
    assert_usage_error(res, "producers='lots'", "or 'auto'")


def test_input_problems_takes_the_precision_record():
    import warnings

    from kcbatch.inputs.batch import pack
    from kcbatch.inputs.pipeline import input_problems
    from kcbatch.protocol.choices import precision
    indptr, indices = np.array([0, 1, 2]), np.array([1, 0])
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        warnings.simplefilter("ignore")
        batch = pack([(indptr, indices)] * 2, [np.zeros(2), np.array([1e39, 0.0])],
                     [np.zeros(2)] * 2, [[np.inf], [1.0]], precision("float32"))
    assert input_problems(batch, precision("float32")) == [
        "couplings K overflow float32 (|K| > 3.4e+38); use precision float64 or smaller "
        "k_min/k_max",
        "natural frequencies overflow float32 (|omega| > 3.4e+38); use precision float64 or "
        "smaller omega_mu/omega_sigma"]
