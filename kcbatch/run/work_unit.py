"""The work unit of a study: one produced batch -> its per-run records.

:func:`compute_records` is what a study does with a batch once the producer has
generated and packed it (``kcbatch.inputs.pipeline.make_batch``): integrate it on an
engine under the study's protocol and turn the samples into
:class:`~kcbatch.analysis.records.RunRecord` s. It is a pure function of the config's
protocol fields and the batch's runs (section 2 of docs/design.md), so a
single-process study and any other executor give the same records.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from kcbatch.analysis.converge import estimate_kc, window_starts
from kcbatch.analysis.crossing import make_record, record_from_means
from kcbatch.analysis.records import ConvergedPart, RunRecord, SweepPart
from kcbatch.analysis.sweep import SweepSamples, loop_measures, run_sweep
from kcbatch.engines import Engine
from kcbatch.inputs.pipeline import Produced
from kcbatch.protocol.config import StudyConfig

# Called with the RK4 steps of the batch done so far (``longest_steps(cfg)`` in all).
StepProgress = Callable[[int], None]


def longest_steps(cfg: StudyConfig) -> int:
    """RK4 steps of the longest possible schedule of one network (the progress
    bar's unit; a batch whose networks all stop early jumps ahead when it is
    written)."""
    spec = cfg.spec
    if cfg.adiabatic:
        return 2 * cfg.k_num * (cfg.sweep_transient_steps + spec.n_measure)
    if not cfg.auto_transient:
        return spec.n_steps
    return window_starts(spec.dt, cfg.t_max, spec.n_measure)[-1] + spec.n_measure


def compute_records(engine: Engine, item: Produced, cfg: StudyConfig,
                    progress: StepProgress | None = None) -> tuple[list[RunRecord], float]:
    """Integrate ``item.batch`` under ``cfg``'s protocol on ``engine``.

    Returns ``(records, seconds)``: one record per run of ``item.runs`` (in that
    order, with their network files' names where the study reads files) and the
    engine's wall seconds for the batch."""
    spec = cfg.spec
    t0 = time.perf_counter()
    if cfg.converged_protocol:
        estimates = estimate_kc(
            engine, item.batch, cfg.k_values, dt=spec.dt,
            t_transient=cfg.t_transient, t_measure=cfg.t_measure,
            sample_every=spec.sample_every, threshold=cfg.threshold,
            refine=cfg.refine, refine_points=cfg.refine_points,
            kc_tol=cfg.kc_tol, t_max=cfg.t_max, converge=cfg.converge, progress=progress,
            spec=spec)
        seconds = time.perf_counter() - t0
        records = converged_records(item, estimates, cfg, seconds=seconds / len(item.runs))
    elif cfg.adiabatic:
        branches = run_sweep(engine, item.batch, item.batch.couplings, dt=spec.dt,
                             n_transient=cfg.sweep_transient_steps, n_measure=spec.n_measure,
                             sample_every=spec.sample_every, progress=progress)
        seconds = time.perf_counter() - t0
        records = sweep_records(item, branches, cfg, seconds=seconds / len(item.runs))
    else:
        k_values = cfg.k_values
        samples = engine.integrate(item.batch, spec, progress=progress)
        seconds = time.perf_counter() - t0
        records = [
            make_record(run=run, seed_material=item.seed_material[j], stats=item.stats[j],
                        samples=samples[j], n_first_half=spec.n_first_half,
                        k_values=k_values, threshold=cfg.threshold,
                        seconds=seconds / len(item.runs),
                        input_problem=item.input_problems[j])
            for j, run in enumerate(item.runs)]
    records = [_with_source(rec, src) for rec, src in zip(records, item.sources, strict=True)]
    return records, seconds


def _optional(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def converged_records(item: Produced, est, cfg: StudyConfig, *,
                      seconds: float) -> list[RunRecord]:
    """The RunRecords of one produced batch ``item`` from its
    :class:`kcbatch.analysis.converge.KcEstimates` ``est``: r, kc, kc_interp, brackets and
    stationarity of the final window (as :func:`kcbatch.analysis.crossing.make_record` reads
    them), plus the converged protocol's fields (RunRecord's docstring)."""
    out = []
    k_values = cfg.k_values
    for j, run in enumerate(item.runs):
        rec = record_from_means(run=run, seed_material=item.seed_material[j],
                                stats=item.stats[j], r=est.r[j], r_first=est.r_first[j],
                                r_second=est.r_second[j], r_std=est.r_std[j],
                                k_values=k_values, threshold=cfg.threshold,
                                seconds=seconds, input_problem=item.input_problems[j])
        ok = rec.status == "ok"
        out.append(dataclasses.replace(rec, convergence=ConvergedPart(
            t_transient_used=float(est.t_transient[j]), converged=bool(est.converged[j]),
            kc_protocol=_optional(est.kc_windows[j, 0]) if ok else None,
            kc_refined=_optional(est.kc_refined[j]) if ok else None,
            kc_chi=_optional(est.kc_chi[j]) if ok else None,
            kc_chi_err=_optional(est.kc_chi_err[j]) if ok else None,
            kc_chi_censored=str(est.kc_chi_censored[j]) if ok else None,
            kc_sigma=_optional(est.kc_sigma[j]) if ok else None,
            kc_windows=np.array(est.kc_windows[j]) if est.auto else None,
            work_windows=int(est.work[j]), work_refine=int(est.refine_work[j]),
            work_plain=int(est.plain_work[j]))))
    return out


def sweep_records(item: Produced, samples: SweepSamples, cfg: StudyConfig, *,
                  seconds: float) -> list[RunRecord]:
    """The RunRecords of one produced batch ``item`` swept adiabatically: r,
    kc and the other fields of :func:`kcbatch.analysis.crossing.make_record` from the forward
    branch (so kc is kc_forward), plus both branches and the loop
    (RunRecord's docstring). A run non-finite on either branch is failed."""
    spec = cfg.spec
    k = cfg.k_values
    out = []
    for j, run in enumerate(item.runs):
        rec = make_record(run=run, seed_material=item.seed_material[j], stats=item.stats[j],
                          samples=samples.forward[j], n_first_half=spec.n_first_half,
                          k_values=k, threshold=cfg.threshold, seconds=seconds,
                          input_problem=item.input_problems[j])
        with np.errstate(all="ignore"):
            r_backward = samples.backward[j].mean(axis=1)
        if rec.status == "ok" and not np.all(np.isfinite(r_backward)):
            first = int(np.flatnonzero(~np.isfinite(r_backward))[-1])
            rec = dataclasses.replace(
                rec, status="failed", kc=None, kc_interp=None, censored="none",
                bracket_lo=None, bracket_hi=None, stationarity=None,
                fail_reason=(f"non-finite order parameter on the backward branch in "
                             f"{int(np.sum(~np.isfinite(r_backward)))} of {k.size} (K) "
                             f"systems; first at K={float(k[first]):.6g} (index {first})"))
        part = SweepPart(r_forward=rec.r.copy(), r_backward=r_backward)
        if rec.status == "ok":
            loop = loop_measures(k, rec.r, r_backward, cfg.threshold)
            part = dataclasses.replace(part, kc_forward=loop.kc_forward,
                                       kc_backward=loop.kc_backward,
                                       hysteresis_width=loop.width, loop_area=loop.loop_area)
        out.append(dataclasses.replace(rec, sweep=part))
    return out


def _with_source(rec: RunRecord, source: tuple[str, str] | None) -> RunRecord:
    if source is None:
        return rec
    return dataclasses.replace(rec, graph_file=source[0], graph_sha256=source[1])
