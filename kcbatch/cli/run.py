"""``kcbatch run``: parse, run or resume the study with signals handled, export, print."""
from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kcbatch.cli.app import main
from kcbatch.cli.errors import (
    EXIT_SIGNAL,
    fail_io,
    io_message,
    one_line_errors,
)
from kcbatch.cli.options import option_flags, parse_range, study_config, study_options
from kcbatch.cli.prewarm import prewarm_plots
from kcbatch.cli.scheduler_options import (
    resume_command,
    scheduler_options,
    scheduler_spec,
)
from kcbatch.cli.signals import StopOnSignal
from kcbatch.protocol.config import ConfigError, StudyConfig, load_toml

if TYPE_CHECKING:
    from kcbatch.engines import ResolvedDevice


def _fresh_out_dir(seed: int) -> Path:
    """A directory name in the working directory that does not exist yet:
    ``kcbatch-YYYYmmdd-HHMMSS-<seed>``, with ``-2``, ``-3``, ... if taken."""
    import time
    base = f"kcbatch-{time.strftime('%Y%m%d-%H%M%S')}-{seed}"
    path, n = Path(base), 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    return path


@main.command()
@study_options
@click.option("--fast-math", "fast_math", is_flag=True, default=None,
              help="GPU float32: use the __sincosf intrinsic (|dr| <= 1e-4).")
@click.option("--run-range", "run_range", default=None, metavar="START:STOP",
              help="Run only runs START..STOP-1 of the study (a shard).")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Directory for kcbatch.sqlite, summary.json, runs.csv and plots.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="TOML file with study parameters (flags override it).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              default=None, help="Continue the study stored in DIR.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@scheduler_options
def run(config_file, resume_dir, out, run_range, fast_math, quiet, scheduler, scheduler_file,
        **options):
    """Run (or resume) a Kc study and print its summary.

    \b
    Example:  kcbatch run --runs 1000 --out results/
    """
    from kcbatch.engines import resolve_device
    from kcbatch.results.store import STORE_NAME, Store, StoreIOError, store_exists
    from kcbatch.run.plan import check_out, check_paths

    with one_line_errors():
        spec = scheduler_spec(scheduler, scheduler_file)
        flags = option_flags(options)
        flags.update(parse_range(run_range))
        if fast_math:
            flags["fast_math"] = True
        if resume_dir is not None:
            if resume_dir == "":
                raise ConfigError("resume", "", "must be the directory of a stored study, "
                                                "not empty")
            if config_file is not None:
                raise ConfigError("config", str(config_file),
                                  "cannot be combined with --resume (the stored config is used)")
            if out is not None and Path(out) != Path(resume_dir):
                raise ConfigError("out", str(out), f"must be the resumed directory {resume_dir}")
            try:
                with Store.open(Path(resume_dir) / STORE_NAME) as store:
                    stored = store.config
            except StoreIOError as exc:
                fail_io(str(exc), resume_dir)
            # Stored values, then the flags; run_study refuses protocol changes.
            base = {**{k: v for k, v in stored.items() if k != "out"}, "out": resume_dir}
        else:
            base = load_toml(config_file) if config_file else {}
            if out is not None:
                base["out"] = out
        cfg = check_paths(study_config(base, flags))
        if resume_dir is not None:
            # Before the study samples its networks for dt: a changed model is
            # the mistake to report, not the dt it would need.
            cfg.check_compatible(stored, what=f"the study stored in {resume_dir}", grow=True)
        # auto meeting a CUDA device that does not work stops here, before a
        # seed is drawn or a directory named: one line, the reason and the fix.
        # The study uses this resolution. On a cluster the workers' devices
        # count, and each worker resolves its own.
        resolved = resolve_device(cfg.device) if spec is None else None

    # The drawn seed is held until the study has passed its checks (its store
    # opens): a refused study prints no seed. Without --out the study still keeps
    # its results, in a new directory named on the first line of output, and
    # its notices are held until then too.
    held: list[str] = []
    new_dir: str | None = None
    if cfg.seed is None:
        from kcbatch.protocol.seeding import draw_seed
        cfg = cfg.resolved(seed=draw_seed())
        held.append(f"seed: {cfg.seed_value} (drawn; repeat with --seed {cfg.seed_value})")
    if cfg.out is None:
        with one_line_errors():
            fresh = _fresh_out_dir(cfg.seed_value)
            cfg = cfg.resolved(out=fresh)
            check_out(fresh)
        new_dir = f"results go to {fresh}/ (a new directory: no --out was given)"

    out = cfg.out

    def has_store() -> bool:
        """Whether the study has a store yet (the lines about it are true): an
        empty leftover of a creation that failed is none."""
        return out is not None and store_exists(Path(out) / STORE_NAME)

    with StopOnSignal() as signals, one_line_errors(
            io_failed=lambda exc: fail_io(io_message(exc, out), out, stored=has_store()),
            damaged=lambda exc: (f"the store in {out} is damaged (SQLite: {exc}); restore it "
                                 f"from a backup, or start a new study in another --out"),
            kept=lambda: "the finished batches are kept in the store" if has_store() else None,
            aborted=lambda: ("aborted; finished batches are in the store" if has_store()
                             else "aborted before anything was stored"),
            resume=lambda: resume_command(out, spec) if has_store() else None,
            signal_exit=signals.exit_code):
        _run_and_report(cfg, resume_dir is not None, quiet, signals, held, new_dir, spec,
                        resolved)


def _run_and_report(cfg: StudyConfig, resume: bool, quiet: bool, signals: StopOnSignal,
                    held: list[str], new_dir: str | None, spec=None,
                    device: ResolvedDevice | None = None) -> None:
    """Run the study, export, print; signals stay handled until the end
    (``signals``: stop and abort go to the study, which is over before the
    exports), and a signal caught at any point makes the exit status 130/143.

    ``held``: lines (stderr) to print once the store is open (the study has
    passed its checks): the drawn seed, and for a study without --out every
    notice before it; ``new_dir``: for a study without --out, the line naming
    its new directory, printed first (stdout). The
    process holds the lock of the study directory from the moment its store
    is open until the exports are written. ``spec``: the Dask scheduler
    (``kcbatch.run.scheduler.SchedulerSpec``) or None for this process.
    ``device``: the CLI's resolution of ``cfg.device`` (``run_study(device=)``)."""
    import contextlib

    from kcbatch.results.store import study_lock
    from kcbatch.run.study import run_study

    # Notices wait only for a new directory's name (no --out); with --out they
    # print as they come (a compilation notice before the compilation).
    opened = False

    def on_notice(msg: str) -> None:
        if opened or new_dir is None:
            click.echo(msg, err=True)
        else:
            held.append(msg)

    locked = contextlib.ExitStack()

    def on_open(out: str) -> None:
        nonlocal opened
        locked.enter_context(study_lock(out))  # re-entrant: run_study holds it already
        if not opened:
            if new_dir is not None:
                click.echo(new_dir)
            for line in held:
                click.echo(line, err=True)
            opened = True

    prewarm_plots()
    try:
        with locked:
            result = run_study(cfg, resume=resume, progress=not quiet, stop=signals.stop,
                               on_notice=on_notice, on_open=on_open, abort=signals.abort,
                               scheduler=spec, device=device)
            signals.computed()
            _export(cfg, result, quiet, signals.caught, spec)
    except KeyboardInterrupt:
        # an abort (a second signal): the store says the session was interrupted,
        # so that report and the partial study's reason say so
        if cfg.out is not None and opened:
            from kcbatch.export.report import record_run_info
            with contextlib.suppress(Exception):
                record_run_info(cfg.out, {"interrupted": True})
        raise


def _export(cfg: StudyConfig, result, quiet: bool, caught: list[int], spec=None) -> None:
    """Record the session, write the exports, print the summary and exit with
    the signal's status if one was caught."""
    from kcbatch.analysis.summary import format_summary
    from kcbatch.export.report import (
        export_store,
        record_run_info,
        session_info,
    )
    from kcbatch.export.study_outputs import network_phrase

    if cfg.out is not None:
        if result.computed:
            record_run_info(cfg.out, session_info(result))
        summary = export_store(cfg.out)
    else:
        summary = result.summary
    n = result.computed
    if n and result.scheduler:
        _echo_cluster(result)
    elif n:
        rate = n / result.elapsed if result.elapsed > 0 else float("nan")
        click.echo(f"device {result.device}, batch {result.batch}, {n} runs in "
                   f"{result.elapsed:.1f} s ({rate:.2f} runs/s); engine waited "
                   f"{result.times.wait:.1f} s for input ({100 * result.wait_fraction:.1f}%; "
                   f"{result.times.steady_wait:.1f} s after the first batch), generation "
                   f"{result.times.generate:.1f} s")
    else:
        click.echo("nothing to compute: every run of the study is already stored")
    click.echo(f"seed {cfg.seed}")
    click.echo(format_summary(summary, network_phrase(cfg.to_dict()),
                              None if cfg.out is None else str(cfg.out)))
    if cfg.out is not None:
        click.echo(f"results in {cfg.out}/ (kcbatch.sqlite, summary.json, runs.csv, "
                   "kc_hist.png, r_curves.png"
                   + (", kc_convergence.png" if cfg.auto_transient else "")
                   + (", hysteresis.png" if cfg.adiabatic else "") + ")")
    if result.interrupted:
        signum = caught[0] if caught else signal.SIGINT
        click.echo(f"interrupted: {len(result.records)} of {len(cfg.run_ids)} runs finished",
                   err=True)
        if cfg.out is not None:
            click.echo(f"resume with: {resume_command(cfg.out, spec)}", err=True)
        sys.exit(EXIT_SIGNAL.get(signum, 130))
    if caught:
        # The signal came after the last batch (e.g. during the exports), which
        # were finished anyway; the status still says the process was signalled.
        click.echo(f"{signal.Signals(caught[0]).name} received after the last batch: the "
                   f"study is complete and its exports are written", err=True)
        sys.exit(EXIT_SIGNAL.get(caught[0], 130))


def _echo_cluster(result) -> None:
    """The timing lines of a study run on Dask: the whole, then each worker."""
    n = result.computed
    rate = n / result.elapsed if result.elapsed > 0 else float("nan")
    click.echo(f"scheduler {result.scheduler}: {len(result.workers)} workers, device "
               f"{result.device}, batch {result.batch}, {n} runs in {result.elapsed:.1f} s "
               f"({rate:.2f} runs/s); engine {result.engine_seconds:.1f} s, generation "
               f"{result.times.generate:.1f} s, summed over the workers")
    for address, w in sorted(result.workers.items()):
        click.echo(f"  worker {address} ({w['device']}): {w['runs']} runs in {w['batches']} "
                   f"batches, engine {w['engine_seconds']:.1f} s, generation "
                   f"{w['generate_seconds']:.1f} s")
