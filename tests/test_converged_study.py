"""Converged and refined Kc in studies, the CLI, the store and the exports (issue 10).

The per-run numbers are checked against kcbatch.find_kc on the same networks,
regenerated here from the study's seed (the library itself is checked against
independent references in tests/test_find_kc.py).
"""
from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest
from helpers import assert_same_records, ok, read_csv

import kcbatch
import kcbatch.analysis.summary
from kcbatch.export.report import export_store
from kcbatch.networks.models import generate
from kcbatch.protocol.config import ConfigError, StudyConfig
from kcbatch.protocol.seeding import run_inputs
from kcbatch.results import store as store_module
from kcbatch.results.store import STORE_NAME, Store
from kcbatch.run.study import run_study

# tiny, but with networks that converge at different transients and one that
# runs to t_max (seed 3 gives both); exhaustive, so that every coupling reaches
# the final window and each estimator (the chi peak too) has values
# (tests/test_adaptive.py runs the adaptive protocol's studies)
SMALL = dict(runs=5, nodes=40, m=2, k_num=10, k_max=3.0, seed=3, device="cpu",
             t_transient="auto", t_max=40.0, refine=0.05, refine_points=3,
             converge="exhaustive")
NEW_FIELDS = ("t_transient_used", "converged", "kc_protocol", "kc_refined", "kc_chi",
              "kc_sigma")


def flags(fields: dict) -> list[str]:
    out = []
    for k, v in fields.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


@pytest.fixture(scope="module")
def converged(tmp_path_factory):
    out = tmp_path_factory.mktemp("conv") / "study"
    res = run_study(StudyConfig(batch=2, out=out, **SMALL))
    export_store(out)
    return res, out


def _none_nan(v):
    return math.nan if v is None else v


@pytest.mark.slow
def test_per_run_values_equal_find_kc_on_the_same_networks(converged):
    res, _ = converged
    cfg = res.config
    graphs, omegas, thetas = [], [], []
    for run in cfg.run_ids:
        inp = run_inputs(cfg.seed, run, cfg.nodes, cfg.omega_mu, cfg.omega_sigma, cfg.omega_dist)
        graphs.append(generate(cfg.graph, cfg.nodes, cfg.m, inp.graph_seed))
        omegas.append(inp.omega)
        thetas.append(inp.theta0)
    want = kcbatch.find_kc(graphs, omegas, thetas, cfg.k_values, dt=cfg.dt,
                           t_transient="auto", t_max=cfg.t_max, refine=cfg.refine,
                           refine_points=cfg.refine_points, converge=cfg.converge,
                           device="cpu")
    recs = res.records
    got = {name: np.array([_none_nan(getattr(r, name)) for r in recs], dtype=float)
           for name in ("kc", "kc_interp", "kc_refined", "kc_chi", "kc_sigma",
                        "t_transient_used")}
    for name, ref in (("kc", want.kc), ("kc_interp", want.kc_interp),
                      ("kc_refined", want.kc_refined), ("kc_chi", want.kc_chi),
                      ("kc_sigma", want.kc_sigma), ("t_transient_used", want.t_transient)):
        assert np.array_equal(got[name], ref, equal_nan=True), name
    assert [r.converged for r in recs] == list(want.converged)
    assert np.array_equal(np.array([r.r for r in recs]), want.r)
    assert np.array_equal(np.array([r.r_std for r in recs]), want.r_std)
    assert np.array_equal(np.array([_none_nan(r.kc_protocol) for r in recs]),
                          want.kc_windows[:, 0], equal_nan=True)
    assert np.array_equal(np.array([r.kc_windows for r in recs]), want.kc_windows,
                          equal_nan=True)
    # the case is not degenerate: transients differ, some converge, some do not
    assert len(set(want.t_transient)) > 1 and want.converged.any() and not want.converged.all()
    assert np.isfinite(want.kc_refined).all()


@pytest.mark.slow
def test_batch_size_producers_and_resume_do_not_change_results(converged, tmp_path):
    res, _ = converged
    other = run_study(StudyConfig(batch=3, producers=2, **SMALL))
    assert_same_records(other.records, res.records)
    # resume: the first 2 runs, then the rest in batches of 1
    out = tmp_path / "resumed"
    first = run_study(StudyConfig(batch=2, run_stop=2, out=out, **SMALL))
    assert len(first.records) == 2
    with Store.open(out / STORE_NAME) as store:
        with store.conn:
            store.conn.execute("DELETE FROM runs WHERE run=1")
    rest = run_study(StudyConfig(batch=1, out=out, **SMALL), resume=True)
    assert rest.computed == 4
    assert_same_records(rest.records, res.records)


@pytest.mark.slow
def test_store_runs_csv_and_summary_hold_the_new_fields(converged):
    res, out = converged
    with Store.open(out / STORE_NAME) as store:
        assert store.meta("schema_version") == "7"
        stored = store.records()
        raw = dict(store.conn.execute("SELECT run, r_std FROM runs"))
    assert_same_records(stored, res.records)
    assert json.loads(raw[0]) == [float(v) for v in res.records[0].r_std]
    header, rows = read_csv(out / "runs.csv")
    assert set(NEW_FIELDS) <= set(header)
    for rec, row in zip(res.records, rows, strict=True):
        assert float(row["t_transient_used"]) == rec.t_transient_used
        assert row["converged"] == str(rec.converged)
        for name in ("kc_protocol", "kc_refined", "kc_chi", "kc_sigma"):
            v = getattr(rec, name)
            assert (row[name] == "") if v is None else float(row[name]) == v


def test_default_protocol_is_unchanged_and_leaves_the_new_fields_empty():
    cfg = StudyConfig(runs=3, nodes=40, m=2, k_num=8, k_max=3.0, seed=4, device="cpu", batch=3)
    res = run_study(cfg)
    # the old path: engine.integrate -> means; recomputed here from the samples
    from kcbatch.engines import get_engine
    from kcbatch.inputs.pipeline import make_batch
    item = make_batch(list(cfg.run_ids), cfg)
    samples = get_engine("cpu").integrate(item.batch, cfg.spec)
    assert np.array_equal(np.array([r.r for r in res.records]), samples.mean(axis=2))
    assert np.array_equal(np.array([r.r_std for r in res.records]), samples.std(axis=2))
    for rec in res.records:
        assert all(getattr(rec, name) is None for name in NEW_FIELDS)
        assert rec.kc_windows is None


def test_a_schema_3_store_is_upgraded_to_the_current_schema(tmp_path):
    path = tmp_path / STORE_NAME
    Store.create(path, StudyConfig().to_dict(), np.array([0.0, 1.0]), "x").close()
    con = sqlite3.connect(path)
    added = [col for v in range(4, store_module.SCHEMA_VERSION + 1)
             for col in store_module._ADDED_COLUMNS[v]]
    for name, _ in added:
        con.execute(f"ALTER TABLE runs DROP COLUMN {name}")
    con.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    con.commit()
    con.close()
    with Store.open(path) as store:
        assert store.meta("schema_version") == str(store_module.SCHEMA_VERSION) == "7"
        cols = [row[1] for row in store.conn.execute("PRAGMA table_info(runs)")]
    # schema 4's converged columns, schema 5's adiabatic sweep columns, then
    # schema 6's theory crossings and chi peak error and censoring
    assert cols[-len(added):] == [n for n, _ in added]
    assert {n for n, _ in store_module._ADDED_COLUMNS[6]} == {
        "kc_mf_at_threshold", "kc_hmf_at_threshold", "kc_qmf_at_threshold", "kc_chi_err",
        "kc_chi_censored"}


@pytest.mark.parametrize("fields, param", [
    (dict(t_transient="later"), "t_transient"),
    (dict(kc_tol=0.05), "kc_tol"),                       # without auto
    (dict(t_transient="auto", t_max=0.0), "t_max"),
    (dict(t_transient="auto", t_max=7.03), "t_max"),     # not a multiple of dt
    (dict(refine=-0.1), "refine"),
    (dict(refine=0.1, refine_points=0), "refine_points"),
    (dict(refine_points=4), "refine_points"),            # without refine
])
def test_bad_converged_options_name_the_parameter(fields, param):
    with pytest.raises(ConfigError) as info:
        StudyConfig(**fields)
    assert info.value.param == param


@pytest.mark.slow
def test_cli_auto_refine_study_matches_run_study(converged, tmp_path):
    res, _ = converged
    out = tmp_path / "cli"
    fields = {k: v for k, v in SMALL.items()}
    ok(["run", *flags(fields), "--batch", "5", "--out", out, "--quiet"])
    with Store.open(out / STORE_NAME) as store:
        assert_same_records(store.records(), res.records)
        assert store.config["t_transient"] == "auto" and store.config["refine"] == 0.05


@pytest.mark.slow
def test_summary_json_has_each_estimator_and_the_protocol_table(converged):
    res, out = converged
    summary = json.loads((out / "summary.json").read_text())["summary"]
    recs = [r for r in res.records if r.status == "ok"]
    for key, name in (("grid", "kc"), ("interpolated", "kc_interp"),
                      ("refined", "kc_refined"), ("chi_peak", "kc_chi")):
        x = np.array([getattr(r, name) for r in recs if getattr(r, name) is not None])
        d = summary["estimators"][key]
        assert d["n"] == x.size > 0 and d["mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert d["median"] == pytest.approx(np.median(x), rel=1e-12)
        assert d["ci95_lo"] <= d["mean"] <= d["ci95_hi"]
    cmp = summary["protocol_vs_converged"]
    both = [r for r in recs if r.kc_protocol is not None and r.kc_interp is not None]
    assert cmp["auto"] and cmp["n"] == len(both)
    assert cmp["protocol"]["median"] == pytest.approx(np.median([r.kc_protocol for r in both]))
    assert cmp["shift"]["mean"] == pytest.approx(
        np.mean([r.kc_interp - r.kc_protocol for r in both]))
    assert cmp["converged_runs"] == sum(r.converged for r in recs)
    assert cmp["unconverged_runs"] == sum(not r.converged for r in recs) > 0
    printed = kcbatch.analysis.summary.format_summary(summary)
    for label in ("Kc refined", "Kc chi peak", "protocol vs converged", "unconverged at t_max"):
        assert label in printed


def test_the_default_summary_has_no_protocol_table():
    res = run_study(StudyConfig(runs=2, nodes=30, m=2, k_num=6, k_max=3.0, seed=1,
                                device="cpu"))
    s = res.summary
    assert not s["protocol_vs_converged"]["auto"]
    assert s["estimators"]["refined"]["n"] == s["estimators"]["chi_peak"]["n"] == 0
    assert s["estimators"]["grid"]["mean"] == s["kc"]["mean"]
    assert "protocol vs converged" not in kcbatch.analysis.summary.format_summary(s)


@pytest.mark.slow
def test_plots_show_both_distributions_and_the_convergence(converged):
    from kcbatch.export.study_outputs import kc_convergence_figure, kc_hist_figure
    res, out = converged
    assert (out / "kc_convergence.png").stat().st_size > 0
    config = json.loads((out / "summary.json").read_text())["config"]
    fig = kc_hist_figure(res.records, res.summary, config)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert any(lab.startswith("original protocol") and "n=" in lab for lab in labels)
    assert any(lab.startswith("converged transient") and "n=" in lab for lab in labels)
    fig = kc_convergence_figure(res.records, config, res.summary)
    ax = fig.axes[0]
    runs = [r for r in res.records if r.status == "ok"]
    # one line per run plus the median (and the legend's empty proxy)
    drawn = [ln for ln in ax.get_lines() if len(ln.get_xdata())]
    assert len(drawn) == len(runs) + 1
    median = next(ln for ln in drawn if ln.get_label().startswith("median"))
    assert list(median.get_xdata()) == [5.0, 10.0, 20.0, 40.0]
    held = np.array([r.kc_windows for r in runs])
    for j in range(1, held.shape[1]):
        held[np.isnan(held[:, j]), j] = held[np.isnan(held[:, j]), j - 1]
    assert np.allclose(median.get_ydata(), np.median(held, axis=0))
    # the default protocol writes no convergence plot
    assert kc_convergence_figure(run_study(StudyConfig(
        runs=1, nodes=30, m=2, k_num=4, seed=1, device="cpu")).records, config) is None
