"""A complete scan's own outputs: ``scan.csv``, ``kc_vs_<param>.png`` and, for
``nodes`` scans of at least 4 values, ``fit.json`` (the finite-size fit of
:mod:`kcbatch.analysis.finite_size`). Every number comes from the points' ``summary.json``."""
from __future__ import annotations

import csv
import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kcbatch.analysis.finite_size import fit_power_law, model, sigma_from_ci
from kcbatch.export.study_outputs import (
    atomic_file,
    csv_cell,
    jsonable,
    new_figure,
    save_png,
)
from kcbatch.protocol.choices import is_auto
from kcbatch.results.scan_layout import ScanPlan, point_out

__all__ = ["FIT_FILE", "TABLE", "available_estimators", "fit_points", "figure_name",
           "kc_vs_param_figure", "scan_rows", "write_scan_outputs"]

TABLE = "scan.csv"
# How far past the largest size the fit is drawn (dotted), as a factor.
EXTENSION = 1.5
FIT_FILE = "fit.json"
# The fit needs 3 parameters and one degree of freedom.
MIN_FIT_POINTS = 4
COUNT_COLUMNS = ("runs", "ok", "crossings", "censored_left", "censored_right", "failed")
ESTIMATOR_COLUMNS = ("n", "mean", "ci95_lo", "ci95_hi", "median")


def figure_name(param: str) -> str:
    return f"kc_vs_{param}.png"


def available_estimators(config: Mapping[str, Any]) -> list[str]:
    """The estimators a study of ``config`` produces (summary.estimators keys):
    grid and interpolated always, refined with ``refine``, the chi peak with
    the converged protocol (``t_transient`` auto or ``refine``)."""
    keys = ["grid", "interpolated"]
    if config.get("refine") is not None:
        keys.append("refined")
    if config.get("refine") is not None or is_auto(config.get("t_transient")):
        keys.append("chi_peak")
    return keys


def primary_estimator(config: Mapping[str, Any]) -> str:
    """The estimator plotted and fitted: the refined crossing when there is one
    (the finest), else the interpolated crossing."""
    return "refined" if config.get("refine") is not None else "interpolated"


def _summary(point: Path) -> dict[str, Any]:
    return json.loads((point / "summary.json").read_text(encoding="utf-8"))["summary"]


def scan_rows(plan: ScanPlan) -> list[dict[str, Any]]:
    """One row per value, in the scan's order: ``param``, ``value``, the counts
    and per estimator ``<est>_n``, ``_mean``, ``_ci95_lo``, ``_ci95_hi``,
    ``_median`` (None where no run has the estimate), ``kc_qmf_mean`` (the
    quenched mean-field onset of the value's networks, None where the theory
    does not apply), ``kc_hmf_at_threshold_mean`` and ``kc_qmf_at_threshold_mean``
    (the heterogeneous and quenched mean fields' crossings of the threshold:
    the measured Kc's like-for-like counterparts; None where the theory does
    not apply or the studies did not record them), ``dir`` (relative to the scan)."""
    rows = []
    for value, cfg in plan.points():
        out = point_out(cfg)
        s = _summary(out)
        row: dict[str, Any] = {"param": plan.param, "value": value}
        row.update({c: s[c] for c in COUNT_COLUMNS})
        for est in available_estimators(plan.base.to_dict()):
            e = s["estimators"][est]
            row.update({f"{est}_{c}": e[c] for c in ESTIMATOR_COLUMNS})
        theory = s.get("theory") or {}
        for key in ("kc_qmf", "kc_hmf_at_threshold", "kc_qmf_at_threshold"):
            spread = theory.get(key)
            row[f"{key}_mean"] = None if spread is None else spread["mean"]
        row["dir"] = out.name
        rows.append(row)
    return rows


def write_scan_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    with atomic_file(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(list(rows[0]))
        for row in rows:
            w.writerow([csv_cell(v) for v in row.values()])


def fit_points(rows: Sequence[Mapping[str, Any]], est: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(N, Kc, sigma, reasons) of the rows that can enter the fit: a mean and a CI
    of nonzero width (sigma = CI half-width / 1.96); ``reasons`` names each row left out."""
    n, kc, sig, why = [], [], [], []
    for row in rows:
        mean, lo, hi = row[f"{est}_mean"], row[f"{est}_ci95_lo"], row[f"{est}_ci95_hi"]
        if mean is None or lo is None or hi is None:
            why.append(f"{row['param']}={row['value']}: no run crosses")
        elif not hi > lo:
            why.append(f"{row['param']}={row['value']}: its CI has no width "
                       f"({row[f'{est}_n']} crossing runs)")
        else:
            n.append(float(row["value"]))
            kc.append(float(mean))
            sig.append(sigma_from_ci(float(lo), float(hi)))
    return np.array(n), np.array(kc), np.array(sig), why


def fit_rows(rows: Sequence[Mapping[str, Any]], est: str) -> dict[str, Any]:
    """fit.json's content: ``fitted`` and either the fit (FitResult.to_dict) or
    ``reason``; ``estimator`` and ``sigma`` (the weights' standard errors) in both.
    The limit is compared with the heterogeneous mean field's crossing of the
    threshold at the largest size scanned (:func:`theory_for_fit`)."""
    n, kc, sig, why = fit_points(rows, est)
    doc: dict[str, Any] = {"model": "Kc(N) = Kc_inf + a * N^-b", "estimator": est,
                           "excluded": why, "sigma": sig.tolist()}
    if n.size < MIN_FIT_POINTS:
        return {**doc, "fitted": False,
                "reason": f"the fit needs at least {MIN_FIT_POINTS} points with a CI, "
                          f"{n.size} have one" + (f" ({'; '.join(why)})" if why else "")}
    theory, label = theory_for_fit(rows)
    return {**doc, "fitted": True,
            **fit_power_law(n, kc, sig, theory=theory, theory_label=label).to_dict()}


def theory_for_fit(rows: Sequence[Mapping[str, Any]]) -> tuple[float | None, str]:
    """The like-for-like theory value a ``nodes`` scan's Kc_inf is held against:
    the heterogeneous mean field's crossing of the threshold (mean over the
    networks) at the largest size that has one, and its label; (None, "") when
    no size has one. Mean-field theory neglects local-field fluctuations, so on
    sparse networks the measured limit is expected above it by O(1/<k>)."""
    have = [r for r in rows if r.get("kc_hmf_at_threshold_mean") is not None]
    if not have:
        return None, ""
    top = max(have, key=lambda r: float(r["value"]))
    return (float(top["kc_hmf_at_threshold_mean"]),
            f"the HMF crossing at {top['param']} = {top['value']}")


def kc_vs_param_figure(rows: Sequence[Mapping[str, Any]], param: str, est: str,
                       fit: Mapping[str, Any] | None, subtitle: str = ""):
    """Kc (the ``est`` mean, its 95% CI as error bars, the median as open
    circles) against the parameter; log x for ``nodes``; the fit and Kc_inf
    (with its ±1 sigma band) when ``fit`` is a fitted fit.json."""
    fig = new_figure()
    ax = fig.add_subplot()
    x = np.array([float(r["value"]) for r in rows])
    have = [r[f"{est}_mean"] is not None for r in rows]
    xs = x[have]
    mean = np.array([r[f"{est}_mean"] for r in rows if r[f"{est}_mean"] is not None], float)
    lo = np.array([r[f"{est}_ci95_lo"] for r in rows if r[f"{est}_mean"] is not None], float)
    hi = np.array([r[f"{est}_ci95_hi"] for r in rows if r[f"{est}_mean"] is not None], float)
    med = np.array([r[f"{est}_median"] for r in rows if r[f"{est}_mean"] is not None], float)
    ax.errorbar(xs, mean, yerr=[mean - lo, hi - mean], fmt="o", color="tab:blue", capsize=3,
                label=f"mean Kc ({est}), 95% CI")
    ax.plot(xs, med, "o", mfc="none", color="tab:orange", label="median Kc")
    # The quenched mean field's crossing of the threshold (what Kc measures);
    # studies that did not record crossings show its onset, labelled as one.
    crossing = any(r.get("kc_qmf_at_threshold_mean") is not None for r in rows)
    key = "kc_qmf_at_threshold_mean" if crossing else "kc_qmf_mean"
    qmf = [(float(r["value"]), r[key]) for r in rows if r.get(key) is not None]
    if qmf:
        ax.plot(*zip(*qmf, strict=True), "v", color="gray",
                label=("quenched mean field's crossing of the threshold (theory)" if crossing
                       else "onset, quenched mean field (theory; not a Kc)"))
    if param == "nodes":
        ax.set_xscale("log")
    ys = [lo.min(initial=np.inf), hi.max(initial=-np.inf)] + [k for _, k in qmf]
    if fit is not None and fit.get("fitted"):
        # The fit over the data's sizes, and a short dotted extension (x1.5)
        # only: beyond the data the model is extrapolation.
        grid = np.geomspace(x.min(), x.max(), 200)
        beyond = np.geomspace(x.max(), x.max() * EXTENSION, 20)
        curve = model(grid, fit["kc_inf"], fit["a"], fit["b"])
        ax.plot(grid, curve, "--", color="black",
                label=f"fit: {fit['kc_inf']:.3g} {fit['a']:+.3g} N^-{fit['b']:.2f}")
        ax.plot(beyond, model(beyond, fit["kc_inf"], fit["a"], fit["b"]), ":", color="black")
        # At b's lower edge Kc_inf is undetermined: the constant fit stands for it.
        low_edge = fit["b_at_edge"] and fit["b"] < 1.0
        k, e = ((fit["constant"], fit["constant_err"]) if low_edge
                else (fit["kc_inf"], fit["kc_inf_err"]))
        ax.axhline(k, color="gray", lw=0.8)
        ax.axhspan(k - e, k + e, color="gray", alpha=0.2,
                   label=(f"size-independent Kc = {k:.3g} ± {e:.2g}" if low_edge
                          else f"Kc_inf = {k:.3g} ± {e:.2g}"))
        ys += [float(np.min(curve)), float(np.max(curve)), k]
        # The verdict the console and fit.json print, word for word.
        ax.set_title(textwrap.fill(fit["verdict"], 100), fontsize=8)
    elif fit is not None:
        ax.set_title(f"no fit: {fit['reason']}"[:110], fontsize=8)
    if np.all(np.isfinite(ys)):
        pad = 0.08 * (max(ys) - min(ys)) or 0.05 * abs(max(ys)) or 0.1
        ax.set_ylim(min(ys) - pad, max(ys) + pad)  # the data, not an exploding error band
    missing = [r["value"] for r, h in zip(rows, have, strict=True) if not h]
    if missing:
        fig.supxlabel(f"no crossing run at {param} = {', '.join(map(str, missing))}", fontsize=8)
    ax.set_xlabel(param)
    ax.set_ylabel("Kc [rad / time unit]")
    ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"Kc against {param}" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    return fig


def write_scan_outputs(plan: ScanPlan) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Write scan.csv, the figure and (nodes, at least 4 values) fit.json into
    ``plan.out``; returns (rows, fit.json's content or None)."""
    rows = scan_rows(plan)
    write_scan_csv(plan.out / TABLE, rows)
    config = plan.base.to_dict()
    est = primary_estimator(config)
    fit = None
    if plan.param == "nodes" and len(rows) >= MIN_FIT_POINTS:
        fit = fit_rows(rows, est)
        text = json.dumps(jsonable(fit), indent=2, allow_nan=False) + "\n"
        with atomic_file(plan.out / FIT_FILE, "w", encoding="utf-8") as fh:
            fh.write(text)
    fig = kc_vs_param_figure(rows, plan.param, est, fit, subtitle=_subtitle(plan))
    save_png(fig, plan.out / figure_name(plan.param))
    return rows, fit


def _subtitle(plan: ScanPlan) -> str:
    """The fixed parameters of the scan in one line (the scanned one left out)."""
    c = plan.base
    # the model's own parameter, unless it is the one scanned
    model = {"ws": f"graph ws (p={c.ws_p:g})" if plan.param != "ws_p" else "graph ws",
             "powerlaw": (f"graph powerlaw (γ={c.gamma:g})" if plan.param != "gamma"
                          else "graph powerlaw")}
    parts = {"graph": model.get(c.graph, f"graph {c.graph}"),
             "nodes": f"N={c.nodes}", "m": f"m={c.m}",
             "coupling": f"coupling {c.coupling}",
             "omega_sigma": f"ω {c.omega_dist} σ={c.omega_sigma:g}",
             "k_num": f"K = {c.k_min:g}…{c.k_max:g} ({c.k_num})",
             "t_transient": f"transient {c.t_transient}", "runs": f"runs {c.runs}",
             "seed": f"seed {c.seed}"}
    return ", ".join(text for key, text in parts.items() if key != plan.param)
