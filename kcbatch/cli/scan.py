"""``kcbatch scan``: a study per value of one parameter, the table, the figure, the fit."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kcbatch.cli.app import main
from kcbatch.cli.errors import fail_io, io_message, one_line_errors
from kcbatch.cli.options import option_flags, study_config, study_options
from kcbatch.cli.prewarm import prewarm_plots
from kcbatch.cli.scheduler_options import scheduler_options, scheduler_spec
from kcbatch.cli.signals import StopOnSignal
from kcbatch.protocol.config import ConfigError, load_toml

if TYPE_CHECKING:
    from kcbatch.engines import ResolvedDevice


@main.command()
@click.option("--param", "param", default=None, metavar="NAME",
              help="The study parameter to vary: nodes, m, omega_sigma, gamma, t_transient, ...")
@click.option("--values", "values", default=None, metavar="V1,V2,...",
              help="Its values, separated by commas (at least 2, no repeats).")
@study_options
@click.option("--fast-math", "fast_math", is_flag=True, default=None,
              help="GPU float32: use the __sincosf intrinsic (|dr| <= 1e-4).")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Directory of the scan: one sub-study per value in DIR/NAME=V/, "
                   "scan.csv, kc_vs_NAME.png.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="TOML file with study parameters (flags override it).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Finish the scan stored in DIR.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@scheduler_options
def scan(param, values, out, config_file, resume_dir, fast_math, quiet, scheduler,
         scheduler_file, **options):
    """Scan one parameter: a complete study per value, every one with the same seed.

    Takes every option of 'kcbatch run' for the studies. Each value's study is
    in DIR/NAME=V/ (resume or report it on its own); DIR/scan.csv has a row
    per value, DIR/kc_vs_NAME.png plots Kc against it, and a nodes scan of at
    least 4 values fits Kc(N) = Kc_inf + a N^-b (DIR/fit.json).

    \b
    Example:  kcbatch scan --param nodes --values 250,500,1000,2000 --runs 16 --out fss/
    """
    from kcbatch.engines import resolve_device
    from kcbatch.results.scan_layout import check_param, check_values, load_scan, parse_values
    from kcbatch.run.plan import check_out, check_paths
    from kcbatch.run.scan import create_scan, rebase

    with one_line_errors():
        spec = scheduler_spec(scheduler, scheduler_file)
        flags = option_flags(options)
        if fast_math:
            flags["fast_math"] = True
        if resume_dir is not None:
            plan = _resumed(resume_dir, param, values, out, config_file, flags, load_scan,
                            rebase)
        else:
            if param is None or values is None or out is None:
                missing = [f for f, v in (("--param", param), ("--values", values),
                                          ("--out", out)) if v is None]
                raise ConfigError("scan", " ".join(missing), "a new scan needs --param NAME, "
                                  "--values V1,V2,... and --out DIR (or --resume DIR)")
            check_out(Path(out))  # before any work: a directory that can be made here
            check_param(param)
            if param in flags:
                raise ConfigError(param, flags[param],
                                  f"must be left out: --param {param} varies it over --values")
            parsed = parse_values(param, values)
            base = load_toml(config_file) if config_file else {}
            base.pop("out", None)
            # The base holds the first value, so that a base valid only for the
            # scanned values (e.g. --param m with small --nodes) is accepted.
            cfg = check_paths(study_config({**base, param: parsed[0]}, flags))
            check_values(cfg, param, parsed)
        # The scan's one resolution: every value's study uses it.
        resolved = resolve_device((plan.base if resume_dir is not None else cfg).device)
    if resume_dir is None:
        if cfg.seed is None:
            from kcbatch.protocol.seeding import draw_seed
            cfg = cfg.resolved(seed=draw_seed())
            click.echo(f"seed: {cfg.seed} (drawn; repeat with --seed {cfg.seed})", err=True)
        with one_line_errors():
            plan = create_scan(cfg, param, parsed, out)
    _run(plan, quiet, spec, resolved)


def _resumed(resume_dir, param, values, out, config_file, flags, load_scan, rebase):
    """The stored scan of ``resume_dir`` with the flags that say how to compute."""
    if resume_dir == "":
        raise ConfigError("resume", "", "must be the directory of a stored scan, not empty")
    for name, given in (("param", param), ("values", values), ("config", config_file)):
        if given is not None:
            raise ConfigError(name, str(given),
                              "cannot be combined with --resume (the stored scan's is used)")
    if out is not None and Path(out) != Path(resume_dir):
        raise ConfigError("out", str(out), f"must be the resumed directory {resume_dir}")
    plan = load_scan(resume_dir)
    if plan.param in flags:
        raise ConfigError(plan.param, flags[plan.param],
                          f"must be left out: the scan in {resume_dir} varies {plan.param}")
    stored = {k: v for k, v in plan.base.to_dict().items() if k != "out"}
    return rebase(plan, study_config(stored, flags))


def _run(plan, quiet: bool, spec=None, device: ResolvedDevice | None = None) -> None:
    from kcbatch.run.scan import run_scan

    n = len(plan.values)

    def on_point(i, value, state) -> None:
        what = {"done": "complete, skipped", "partial": "resuming",
                "missing": "starting"}[state]
        click.echo(f"[{i + 1}/{n}] {plan.param}={value}: {what} ({plan.point_config(value).out}/)",
                   err=True)

    def on_done(value, point) -> None:
        click.echo(f"    {plan.param}={value}: {point.computed} runs in {point.elapsed:.1f} s, "
                   f"device {point.device}, batch {point.batch}", err=True)

    resume = f"kcbatch scan --resume {plan.out}" + ("" if spec is None else f" {spec.flag}")
    prewarm_plots()
    with StopOnSignal() as signals:
        with one_line_errors(
                io_failed=lambda exc: fail_io(io_message(exc, plan.out), plan.out,
                                              command="kcbatch scan"),
                damaged=lambda exc: (f"a store of the scan in {plan.out} is damaged (SQLite: "
                                     f"{exc}); remove that value's directory and resume the "
                                     f"scan"),
                kept="finished sub-studies and batches are kept",
                aborted="aborted; finished sub-studies and batches are kept",
                resume=resume, signal_exit=signals.exit_code):
            result = run_scan(plan, progress=not quiet, stop=signals.stop,
                              abort=signals.abort, on_notice=lambda m: click.echo(m, err=True),
                              on_point=on_point, on_done=on_done, scheduler=spec,
                              device=device)
        signals.computed()
        if result.interrupted:
            click.echo(f"interrupted: {len(result.completed)} of {n} values complete; "
                       f"finished batches are "
                       f"kept", err=True)
            click.echo(f"resume with: {resume}", err=True)
            sys.exit(signals.exit_code())
        _print_table(plan, result)
        if signals.caught:
            click.echo("signal received after the last batch: the scan is complete and its "
                       "outputs are written", err=True)
            sys.exit(signals.exit_code())


def _print_table(plan, result) -> None:
    from kcbatch.export.scan_outputs import (
        FIT_FILE,
        TABLE,
        figure_name,
        primary_estimator,
    )

    est = primary_estimator(plan.base.to_dict())
    click.echo(f"seed {plan.base.seed}; Kc ({est} crossing) per {plan.param}:")
    click.echo(f"  {plan.param:>12}  {'runs':>5}  {'cross':>5}  {'cens.':>5}  {'failed':>6}  "
               f"{'mean':>8}  {'95% CI':>19}  {'median':>8}")
    for row in result.rows:
        mean = row[f"{est}_mean"]
        cells = ("-", "-", "-") if mean is None else (
            f"{mean:.4f}", f"[{row[f'{est}_ci95_lo']:.4f}, {row[f'{est}_ci95_hi']:.4f}]",
            f"{row[f'{est}_median']:.4f}")
        click.echo(f"  {row['value']!s:>12}  {row['runs']:>5}  {row['crossings']:>5}  "
                   f"{row['censored_left'] + row['censored_right']:>5}  {row['failed']:>6}  "
                   f"{cells[0]:>8}  {cells[1]:>19}  {cells[2]:>8}")
    # Each sub-study's warnings (not stationary, censored, unconverged, ...):
    # the scan's numbers inherit them.
    for value in plan.values:
        for warning in _point_warnings(plan, value):
            click.echo(f"warning ({plan.param}={value}): {warning}")
    files = [TABLE, figure_name(plan.param)]
    if result.fit is not None:
        files.append(FIT_FILE)
        click.echo(result.fit["statement"] if result.fit["fitted"]
                   else f"no fit: {result.fit['reason']}")
    click.echo(f"results in {plan.out}/ (scan.json, {', '.join(files)}; one study per value "
               f"in {plan.param}=V/)")


def _point_warnings(plan, value) -> list[str]:
    """The warnings of the sub-study of ``value``, as its summary.json holds them."""
    import json

    path = Path(plan.point_config(value).out) / "summary.json"
    try:
        summary = json.loads(path.read_text("utf-8")).get("summary") or {}
    except (OSError, ValueError):
        return []
    return [str(w) for w in summary.get("warnings") or []]
