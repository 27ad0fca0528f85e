"""Tests of the Kc search (kcbatch.analysis.crossing), statistics (kcbatch.analysis.summary) and outputs (kcbatch.export.study_outputs).

Expected values are computed independently in the tests (by hand, with plain
loops or with numpy), never copied from a run of the code under test.
"""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kcbatch.analysis.crossing import KcResult, first_crossing, make_record
from kcbatch.analysis.records import RunRecord
from kcbatch.analysis.summary import format_summary, summarize
from kcbatch.export.study_outputs import (
    RUN_COLUMNS,
    plot_kc_hist,
    plot_r_curves,
    r_column_names,
    write_runs_csv,
    write_summary_json,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STATS = dict(nodes=100, edges=291, mean_k=5.82, mean_k2=61.3, k_max=31)


# --------------------------------------------------------------------------- first_crossing

def _first_crossing_loop(k, r, thr):
    """Plain-Python reference of the rule: first K with r > thr, interpolated crossing."""
    for i in range(len(k)):
        if r[i] > thr:
            if i == 0:
                return k[0], k[0], "left"
            t = (thr - r[i - 1]) / (r[i] - r[i - 1])
            return k[i], k[i - 1] + t * (k[i] - k[i - 1]), "none"
    return None, None, "right"


def test_find_kc_crossing_in_the_middle():
    k = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    r = np.array([0.1, 0.2, 0.4, 0.8, 0.9])
    res = first_crossing(k, r, 0.5)
    assert isinstance(res, KcResult)
    assert res.censored == "none"
    assert res.kc == 1.5
    assert res.index == 3
    assert (res.bracket_lo, res.bracket_hi) == (1.0, 1.5)
    # by hand: 1.0 + (0.5 - 0.4) / (0.8 - 0.4) * 0.5 = 1.125
    assert res.kc_interp == pytest.approx(1.125, abs=1e-15)
    assert isinstance(res.kc, float) and isinstance(res.kc_interp, float)


def test_find_kc_left_censored():
    k = np.array([0.2, 0.4, 0.6])
    res = first_crossing(k, np.array([0.51, 0.7, 0.9]), 0.5)
    assert res.censored == "left"
    assert res.kc == 0.2 and res.kc_interp == 0.2
    assert res.index == 0
    assert res.bracket_lo is None and res.bracket_hi is None


def test_find_kc_right_censored():
    k = np.linspace(0, 1, 6)
    res = first_crossing(k, np.array([0.1, 0.2, 0.3, 0.45, 0.5, 0.5]), 0.5)
    assert res.censored == "right"
    assert res.kc is None and res.kc_interp is None and res.index is None
    assert res.bracket_lo is None and res.bracket_hi is None


def test_find_kc_equal_to_threshold_is_not_a_crossing():
    k = np.array([0.0, 1.0, 2.0, 3.0])
    res = first_crossing(k, np.array([0.1, 0.5, 0.5, 0.7]), 0.5)
    # strict >: K=1 and K=2 (r == 0.5) do not cross; K=3 does.
    assert res.kc == 3.0 and res.index == 3
    # r at the lower bracket equals the threshold: interpolated crossing is K=2.
    assert res.kc_interp == 2.0
    assert (res.bracket_lo, res.bracket_hi) == (2.0, 3.0)
    # r exactly equal at the first point is not left-censored
    res0 = first_crossing(k, np.array([0.5, 0.9, 0.9, 0.9]), 0.5)
    assert res0.censored == "none" and res0.kc == 1.0 and res0.kc_interp == 0.0


def test_find_kc_non_monotone_first_crossing_wins():
    k = np.array([0.0, 0.25, 0.5, 0.75])
    r = np.array([0.1, 0.6, 0.3, 0.9])
    res = first_crossing(k, r, 0.5)
    assert res.kc == 0.25 and res.index == 1 and res.censored == "none"
    # 0 + (0.5 - 0.1) / (0.6 - 0.1) * 0.25 = 0.2
    assert res.kc_interp == pytest.approx(0.2, abs=1e-15)


def test_find_kc_matches_loop_reference_on_random_curves():
    rng = np.random.default_rng(1234)
    k = np.linspace(0.0, 5.0, 50)
    for _ in range(300):
        r = rng.uniform(0.0, 1.0, k.size) * rng.uniform(0.3, 1.0)
        if rng.random() < 0.5:
            r = np.sort(r)
        thr = float(rng.uniform(0.05, 0.95))
        kc, kci, cens = _first_crossing_loop(list(k), list(r), thr)
        res = first_crossing(k, r, thr)
        assert res.censored == cens
        assert res.kc == kc
        if kci is None:
            assert res.kc_interp is None
        else:
            assert res.kc_interp == pytest.approx(kci, rel=1e-12, abs=1e-12)
            if cens == "none":
                assert res.bracket_lo <= res.kc_interp < res.bracket_hi


def test_find_kc_single_point_grid():
    assert first_crossing([1.0], [0.6], 0.5).censored == "left"
    assert first_crossing([1.0], [0.4], 0.5).censored == "right"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_find_kc_rejects_non_finite(bad):
    with pytest.raises(ValueError):
        first_crossing(np.array([0.0, 1.0, 2.0]), np.array([0.1, bad, 0.9]), 0.5)


def test_find_kc_rejects_bad_shapes_and_order():
    with pytest.raises(ValueError):
        first_crossing(np.array([0.0, 1.0]), np.array([0.1, 0.2, 0.3]), 0.5)
    with pytest.raises(ValueError):
        first_crossing(np.array([1.0, 0.0]), np.array([0.1, 0.9]), 0.5)


# --------------------------------------------------------------------------- make_record

def test_make_record_halves_and_stationarity():
    rng = np.random.default_rng(7)
    k = np.linspace(0.0, 2.0, 9)
    n_s, half = 7, 3
    # rising curve with noise; crossing somewhere in the middle
    base = np.linspace(0.05, 0.95, k.size)[:, None]
    samples = np.clip(base + rng.normal(0.0, 0.03, (k.size, n_s)), 0.0, 1.0)
    rec = make_record(run=5, seed_material="SeedSequence(1).spawn(runs)[5]", stats=STATS,
                      samples=samples, n_first_half=half, k_values=k, threshold=0.5,
                      seconds=1.5)
    assert isinstance(rec, RunRecord)
    for j in range(k.size):
        row = [float(v) for v in samples[j]]
        assert rec.r[j] == pytest.approx(sum(row) / n_s, rel=1e-14)
        assert rec.r_first[j] == pytest.approx(sum(row[:half]) / half, rel=1e-14)
        assert rec.r_second[j] == pytest.approx(sum(row[half:]) / (n_s - half), rel=1e-14)
    kc, kci, cens = _first_crossing_loop(list(k), list(rec.r), 0.5)
    assert rec.status == "ok" and rec.fail_reason is None
    assert (rec.kc, rec.censored) == (kc, cens)
    assert rec.kc_interp == pytest.approx(kci)
    i = list(k).index(kc)
    expected_stat = sum(samples[i, half:]) / (n_s - half) - sum(samples[i, :half]) / half
    assert rec.stationarity == pytest.approx(expected_stat, rel=1e-12, abs=1e-15)
    assert (rec.nodes, rec.edges, rec.k_max) == (100, 291, 31)
    assert rec.mean_k == 5.82 and rec.seconds == 1.5 and rec.run == 5


def test_make_record_known_drift():
    # r grows within the window at the crossing K: first half 0.4, second half 0.8
    k = np.array([0.0, 1.0, 2.0])
    samples = np.array([[0.1, 0.1, 0.1, 0.1],
                        [0.4, 0.4, 0.8, 0.8],
                        [0.9, 0.9, 0.9, 0.9]])
    rec = make_record(run=0, seed_material="s", stats=STATS, samples=samples,
                      n_first_half=2, k_values=k, threshold=0.5)
    assert rec.kc == 1.0  # r(1) = 0.6 > 0.5
    assert rec.stationarity == pytest.approx(0.4)
    # interpolation on the full-window r: 0 + (0.5 - 0.1)/(0.6 - 0.1) * 1
    assert rec.kc_interp == pytest.approx(0.8)


def test_make_record_single_sample():
    k = np.array([0.0, 1.0, 2.0])
    samples = np.array([[0.2], [0.7], [0.9]])
    rec = make_record(run=1, seed_material="s", stats=STATS, samples=samples,
                      n_first_half=0, k_values=k, threshold=0.5)
    np.testing.assert_array_equal(rec.r, samples[:, 0])
    np.testing.assert_array_equal(rec.r_first, rec.r)
    np.testing.assert_array_equal(rec.r_second, rec.r)
    assert rec.stationarity == 0.0


def test_make_record_right_censored_has_no_stationarity():
    k = np.array([0.0, 1.0])
    rec = make_record(run=2, seed_material="s", stats=STATS,
                      samples=np.full((2, 4), 0.3), n_first_half=2, k_values=k, threshold=0.5)
    assert rec.censored == "right" and rec.kc is None and rec.stationarity is None


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_make_record_failed(bad):
    k = np.linspace(0.0, 1.0, 6)
    samples = np.full((6, 4), 0.7)
    samples[2, 1] = bad
    samples[4, 3] = bad
    samples[5, :] = bad
    rec = make_record(run=3, seed_material="s", stats=STATS, samples=samples,
                      n_first_half=2, k_values=k, threshold=0.5)
    assert rec.status == "failed"
    assert rec.kc is None and rec.kc_interp is None and rec.stationarity is None
    assert rec.bracket_lo is None and rec.bracket_hi is None
    assert rec.censored == "none"
    assert "3 of 6" in rec.fail_reason
    assert f"K={k[2]:.6g}" in rec.fail_reason


def test_make_record_rejects_bad_inputs():
    k = np.array([0.0, 1.0])
    with pytest.raises(ValueError):
        make_record(run=0, seed_material="s", stats=STATS, samples=np.zeros((3, 4)),
                    n_first_half=2, k_values=k, threshold=0.5)
    with pytest.raises(ValueError):  # no second half
        make_record(run=0, seed_material="s", stats=STATS, samples=np.zeros((2, 4)),
                    n_first_half=4, k_values=k, threshold=0.5)


# --------------------------------------------------------------------------- summarize

K_GRID = np.linspace(0.0, 5.0, 50)


def _rec(run, *, kc=None, kc_interp=None, censored="none", stationarity=0.0,
         status="ok", fail_reason=None, r=None):
    if r is None:
        r = np.linspace(0.0, 1.0, K_GRID.size)
    r = np.asarray(r, dtype=np.float64)
    if censored == "right" or status == "failed":
        kc = kc_interp = None
        if status == "failed":
            stationarity = None
    if censored == "right":
        stationarity = None
    lo = hi = None
    if censored == "none" and kc is not None:
        lo, hi = kc - float(K_GRID[1]), kc
    return RunRecord(run=run, seed_material=f"m{run}", nodes=100, edges=291, mean_k=5.82,
                     mean_k2=61.3, k_max=31, r=r, r_first=r, r_second=r, kc=kc,
                     kc_interp=kc_interp, censored=censored, bracket_lo=lo, bracket_hi=hi,
                     stationarity=stationarity, status=status, fail_reason=fail_reason)


def _random_records(n, seed, *, stationarity_sd=0.005):
    rng = np.random.default_rng(seed)
    idx = rng.integers(5, 30, n)
    recs = []
    for i in range(n):
        kc = float(K_GRID[idx[i]])
        kci = kc - float(rng.uniform(0, K_GRID[1]))
        recs.append(_rec(i, kc=kc, kc_interp=kci, stationarity=float(rng.normal(0, stationarity_sd))))
    return recs


def _plain_json_types(obj):
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain_json_types(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain_json_types(v) for v in obj)
    if isinstance(obj, float):
        return math.isfinite(obj)
    return obj is None or type(obj) in (int, str, bool)


def test_summarize_matches_numpy():
    recs = _random_records(137, 3)
    s = summarize(recs, K_GRID, 0.5, seed_bootstrap=11)
    kc = np.array([r.kc for r in recs])
    kci = np.array([r.kc_interp for r in recs])
    assert s["runs"] == s["ok"] == s["crossings"] == 137
    assert s["failed"] == s["censored_left"] == s["censored_right"] == 0
    for key, arr in (("kc", kc), ("kc_interp", kci)):
        d = s[key]
        assert d["n"] == 137
        assert d["mean"] == pytest.approx(arr.sum() / arr.size, rel=1e-12)
        sd = math.sqrt(sum((x - arr.mean()) ** 2 for x in arr) / arr.size)  # ddof=0
        assert d["std"] == pytest.approx(sd, rel=1e-10)
        assert d["median"] == pytest.approx(sorted(arr)[68])
        assert d["min"] == arr.min() and d["max"] == arr.max()
        assert d["spread_lo"] == pytest.approx(arr.mean() - 2 * sd, rel=1e-10)
        assert d["spread_hi"] == pytest.approx(arr.mean() + 2 * sd, rel=1e-10)
        assert d["ci95_lo"] < d["mean"] < d["ci95_hi"]
        # a percentile bootstrap CI of the mean is close to mean +/- 1.96 sd / sqrt(n)
        half_width = 1.96 * sd / math.sqrt(arr.size)
        assert (d["ci95_hi"] - d["ci95_lo"]) / (2 * half_width) == pytest.approx(1.0, abs=0.15)
    assert s["resolution"] == pytest.approx(5.0 / 49)
    assert s["warnings"] == []
    # the typed summary's JSON view (summary.json's "summary") is plain JSON
    assert _plain_json_types(s.to_dict())
    json.dumps(s.to_dict(), allow_nan=False)


def test_summarize_bootstrap_deterministic_and_shrinks():
    recs = _random_records(60, 5)
    a = summarize(recs, K_GRID, 0.5, seed_bootstrap=42)
    b = summarize(list(reversed(recs)), K_GRID, 0.5, seed_bootstrap=42)
    c = summarize(recs, K_GRID, 0.5, seed_bootstrap=43)
    assert (a["kc"]["ci95_lo"], a["kc"]["ci95_hi"]) == (b["kc"]["ci95_lo"], b["kc"]["ci95_hi"])
    assert (a["kc"]["ci95_lo"], a["kc"]["ci95_hi"]) != (c["kc"]["ci95_lo"], c["kc"]["ci95_hi"])
    # the global RNG is neither used nor disturbed (the legacy calls are what is tested)
    np.random.seed(0)  # noqa: NPY002
    before = np.random.random()  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    summarize(recs, K_GRID, 0.5, seed_bootstrap=42)
    assert np.random.random() == before  # noqa: NPY002

    big = summarize(_random_records(6000, 5), K_GRID, 0.5, seed_bootstrap=42, n_boot=500)
    w_small = a["kc"]["ci95_hi"] - a["kc"]["ci95_lo"]
    w_big = big["kc"]["ci95_hi"] - big["kc"]["ci95_lo"]
    # width ~ 1/sqrt(n): 10x more runs -> ~10x narrower
    assert w_big < w_small / 4


def test_summarize_counts_censoring_and_failures():
    recs = _random_records(20, 9)
    recs += [_rec(20, kc=0.0, kc_interp=0.0, censored="left"),
             _rec(21, censored="right"), _rec(22, censored="right"),
             _rec(23, status="failed", censored="none",
                  fail_reason="non-finite order parameter in 2 of 50 (K) systems")]
    s = summarize(recs, K_GRID, 0.5)
    assert s["runs"] == 24 and s["ok"] == 23 and s["failed"] == 1
    assert s["crossings"] == 21  # 20 + the left-censored one
    assert s["censored_left"] == 1 and s["censored_right"] == 2
    assert s["failed_runs"] == [23]
    kc = np.array([r.kc for r in recs[:20]] + [0.0])
    assert s["kc"]["n"] == 21
    assert s["kc"]["mean"] == pytest.approx(kc.mean())
    assert s["kc"]["min"] == 0.0
    assert any("left-censored" in n for n in s["notes"])
    cens = [w for w in s["warnings"] if "censored" in w]
    assert len(cens) == 1 and "3 of 23" in cens[0] and "1 left" in cens[0] and "2 right" in cens[0]
    failed = [w for w in s["warnings"] if "failed" in w]
    assert len(failed) == 1 and "23" in failed[0]
    assert _plain_json_types(s.to_dict())


def test_summarize_stationarity_warning_threshold():
    recs = _random_records(20, 1, stationarity_sd=0.0)
    # 2 of 20 = 10%: not more than 10% -> no warning
    recs[3] = _rec(3, kc=1.0, kc_interp=0.95, stationarity=0.05)
    recs[7] = _rec(7, kc=1.0, kc_interp=0.95, stationarity=-0.03)
    s = summarize(recs, K_GRID, 0.5)
    assert s["not_stationary"] == 2 and s["not_stationary_fraction"] == pytest.approx(0.1)
    assert not any("--t-transient" in w for w in s["warnings"])
    # a value exactly at the tolerance is stationary
    recs[9] = _rec(9, kc=1.0, kc_interp=0.95, stationarity=0.02)
    assert summarize(recs, K_GRID, 0.5)["not_stationary"] == 2
    # 3 of 20 = 15% -> warning with the suggestion
    recs[11] = _rec(11, kc=1.0, kc_interp=0.95, stationarity=0.2)
    s = summarize(recs, K_GRID, 0.5, t_transient=5.0)
    assert s["not_stationary"] == 3
    w = [x for x in s["warnings"] if "--t-transient" in x]
    assert len(w) == 1 and "transient" in w[0] and "--t-transient 20" in w[0]  # 4 x 5
    assert any("--t-transient" in x for x in summarize(recs, K_GRID, 0.5)["warnings"])
    # a looser tolerance removes it
    assert summarize(recs, K_GRID, 0.5, stationarity_tol=0.5)["not_stationary"] == 0


@pytest.mark.parametrize("recs", [[], [_rec(0, censored="right"), _rec(1, censored="right")],
                                  [_rec(0, status="failed", fail_reason="x")]])
def test_summarize_no_crossing(recs):
    s = summarize(recs, K_GRID, 0.5)
    assert s["crossings"] == 0
    assert s["kc"] is None and s["kc_interp"] is None
    assert s["not_stationary"] == 0 and s["not_stationary_fraction"] is None
    json.dumps(s.to_dict(), allow_nan=False)
    text = format_summary(s)
    assert "runs" in text and "n/a" in text


def test_summarize_single_run_and_single_k():
    s = summarize([_rec(0, kc=2.0, kc_interp=2.0, censored="left")], [2.0], 0.5)
    assert s["resolution"] == 0.0
    assert s["kc"]["std"] == 0.0
    assert s["kc"]["ci95_lo"] == s["kc"]["ci95_hi"] == 2.0


def test_format_summary_aligned_and_warnings_last():
    recs = _random_records(30, 2) + [_rec(30, censored="right")]
    s = summarize(recs, K_GRID, 0.5)
    text = format_summary(s)
    lines = text.splitlines()
    assert lines[0].startswith("runs")
    body = [ln for ln in lines if not ln.startswith(("note:", "warnings:", "  - "))]
    labels = ["runs", "crossings", "censored", "failed", "Kc mean ± std", "Kc median",
              "Kc min / max", "Kc mean ± 2 std", "Kc 95% CI", "interpolated Kc mean ± std",
              "resolution"]
    for label in labels:
        assert any(ln.startswith(label) for ln in body), label
    # values start in the same column on every line
    starts = {len(ln) - len(ln[ln.index("  ", len(ln.split("  ")[0])):].lstrip())
              for ln in body}
    assert len(starts) == 1
    assert f"{s['kc']['mean']:.4f}" in text and f"{s['kc']['std']:.4f}" in text
    assert lines[-2] == "warnings:" and "censored" in lines[-1]


# --------------------------------------------------------------------------- export

def _mixed_records():
    rng = np.random.default_rng(17)
    recs = []
    for i in range(6):
        r = np.sort(rng.uniform(0, 1, K_GRID.size))
        res = first_crossing(K_GRID, r, 0.5)
        recs.append(RunRecord(run=i, seed_material=f"SeedSequence(9).spawn(runs)[{i}]",
                              nodes=100, edges=291, mean_k=5.82, mean_k2=61.3, k_max=31,
                              r=r, r_first=r, r_second=r, kc=res.kc, kc_interp=res.kc_interp,
                              censored=res.censored, bracket_lo=res.bracket_lo,
                              bracket_hi=res.bracket_hi, stationarity=0.001 * i,
                              seconds=0.25 * i))
    recs.append(_rec(6, censored="right", r=np.full(K_GRID.size, 0.1)))
    recs.append(_rec(7, kc=0.0, kc_interp=0.0, censored="left", r=np.full(K_GRID.size, 0.9)))
    recs.append(_rec(8, status="failed", fail_reason="non-finite, first at K=0.1, x",
                     r=np.full(K_GRID.size, np.nan)))
    return recs


def test_r_column_names():
    names = r_column_names(K_GRID)
    assert names[1] == "r@K=0.1020" and names[0] == "r@K=0.0000"
    assert len(set(names)) == len(names)
    fine = np.linspace(1.0, 1.0 + 1e-6, 11)
    names = r_column_names(fine)
    assert len(set(names)) == 11
    for name, v in zip(names, fine, strict=True):
        assert float(name.split("=")[1]) == pytest.approx(v, abs=1e-9)
    dup = r_column_names([1.0, 1.0, 1.0])
    assert len(set(dup)) == 3


def test_runs_csv_round_trip(tmp_path):
    recs = _mixed_records()
    path = tmp_path / "runs.csv"
    write_runs_csv(path, list(reversed(recs)), K_GRID)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        rows = list(reader)
    assert header[:len(RUN_COLUMNS)] == list(RUN_COLUMNS)
    assert header[len(RUN_COLUMNS):] == [f"r@K={k:.4f}" for k in K_GRID]
    assert [int(row["run"]) for row in rows] == sorted(r.run for r in recs)
    by_run = {r.run: r for r in recs}
    for row in rows:
        rec = by_run[int(row["run"])]
        for col in ("kc", "kc_interp", "bracket_lo", "bracket_hi", "stationarity",
                    "mean_k", "mean_k2", "seconds"):
            want = getattr(rec, col)
            assert (row[col] == "") if want is None else (float(row[col]) == want), col
        for col in ("nodes", "edges", "k_max"):
            assert int(row[col]) == getattr(rec, col)
        assert row["status"] == rec.status and row["censored"] == rec.censored
        assert row["seed_material"] == rec.seed_material
        assert row["fail_reason"] == (rec.fail_reason or "")
        r_back = np.array([float(row[f"r@K={k:.4f}"]) for k in K_GRID])
        np.testing.assert_array_equal(r_back, rec.r)  # exact, NaN == NaN
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]  # no temp files left


def test_runs_csv_rejects_wrong_length(tmp_path):
    with pytest.raises(ValueError):
        write_runs_csv(tmp_path / "runs.csv", [_rec(0, kc=1.0, kc_interp=1.0)], K_GRID[:10])
    assert list(tmp_path.iterdir()) == []


def test_summary_json(tmp_path):
    recs = _mixed_records()
    s = summarize(recs, K_GRID, 0.5)
    config = {"runs": 9, "k_values": np.linspace(0, 1, 3), "out": tmp_path, "threshold": 0.5}
    extra = {"seed": 123456789012345, "device": "cpu", "elapsed_seconds": np.float64(1.25),
             "version": "0.1", "bad": float("nan")}
    path = tmp_path / "summary.json"
    write_summary_json(path, s, config, extra)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["summary"] == json.loads(json.dumps(s.to_dict()))
    assert doc["config"]["runs"] == 9 and doc["config"]["k_values"] == [0.0, 0.5, 1.0]
    assert doc["config"]["out"] == str(tmp_path)
    assert doc["seed"] == 123456789012345 and doc["device"] == "cpu"
    assert doc["elapsed_seconds"] == 1.25 and doc["version"] == "0.1" and doc["bad"] is None
    assert path.read_text().startswith('{\n  "summary"')  # indent=2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    with pytest.raises(ValueError):
        write_summary_json(path, s, config, {"config": 1})


def _assert_png(path: Path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000


def test_plots_write_png(tmp_path):
    recs = _mixed_records()
    s = summarize(recs, K_GRID, 0.5)
    plot_kc_hist(tmp_path / "kc_hist.png", recs, s)
    plot_r_curves(tmp_path / "r_curves.png", recs, K_GRID, 0.5)
    _assert_png(tmp_path / "kc_hist.png")
    _assert_png(tmp_path / "r_curves.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kc_hist.png", "r_curves.png"]


def test_plots_zero_crossings(tmp_path):
    recs = [_rec(0, censored="right", r=np.full(K_GRID.size, 0.1)),
            _rec(1, status="failed", fail_reason="x", r=np.full(K_GRID.size, np.nan))]
    s = summarize(recs, K_GRID, 0.5)
    plot_kc_hist(tmp_path / "h.png", recs, s)
    plot_r_curves(tmp_path / "r.png", recs, K_GRID, 0.5)
    plot_kc_hist(tmp_path / "h0.png", [], summarize([], K_GRID, 0.5))
    plot_r_curves(tmp_path / "r0.png", [], K_GRID, 0.5)
    for name in ("h.png", "r.png", "h0.png", "r0.png"):
        _assert_png(tmp_path / name)


def test_single_k_grid_outputs(tmp_path):
    k = np.array([1.5])
    recs = [_rec(0, kc=1.5, kc_interp=1.5, censored="left", r=[0.9]),
            _rec(1, censored="right", r=[0.1])]
    s = summarize(recs, k, 0.5)
    plot_kc_hist(tmp_path / "h.png", recs, s)
    plot_r_curves(tmp_path / "r.png", recs, k, 0.5)
    write_runs_csv(tmp_path / "runs.csv", recs, k)
    _assert_png(tmp_path / "h.png")
    _assert_png(tmp_path / "r.png")


def test_export_does_not_import_matplotlib_eagerly():
    code = ("import sys, kcbatch.export.study_outputs, kcbatch.analysis.summary, kcbatch.analysis.crossing; "
            "print('matplotlib' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- grid values

def test_grid_values_are_reported_without_float_artefacts():
    from kcbatch.analysis.sweep import kc_backward, kc_forward, loop_measures
    from kcbatch.protocol.config import GRID_ULPS, decimal_value

    k = np.linspace(0.0, 3.0, 16)
    # linspace's artefacts: 1.2000000000000002 and 1.4000000000000001
    assert k[6] != 1.2 and k[7] != 1.4
    r = np.where(k >= k[7], 0.9, 0.1)
    res = first_crossing(k, r, 0.5)
    assert res.kc == 1.4 and repr(res.kc) == "1.4"
    assert (res.bracket_lo, res.bracket_hi) == (1.2, 1.4)
    # the interpolation works on the grid's own doubles and stays in the bracket
    assert k[6] <= res.kc_interp <= k[7]
    assert kc_forward(k, r, 0.5) == 1.4 and kc_backward(k, r, 0.5) == 1.4
    k2 = np.linspace(0.8, 2.4, 9)
    fwd = np.where(k2 >= k2[5], 0.9, 0.1)
    bwd = np.where(k2 >= k2[3], 0.9, 0.1)
    assert repr(loop_measures(k2, fwd, bwd, 0.5).width) == "0.4"
    # the default grid 5 i / 49 has no short decimals: every value is kept bit for bit
    assert all(decimal_value(v) == v for v in np.linspace(0.0, 5.0, 50))
    # never further than GRID_ULPS ulps from the grid's value
    rng = np.random.default_rng(3)
    for _ in range(200):
        lo, hi = sorted(np.round(rng.uniform(-5, 5, 2), int(rng.integers(0, 4))))
        for v in np.linspace(lo, hi, int(rng.integers(2, 60))):
            assert abs(decimal_value(v) - v) <= GRID_ULPS * np.spacing(abs(v))
