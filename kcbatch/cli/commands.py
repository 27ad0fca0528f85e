"""``kcbatch info``, ``merge``, ``report`` and ``tune``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kcbatch.cli.app import main
from kcbatch.cli.errors import EXIT_RUNTIME, io_message, one_line_errors
from kcbatch.cli.options import option_flags, study_config, tune_options
from kcbatch.protocol.choices import is_auto
from kcbatch.protocol.config import MAX_BATCH, ConfigError
from kcbatch.version import __version__


@main.command()
def info():
    """Versions, the GPU stack piece by piece (driver, CUDA devices, CuPy, CUDA
    runtime, NVRTC) with the fix for each missing piece, and each device's status."""
    import platform

    import numba
    import numpy

    from kcbatch.engines import gpu_stack_lines, why_unavailable
    click.echo(f"kcbatch {__version__}")
    click.echo(f"python {platform.python_version()}, numpy {numpy.__version__}, "
               # numba sets its config attributes at import, from the environment:
               # read without starting its threading layer (get_num_threads would)
               f"numba {numba.__version__} "
               f"({numba.config.NUMBA_NUM_THREADS} threads)")  # type: ignore[attr-defined]
    for line in gpu_stack_lines():
        click.echo(line)
    from kcbatch.run.scheduler import extra_lines
    for line in extra_lines():
        click.echo(line)
    for dev in ("cpu", "gpu", "gpu-sim"):
        why = why_unavailable(dev)
        click.echo(f"device {dev:8}: " + ("usable" if why is None else f"unusable: {why}"))
    from kcbatch.engines import get_engine
    # says whether the CPU's native pass is built (the first call compiles it) or why not
    click.echo(get_engine("cpu").describe())
    if why_unavailable("gpu") is None:
        click.echo(get_engine("gpu").describe())


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(file_okay=False, exists=True, path_type=Path))
def merge(out_dir, shards):
    """Combine shards (--run-range) of one study into OUT_DIR."""
    from kcbatch.results.store import STORE_NAME, store_exists
    from kcbatch.run.merge import merge_stores
    from kcbatch.run.plan import check_out

    def io_failed(exc: BaseException) -> None:
        # a store with rows is left to remove; an empty leftover the next merge replaces
        partial = store_exists(Path(out_dir) / STORE_NAME)
        click.echo(f"Error: {io_message(exc, out_dir)}; free some space or fix the "
                   f"permissions, then " + (f"remove {out_dir} and " if partial else "")
                   + "merge again", err=True)
        sys.exit(EXIT_RUNTIME)

    with one_line_errors(io_failed=io_failed,
                         damaged=lambda exc: (f"a shard's store is damaged (SQLite: {exc}); "
                                              f"restore it from a backup or run that shard "
                                              f"again")):
        check_out(Path(out_dir))  # before any work: a directory that can be made here
        report = merge_stores(out_dir, shards)
    click.echo(report)


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def report(out_dir):
    """Re-print the summary and regenerate exports and plots from a store."""
    from kcbatch.analysis.summary import format_summary
    from kcbatch.export.report import export_store
    from kcbatch.export.study_outputs import network_phrase

    def io_failed(exc: BaseException) -> None:
        click.echo(f"Error: {io_message(exc, out_dir)}; free some space or fix the "
                   f"permissions, then run `kcbatch report {out_dir}` again", err=True)
        sys.exit(EXIT_RUNTIME)

    with one_line_errors(io_failed=io_failed,
                         damaged=lambda exc: (f"the store in {out_dir} is damaged (SQLite: "
                                              f"{exc}); restore it from a backup, or start a "
                                              f"new study in another --out")):
        summary = export_store(out_dir)
        config = json.loads((Path(out_dir) / "summary.json").read_text("utf-8"))["config"]
    click.echo(format_summary(summary, network_phrase(config), str(out_dir)))


@main.command()
@tune_options
@click.option("--fast-math", "fast_math", is_flag=True, default=None,
              help="GPU float32: use the __sincosf intrinsic (|dr| <= 1e-4).")
@click.option("--batches", default=None, help="Comma-separated batch sizes to try "
              "[default: powers of two up to what fits].")
@click.option("--steps", type=int, default=20, show_default=True,
              help="RK4 steps timed per measurement (throughput is per full study).")
def tune(batches, steps, fast_math, **options):
    """Measure runs/s over batch sizes on the device, recommend one, and
    estimate the configured study's time at that batch.

    Only the options that change the throughput or the study's time are listed.
    """
    from kcbatch.run.tuning import MAX_TUNE_SIZES, MAX_TUNE_STEPS
    from kcbatch.run.tuning import tune as do_tune
    with one_line_errors():
        flags = option_flags(options)
        if fast_math:
            flags["fast_math"] = True
        from kcbatch.run.plan import check_paths
        cfg = check_paths(study_config({"seed": 0}, flags))
        if is_auto(cfg.dt):
            from kcbatch.inputs.step_size import prepare_dt
            cfg, dt_notice = prepare_dt(cfg)
            click.echo(dt_notice, err=True)
        sizes = None
        if batches:
            try:
                sizes = [int(b) for b in batches.split(",")]
            except ValueError:
                raise ConfigError("batches", batches, "must be comma-separated integers") \
                    from None
            if len(sizes) > MAX_TUNE_SIZES:
                raise ConfigError("batches", f"{len(sizes)} sizes",
                                  f"at most {MAX_TUNE_SIZES} batch sizes per tune "
                                  f"(README, Limits)")
            if any(not 1 <= b <= MAX_BATCH for b in sizes):
                raise ConfigError("batches", batches, f"every batch size must be >= 1 and "
                                                      f"<= {MAX_BATCH} (README, Limits)")
        if not 1 <= steps <= MAX_TUNE_STEPS:
            raise ConfigError("steps", steps, f"must be an integer >= 1 and <= "
                                              f"{MAX_TUNE_STEPS} (README, Limits)")
        text = do_tune(cfg, sizes, steps)
    click.echo(text)
