#!/usr/bin/env python3
"""Converged + refined Kc on a GPU: time per network at the default size.

    python bench/gpu_find_kc.py [--networks 128] [--batch 64] [--converge adaptive|exhaustive]
                                [--out FILE.json]

Generates the first ``--networks`` runs of the default study (seed 1: BA N=1e4,
m=3, omega ~ N(0, 0.5), 50 K in [0, 5]), packs them ``--batch`` at a time and
times ``converge.estimate_kc`` with ``t_transient="auto"``, ``refine=0.005`` and
``--converge`` (system-steps of the windows, the refinement and the plain protocol
beside the times)
against the plain protocol on the same batches, on device gpu (after a warm-up
batch that compiles the kernels; every timing ends with the samples on the host,
so the device is synchronised). Writes the figures as JSON. The target is the
1000-run study in <= 60 s on one H100; this script gives the per-network
cost to extrapolate from.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from kcbatch import StudyConfig
from kcbatch.analysis.converge import estimate_kc
from kcbatch.engines import get_engine
from kcbatch.inputs.pipeline import make_batch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--networks", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--converge", choices=("adaptive", "exhaustive"), default="adaptive")
    args = ap.parse_args()
    cfg = StudyConfig(seed=1, device="gpu")
    engine = get_engine("gpu")
    k = cfg.k_values
    warm = make_batch([0], cfg).batch
    engine.integrate(warm, cfg.spec)
    out = {"networks": args.networks, "batch": args.batch, "converge": args.converge,
           "plain_s": 0.0, "auto_refine_s": 0.0,
           "work_auto": 0, "work_refine": 0, "work_plain": 0, "converged": 0,
           "t_transient_used": []}
    for start in range(0, args.networks, args.batch):
        runs = list(range(start, min(args.networks, start + args.batch)))
        batch = make_batch(runs, cfg).batch
        t0 = time.perf_counter()
        engine.integrate(batch, cfg.spec)
        out["plain_s"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        est = estimate_kc(engine, batch, k, dt=cfg.dt, t_transient="auto",
                          t_measure=cfg.t_measure, sample_every=cfg.sample_every,
                          threshold=cfg.threshold, refine=0.005, converge=args.converge)
        out["auto_refine_s"] += time.perf_counter() - t0
        out["work_auto"] += int(est.work.sum())
        out["work_refine"] += int(est.refine_work.sum())
        out["work_plain"] += int(est.plain_work.sum())
        out["converged"] += int(np.sum(est.converged))
        out["t_transient_used"] += [float(t) for t in est.t_transient]
        print(f"runs {runs[0]}-{runs[-1]}: plain {out['plain_s']:.2f} s, auto+refine "
              f"{out['auto_refine_s']:.2f} s so far", flush=True)
    n = args.networks
    out["plain_s_per_1000"] = out["plain_s"] / n * 1000
    out["auto_refine_s_per_1000"] = out["auto_refine_s"] / n * 1000
    out["median_t_transient_used"] = float(np.median(out["t_transient_used"]))
    print(json.dumps({k: v for k, v in out.items() if k != "t_transient_used"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
