"""``dwell``: the time an adiabatic sweep spends at each K, measurement
included, independent of ``t_transient`` (kcbatch/analysis/sweep.py): the
default is bit for bit the sweep without it, a longer dwell is the sweep of
that transient and matches tests/reference.py's own RK4, bad values are
refused in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_same_records, assert_usage_error, run_cli
from reference import reference_sweep

import kcbatch
from kcbatch import ConfigError, StudyConfig, run_study
from kcbatch.networks import barabasi_albert
from kcbatch.protocol.config import ADDED_PROTOCOL_DEFAULTS, load_toml
from kcbatch.results.store import STORE_NAME
from kcbatch.run.work_unit import longest_steps

SMALL = dict(runs=3, nodes=80, m=2, k_num=4, k_min=0.5, k_max=2.0, t_transient=1.0,
             t_measure=1.0, sample_every=5, seed=21, device="cpu", sweep="adiabatic")


def test_dwell_of_transient_plus_measure_is_the_default_sweep_bit_for_bit():
    default = run_study(StudyConfig(**SMALL))
    dwell = run_study(StudyConfig(dwell=2.0, **SMALL))
    assert_same_records(dwell.records, default.records)
    for a, b in zip(dwell.records, default.records, strict=True):
        assert np.array_equal(a.r_forward, b.r_forward)
        assert np.array_equal(a.r_backward, b.r_backward)
    assert StudyConfig(dwell=2.0, **SMALL).sweep_transient_steps == \
        StudyConfig(**SMALL).spec.n_transient == 20


def test_a_longer_dwell_is_the_sweep_of_that_transient():
    # t_transient plays no part once dwell is given
    longer = run_study(StudyConfig(**{**SMALL, "t_transient": 0.5, "dwell": 3.5}))
    same = run_study(StudyConfig(**{**SMALL, "t_transient": 2.5}))
    assert_same_records(longer.records, same.records)
    assert not np.array_equal(longer.records[0].r_backward,
                              run_study(StudyConfig(**SMALL)).records[0].r_backward)
    cfg = StudyConfig(**{**SMALL, "dwell": 3.5})
    assert cfg.sweep_transient_steps == 50
    assert longest_steps(cfg) == 2 * 4 * 70


def test_the_api_dwell_matches_the_float64_reference():
    """hysteresis(dwell=D) against tests/reference.py's own RK4 sweep with
    (D - t_measure)/dt transient steps at each K, float64 on the CPU. Small
    and short (N=60, 4 K, 0.8 time units per K), so that chaos does not
    amplify rounding: measured 3.3e-16 at most, where one transient step
    fewer in the reference moves r by 6e-3."""
    graph = barabasi_albert(60, 3, 7)
    rng = np.random.default_rng(3)
    omega = rng.normal(0.0, 0.5, 60)
    theta0 = rng.uniform(0.0, 2 * np.pi, 60)
    k = np.array([0.5, 1.0, 1.5, 2.0])
    dt, t_measure, dwell = 0.01, 0.3, 0.8
    rf, rb = kcbatch.hysteresis([graph], [omega], [theta0], k, dt=dt, t_transient=5.0,
                                t_measure=t_measure, sample_every=5, dwell=dwell,
                                device="cpu", precision="float64")
    ref_f, ref_b = reference_sweep(graph, omega, theta0, k, dt, 50, 30, 5)
    assert np.max(np.abs(rf[0] - ref_f)) <= 1e-9
    assert np.max(np.abs(rb[0] - ref_b)) <= 1e-9
    # the default dwell is t_transient + t_measure
    kw = dict(dt=dt, t_measure=t_measure, sample_every=5, device="cpu", precision="float64")
    a = kcbatch.hysteresis([graph], [omega], [theta0], k, t_transient=0.5, dwell=0.8, **kw)
    b = kcbatch.hysteresis([graph], [omega], [theta0], k, t_transient=0.5, **kw)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("fields, needle", [
    (dict(dwell=2.0), "invalid dwell=2.0: must be left out: it applies only to "
                      "sweep='adiabatic' (this study has sweep='independent')"),
    (dict(sweep="adiabatic", dwell=0.5), "invalid dwell=0.5: must be at least t_measure=5.0"),
    (dict(sweep="adiabatic", dwell=7.03), "invalid dwell=7.03: must be an integer multiple "
                                          "of dt=0.05"),
    (dict(sweep="adiabatic", dwell=-1.0), "invalid dwell=-1.0"),
    (dict(sweep="adiabatic", dwell=float("nan")), "invalid dwell=nan"),
    (dict(sweep="adiabatic", dwell="long"), "invalid dwell='long'"),
])
def test_bad_dwell_is_refused_in_one_line(fields, needle):
    with pytest.raises(ConfigError) as err:
        StudyConfig(**fields)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert err.value.param == "dwell"


def test_dwell_is_checked_against_the_chosen_dt():
    # with dt auto, dwell is checked once dt is chosen
    cfg = StudyConfig(**{**SMALL, "dt": "auto", "dwell": 2.7})
    with pytest.raises(ConfigError, match=r"invalid dwell=2\.7: must be an integer multiple"):
        cfg.resolved(dt=0.2)
    assert cfg.resolved(dt=0.1).sweep_transient_steps == 17


@pytest.mark.parametrize("args, needles", [
    (["--dwell", "3"], ["dwell=3.0", "sweep='adiabatic'"]),
    (["--sweep", "adiabatic", "--dwell", "1"], ["dwell=1.0", "at least t_measure"]),
    (["--sweep", "adiabatic", "--dwell", "5.01"], ["dwell=5.01", "multiple of dt"]),
])
def test_the_cli_refuses_bad_dwell(args, needles, tmp_path):
    result = run_cli(["run", "--runs", "2", "--nodes", "50", "--device", "cpu",
                      "--out", tmp_path / "x", *args])
    assert_usage_error(result, *needles)


def test_the_api_refuses_bad_dwell():
    graph = barabasi_albert(30, 2, 1)
    z = np.zeros(30)
    for dwell, needle in [(0.3, "at least t_measure=0.5"), (0.775, "integer multiple"),
                          (0.0, "> 0"), (True, "> 0")]:
        with pytest.raises(ConfigError) as err:
            kcbatch.hysteresis([graph], [z], [z], [1.0], dt=0.01, t_measure=0.5,
                               sample_every=5, dwell=dwell, device="cpu")
        assert err.value.param == "dwell" and needle in str(err.value)


@pytest.mark.slow  # ~1.7 s: CLI processes
def test_dwell_from_toml_cli_and_an_older_store(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('sweep = "adiabatic"\ndwell = 12\nt_measure = 5.0\n')
    cfg = StudyConfig.from_mapping(load_toml(toml))
    assert cfg.dwell == 12.0 and cfg.sweep_transient_steps == 140
    assert ADDED_PROTOCOL_DEFAULTS["dwell"] is None
    out = tmp_path / "old"
    res = run_study(StudyConfig(out=out, **SMALL))
    import sqlite3
    con = sqlite3.connect(out / STORE_NAME)
    config = json.loads(con.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0])
    assert config["dwell"] is None
    del config["dwell"]  # a study stored before the field
    con.execute("UPDATE meta SET value=? WHERE key='config'", (json.dumps(config),))
    con.commit()
    con.close()
    again = run_study(StudyConfig(out=out, **SMALL), resume=True)
    assert again.computed == 0
    assert_same_records(again.records, res.records)
    with pytest.raises(ConfigError, match="dwell"):
        run_study(StudyConfig(out=out, dwell=3.0, **SMALL), resume=True)
    cli = tmp_path / "cli"
    result = run_cli(["run", "--runs", "3", "--nodes", "80", "--m", "2", "--k-num", "4",
                      "--k-min", "0.5", "--k-max", "2.0", "--t-transient", "0.5",
                      "--t-measure", "1.0", "--sample-every", "5", "--seed", "21",
                      "--device", "cpu", "--sweep", "adiabatic", "--dwell", "3.5",
                      "--out", cli, "--quiet"])
    assert result.exit_code == 0, result.output
    same = run_study(StudyConfig(**{**SMALL, "t_transient": 2.5}))
    from kcbatch.results.store import Store
    with Store.open(cli / STORE_NAME) as store:
        assert_same_records(store.records(), same.records)
        assert store.config["dwell"] == 3.5
