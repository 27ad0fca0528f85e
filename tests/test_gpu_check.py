"""bench/gpu_check's pure parts: step selection, the converged study's projection
and target, the sweep's ratio (the steps themselves run on a GPU or gpu-sim)."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from kcbatch.results.store import STORE_NAME, Store

_PATH = Path(__file__).resolve().parent.parent / "bench" / "gpu_check"


@pytest.fixture(scope="module")
def gc():
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(_PATH))
    spec = importlib.util.spec_from_loader("gpu_check", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_only_keeps_run_order_and_names_unknown_steps(gc):
    assert gc.parse_only("scaling, converge_global,tests") == ["tests", "converge_global",
                                                               "scaling"]
    with pytest.raises(ValueError, match=r"unknown step.*sweep"):
        gc.parse_only("sweep,scaling")
    assert set(gc.LIMITS) == set(gc.DEFAULT_STEPS + gc.SECOND_STEPS) == set(gc.STEP_TITLES)
    # the second call's default budget must leave device time: the sum of its limits
    assert sum(gc.LIMITS[n] for n in gc.SECOND_STEPS) <= 310


def test_converge_measured_when_all_runs_finish(gc):
    figs = gc.converge_figures([(128, 5.0)] * 7 + [(104, 4.0)], 50.0, 1000, 0, [])
    assert figs["runs_done"] == 1000 and not figs["projected"]
    assert figs["projected_1000_runs_s"] == 50.0 and figs["target"] == "met"


def test_converge_projects_from_the_steady_batches(gc):
    # first batch carries the compile: the runs left go at the second's rate
    figs = gc.converge_figures([(128, 40.0), (128, 32.0)], 50.0, 1000, 130, ["SIGINT at 35 s"])
    assert figs["projected"] and figs["runs_done"] == 256
    assert figs["projected_1000_runs_s"] == pytest.approx(50.0 + 744 * 0.25)
    assert figs["target"] == "projected not met"
    assert figs["seconds_per_run"] == pytest.approx(50.0 / 256)


def test_converge_unfinished_after_the_target_is_measured_not_met(gc):
    figs = gc.converge_figures([(128, 40.0)], 75.0, 1000, 130, ["SIGINT at 35 s"])
    assert figs["target"].startswith("not met (128 of 1000 runs")
    figs = gc.converge_figures([], 20.0, 1000, 130, ["SIGINT at 10 s"])
    assert figs["projected_1000_runs_s"] is None and figs["target"].startswith("unknown")


def test_store_batches_reads_a_study_store(gc, tmp_path):
    assert gc.store_batches(tmp_path) == []
    Store.create(tmp_path / STORE_NAME, {}, np.array([1.0]), "test").close()  # the real schema
    con = sqlite3.connect(tmp_path / STORE_NAME)
    con.executemany("INSERT INTO batches (first_run, n_runs, device, seconds) VALUES (?,?,?,?)",
                    [(0, 2, "gpu", 1.5), (2, 1, "gpu", 0.5)])
    con.commit()
    con.close()
    assert gc.store_batches(tmp_path) == [(2, 1.5), (1, 0.5)]


def test_sweep_ratio_against_the_independent_study(gc):
    data = {"benchmarks": [
        {"name": "test_bench_independent", "stats": {"min": 2.0},
         "extra_info": {"runs": 512, "nodes": 10000, "k_num": 16, "batch": 32}},
        {"name": "test_bench_adiabatic[32-adiabatic]", "stats": {"min": 4.2},
         "extra_info": {"batch": 512}}]}
    figs = gc.sweep_figures(data)
    assert figs["ratio_adiabatic"] == pytest.approx(2.1) and figs["target_met"]
    assert figs["size"]["batch"] == 32
