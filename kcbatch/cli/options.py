"""The study options shared by ``run`` and ``tune``, and turning flags into a StudyConfig."""
from __future__ import annotations

from typing import Any

import click

from kcbatch.protocol.choices import AUTO, Coupling, OmegaDist
from kcbatch.protocol.config import (
    CONVERGES,
    DEFAULT_RUNS,
    DEFAULT_SAMPLE_EVERY,
    DEFAULT_SAMPLE_INTERVAL,
    DEFAULTS,
    DEVICE_CHOICES,
    KERNEL_CHOICES,
    MODEL_FIELDS,
    PRECISIONS,
    SWEEPS,
    ConfigError,
    StudyConfig,
)
from kcbatch.protocol.models import GRAPH_MODELS, USES_GAMMA, USES_WS_P

COUPLINGS = tuple(str(c) for c in Coupling)
OMEGA_DISTS = tuple(str(d) for d in OmegaDist)


class _FloatOrAuto(click.ParamType):
    """A number or the word 'auto' (``--dt``, ``--t-transient``)."""

    name = "float|auto"

    def convert(self, value, param, ctx):
        if value == AUTO or isinstance(value, float):
            return value
        try:
            return float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)


# CLI option name -> StudyConfig field. Every option defaults to None so that
# only flags the user typed override the TOML file or the stored study; the
# help shows the field's default (config.DEFAULTS).
_STUDY_OPTIONS = [
    ("--runs", "runs", int, "Number of independent networks (runs); with --graphs, "
     "the number of files unless given."),
    ("--graphs", "graphs", click.Path(path_type=str),
     "Your own networks: an edge list or GraphML file, or a directory of them; "
     "run i uses file i mod n_files (sorted by name)."),
    ("--batch", "batch", str, "Networks integrated together, or 'auto': on a GPU the most "
     "that fit its memory (up to 128), on the CPU 8; at most the runs and about a minute "
     "of work, so that an interrupted study loses little."),
    ("--nodes", "nodes", int, "Nodes N per network."),
    ("--m", "m", int, "Size of every model: BA edges per new node; ER mean degree 2m; "
     "WS ring of 2m neighbours; power-law minimum degree m."),
    ("--graph", "graph", click.Choice(GRAPH_MODELS),
     "Network model: Barabasi-Albert, Erdos-Renyi, Watts-Strogatz, power law "
     "(erased configuration model)."),
    ("--ws-p", "ws_p", float, "Watts-Strogatz rewiring probability in [0, 1] (--graph ws "
     "only)."),
    ("--gamma", "gamma", float, "Power-law degree exponent, > 2 (--graph powerlaw only)."),
    ("--coupling", "coupling", click.Choice(COUPLINGS),
     "Weight w_i of K w_i sum_j A_ij sin(theta_j - theta_i): 1/max(k_i,1), 1, 1/<k>, 1/N."),
    ("--omega-dist", "omega_dist", click.Choice(OMEGA_DISTS),
     "Natural frequencies: normal(mu, sigma), Lorentzian (location mu, half-width sigma), "
     "uniform on [mu-sigma, mu+sigma], or omega_i = k_i (degree)."),
    ("--omega-mu", "omega_mu", float, "Mean (location) of natural frequencies [rad/time]."),
    ("--omega-sigma", "omega_sigma", float,
     "Spread of natural frequencies: std, half-width or half-range [rad/time]."),
    ("--k-min", "k_min", float, "Smallest coupling K."),
    ("--k-max", "k_max", float, "Largest coupling K."),
    ("--k-num", "k_num", int, "Number of K values (linspace)."),
    ("--dt", "dt", _FloatOrAuto(),
     "RK4 step [time units], or 'auto': the largest step within RK4's stability and "
     "accuracy bounds, at most 0.05, dividing the times (printed)."),
    ("--t-transient", "t_transient", _FloatOrAuto(),
     "Discarded transient [time units], or 'auto': windows at T = 5, 10, 20, ... up to "
     "--t-max until each network's Kc settles."),
    ("--kc-tol", "kc_tol", float,
     "With --t-transient auto: a network stops when its Kc moves by at most this "
     "(or its own noise) between windows."),
    ("--t-max", "t_max", float,
     "With --t-transient auto: the last transient; networks still moving there are "
     "flagged unconverged [time units]."),
    ("--refine", "refine", float,
     "Multisect each network's first grid bracket until it is at most TOL wide "
     "(kc_refined)."),
    ("--refine-points", "refine_points", int,
     "With --refine: couplings per network evaluated in each round (with --converge "
     "adaptive at most this many: the same rounds, each with the fewest couplings that "
     "reach TOL)."),
    ("--converge", "converge", click.Choice(CONVERGES),
     "With --t-transient auto: adaptive integrates only the couplings that can still "
     "move the crossing and refines from the converged bracket; exhaustive integrates "
     "every coupling to each network's final window and refines from theta0."),
    ("--sweep", "sweep", click.Choice(SWEEPS),
     "independent: every K from theta0; adiabatic: each K from the previous K's final "
     "phases, up the grid, then back down (hysteresis)."),
    ("--dwell", "dwell", float,
     "With --sweep adiabatic: time spent at each K, measurement included (a multiple "
     "of dt, at least --t-measure) [time units]."),
    ("--t-measure", "t_measure", float, "Measurement window [time units]."),
    ("--sample-every", "sample_every", int, "Sample r every this many measurement steps "
     "instead of every --sample-interval (the default is --sample-interval / dt: 10 at the "
     "default dt)."),
    ("--sample-interval", "sample_interval", float,
     "Sample r every this many time units (a multiple of dt), whatever dt is."),
    ("--threshold", "threshold", float, "Kc = first K with r > threshold."),
    ("--seed", "seed", int, "Study seed (drawn, printed and recorded if omitted)."),
    ("--device", "device", click.Choice(DEVICE_CHOICES),
     "Engine: gpu, cpu, gpu-sim (kernels on the CPU, slow), or auto."),
    ("--kernel", "kernel", click.Choice(KERNEL_CHOICES),
     "GPU kernel strategy: global (one launch per RK4 stage), shared (one block per "
     "network and K, network in shared memory; gpu and gpu-sim only), or auto (global "
     "until shared is measured faster)."),
    ("--precision", "precision", click.Choice(PRECISIONS), "Floating-point precision."),
    ("--producers", "producers", str, "Graph-generating background threads; 'auto': up to "
     "4 with a GPU (the host's cores are free), 1 on cpu and gpu-sim (the engine needs "
     "them)."),
]


# How the help shows a default of None.
_NONE_SHOWN = {"runs": str(DEFAULT_RUNS), "graphs": "none: generate --graph", "refine": "off",
               "seed": "random",
               "sample_every": str(DEFAULT_SAMPLE_EVERY),
               "sample_interval": f"{DEFAULT_SAMPLE_INTERVAL:g}",
               "dwell": "t-transient + t-measure"}


def shown_default(field: str) -> str:
    """The default of ``field`` as the help shows it."""
    value = DEFAULTS[field]
    if value is None:
        return _NONE_SHOWN[field]
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# Options typed as text whose metavar would read TEXT.
_METAVARS = {"batch": "N|auto", "producers": "N|auto"}


def study_options(fn, only: tuple[str, ...] | None = None):
    for flag, _field, typ, help_ in reversed(_STUDY_OPTIONS):
        if only is None or _field in only:
            fn = click.option(flag, _field, type=typ, default=None,
                              metavar=_METAVARS.get(_field),
                              help=f"{help_} [default: {shown_default(_field)}]")(fn)
    return fn


# What changes a study's throughput or its estimated time (`kcbatch tune`):
# the K values, frequencies, threshold, seed and producers do not (the model
# sets the edges; the coupling only what `--dt auto` picks).
_TUNE_FIELDS = ("runs", "graphs", "nodes", "m", "graph", "ws_p", "gamma", "coupling", "k_num",
                "dt", "t_transient", "t_measure", "sample_every", "sample_interval", "device",
                "kernel", "precision")


def tune_options(fn):
    return study_options(fn, only=_TUNE_FIELDS)




def _int_or_auto(name: str, value: str | None) -> Any:
    if value is None or value == AUTO:
        return value
    try:
        return int(value)
    except ValueError:
        raise ConfigError(name, value, "must be an integer >= 1 or 'auto'") from None


def parse_range(value: str | None) -> dict[str, int | None]:
    if value is None:
        return {}
    try:
        start, stop = value.split(":")
        return {"run_start": int(start) if start else 0,
                "run_stop": int(stop) if stop else None}
    except ValueError:
        raise ConfigError("run_range", value, "must be START:STOP with integers, e.g. 0:250") \
            from None


def option_flags(options: dict[str, Any]) -> dict[str, Any]:
    flags = {f: options[f] for _, f, *_ in _STUDY_OPTIONS if options.get(f) is not None}
    for name in ("batch", "producers"):
        if name in flags:
            flags[name] = _int_or_auto(name, flags[name])
    return flags


# Flags that apply only to some models / distributions: typed with another one,
# they are refused even at their default value (a config file or the API refuses
# only a changed value, as every config holds the defaults).
_ONLY_FOR = {"ws_p": ("graph", USES_WS_P), "gamma": ("graph", USES_GAMMA),
             "omega_mu": ("omega_dist", tuple(d for d in OMEGA_DISTS if d != OmegaDist.DEGREE)),
             "omega_sigma": ("omega_dist", tuple(d for d in OMEGA_DISTS if d != OmegaDist.DEGREE))}


def study_config(base: dict[str, Any], flags: dict[str, Any]) -> StudyConfig:
    """The config of ``base`` (TOML or stored values) overridden by ``flags``; a
    flag that the model or distribution does not read is refused naming the
    flag, before the config's own check of the value can name only the field."""
    try:
        cfg = StudyConfig.from_mapping({**base, **flags})
    except ConfigError:
        # A flag the model does not read may be what is wrong: the config
        # without such flags says whether to name the flag instead. With
        # graphs the model's flags are refused by name, not by the config.
        skip = set(_ONLY_FOR) | (set(MODEL_FIELDS) if {**base, **flags}.get("graphs") else set())
        try:
            probe = StudyConfig.from_mapping(
                {**base, **{k: v for k, v in flags.items() if k not in skip}})
        except ConfigError:
            probe = None  # the config with every flag says what is wrong
        if probe is not None:
            _refuse_unused_flags(flags, probe)
        raise
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
