"""The chi peak's noise across runs: the fitted peak (kc_chi) against the
three-point parabola it replaced, on the same chi curves.

    PYTHONPATH=. python bench/chi_noise.py [--runs 40] [--nodes 1000] [--out DIR]

Studies (CPU, float32, the default grid K in linspace(0, 5, 50), dt 0.05,
5 + 5, sample every 10; ``refine=1`` gives the converged protocol's chi with a
single window and no refinement round, the bracket being 0.1 wide): BA m=3,
power-law gamma=3 with m=3 and m=30, and m=30 on a grid starting above its
peak. Per study it prints the runs with a peak,
the censored ones, the median, the interquartile range and the standard
deviation across runs of each estimator, and the median kc_chi_err.
docs/design.md step 6 and the README quote its output.
"""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np

from kcbatch.analysis.converge import chi_peak
from kcbatch.protocol.config import StudyConfig
from kcbatch.run.study import run_study

MODELS = {"BA m=3": dict(graph="ba", m=3),
          "power-law gamma=3 m=3": dict(graph="powerlaw", gamma=3.0, m=3),
          "power-law gamma=3 m=30": dict(graph="powerlaw", gamma=3.0, m=30),
          # a grid that starts above the peak (K_min = 1.6, dK = 0.1)
          "power-law gamma=3 m=30, K in [1.6, 5]": dict(graph="powerlaw", gamma=3.0, m=30,
                                                        k_min=1.6, k_max=5.0, k_num=35)}


def parabola_peak(k: np.ndarray, chi: np.ndarray) -> float:
    """The three-point estimator: the vertex of the parabola through the
    largest chi and its two grid neighbours (clamped to them), the grid K of
    the largest chi at the grid's end."""
    i = int(np.argmax(chi))
    if i == 0 or i == k.size - 1:
        return float(k[i])
    x0, x1, x2 = (float(v) for v in k[i - 1:i + 2])
    y0, y1, y2 = (float(v) for v in chi[i - 1:i + 2])
    d0, d2 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)
    curv = (d2 - d0) / (x2 - x0)
    if not curv < 0:
        return x1
    return min(max(0.5 * (x0 + x1) - d0 / (2.0 * curv), x0), x2)


def spread(x: np.ndarray) -> str:
    if x.size == 0:
        return "n=0"
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return (f"n={x.size:3d} median {med:.3f} IQR {q3 - q1:.3f} std {np.std(x):.3f} "
            f"range [{x.min():.3f}, {x.max():.3f}]")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    root = args.out or Path(tempfile.mkdtemp())
    for label, model in MODELS.items():
        cfg = StudyConfig(runs=args.runs, nodes=args.nodes, seed=2026, device="cpu",
                          refine=1.0, out=root / f"study{len(list(root.glob('study*')))}",
                          **model)
        res = run_study(cfg)
        k = res.k_values
        ok = [rec for rec in res.records if rec.status == "ok"]
        n_samples = cfg.spec.n_samples
        old, new, err, cens = [], [], [], {"left": 0, "right": 0, "flat": 0}
        for rec in ok:
            chi = rec.nodes * np.asarray(rec.r_std) ** 2
            old.append(parabola_peak(k, chi))
            p = chi_peak(k, chi, n_samples)
            if p.censored == "none":
                new.append(p.kc)
                err.append(p.err)
            else:
                cens[p.censored] += 1
        print(f"{label} (N={args.nodes}, {len(ok)} ok runs)")
        print(f"  three-point parabola: {spread(np.array(old))}; at K_min "
              f"{sum(1 for v in old if v == k[0])}")
        print(f"  fitted peak:          {spread(np.array(new))}; censored {cens}; "
              f"median kc_chi_err {np.median(err) if err else math.nan:.3f}")


if __name__ == "__main__":
    main()
