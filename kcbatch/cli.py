"""The ``kcbatch`` command line (click)."""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from ._version import __version__
from .config import DEVICE_CHOICES, PRECISIONS, ConfigError, StudyConfig, load_toml

EXIT_USAGE = 2
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}

# CLI option name -> StudyConfig field. Every option defaults to None so that
# only flags the user typed override the TOML file or the stored study.
_STUDY_OPTIONS = [
    ("--runs", "runs", int, "Number of independent networks (runs).", "1000"),
    ("--batch", "batch", str, "Networks integrated together; 'auto' fits GPU memory.", "32"),
    ("--nodes", "nodes", int, "Nodes N per BA network.", "10000"),
    ("--m", "m", int, "Edges m per new BA node.", "3"),
    ("--omega-mu", "omega_mu", float, "Mean of natural frequencies [rad/time].", "0"),
    ("--omega-sigma", "omega_sigma", float, "Std of natural frequencies [rad/time].", "0.5"),
    ("--k-min", "k_min", float, "Smallest coupling K.", "0"),
    ("--k-max", "k_max", float, "Largest coupling K.", "5"),
    ("--k-num", "k_num", int, "Number of K values (linspace).", "50"),
    ("--dt", "dt", float, "RK4 step [time units].", "0.05"),
    ("--t-transient", "t_transient", float, "Discarded transient [time units].", "5"),
    ("--t-measure", "t_measure", float, "Measurement window [time units].", "5"),
    ("--sample-every", "sample_every", int, "Sample r every this many measurement steps.", "10"),
    ("--threshold", "threshold", float, "Kc = first K with r > threshold.", "0.5"),
    ("--seed", "seed", int, "Study seed (drawn, printed and recorded if omitted).", "random"),
    ("--device", "device", click.Choice(DEVICE_CHOICES),
     "Engine: gpu, cpu, gpu-sim (kernels on the CPU, slow), or auto.", "auto"),
    ("--precision", "precision", click.Choice(PRECISIONS), "Floating-point precision.",
     "float32"),
    ("--producers", "producers", int, "Graph-generating background threads.", "1"),
]


def _fail(msg: str) -> None:
    click.echo(f"Error: {msg}", err=True)
    sys.exit(EXIT_USAGE)


def _study_options(fn):
    for flag, _field, typ, help_, default in reversed(_STUDY_OPTIONS):
        fn = click.option(flag, _field, type=typ, default=None,
                          help=f"{help_} [default: {default}]")(fn)
    return fn


def _parse_batch(value: str | None) -> Any:
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise ConfigError("batch", value, "must be an integer >= 1 or 'auto'") from None


def _parse_range(value: str | None) -> dict[str, int | None]:
    if value is None:
        return {}
    try:
        start, stop = value.split(":")
        return {"run_start": int(start) if start else 0,
                "run_stop": int(stop) if stop else None}
    except ValueError:
        raise ConfigError("run_range", value, "must be START:STOP with integers, e.g. 0:250") \
            from None


def _flags(options: dict[str, Any]) -> dict[str, Any]:
    flags = {f: options[f] for _, f, *_ in _STUDY_OPTIONS if options.get(f) is not None}
    if "batch" in flags:
        flags["batch"] = _parse_batch(flags["batch"])
    return flags


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kcbatch")
def main() -> None:
    """kcbatch: the Kuramoto synchronization threshold Kc over ensembles of
    Barabasi-Albert networks, many networks x all couplings at once.

    Times are in the model's time units, frequencies in rad per time unit.
    The defaults are the original study's protocol: 1000 runs of N=10000, m=3
    networks, omega ~ Normal(0, 0.5), K = linspace(0, 5, 50), dt=0.05,
    t_transient=5, t_measure=5, r sampled every 10 steps, threshold 0.5,
    float32 (see 'kcbatch run --help').
    """


@main.command()
@_study_options
@click.option("--fast-math", "fast_math", is_flag=True, default=None,
              help="GPU float32: use the __sincosf intrinsic (|dr| <= 1e-4).")
@click.option("--run-range", "run_range", default=None, metavar="START:STOP",
              help="Run only runs START..STOP-1 of the study (a shard).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for kcbatch.sqlite, summary.json, runs.csv and plots.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="TOML file with study parameters (flags override it).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Continue the study stored in DIR.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(config_file, resume_dir, out, run_range, fast_math, quiet, **options):
    """Run (or resume) a Kc study and print its summary.

    \b
    Example:  kcbatch run --runs 1000 --batch 32 --out results/
    """
    from .engines import EngineUnavailable
    from .store import STORE_NAME, Store, StoreError

    try:
        flags = _flags(options)
        flags.update(_parse_range(run_range))
        if fast_math:
            flags["fast_math"] = True
        if resume_dir is not None:
            if config_file is not None:
                raise ConfigError("config", str(config_file),
                                  "cannot be combined with --resume (the stored config is used)")
            if out is not None and Path(out) != Path(resume_dir):
                raise ConfigError("out", str(out), f"must be the resumed directory {resume_dir}")
            with Store.open(Path(resume_dir) / STORE_NAME) as store:
                stored = store.config
            # Stored values, then the flags; run_study refuses protocol changes.
            base = {k: v for k, v in stored.items() if k != "out"}
            cfg = StudyConfig.from_mapping({**base, **flags, "out": resume_dir})
        else:
            base = load_toml(config_file) if config_file else {}
            if out is not None:
                base["out"] = out
            cfg = StudyConfig.from_mapping({**base, **flags})
    except (ConfigError, StoreError) as exc:
        _fail(str(exc))
        return

    if cfg.seed is None:
        from .seeding import draw_seed
        cfg = cfg.replace(seed=draw_seed())
        click.echo(f"seed: {cfg.seed} (drawn; repeat with --seed {cfg.seed})", err=True)

    stop = threading.Event()
    caught: list[int] = []

    def on_signal(signum, _frame):
        if caught:
            raise KeyboardInterrupt
        caught.append(signum)
        stop.set()
        click.echo(f"\n{signal.Signals(signum).name}: finishing the batch in flight, then "
                   "stopping (again to abort now; finished batches are kept)", err=True)

    old = {s: signal.signal(s, on_signal) for s in EXIT_SIGNAL}
    try:
        _run_and_report(cfg, resume_dir is not None, quiet, stop, caught)
    except (ConfigError, StoreError, EngineUnavailable) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        click.echo("aborted; finished batches are in the store", err=True)
        if cfg.out is not None:
            click.echo(f"resume with: kcbatch run --resume {cfg.out}", err=True)
        sys.exit(EXIT_SIGNAL[caught[0]] if caught else 130)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run_and_report(cfg: StudyConfig, resume: bool, quiet: bool, stop: threading.Event,
                    caught: list[int]) -> None:
    """Run the study, export, print; signals stay handled until the end."""
    from .report import export_store, record_run_info
    from .stats import format_summary
    from .study import run_study

    result = run_study(cfg, resume=resume, progress=not quiet, stop=stop,
                       on_notice=lambda m: click.echo(m, err=True))
    if cfg.out is not None:
        if result.computed:
            record_run_info(cfg.out, {
                "device": result.device, "batch": result.batch,
                "elapsed_seconds": round(result.elapsed, 3),
                "engine_seconds": round(result.engine_seconds, 3),
                "generate_seconds": round(result.times.generate, 3),
                "engine_wait_seconds": round(result.times.wait, 3),
                "engine_wait_after_first_batch_seconds": round(result.times.steady_wait, 3)})
        summary = export_store(cfg.out)
    else:
        summary = result.summary
    n = result.computed
    if n:
        rate = n / result.elapsed if result.elapsed > 0 else float("nan")
        click.echo(f"device {result.device}, batch {result.batch}, {n} runs in "
                   f"{result.elapsed:.1f} s ({rate:.2f} runs/s); engine waited "
                   f"{result.times.wait:.1f} s for input ({100 * result.wait_fraction:.1f}%; "
                   f"{result.times.steady_wait:.1f} s after the first batch), generation "
                   f"{result.times.generate:.1f} s")
    else:
        click.echo("nothing to compute: every run of the study is already stored")
    click.echo(f"seed {cfg.seed}")
    click.echo(format_summary(summary))
    if cfg.out is not None:
        click.echo(f"results in {cfg.out}/ (kcbatch.sqlite, summary.json, runs.csv, "
                   "kc_hist.png, r_curves.png)")
    if result.interrupted:
        signum = caught[0] if caught else signal.SIGINT
        click.echo(f"interrupted: {len(result.records)} of {len(cfg.run_ids)} runs finished",
                   err=True)
        if cfg.out is not None:
            click.echo(f"resume with: kcbatch run --resume {cfg.out}", err=True)
        sys.exit(EXIT_SIGNAL.get(signum, 130))


@main.command()
def info():
    """Versions, devices found, and why a GPU is unusable if it is."""
    import platform

    import numba
    import numpy

    from .engines import why_unavailable
    click.echo(f"kcbatch {__version__}")
    click.echo(f"python {platform.python_version()}, numpy {numpy.__version__}, "
               f"numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads)")
    try:
        import cupy
        click.echo(f"cupy {cupy.__version__}")
    except Exception as exc:
        click.echo(f"cupy: not importable ({type(exc).__name__})")
    for dev in ("cpu", "gpu", "gpu-sim"):
        why = why_unavailable(dev)
        click.echo(f"device {dev:8}: " + ("usable" if why is None else f"unusable: {why}"))
    if why_unavailable("gpu") is None:
        from .engines import get_engine
        click.echo(get_engine("gpu").describe())
    from .engines import nvrtc_unavailable_reason
    why = nvrtc_unavailable_reason()
    click.echo("nvrtc: " + ("usable (python -m kcbatch.engines.nvrtc_check prints the kernels' "
                            "resource report)" if why is None else f"unusable: {why}"))


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(file_okay=False, exists=True, path_type=Path))
def merge(out_dir, shards):
    """Combine shards (--run-range) of one study into OUT_DIR."""
    from .merge import merge_stores
    from .store import StoreError
    try:
        report = merge_stores(out_dir, shards)
    except (ConfigError, StoreError) as exc:
        _fail(str(exc))
        return
    click.echo(report)


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def report(out_dir):
    """Re-print the summary and regenerate exports and plots from a store."""
    from .report import export_store
    from .stats import format_summary
    from .store import StoreError
    try:
        summary = export_store(out_dir)
    except StoreError as exc:
        _fail(str(exc))
        return
    click.echo(format_summary(summary))


@main.command()
@_study_options
@click.option("--batches", default=None, help="Comma-separated batch sizes to try "
              "[default: powers of two up to what fits].")
@click.option("--steps", type=int, default=20, show_default=True,
              help="RK4 steps timed per measurement (throughput is per full study).")
def tune(batches, steps, **options):
    """Measure runs/s over batch sizes on the device and recommend one."""
    from .tuning import tune as do_tune
    from .engines import EngineUnavailable
    try:
        flags = _flags(options)
        flags.pop("batch", None)
        cfg = StudyConfig.from_mapping({"seed": 0, **flags})
        sizes = None
        if batches:
            try:
                sizes = [int(b) for b in batches.split(",")]
            except ValueError:
                raise ConfigError("batches", batches, "must be comma-separated integers") \
                    from None
            if any(b < 1 for b in sizes):
                raise ConfigError("batches", batches, "every batch size must be >= 1")
        if steps < 1:
            raise ConfigError("steps", steps, "must be an integer >= 1")
        text = do_tune(cfg, sizes, steps)
    except (ConfigError, EngineUnavailable) as exc:
        _fail(str(exc))
        return
    click.echo(text)


if __name__ == "__main__":
    main()
