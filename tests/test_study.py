"""run_study: batch choice, results, resume, and the CLI study against it on every
device. (Engine faults and out-of-memory halving: tests/test_pipeline.py.)"""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_same_records, ok, r_columns, r_matrix, read_csv

from kcbatch.engines import get_engine
from kcbatch.engines.sizing import HOST_AUTO_BATCH
from kcbatch.protocol.config import StudyConfig
from kcbatch.results.store import STORE_NAME, Store
from kcbatch.run.batching import choose_batch
from kcbatch.run.study import run_study

SMALL = dict(runs=6, nodes=150, m=2, k_num=5, t_transient=0.5, t_measure=0.5, sample_every=2,
             seed=4, device="cpu")


def test_auto_batch_on_cpu_is_small_and_bounded_by_pending_runs():
    cfg = StudyConfig(**SMALL, batch="auto")
    cpu = get_engine("cpu")
    assert choose_batch(cfg, cpu, 100) == HOST_AUTO_BATCH
    assert choose_batch(cfg, cpu, 3) == 3
    assert choose_batch(StudyConfig(**SMALL, batch=16), cpu, 5) == 5


def test_study_result_shapes_and_r_match_records():
    res = run_study(StudyConfig(**SMALL, batch=3))
    assert res.r.shape == (6, 5)
    assert np.array_equal(res.k_values, np.linspace(0, 5, 5))
    assert res.summary["runs"] == 6
    assert res.engine_seconds > 0 and 0 <= res.wait_fraction <= 1


@pytest.mark.slow
def test_resuming_a_finished_study_computes_nothing_and_keeps_timings(tmp_path):
    out = tmp_path / "s"
    args = ["run", "--runs", "2", "--nodes", "120", "--k-num", "4", "--t-transient", "0.5",
            "--t-measure", "0.5", "--sample-every", "2", "--device", "cpu", "--seed", "3",
            "--quiet"]
    ok(args + ["--out", out])
    before = json.loads((out / "summary.json").read_text())
    again = ok(["run", "--resume", out, "--quiet"])
    assert "nothing to compute" in again.output
    after = json.loads((out / "summary.json").read_text())
    assert after["elapsed_seconds"] == before["elapsed_seconds"] > 0
    assert after["summary"] == before["summary"]


# --------------------------------------------------------------------------- CLI = API

# A tiny study with crossings (k_max = 12) as well as a right-censored run.
CLI_STUDY = dict(runs=6, nodes=150, m=2, k_max=12.0, k_num=5, t_transient=0.5, t_measure=0.5,
                 sample_every=2, seed=4)
# |r(device) - r(cpu)|: float32 rounding over these ~20 RK4 steps is ~1e-6 (the
# derivation is in tests/test_correctness.py, which holds every engine to 1e-4 /
# 1e-9 against an independent float64 reference); float64 differs only in the
# order of operations.
CPU_TOL = {"float32": 1e-4, "float64": 1e-9}


def as_flags(fields: dict) -> list[str]:
    return [a for key, value in fields.items()
            for a in (f"--{key.replace('_', '-')}", str(value))]


@pytest.fixture(scope="module")
def cpu_studies():
    """precision -> the CLI_STUDY run by run_study on the cpu engine (batch 1)."""
    made = {}

    def get(precision):
        if precision not in made:
            made[precision] = run_study(StudyConfig(**CLI_STUDY, precision=precision,
                                                    device="cpu", batch=1))
        return made[precision]
    return get


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_cli_study_matches_run_study_and_cpu(device, precision, tmp_path, cpu_studies):
    """One body for every device (cpu, gpu-sim, gpu): ``kcbatch run`` gives exactly
    run_study's numbers (another --batch, so also batch independence), and the
    device agrees with the cpu engine within the precision's tolerance."""
    fields = {**CLI_STUDY, "device": device, "precision": precision}
    api = run_study(StudyConfig(**fields, batch=2))
    out = tmp_path / "cli"
    res = ok(["run", *as_flags(fields), "--batch", "3", "--out", out, "--quiet"])
    assert f"device {device}" in res.output

    # the CLI study is run_study's, bitwise: the store, runs.csv, the summary
    with Store.open(out / STORE_NAME) as store:
        assert_same_records(store.records(), api.records)
    np.testing.assert_array_equal(r_matrix(out / "runs.csv"), api.r)
    header, rows = read_csv(out / "runs.csv")
    assert len(r_columns(header)) == CLI_STUDY["k_num"]
    for rec, row in zip(api.records, rows, strict=True):
        assert int(row["run"]) == rec.run
        assert (row["kc"] or None) == (None if rec.kc is None else repr(rec.kc))
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary == json.loads(json.dumps(api.summary.to_dict()))

    # the device agrees with the cpu engine
    cpu = cpu_studies(precision)
    assert any(r.kc is not None for r in cpu.records) and any(r.kc is None for r in cpu.records)
    tol = 0.0 if device == "cpu" else CPU_TOL[precision]
    assert np.max(np.abs(api.r - cpu.r)) <= tol, np.max(np.abs(api.r - cpu.r))
    k, thr = api.k_values, api.config.threshold
    for a, c in zip(api.records, cpu.records, strict=True):
        if a.kc == c.kc:
            continue
        # either answer is right when r is within tol of the threshold up to the crossing
        last = k[-1] if None in (a.kc, c.kc) else max(a.kc, c.kc)
        assert np.any(np.abs(c.r[k <= last] - thr) <= tol), (a.run, a.kc, c.kc)


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    import json

    cfg = StudyConfig(runs=np.int64(4), nodes=np.int32(100), m=np.int64(2),
                      k_max=np.float32(2.5), dt=np.float64(0.05), seed=np.uint32(3))
    assert type(cfg.runs) is int and type(cfg.nodes) is int and type(cfg.seed) is int
    assert type(cfg.k_max) is float and cfg.k_max == 2.5
    json.dumps(cfg.to_dict())  # would fail on numpy scalars
    with pytest.raises(Exception, match="nodes"):
        StudyConfig(nodes=np.float64(100.0))
