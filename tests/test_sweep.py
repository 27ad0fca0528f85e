"""The adiabatic sweep (``--sweep adiabatic``, kcbatch/analysis/sweep.py): the engines'
branches against the independent float64 reference, the single-K case
against the independent protocol, the loop measures, studies (batch size,
resume), bad input and the CLI's outputs."""
from __future__ import annotations

import dataclasses
import json
import re
import threading

import numpy as np
import pytest
from helpers import (
    ROOT,
    assert_same_records,
    assert_usage_error,
    ok,
    r_columns,
    read_csv,
    run_cli,
)
from reference import reference_loop, reference_sweep

import kcbatch
from kcbatch import ConfigError, StudyConfig, run_study
from kcbatch.analysis.sweep import loop_measures, run_sweep
from kcbatch.engines import get_engine
from kcbatch.inputs.pipeline import make_batch
from kcbatch.networks import barabasi_albert
from kcbatch.results.store import STORE_NAME, Store

# A study small enough for the fast lane: 5 runs, 4 K, 100 nodes.
SMALL = dict(runs=5, nodes=100, m=2, k_num=4, k_min=0.5, k_max=2.0, t_transient=1.0,
             t_measure=1.0, sample_every=5, seed=21, device="cpu", sweep="adiabatic")
SWEEP_FIELDS = ("kc_forward", "kc_backward", "hysteresis_width", "loop_area")


# --------------------------------------------------------------------- the loop measures

@pytest.mark.parametrize("seed", range(20))
def test_loop_measures_follow_their_definitions(seed):
    """kc_forward, kc_backward and the loop area of kcbatch.analysis.sweep against the
    reference's own reading of the definitions, on random curves that cross
    the threshold any number of times (steps of 0.3 around 0.5)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    k = np.sort(rng.uniform(0, 4, n)) + np.arange(n) * 1e-3
    rf = rng.choice([0.2, 0.5, 0.8], n)  # 0.5 itself: not above the threshold
    rb = rng.choice([0.2, 0.5, 0.8], n)
    got = loop_measures(k, rf, rb, 0.5)
    kc_f, kc_b, _, area = reference_loop(k, rf, rb, 0.5)
    assert (got.kc_forward, got.kc_backward) == (kc_f, kc_b)
    assert got.width == (None if kc_f is None or kc_b is None else kc_f - kc_b)
    assert got.loop_area == pytest.approx(area, rel=1e-12, abs=1e-15)


def test_kc_backward_is_where_the_branch_stays_synchronised():
    k = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    # above at 1 but below again at 2: the branch stays above only from 3 on
    assert loop_measures(k, np.zeros(5), np.array([0.1, 0.9, 0.2, 0.9, 0.9]), 0.5).kc_backward == 3.0
    assert loop_measures(k, np.zeros(5), np.full(5, 0.9), 0.5).kc_backward == 0.0
    assert loop_measures(k, np.zeros(5), np.array([0.9, 0.9, 0.9, 0.9, 0.4]), 0.5).kc_backward is None


# --------------------------------------------------------------------- engines vs reference

def _explosive_case(n_graphs=2, nodes=200):
    """BA graphs (m=3) with omega_i = k_i and raw coupling: the explosive
    synchronisation set-up (Gomez-Gardenes et al., PRL 106, 128701)."""
    graphs = [barabasi_albert(nodes, 3, 1000 + g) for g in range(n_graphs)]
    omega = [np.diff(g[0]).astype(np.float64) for g in graphs]
    rng = np.random.default_rng(11)
    theta0 = [rng.uniform(0.0, 2 * np.pi, nodes) for _ in graphs]
    return graphs, omega, theta0


# The reference case of the tolerance measurement below.
CASE = dict(k_values=np.linspace(0.6, 2.4, 7), dt=0.01, t_transient=2.0, t_measure=2.0,
            sample_every=10)
# Tolerances, from the reference's own sensitivity to 1e-9 (the test's docstring).
GRID_STEP = 0.3
KC_FORWARD_TOL = JUMP_TOL = GRID_STEP + 1e-9   # the jump may move by one grid point
KC_BACKWARD_TOL = 1e-9                         # reproduces to float rounding
R_BACKWARD_TOL = 1e-9
R_SYNCHRONISED_TOL = 1e-6                      # forward branch where r > 0.8
AREA_TOL = 4e-3


@pytest.mark.slow  # the reference's own RK4: ~4 s per sweep of one graph
def test_adiabatic_sweep_matches_the_float64_reference(device):
    """Both branches of the engine (float64) against tests/reference.py's
    own RK4, compared on robust features: Kc forward and backward, where the
    forward branch jumps most, the loop area, r on the backward branch and r
    on the synchronised part of the forward branch.

    Tolerances from the sensitivity of the reference itself, measured on this
    case (two BA graphs, N=200, m=3, omega=k, raw coupling, K = 0.6..2.4 step
    0.3, dt=0.01, 2 + 2 time units per K; both jump at K=1.8 and stay
    synchronised down to K=1.2): four perturbations of theta0 by 1e-9
    (normal, per node) per graph left Kc forward, Kc backward and the largest
    jump unchanged; they moved r on the desynchronised forward branch by up to
    1.3e-3 (chaos), r on the synchronised forward branch (r > 0.8) by up to
    1.2e-7, the backward branch by up to 2.4e-15 and the loop area by up to
    3.8e-4. The engines differ from the reference by rounding (forward branch
    1.7e-9 on cpu, 2.1e-10 on gpu-sim; backward branch <= 1.3e-15), far below
    a 1e-9 perturbation. The tolerances allow the forward jump one grid point
    (the issue measured +-0.15 in K at N=1000), the synchronised branch and
    the area about 10x the measured spread, and the backward branch 1e-9."""
    graphs, omega, theta0 = _explosive_case()
    c = CASE
    k = c["k_values"]
    assert np.allclose(np.diff(k), GRID_STEP)
    rf, rb = kcbatch.hysteresis(graphs, omega, theta0, k, coupling="raw",
                                dt=c["dt"], t_transient=c["t_transient"],
                                t_measure=c["t_measure"], sample_every=c["sample_every"],
                                device=device, precision="float64")
    n_steps = round(c["t_transient"] / c["dt"])
    for g, graph in enumerate(graphs):
        ref_f, ref_b = reference_sweep(graph, omega[g], theta0[g], k, c["dt"],
                                       n_steps, n_steps, c["sample_every"], coupling="raw")
        want = reference_loop(k, ref_f, ref_b, 0.5)
        got = reference_loop(k, rf[g], rb[g], 0.5)
        # the case has a loop: the backward branch synchronised below the forward jump
        assert want[1] < want[0], want
        assert abs(got[0] - want[0]) <= KC_FORWARD_TOL, (g, got, want)
        assert abs(got[1] - want[1]) <= KC_BACKWARD_TOL, (g, got, want)
        assert abs(got[2] - want[2]) <= JUMP_TOL, (g, got, want)
        assert abs(got[3] - want[3]) <= AREA_TOL, (g, got, want)
        assert np.max(np.abs(rb[g] - ref_b)) <= R_BACKWARD_TOL
        synchronised = ref_f > 0.8
        assert synchronised.any()
        assert np.max(np.abs(rf[g] - ref_f)[synchronised]) <= R_SYNCHRONISED_TOL


# --------------------------------------------------------------------- single K

def test_a_single_k_sweep_is_the_independent_protocol(device):
    """With one K the forward branch is the independent protocol, bitwise on
    the same engine; the backward branch continues from its end, so it is
    another measurement (not equal)."""
    cfg = StudyConfig(runs=3, nodes=150, m=3, k_num=1, k_min=1.2, k_max=1.2, seed=5,
                      t_transient=1.0, t_measure=1.0, sample_every=4, device=device)
    engine = get_engine(device)
    item = make_batch([0, 1, 2], cfg)
    spec = cfg.spec
    sweep = run_sweep(engine, item.batch, item.batch.couplings, dt=spec.dt,
                      n_transient=spec.n_transient, n_measure=spec.n_measure,
                      sample_every=spec.sample_every)
    independent = engine.integrate(item.batch, spec)
    assert np.array_equal(sweep.forward, independent)
    assert not np.array_equal(sweep.backward, independent)


def test_a_single_k_adiabatic_study_gives_the_independent_numbers():
    base = dict(runs=3, nodes=120, m=2, k_num=1, k_min=1.0, k_max=1.0, t_transient=1.0,
                t_measure=1.0, sample_every=5, seed=8, device="cpu")
    independent = run_study(StudyConfig(**base)).records
    swept = run_study(StudyConfig(sweep="adiabatic", **base)).records
    for a, b in zip(swept, independent, strict=True):
        assert np.array_equal(a.r, b.r) and np.array_equal(a.r_forward, b.r)
        assert (a.kc, a.kc_interp, a.censored) == (b.kc, b.kc_interp, b.censored)
        assert a.kc_forward == b.kc and a.loop_area == 0.0
    assert all(getattr(rec, f) is None for rec in independent for f in SWEEP_FIELDS)


def test_the_api_single_k_forward_branch_is_simulate():
    graphs, omega, theta0 = _explosive_case(n_graphs=2, nodes=80)
    kw = dict(coupling="raw", dt=0.01, t_transient=0.5, t_measure=0.5, sample_every=5,
              device="cpu")
    rf, rb = kcbatch.hysteresis(graphs, omega, theta0, [1.5], **kw)
    assert rf.shape == rb.shape == (2, 1)
    assert np.array_equal(rf, kcbatch.simulate(graphs, omega, theta0, [1.5], **kw))


# --------------------------------------------------------------------- studies

@pytest.fixture(scope="module")
def small_study():
    return run_study(StudyConfig(batch=1, **SMALL))


def test_a_study_records_both_branches_and_the_loop(small_study):
    cfg = small_study.config
    k = cfg.k_values
    item = make_batch(list(cfg.run_ids), cfg)
    spec = cfg.spec
    sweep = run_sweep(get_engine("cpu"), item.batch, item.batch.couplings, dt=spec.dt,
                      n_transient=spec.n_transient, n_measure=spec.n_measure,
                      sample_every=spec.sample_every)
    for j, rec in enumerate(small_study.records):
        assert rec.status == "ok"
        assert np.array_equal(rec.r, sweep.forward[j].mean(axis=1))
        assert np.array_equal(rec.r_forward, rec.r)
        assert np.array_equal(rec.r_backward, sweep.backward[j].mean(axis=1))
        kc_f, kc_b, _, area = reference_loop(k, rec.r_forward, rec.r_backward, cfg.threshold)
        assert (rec.kc_forward, rec.kc_backward) == (kc_f, kc_b) and rec.kc == kc_f
        assert rec.loop_area == pytest.approx(area, rel=1e-12, abs=1e-15)
    h = small_study.summary["hysteresis"]
    assert h["adiabatic"] and h["runs"] == len(small_study.records)
    kcb = [rec.kc_backward for rec in small_study.records if rec.kc_backward is not None]
    assert h["kc_backward"]["n"] == len(kcb)
    assert h["kc_backward"]["mean"] == pytest.approx(np.mean(kcb))


def test_batch_size_and_resume_do_not_change_an_adiabatic_study(small_study, tmp_path):
    # --batch 1 holds 1 x k_num = 4 networks, --batch 2 all 5 (one batch)
    other = run_study(StudyConfig(batch=2, **SMALL))
    assert other.batch == 5 and small_study.batch == 4
    assert_same_records(other.records, small_study.records)
    out = tmp_path / "resumed"
    stop = threading.Event()
    stop.set()  # stops after the first batch
    first = run_study(StudyConfig(batch=1, out=out, **SMALL), stop=stop)
    assert first.interrupted and len(first.records) == 4
    rest = run_study(StudyConfig(batch=1, out=out, **SMALL), resume=True)
    assert rest.computed == 1
    assert_same_records(rest.records, small_study.records)
    with Store.open(out / STORE_NAME) as store:
        assert_same_records(store.records(), small_study.records)


def test_resuming_with_another_sweep_is_refused(tmp_path):
    out = tmp_path / "s"
    run_study(StudyConfig(out=out, **{**SMALL, "runs": 1}))
    with pytest.raises(ConfigError, match=r"invalid sweep='independent'.*sweep='adiabatic'"):
        run_study(StudyConfig(out=out, **{**SMALL, "runs": 1, "sweep": "independent"}),
                  resume=True)


# --------------------------------------------------------------------- bad input

@pytest.mark.parametrize("fields, needle", [
    (dict(sweep="both"), "invalid sweep='both': must be one of independent, adiabatic"),
    (dict(sweep="adiabatic", t_transient="auto"), "cannot be combined with t_transient='auto'"),
    (dict(sweep="adiabatic", refine=0.01), "cannot be combined with refine=0.01"),
])
def test_bad_sweeps_are_refused_in_one_line(fields, needle):
    with pytest.raises(ConfigError) as err:
        StudyConfig(**fields)
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("args, needles", [
    (["--sweep", "adiabatic", "--t-transient", "auto"], ["sweep='adiabatic'", "t_transient"]),
    (["--sweep", "adiabatic", "--refine", "0.01"], ["sweep='adiabatic'", "refine"]),
])
def test_the_cli_refuses_bad_sweeps(args, needles, tmp_path):
    result = run_cli(["run", "--runs", "2", "--nodes", "50", "--device", "cpu",
                      "--out", tmp_path / "x", *args])
    assert_usage_error(result, *needles)


def test_the_cli_names_the_sweeps_it_accepts(tmp_path):
    result = run_cli(["run", "--sweep", "both", "--out", tmp_path / "x"])
    line = assert_usage_error(result, "--sweep", config_error=False)
    assert "independent" in line and "adiabatic" in line


@pytest.mark.parametrize("k_values", [[1.0, 0.5], [1.0, 1.0], [0.5, np.nan]])
def test_the_api_refuses_a_grid_that_does_not_increase(k_values):
    graphs, omega, theta0 = _explosive_case(n_graphs=1, nodes=40)
    with pytest.raises(ConfigError, match=r"invalid k_values=.*must be finite and increasing"):
        kcbatch.hysteresis(graphs, omega, theta0, k_values, device="cpu")


# --------------------------------------------------------------------- CLI and outputs

FLAGS = ["--runs", "3", "--batch", "1", "--nodes", "80", "--m", "2", "--k-num", "4",
         "--k-min", "0.5", "--k-max", "2", "--t-transient", "1", "--t-measure", "1",
         "--sample-every", "5", "--seed", "4", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def cli_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "s"
    printed = ok(["run", *FLAGS, "--sweep", "adiabatic", "--out", out]).output
    return out, printed


def test_the_cli_writes_branches_loop_summary_and_figure(cli_study):
    out, printed = cli_study
    assert re.search(r"Kc backward +mean", printed) and "hysteresis.png" in printed
    assert (out / "hysteresis.png").stat().st_size > 10_000
    header, rows = read_csv(out / "runs.csv")
    backward = [h for h in header if h.startswith("r_backward@K=")]
    assert [h.replace("r_backward@", "r@") for h in backward] == r_columns(header)
    with Store.open(out / STORE_NAME) as store:
        records = store.records()
        assert store.config["sweep"] == "adiabatic"
    for rec, row in zip(records, rows, strict=True):
        assert [float(row[h]) for h in backward] == list(rec.r_backward)
        assert [float(row[h]) for h in r_columns(header)] == list(rec.r_forward)
        for name in SWEEP_FIELDS:
            v = getattr(rec, name)
            assert (row[name] == "") if v is None else float(row[name]) == v
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["hysteresis"]["adiabatic"] and summary["hysteresis"]["runs"] == 3


def test_an_independent_study_has_no_loop_and_no_figure(tmp_path):
    out = tmp_path / "s"
    ok(["run", *FLAGS, "--out", out])
    assert not (out / "hysteresis.png").exists()
    header, _ = read_csv(out / "runs.csv")
    assert not any(h.startswith("r_backward@") for h in header)
    h = json.loads((out / "summary.json").read_text())["summary"]["hysteresis"]
    assert h["adiabatic"] is False and h["runs"] == 0 and h["kc_forward"]["mean"] is None


def _flatten(obj, prefix=""):
    out = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            path = f"{prefix}.{key}" if prefix else key
            out |= {path} | _flatten(value, path)
    return out


def test_outputs_md_documents_the_sweeps_outputs(cli_study):
    out, _ = cli_study
    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    sections = {p.splitlines()[0].strip(): p for p in re.split(r"^## ", text, flags=re.M)[1:]}

    def ticked(section):
        return set(re.findall(r"`([^`]+)`", sections[section]))
    header, _ = read_csv(out / "runs.csv")
    names = {re.sub(r"@K=.*", "@K=<K>", h) for h in header}
    assert not names - ticked("runs.csv")
    paths = _flatten(json.loads((out / "summary.json").read_text()))
    assert not paths - ticked("summary.json")
    store = ticked("kcbatch.sqlite")
    assert all(f"runs.{name}" in store for name in (*SWEEP_FIELDS, "r_forward", "r_backward"))
    assert "`hysteresis.png`" in text.split("## runs.csv")[0]


def test_a_schema_4_store_is_upgraded_to_the_current_schema_and_still_reports(tmp_path):
    import sqlite3

    from kcbatch.results import store as store_module
    out = tmp_path / "old"
    res = run_study(StudyConfig(out=out, **{**SMALL, "runs": 2, "sweep": "independent"}))
    con = sqlite3.connect(out / STORE_NAME)
    added = [col for v in range(5, store_module.SCHEMA_VERSION + 1)
             for col in store_module._ADDED_COLUMNS[v]]
    for name, _ in added:
        con.execute(f"ALTER TABLE runs DROP COLUMN {name}")
    con.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    config = json.loads(con.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0])
    del config["sweep"], config["dwell"]  # a study stored before the fields: independent
    con.execute("UPDATE meta SET value=? WHERE key='config'", (json.dumps(config),))
    con.commit()
    con.close()
    ok(["report", out])
    with Store.open(out / STORE_NAME) as store:
        assert store.meta("schema_version") == str(store_module.SCHEMA_VERSION)
        cols = [row[1] for row in store.conn.execute("PRAGMA table_info(runs)")]
        # the columns schema 4 did not have read as None (the theories' crossings)
        assert_same_records(store.records(), [
            dataclasses.replace(r, kc_mf_at_threshold=None, kc_hmf_at_threshold=None,
                                kc_qmf_at_threshold=None) for r in res.records])
    assert cols[-len(added):] == [name for name, _ in added]
    assert cols[-len(added):][:6] == [name for name, _ in store_module._ADDED_COLUMNS[5]]
    # resuming it as the independent study it was is accepted: nothing left to compute
    again = run_study(StudyConfig(out=out, **{**SMALL, "runs": 2, "sweep": "independent"}),
                      resume=True)
    assert again.computed == 0
