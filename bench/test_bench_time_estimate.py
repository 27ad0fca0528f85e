"""The study's time estimate (kcbatch.run.time_estimate) against the measured time, on the CPU.

    PYTHONPATH=. python -m pytest bench/test_bench_time_estimate.py -s \
        --benchmark-json bench/measurements/cpu-2core_time_estimate_<date>.json

Each case runs a study through ``run_study`` as ``kcbatch run --device cpu``
would (default ``--batch auto``) and records, in ``extra_info``, the estimate
the study printed (``estimated``), the time it then took (``measured``: the
study's wall time less the calibration that made the estimate) and their ratio,
which must lie within 1.5x either way (as must the time left after the first
batch, below). Cases (the default protocol's
networks: BA, N=10^4, m=3, 50 K, sigma=0.5, float32):

* ``default``   -- the default study, 16 runs (its 1000 runs scale by 1000/16);
* ``converged``, ``converged-seed1`` -- ``--t-transient auto --refine 0.005``, 2 runs
  (seeds 2026 and 1: runs that stop at T = 80 and at T = 160).

``load_before``/``load_after``: the 1-minute load average around the study (the
box is shared: a load above its cores slows the study after the estimate);
``calibration_cores``/``study_cores``: the process's CPU seconds per second while
the calibration timed its steps and over the whole study (``threads``: the
engine's). For a study of more than one batch, ``left_estimated`` is the time
left that the first batch's pace predicts (the line printed when it is off the
estimate by more than ``UPDATE_FACTOR``), ``left_measured`` the time the rest took.

``test_bench_readme_powerlaw_was_infeasible`` records the estimate of the README's
former power-law example (``--graph powerlaw --gamma 2.5 --coupling raw --dt auto
--runs 100 --nodes 2000``): its feasibility line, which the study prints before it starts.
"""
from __future__ import annotations

import os
import time

import numba
import pytest

import kcbatch.run.batching as batching
import kcbatch.run.study as study
import kcbatch.run.time_estimate as estimate
from kcbatch.engines import get_engine
from kcbatch.inputs.step_size import prepare_dt
from kcbatch.protocol.config import StudyConfig

CASES = {
    "default": dict(runs=16, seed=2026),
    "converged": dict(runs=2, t_transient="auto", refine=0.005, seed=2026),
    "converged-seed1": dict(runs=2, t_transient="auto", refine=0.005, seed=1),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.benchmark(group="time_estimate")
def test_bench_estimate_vs_measured(benchmark, monkeypatch, case):
    cfg = StudyConfig(device="cpu", **CASES[case])
    used: list[estimate.StudyEstimate] = []

    def spy(*args, **kwargs):
        est = estimate.estimate_study(*args, **kwargs)
        used.append(est)
        return est

    monkeypatch.setattr(batching, "estimate_study", spy)
    updates: list[tuple[float, float]] = []  # (when, seconds left) after the first batch
    real_update = estimate.StudyEstimate.after_first_batch

    def update_spy(self, runs, engine_per_run, device):
        updates.append((time.perf_counter(), self.time_left(runs, engine_per_run)))
        return real_update(self, runs, engine_per_run, device)

    monkeypatch.setattr(estimate.StudyEstimate, "after_first_batch", update_spy)
    load_before = os.getloadavg()[0]
    cpu_before = time.process_time()
    result = benchmark.pedantic(study.run_study, args=(cfg,), rounds=1, iterations=1)
    cpu = time.process_time() - cpu_before
    ended = time.perf_counter()
    est = used[-1]
    assert est.calibration is not None
    estimated = est.seconds(cfg.runs)
    measured = result.elapsed - est.calibration.wall
    benchmark.extra_info.update(
        case=case, runs=cfg.runs, batch=result.batch, estimated=estimated, measured=measured,
        ratio=measured / estimated, engine_seconds=result.engine_seconds,
        rate=est.calibration.rate, calibration_steps=est.calibration.steps,
        calibration_seconds=est.calibration.wall,
        system_steps_per_run=estimate.system_steps_per_run(cfg),
        t_transient_used=[r.t_transient_used for r in result.records], load_before=load_before,
        load_after=os.getloadavg()[0], calibration_cores=est.calibration.cores,
        study_cores=cpu / result.elapsed, threads=numba.get_num_threads())
    if updates and updates[0][1] > 0:  # a study of more than one batch
        when, left = updates[0]
        benchmark.extra_info.update(left_estimated=left, left_measured=ended - when,
                                    left_ratio=(ended - when) / left)
        assert 1 / 1.5 <= (ended - when) / left <= 1.5, (left, ended - when)
    assert 1 / 1.5 <= measured / estimated <= 1.5, (estimated, measured)


@pytest.mark.benchmark(group="time_estimate")
def test_bench_readme_powerlaw_was_infeasible(benchmark):
    cfg = StudyConfig(graph="powerlaw", gamma=2.5, coupling="raw", dt="auto", runs=100,
                      nodes=2000, device="cpu", seed=2026)
    chosen, _ = prepare_dt(cfg, None)
    engine = get_engine("cpu")
    est = benchmark.pedantic(estimate.estimate_study, args=(chosen, engine, 100, 8),
                             rounds=1, iterations=1)
    line = est.feasibility(100, "cpu")
    benchmark.extra_info.update(dt=chosen.dt_value, seconds=est.seconds(100),
                                seconds_per_run=est.seconds_per_run, feasibility=line)
    assert line is not None
