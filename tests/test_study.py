"""run_study behaviour that needs no GPU: OOM halving, auto batch on the CPU."""
from __future__ import annotations

import numpy as np
import pytest

import kcbatch.study as study_mod
from kcbatch.config import StudyConfig
from kcbatch.engines import get_engine
from kcbatch.engines.base import HOST_AUTO_BATCH
from kcbatch.study import choose_batch, run_study

SMALL = dict(runs=6, nodes=150, m=2, k_num=5, t_transient=0.5, t_measure=0.5, sample_every=2,
             seed=4, device="cpu")


class OutOfMemoryError(Exception):
    """Named like cupy.cuda.memory.OutOfMemoryError, which study.py recognises."""


def test_out_of_memory_halves_the_batch_and_loses_nothing(monkeypatch):
    reference = run_study(StudyConfig(**SMALL, batch=4))
    real_get_engine = study_mod.get_engine
    sizes = []

    class Flaky:
        def __init__(self, inner):
            self.inner = inner

        def integrate(self, batch, spec):
            sizes.append(batch.n_networks)
            if batch.n_networks > 1:
                raise OutOfMemoryError("out of memory allocating 1 GiB")
            return self.inner.integrate(batch, spec)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(study_mod, "get_engine", lambda *a: Flaky(real_get_engine(*a)))
    notes = []
    result = run_study(StudyConfig(**SMALL, batch=4), on_notice=notes.append)
    assert sizes[:3] == [4, 2, 1]
    assert result.batch == 1
    assert sum("out of memory" in n and "halved" in n for n in notes) == 2
    assert [r.run for r in result.records] == list(range(6))
    for a, b in zip(result.records, reference.records, strict=True):
        np.testing.assert_array_equal(a.r, b.r)


def test_out_of_memory_at_batch_one_is_raised(monkeypatch):
    real_get_engine = study_mod.get_engine

    class Broken:
        def __init__(self, inner):
            self.inner = inner

        def integrate(self, batch, spec):
            raise OutOfMemoryError("out of memory")

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(study_mod, "get_engine", lambda *a: Broken(real_get_engine(*a)))
    with pytest.raises(OutOfMemoryError):
        run_study(StudyConfig(**SMALL, batch=1))


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


def test_resuming_a_finished_study_computes_nothing_and_keeps_timings(tmp_path):
    import json

    from click.testing import CliRunner

    from kcbatch.cli import main

    out = tmp_path / "s"
    args = ["run", "--runs", "2", "--nodes", "120", "--k-num", "4", "--t-transient", "0.5",
            "--t-measure", "0.5", "--sample-every", "2", "--device", "cpu", "--seed", "3",
            "--quiet"]
    first = CliRunner().invoke(main, args + ["--out", str(out)])
    assert first.exit_code == 0, first.output
    before = json.loads((out / "summary.json").read_text())
    again = CliRunner().invoke(main, ["run", "--resume", str(out), "--quiet"])
    assert again.exit_code == 0, again.output
    assert "nothing to compute" in again.output
    after = json.loads((out / "summary.json").read_text())
    assert after["elapsed_seconds"] == before["elapsed_seconds"] > 0
    assert after["summary"] == before["summary"]


def test_run_study_gives_the_same_numbers_as_the_cli(tmp_path):
    import csv

    from click.testing import CliRunner

    from kcbatch.cli import main
    from kcbatch.export import r_column_names

    cfg = StudyConfig(**SMALL, batch=2)
    api = run_study(cfg)
    res = CliRunner().invoke(main, [
        "run", "--runs", "6", "--nodes", "150", "--m", "2", "--k-num", "5", "--t-transient",
        "0.5", "--t-measure", "0.5", "--sample-every", "2", "--seed", "4", "--device", "cpu",
        "--batch", "3", "--out", str(tmp_path / "cli"), "--quiet"])
    assert res.exit_code == 0, res.output
    with open(tmp_path / "cli" / "runs.csv") as fh:
        rows = list(csv.DictReader(fh))
    cols = r_column_names(cfg.k_values)
    for rec, row in zip(api.records, rows, strict=True):
        assert int(row["run"]) == rec.run
        np.testing.assert_array_equal([float(row[c]) for c in cols], rec.r)
        assert (row["kc"] or None) == (None if rec.kc is None else repr(rec.kc))


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    import json

    cfg = StudyConfig(runs=np.int64(4), nodes=np.int32(100), m=np.int64(2),
                      k_max=np.float32(2.5), dt=np.float64(0.05), seed=np.uint32(3))
    assert type(cfg.runs) is int and type(cfg.nodes) is int and type(cfg.seed) is int
    assert type(cfg.k_max) is float and cfg.k_max == 2.5
    json.dumps(cfg.to_dict())  # would fail on numpy scalars
    with pytest.raises(Exception, match="nodes"):
        StudyConfig(nodes=np.float64(100.0))
