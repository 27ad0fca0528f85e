"""``kcbatch scan`` (issue 11, section 1): the points are stand-alone studies, the
table is their summaries, the fit is fss's on those numbers, resume finishes
what an interruption or a deleted point left, bad input is one line, and a
nodes scan up to N = 1e5 fits an H100 with a batch chosen per point."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest
from helpers import (
    assert_same_records,
    assert_usage_error,
    invoke,
    ok,
    read_csv,
    run_cli,
)

from kcbatch.analysis.finite_size import fit_power_law, sigma_from_ci
from kcbatch.engines import get_engine, gpu_auto_batch, gpu_predict_bytes
from kcbatch.protocol.config import StudyConfig
from kcbatch.results.scan_layout import SCAN_PARAMS, ScanPlan, load_scan, parse_values
from kcbatch.results.store import STORE_NAME, Store
from kcbatch.run.batching import batch_shape, memory_estimate, unit_shape
from kcbatch.run.scan import create_scan, point_state, run_scan
from kcbatch.run.study import run_study

ROOT = Path(__file__).resolve().parent.parent
VALUES = (100, 150, 200, 300)
# Every point has at least 3 crossing runs with distinct Kc (a CI with width), so
# the nodes fit runs; checked in the fixture.
STUDY = dict(runs=4, m=2, k_num=8, t_transient=2.0, t_measure=1.0, sample_every=5, seed=2,
             device="cpu", batch=2)
FLAGS = ["--runs", "4", "--m", "2", "--k-num", "8", "--t-transient", "2", "--t-measure", "1",
         "--sample-every", "5", "--seed", "2", "--device", "cpu", "--batch", "2", "--quiet"]
NEW = ["scan", "--param", "nodes", "--values", ",".join(map(str, VALUES))]


def _records(point: Path):
    with Store.open(point / STORE_NAME) as store:
        return store.records()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    out = tmp_path_factory.mktemp("scan") / "fss"
    result = ok([*NEW, *FLAGS, "--out", out])
    return out, result


# --------------------------------------------------------------------------- the points

@pytest.mark.slow
def test_each_point_equals_a_stand_alone_study(scanned, tmp_path):
    out, _ = scanned
    for n in VALUES:
        alone = run_study(StudyConfig(**STUDY, nodes=n))
        assert_same_records(_records(out / f"nodes={n}"), alone.records)
    # and one of them as `kcbatch run` writes it, store against store
    ok(["run", *FLAGS, "--nodes", "150", "--out", tmp_path / "alone"])
    assert_same_records(_records(out / "nodes=150"), _records(tmp_path / "alone"))
    with Store.open(out / "nodes=150" / STORE_NAME) as a, \
            Store.open(tmp_path / "alone" / STORE_NAME) as b:
        assert a.config["seed"] == b.config["seed"] == STUDY["seed"]


@pytest.mark.slow
def test_a_point_is_a_study_of_its_own(scanned, tmp_path):
    out, _ = scanned
    point = tmp_path / "nodes=200"
    shutil.copytree(out / "nodes=200", point)
    for name in ("summary.json", "runs.csv", "kc_hist.png", "r_curves.png"):
        (point / name).unlink()
    ok(["report", point])
    for name in ("summary.json", "runs.csv", "kc_hist.png", "r_curves.png"):
        assert (point / name).stat().st_size > 0, name
    assert (point / "summary.json").read_text() == (out / "nodes=200" / "summary.json").read_text()
    text = ok(["run", "--resume", point, "--quiet"]).stdout
    assert "nothing to compute" in text


# --------------------------------------------------------------------------- the table and fit

@pytest.mark.slow
def test_scan_csv_holds_each_points_summary(scanned):
    out, result = scanned
    header, rows = read_csv(out / "scan.csv")
    assert [int(r["value"]) for r in rows] == list(VALUES)
    assert {r["param"] for r in rows} == {"nodes"}
    for row in rows:
        summary = json.loads((out / row["dir"] / "summary.json").read_text())["summary"]
        assert row["dir"] == f"nodes={row['value']}"
        for c in ("runs", "ok", "crossings", "censored_left", "censored_right", "failed"):
            assert int(row[c]) == summary[c], c
        for est in ("grid", "interpolated"):
            e = summary["estimators"][est]
            assert int(row[f"{est}_n"]) == e["n"]
            for c in ("mean", "ci95_lo", "ci95_hi", "median"):
                assert float(row[f"{est}_{c}"]) == e[c], (est, c)
        assert float(row["kc_qmf_mean"]) == summary["theory"]["kc_qmf"]["mean"]
        for key in ("kc_hmf_at_threshold", "kc_qmf_at_threshold"):
            assert float(row[f"{key}_mean"]) == summary["theory"][key]["mean"]
        # the console repeats the sub-study's warnings (these short transients
        # leave every value non-stationary)
        assert summary["warnings"]
        for warning in summary["warnings"]:
            assert f"warning (nodes={row['value']}): {warning}" in result.stdout
    # refined / chi peak exist only with the converged protocol
    assert not any(h.startswith(("refined_", "chi_peak_")) for h in header)
    # the printed table shows the same means
    for row in rows:
        assert f"{float(row['interpolated_mean']):.4f}" in result.stdout


@pytest.mark.slow
def test_the_fit_is_fss_on_the_points_numbers(scanned):
    out, result = scanned
    fit = json.loads((out / "fit.json").read_text())
    assert fit["fitted"] is True and fit["estimator"] == "interpolated"
    n, kc, sig = [], [], []
    for v in VALUES:
        e = json.loads((out / f"nodes={v}" / "summary.json").read_text())["summary"][
            "estimators"]["interpolated"]
        n.append(v)
        kc.append(e["mean"])
        sig.append(sigma_from_ci(e["ci95_lo"], e["ci95_hi"]))
    # held against the HMF crossing at the largest size
    top = json.loads((out / f"nodes={max(VALUES)}" / "summary.json").read_text())["summary"]
    theory = top["theory"]["kc_hmf_at_threshold"]["mean"]
    want = fit_power_law(n, kc, sig, theory=theory,
                         theory_label=f"the HMF crossing at nodes = {max(VALUES)}")
    assert fit["theory"] == theory
    assert fit["verdict"] == want.verdict
    for key in ("kc_inf", "kc_inf_err", "a", "b", "chi2", "p_value"):
        assert fit[key] == pytest.approx(getattr(want, key), rel=1e-12), key
    assert fit["sigma"] == pytest.approx(sig, rel=1e-15)
    assert fit["statement"] in result.stdout


@pytest.mark.slow
def test_the_figure_and_the_manifest(scanned):
    out, _ = scanned
    png = (out / "kc_vs_nodes.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    manifest = json.loads((out / "scan.json").read_text())
    assert manifest["param"] == "nodes" and manifest["values"] == list(VALUES)
    assert manifest["seed"] == STUDY["seed"] == manifest["base"]["seed"]


def test_the_figure_uses_a_log_axis_for_nodes_only():
    from kcbatch.export.scan_outputs import kc_vs_param_figure
    rows = [{"param": p, "value": v, "interpolated_mean": 1.0 + 1 / v,
             "interpolated_ci95_lo": 0.9, "interpolated_ci95_hi": 1.2 + 1 / v,
             "interpolated_median": 1.0} for p, v in (("x", 100), ("x", 200))]
    for param, scale in (("nodes", "log"), ("omega_sigma", "linear")):
        fig = kc_vs_param_figure(rows, param, "interpolated", None)
        assert fig.axes[0].get_xscale() == scale


# --------------------------------------------------------------------------- resume

@pytest.mark.slow
def test_resume_after_a_stop_finishes_the_scan_bitwise(scanned, tmp_path, faulty_engines):
    out, _ = scanned
    import threading
    stop = threading.Event()
    # each point gets its own engine: count batches over the scan. The 3rd is
    # the first of nodes=150 (2 batches of 2 runs per point).
    batches = []

    def after(call, batch):
        batches.append(batch)
        if len(batches) == 3:
            stop.set()
    faulty_engines(after=after)
    plan = create_scan(StudyConfig(**STUDY), "nodes", VALUES, tmp_path / "s")
    first = run_scan(plan, stop=stop)
    assert first.interrupted and first.completed == [100]
    assert point_state(plan.point_config(150)) == "partial"
    assert point_state(plan.point_config(200)) == "missing"
    assert not (tmp_path / "s" / "scan.csv").exists()

    again = run_scan(load_scan(tmp_path / "s"))
    assert not again.interrupted
    assert again.states == {100: "done", 150: "partial", 200: "missing", 300: "missing"}
    assert again.computed == {100: 0, 150: 2, 200: 4, 300: 4}
    for v in VALUES:
        assert_same_records(_records(tmp_path / "s" / f"nodes={v}"), _records(out / f"nodes={v}"))
    assert (tmp_path / "s" / "scan.csv").read_bytes() == (out / "scan.csv").read_bytes()


@pytest.mark.slow
def test_resume_restarts_a_deleted_point_and_skips_the_others(scanned, tmp_path):
    out, _ = scanned
    copy = tmp_path / "fss"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "nodes=200")
    (copy / "scan.csv").unlink()
    res = ok(["scan", "--resume", copy, "--quiet"])
    assert "nodes=100: complete, skipped" in res.stderr
    assert "nodes=200: starting" in res.stderr
    assert_same_records(_records(copy / "nodes=200"), _records(out / "nodes=200"))
    assert (copy / "scan.csv").read_bytes() == (out / "scan.csv").read_bytes()


@pytest.mark.slow
def test_ctrl_c_keeps_finished_work_prints_the_resume_command_and_exits_130(
        tmp_path, faulty_engines):
    batches = []

    def after(call, batch):  # Ctrl-C once, during the scan's first batch
        batches.append(batch)
        if len(batches) == 1:
            os.kill(os.getpid(), signal.SIGINT)
    faulty_engines(after=after)
    out = tmp_path / "s"
    res = invoke([*NEW[:4], "100,150", *FLAGS, "--out", out])
    assert res.exit_code == 130, res.output
    assert f"resume with: kcbatch scan --resume {out}" in res.stderr
    assert "0 of 2 values complete" in res.stderr
    with sqlite3.connect(out / "nodes=100" / STORE_NAME) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    res = ok(["scan", "--resume", out, "--quiet"])
    assert "nodes=100: resuming" in res.stderr and (out / "scan.csv").exists()


@pytest.mark.slow
def test_a_drawn_seed_is_stored_and_shared_by_every_point(tmp_path):
    out = tmp_path / "s"
    flags = ["--runs", "1", "--nodes", "60", *FLAGS[2:]]
    i = flags.index("--seed")
    del flags[i:i + 2]
    res = ok(["scan", "--param", "omega_sigma", "--values", "0.3,0.6", *flags, "--out", out])
    seed = int(re.search(r"seed: (\d+) \(drawn", res.stderr).group(1))
    assert json.loads((out / "scan.json").read_text())["seed"] == seed
    for v in ("0.3", "0.6"):
        with Store.open(out / f"omega_sigma={v}" / STORE_NAME) as store:
            assert store.config["seed"] == seed
            assert store.config["omega_sigma"] == float(v)
    assert not (out / "fit.json").exists()  # the fit is for nodes scans only
    assert (out / "kc_vs_omega_sigma.png").exists()


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("args,needles", [
    (["--param", "runs", "--values", "1,2"], ["param='runs'", "nodes, m,"]),
    (["--param", "colour", "--values", "1,2"], ["param='colour'", "omega_sigma"]),
    (["--param", "nodes", "--values", "100,abc"], ["values='100,abc'", "'abc' is not a number"]),
    (["--param", "nodes", "--values", "100,200,1e2"], ["values=", "100 is given twice"]),
    (["--param", "nodes", "--values", "100"], ["values='100'", "at least 2"]),
    (["--param", "nodes", "--values", "100,2"], ["nodes=2"]),
    (["--param", "nodes", "--values", "100,150.5"], ["nodes=150.5", "integer"]),
    (["--param", "omega_sigma", "--values", "0.5,-1"], ["omega_sigma=-1.0", ">= 0"]),
    (["--param", "nodes", "--values", "100,200", "--nodes", "500"],
     ["nodes=500", "--param nodes varies it"]),
    (["--param", "nodes", "--values", "100,200"], ["--out"]),
])
def test_bad_input_is_one_line_and_exit_2(args, needles, tmp_path):
    out = [] if "--out" in needles else ["--out", tmp_path / "s"]
    res = run_cli(["scan", *args, "--device", "cpu", *out])
    assert_usage_error(res, *needles)
    assert not (tmp_path / "s" / "scan.json").exists()


def test_a_dt_unstable_at_one_value_is_refused_before_any_study(tmp_path):
    # raw coupling: the hubs of N = 2000 need a smaller step than those of N = 100
    res = run_cli(["scan", "--param", "nodes", "--values", "100,2000", "--coupling", "raw",
                   "--k-max", "1", "--dt", "0.02", "--runs", "2", "--seed", "1",
                   "--device", "cpu", "--out", tmp_path / "s"])
    assert_usage_error(res, "dt=0.02", "at nodes=2000")
    assert not (tmp_path / "s").exists()


def test_resume_refusals(tmp_path):
    assert_usage_error(run_cli(["scan", "--resume", tmp_path / "none"]), "no scan.json")
    plan_dir = tmp_path / "s"
    create_scan(StudyConfig(**STUDY), "nodes", VALUES, plan_dir)
    assert_usage_error(run_cli(["scan", "--resume", plan_dir, "--param", "m"]),
                       "param='m'", "--resume")
    assert_usage_error(run_cli(["scan", "--resume", plan_dir, "--k-num", "9"]),
                       "k_num=9", "contradicts the scan stored in")
    assert_usage_error(run_cli(["scan", "--resume", plan_dir, "--nodes", "500"]),
                       "nodes=500", "varies nodes")
    assert_usage_error(run_cli([*NEW, *FLAGS, "--out", plan_dir]), "already holds a scan",
                       "kcbatch scan --resume")


def test_values_parse_as_the_fields_type():
    assert parse_values("nodes", "1e3, 2000,4e3") == [1000, 2000, 4000]
    assert all(type(v) is int for v in parse_values("nodes", "1e3,2e3"))
    assert parse_values("omega_sigma", "1,0.25") == [1.0, 0.25]
    assert set(SCAN_PARAMS) >= {"nodes", "m", "omega_sigma", "gamma", "t_transient"}


# --------------------------------------------------------------------------- GPU memory

H100_FREE = 78 * 2**30  # what an 80 GB H100 has free for a process
HOST_RAM = 128 * 2**30  # the GPU machines' host memory


@pytest.mark.parametrize("k_num", [50, 400])
def test_a_nodes_scan_to_1e5_fits_an_h100_with_a_batch_per_point(k_num, tmp_path):
    """What run_study does with --batch auto on a GPU, point by point, from the
    GPU engine's own memory model evaluated for an H100's free memory."""
    base = StudyConfig(runs=1000, k_num=k_num, batch="auto", device="gpu", seed=1)
    plan = ScanPlan(param="nodes", values=(12500, 25000, 50000, 100000), base=base,
                    out=tmp_path)
    limit_engine = get_engine("cpu")  # batch_limit is the same on every engine
    batches = []
    for n, cfg in plan.points():
        shape = batch_shape(cfg)
        wanted = gpu_auto_batch(unit_shape(cfg), H100_FREE)  # what GpuEngine.auto_batch computes
        batch = max(1, min(wanted, cfg.runs, limit_engine.batch_limit(shape)))
        need = gpu_predict_bytes(shape, batch)
        assert wanted >= 1, n
        assert need <= 0.7 * H100_FREE, (n, batch, need)
        # the largest that fits, unless a cap stopped it
        assert batch in (128, limit_engine.batch_limit(shape)) or \
            gpu_predict_bytes(shape, batch + 1) > 0.7 * H100_FREE
        assert memory_estimate(cfg, limit_engine, "gpu", batch).total < HOST_RAM
        batches.append(batch)
    assert batches == sorted(batches, reverse=True)
    if k_num == 400:  # beyond the cap's reach: the batch really changes with N
        assert batches[0] == 128 and batches[-1] < batches[-2] < 128, batches


# --------------------------------------------------------------------------- documentation

def _doc_section(title: str) -> str:
    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)
    return next(p for p in parts[1:] if p.splitlines()[0].strip() == title)


@pytest.mark.slow
def test_outputs_md_documents_every_scan_file_and_column(scanned, tmp_path):
    out, _ = scanned
    documented = set(re.findall(r"`([^`]+)`", _doc_section("kcbatch scan")))
    files = {p.name for p in out.iterdir() if p.is_file()}
    assert files == {"scan.json", "scan.csv", "kc_vs_nodes.png", "fit.json"}
    missing = [f for f in files if f.replace("nodes", "NAME") not in documented]
    header, _ = read_csv(out / "scan.csv")
    for est in ("refined", "chi_peak"):  # the converged protocol's columns too
        header += [f"{est}_{c}" for c in ("n", "mean", "ci95_lo", "ci95_hi", "median")]
    missing += [c for c in header if c not in documented and
                re.sub(r"^(grid|interpolated|refined|chi_peak)_", "<est>_", c) not in documented]
    fit = json.loads((out / "fit.json").read_text())
    missing += [f"fit.{k}" for k in fit if f"fit.{k}" not in documented]
    manifest = json.loads((out / "scan.json").read_text())
    missing += [f"scan.{k}" for k in manifest if f"scan.{k}" not in documented]
    assert not missing, f"scan outputs not in docs/outputs.md: {missing}"
    assert {"grid", "interpolated", "refined", "chi_peak"} <= documented


def test_a_monotonic_rise_is_not_called_finite_and_every_output_says_the_same():
    # The scan a new user saw: Kc rising at every size, each sub-study with a tight CI.
    import textwrap

    import numpy as np

    from kcbatch.export.scan_outputs import EXTENSION, fit_rows, kc_vs_param_figure

    rows = [{"param": "nodes", "value": n, "interpolated_mean": k,
             "interpolated_ci95_lo": k - 0.02, "interpolated_ci95_hi": k + 0.02,
             "interpolated_median": k, "interpolated_n": 8}
            for n, k in ((200, 1.35), (400, 1.54), (800, 1.71), (1600, 1.94))]
    fit = fit_rows(rows, "interpolated")
    assert fit["fitted"] and fit["monotonic"] == 1 and fit["limit"] != "finite"
    assert "acceptable" not in fit["verdict"] and "finite threshold" not in fit["statement"]
    assert fit["statement"].endswith(fit["verdict"])
    fig = kc_vs_param_figure(rows, "nodes", "interpolated", fit)
    ax = fig.axes[0]
    assert ax.get_title() == textwrap.fill(fit["verdict"], 100)
    # the fit is drawn over the data and a short dotted extension, no further
    drawn = max(float(np.max(line.get_xdata())) for line in ax.get_lines())
    assert drawn == pytest.approx(1600 * EXTENSION)
