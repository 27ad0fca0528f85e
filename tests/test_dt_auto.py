"""dt auto: stability and accuracy, sampling in time units, the cost line."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from kcbatch.inputs.step_size import AUTO_DT_CAP, MAX_PHASE_STEP, prepare_dt
from kcbatch.protocol.config import ConfigError, StudyConfig

TINY = dict(runs=2, nodes=200, m=3, seed=7, device="cpu", batch=2)


def test_auto_keeps_the_number_of_samples_and_never_exceeds_the_default_step():
    cfg, notice = prepare_dt(StudyConfig(**TINY, dt="auto", k_max=1.0))  # bound 1.25: cap
    assert cfg.dt == AUTO_DT_CAP and cfg.sample_every == 10 and cfg.spec.n_samples == 10
    assert "set by cap" in notice
    raw, notice = prepare_dt(StudyConfig(**TINY, dt="auto", coupling="raw"))
    assert raw.dt < AUTO_DT_CAP and "set by accuracy" in notice
    # sampled every 0.5 time units whatever dt is: 10 samples in t_measure=5
    assert raw.spec.n_samples == 10
    assert raw.sample_every * raw.dt == pytest.approx(0.5)
    assert f"{MAX_PHASE_STEP:g} rad per step" in notice


def test_sample_every_given_with_auto_stays_in_steps():
    cfg, _ = prepare_dt(StudyConfig(**TINY, dt="auto", coupling="raw", sample_every=10))
    assert cfg.sample_every == 10 and cfg.spec.n_samples > 10


def test_sample_interval_with_a_given_dt():
    assert StudyConfig(dt=0.01, sample_interval=0.5).sample_every == 50
    # neither given: every 0.5 time units whatever dt, so dt keeps the number of samples
    assert StudyConfig(dt=0.01).sample_every == 50
    assert StudyConfig(dt=0.05).sample_every == 10  # the default protocol's 10 steps
    assert StudyConfig(dt=0.01).spec.n_samples == StudyConfig(dt=0.05).spec.n_samples == 10
    with pytest.raises(ConfigError, match=r"invalid dt=0\.04: does not divide the default "
                                          r"sampling interval 0\.5"):
        StudyConfig(dt=0.04)
    assert StudyConfig(dt=0.04, sample_every=10).sample_every == 10  # steps, when asked
    assert StudyConfig(dt=0.05, sample_every=10, sample_interval=0.5).spec.n_samples == 10
    with pytest.raises(ConfigError, match=r"invalid sample_interval=0\.33"):
        StudyConfig(dt=0.05, sample_interval=0.33)
    with pytest.raises(ConfigError, match="invalid sample_every=5: contradicts"):
        StudyConfig(dt=0.05, sample_every=5, sample_interval=0.5)
    with pytest.raises(ConfigError, match="invalid sample_interval=-1"):
        StudyConfig(sample_interval=-1.0)
    # a new dt keeps the interval
    assert StudyConfig(dt=0.05, sample_interval=0.5).replace(dt=0.1).sample_every == 5


def test_a_stored_config_without_sample_interval_resumes():
    cfg = StudyConfig(**TINY)
    stored = {k: v for k, v in cfg.to_dict().items() if k != "sample_interval"}
    again = StudyConfig.from_mapping(stored)
    assert again.spec == cfg.spec and again.protocol() == cfg.protocol()
    cfg.check_compatible(stored, what="the store")


def test_an_absurd_auto_study_is_refused_with_the_fix(monkeypatch):
    from kcbatch.run import time_estimate
    monkeypatch.setattr(time_estimate, "measure_rate", lambda *a, **k: 1.0)
    from kcbatch.engines import get_engine
    cfg, _ = prepare_dt(StudyConfig(**TINY, dt="auto", coupling="raw"))
    with pytest.raises(ConfigError) as ei:
        time_estimate.auto_dt_cost(cfg.replace(runs=10**6), get_engine("cpu"), 10**6, 2)
    assert "invalid dt='auto'" in str(ei.value) and "give --dt" in str(ei.value)
    line = time_estimate.auto_dt_cost(cfg, get_engine("cpu"), 2, 2)
    assert "RK4 steps per K per run" in line and "estimated" in line


@pytest.mark.slow
@pytest.mark.parametrize("case", ["ba-degree", "er-raw", "powerlaw-raw"])
def test_auto_dt_kc_matches_a_quarter_step_reference(case):
    """bench/bench_dt_auto.py at N=200, 2 runs, 5 + 5: |Kc_auto - Kc_{dt/4}| <= 0.005
    per run (measured 3.9e-3, 1.9e-4 and 5.8e-5)."""
    path = Path(__file__).parent.parent / "bench" / "bench_dt_auto.py"
    spec = importlib.util.spec_from_file_location("bench_dt_auto", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    dt, dt_ref, kc, kc_ref, _ = bench.kc_pair(case, 200, 2, "cpu", 5.0, 5.0, 2026)
    assert dt_ref == dt / 4 and np.all(np.isfinite(kc)) and np.all(np.isfinite(kc_ref))
    assert np.max(np.abs(kc - kc_ref)) <= bench.TOL
