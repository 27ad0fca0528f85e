"""Is ``--dt auto`` accurate? Kc at the step auto picks against a dt/4 reference.

For each case (BA with degree coupling, Erdos-Renyi and power law with raw
coupling, the default K grid 0..5 with 50 points) the study runs twice on the
same networks, frequencies and initial phases: with ``dt = "auto"`` and with
an explicit dt a quarter of the one auto chose (sampling at the same times:
``sample_interval`` fixed). Each run's interpolated crossing ``kc_interp`` is
compared; the check passes when every run's |Kc_auto - Kc_ref| <= TOL.

    python bench/bench_dt_auto.py --nodes 300 --runs 4 --device cpu
    python bench/bench_dt_auto.py --nodes 2000 --runs 16 --device gpu

Prints one line per case: the dt auto chose, what set it, the largest and
mean |dKc|, and PASS/FAIL. Exit status 1 when a case fails.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from kcbatch.protocol.config import StudyConfig
from kcbatch.run.study import run_study

TOL = 0.005
CASES = {"ba-degree": dict(graph="ba", coupling="degree"),
         "er-raw": dict(graph="er", coupling="raw"),
         "powerlaw-raw": dict(graph="powerlaw", coupling="raw")}


def kc_pair(case: str, nodes: int, runs: int, device: str, t_transient: float,
            t_measure: float, seed: int) -> tuple[float, float, np.ndarray, np.ndarray, str]:
    """(dt auto, dt reference, Kc at auto [runs], Kc at the reference [runs], auto's notice)."""
    common = dict(CASES[case], nodes=nodes, runs=runs, m=3, seed=seed, device=device,
                  precision="float64", t_transient=t_transient, t_measure=t_measure,
                  sample_interval=0.5, batch=min(runs, 8))
    auto = run_study(StudyConfig(**common, dt="auto"))
    dt = auto.config.dt_value
    ref = run_study(StudyConfig(**common, dt=dt / 4))
    kc = np.array([r.kc_interp if r.kc_interp is not None else np.nan for r in auto.records])
    kc_ref = np.array([r.kc_interp if r.kc_interp is not None else np.nan
                       for r in ref.records])
    said = next((n for n in auto.notices if n.startswith("dt auto: ") and "set by" in n), "")
    return dt, dt / 4, kc, kc_ref, said


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=300)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--t-transient", type=float, default=20.0)
    ap.add_argument("--t-measure", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args(argv)
    failed = False
    for case in args.cases.split(","):
        t0 = time.perf_counter()
        dt, dt_ref, kc, kc_ref, said = kc_pair(case, args.nodes, args.runs, args.device,
                                               args.t_transient, args.t_measure, args.seed)
        diff = np.abs(kc - kc_ref)
        ok = bool(np.all(np.isfinite(diff)) and np.all(diff <= TOL))
        failed |= not ok
        by = said.split("set by ")[1].split(" ")[0] if "set by " in said else "?"
        print(f"{case}: N={args.nodes} runs={args.runs} dt auto={dt:.5g} (set by {by}), "
              f"ref={dt_ref:.5g}; mean Kc {np.nanmean(kc):.4f} vs {np.nanmean(kc_ref):.4f}; "
              f"|dKc| max {np.nanmax(diff):.2e} mean {np.nanmean(diff):.2e} "
              f"(tol {TOL}): {'PASS' if ok else 'FAIL'} [{time.perf_counter() - t0:.0f} s]",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
