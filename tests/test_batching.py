"""The one batch planner (kcbatch/run/batching.py): a study, a Dask worker and
``kcbatch tune`` size their batches with the same functions, lay an adiabatic
sweep's batches out the same way, and recognise out-of-memory errors with the
one :func:`is_oom`."""
from __future__ import annotations

import pytest

from kcbatch.engines import get_engine
from kcbatch.protocol.config import StudyConfig
from kcbatch.run import batching, cluster_task, study, tuning
from kcbatch.version import __version__

SMALL = dict(runs=6, nodes=60, m=2, k_num=4, k_min=0.5, k_max=2.0, t_transient=0.5,
             t_measure=0.5, sample_every=5, seed=2, device="cpu")


class OutOfMemoryError(Exception):
    """Named like cupy.cuda.memory.OutOfMemoryError."""


def test_study_worker_and_tune_ask_the_planners_functions():
    assert study.study_batch is batching.study_batch
    assert cluster_task.study_batch is batching.study_batch
    assert tuning.choose_batch is batching.choose_batch
    assert study.oom_retry_size is batching.oom_retry_size
    assert cluster_task.oom_retry_size is batching.oom_retry_size
    # no module keeps a copy of the planner's pieces
    for mod in (study, cluster_task):
        assert not hasattr(mod, "_is_oom")
    from kcbatch.analysis import sweep
    from kcbatch.run import work_unit as work
    assert not hasattr(sweep, "layout_config") and not hasattr(sweep, "batch_networks")
    assert not hasattr(work, "choose_batch") and not hasattr(work, "fitted_batch")


@pytest.mark.parametrize("sweep", ["independent", "adiabatic"])
@pytest.mark.parametrize("batch", [2, "auto"])
@pytest.mark.parametrize("loss_runs", [None, 2], ids=["uncapped", "minute-of-2-runs"])
def test_the_study_and_a_worker_plan_the_same_batch(sweep, batch, loss_runs, monkeypatch):
    cfg = StudyConfig(**SMALL, sweep=sweep, batch=batch)
    engine = get_engine("cpu")
    runs = len(cfg.run_ids)
    if loss_runs is not None:
        # the work an interrupted study may lose: loss_runs runs' estimated time
        per_run = batching.estimate_study(cfg, engine, runs, runs).seconds_per_run
        monkeypatch.setattr(batching, "LOSS_SECONDS", (loss_runs + 0.5) * per_run)
    planned, _ = batching.study_batch(cfg, engine, "cpu", runs)
    plan = cluster_task.probe(cfg, runs, __version__)
    assert isinstance(plan, cluster_task.WorkerPlan), plan
    assert plan.batch == planned
    fitted = batching.fitted_batch(cfg, engine, "cpu", runs)
    if loss_runs is not None and batch == "auto":
        # --batch auto holds about LOSS_SECONDS of work on a worker as in one process
        assert planned == min(batching.batch_networks(cfg, loss_runs), runs, fitted)
        if sweep == "independent":
            assert planned == loss_runs < fitted
    else:
        assert planned == fitted
    result = study.run_study(cfg)
    assert result.batch == batching.for_pending(planned, len(cfg.run_ids))
    if sweep == "adiabatic" and batch == 2:
        # --batch units of k_num one-K networks (capped by the runs left)
        assert batching.choose_batch(cfg, engine, 100) == 2 * cfg.k_num
        assert planned == min(2 * cfg.k_num, cfg.runs)


def test_the_sweeps_layout_is_one_column_per_network_and_its_unit_k_num_networks():
    cfg = StudyConfig(**SMALL, sweep="adiabatic")
    shape, unit = batching.batch_shape(cfg), batching.unit_shape(cfg)
    assert (shape.n_k, unit.n_k) == (1, cfg.k_num)
    assert shape.n_samples == unit.n_samples == cfg.spec.n_samples
    assert (shape.nodes, shape.edges) == (unit.nodes, unit.edges)
    assert batching.networks_per_unit(cfg) == cfg.k_num
    assert batching.batch_networks(cfg, 3) == 3 * cfg.k_num
    independent = StudyConfig(**SMALL)
    assert batching.batch_shape(independent) == batching.unit_shape(independent)
    assert batching.batch_shape(independent).n_k == cfg.k_num
    assert batching.networks_per_unit(independent) == 1
    # the estimate uses the layout: samples of one column per network
    est = batching.memory_estimate(cfg, get_engine("cpu"), "cpu", 8)
    assert est.samples == 8 * 1 * cfg.spec.n_samples * 8


def test_packed_bytes_are_the_engines_shape_bytes():
    cfg = StudyConfig(**SMALL)
    shape = batching.batch_shape(cfg)
    for b in (1, 3, 8):
        assert batching.packed_batch_bytes(cfg, b) == shape.packed_bytes(b)
        assert batching.device_bytes(cfg, get_engine("cpu"), b) == \
            get_engine("cpu").predict_bytes(shape, b)


@pytest.mark.parametrize("exc", [MemoryError("host"), OutOfMemoryError("device")],
                         ids=["MemoryError", "cupy-OutOfMemoryError"])
def test_one_is_oom_for_the_errors_study_and_worker_recognised(exc):
    assert batching.is_oom(exc)
    assert batching.oom_retry_size(exc, 8) == 4
    assert batching.oom_retry_size(exc, 3) == 1
    assert batching.oom_retry_size(exc, 1) is None  # nothing smaller to try


@pytest.mark.parametrize("exc", [RuntimeError("out of memory?"), ValueError("x"),
                                 KeyboardInterrupt()])
def test_other_errors_are_not_the_planners(exc):
    assert not batching.is_oom(exc)
    assert batching.oom_retry_size(exc, 8) is None


def test_for_pending_caps_a_planned_batch_by_the_runs_left():
    assert batching.for_pending(8, 3) == 3
    assert batching.for_pending(8, 20) == 8
    assert batching.for_pending(8, 0) == 1
