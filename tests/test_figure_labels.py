"""Figures and the printed summary say what was computed (issue 22).

Every figure's subtitle and the printed summary name the network model and its
parameters; legends sit beside the axes, notes below them, wrapped; a
histogram without crossings spans the K grid; the converged histogram says
that it plots interpolated Kc and bins both distributions alike; the
convergence plot's ticks are its windows.
"""
from __future__ import annotations

import numpy as np
import pytest
from helpers import ok

import kcbatch.export.study_outputs as export
from kcbatch.analysis.converge import window_starts
from kcbatch.analysis.summary import format_summary
from kcbatch.protocol.config import StudyConfig
from kcbatch.run.study import run_study

BASE = dict(runs=3, nodes=120, m=2, k_num=6, t_transient=1.0, t_measure=1.0, sample_every=5,
            seed=4, device="cpu")
MODELS = {"ba": (dict(graph="ba"), ("Barabási–Albert", "N=120", "m=2")),
          "er": (dict(graph="er"), ("Erdős–Rényi", "N=120", "m=2")),
          "ws": (dict(graph="ws", ws_p=0.3), ("Watts–Strogatz", "N=120", "m=2", "p=0.3")),
          "powerlaw": (dict(graph="powerlaw", gamma=2.5),
                       ("power law", "N=120", "m=2", "γ=2.5"))}


def _draw(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_figure_and_the_summary_name_the_model(model):
    kw, needles = MODELS[model]
    cfg = StudyConfig(**BASE, **kw)
    res = run_study(cfg)
    config = cfg.to_dict()
    figs = [export.kc_hist_figure(res.records, res.summary, config),
            export.r_curves_figure(res.records, cfg.k_values, cfg.threshold,
                                   summary=res.summary, config=config)]
    for fig in figs:
        sub = fig.axes[0].get_title()
        for needle in needles:
            assert needle in sub, (needle, sub)
    # another model's parameter is not shown
    assert ("p=" in export.network_phrase(config)) == (model == "ws")
    assert ("γ=" in export.network_phrase(config)) == (model == "powerlaw")
    first = format_summary(res.summary, export.network_phrase(config)).splitlines()[0]
    assert first.split(None, 1) == ["network", export.network_phrase(config)]


def test_kcbatch_run_prints_the_network_line(tmp_path):
    out = ok(["run", "--graph", "ws", "--ws-p", "0.25", "--runs", "2", "--nodes", "100",
              "--k-num", "4", "--t-transient", "1", "--t-measure", "1", "--sample-every", "5",
              "--device", "cpu", "--seed", "1", "--quiet", "--out", tmp_path / "s"]).stdout
    (line,) = [ln for ln in out.splitlines() if ln.startswith("network ")]
    assert line.split(None, 1)[1] == "Watts–Strogatz N=100, m=3, p=0.25"


def test_legends_sit_beside_the_axes_and_notes_below_wrapped():
    # degree frequencies: the theory does not apply, and says so in a note
    cfg = StudyConfig(**{**BASE, "k_num": 4}, omega_dist="degree", coupling="raw",
                      k_max=0.5)
    res = run_study(cfg)
    for fig in (export.kc_hist_figure(res.records, res.summary, cfg.to_dict()),
                export.r_curves_figure(res.records, cfg.k_values, cfg.threshold,
                                       summary=res.summary, config=cfg.to_dict())):
        renderer = _draw(fig)
        (ax,) = fig.axes
        axes_box = ax.get_window_extent(renderer)
        for legend in fig.legends:
            assert not legend.get_window_extent(renderer).overlaps(axes_box)
        assert not any("theory" in t.get_text() for t in ax.texts)
        note = fig._supxlabel.get_text()
        assert "theory does not apply" in note
        assert all(len(line) <= export._NOTE_WIDTH for line in note.splitlines())
        assert not fig._supxlabel.get_window_extent(renderer).overlaps(axes_box)


def test_long_notes_wrap_to_the_figure():
    fig = export.new_figure()
    fig.add_subplot()
    long = "all-to-all r(K) not drawn: " + "a reason that goes on " * 12
    export._footer(fig, "short note", long)
    lines = fig._supxlabel.get_text().splitlines()
    assert lines[0] == "short note" and len(lines) >= 3
    assert all(len(line) <= export._NOTE_WIDTH for line in lines)
    assert " ".join(lines[1:]) == " ".join(long.split())


def test_a_histogram_without_crossings_spans_the_grid():
    # K up to 0.3: nobody crosses, and the theory's crossings (~0.9) lie beyond the grid
    cfg = StudyConfig(**BASE, k_min=0.0, k_max=0.3)
    res = run_study(cfg)
    assert res.summary.crossings == 0
    fig = export.kc_hist_figure(res.records, res.summary, cfg.to_dict())
    (ax,) = fig.axes
    dk = cfg.k_values[1] - cfg.k_values[0]
    lo, hi = ax.get_xlim()
    assert cfg.k_min - dk <= lo <= cfg.k_min and cfg.k_max <= hi <= cfg.k_max + dk
    beyond = [t.get_text() for lg in fig.legends for t in lg.get_texts()
              if "beyond the K grid" in t.get_text().replace("\n", " ")]
    assert beyond  # named, not drawn


@pytest.fixture(scope="module")
def converged():
    cfg = StudyConfig(runs=4, nodes=120, m=3, k_num=9, k_min=0.0, k_max=4.0, seed=6,
                      device="cpu", t_transient="auto", t_measure=1.0, sample_every=5,
                      t_max=20.0, refine=0.1)
    return cfg, run_study(cfg)


def test_the_converged_histogram_plots_interpolated_kc_on_shared_bins(converged):
    cfg, res = converged
    fig = export.kc_hist_figure(res.records, res.summary, cfg.to_dict())
    (ax,) = fig.axes
    title = fig._suptitle.get_text()
    assert "interpolated" in title and "first K" not in title
    bars = {}
    for p in ax.patches:
        bars.setdefault(p.get_facecolor(), []).append((p.get_x(), p.get_width()))
    assert len(bars) == 2  # converged and protocol
    widths = {round(w, 12) for group in bars.values() for _, w in group}
    assert len(widths) == 1  # one bin width for both
    (w,) = widths
    origin = min(x for group in bars.values() for x, _ in group)
    for group in bars.values():  # both on one lattice of edges
        for x, _ in group:
            assert (x - origin) / w == pytest.approx(round((x - origin) / w), abs=1e-9)


def test_the_convergence_plot_ticks_at_its_windows(converged):
    cfg, res = converged
    fig = export.kc_convergence_figure(res.records, cfg.to_dict(), res.summary)
    (ax,) = fig.axes
    spec = cfg.spec
    windows = [n * spec.dt for n in window_starts(spec.dt, cfg.t_max, spec.n_measure)]
    np.testing.assert_allclose(ax.get_xticks(), windows)
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{v:g}" for v in windows]


@pytest.mark.parametrize("dwell", [None, 3.0])
def test_an_adiabatic_studys_figures_say_sweep_dwell_and_branch(dwell):
    cfg = StudyConfig(**BASE, sweep="adiabatic", dwell=dwell)
    res = run_study(cfg)
    config = cfg.to_dict()
    per_k = cfg.t_transient + cfg.t_measure if dwell is None else dwell
    hist = export.kc_hist_figure(res.records, res.summary, config)
    curves = export.r_curves_figure(res.records, cfg.k_values, cfg.threshold,
                                    summary=res.summary, config=config)
    for fig in (hist, curves):
        sub = fig.axes[0].get_title()
        # the time at each K is the sweep's dwell, not a transient from theta0
        assert f"adiabatic sweep up and down, dwell {per_k:g} per K" in sub, sub
        assert "transient" not in sub, sub
        assert "forward branch" in fig._suptitle.get_text()
    # an independent study's figures say neither
    plain = StudyConfig(**BASE)
    res = run_study(plain)
    fig = export.kc_hist_figure(res.records, res.summary, plain.to_dict())
    assert "forward" not in fig._suptitle.get_text()
    assert "adiabatic" not in fig.axes[0].get_title()
