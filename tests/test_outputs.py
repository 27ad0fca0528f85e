"""Outputs that explain themselves (issue 8, section 3).

Progress (whole-study count, movement inside a batch, ETA), the CPU fallback
estimate, partial studies everywhere they are reported, the stationarity
warning computed from the config, the plots (subtitle, Kc marks, a censoring
note clear of the data), studies without --out, `kcbatch tune`, and the
documentation: docs/outputs.md checked against a real study's files, shell
completion, LICENSE and CITATION.cff.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, ok, read_csv

import kcbatch
import kcbatch.export.study_outputs as export
import kcbatch.run.plan
import kcbatch.run.study as study
import kcbatch.run.time_estimate as estimate
from kcbatch.analysis.records import RunRecord
from kcbatch.analysis.summary import (
    format_summary,
    partial_info,
    suggest_transient,
    summarize,
)
from kcbatch.cli.run import _fresh_out_dir
from kcbatch.engines import get_engine
from kcbatch.export.report import export_store, record_run_info
from kcbatch.protocol.config import StudyConfig
from kcbatch.results.store import STORE_NAME

ROOT = Path(__file__).resolve().parent.parent
EXPORTS = ("kcbatch.sqlite", "summary.json", "runs.csv", "kc_hist.png", "r_curves.png")
TINY = dict(runs=4, nodes=120, m=2, k_num=5, t_transient=0.5, t_measure=0.5, sample_every=2,
            seed=3, device="cpu")
# Two of its three runs cross (so summary.kc is filled in), one does not.
TINY_FLAGS = ["--runs", "3", "--nodes", "150", "--k-num", "5", "--t-transient", "1",
              "--t-measure", "1", "--sample-every", "5", "--device", "cpu", "--seed", "2",
              "--quiet"]


class RecordingBar:
    """Stands in for the tqdm bar: keeps (total, initial) and every position, in
    one shared event log."""

    def __init__(self, total, initial, log):
        self.total, self.initial, self.log = total, initial, log
        self.positions: list[float] = []
        self.closed = False

    def move_to(self, position):
        self.positions.append(position)
        self.log.append(("bar", position))

    def close(self):
        self.closed = True


@pytest.fixture
def recording_bars(monkeypatch):
    bars: list[RecordingBar] = []
    log: list[tuple] = []

    def make(total, initial):
        bars.append(RecordingBar(total, initial, log))
        return bars[-1]

    monkeypatch.setattr(study, "make_progress_bar", make)
    return bars, log


# --------------------------------------------------------------------------- progress

def test_progress_moves_inside_a_batch(recording_bars, faulty_engines):
    bars, log = recording_bars
    faulty_engines(after=lambda call, batch: log.append(("batch end", call)))
    cfg = StudyConfig(**{**TINY, "runs": 2}, batch=2)
    study.run_study(cfg, progress=True)
    (bar,) = bars
    assert (bar.total, bar.initial) == (2, 0) and bar.closed
    first_end = log.index(("batch end", 1))
    inside = [p for kind, p in log[:first_end] if kind == "bar"]
    n_steps = round((cfg.t_transient + cfg.t_measure) / cfg.dt)  # 20 steps of dt
    # the batch's 2 runs x steps done / steps, after each step or each group of
    # steps the engine runs at once (the CPU's native pass: all 10 here)
    steps_done = np.asarray(inside) * n_steps / 2
    np.testing.assert_allclose(steps_done, np.round(steps_done), atol=1e-9)
    assert np.all(np.diff(steps_done) >= 1) and steps_done[-1] == pytest.approx(n_steps)
    assert 0 < steps_done[0] <= 10 and len(inside) >= 2  # it moved before the batch's end
    assert bar.positions == sorted(bar.positions)
    assert bar.positions[-1] == 2


def test_progress_counts_the_whole_study_on_resume(tmp_path, recording_bars, faulty_engines):
    bars, _ = recording_bars
    stop = threading.Event()
    faulty_engines(after=lambda call, batch: stop.set())
    cfg = StudyConfig(**TINY, batch=1, out=tmp_path / "s")
    first = study.run_study(cfg, stop=stop)
    assert first.interrupted
    with sqlite3.connect(tmp_path / "s" / STORE_NAME) as con:
        stored = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    assert 0 < stored < TINY["runs"]
    study.run_study(cfg, resume=True, progress=True)
    bar = bars[-1]
    assert (bar.total, bar.initial) == (TINY["runs"], stored)
    assert min(bar.positions) > stored and bar.positions[-1] == TINY["runs"]


def test_the_bar_shows_finished_runs_of_the_total_and_an_eta(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = study.make_progress_bar(1000, 96)
    time.sleep(0.05)
    bar.move_to(96.5)
    time.sleep(0.05)
    bar.move_to(97.75)
    bar.close()
    frames = [f for f in re.split(r"[\r\n]", err.getvalue()) if f.strip()]
    assert frames[0].count("96/1000 runs") == 1, frames
    assert "97/1000 runs" in frames[-1]  # finished runs, floored: never 98 early
    assert re.search(r"97/1000 runs \[\d\d:\d\d<\d\d:\d\d", frames[-1]), frames[-1]


# --------------------------------------------------------------------------- CPU estimate

def _auto_lands_on_cpu(monkeypatch):
    monkeypatch.setattr(kcbatch.run.plan, "resolve_device",
                        lambda d: ("cpu", "no usable GPU (test); running on the CPU")
                        if d == "auto" else (d, None))


def test_auto_on_cpu_prints_the_estimate_and_a_small_command(monkeypatch):
    _auto_lands_on_cpu(monkeypatch)
    # every study counts as long (the notice's limit is a microsecond) and is measured
    monkeypatch.setattr(estimate, "CPU_NOTICE_SECONDS", 1e-6)
    monkeypatch.setattr(estimate, "QUICK_SECONDS", 0.0)
    notices: list[str] = []
    study.run_study(StudyConfig(**TINY, batch=2), on_notice=notices.append)
    assert not any("estimated time on this CPU" in n for n in notices)  # cpu asked for
    assert sum(n.startswith("estimated time: ") for n in notices) == 1  # every device

    notices.clear()
    study.run_study(StudyConfig(**{**TINY, "device": "auto"}, batch=2), on_notice=notices.append)
    lines = [n for n in notices if "estimated time on this CPU" in n]
    assert len(lines) == 1, notices
    assert "for 4 runs" in lines[0]
    assert "kcbatch run --runs 8 --batch 4 --nodes 1000 --device cpu" in lines[0]
    assert "\n" not in lines[0]

    monkeypatch.setattr(estimate, "CPU_NOTICE_SECONDS", 600.0)
    notices.clear()
    study.run_study(StudyConfig(**{**TINY, "device": "auto"}, batch=2), on_notice=notices.append)
    assert not any("estimated time on this CPU" in n for n in notices)  # a small study


def test_the_estimate_is_right_within_an_order_of_magnitude():
    cfg = StudyConfig(runs=4, nodes=2000, m=3, k_num=16, t_transient=2.0, t_measure=2.0,
                      sample_every=10, seed=1, device="cpu", batch=4)
    engine = get_engine("cpu")
    rate = estimate.measure_rate(cfg, engine, 4)
    # work counted independently: steps x K x (2E + N), E = m (N - m) for BA
    steps = round(4.0 / cfg.dt)
    work = cfg.runs * steps * cfg.k_num * (2 * 3 * (2000 - 3) + 2000)
    predicted = work / rate
    actual = study.run_study(cfg).engine_seconds
    assert predicted / 10 < actual < predicted * 10, (predicted, actual)


# --------------------------------------------------------------------------- partial

@pytest.mark.parametrize("kw, expected", [
    (dict(runs_total=10, run_start=0, run_stop=None, runs_done=10, interrupted=False), None),
    (dict(runs_total=10, run_start=0, run_stop=10, runs_done=4, interrupted=True),
     (4, [0, 10], "interrupted")),
    (dict(runs_total=10, run_start=0, run_stop=None, runs_done=4, interrupted=None),
     (4, [0, 10], "incomplete")),
    (dict(runs_total=10, run_start=2, run_stop=6, runs_done=4, interrupted=False),
     (4, [2, 6], "shard 2:6")),
    (dict(runs_total=10, run_start=2, run_stop=6, runs_done=1, interrupted=True),
     (1, [2, 6], "shard 2:6, interrupted")),
])
def test_partial_info(kw, expected):
    got = partial_info(**kw)
    if expected is None:
        assert got is None
    else:
        done, rng, reason = expected
        assert got == {"runs_done": done, "runs_total": 10, "run_range": rng, "reason": reason}


def _captured_figures(monkeypatch) -> dict[str, object]:
    figs: dict[str, object] = {}
    monkeypatch.setattr(export, "save_png", lambda fig, path: figs.__setitem__(Path(path).name,
                                                                                fig))
    return figs


def _figure_texts(fig) -> str:
    fig.canvas.draw()
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    out = tmp_path_factory.mktemp("shard") / "s"
    result = ok(["run", *TINY_FLAGS, "--run-range", "0:2", "--out", out])
    return out, result


@pytest.mark.slow
def test_a_shard_says_so_in_summary_json_stdout_report_and_plots(shard, monkeypatch):
    out, result = shard
    data = json.loads((out / "summary.json").read_text())
    assert data["summary"]["partial"] == {"runs_done": 2, "runs_total": 3, "run_range": [0, 2],
                                          "reason": "shard 0:2"}
    assert "PARTIAL STUDY" in result.stdout and "2 of 3 runs (shard 0:2)" in result.stdout
    assert "kcbatch merge" in result.stdout
    report = ok(["report", out])
    assert "PARTIAL STUDY" in report.stdout and "2 of 3 runs (shard 0:2)" in report.stdout
    figs = _captured_figures(monkeypatch)
    export_store(out)
    assert set(figs) == {"kc_hist.png", "r_curves.png"}
    for name, fig in figs.items():
        assert "PARTIAL STUDY: 2 of 3 runs (shard 0:2)" in _figure_texts(fig), name


@pytest.mark.slow
def test_an_interrupted_study_says_so(tmp_path, faulty_engines, monkeypatch):
    stop = threading.Event()
    faulty_engines(after=lambda call, batch: stop.set())
    cfg = StudyConfig(**TINY, batch=1, out=tmp_path / "s")
    res = study.run_study(cfg, stop=stop)
    assert res.interrupted
    assert res.summary["partial"] == {"runs_done": 1, "runs_total": 4, "run_range": [0, 4],
                                      "reason": "interrupted"}
    assert "1 of 4 runs (interrupted)" in format_summary(res.summary)
    assert "--resume" in format_summary(res.summary)
    # the store alone, as `kcbatch report` reads it: killed (no session info) or interrupted
    assert export_store(cfg.out)["partial"]["reason"] == "incomplete"
    record_run_info(cfg.out, {"device": "cpu", "batch": 1, "interrupted": True})
    figs = _captured_figures(monkeypatch)
    s = export_store(cfg.out)
    assert s["partial"]["reason"] == "interrupted"
    assert json.loads((cfg.out / "summary.json").read_text())["summary"]["partial"] == \
        s["partial"]
    assert "PARTIAL STUDY: 1 of 4 runs (interrupted)" in _figure_texts(figs["kc_hist.png"])


def test_a_complete_study_is_not_partial(tmp_path):
    res = study.run_study(StudyConfig(**TINY, batch=4, out=tmp_path / "s"))
    assert res.summary["partial"] is None
    assert "PARTIAL" not in format_summary(res.summary)
    assert export_store(tmp_path / "s")["partial"] is None
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["summary"]["partial"] \
        is None


# --------------------------------------------------------------------------- stationarity

K_GRID = np.linspace(0.0, 5.0, 11)


def _rec(run, kc, stationarity, *, censored="none", status="ok"):
    """A run whose r(K) is 0.2 below ``kc`` and 0.8 from ``kc`` on."""
    k = K_GRID
    r = np.where(k >= (kc if kc is not None else np.inf), 0.8, 0.2)
    i = None if kc is None else int(np.searchsorted(k, kc))
    return RunRecord(run=run, seed_material=f"SeedSequence(1).spawn(runs)[{run}]", nodes=100,
                     edges=297, mean_k=5.94, mean_k2=60.0, k_max=30, r=r, r_first=r, r_second=r,
                     kc=kc, kc_interp=None if kc is None else kc - 0.1, censored=censored,
                     bracket_lo=None if not i else float(k[i - 1]),
                     bracket_hi=None if kc is None or not i else float(k[i]),
                     stationarity=stationarity, status=status)


def _records(n=20, not_stationary=3):
    return [_rec(i, float(K_GRID[2 + i % 5]), 0.1 if i < not_stationary else 0.0)
            for i in range(n)]


@pytest.mark.parametrize("t_transient, dt, expected", [
    (20.0, 0.05, 80.0),
    (5.0, 0.05, 20.0),
    (5.0, 0.03, 20.01),    # 20 / 0.03 = 666.7 steps: 667 steps
    (0.0, 0.05, None),     # no transient: 4 x t_measure below
])
def test_the_warning_names_the_configured_transient_and_suggests_a_valid_one(
        t_transient, dt, expected):
    t_measure = 3.0
    s = summarize(_records(), K_GRID, 0.5, t_transient=t_transient, t_measure=t_measure, dt=dt)
    (w,) = [x for x in s["warnings"] if "stationary" in x]
    assert "3 of 20" in w and "15.0%" in w
    assert f"transient of {t_transient:g} time units ({round(t_transient / dt)} steps" in w
    assert "5-unit" not in w
    want = expected if expected is not None else 4 * t_measure
    assert s["suggested_t_transient"] == pytest.approx(want, rel=1e-12)
    assert f"--t-transient {want:g}" in w
    # the suggestion is a valid config (a whole number of steps), and 4x longer at least
    cfg = StudyConfig(dt=dt, t_transient=s["suggested_t_transient"], t_measure=t_measure,
                      sample_every=1)
    assert cfg.spec.n_transient * dt >= 4 * (t_transient or t_measure) - 1e-9


def test_no_warning_and_no_suggestion_when_runs_are_stationary():
    s = summarize(_records(not_stationary=2), K_GRID, 0.5, t_transient=5.0, dt=0.05)
    assert s["suggested_t_transient"] is None
    assert not any("stationary" in w for w in s["warnings"])


def test_a_study_warns_with_its_own_transient():
    cfg = StudyConfig(**{**TINY, "runs": 6, "nodes": 200, "k_num": 6}, batch=6)
    s = study.run_study(cfg).summary
    # precondition: so short a protocol leaves most crossing runs drifting
    assert s["not_stationary_fraction"] > 0.1, s
    (w,) = [x for x in s["warnings"] if "not stationary" in x]
    assert "transient of 0.5 time units (10 steps of dt=0.05)" in w
    assert s["suggested_t_transient"] == 2.0 and "--t-transient 2 " in w
    assert suggest_transient(0.5, 0.05) == 2.0


# --------------------------------------------------------------------------- plots

CONFIG = dict(StudyConfig(seed=77).to_dict(), runs=30, nodes=1234, k_min=0.0, k_max=5.0,
              k_num=11, t_transient=20.0)


def _plot_records():
    kcs = [1.0, 1.5, 1.5, 2.0, 2.0, 2.0, 2.5, 3.0, 3.5, 4.5]
    recs = [_rec(i, kc, 0.0) for i, kc in enumerate(kcs)]
    recs.append(_rec(10, None, None, censored="right"))
    recs.append(_rec(11, 0.0, 0.0, censored="left"))
    return recs, kcs + [0.0]


def _draw(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


@pytest.mark.parametrize("which", ["kc_hist", "r_curves"])
def test_plots_carry_the_parameters_and_keep_the_note_off_the_data(which):
    recs, _ = _plot_records()
    s = summarize(recs, K_GRID, 0.5)
    if which == "kc_hist":
        fig = export.kc_hist_figure(recs, s, CONFIG)
    else:
        fig = export.r_curves_figure(recs, K_GRID, 0.5, summary=s, config=CONFIG)
    renderer = _draw(fig)
    (ax,) = fig.axes
    sub = ax.get_title()
    for needle in ("N=1234", "m=3", "0.5", "0…5 (11 values)", "dt=0.05", "transient 20",
                   "measure 5", "runs 12/30", "seed 77"):
        assert needle in sub, (needle, sub)
    note = fig._supxlabel
    assert note is not None
    text = note.get_text()
    assert "left-censored (Kc = K[0]): 1" in text and "right-censored" in text \
        and ": 1;" in text and "failed (not shown): 0" in text
    nb = note.get_window_extent(renderer)
    for box in (ax.get_window_extent(renderer), ax.get_tightbbox(renderer)):
        assert not nb.overlaps(box), (nb, box)
    for legend in fig.legends:  # beside the axes, clear of the data and the note
        lb = legend.get_window_extent(renderer)
        assert not nb.overlaps(lb) and not lb.overlaps(ax.get_window_extent(renderer))


def test_r_curves_marks_the_median_and_spread_of_kc():
    recs, kcs = _plot_records()
    fig = export.r_curves_figure(recs, K_GRID, 0.5, summary=summarize(recs, K_GRID, 0.5),
                                 config=CONFIG)
    _draw(fig)
    (ax,) = fig.axes
    median = float(np.median(kcs))
    q25, q75 = np.percentile(kcs, [25, 75])
    vlines = [ln for ln in ax.get_lines()
              if len(set(ln.get_xdata())) == 1 and "median" in ln.get_label()]
    assert len(vlines) == 1 and vlines[0].get_xdata()[0] == pytest.approx(median)
    spans = [p for p in ax.patches if "25–75%" in p.get_label()]
    assert len(spans) == 1
    ext = spans[0].get_extents()  # display coordinates
    lo, hi = ax.transData.inverted().transform([[ext.x0, 0], [ext.x1, 0]])[:, 0]
    assert (lo, hi) == (pytest.approx(q25, abs=1e-6), pytest.approx(q75, abs=1e-6))
    labels = [t.get_text().replace("\n", " ") for lg in fig.legends for t in lg.get_texts()]
    assert any("median" in t and f"{median:.4g}" in t for t in labels), labels
    assert any("25–75%" in t for t in labels), labels


# --------------------------------------------------------------------------- no --out

def test_a_study_without_out_writes_a_new_directory_named_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = ok(["run", *[a for a in TINY_FLAGS if a != "--quiet"]])
    first = result.output.splitlines()[0]
    dirs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(dirs) == 1
    out = dirs[0]
    assert re.fullmatch(r"kcbatch-\d{8}-\d{6}-2", out.name)
    assert out.name in first
    for name in EXPORTS:
        assert (out / name).is_file(), name
    data = json.loads((out / "summary.json").read_text())
    assert data["config"]["out"] == out.name and data["summary"]["runs"] == 3
    _, rows = read_csv(out / "runs.csv")
    assert len(rows) == 3


def test_without_out_no_directory_when_the_study_cannot_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(["run", *TINY_FLAGS, "--threshold", "1.5"])
    assert result.exit_code == 2 and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_fresh_directory_names_never_reuse_an_existing_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20261126-120000")
    first = _fresh_out_dir(5)
    assert first == Path("kcbatch-20261126-120000-5")
    first.mkdir()
    second = _fresh_out_dir(5)
    assert second != first and not second.exists()
    second.mkdir()
    assert _fresh_out_dir(5) not in (first, second)


def test_the_api_without_out_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = kcbatch.run_study(StudyConfig(**TINY, batch=4))
    assert res.store_path is None and len(res.records) == 4
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- tune

def test_tune_help_lists_only_what_applies():
    text = ok(["tune", "--help"]).stdout
    flags = set(re.findall(r"^\s+(--[\w-]+)", text, re.M))
    for flag in ("--runs", "--nodes", "--m", "--k-num", "--dt", "--t-transient", "--t-measure",
                 "--sample-every", "--device", "--precision", "--batches", "--steps"):
        assert flag in flags, flag
    for flag in ("--threshold", "--seed", "--producers", "--k-min", "--k-max", "--omega-mu",
                 "--omega-sigma", "--batch", "--out", "--run-range", "--resume", "--config"):
        assert flag not in flags, flag


@pytest.mark.parametrize("seconds, phrase", [
    (0.4, "0 s"), (45, "45 s"), (89.4, "89 s"), (90, "1 min 30 s"), (263.2, "4 min 23 s"),
    (5399, "89 min 59 s"), (5400, "1 h 30 min"), (9000 + 29, "2 h 30 min"),
    (3 * 86400, "3.0 days"), (float("inf"), "unknown"),
])
def test_format_duration(seconds, phrase):
    assert estimate.format_duration(seconds) == phrase


def _seconds(phrase: str) -> float:
    """'45 s', '4 min 23 s', '2 h 35 min', '3.1 days' -> seconds."""
    units = {"s": 1, "min": 60, "h": 3600, "days": 86400}
    words = phrase.split()
    return sum(float(v) * units[u] for v, u in zip(words[::2], words[1::2], strict=True))


def test_tune_prints_the_configured_studys_time():
    text = ok(["tune", "--runs", "300", "--nodes", "100", "--k-num", "3", "--t-transient",
               "0.5", "--t-measure", "0.5", "--sample-every", "2", "--device", "cpu",
               "--batches", "1,2", "--steps", "2"]).stdout
    rates = {int(m.group(1)): float(m.group(2))
             for m in re.finditer(r"^\s+(\d+)\s+([\d.]+)\s", text, re.M)}
    pick = int(re.search(r"recommended: --batch (\d+)", text).group(1))
    m = re.search(r"estimated time of the configured study: ([\d.]+ \w+(?: [\d.]+ \w+)?) "
                  r"\(300 runs at "
                  r"([\d.e+-]+) runs/s, --batch (\d+)", text)
    assert m, text
    assert int(m.group(3)) == pick
    assert float(m.group(2)) == pytest.approx(rates[pick], rel=0.01)
    # The time printed comes from the unrounded rate; the rate beside it has 3
    # significant digits (relative error <= 0.5%), and the phrase rounds to the
    # second (to the minute from 90 min on).
    expected = 300 / float(m.group(2))
    got = _seconds(m.group(1))
    tol = (0.5 if expected < 5400 else 30) + 0.005 * expected
    assert abs(got - expected) <= tol + 1e-9, (got, expected)


# --------------------------------------------------------------------------- docs

def _flatten(obj, prefix=""):
    """Every dotted path of a JSON object, intermediate objects included."""
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{prefix}.{k}" if prefix else k
            out.add(path)
            out |= _flatten(v, path)
    return out


def _doc_sections() -> dict[str, str]:
    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)
    return {p.splitlines()[0].strip(): p for p in parts[1:]}


def _ticked(section: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", section))


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    out = tmp_path_factory.mktemp("complete") / "s"
    ok(["run", *TINY_FLAGS, "--out", out])
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["kc"] is not None and summary["partial"] is None  # every field present
    return out


def test_outputs_md_documents_every_runs_csv_column(complete):
    header, _ = read_csv(complete / "runs.csv")
    documented = _ticked(_doc_sections()["runs.csv"])
    missing = [c for c in header
               if (("r@K=<K>" if c.startswith("r@K=") else c) not in documented)]
    assert not missing, f"runs.csv columns not in docs/outputs.md: {missing}"


def test_outputs_md_documents_every_summary_json_field_and_no_other(complete, shard):
    paths = set()
    for out in (complete, shard[0]):
        paths |= _flatten(json.loads((out / "summary.json").read_text()))
    documented = _ticked(_doc_sections()["summary.json"])
    missing = sorted(p for p in paths if p not in documented)
    assert not missing, f"summary.json fields not in docs/outputs.md: {missing}"
    # no stale entries: every documented summary.*/config.* path exists
    stale = sorted(d for d in documented
                   if re.fullmatch(r"(summary|config)\.[\w.]+", d) and d not in paths)
    assert not stale, f"docs/outputs.md documents fields summary.json does not have: {stale}"


def test_outputs_md_documents_every_table_and_column_of_the_store(complete):
    documented = _ticked(_doc_sections()["kcbatch.sqlite"])
    con = sqlite3.connect(complete / STORE_NAME)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        missing = []
        for t in tables:
            if not any(d.startswith(f"{t}.") for d in documented):
                missing.append(t)
            cols = [row[1] for row in con.execute(f"PRAGMA table_info({t})")]
            missing += [f"{t}.{c}" for c in cols if f"{t}.{c}" not in documented]
        missing += [f"meta.{k}" for (k,) in con.execute("SELECT key FROM meta")
                    if f"meta.{k}" not in documented]
    finally:
        con.close()
    assert set(tables) >= {"meta", "runs", "batches"}
    assert not missing, f"store tables/columns/keys not in docs/outputs.md: {missing}"


def test_outputs_md_names_units_and_the_stationarity_sign():
    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    assert "r_second − r_first" in text
    assert "rad/time" in text and "time units" in text
    assert "docs/outputs.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_says_how_to_read_kc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### How to read Kc"):]
    section = section[:section.index("\n## ")]
    for needle in ("transient", "1.96 – 2.38", "1.17 – 1.25", "1.35 – 1.83", "1.12 – 1.20",
                   "--t-transient", "stationarity"):
        assert needle in section, needle


@pytest.mark.slow
def test_shell_completion_as_the_readme_says():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "_KCBATCH_COMPLETE=bash_source kcbatch" in readme
    exe = shutil.which("kcbatch", path=str(Path(sys.executable).parent)) or \
        shutil.which("kcbatch")
    if exe is None:
        pytest.skip("the kcbatch console script is not installed")
    for shell, marker in (("bash", "_kcbatch_completion"), ("zsh", "#compdef kcbatch"),
                          ("fish", "complete")):
        assert f"_KCBATCH_COMPLETE={shell}_source kcbatch" in readme, shell
        proc = subprocess.run([exe], env={"PATH": str(Path(exe).parent),
                                          "_KCBATCH_COMPLETE": f"{shell}_source"},
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert marker in proc.stdout and "_KCBATCH_COMPLETE" in proc.stdout, shell


def _cff(path: Path) -> dict[str, str]:
    """Top-level ``key: value`` scalars of a CFF file (no YAML library needed)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([\w-]+):\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip().strip('"')
    return out


def test_citation_cff_matches_the_package():
    path = ROOT / "CITATION.cff"
    cff = _cff(path)
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "version", "date-released", "license"):
        assert key in cff, key
    assert cff["version"] == kcbatch.__version__
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", cff["date-released"])
    assert cff["license"] == "MIT"
    text = path.read_text(encoding="utf-8")
    assert re.search(r"^authors:\n  - name: \"The kcbatch developers\"", text, re.M)


def test_license_is_the_mit_license_setup_cfg_declares():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the kcbatch developers" in text
    assert "WITHOUT WARRANTY OF ANY KIND" in text
    setup = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = re.search(r"^license\s*=\s*(\S+)", setup, re.M)
    project_license = pyproject.get("project", {}).get("license")
    assert (declared and declared.group(1) == "MIT") or project_license in ("MIT", {"text": "MIT"})
