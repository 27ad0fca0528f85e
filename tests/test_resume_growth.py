"""A resumed study may grow (``--runs`` more than stored): the stored runs stay
as they are, the new ones are those a study of the new size from scratch has."""
from __future__ import annotations

import pytest
from helpers import assert_same_records, assert_usage_error, invoke

from kcbatch import ConfigError, StudyConfig
from kcbatch.results.store import STORE_NAME, Store
from kcbatch.run.study import run_study

SMALL = dict(nodes=60, m=2, k_num=6, k_max=3.0, seed=9, device="cpu", batch=2)


def _records(out):
    with Store.open(out / STORE_NAME) as store:
        return store.records(), store.config


def test_more_runs_on_resume_adds_the_new_runs_of_the_same_seed(tmp_path):
    out = tmp_path / "grown"
    run_study(StudyConfig(runs=3, out=out, **SMALL))
    before, _ = _records(out)
    grown = run_study(StudyConfig(runs=5, out=out, **SMALL), resume=True)
    assert grown.computed == 2
    after, config = _records(out)
    assert config["runs"] == 5 and [r.run for r in after] == [0, 1, 2, 3, 4]
    assert_same_records(after[:3], before)                # untouched, bit for bit
    fresh = run_study(StudyConfig(runs=5, out=tmp_path / "fresh", **SMALL))
    assert_same_records(after, fresh.records)             # as if it had been 5 runs


def test_fewer_runs_or_another_protocol_is_refused(tmp_path):
    out = tmp_path / "study"
    run_study(StudyConfig(runs=3, out=out, **SMALL))
    with pytest.raises(ConfigError, match=r"runs.*at least the 3 runs"):
        run_study(StudyConfig(runs=2, out=out, **SMALL), resume=True)
    with pytest.raises(ConfigError, match="k_num"):
        run_study(StudyConfig(runs=5, out=out, **{**SMALL, "k_num": 7}), resume=True)
    assert _records(out)[1]["runs"] == 3                  # a refusal changes nothing


def test_cli_grows_a_study(tmp_path):
    out = tmp_path / "cli"
    flags = ["--nodes", "60", "--m", "2", "--k-num", "6", "--k-max", "3", "--seed", "9",
             "--device", "cpu", "--quiet"]
    assert invoke(["run", "--runs", "2", *flags, "--out", out]).exit_code == 0
    assert invoke(["run", "--resume", out, "--runs", "4", "--quiet"]).exit_code == 0
    assert [r.run for r in _records(out)[0]] == [0, 1, 2, 3]
    assert_usage_error(invoke(["run", "--resume", out, "--runs", "1", "--quiet"]),
                       "runs", "at least the 4 runs")
