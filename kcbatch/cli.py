"""The ``kcbatch`` command line (click)."""
from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import click

from ._version import __version__
from .config import (AUTO_DT, DEVICE_CHOICES, MODEL_FIELDS, PRECISIONS, ConfigError,
                     StudyConfig, load_toml)
from .coupling import COUPLINGS
from .graphs.io import GraphFileError
from .graphs.models import GRAPH_MODELS, USES_GAMMA, USES_WS_P
from .seeding import OMEGA_DISTS

EXIT_USAGE = 2
EXIT_RUNTIME = 1
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}

class _FloatOrAuto(click.ParamType):
    """A number or the word 'auto' (``--dt``, ``--t-transient``)."""

    name = "float|auto"

    def convert(self, value, param, ctx):
        if value == AUTO_DT or isinstance(value, float):
            return value
        try:
            return float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)


# CLI option name -> StudyConfig field. Every option defaults to None so that
# only flags the user typed override the TOML file or the stored study.
_STUDY_OPTIONS = [
    ("--runs", "runs", int, "Number of independent networks (runs); with --graphs, "
     "the number of files unless given.", "1000"),
    ("--graphs", "graphs", click.Path(path_type=str),
     "Your own networks: an edge list or GraphML file, or a directory of them; "
     "run i uses file i mod n_files (sorted by name).", "none: generate --graph"),
    ("--batch", "batch", str, "Networks integrated together; 'auto' fits GPU memory.", "32"),
    ("--nodes", "nodes", int, "Nodes N per network.", "10000"),
    ("--m", "m", int, "Size of every model: BA edges per new node; ER mean degree 2m; "
     "WS ring of 2m neighbours; power-law minimum degree m.", "3"),
    ("--graph", "graph", click.Choice(GRAPH_MODELS),
     "Network model: Barabasi-Albert, Erdos-Renyi, Watts-Strogatz, power law "
     "(erased configuration model).", "ba"),
    ("--ws-p", "ws_p", float, "Watts-Strogatz rewiring probability in [0, 1] (--graph ws "
     "only).", "0.1"),
    ("--gamma", "gamma", float, "Power-law degree exponent, > 2 (--graph powerlaw only).",
     "3.0"),
    ("--coupling", "coupling", click.Choice(COUPLINGS),
     "Weight w_i of K w_i sum_j A_ij sin(theta_j - theta_i): 1/max(k_i,1), 1, 1/<k>, 1/N.",
     "degree"),
    ("--omega-dist", "omega_dist", click.Choice(OMEGA_DISTS),
     "Natural frequencies: normal(mu, sigma), Lorentzian (location mu, half-width sigma), "
     "uniform on [mu-sigma, mu+sigma], or omega_i = k_i (degree).", "normal"),
    ("--omega-mu", "omega_mu", float, "Mean (location) of natural frequencies [rad/time].",
     "0"),
    ("--omega-sigma", "omega_sigma", float,
     "Spread of natural frequencies: std, half-width or half-range [rad/time].", "0.5"),
    ("--k-min", "k_min", float, "Smallest coupling K.", "0"),
    ("--k-max", "k_max", float, "Largest coupling K.", "5"),
    ("--k-num", "k_num", int, "Number of K values (linspace).", "50"),
    ("--dt", "dt", _FloatOrAuto(),
     "RK4 step [time units], or 'auto': the largest stable step "
     "dividing both times (printed).", "0.05"),
    ("--t-transient", "t_transient", _FloatOrAuto(),
     "Discarded transient [time units], or 'auto': windows at T = 5, 10, 20, ... up to "
     "--t-max until each network's Kc settles.", "5"),
    ("--kc-tol", "kc_tol", float,
     "With --t-transient auto: a network stops when its Kc moves by at most this "
     "(or its own noise) between windows.", "0.01"),
    ("--t-max", "t_max", float,
     "With --t-transient auto: the last transient; networks still moving there are "
     "flagged unconverged [time units].", "400"),
    ("--refine", "refine", float,
     "Multisect each network's first grid bracket until it is at most TOL wide "
     "(kc_refined).", "off"),
    ("--refine-points", "refine_points", int,
     "With --refine: couplings per network evaluated in each round.", "8"),
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


def _fail_io(msg: str, out: Path | str | None) -> None:
    """A run-time I/O failure: the error line, the resume command, exit 1."""
    click.echo(f"Error: {msg}; the finished batches are kept in the store: free some space "
               f"or fix the permissions, then resume", err=True)
    if out is not None:
        click.echo(f"resume with: kcbatch run --resume {out}", err=True)
    sys.exit(EXIT_RUNTIME)


def _io_message(exc: BaseException, out: Path | str | None) -> str:
    """One line for a failed read or write (StoreIOError, sqlite3 or OSError) in ``out``."""
    if isinstance(exc, OSError):
        what = exc.filename if exc.filename else f"the results in {out}"
        return f"writing {what} failed: {exc.strerror or exc}"
    if isinstance(exc, sqlite3.Error):
        return f"writing the store in {out} failed ({exc})"
    return str(exc)


# After an abort, threads still running (a producer inside a huge graph
# generation) get this long to finish before the process exits without them.
_ABORT_GRACE_SECONDS = 1.0


def _exit_now(code: int) -> None:
    """sys.exit(code), or os._exit(code) when producer threads still running
    would keep the interpreter from exiting (a graph generation cannot be
    interrupted; the store is consistent whatever they do, as only the main
    thread writes it)."""
    import time

    from .pipeline import PRODUCER_THREAD_PREFIX
    sys.stdout.flush()
    sys.stderr.flush()
    deadline = time.monotonic() + _ABORT_GRACE_SECONDS
    producers = [t for t in threading.enumerate() if t.name.startswith(PRODUCER_THREAD_PREFIX)]
    for t in producers:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in producers):
        os._exit(code)
    sys.exit(code)


class _OneLineErrors(click.Group):
    """click.Group whose usage errors (bad value, unknown option, missing
    argument, bad choice) print one line, ``Error: ... (see 'CMD --help')``,
    like every other error, instead of click's Usage/Try preamble."""

    @staticmethod
    def _one_line(exc: click.UsageError) -> None:
        if exc.ctx is not None:
            text = f"{exc.format_message()} (see '{exc.ctx.command_path} --help')"
            exc.format_message = lambda: text  # what show() prints after "Error: "
            exc.ctx = None  # UsageError.show prints the usage lines only with a context

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            self._one_line(exc)
            raise

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            self._one_line(exc)
            raise


def _study_options(fn, only: tuple[str, ...] | None = None):
    for flag, _field, typ, help_, default in reversed(_STUDY_OPTIONS):
        if only is None or _field in only:
            fn = click.option(flag, _field, type=typ, default=None,
                              help=f"{help_} [default: {default}]")(fn)
    return fn


# What changes a study's throughput or its estimated time (`kcbatch tune`):
# the K values, frequencies, threshold, seed and producers do not (the model
# sets the edges; the coupling only what `--dt auto` picks).
_TUNE_FIELDS = ("runs", "graphs", "nodes", "m", "graph", "ws_p", "gamma", "coupling", "k_num", "dt",
                "t_transient", "t_measure", "sample_every", "device", "precision")


def _tune_options(fn):
    return _study_options(fn, only=_TUNE_FIELDS)


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


# Flags that apply only to some models / distributions: typed with another one,
# they are refused even at their default value (a config file or the API refuses
# only a changed value, as every config holds the defaults).
_ONLY_FOR = {"ws_p": ("graph", USES_WS_P), "gamma": ("graph", USES_GAMMA),
             "omega_mu": ("omega_dist", ("normal", "lorentzian", "uniform")),
             "omega_sigma": ("omega_dist", ("normal", "lorentzian", "uniform"))}


def _study_config(base: dict[str, Any], flags: dict[str, Any]) -> StudyConfig:
    """The config of ``base`` (TOML or stored values) overridden by ``flags``; a
    flag that the model or distribution does not read is refused naming the
    flag, before the config's own check of the value can name only the field."""
    # With graphs the model's flags are refused by name below, not by the config.
    skip = set(_ONLY_FOR) | (set(MODEL_FIELDS) if {**base, **flags}.get("graphs") else set())
    try:
        probe = StudyConfig.from_mapping(
            {**base, **{k: v for k, v in flags.items() if k not in skip}})
    except ConfigError:
        probe = None  # the config with every flag says what is wrong
    if probe is not None:
        _refuse_unused_flags(flags, probe)
    cfg = StudyConfig.from_mapping({**base, **flags})
    _refuse_unused_flags(flags, cfg)
    return cfg


def _refuse_unused_flags(flags: dict[str, Any], cfg: StudyConfig) -> None:
    if cfg.graphs is not None:
        for name in MODEL_FIELDS:
            if name in flags:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(name, flags[name],
                                  f"must be left out: {flag} does not apply with --graphs "
                                  f"(the networks are the files of {cfg.graphs})")
    for name, (by, users) in _ONLY_FOR.items():
        if name in flags and getattr(cfg, by) not in users:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(name, flags[name],
                              f"must be left out: {flag} applies only to "
                              f"--{by.replace('_', '-')} {' or '.join(users)} (this study "
                              f"has {by}={getattr(cfg, by)!r})")


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Directory for kcbatch.sqlite, summary.json, runs.csv and plots.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="TOML file with study parameters (flags override it).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              default=None, help="Continue the study stored in DIR.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(config_file, resume_dir, out, run_range, fast_math, quiet, **options):
    """Run (or resume) a Kc study and print its summary.

    \b
    Example:  kcbatch run --runs 1000 --batch 32 --out results/
    """
    from .engines import EngineUnavailable, resolve_device
    from .store import STORE_NAME, Store, StoreError, StoreIOError

    try:
        flags = _flags(options)
        flags.update(_parse_range(run_range))
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
                _fail_io(str(exc), resume_dir)
            # Stored values, then the flags; run_study refuses protocol changes.
            base = {**{k: v for k, v in stored.items() if k != "out"}, "out": resume_dir}
        else:
            base = load_toml(config_file) if config_file else {}
            if out is not None:
                base["out"] = out
        cfg = _study_config(base, flags)
        if resume_dir is not None:
            # Before the study samples its networks for dt: a changed model is
            # the mistake to report, not the dt it would need.
            cfg.check_compatible(stored, what=f"the study stored in {resume_dir}")
    except (ConfigError, StoreError) as exc:
        _fail(str(exc))
        return
    try:
        # auto meeting a CUDA device that does not work stops here, before a
        # seed is drawn or a directory named: one line, the reason and the fix.
        resolve_device(cfg.device)
    except EngineUnavailable as exc:
        _fail(str(exc))
        return

    # Without --out the study still keeps its results, in a new directory named
    # on the first line of output; lines before it are held until then.
    held: list[str] | None = [] if cfg.out is None else None
    if cfg.seed is None:
        from .seeding import draw_seed
        cfg = cfg.replace(seed=draw_seed())
        line = f"seed: {cfg.seed} (drawn; repeat with --seed {cfg.seed})"
        if held is None:
            click.echo(line, err=True)
        else:
            held.append(line)
    if held is not None:
        try:
            cfg = cfg.replace(out=_fresh_out_dir(cfg.seed))
        except ConfigError as exc:
            _fail(str(exc))
            return

    stop = threading.Event()
    abort = threading.Event()
    caught: list[int] = []

    def on_signal(signum, _frame):
        if caught:
            abort.set()  # the pipeline stops waiting for graphs being generated
            raise KeyboardInterrupt
        caught.append(signum)
        stop.set()
        click.echo(f"\n{signal.Signals(signum).name}: finishing the batch in flight, then "
                   "stopping (again to abort now; finished batches are kept)", err=True)

    old = {s: signal.signal(s, on_signal) for s in EXIT_SIGNAL}
    try:
        _run_and_report(cfg, resume_dir is not None, quiet, stop, caught, held, abort)
    except (ConfigError, StoreError, EngineUnavailable, GraphFileError) as exc:
        _fail(str(exc))
    except (StoreIOError, sqlite3.OperationalError, OSError) as exc:
        _fail_io(_io_message(exc, cfg.out), cfg.out)
    except sqlite3.DatabaseError as exc:
        _fail(f"the store in {cfg.out} is damaged (SQLite: {exc}); restore it from a "
              f"backup, or start a new study in another --out")
    except KeyboardInterrupt:
        click.echo("aborted; finished batches are in the store", err=True)
        if cfg.out is not None:
            click.echo(f"resume with: kcbatch run --resume {cfg.out}", err=True)
        _exit_now(EXIT_SIGNAL[caught[0]] if caught else 130)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run_and_report(cfg: StudyConfig, resume: bool, quiet: bool, stop: threading.Event,
                    caught: list[int], held: list[str] | None = None,
                    abort: threading.Event | None = None) -> None:
    """Run the study, export, print; signals stay handled until the end, and a
    signal caught at any point makes the exit status 130/143.

    ``held``: for a study without --out, stderr lines to print after the line
    naming its new directory (printed once the store exists there). The
    process holds the lock of the study directory from the moment its store
    is open until the exports are written."""
    import contextlib

    from .store import study_lock
    from .study import run_study

    def on_notice(msg: str) -> None:
        if held is None:
            click.echo(msg, err=True)
        else:
            held.append(msg)

    locked = contextlib.ExitStack()

    def on_open(out: str) -> None:
        nonlocal held
        locked.enter_context(study_lock(out))  # re-entrant: run_study holds it already
        if held is not None:
            click.echo(f"results go to {out}/ (a new directory: no --out was given)")
            for line in held:
                click.echo(line, err=True)
            held = None

    with locked:
        result = run_study(cfg, resume=resume, progress=not quiet, stop=stop,
                           on_notice=on_notice, on_open=on_open, abort=abort)
        _export(cfg, result, quiet, caught)


def _export(cfg: StudyConfig, result, quiet: bool, caught: list[int]) -> None:
    """Record the session, write the exports, print the summary and exit with
    the signal's status if one was caught."""
    from .report import export_store, record_run_info
    from .stats import format_summary

    if cfg.out is not None:
        if result.computed:
            record_run_info(cfg.out, {
                "device": result.device, "batch": result.batch,
                "interrupted": result.interrupted,
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
                   "kc_hist.png, r_curves.png"
                   + (", kc_convergence.png)" if cfg.auto_transient else ")"))
    if result.interrupted:
        signum = caught[0] if caught else signal.SIGINT
        click.echo(f"interrupted: {len(result.records)} of {len(cfg.run_ids)} runs finished",
                   err=True)
        if cfg.out is not None:
            click.echo(f"resume with: kcbatch run --resume {cfg.out}", err=True)
        sys.exit(EXIT_SIGNAL.get(signum, 130))
    if caught:
        # The signal came after the last batch (e.g. during the exports), which
        # were finished anyway; the status still says the process was signalled.
        click.echo(f"{signal.Signals(caught[0]).name} received after the last batch: the "
                   f"study is complete and its exports are written", err=True)
        sys.exit(EXIT_SIGNAL.get(caught[0], 130))


@main.command()
def info():
    """Versions, the GPU stack piece by piece (driver, CUDA devices, CuPy, CUDA
    runtime, NVRTC) with the fix for each missing piece, and each device's status."""
    import platform

    import numba
    import numpy

    from .engines import gpu_stack_lines, why_unavailable
    click.echo(f"kcbatch {__version__}")
    click.echo(f"python {platform.python_version()}, numpy {numpy.__version__}, "
               f"numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads)")
    for line in gpu_stack_lines():
        click.echo(line)
    for dev in ("cpu", "gpu", "gpu-sim"):
        why = why_unavailable(dev)
        click.echo(f"device {dev:8}: " + ("usable" if why is None else f"unusable: {why}"))
    if why_unavailable("gpu") is None:
        from .engines import get_engine
        click.echo(get_engine("gpu").describe())


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(file_okay=False, exists=True, path_type=Path))
def merge(out_dir, shards):
    """Combine shards (--run-range) of one study into OUT_DIR."""
    from .merge import merge_stores
    from .store import StoreError, StoreIOError
    try:
        report = merge_stores(out_dir, shards)
    except (ConfigError, StoreError) as exc:
        _fail(str(exc))
        return
    except (StoreIOError, sqlite3.OperationalError, OSError) as exc:
        from .store import STORE_NAME
        partial = (Path(out_dir) / STORE_NAME).exists()
        click.echo(f"Error: {_io_message(exc, out_dir)}; free some space or fix the "
                   f"permissions, then " + (f"remove {out_dir} and " if partial else "")
                   + "merge again", err=True)
        sys.exit(EXIT_RUNTIME)
    except sqlite3.DatabaseError as exc:
        _fail(f"a shard's store is damaged (SQLite: {exc}); restore it from a backup or "
              f"run that shard again")
        return
    click.echo(report)


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def report(out_dir):
    """Re-print the summary and regenerate exports and plots from a store."""
    from .report import export_store
    from .stats import format_summary
    from .store import StoreError, StoreIOError
    try:
        summary = export_store(out_dir)
    except StoreError as exc:
        _fail(str(exc))
        return
    except (StoreIOError, sqlite3.OperationalError, OSError) as exc:
        click.echo(f"Error: {_io_message(exc, out_dir)}; free some space or fix the "
                   f"permissions, then run `kcbatch report {out_dir}` again", err=True)
        sys.exit(EXIT_RUNTIME)
    except sqlite3.DatabaseError as exc:
        _fail(f"the store in {out_dir} is damaged (SQLite: {exc}); restore it from a backup, "
              f"or start a new study in another --out")
        return
    click.echo(format_summary(summary))


@main.command()
@_tune_options
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
    from .tuning import tune as do_tune
    from .engines import EngineUnavailable
    try:
        flags = _flags(options)
        if fast_math:
            flags["fast_math"] = True
        cfg = _study_config({"seed": 0}, flags)
        if cfg.dt == AUTO_DT:
            from .stability import prepare_dt
            cfg, dt_notice = prepare_dt(cfg)
            click.echo(dt_notice, err=True)
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
    except (ConfigError, EngineUnavailable, GraphFileError) as exc:
        _fail(str(exc))
        return
    click.echo(text)


if __name__ == "__main__":
    main()
