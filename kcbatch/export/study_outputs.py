"""Study outputs: ``runs.csv``, ``summary.json`` and two PNG figures.

Every file is written atomically (a temporary file in the same directory,
then ``os.replace``), so an interrupted study never leaves a truncated output.
Matplotlib is imported lazily inside the plot functions and used through its
object-oriented API with the Agg canvas (no ``pyplot``, no global backend
switch), so importing this module is cheap and plotting is safe in threads.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kcbatch.analysis.records import RunRecord
from kcbatch.analysis.summary import Summary, TheoryBlock, theory_summary
from kcbatch.protocol.choices import Coupling, OmegaDist, is_auto
from kcbatch.protocol.config import steps_for
from kcbatch.theory import mean_field as theory
from kcbatch.theory.per_run import theory_settings

__all__ = ["RUN_COLUMNS", "network_phrase", "r_column_names", "runs_table", "write_runs_csv",
           "write_summary_json",
           "plot_kc_hist", "plot_r_curves", "kc_hist_figure", "r_curves_figure",
           "study_subtitle", "kc_convergence_figure", "plot_kc_convergence",
           "hysteresis_figure", "plot_hysteresis"]

RUN_COLUMNS = ("run", "status", "kc", "kc_interp", "censored", "bracket_lo", "bracket_hi",
               "stationarity", "nodes", "edges", "mean_k", "mean_k2", "k_max",
               "kc_mf", "kc_hmf", "kc_qmf", "kc_mf_at_threshold", "kc_hmf_at_threshold",
               "kc_qmf_at_threshold", "t_transient_used", "converged", "kc_protocol",
               "kc_refined", "kc_chi", "kc_chi_err", "kc_chi_censored", "kc_sigma",
               "kc_forward", "kc_backward", "hysteresis_width", "loop_area", "graph_file",
               "graph_sha256", "seed_material", "fail_reason", "seconds")

K_UNITS = "rad / time unit"
# Points of the all-to-all r(K) drawn on r_curves.png: fine enough that the
# square-root onset at Kc0 looks like one.
_THEORY_CURVE_POINTS = 400


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", **kw) -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success move it onto ``path``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # open(..., "x") rather than mkstemp: the file gets the usual umask
    # permissions instead of mkstemp's 0600.
    tmp = p.parent / f".{p.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, mode.replace("w", "x"), **kw) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def r_column_names(k_values) -> list[str]:
    """Names of the per-K columns of ``runs.csv``: ``r@K=<K>``.

    ``<K>`` is K in fixed-point notation with the fewest decimals, at least 4,
    that make all names distinct (e.g. ``r@K=0.1020`` for the default grid);
    up to 17 decimals are tried. If the grid repeats a value (k_min == k_max
    with k_num > 1) the repeats get a ``#<index>`` suffix, e.g. ``r@K=1.0000#1``.
    """
    k = [float(v) for v in np.asarray(k_values, dtype=np.float64).ravel()]
    for d in range(4, 18):
        names = [f"r@K={v:.{d}f}" for v in k]
        if len(set(names)) == len(names):
            return names
    names = [f"r@K={v:.4f}" for v in k]
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        out.append(name if name not in seen else f"{name}#{i}")
        seen.add(name)
    return out


def csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))  # shortest repr that round-trips exactly; 'nan' for NaN
    return str(v)


def runs_table(records: Sequence[RunRecord], k_values) -> tuple[list[str], list[list[Any]]]:
    """``runs.csv`` as values: its header and one row per run, sorted by run.

    Columns: :data:`RUN_COLUMNS`, then one column per K named by
    :func:`r_column_names` holding r(K) (float), and for an adiabatic study
    (any record with a backward branch) one ``r_backward@K=<K>`` column per K.
    A cell is the record's value as it is (None: no value; a run without a
    backward branch has None in those columns). ValueError when a run's r does
    not hold one value per K.
    """
    k = np.asarray(k_values, dtype=np.float64).ravel()
    r_names = r_column_names(k)
    swept = any(rec.r_backward is not None for rec in records)
    backward_names = [name.replace("r@", "r_backward@", 1) for name in r_names] if swept else []
    rows = []
    for rec in sorted(records, key=lambda x: x.run):
        r = np.asarray(rec.r, dtype=np.float64).ravel()
        if r.size != k.size:
            raise ValueError(f"run {rec.run}: r has {r.size} values, "
                             f"expected {k.size} (one per K)")
        row = [getattr(rec, c) for c in RUN_COLUMNS] + r.tolist()
        if swept:
            row += ([None] * k.size if rec.r_backward is None
                    else np.asarray(rec.r_backward, dtype=np.float64).tolist())
        rows.append(row)
    return list(RUN_COLUMNS) + r_names + backward_names, rows


def write_runs_csv(path: str | os.PathLike, records: Sequence[RunRecord], k_values) -> None:
    """Write :func:`runs_table`: one row per run, sorted by run.

    Columns: :data:`RUN_COLUMNS`, then one column per K named by
    :func:`r_column_names` holding r(K) (the time average over the whole
    measurement window). Empty cells mean None; floats are written with
    Python's shortest round-trip ``repr`` (so ``float(cell)`` gives the exact
    value back; a failed run's r may read ``nan``, and the theory thresholds
    of a graph without edges read ``inf``). An adiabatic study's rows end
    with the backward branch, one column per K named ``r_backward@K=<K>``
    (the r columns then hold the forward branch).
    """
    header, rows = runs_table(records, k_values)
    with atomic_file(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([csv_cell(v) for v in row])


def jsonable(obj: Any) -> Any:
    """Plain-JSON copy of ``obj``: numpy scalars/arrays, paths, tuples and sets
    converted; non-finite floats become None (strict JSON has no NaN)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot write {type(obj).__name__} to JSON: {obj!r}")


def write_summary_json(path: str | os.PathLike, summary: Summary | Mapping[str, Any],
                       config: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    """Write ``{"summary": summary, "config": config, **extra}`` (indent 2), atomically;
    a :class:`~kcbatch.analysis.summary.Summary` is written as its ``to_dict()``.

    ``extra`` holds seed, device, elapsed_seconds, version, ...; its keys may
    not be "summary" or "config". Non-finite floats are written as null.
    """
    clash = {"summary", "config"} & set(extra)
    if clash:
        raise ValueError(f"extra may not contain the key(s) {sorted(clash)}")
    if isinstance(summary, Summary):
        summary = summary.to_dict()
    doc = jsonable({"summary": summary, "config": config, **extra})
    text = json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    with atomic_file(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def new_figure(figsize=(10.0, 5.4)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # constrained layout also makes room for suptitle and supxlabel, where the
    # title, the partial-study stamp and the censoring note go: never over the data.
    fig = Figure(figsize=figsize, dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: str | os.PathLike) -> None:
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png")


def _censor_note(summary: Summary | None, records: Sequence[RunRecord]) -> str:
    """The censoring counts: the summary's, else counted from the records."""
    if summary is not None:
        n_left, n_right, n_failed = summary.censored_left, summary.censored_right, summary.failed
    else:
        n_left = sum(1 for r in records if r.status == "ok" and r.censored == "left")
        n_right = sum(1 for r in records if r.status == "ok" and r.censored == "right")
        n_failed = sum(1 for r in records if r.status != "ok")
    return (f"left-censored (Kc = K[0]): {n_left};  "
            f"right-censored (no crossing, no Kc): {n_right};  "
            f"failed (not shown): {n_failed}")


def _transient(c: Mapping[str, Any]) -> str:
    if is_auto(c["t_transient"]):
        return f"auto (kc_tol {c.get('kc_tol', 0.01):g}, t_max {c.get('t_max', 400.0):g})"
    return f"{c['t_transient']:g}"


def _refined(c: Mapping[str, Any]) -> str:
    return "" if c.get("refine") is None else f", refined to {c['refine']:g}"


# The network models' names on the figures and the printed summary.
_MODEL_NAMES = {"ba": "Barabási–Albert", "er": "Erdős–Rényi", "ws": "Watts–Strogatz",
                "powerlaw": "power law"}


def network_phrase(config: Mapping[str, Any]) -> str:
    """The study's networks with the parameters of their model: ``Barabási–Albert
    N=300, m=3``, ``Watts–Strogatz N=300, m=3, p=0.2``, ``power law N=300, m=3,
    γ=2.7``, or ``graphs NAME`` for the users' own files."""
    if config.get("graphs"):
        return f"graphs {Path(config['graphs']).name}"
    graph = str(config.get("graph", "ba"))  # stores before the models: BA
    text = f"{_MODEL_NAMES.get(graph, graph)} N={config['nodes']}, m={config['m']}"
    if graph == "ws":
        text += f", p={config.get('ws_p', 0.1):g}"
    elif graph == "powerlaw":
        text += f", γ={config.get('gamma', 3.0):g}"
    return text


def study_subtitle(config: Mapping[str, Any] | None, summary: Summary | None) -> str:
    """The study's parameters in one line: the network model and its
    parameters (:func:`network_phrase`), the frequency distribution (and
    the coupling unless degree), K grid, dt, transient + measurement window,
    runs (done/total), seed. Empty without a config."""
    if not config:
        return ""
    c = config
    runs_done = None if summary is None else summary.runs
    runs = f"{runs_done}/{c['runs']}" if runs_done is not None else f"{c['runs']}"
    mu, sigma = c["omega_mu"], c["omega_sigma"]
    settings = theory_settings(c)
    omega = {"normal": f"ω ~ N({mu:g}, {sigma:g}²)",
             "lorentzian": f"ω ~ Lorentzian({mu:g}, {sigma:g})",
             "uniform": f"ω ~ U[{mu - sigma:g}, {mu + sigma:g}]",
             "degree": "ω_i = k_i"}.get(settings["omega_dist"], settings["omega_dist"])
    if settings["coupling"] != Coupling.DEGREE:
        omega += f", coupling {settings['coupling']}"
    if _adiabatic(c):
        # each K continues the previous one's phases: its dwell, not a transient from theta0
        dwell = c.get("dwell")
        time = (f"adiabatic sweep up and down, dwell "
                f"{dwell if dwell is not None else c['t_transient'] + c['t_measure']:g} "
                f"per K (measure {c['t_measure']:g})")
    else:
        time = f"transient {_transient(c)} + measure {c['t_measure']:g}{_refined(c)}"
    return (f"{network_phrase(c)}, {omega}, "
            f"K = {c['k_min']:g}…{c['k_max']:g} ({c['k_num']} values), dt={c['dt']:g}, "
            f"{time}, runs {runs}, seed {c['seed']}")


# Characters of the subtitle that fit the 10-inch figures at 7.5 pt.
_SUBTITLE_WIDTH = 135


def _titles(fig, ax, title: str, config, summary: Summary | None) -> None:
    """Figure title (with the partial-study stamp, in red) and the parameter subtitle."""
    partial = None if summary is None else summary.partial
    if partial:
        fig.suptitle(f"{title}\nPARTIAL STUDY: {partial.runs_done} of "
                     f"{partial.runs_total} runs ({partial.reason})",
                     fontsize=11, color="tab:red")
    else:
        fig.suptitle(title, fontsize=11)
    sub = study_subtitle(config, summary)
    if len(sub) > _SUBTITLE_WIDTH:
        # Two lines rather than one cut off at the figure's edge (auto + refine studies).
        sub = sub.replace(", transient", ",\ntransient", 1).replace(", adiabatic",
                                                                    ",\nadiabatic", 1)
    if sub:
        ax.set_title(sub, fontsize=7.5, color="0.25")


def _crossing_kc(records: Sequence[RunRecord]) -> np.ndarray:
    return np.array([r.kc for r in records
                     if r.status == "ok" and r.censored in ("none", "left") and r.kc is not None],
                    dtype=np.float64)


# The theory thresholds' lines on kc_hist.png: name -> (label, colour, line style).
_THEORY_LINES = {"kc_mf": ("MF", "black", ":"), "kc_hmf": ("HMF", "tab:purple", "-."),
                 "kc_qmf": ("QMF", "tab:orange", (0, (6, 2)))}


def _theory_block(records: Sequence[RunRecord], threshold: float | None,
                  summary: Summary | None,
                  config: Mapping[str, Any] | None) -> TheoryBlock | None:
    """The summary's ``theory`` block; made from the records and the config when
    the summary has none; None when neither says the study's theory settings."""
    th = None if summary is None else summary.theory
    if th is None and config and threshold is not None:
        th = theory_summary(records, threshold, **theory_settings(config))
    return th


# Characters per line of the notes below the axes (8 pt on the 10-inch figures).
_NOTE_WIDTH = 150


def _footer(fig, *notes: str) -> None:
    """The notes below the axes (censoring counts, why the theory is not drawn),
    each wrapped to the figure's width: never over the data."""
    import textwrap
    lines = [textwrap.fill(n, _NOTE_WIDTH) for n in notes if n]
    fig.supxlabel("\n".join(lines), fontsize=8, color="0.25")


def _legend(fig, ax) -> None:
    """The axes' legend beside them, right of the data (constrained layout makes
    room for it), its labels wrapped to a short width."""
    import textwrap
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, [textwrap.fill(label, 34) for label in labels],
                   loc="outside right center", fontsize=7.5, frameon=False)


def _auto_kc(records: Sequence[RunRecord]) -> tuple[np.ndarray, np.ndarray]:
    """(converged kc_interp, protocol kc_protocol) of the ok runs of a
    ``t_transient="auto"`` study; both empty otherwise."""
    auto = [r for r in records if r.status == "ok" and r.kc_windows is not None]
    conv = np.array([r.kc_interp for r in auto if r.kc_interp is not None], dtype=np.float64)
    prot = np.array([r.kc_protocol for r in auto if r.kc_protocol is not None],
                    dtype=np.float64)
    return conv, prot


def _converged_vs_protocol_hist(ax, converged: np.ndarray, protocol: np.ndarray,
                                dk: float | None) -> None:
    """Both distributions of interpolated Kc on the same bins (interpolated values
    are not on the grid; bins of the grid spacing ``dk``, or numpy's choice over
    both), each with its median."""
    both = np.concatenate([converged, protocol])
    if np.ptp(both) <= 0:
        edges = np.array([both[0] - 0.5 * (dk or 1.0), both[0] + 0.5 * (dk or 1.0)])
    elif dk and dk > 0 and np.ptp(both) / dk <= 60:
        edges = np.arange(both.min(), both.max() + dk, dk)
    else:
        edges = np.histogram_bin_edges(both, bins="auto")
    for x, label, color, style in ((protocol, "original protocol (T = 5)", "tab:gray", "--"),
                                   (converged, "converged transient", "tab:blue", "-")):
        if not x.size:
            continue
        ax.hist(x, bins=edges, color=color, alpha=0.55, edgecolor="white",
                label=f"{label} (n={x.size})")
        med = float(np.median(x))
        ax.axvline(med, color=color, lw=1.8, ls=style, label=f"{label} median = {med:.4g}")


def _theory_groups(th: TheoryBlock, crossings: bool) -> list[tuple[list[str], float, bool, str]]:
    """The theory lines of kc_hist.png: ([labels], mean, varies over runs, the
    first's name in _THEORY_LINES, whose style the line takes), equal means
    (relative 1e-9: degree coupling's MF = HMF = QMF) merged into one."""
    groups: list[tuple[list[str], float, bool, str]] = []
    for name, (label, _color, _style) in _THEORY_LINES.items():
        spread = th.spread(f"{name}_at_threshold" if crossings else name)
        if not spread:
            continue
        # Rounding alone (degree coupling: QMF = Kc0 / 1.0000000000000002) is no spread.
        varies = spread.max - spread.min > 1e-9 * abs(spread.mean)
        for labels, mean, v, _first in groups:
            if abs(mean - spread.mean) <= 1e-9 * max(abs(mean), 1e-300) and v == varies:
                labels.append(label)
                break
        else:
            groups.append(([label], spread.mean, varies, name))
    return groups


def kc_hist_figure(records: Sequence[RunRecord], summary: Summary,
                   config: Mapping[str, Any] | None = None):
    """The Figure of :func:`plot_kc_hist` (matplotlib, Agg canvas, not saved)."""
    kc = _crossing_kc(records)
    fig = new_figure()
    ax = fig.add_subplot()
    converged, protocol = _auto_kc(records)
    dk, k0 = summary.k_grid.spacing, summary.k_grid.min
    k1 = summary.k_grid.max
    auto = bool(converged.size or protocol.size)
    if auto:
        _converged_vs_protocol_hist(ax, converged, protocol, dk)
    elif kc.size:
        edges: str | np.ndarray
        if dk and dk > 0 and k0 is not None:
            lo = math.floor((kc.min() - k0) / dk + 1e-9)
            hi = math.ceil((kc.max() - k0) / dk - 1e-9)
            edges = k0 + (np.arange(lo, hi + 2) - 0.5) * dk
        else:
            edges = "auto" if np.ptp(kc) > 0 else np.array([kc[0] - 0.5, kc[0] + 0.5])
        ax.hist(kc, bins=edges, color="tab:blue", alpha=0.75, edgecolor="white",
                label=f"runs with a crossing (n={kc.size})")
        mean, median = float(kc.mean()), float(np.median(kc))
        if abs(mean - median) <= 1e-12 * max(abs(mean), 1.0):  # one line, not two on top
            ax.axvline(mean, color="tab:red", lw=1.8, label=f"mean = median = {mean:.4g}")
        else:
            ax.axvline(mean, color="tab:red", lw=1.8, label=f"mean = {mean:.4g}")
            ax.axvline(median, color="tab:green", lw=1.8, ls="--",
                       label=f"median = {median:.4g}")
    else:
        ax.text(0.5, 0.6, "no run crossed the threshold", transform=ax.transAxes,
                ha="center", va="center", fontsize=11)
        ax.set_ylim(0.0, 1.0)
    # The K axis: the data's, or the grid's without data; a theory value off
    # the grid is named in the legend, not drawn (it would squash the data).
    if ax.patches:
        x_lo, x_hi = ax.get_xlim()
    elif k0 is not None and k1 is not None and k1 > k0:
        x_lo, x_hi = k0 - 0.5 * (dk or 0.0), k1 + 0.5 * (dk or 0.0)
    else:
        x_lo, x_hi = ax.get_xlim()
    on_grid_lo = x_lo if k0 is None else min(x_lo, k0)
    on_grid_hi = x_hi if k1 is None else max(x_hi, k1)
    shown: list[float] = []

    def mark(value: float, label: str, **style: Any) -> None:
        if on_grid_lo <= value <= on_grid_hi:
            ax.axvline(value, lw=1.6, label=label, **style)
            shown.append(value)
        else:
            ax.plot([], [], lw=1.6, label=f"{label} (beyond the K grid)", **style)

    thr = summary.threshold
    th = _theory_block(records, thr, summary, config)
    remark = ""
    if th is not None and th.applies:
        # Each theory's crossing of the threshold: what the measured Kc measures.
        # Only a store without crossings shows the onsets, labelled as onsets.
        crossings = any(th.spread(f"{name}_at_threshold") for name in _THEORY_LINES)
        what = f"$K$ at r = {thr:g}" if crossings else "onset (r leaves 0)"
        a2a = th.kc_all_to_all_at_threshold
        for labels, mean, varies, first in _theory_groups(th, crossings):
            _, color, style = _THEORY_LINES[first]
            if a2a is not None and crossings and abs(a2a - mean) <= 1e-9 * abs(mean):
                labels, a2a = [*labels, "all-to-all"], None  # one line, not two on top
            mark(mean, f"theory {' = '.join(labels)} {what} = {mean:.4g}"
                       + (" (mean over runs)" if varies else ""), color=color, ls=style)
        if a2a is not None:
            mark(a2a, f"all-to-all K at r = {thr:g}: {a2a:.4g}", color="tab:gray",
                 ls=(0, (3, 1, 1, 1)))
        if not any(th.spread(name) for name in _THEORY_LINES):
            remark = ("theory thresholds not stored (the runs were stored without them)"
                      if records else "")
    elif th is not None:
        remark = (f"theory does not apply (ω = {th.omega_dist})"
                  if th.omega_dist == OmegaDist.DEGREE else
                  f"theory does not apply: {th.why_not}")
    if shown:
        x_lo, x_hi = min([x_lo, *shown]), max([x_hi, *shown])
        pad = 0.03 * (x_hi - x_lo)
        x_lo, x_hi = x_lo - pad, x_hi + pad
    ax.set_xlim(x_lo, x_hi)
    _legend(fig, ax)
    _footer(fig, _censor_note(summary, records), remark)
    ax.set_xlabel(f"critical coupling $K_c$ [{K_UNITS}]")
    ax.set_ylabel("number of runs")
    from matplotlib.ticker import MaxNLocator
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if auto:
        title = ("Distribution of the interpolated $K_c$"
                 + (f" (crossing of r = {thr:g})" if thr is not None else "")
                 + ": converged vs original protocol")
    else:
        # an adiabatic study's Kc is its forward branch's (hysteresis.png has both)
        parts = [f"first K with r > {thr:g}"] if thr is not None else []
        parts += ["forward branch"] if _adiabatic(config) else []
        title = "Distribution of $K_c$" + (f" ({', '.join(parts)})" if parts else "")
    _titles(fig, ax, title, config, summary)
    return fig


def _adiabatic(config: Mapping[str, Any] | None) -> bool:
    return config is not None and config.get("sweep", "independent") == "adiabatic"


def plot_kc_hist(path: str | os.PathLike, records: Sequence[RunRecord],
                 summary: Summary, *, config: Mapping[str, Any] | None = None) -> None:
    """Histogram of the grid Kc of the runs with a crossing (ok, censored none/left).

    Bins are centred on the grid points (width = the grid spacing from
    ``summary.k_grid``) since the grid Kc only takes grid values. Vertical
    lines mark the mean and the median (from the runs plotted), and where the
    theory applies the means of the runs' kc_mf, kc_hmf, kc_qmf and the
    all-to-all K at r = threshold (``summary.theory``); where it does not,
    a remark says so. Below the axes,
    a note gives the numbers of left/right-censored and failed runs; with
    ``config`` a subtitle gives the study's parameters, and a partial study
    (``summary.partial``) is stamped in the title.
    """
    save_png(kc_hist_figure(records, summary, config), path)


def kc_convergence_figure(records: Sequence[RunRecord], config: Mapping[str, Any],
                          summary: Summary | None = None):
    """The Figure of :func:`plot_kc_convergence`, or None when no run has
    ``t_transient="auto"`` windows."""
    from kcbatch.analysis.converge import window_starts
    auto = [r for r in records if r.status == "ok" and r.kc_windows is not None]
    if not auto:
        return None
    dt = float(config["dt"])
    n_measure = steps_for(float(config["t_measure"]), dt, rounding="nearest")
    starts = window_starts(dt, float(config.get("t_max", 400.0)), n_measure)
    t = np.array([float(f"{n * dt:.12g}") for n in starts])
    kcw = np.array([r.kc_windows for r in auto], dtype=np.float64)      # [runs, W]
    fig = new_figure()
    ax = fig.add_subplot()
    for row in kcw:
        m = np.isfinite(row)
        ax.plot(t[m], row[m], color="tab:blue", lw=0.7, alpha=0.35, marker=".", ms=2)
    # a run that stopped keeps its last Kc: the median is over every run at each T
    held = kcw.copy()
    for j in range(1, held.shape[1]):
        gone = np.isnan(held[:, j])
        held[gone, j] = held[gone, j - 1]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN column: no crossing
        median = np.nanmedian(held, axis=0)
    ax.plot(t, median, color="tab:red", lw=2.2, label="median over runs (stopped runs "
                                                      "keep their last $K_c$)")
    ax.plot([], [], color="tab:blue", lw=0.7, label=f"one run (n={len(auto)})")
    ax.set_xscale("log", base=2)
    # ticks at the windows' transients (5, 10, 20, 40, ...), not at powers of 2
    from matplotlib.ticker import FixedLocator, NullLocator
    ax.xaxis.set_major_locator(FixedLocator(t.tolist()))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{v:g}" for v in t])
    ax.set_xlabel("transient T before the measurement window [time units]")
    ax.set_ylabel(f"interpolated $K_c$ [{K_UNITS}]")
    _legend(fig, ax)
    unconv = sum(1 for r in auto if r.converged is False)
    _footer(fig, f"{len(auto) - unconv} run(s) converged, {unconv} unconverged at "
                 f"t_max = {t[-1]:g}")
    _titles(fig, ax, "$K_c$ against the transient", config, summary)
    return fig


def plot_kc_convergence(path: str | os.PathLike, records: Sequence[RunRecord],
                        config: Mapping[str, Any],
                        summary: Summary | None = None) -> bool:
    """kc_convergence.png of a ``t_transient="auto"`` study: each ok run's
    interpolated Kc after each window against the window's transient (lines,
    log2 time axis) and their median, stopped runs holding their last value.
    Returns whether it was written (False, nothing written, without auto runs)."""
    fig = kc_convergence_figure(records, config, summary)
    if fig is None:
        return False
    save_png(fig, path)
    return True


def r_curves_figure(records: Sequence[RunRecord], k_values, threshold: float, *,
                    summary: Summary | None = None,
                    config: Mapping[str, Any] | None = None):
    """The Figure of :func:`plot_r_curves` (matplotlib, Agg canvas, not saved)."""
    k = np.asarray(k_values, dtype=np.float64).ravel()
    ok = [r for r in records if r.status == "ok"]
    fig = new_figure()
    ax = fig.add_subplot()
    if ok:
        rr = np.vstack([np.asarray(r.r, dtype=np.float64).ravel() for r in ok])
        if rr.shape[1] != k.size:
            raise ValueError(f"r has {rr.shape[1]} values per run, expected {k.size} (one per K)")
        p10, p50, p90 = np.percentile(rr, [10, 50, 90], axis=0)
        ax.fill_between(k, p10, p90, color="tab:blue", alpha=0.25, lw=0,
                        label="10–90% of runs")
        ax.plot(k, p50, color="tab:blue", lw=1.8, marker="." if k.size <= 60 else None,
                label=f"median over {len(ok)} ok runs")
    else:
        ax.text(0.5, 0.6, "no successful run", transform=ax.transAxes,
                ha="center", va="center", fontsize=11)
    kc = _crossing_kc(records)
    if kc.size:
        q25, med, q75 = (float(v) for v in np.percentile(kc, [25, 50, 75]))
        ax.axvspan(q25, q75, color="tab:green", alpha=0.15, lw=0,
                   label=f"$K_c$ 25–75% of runs [{q25:.4g}, {q75:.4g}]")
        ax.axvline(med, color="tab:green", lw=1.6,
                   label=f"$K_c$ median = {med:.4g} (n={kc.size})")
    ax.axhline(float(threshold), color="tab:red", ls="--", lw=1.2,
               label=f"threshold r = {float(threshold):g}")
    th = _theory_block(records, float(threshold), summary, config)
    remark = ""
    if th is not None and th.all_to_all_applies and th.omega_sigma is not None \
            and k.size and k[-1] > k[0]:
        fine = np.linspace(float(k[0]), float(k[-1]), _THEORY_CURVE_POINTS)
        ax.plot(fine, theory.r_all_to_all(fine, th.omega_dist, th.omega_sigma),
                color="black", ls=":", lw=1.6,
                label=f"all-to-all theory r(K) (N → ∞, ω {th.omega_dist})")
    elif th is not None and not th.applies and th.omega_dist == OmegaDist.DEGREE:
        remark = f"theory does not apply (ω = {th.omega_dist})"
    elif th is not None and th.all_to_all_why_not:
        remark = f"all-to-all r(K) not drawn: {th.all_to_all_why_not}"
    if k.size:
        lo, hi = float(k[0]), float(k[-1])
        if hi > lo:
            ax.set_xlim(lo, hi)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(f"coupling K [{K_UNITS}]")
    ax.set_ylabel("order parameter r (time average, dimensionless)")
    _legend(fig, ax)
    ax.grid(alpha=0.3)
    _footer(fig, _censor_note(summary, records), remark, _adaptive_note(config))
    _titles(fig, ax, "Order parameter r(K) over the ensemble"
            + (" (forward branch: K increasing)" if _adiabatic(config) else ""), config, summary)
    return fig


def _adaptive_note(config: Mapping[str, Any] | None) -> str:
    """Why r away from the crossing is of an earlier window (``converge="adaptive"``)."""
    if config is None or not is_auto(config.get("t_transient")) \
            or config.get("converge", "exhaustive") != "adaptive":
        return ""
    return ("--converge adaptive: each K's r is of the last window it was integrated in; "
            "couplings far from the threshold stop early, so away from the crossing the curve "
            "is an earlier transient's (--converge exhaustive integrates every K to the end)")


def plot_r_curves(path: str | os.PathLike, records: Sequence[RunRecord], k_values,
                  threshold: float, *, summary: Summary | None = None,
                  config: Mapping[str, Any] | None = None) -> None:
    """Median r(K) over the ok runs with a shaded 10-90% band and the threshold
    line; the grid Kc of the runs with a crossing marked on the K axis (median
    line, 25-75% band). Where it predicts the measured r(K) (coupling degree,
    ``summary.theory.all_to_all_applies``), the all-to-all r(K) of the
    theory on a fine K grid; otherwise a remark says why it is not drawn.
    Subtitle, partial stamp and censoring note as in :func:`plot_kc_hist`."""
    save_png(r_curves_figure(records, k_values, threshold, summary=summary, config=config),
              path)


def hysteresis_figure(records: Sequence[RunRecord], k_values, threshold: float, *,
                      summary: Summary | None = None,
                      config: Mapping[str, Any] | None = None):
    """The Figure of :func:`plot_hysteresis`, or None when no ok run has branches."""
    swept = [r for r in records if r.status == "ok" and r.r_backward is not None]
    if not swept:
        return None
    k = np.asarray(k_values, dtype=np.float64).ravel()
    fig = new_figure()
    ax = fig.add_subplot()
    for name, label, color, marker in (("r_forward", "forward (K increasing)", "tab:blue", ">"),
                                       ("r_backward", "backward (K decreasing)", "tab:red",
                                        "<")):
        rr = np.vstack([np.asarray(getattr(r, name), dtype=np.float64) for r in swept])
        p10, p50, p90 = np.percentile(rr, [10, 50, 90], axis=0)
        ax.fill_between(k, p10, p90, color=color, alpha=0.2, lw=0,
                        label=f"{label}: 10–90% of runs")
        ax.plot(k, p50, color=color, lw=1.8, marker=marker if k.size <= 60 else None, ms=4,
                label=f"{label}: median over {len(swept)} runs")
    ax.axhline(float(threshold), color="0.3", ls="--", lw=1.0,
               label=f"threshold r = {float(threshold):g}")
    h = None if summary is None else summary.hysteresis
    for name, label, color in (("kc_forward", "$K_c$ forward", "tab:blue"),
                               ("kc_backward", "$K_c$ backward", "tab:red")):
        med = None if h is None else getattr(h, name).median
        if med is not None:
            ax.axvline(med, color=color, ls=":", lw=1.4, label=f"{label} median = {med:.4g}")
    if k.size and k[-1] > k[0]:
        ax.set_xlim(float(k[0]), float(k[-1]))
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(f"coupling K [{K_UNITS}]")
    ax.set_ylabel("order parameter r (time average, dimensionless)")
    _legend(fig, ax)
    ax.grid(alpha=0.3)
    width = None if h is None else h.hysteresis_width.median
    area = None if h is None else h.loop_area.median
    _footer(fig, f"median hysteresis width {_num_or_na(width)}, median loop area "
                 f"{_num_or_na(area)} (∫(r_backward − r_forward) dK)")
    _titles(fig, ax, "Adiabatic sweep: forward and backward branches", config, summary)
    return fig


def _num_or_na(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def plot_hysteresis(path: str | os.PathLike, records: Sequence[RunRecord], k_values,
                    threshold: float, *, summary: Summary | None = None,
                    config: Mapping[str, Any] | None = None) -> bool:
    """hysteresis.png of an adiabatic study: the median r of the forward and
    the backward branch over the ok runs, each with its 10-90% band, the
    threshold and the medians of Kc forward and backward. Returns whether it
    was written (False, nothing written, for the independent protocol)."""
    fig = hysteresis_figure(records, k_values, threshold, summary=summary, config=config)
    if fig is None:
        return False
    save_png(fig, path)
    return True
