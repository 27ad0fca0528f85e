"""A study's expected time and the batches it implies (issue 22).

The default batch (``auto``) never holds more than the runs nor more than about
a minute of work on the engine, so that an interrupted study keeps nearly all
of its work; its records do not depend on the batch. The work model counts the
system-steps each protocol integrates, checked here against the converged
protocol's own accounting; the estimate is printed for every device, and a
study estimated beyond an hour gets the feasibility line. How close the
estimate comes to the measured time is a benchmark
(``bench/test_bench_time_estimate.py``), not a timed test.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import kcbatch.run.batching as batching
import kcbatch.run.study as study
import kcbatch.run.time_estimate as estimate
from kcbatch.analysis.converge import estimate_kc, window_starts
from kcbatch.engines import get_engine
from kcbatch.inputs.pipeline import make_batch
from kcbatch.protocol.choices import AUTO
from kcbatch.protocol.config import StudyConfig
from kcbatch.run.batching import choose_batch

TINY = dict(nodes=120, m=2, k_num=5, t_transient=0.5, t_measure=0.5, sample_every=2,
            seed=3, device="cpu")


def _slow(seconds_per_run: float):
    """A stand-in for estimate_study: every run takes ``seconds_per_run``."""
    def fake(cfg, engine, runs, batch, producers=1):
        return estimate.StudyEstimate(config=cfg, engine_per_run=seconds_per_run,
                                      generation_per_run=0.0, producers=producers,
                                      batch=min(batch, runs), calibration=None)
    return fake


# ------------------------------------------------------------------------ batch size

def test_the_default_batch_is_auto():
    assert StudyConfig().batch == AUTO


@pytest.mark.parametrize("runs, per_run, expected", [
    (16, 41.0, 1),     # a 16-run study of 41 s runs: one run per batch, not all 16
    (16, 25.0, 2),     # 60 s // 25 s
    (16, 7.0, 8),      # 60 // 7 = 8 = the CPU engine's auto batch
    (16, 0.5, 8),      # the engine's choice caps short runs
    (3, 0.5, 3),       # never more than the runs
    (16, None, 8),     # time unknown (a Dask worker): the engine's choice
])
def test_the_default_cpu_batch_holds_about_a_minute_of_work(runs, per_run, expected):
    cfg = StudyConfig(runs=runs, nodes=1000, seed=1, device="cpu")
    engine = get_engine("cpu")
    assert choose_batch(cfg, engine, runs, per_run) == expected
    # an explicit --batch is the user's choice
    assert choose_batch(cfg.replace(batch=16), engine, runs, per_run) == min(16, runs)


def test_an_interrupted_default_study_keeps_its_finished_minutes(monkeypatch):
    # runs estimated at 25 s each: batches of 2, so a stop after the first batch
    # keeps 2 runs (with the old default of 32 the 6 runs were one batch).
    monkeypatch.setattr(batching, "estimate_study", _slow(25.0))
    import threading
    stop = threading.Event()
    stop.set()  # stop after the first batch
    result = study.run_study(StudyConfig(runs=6, **TINY), stop=stop)
    assert result.batch == 2 and result.interrupted
    assert [r.run for r in result.records] == [0, 1]
    # the same runs' numbers as one batch of all six (networks are independent)
    whole = study.run_study(StudyConfig(runs=6, batch=6, **TINY))
    for a, b in zip(result.records, whole.records, strict=False):
        np.testing.assert_array_equal(a.r, b.r)
        assert a.kc == b.kc


# ------------------------------------------------------------------------ work model

def test_the_plain_work_model_counts_every_k_and_step():
    cfg = StudyConfig(runs=2, **TINY)
    spec = cfg.spec
    assert estimate.steps_per_run(cfg) == spec.n_transient + spec.n_measure
    assert estimate.system_steps_per_run(cfg) == cfg.k_num * (spec.n_transient + spec.n_measure)
    sweep = cfg.replace(sweep="adiabatic")
    assert estimate.system_steps_per_run(sweep) == 2 * cfg.k_num * (
        sweep.sweep_transient_steps + spec.n_measure)


@pytest.mark.parametrize("span, tol, points, rounds", [
    (0.1, 0.005, 8, 2),   # 0.1 -> 0.011 -> 0.0012
    (0.1, 0.02, 8, 1),
    (0.1, 0.2, 8, 0),     # the grid is already fine enough
    (0.1, 0.001, 1, 7),   # halving: 0.1 / 2**7 < 0.001 < 0.1 / 2**6
])
def test_refine_rounds(span, tol, points, rounds):
    # the work model's multisections (converge._refine divides by points + 1)
    cfg = StudyConfig(runs=1, **{**TINY, "k_num": 3, "t_transient": AUTO}, k_min=1.0,
                      k_max=1.0 + 2 * span, refine=tol, refine_points=points)
    assert estimate.refine_rounds(cfg) == rounds
    width, n = span, 0
    while width > tol:  # independent: shrink the bracket as the refinement does
        width /= points + 1
        n += 1
    assert n == rounds


def test_the_converged_work_model_matches_what_estimate_kc_integrates(monkeypatch):
    # kc_tol so large that every crossing network stops after its second window:
    # the model's stop at CONVERGED_STOP_TRANSIENTS = that window's start.
    # (both protocols: until the second window every coupling is integrated,
    # and the adaptive refinement's rounds are counted exactly)
    for converge in ("exhaustive", "adaptive"):
        cfg = StudyConfig(runs=3, nodes=200, m=3, k_num=8, k_min=0.5, k_max=4.0, seed=5,
                          device="cpu", t_transient=AUTO, t_measure=1.0, sample_every=2,
                          t_max=20.0, kc_tol=100.0, refine=0.05, converge=converge)
        spec = cfg.spec
        second = window_starts(spec.dt, cfg.t_max, spec.n_measure)[1]
        monkeypatch.setattr(estimate, "CONVERGED_STOP_TRANSIENTS", (second * spec.dt,))
        item = make_batch([0, 1, 2], cfg)
        got = estimate_kc(get_engine("cpu"), item.batch, cfg.k_values, dt=spec.dt,
                          t_transient=AUTO, t_measure=cfg.t_measure,
                          sample_every=spec.sample_every, refine=cfg.refine,
                          refine_points=cfg.refine_points, kc_tol=cfg.kc_tol, t_max=cfg.t_max,
                          converge=converge)
        assert np.all(got.converged) and np.all(got.censored == "none")
        # estimate_kc counts each network's (row, K) system-steps: rows = nodes
        per_run = (got.work + got.refine_work) / cfg.nodes
        model = estimate.system_steps_per_run(cfg)
        if converge == "exhaustive":
            assert np.all(model == pytest.approx(per_run, rel=1e-12))
            continue
        # adaptive: the refinement exactly; the windows at most the model's (every
        # coupling to the second window's end: the adaptive protocol retires some
        # earlier) and at least every coupling through the first window
        starts = window_starts(spec.dt, cfg.t_max, spec.n_measure)
        windows = cfg.k_num * (starts[1] + spec.n_measure)
        assert np.all(got.refine_work / cfg.nodes == model - windows)
        assert np.all(got.work / cfg.nodes <= windows)
        assert np.all(got.work / cfg.nodes >= cfg.k_num * (starts[0] + spec.n_measure))


# ----------------------------------------------------------------------- the lines

def test_the_estimate_is_printed_for_every_device(monkeypatch):
    monkeypatch.setattr(estimate, "QUICK_SECONDS", 0.0)  # measure even a tiny study
    notices: list[str] = []
    study.run_study(StudyConfig(runs=2, **TINY), on_notice=notices.append)
    lines = [n for n in notices if n.startswith("estimated time")]
    assert len(lines) == 1 and "for 2 runs on cpu" in lines[0], notices


def test_a_long_study_gets_the_feasibility_line(monkeypatch):
    cal = estimate.Calibration(rate=1e3, overhead=0.0, generation=0.0, steps=100, size=2,
                               wall=0.1)
    monkeypatch.setattr(estimate, "calibrate", lambda *a, **k: cal)
    monkeypatch.setattr(estimate, "QUICK_SECONDS", 0.0)  # measure even a tiny study
    cfg = StudyConfig(runs=2, **TINY)
    est = estimate.estimate_study(cfg, get_engine("cpu"), 1000, 2)
    per_run = estimate.work_per_run(cfg) / cal.rate
    assert est.seconds_per_run == pytest.approx(per_run)
    line = est.feasibility(1000, "cpu")
    assert line is not None and "\n" not in line
    steps = cfg.spec.n_steps
    assert f"{steps} RK4 steps per K per run" in line
    assert "for 1000 runs on cpu" in line
    assert f"--runs {int(3600 // per_run)} fits in" in line
    # an hour's study or less: no line
    assert est.feasibility(max(1, int(3000 // per_run)), "cpu") is None


def test_the_feasibility_line_names_raw_couplings_fine_step(monkeypatch):
    cal = estimate.Calibration(rate=1e3, overhead=0.0, generation=0.0, steps=100, size=2,
                               wall=0.1)
    monkeypatch.setattr(estimate, "calibrate", lambda *a, **k: cal)
    monkeypatch.setattr(estimate, "QUICK_SECONDS", 0.0)  # measure even a tiny study
    cfg = StudyConfig(runs=2, **{**TINY, "t_transient": 1.0, "t_measure": 1.0,
                                 "sample_every": 20}, dt=0.005, coupling="raw")
    line = estimate.estimate_study(cfg, get_engine("cpu"), 50, 2).feasibility(50, "cpu")
    assert "dt=0.005 is 10x smaller than the default" in line
    assert "--coupling degree" in line


def test_a_study_too_small_to_measure_is_bounded_silently(monkeypatch):
    def never(*a, **k):
        raise AssertionError("measured a study under QUICK_SECONDS")
    monkeypatch.setattr(estimate, "calibrate", never)
    cfg = StudyConfig(runs=2, **TINY)
    est = estimate.estimate_study(cfg, get_engine("cpu"), 2, 2)
    assert not est.measured
    bound = 2 * estimate.work_per_run(cfg) / estimate.SLOW_ENGINE_RATE
    assert est.seconds(2) == pytest.approx(bound)
    assert est.line(2, "cpu") is None  # nothing printed


def test_calibration_times_enough_steps():
    cfg = StudyConfig(runs=2, nodes=2000, m=3, k_num=16, seed=1, device="cpu")
    cal = estimate.calibrate(cfg, get_engine("cpu"), 2)
    # the difference between its two calls covers at least half the target
    # (or the step cap): not the two steps that made the estimate unstable
    per_step = estimate.work_per_run(cfg.replace(nodes=2000)) / cfg.spec.n_steps / cfg.k_num
    timed = (cal.steps - 2) * per_step * cfg.k_num * cal.size / cal.rate
    assert cal.steps - 2 >= estimate.MIN_CALIBRATION_STEPS
    assert timed >= 0.5 * estimate.CALIBRATION_SECONDS or \
        cal.steps == estimate.MAX_CALIBRATION_STEPS
    assert dataclasses.asdict(cal)["rate"] > 0


# --------------------------------------------------------------- after the first batch

def _estimate(engine_per_run: float, generation_per_run: float = 0.0,
              producers: int = 1) -> estimate.StudyEstimate:
    cal = estimate.Calibration(rate=1e9, overhead=0.0, generation=generation_per_run,
                               steps=100, size=2, wall=0.1, cores=1.0)
    return estimate.StudyEstimate(config=StudyConfig(runs=2, **TINY),
                                  engine_per_run=engine_per_run,
                                  generation_per_run=generation_per_run, producers=producers,
                                  batch=2, calibration=cal)


@pytest.mark.parametrize("pace", [2.0, 0.4])
def test_a_first_batch_off_the_estimate_prints_the_time_left(pace):
    est = _estimate(10.0)
    line = est.after_first_batch(30, 10.0 * pace, "cpu")
    left = 30 * 10.0 * pace
    assert line == (f"estimated time left: {estimate.format_duration(left)} for 30 runs on cpu "
                    f"(the first batch took ~{10.0 * pace:.2g} s per run, {pace:.2g}x the "
                    f"estimate)")


def test_a_first_batch_near_the_estimate_or_the_last_prints_nothing():
    est = _estimate(10.0)
    f = estimate.UPDATE_FACTOR
    assert est.after_first_batch(30, 10.0 * f, "cpu") is None
    assert est.after_first_batch(30, 10.0 / f, "cpu") is None
    assert est.after_first_batch(0, 100.0, "cpu") is None
    unmeasured = dataclasses.replace(est, calibration=None)
    assert unmeasured.after_first_batch(30, 100.0, "cpu") is None


def test_the_time_left_waits_for_producers_slower_than_the_engine():
    est = _estimate(1.0, generation_per_run=6.0, producers=2)
    assert est.time_left(10, 1.0) == pytest.approx(30.0)  # 6 s / 2 producers per run
    assert est.time_left(10, 5.0) == pytest.approx(50.0)
    # the engine's 2 s per run are not 1.25x past the estimate's 3 s (the producers')
    assert est.after_first_batch(10, 2.0, "cpu") is None


def test_the_study_prints_the_time_left_after_its_first_batch(monkeypatch):
    """An estimate a million times too fast: the first of two batches says so;
    a study of one batch has no time left to print."""
    def too_fast(cfg, engine, runs, batch, producers=1):
        return dataclasses.replace(_estimate(1e-6), config=cfg, batch=min(batch, runs),
                                   producers=producers)
    monkeypatch.setattr(batching, "estimate_study", too_fast)
    notices: list[str] = []
    study.run_study(StudyConfig(runs=4, batch=2, **TINY), on_notice=notices.append)
    left = [n for n in notices if n.startswith("estimated time left")]
    assert len(left) == 1 and " for 2 runs on cpu " in left[0], notices
    assert notices.index(left[0]) > [n.startswith("estimated time:") for n in notices].index(True)
    notices.clear()
    study.run_study(StudyConfig(runs=2, batch=2, **TINY), on_notice=notices.append)
    assert not [n for n in notices if n.startswith("estimated time left")], notices


class _Clocks:
    """Wall and process-CPU clocks that move only when the fake engine steps:
    ``per_step`` wall seconds a step, ``cores`` CPU seconds per wall second,
    plus ``fixed`` wall seconds (and as much CPU) per call."""

    def __init__(self, per_step: float, cores: float, fixed: float):
        self.wall = self.cpu = 0.0
        self.per_step, self.cores, self.fixed = per_step, cores, fixed

    def perf_counter(self) -> float:
        return self.wall

    def process_time(self) -> float:
        return self.cpu

    def integrate(self, batch, spec, progress=None):
        steps = spec.n_transient + spec.n_measure
        self.wall += self.fixed + steps * self.per_step
        self.cpu += self.fixed + steps * self.per_step * self.cores


def test_calibration_rate_overhead_and_cores_from_stubbed_clocks(monkeypatch):
    clocks = _Clocks(per_step=0.01, cores=1.5, fixed=0.2)
    monkeypatch.setattr(estimate, "time", clocks)
    cfg = StudyConfig(runs=2, **TINY)
    cal = estimate.calibrate(cfg, clocks, 2)  # the clocks' integrate is the engine
    work = cal.size * cfg.k_num * (2 * estimate.mean_network(cfg)[1] + cfg.nodes)
    assert cal.rate == pytest.approx(work / clocks.per_step)
    assert cal.overhead == pytest.approx(clocks.fixed)
    assert cal.cores == pytest.approx(clocks.cores)  # the fixed part is not counted
    # lengthened until the difference lasts half the budget
    assert (cal.steps - 2) * clocks.per_step >= 0.5 * estimate.CALIBRATION_SECONDS
