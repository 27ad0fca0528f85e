"""Tests of the validated study configuration (kcbatch.protocol.config).

Every invalid input must raise :class:`ConfigError` whose message names the
parameter, repeats the value given and says what is allowed. Expected values
(the defaults of the original study, sample counts) are written here from
``docs/design.md`` or counted by brute force, never copied from the code under test.
"""
from __future__ import annotations

import dataclasses
import math
import re
import stat
from pathlib import Path

import numpy as np
import pytest
from helpers import is_root, run_cli, unwritable_out

import kcbatch.run.study
from kcbatch.protocol.config import ConfigError, IntegrationSpec, StudyConfig, load_toml
from kcbatch.run.plan import check_paths

# A small valid study; every bad-input case changes one or two fields of it.
SMALL = dict(runs=4, nodes=100, m=3, k_num=4, dt=0.05, t_transient=0.5, t_measure=0.5,
             sample_every=2, seed=1, device="cpu")


def small(**changes) -> StudyConfig:
    return StudyConfig(**{**SMALL, **changes})


def check_error(exc: ConfigError, param: str, value_text: str, *allowed: str) -> str:
    """The error names ``param``, shows ``value_text`` and says what is allowed."""
    msg = str(exc)
    assert exc.param == param, msg
    assert param in msg, msg
    assert value_text in msg, f"value {value_text!r} not in {msg!r}"
    assert exc.allowed and exc.allowed in msg, msg
    for words in allowed:
        assert words in msg, f"{words!r} not in {msg!r}"
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(autouse=True)
def _restore_permissions(tmp_path):
    yield
    for p in tmp_path.rglob("*"):
        if p.is_dir() and not p.is_symlink():
            p.chmod(p.stat().st_mode | stat.S_IRWXU)


# --------------------------------------------------------------------------- defaults

def test_defaults_are_the_original_protocol():
    # docs/design.md: N=10000, m=3, mu=0, sigma=0.5, K in linspace(0,5,50), dt=0.05,
    # t_transient=5, t_measure=5, sample_every=10, threshold=0.5, runs=1000, float32.
    cfg = StudyConfig()
    assert cfg.nodes == 10000
    assert cfg.m == 3
    # issue 9: the original study's model, coupling and distribution by default
    assert (cfg.graph, cfg.coupling, cfg.omega_dist) == ("ba", "degree", "normal")
    assert (cfg.ws_p, cfg.gamma) == (0.1, 3.0)
    assert cfg.omega_mu == 0.0
    assert cfg.omega_sigma == 0.5
    assert (cfg.k_min, cfg.k_max, cfg.k_num) == (0.0, 5.0, 50)
    np.testing.assert_array_equal(cfg.k_values, np.linspace(0.0, 5.0, 50))
    assert cfg.k_values.dtype == np.float64
    assert cfg.dt == 0.05
    assert cfg.t_transient == 5.0
    assert cfg.t_measure == 5.0
    assert cfg.sample_every == 10
    assert cfg.threshold == 0.5
    assert cfg.runs == 1000
    assert cfg.precision == "float32"
    assert cfg.seed is None
    assert cfg.run_ids == range(0, 1000)
    spec = cfg.spec
    assert (spec.n_transient, spec.n_measure, spec.sample_every) == (100, 100, 10)
    assert spec.n_samples == 10  # s = 0, 10, ..., 90
    assert spec.n_first_half == 5


def test_frozen():
    cfg = StudyConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.runs = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.spec.dt = 0.1  # type: ignore[misc]
    assert cfg.runs == 1000


def test_keyword_only():
    with pytest.raises(TypeError):
        StudyConfig(1000)  # type: ignore[misc]
    with pytest.raises(TypeError):
        IntegrationSpec(0.05, 100, 100, 10)  # type: ignore[misc]


def test_replace_revalidates():
    cfg = small()
    assert cfg.replace(runs=7).runs == 7
    with pytest.raises(ConfigError) as ei:
        cfg.replace(runs=0)
    check_error(ei.value, "runs", "0", ">= 1")


def test_to_dict_round_trip(tmp_path):
    cfg = small(out=tmp_path / "o", batch="auto", omega_mu=0.25)
    d = cfg.to_dict()
    assert d["out"] == str(tmp_path / "o")
    assert StudyConfig.from_mapping(d) == cfg
    assert set(cfg.protocol()) <= set(d)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("changes, param, value_text, allowed", [
    # nodes <= m
    (dict(nodes=3, m=3), "nodes", "3", "greater than m=3"),
    (dict(nodes=2, m=3), "nodes", "2", "greater than m=3"),
    (dict(nodes=5, m=10), "nodes", "5", "greater than m=10"),
    # nodes too few for the model's size m (ER/WS: 2m <= nodes - 1; power law: m < nodes)
    (dict(nodes=6, m=3, graph="er"), "nodes", "6", "greater than 2m=6"),
    (dict(nodes=6, m=3, graph="ws"), "nodes", "6", "greater than 2m=6"),
    (dict(nodes=3, m=3, graph="powerlaw"), "nodes", "3", "greater than m=3"),
    # model, coupling, distribution: one of the table
    (dict(graph="sf"), "graph", "sf", "ba, er, ws, powerlaw"),
    (dict(graph="BA"), "graph", "BA", "ba, er, ws, powerlaw"),
    (dict(coupling="none"), "coupling", "none", "degree, raw, mean-degree, global"),
    (dict(omega_dist="gauss"), "omega_dist", "gauss", "normal, lorentzian, uniform, degree"),
    # their parameters
    (dict(graph="ws", ws_p=-0.1), "ws_p", "-0.1", ">= 0"),
    (dict(graph="ws", ws_p=1.5), "ws_p", "1.5", "[0, 1]"),
    (dict(graph="ws", ws_p=math.nan), "ws_p", "nan", "finite"),
    (dict(graph="powerlaw", gamma=2.0), "gamma", "2.0", "> 2"),
    (dict(graph="powerlaw", gamma=1.5), "gamma", "1.5", "> 2"),
    (dict(graph="powerlaw", gamma=math.inf), "gamma", "inf", "finite"),
    # ... which only their model reads: a changed value elsewhere is a mistake
    (dict(ws_p=0.3), "ws_p", "0.3", "only to graph='ws'"),
    (dict(graph="er", ws_p=0.0), "ws_p", "0.0", "graph='er'"),
    (dict(gamma=2.5), "gamma", "2.5", "only to graph='powerlaw'"),
    (dict(graph="ws", gamma=4.0), "gamma", "4.0", "graph='ws'"),
    # omega_i = k_i: mu and sigma do not apply
    (dict(omega_dist="degree", omega_mu=1.0), "omega_mu", "1.0", "omega_dist='degree'"),
    (dict(omega_dist="degree", omega_sigma=0.2), "omega_sigma", "0.2", "does not apply"),
    # m < 1
    (dict(m=0), "m", "0", ">= 1"),
    (dict(m=-2), "m", "-2", ">= 1"),
    # runs < 1 / non-integer
    (dict(runs=0), "runs", "0", ">= 1"),
    (dict(runs=-5), "runs", "-5", ">= 1"),
    (dict(runs=2.5), "runs", "2.5", "integer"),
    # batch < 1 / non-integer
    (dict(batch=0), "batch", "0", "'auto'"),
    (dict(batch=-1), "batch", "-1", "'auto'"),
    (dict(batch=1.5), "batch", "1.5", "'auto'"),
    (dict(batch="abc"), "batch", "abc", "'auto'"),
    (dict(batch="8"), "batch", "8", "'auto'"),
    # dt <= 0, non-finite
    (dict(dt=0.0), "dt", "0", "> 0"),
    (dict(dt=-0.05), "dt", "-0.05", "> 0"),
    (dict(dt=math.nan), "dt", "nan", "finite"),
    (dict(dt=math.inf), "dt", "inf", "finite"),
    (dict(dt="Auto"), "dt", "Auto", "or 'auto'"),
    # t_transient / t_measure
    (dict(t_transient=-1.0), "t_transient", "-1", ">= 0"),
    (dict(t_measure=0.0), "t_measure", "0", "> 0"),
    # k grid
    (dict(k_num=0), "k_num", "0", ">= 1"),
    (dict(k_num=-3), "k_num", "-3", ">= 1"),
    (dict(k_num=4.0), "k_num", "4.0", "integer"),
    (dict(k_min=3.0, k_max=1.0), "k_min", "3.0", "k_max=1.0"),
    (dict(k_min=math.nan), "k_min", "nan", "finite"),
    # sigma < 0
    (dict(omega_sigma=-0.5), "omega_sigma", "-0.5", ">= 0"),
    (dict(omega_sigma=-1e-12), "omega_sigma", "-1e-12", ">= 0"),
    # threshold outside (0, 1)
    (dict(threshold=0.0), "threshold", "0.0", "between 0 and 1"),
    (dict(threshold=0), "threshold", "0", "between 0 and 1"),
    (dict(threshold=1.0), "threshold", "1.0", "between 0 and 1"),
    (dict(threshold=1), "threshold", "1", "between 0 and 1"),
    (dict(threshold=-0.1), "threshold", "-0.1", "between 0 and 1"),
    (dict(threshold=1.5), "threshold", "1.5", "between 0 and 1"),
    # sample_every < 1 or larger than the measurement steps (t_measure/dt = 10)
    (dict(sample_every=0), "sample_every", "0", ">= 1"),
    (dict(sample_every=-1), "sample_every", "-1", ">= 1"),
    (dict(sample_every=11), "sample_every", "11", "(t_measure/dt = 10)"),
    (dict(sample_every=1000), "sample_every", "1000", "10"),
    # device / precision
    (dict(device="tpu"), "device", "tpu", "auto, gpu, cpu, gpu-sim"),
    (dict(device="GPU"), "device", "GPU", "gpu"),
    (dict(precision="float16"), "precision", "float16", "float32, float64"),
    (dict(precision="double"), "precision", "double", "float32, float64"),
    # seed, producers, run range
    (dict(seed=-1), "seed", "-1", ">= 0"),
    (dict(seed=1.5), "seed", "1.5", "integer"),
    (dict(producers=0), "producers", "0", ">= 1"),
    (dict(run_start=-1), "run_start", "-1", ">= 0"),
    (dict(run_start=3, run_stop=2), "run_range", "3:2", "START < STOP"),
    (dict(run_start=0, run_stop=5), "run_range", "0:5", "runs=4"),
    (dict(fast_math="yes"), "fast_math", "yes", "true or false"),
])
def test_bad_values_name_param_value_and_allowed(changes, param, value_text, allowed):
    with pytest.raises(ConfigError) as ei:
        small(**changes)
    check_error(ei.value, param, value_text, "must", allowed)


@pytest.mark.parametrize("field, value", [
    ("runs", True), ("nodes", True), ("m", True), ("k_num", True), ("sample_every", True),
    ("batch", True), ("seed", False), ("dt", True), ("t_transient", False),
    ("t_measure", True), ("threshold", True), ("omega_sigma", True), ("omega_mu", False),
    ("k_min", False), ("k_max", True), ("ws_p", True), ("gamma", True),
])
def test_bools_are_not_numbers(field, value):
    with pytest.raises(ConfigError) as ei:
        small(**{field: value})
    check_error(ei.value, field, repr(value), "must")


@pytest.mark.parametrize("field, value", [
    ("dt", "fast"), ("runs", "many"), ("nodes", "1e4"), ("threshold", "half"),
    ("omega_sigma", None), ("k_max", [5]),
])
def test_non_numeric_values(field, value):
    with pytest.raises(ConfigError) as ei:
        small(**{field: value})
    check_error(ei.value, field, repr(value), "must")


@pytest.mark.parametrize("graph, nodes, m", [("ba", 4, 3), ("er", 7, 3), ("ws", 7, 3),
                                             ("powerlaw", 4, 3)])
def test_smallest_sizes_each_model_allows(graph, nodes, m):
    """The boundary of each size rule is accepted (and one node less was refused above)."""
    assert small(graph=graph, nodes=nodes, m=m).nodes == nodes


def test_parameters_of_other_models_at_their_defaults_are_accepted():
    """Every config holds ws_p and gamma: their defaults never count as 'given'."""
    cfg = small(graph="er", ws_p=0.1, gamma=3.0)
    assert (cfg.ws_p, cfg.gamma) == (0.1, 3.0)
    assert small(omega_dist="degree", omega_mu=0.0, omega_sigma=0.5).omega_dist == "degree"
    assert small(graph="ws", ws_p=0.0).ws_p == 0.0 and small(graph="ws", ws_p=1).ws_p == 1
    assert small(graph="powerlaw", gamma=2.01).gamma == 2.01


def test_other_couplings_leave_dt_to_the_networks():
    """raw / mean-degree / global: the bound depends on the graph, so the config alone
    accepts a dt the degree coupling refuses (the study checks its networks)."""
    kw = dict(k_max=5.0, dt=0.5, t_transient=0.5, t_measure=0.5, sample_every=1)
    for coupling in ("raw", "mean-degree", "global"):
        assert small(coupling=coupling, **kw).dt == 0.5
    # degree coupling: max(w_i k_i) = 1 on any graph, so the config checks dt itself
    with pytest.raises(ConfigError) as ei:
        small(coupling="degree", **kw)
    check_error(ei.value, "dt", "0.5", "largest dt allowed is 0.278")


def test_dt_auto_is_kept_until_the_study_resolves_it():
    cfg = small(dt="auto", coupling="raw")
    assert cfg.dt == "auto" and cfg.to_dict()["dt"] == "auto"
    with pytest.raises(ConfigError) as ei:
        _ = cfg.spec
    check_error(ei.value, "dt", "'auto'", "when the study starts")
    # the times are still checked at once
    with pytest.raises(ConfigError) as ei:
        small(dt="auto", t_measure=0.0)
    check_error(ei.value, "t_measure", "0", "> 0")
    with pytest.raises(ConfigError) as ei:
        small(dt="auto", sample_every=0)
    check_error(ei.value, "sample_every", "0", ">= 1")


def test_protocol_fields_include_the_model_and_refuse_a_change():
    from kcbatch.protocol.config import PROTOCOL_FIELDS
    for name in ("graph", "ws_p", "gamma", "coupling", "omega_dist"):
        assert name in PROTOCOL_FIELDS
    cfg = small(graph="ws", ws_p=0.2, coupling="raw", omega_dist="uniform")
    stored = cfg.to_dict()
    cfg.check_compatible(stored, what="the store")
    for change in (dict(graph="er", ws_p=0.1), dict(ws_p=0.3), dict(coupling="global"),
                   dict(omega_dist="lorentzian")):
        other = cfg.replace(**change)
        with pytest.raises(ConfigError) as ei:
            other.check_compatible(stored, what="the store")
        name = next(iter(change))
        check_error(ei.value, name, repr(getattr(other, name)), "contradicts the store",
                    f"{name}={stored[name]!r}")


def test_a_store_from_before_the_models_reads_as_the_defaults():
    """Stores written before issue 9 lack the new keys; they were BA / degree / normal."""
    old = {k: v for k, v in small().to_dict().items()
           if k not in ("graph", "ws_p", "gamma", "coupling", "omega_dist")}
    small().check_compatible(old, what="the old store")
    with pytest.raises(ConfigError) as ei:
        small(coupling="raw").check_compatible(old, what="the old store")
    check_error(ei.value, "coupling", "'raw'", "coupling='degree'")


def test_batch_accepts_auto_and_integers():
    assert small(batch="auto").batch == "auto"
    assert small(batch=1).batch == 1
    assert small(batch=64).batch == 64  # larger than runs is allowed (clamped when run)


@pytest.mark.parametrize("dt, field, t", [
    (0.03, "t_transient", 5.0),   # the example: 5 / 0.03 = 166.67
    (0.03, "t_measure", 5.0),
    (0.07, "t_measure", 1.0),
    (0.1, "t_measure", 0.25),
    (0.05, "t_transient", 0.02),  # rounds to zero steps: 0 is a valid transient
])
def test_time_not_a_multiple_of_dt_suggests_a_valid_value(dt, field, t):
    times = dict(t_transient=10 * dt, t_measure=10 * dt)  # the other one is valid
    times[field] = t
    with pytest.raises(ConfigError) as ei:
        StudyConfig(dt=dt, sample_every=1, **times)
    msg = check_error(ei.value, field, repr(t), "integer multiple of dt", "try")
    m = re.search(rf"try {field}=([-+0-9.eE]+)", msg)
    assert m, f"no suggested value in {msg!r}"
    suggested = float(m.group(1))
    assert suggested != t
    # The suggestion is close to what was asked (within one step) ...
    assert abs(suggested - t) <= dt * (1 + 1e-9), msg
    # ... and is itself accepted.
    times[field] = suggested
    cfg = StudyConfig(dt=dt, sample_every=1, **times)
    assert getattr(cfg, field) == suggested


@pytest.mark.parametrize("dt, t_measure", [(0.05, 0.02), (1.0, 0.4)])
def test_t_measure_below_one_step_suggests_a_valid_value(dt, t_measure):
    # KNOWN BUG (reported): t_measure/dt rounds to 0 steps and config.steps_for
    # suggests t_measure=0.0, which is itself rejected (t_measure must be > 0).
    # The suggestion should be at least one step, i.e. t_measure=dt.
    # k_max=1: dt=1.0 is RK4-stable there (dt <= 1.39/K_max), so t_measure is what is wrong.
    with pytest.raises(ConfigError) as ei:
        StudyConfig(dt=dt, k_max=1.0, t_transient=0.0, t_measure=t_measure, sample_every=1)
    msg = check_error(ei.value, "t_measure", repr(t_measure), "integer multiple of dt", "try")
    m = re.search(r"try t_measure=([-+0-9.eE]+)", msg)
    assert m, f"no suggested value in {msg!r}"
    suggested = float(m.group(1))
    assert suggested > 0, (
        f"the message suggests t_measure={suggested!r}, which is itself invalid "
        f"(t_measure must be > 0); it should suggest t_measure={dt!r}: {msg}")
    assert StudyConfig(dt=dt, k_max=1.0, t_transient=0.0, t_measure=suggested,
                       sample_every=1).spec.n_measure >= 1


@pytest.mark.parametrize("dt, t_transient, t_measure, n_tr, n_me", [
    (0.05, 5, 5, 100, 100),
    (0.1, 0.3, 0.7, 3, 7),         # 0.3/0.1 = 2.9999999999999996 is a multiple
    (0.01, 0, 1, 0, 100),          # no transient
    (0.25, 1, 2.5, 4, 10),
    (0.001, 10, 10, 10000, 10000),
])
def test_times_that_are_multiples_of_dt(dt, t_transient, t_measure, n_tr, n_me):
    spec = StudyConfig(dt=dt, t_transient=t_transient, t_measure=t_measure,
                       sample_every=1).spec
    assert (spec.n_transient, spec.n_measure) == (n_tr, n_me)


# --------------------------------------------------------------------------- out
# Whether out is writable is checked when the study is resolved (run.plan.check_paths),
# not when the config is constructed.

def test_out_not_writable(tmp_path):
    out = unwritable_out(tmp_path)
    with pytest.raises(ConfigError) as ei:
        check_paths(small(out=out))
    check_error(ei.value, "out", str(out), "must")
    assert not out.exists()


def test_out_below_a_regular_file(tmp_path):
    # Unwritable for everyone, root included.
    f = tmp_path / "file.txt"
    f.write_text("x")
    for out in (f / "out", f / "a" / "b"):
        with pytest.raises(ConfigError) as ei:
            check_paths(small(out=out))
        check_error(ei.value, "out", str(out), "must be a directory", str(f))


def test_out_is_a_regular_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ConfigError) as ei:
        check_paths(small(out=f))
    check_error(ei.value, "out", str(f), "directory")


@pytest.mark.skipif(is_root(), reason="permission bits do not restrict root")
def test_out_in_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(ConfigError) as ei:
        check_paths(small(out=ro / "a" / "b"))
    check_error(ei.value, "out", str(ro / "a" / "b"), "writable", str(ro))


def test_out_valid_is_not_created_by_validation(tmp_path):
    out = tmp_path / "new" / "deeper"
    cfg = small(out=str(out))
    assert cfg.out == out and isinstance(cfg.out, Path)
    assert not out.exists()
    existing = tmp_path / "exists"
    existing.mkdir()
    assert small(out=existing).out == existing


# --------------------------------------------------------------------------- IntegrationSpec

def test_n_samples_brute_force():
    for n_measure in range(1, 70):
        for sample_every in range(1, n_measure + 1):
            spec = IntegrationSpec(dt=0.1, n_transient=3, n_measure=n_measure,
                                   sample_every=sample_every)
            count = sum(1 for s in range(n_measure) if s % sample_every == 0)
            assert spec.n_samples == count, (n_measure, sample_every)
            assert spec.n_samples == math.ceil(n_measure / sample_every)
            assert spec.n_first_half == count // 2


@pytest.mark.parametrize("dt, t_measure, sample_every", [
    (0.05, 5, 10), (0.05, 5, 7), (0.05, 5, 100), (0.05, 1, 3), (0.1, 0.7, 2), (0.02, 1, 1),
])
def test_n_samples_from_times(dt, t_measure, sample_every):
    spec = IntegrationSpec.from_times(dt=dt, t_transient=0.0, t_measure=t_measure,
                                      sample_every=sample_every)
    n_measure = round(t_measure / dt)
    assert spec.n_measure == n_measure
    assert spec.n_samples == len([s for s in range(n_measure) if s % sample_every == 0])


@pytest.mark.parametrize("kw, param, value_text", [
    (dict(dt=0.0), "dt", "0.0"),
    (dict(n_transient=-1), "n_transient", "-1"),
    (dict(n_measure=0), "n_measure", "0"),
    (dict(sample_every=0), "sample_every", "0"),
    (dict(sample_every=11), "sample_every", "11"),
    (dict(n_measure=2.5), "n_measure", "2.5"),
])
def test_integration_spec_validation(kw, param, value_text):
    args = dict(dt=0.05, n_transient=0, n_measure=10, sample_every=1)
    with pytest.raises(ConfigError) as ei:
        IntegrationSpec(**{**args, **kw})
    check_error(ei.value, param, value_text, "must")


# --------------------------------------------------------------------------- TOML

TOML_VALUES = dict(runs=6, nodes=150, m=2, omega_mu=0.1, omega_sigma=0.3, k_min=0.5,
                   k_max=2.5, k_num=5, dt=0.1, t_transient=1.0, t_measure=2.0,
                   sample_every=4, threshold=0.4, seed=99, device="cpu",
                   precision="float64", batch="auto")

TOML_BODY = """\
runs = 6
nodes = 150
m = 2
omega_mu = 0.1
omega_sigma = 0.3
k_min = 0.5
k_max = 2.5
k_num = 5
dt = 0.1
t_transient = 1.0
t_measure = 2.0
sample_every = 4
threshold = 0.4
seed = 99
device = "cpu"
precision = "float64"
batch = "auto"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_top_level_and_study_table_load_the_same(tmp_path):
    top = write(tmp_path / "top.toml", "# top-level keys\n" + TOML_BODY)
    table = write(tmp_path / "table.toml", "[study]\n" + TOML_BODY)
    a = StudyConfig.from_mapping(load_toml(top))
    b = StudyConfig.from_mapping(load_toml(table))
    assert a == b == StudyConfig(**TOML_VALUES)


def test_toml_aliases_and_dashes(tmp_path):
    p = write(tmp_path / "c.toml", 'n = 120\nmu = 0.2\nsigma = 0.7\nt-measure = 2.0\n'
                                   'sample-every = 5\n')
    cfg = StudyConfig.from_mapping(load_toml(p))
    assert (cfg.nodes, cfg.omega_mu, cfg.omega_sigma, cfg.t_measure, cfg.sample_every) == \
        (120, 0.2, 0.7, 2.0, 5)


def test_toml_model_keys_and_dt_auto(tmp_path):
    p = write(tmp_path / "c.toml", '[study]\ngraph = "ws"\nws-p = 0.25\ncoupling = "mean-degree"\n'
                                   'omega-dist = "lorentzian"\ndt = "auto"\n')
    cfg = StudyConfig.from_mapping(load_toml(p))
    assert (cfg.graph, cfg.ws_p, cfg.coupling, cfg.omega_dist, cfg.dt) == \
        ("ws", 0.25, "mean-degree", "lorentzian", "auto")
    p = write(tmp_path / "g.toml", 'graph = "powerlaw"\ngamma = 2.5\n')
    assert StudyConfig.from_mapping(load_toml(p)).gamma == 2.5


def test_toml_out_becomes_path(tmp_path):
    p = write(tmp_path / "c.toml", f'[study]\nout = "{(tmp_path / "res").as_posix()}"\n')
    assert StudyConfig.from_mapping(load_toml(p)).out == tmp_path / "res"


@pytest.mark.parametrize("text", [
    "dt = = 3\n",
    "[study\nruns = 3\n",
    "runs = 3\nruns = 4\n",          # duplicate key
    'device = "cpu\n',               # unterminated string
    "runs = 3 4\n",
])
def test_malformed_toml(tmp_path, text):
    p = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as ei:
        load_toml(p)
    check_error(ei.value, "config", str(p), "valid TOML")


def test_toml_not_utf8_and_missing_file(tmp_path):
    p = tmp_path / "latin1.toml"
    p.write_bytes('device = "cpü"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as ei:
        load_toml(p)
    check_error(ei.value, "config", str(p), "TOML")
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as ei:
        load_toml(missing)
    check_error(ei.value, "config", str(missing), "readable")


@pytest.mark.parametrize("text, key", [
    ("nodez = 100\n", "nodez"),
    ("[study]\nruns = 3\nspeed = 2\n", "speed"),
    ("[other]\nruns = 3\n", "other"),
    ("runs = 3\n[study]\nnodes = 100\n", "study"),   # mixed: the table is not special
])
def test_unknown_toml_keys(tmp_path, text, key):
    p = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as ei:
        StudyConfig.from_mapping(load_toml(p))
    msg = str(ei.value)
    assert repr(key) in msg
    assert "unknown" in msg and "allowed keys" in msg
    for name in ("runs", "nodes", "dt", "threshold", "t_measure"):
        assert name in msg


@pytest.mark.parametrize("line, field, value_text", [
    ('dt = "fast"', "dt", "'fast'"),
    ('runs = "1000"', "runs", "'1000'"),
    ('threshold = "0.5"', "threshold", "'0.5'"),
    ("k_num = 5.0", "k_num", "5.0"),
    ("nodes = 1e4", "nodes", "10000.0"),
    ("runs = true", "runs", "True"),
    ("dt = false", "dt", "False"),
    ("omega_sigma = true", "omega_sigma", "True"),
    ("sample_every = [1, 2]", "sample_every", "[1, 2]"),
    ("device = 3", "device", "3"),
    ("dt = nan", "dt", "nan"),
    ("dt = inf", "dt", "inf"),
    ('graph = 3', "graph", "3"),
    ('coupling = ["raw"]', "coupling", "['raw']"),
    ('gamma = "2.5"\ngraph = "powerlaw"', "gamma", "'2.5'"),
    ('ws_p = true\ngraph = "ws"', "ws_p", "True"),
])
def test_toml_wrong_types(tmp_path, line, field, value_text):
    p = write(tmp_path / "c.toml", "[study]\n" + line + "\n")
    with pytest.raises(ConfigError) as ei:
        StudyConfig.from_mapping(load_toml(p))
    check_error(ei.value, field, value_text, "must")


# --------------------------------------------------------------------------- CLI merge

class _Captured(Exception):
    pass


@pytest.fixture
def captured_config(monkeypatch):
    """Run ``kcbatch run`` up to the study and return the StudyConfig it built."""
    seen: list[StudyConfig] = []

    def fake_run_study(cfg, **_kw):
        seen.append(cfg)
        raise _Captured

    monkeypatch.setattr(kcbatch.run.study, "run_study", fake_run_study)

    def invoke(args):
        result = run_cli(["run", *args])
        assert isinstance(result.exception, _Captured), (result.output, result.exception)
        return seen[-1]
    return invoke


def test_toml_drives_cli_and_flags_override(tmp_path, captured_config):
    p = write(tmp_path / "c.toml", "[study]\n" + TOML_BODY)
    cfg = captured_config(["--config", str(p)])
    # no out given: `run` names a fresh directory (tests/test_outputs.py checks which)
    assert cfg.out is not None and cfg.replace(out=None) == StudyConfig(**TOML_VALUES)
    # Flags override only what they name; everything else stays from the file.
    cfg = captured_config(["--config", str(p), "--nodes", "200", "--dt", "0.05",
                           "--seed", "7", "--batch", "3", "--precision", "float32",
                           "--device", "gpu-sim", "--threshold", "0.6",
                           "--run-range", "1:4", "--out", str(tmp_path / "o")])
    expected = StudyConfig(**{**TOML_VALUES, "nodes": 200, "dt": 0.05, "seed": 7, "batch": 3,
                              "precision": "float32", "device": "gpu-sim", "threshold": 0.6,
                              "run_start": 1, "run_stop": 4, "out": tmp_path / "o"})
    assert cfg == expected
    assert cfg.spec.n_measure == 40 and cfg.spec.n_transient == 20


def test_cli_without_config_uses_defaults(captured_config):
    cfg = captured_config(["--seed", "3"])
    assert cfg.out is not None and cfg.replace(out=None) == StudyConfig(seed=3)


def test_model_flags_reach_the_config(captured_config):
    cfg = captured_config(["--seed", "3", "--graph", "ws", "--ws-p", "0.3", "--m", "2",
                           "--coupling", "global", "--omega-dist", "uniform", "--dt", "auto"])
    assert (cfg.graph, cfg.ws_p, cfg.m, cfg.coupling, cfg.omega_dist, cfg.dt) == \
        ("ws", 0.3, 2, "global", "uniform", "auto")
    cfg = captured_config(["--seed", "3", "--graph", "powerlaw", "--gamma", "2.5",
                           "--omega-dist", "degree", "--dt", "0.025"])
    assert (cfg.graph, cfg.gamma, cfg.omega_dist, cfg.dt) == ("powerlaw", 2.5, "degree", 0.025)


@pytest.mark.parametrize("args, needles", [
    # typed flags that the model / distribution does not read: refused even at the default
    (["--ws-p", "0.1"], ["ws_p=0.1", "--ws-p applies only to --graph ws", "graph='ba'"]),
    (["--graph", "er", "--ws-p", "0.3"], ["ws_p=0.3", "--graph ws", "graph='er'"]),
    (["--gamma", "3.0"], ["gamma=3.0", "--gamma applies only to --graph powerlaw"]),
    (["--graph", "ws", "--gamma", "2.5"], ["gamma=2.5", "graph='ws'"]),
    (["--omega-dist", "degree", "--omega-sigma", "0.5"],
     ["omega_sigma=0.5", "--omega-dist normal or lorentzian or uniform",
      "omega_dist='degree'"]),
    (["--omega-dist", "degree", "--omega-mu", "1"], ["omega_mu=1.0", "omega_dist='degree'"]),
    # bad values of the new flags
    (["--graph", "sf"], ["'sf'", "ba", "powerlaw"]),
    (["--coupling", "sqrt"], ["'sqrt'", "mean-degree", "global"]),
    (["--omega-dist", "cauchy"], ["'cauchy'", "lorentzian"]),
    (["--graph", "ws", "--ws-p", "2"], ["ws_p=2.0", "[0, 1]"]),
    (["--graph", "powerlaw", "--gamma", "2"], ["gamma=2.0", "> 2"]),
    (["--dt", "quick"], ["--dt", "'quick'", "'auto'"]),
    (["--graph", "er", "--nodes", "6", "--m", "3"], ["nodes=6", "greater than 2m=6"]),
], ids=["ws-p-with-ba", "ws-p-with-er", "gamma-with-ba", "gamma-with-ws",
        "sigma-with-degree", "mu-with-degree", "graph-unknown", "coupling-unknown",
        "omega-dist-unknown", "ws-p-above-1", "gamma-2", "dt-word", "er-too-small"])
def test_model_flags_that_do_not_apply_or_are_bad_exit_2(args, needles):
    from helpers import assert_usage_error
    assert_usage_error(run_cli(["run", "--seed", "1", "--device", "cpu", *args]), *needles,
                       config_error=not any(a in ("sf", "sqrt", "cauchy", "quick")
                                            for a in args))


def test_toml_parameters_of_other_models_only_refused_when_changed(tmp_path, captured_config):
    p = write(tmp_path / "c.toml", 'ws_p = 0.1\ngamma = 3.0\n')  # defaults: accepted
    assert captured_config(["--config", str(p), "--seed", "1"]).graph == "ba"
    from helpers import assert_usage_error
    p = write(tmp_path / "d.toml", 'gamma = 2.2\n')
    assert_usage_error(run_cli(["run", "--config", str(p), "--seed", "1"]), "gamma=2.2",
                       "graph='powerlaw'")


def test_flag_fixes_an_invalid_toml_value(tmp_path, captured_config):
    # The merged config is validated, not the file on its own.
    p = write(tmp_path / "c.toml", "[study]\ndt = 0.07\nt_transient = 0.9\nt_measure = 0.9\n"
                                   "sample_every = 1\n")
    cfg = captured_config(["--config", str(p), "--dt", "0.1", "--seed", "1"])
    assert (cfg.dt, cfg.spec.n_transient, cfg.spec.n_measure) == (0.1, 9, 9)


def test_steps_for_rounds_up_to_the_fewest_steps_reaching_a_time():
    from kcbatch.protocol.config import steps_for
    assert steps_for(1.0, 0.1, rounding="up") == 10  # 1.0/0.1 is 10 within rounding
    assert steps_for(1.05, 0.1, rounding="up") == 11
    assert steps_for(5.0, 0.03, rounding="nearest") == 167  # shown, not run: unchecked
    assert steps_for(0.3, 0.1, "t_transient") == 3
    with pytest.raises(ConfigError, match=r"must be an integer multiple of dt=0\.1"):
        steps_for(1.05, 0.1, "t_transient")
