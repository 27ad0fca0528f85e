"""Theory beside every result (issue 9, item 6): the per-run thresholds kc_mf,
kc_hmf, kc_qmf in the records, the store, runs.csv, summary.json, the printed
summary and the plots; where the theory does not apply; infinite thresholds;
stores written before the theory columns.

The oracles are computed here: each run's graph regenerated from its seed, its
degree moments and the largest eigenvalue of its dense coupling matrix from
numpy's LAPACK, Kuramoto's ``Kc0 = sigma sqrt(8/pi)`` for Gaussian frequencies,
and the issue's known value of the all-to-all r(K) (r = 0.5 at K = 0.8740 for
sigma = 0.5; K scales with sigma).
"""
from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from helpers import ok, read_csv

import kcbatch.export.study_outputs as export
import kcbatch.results.store as store_module
from kcbatch.analysis.crossing import make_record
from kcbatch.analysis.records import RunRecord
from kcbatch.analysis.summary import format_summary, summarize
from kcbatch.export.report import export_store
from kcbatch.networks import barabasi_albert
from kcbatch.protocol.config import StudyConfig
from kcbatch.protocol.seeding import run_inputs
from kcbatch.results.store import STORE_NAME, Store
from kcbatch.run.study import run_study
from kcbatch.theory import mean_field as theory
from kcbatch.theory.per_run import run_thresholds, theory_settings

FIELDS = ("kc_mf", "kc_hmf", "kc_qmf")
# The issue's known value: Gaussian frequencies, sigma = 0.5: r = 0.5 at K = 0.8740.
K_AT_HALF_SIGMA_HALF = 0.8740
SIGMA = 0.4
BASE = dict(runs=3, nodes=150, m=2, k_min=0.0, k_max=1.0, k_num=5, dt=0.02, t_transient=0.2,
            t_measure=0.2, sample_every=2, seed=11, device="cpu", batch=3, omega_sigma=SIGMA)


def kc0_normal(sigma: float) -> float:
    """Kc0 = 2 / (pi g(0)) with g(0) = 1 / (sigma sqrt(2 pi))."""
    return 2.0 / (math.pi / (sigma * math.sqrt(2.0 * math.pi)))


def regenerated_graph(cfg: StudyConfig, run: int):
    inp = run_inputs(cfg.seed, run, cfg.nodes, cfg.omega_mu, cfg.omega_sigma)
    return barabasi_albert(cfg.nodes, cfg.m, inp.graph_seed)


def dense(indptr, indices) -> np.ndarray:
    n = len(indptr) - 1
    a = np.zeros((n, n))
    rows = np.repeat(np.arange(n), np.diff(indptr))
    a[rows, indices] = 1.0
    assert np.array_equal(a, a.T)
    return a


def stored_theory(out: Path) -> dict[int, tuple]:
    con = sqlite3.connect(out / STORE_NAME)
    try:
        return {run: tuple(vals) for run, *vals in
                con.execute("SELECT run, kc_mf, kc_hmf, kc_qmf FROM runs ORDER BY run")}
    finally:
        con.close()


@pytest.fixture(scope="module")
def degree_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("degree") / "s"
    cfg = StudyConfig(**BASE, out=out)
    return cfg, run_study(cfg), out


@pytest.fixture(scope="module")
def raw_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("raw") / "s"
    cfg = StudyConfig(**BASE, coupling="raw", out=out)
    return cfg, run_study(cfg), out


@pytest.fixture(scope="module")
def degree_omega_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("omega_degree") / "s"
    # mu and sigma do not apply to omega_i = k_i (the config refuses them)
    cfg = StudyConfig(**{k: v for k, v in BASE.items() if k != "omega_sigma"},
                      omega_dist="degree", out=out)
    res = run_study(cfg)
    export_store(out)
    return cfg, res, out


# --------------------------------------------------------------------------- per run

def test_degree_coupling_thresholds_are_kc0_of_the_runs_graph(degree_study):
    cfg, res, out = degree_study
    stored = stored_theory(out)
    assert sorted(stored) == [0, 1, 2]
    want = kc0_normal(SIGMA)
    for rec in res.records:
        g = regenerated_graph(cfg, rec.run)
        # the wiring: the run's own graph, coupling and sigma went in
        assert stored[rec.run] == tuple(theory.thresholds(*g, "degree", "normal", SIGMA)[f]
                                        for f in FIELDS)
        assert (rec.kc_mf, rec.kc_hmf, rec.kc_qmf) == stored[rec.run]
        # the closed form: with w_i = 1/k_i all three are Kc0 (lambda_max(D^-1 A) = 1)
        assert rec.kc_mf == pytest.approx(want, rel=1e-15)
        assert rec.kc_hmf == pytest.approx(want, rel=1e-15)
        assert rec.kc_qmf == pytest.approx(want, rel=1e-9)


def test_raw_coupling_thresholds_against_degrees_and_dense_eigenvalues(raw_study):
    cfg, res, out = raw_study
    stored = stored_theory(out)
    k_c = kc0_normal(SIGMA)
    hmf = []
    for rec in res.records:
        indptr, indices = regenerated_graph(cfg, rec.run)
        k = np.diff(indptr).astype(float)
        mf, hm, qm = stored[rec.run]
        assert mf == pytest.approx(k_c / k.mean(), rel=1e-12)
        assert hm == pytest.approx(k_c * k.mean() / np.mean(k * k), rel=1e-12)
        lam = np.linalg.eigvalsh(dense(indptr, indices))[-1]
        assert qm == pytest.approx(k_c / lam, rel=1e-8)
        # heterogeneity: <k^2> > <k>^2 puts HMF below MF
        assert hm < mf
        hmf.append(hm)
    assert len(set(hmf)) > 1  # the runs' graphs differ, and so do their thresholds


def test_make_record_carries_the_thresholds_and_defaults_to_none():
    stats = dict(nodes=4, edges=3, mean_k=1.5, mean_k2=3.0, k_max=3)
    samples = np.full((2, 4), 0.9)
    common = dict(run=0, seed_material="x", samples=samples, n_first_half=2,
                  k_values=[0.0, 1.0], threshold=0.5)
    rec = make_record(stats={**stats, "kc_mf": 1.0, "kc_hmf": math.inf, "kc_qmf": None},
                      **common)
    assert (rec.kc_mf, rec.kc_hmf, rec.kc_qmf) == (1.0, math.inf, None)
    failed = make_record(stats={**stats, "kc_mf": 2.0, "kc_hmf": 2.0, "kc_qmf": 2.0},
                         input_problem="bad inputs", **common)
    assert failed.status == "failed" and failed.kc_qmf == 2.0  # the graph's, whatever the run
    bare = make_record(stats=stats, **common)
    assert (bare.kc_mf, bare.kc_hmf, bare.kc_qmf) == (None, None, None)


def test_a_graph_without_edges_has_infinite_thresholds_and_sigma_zero_none():
    indptr, indices = np.zeros(6, dtype=np.int64), np.zeros(0, dtype=np.int32)
    assert run_thresholds(indptr, indices, "raw", "normal", 0.5) == dict.fromkeys(FIELDS, math.inf)
    assert run_thresholds(*barabasi_albert(20, 2, 1), "degree", "normal", 0.0) == \
        dict.fromkeys(FIELDS)


def test_stored_configs_without_the_fields_mean_degree_and_normal():
    assert theory_settings({"omega_sigma": 0.3}) == {"coupling": "degree",
                                                    "omega_dist": "normal", "omega_sigma": 0.3}
    cfg = StudyConfig(omega_sigma=0.2)
    assert theory_settings(cfg)["omega_sigma"] == 0.2


# --------------------------------------------------------------------------- exports

def test_runs_csv_and_summary_json_hold_the_thresholds(degree_study):
    _cfg, _res, out = degree_study
    export_store(out)
    stored = stored_theory(out)
    header, rows = read_csv(out / "runs.csv")
    assert set(FIELDS) <= set(header)
    for row in rows:
        assert tuple(float(row[f]) for f in FIELDS) == stored[int(row["run"])]
    doc = json.loads((out / "summary.json").read_text())
    th = doc["summary"]["theory"]
    assert th["applies"] is True and th["why_not"] is None
    assert (th["coupling"], th["omega_dist"], th["omega_sigma"]) == ("degree", "normal", SIGMA)
    assert th["kc0"] == pytest.approx(kc0_normal(SIGMA), rel=1e-15)
    for i, f in enumerate(FIELDS):
        values = np.array([v[i] for v in stored.values()])
        assert th[f] == {"n": 3, "mean": pytest.approx(values.mean(), rel=1e-15),
                         "median": float(np.median(values)), "min": values.min(),
                         "max": values.max()}
    assert th["no_onset"] == 0 and th["missing"] == 0
    assert th["all_to_all_applies"] is True and th["all_to_all_why_not"] is None
    assert th["kc_all_to_all_at_threshold"] == pytest.approx(
        K_AT_HALF_SIGMA_HALF * SIGMA / 0.5, abs=1e-4 * SIGMA / 0.5)


def test_the_printed_summary_sets_the_theory_beside_kc(degree_study):
    _, res, _ = degree_study
    text = format_summary(res.summary)
    (line,) = [ln for ln in text.splitlines() if ln.startswith("theory onset (MF / HMF / QMF)")]
    want = f"{kc0_normal(SIGMA):.4f}"
    assert f"{want} / {want} / {want}" in line and "means over 3 runs" in line
    assert "coupling degree" in line and "omega normal" in line
    (a2a,) = [ln for ln in text.splitlines() if ln.startswith("all-to-all K at r = 0.5")]
    assert f"{K_AT_HALF_SIGMA_HALF * SIGMA / 0.5:.3f}" in a2a
    # beside the measured Kc: after the Kc lines, before the stationarity line
    lines = text.splitlines()
    assert lines.index(line) > max(i for i, ln in enumerate(lines) if ln.startswith("Kc "))


def _vlines(ax) -> dict[str, float]:
    return {ln.get_label(): float(ln.get_xdata()[0]) for ln in ax.get_lines()
            if len(set(ln.get_xdata())) == 1}


def _legend_texts(fig) -> list[str]:
    """The figure's legend entries (beside the axes), unwrapped."""
    return [t.get_text().replace("\n", " ") for lg in fig.legends for t in lg.get_texts()]


def _theories(label: str) -> list[str]:
    """'theory MF = HMF = all-to-all $K$ at ...' -> ['MF', 'HMF', 'all-to-all']."""
    return label.removeprefix("theory ").split(" $K$")[0].split(" onset")[0].split(" = ")


def test_kc_hist_marks_the_theory_means(degree_study):
    cfg, res, _ = degree_study
    fig = export.kc_hist_figure(res.records, res.summary, cfg.to_dict())
    (ax,) = fig.axes
    lines = _vlines(ax)
    theory_lines = {n: x for n, x in lines.items() if n.startswith("theory ")}
    # each theory's crossing of r = 0.5 (what the measured Kc measures), not its onset;
    # theories with equal values share one line (one label "MF = HMF = ...")
    for label, field in (("MF", "kc_mf_at_threshold"), ("HMF", "kc_hmf_at_threshold"),
                         ("QMF", "kc_qmf_at_threshold")):
        (name, x), = [(n, x) for n, x in theory_lines.items() if label in _theories(n)]
        assert "K$ at r = 0.5" in name and "onset" not in name
        # a shared line is drawn at the first theory's value: the others within 1e-9
        assert x == pytest.approx(np.mean([getattr(r, field) for r in res.records]), rel=1e-9)
        assert x > kc0_normal(SIGMA)  # above the onset
    means = [np.mean([getattr(r, f) for r in res.records])
             for f in ("kc_mf_at_threshold", "kc_hmf_at_threshold", "kc_qmf_at_threshold")]
    distinct = [m for i, m in enumerate(means)
                if all(abs(m - o) > 1e-9 * abs(m) for o in means[:i])]
    assert len(theory_lines) == len(distinct), theory_lines
    a2a_value = K_AT_HALF_SIGMA_HALF * SIGMA / 0.5
    a2a = [x for name, x in lines.items()
           if name.startswith("all-to-all K at r = 0.5") or "all-to-all" in _theories(name)]
    assert len(a2a) == 1 and a2a[0] == pytest.approx(a2a_value, abs=1e-4)
    # degree coupling's homogeneous mean field is Kuramoto's all-to-all curve
    (mf,) = [x for name, x in theory_lines.items() if "MF" in _theories(name)]
    assert mf == pytest.approx(a2a[0], abs=1e-4)
    legend = _legend_texts(fig)
    assert sum(t.startswith("theory ") for t in legend) == len(distinct), legend
    assert "does not apply" not in fig._supxlabel.get_text()


def test_r_curves_overlays_the_all_to_all_curve_with_degree_coupling(degree_study):
    cfg, res, _ = degree_study
    fig = export.r_curves_figure(res.records, cfg.k_values, cfg.threshold,
                                 summary=res.summary, config=cfg.to_dict())
    (ax,) = fig.axes
    (curve,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("all-to-all theory")]
    k, r = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
    assert k[0] == cfg.k_min and k[-1] == cfg.k_max and k.size >= 200
    # incoherent below Kc0, and it crosses r = 0.5 at the known coupling
    assert np.all(r[k < kc0_normal(SIGMA) * (1 - 1e-9)] == 0.0)
    assert np.all(np.diff(r) >= 0) and r[-1] > 0.5
    crossing = k[np.argmax(r > 0.5)]
    assert crossing == pytest.approx(K_AT_HALF_SIGMA_HALF * SIGMA / 0.5, abs=2 * (k[1] - k[0]))
    assert curve.get_label() in _legend_texts(fig)


def test_raw_coupling_plots_theory_lines_but_no_all_to_all_curve(raw_study):
    cfg, res, _out = raw_study
    th = res.summary["theory"]
    assert th["applies"] and not th["all_to_all_applies"]
    assert th["kc_all_to_all_at_threshold"] is None and "degree" in th["all_to_all_why_not"]
    fig = export.kc_hist_figure(res.records, res.summary, cfg.to_dict())
    lines = _vlines(fig.axes[0])
    (hmf,) = [x for name, x in lines.items() if "HMF" in _theories(name)]
    assert hmf == pytest.approx(np.mean([rec.kc_hmf_at_threshold for rec in res.records]),
                                rel=1e-12)
    # the crossing sits above the onset, which the figure no longer draws
    assert hmf > np.mean([rec.kc_hmf for rec in res.records])
    assert "(mean over runs)" in [n for n in lines if "HMF" in _theories(n)][0]
    assert not any(n.startswith("all-to-all") for n in lines)
    fig = export.r_curves_figure(res.records, cfg.k_values, cfg.threshold,
                                 summary=res.summary, config=cfg.to_dict())
    (ax,) = fig.axes
    assert not any(ln.get_label().startswith("all-to-all") for ln in ax.get_lines())
    # below the axes, wrapped to the figure's width
    assert "all-to-all r(K) not drawn" in fig._supxlabel.get_text()


# --------------------------------------------------------------------------- no theory

def test_degree_frequencies_leave_the_theory_empty_and_say_why(degree_omega_study):
    cfg, res, out = degree_omega_study
    assert set(stored_theory(out).values()) == {(None, None, None)}
    _header, rows = read_csv(out / "runs.csv")
    assert rows and all(row[f] == "" for row in rows for f in FIELDS)
    text = (out / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    th = json.loads(text)["summary"]["theory"]
    why = theory.why_theory_does_not_apply("degree")
    assert th["applies"] is False and th["why_not"] == why
    assert th["kc0"] is None and th["kc_all_to_all_at_threshold"] is None
    assert all(th[f] is None for f in FIELDS) and th["missing"] == 0
    printed = format_summary(res.summary)
    (line,) = [ln for ln in printed.splitlines() if ln.startswith("theory")]
    assert line.split(None, 1) == ["theory", f"does not apply: {why}"]
    assert "nan" not in printed.lower()
    hist = export.kc_hist_figure(res.records, res.summary, cfg.to_dict())
    curves = export.r_curves_figure(res.records, cfg.k_values, cfg.threshold,
                                    summary=res.summary, config=cfg.to_dict())
    for fig in (hist, curves):
        (ax,) = fig.axes
        assert "theory does not apply (ω = degree)" in fig._supxlabel.get_text()
        assert not any("theory" in t.get_text() for t in ax.texts)  # not over the data
        assert not any(ln.get_label().startswith(("theory", "all-to-all"))
                       for ln in ax.get_lines())


def _record(run: int, kc_mf, kc_hmf, kc_qmf) -> RunRecord:
    r = np.array([0.1, 0.9])
    return RunRecord(run=run, seed_material="x", nodes=5, edges=0, mean_k=0.0, mean_k2=0.0,
                     k_max=0, r=r, r_first=r, r_second=r, kc=1.0, kc_interp=0.5,
                     censored="none", bracket_lo=0.0, bracket_hi=1.0, stationarity=0.0,
                     kc_mf=kc_mf, kc_hmf=kc_hmf, kc_qmf=kc_qmf)


def test_infinite_thresholds_round_trip_and_stay_out_of_json(tmp_path):
    recs = [_record(0, math.inf, math.inf, math.inf), _record(1, 2.0, 1.0, 0.5),
            _record(2, 4.0, 3.0, 1.5)]
    with Store.create(":memory:", {"runs": 3}, np.array([0.0, 1.0]), "test") as st:
        st.write_batch(recs, device="cpu", seconds=0.0)
        back = st.records()
    assert [(r.kc_mf, r.kc_hmf, r.kc_qmf) for r in back] == \
        [(r.kc_mf, r.kc_hmf, r.kc_qmf) for r in recs]
    export.write_runs_csv(tmp_path / "runs.csv", recs, [0.0, 1.0])
    _, rows = read_csv(tmp_path / "runs.csv")
    assert [row["kc_hmf"] for row in rows] == ["inf", "1.0", "3.0"]
    s = summarize(recs, [0.0, 1.0], 0.5, omega_sigma=0.5)
    th = s["theory"]
    assert th["no_onset"] == 1
    assert th["kc_mf"] == {"n": 2, "mean": 3.0, "median": 3.0, "min": 2.0, "max": 4.0}
    assert any("without edges" in note for note in s["notes"])
    # strict JSON (allow_nan=False inside): it would raise on an infinity that slipped in
    export.write_summary_json(tmp_path / "summary.json", s, {}, {})
    assert "Infinity" not in (tmp_path / "summary.json").read_text()


# --------------------------------------------------------------------------- old stores

# The committed schema 1 of the runs table, before the theory columns.
OLD_RUNS_TABLE = (
    "CREATE TABLE runs (run INTEGER PRIMARY KEY, status TEXT NOT NULL, fail_reason TEXT, "
    "seed_material TEXT NOT NULL, nodes INTEGER, edges INTEGER, mean_k REAL, mean_k2 REAL, "
    "k_max INTEGER, kc REAL, kc_interp REAL, censored TEXT, bracket_lo REAL, bracket_hi REAL, "
    "stationarity REAL, seconds REAL, r TEXT NOT NULL, r_first TEXT NOT NULL, "
    "r_second TEXT NOT NULL, batch_id INTEGER)")
OLD_COLUMNS = ("run, status, fail_reason, seed_material, nodes, edges, mean_k, mean_k2, k_max, "
               "kc, kc_interp, censored, bracket_lo, bracket_hi, stationarity, seconds, r, "
               "r_first, r_second, batch_id")
ADDED_KEYS = ("graph", "ws_p", "gamma", "coupling", "omega_dist")


def make_old_store(source: Path, out: Path, runs: list[int]) -> None:
    """A schema 1 store in ``out`` holding ``runs`` of the study in ``source``, as
    kcbatch wrote it before the theory columns (and before the config fields of
    issue 9)."""
    out.mkdir(parents=True)
    src = sqlite3.connect(source / STORE_NAME)
    dst = sqlite3.connect(out / STORE_NAME)
    try:
        meta = dict(src.execute("SELECT key, value FROM meta"))
        config = {k: v for k, v in json.loads(meta["config"]).items() if k not in ADDED_KEYS}
        config["out"] = str(out)
        meta.update(schema_version="1", config=json.dumps(config, sort_keys=True))
        meta.pop("run_info", None)
        with dst:
            dst.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            dst.execute(OLD_RUNS_TABLE)
            dst.execute("CREATE TABLE batches (id INTEGER PRIMARY KEY, first_run INTEGER, "
                        "n_runs INTEGER, device TEXT, seconds REAL, finished_at TEXT)")
            dst.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            marks = ", ".join("?" for _ in OLD_COLUMNS.split(","))
            for run in runs:
                row = src.execute(f"SELECT {OLD_COLUMNS} FROM runs WHERE run=?", (run,)).fetchone()
                dst.execute(f"INSERT INTO runs ({OLD_COLUMNS}) VALUES ({marks})", row)
    finally:
        src.close()
        dst.close()


def test_an_old_store_still_reports_and_is_upgraded(degree_study, tmp_path):
    _, _, source = degree_study
    old = tmp_path / "old"
    make_old_store(source, old, [0, 1, 2])
    printed = ok(["report", old]).output
    assert "n/a: no run has them (stored by an older kcbatch)" in printed
    con = sqlite3.connect(old / STORE_NAME)
    try:
        version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        cols = [row[1] for row in con.execute("PRAGMA table_info(runs)")]
        values = con.execute("SELECT kc_mf, kc_hmf, kc_qmf FROM runs").fetchall()
    finally:
        con.close()
    assert version == str(store_module.SCHEMA_VERSION) == "7"
    # schema 1 -> 7: the theory columns (2), each run's graph file (3), the
    # converged protocol's 8 columns (4), the adiabatic sweep's 6 (5), the
    # theories' 3 crossings of the threshold and the chi peak's error and
    # censoring (6), then the converged protocol's work (7)
    later = sum(len(store_module._ADDED_COLUMNS[v])
                for v in range(4, store_module.SCHEMA_VERSION + 1))
    assert cols[-later - 5:-later] == [*FIELDS, "graph_file", "graph_sha256"]
    assert values == [(None, None, None)] * 3
    header, rows = read_csv(old / "runs.csv")
    assert set(FIELDS) <= set(header) and all(row[f] == "" for row in rows for f in FIELDS)
    th = json.loads((old / "summary.json").read_text())["summary"]["theory"]
    assert th["applies"] and th["missing"] == 3 and th["kc_mf"] is None
    # the study-level values need no run: Kc0 and the all-to-all K are still given
    assert th["kc0"] == pytest.approx(kc0_normal(SIGMA), rel=1e-15)
    assert th["kc_all_to_all_at_threshold"] is not None


def test_an_old_store_resumes_with_theory_for_the_new_runs(degree_study, tmp_path):
    cfg, _res, source = degree_study
    old = tmp_path / "old"
    make_old_store(source, old, [0, 1])
    resumed = run_study(cfg.replace(out=old), resume=True)
    assert resumed.computed == 1
    got = {rec.run: rec.kc_qmf for rec in resumed.records}
    assert got[0] is None and got[1] is None
    assert got[2] == stored_theory(source)[2][2]
    assert resumed.summary["theory"]["missing"] == 2
    assert resumed.summary["theory"]["kc_qmf"]["n"] == 1
    assert any("stored by a kcbatch that did not compute them" in n
               for n in resumed.summary["notes"])


def test_an_old_store_that_cannot_be_upgraded_is_read_as_it_is(degree_study, tmp_path,
                                                               monkeypatch):
    _, res, source = degree_study
    old = tmp_path / "old"
    make_old_store(source, old, [0, 1, 2])
    monkeypatch.setattr(store_module, "_upgrade", lambda conn, version: None)
    with Store.open(old / STORE_NAME) as st:
        recs = st.records()
    assert [(r.kc_mf, r.kc_hmf, r.kc_qmf) for r in recs] == [(None, None, None)] * 3
    assert [r.kc for r in recs] == [r.kc for r in res.records]


# --------------------------------------------------------------------------- like for like

def test_each_run_records_the_theories_crossings_of_the_threshold(raw_study):
    from kcbatch import theory as th_api
    from kcbatch.networks.models import generate
    from kcbatch.protocol.seeding import run_inputs

    cfg, res, out = raw_study
    for rec in res.records:
        inp = run_inputs(cfg.seed, rec.run, cfg.nodes, cfg.omega_mu, cfg.omega_sigma,
                         cfg.omega_dist)
        graph = generate(cfg.graph, cfg.nodes, cfg.m, inp.graph_seed)
        for model in ("mf", "hmf", "qmf"):
            want = th_api.kc_at_threshold(graph, cfg.threshold, model=model, coupling="raw",
                                          omega_dist=cfg.omega_dist,
                                          omega_sigma=cfg.omega_sigma)
            assert getattr(rec, f"kc_{model}_at_threshold") == pytest.approx(want, rel=1e-12)
            # a crossing of r = threshold lies above the theory's onset
            assert getattr(rec, f"kc_{model}_at_threshold") > getattr(rec, f"kc_{model}")
    export_store(out)
    header, rows = read_csv(out / "runs.csv")
    assert {"kc_mf_at_threshold", "kc_hmf_at_threshold", "kc_qmf_at_threshold"} <= set(header)
    assert all(float(row["kc_qmf_at_threshold"]) == pytest.approx(rec.kc_qmf_at_threshold)
               for row, rec in zip(rows, res.records, strict=True))


def test_the_summary_prints_crossings_before_onsets_and_flags_small_degrees(raw_study):
    _cfg, res, _ = raw_study
    th = res.summary.theory
    assert th.kc_hmf_at_threshold.n == len(res.records)
    mean_k = np.mean([r.mean_k for r in res.records])
    assert mean_k < 50 and f"{2 / mean_k:.0%}" in th.finite_degree_note
    lines = format_summary(res.summary).splitlines()
    (i_at,) = [i for i, ln in enumerate(lines) if ln.startswith("theory Kc at r = 0.5")]
    (i_on,) = [i for i, ln in enumerate(lines) if ln.startswith("theory onset")]
    assert i_at < i_on and "not a Kc" in lines[i_on]
    assert any(ln.startswith("theory note") and "O(1/<k>)" in ln for ln in lines)
