"""Validated, immutable study configuration.

Every parameter of the protocol (``docs/design.md``) plus the engine options. A
:class:`StudyConfig` is checked completely when it is constructed, so an
invalid study never starts: each problem raises :class:`ConfigError`, whose
message names the parameter, the value given and what is allowed.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

# The one table of devices: concrete engines, and what ``device=`` accepts.
DEVICES = ("gpu", "cpu", "gpu-sim")
DEVICE_CHOICES = ("auto",) + DEVICES
# The one table of precisions: name -> numpy real type of the state.
REAL_DTYPES = {"float32": np.float32, "float64": np.float64}
PRECISIONS = tuple(REAL_DTYPES)

# Fields that define *what* is computed. Two stores can be merged, or a study
# resumed, only when these agree; the rest (device, batch, out, ...) only say
# *how* it is computed and never change the numbers beyond float tolerance.
PROTOCOL_FIELDS = (
    "runs", "nodes", "m", "omega_mu", "omega_sigma", "k_min", "k_max", "k_num",
    "dt", "t_transient", "t_measure", "sample_every", "threshold", "seed",
    "precision",
)


class ConfigError(ValueError):
    """A user-facing configuration error (the CLI exits with status 2)."""

    def __init__(self, param: str, value: Any, allowed: str):
        self.param = param
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid {param}={value!r}: {allowed}")


def steps_for(duration: float, dt: float, param: str, min_steps: int = 0) -> int:
    """Number of RK4 steps of size ``dt`` in ``duration``; must be an integer.
    ``min_steps`` keeps the value the error message suggests valid."""
    ratio = duration / dt
    n = round(ratio)
    if abs(ratio - n) > 1e-9 * max(1.0, abs(ratio)):
        suggest = float(f"{max(n, min_steps) * dt:.12g}")
        raise ConfigError(
            param, duration,
            f"must be an integer multiple of dt={dt!r} ({param}/dt = {ratio!r}); "
            f"try {param}={suggest!r}",
        )
    return int(n)


@dataclass(frozen=True, kw_only=True)
class IntegrationSpec:
    """The time discretisation of one simulation.

    ``n_transient`` RK4 steps of size ``dt`` (time units) are discarded, then
    ``n_measure`` steps are taken and ``r`` is sampled after every measurement
    step ``s`` (0-based) with ``s % sample_every == 0``.
    """

    dt: float
    n_transient: int
    n_measure: int
    sample_every: int

    def __post_init__(self):
        _check_real("dt", self.dt, lo=0.0, lo_open=True)
        _check_int("n_transient", self.n_transient, lo=0)
        _check_int("n_measure", self.n_measure, lo=1)
        _check_int("sample_every", self.sample_every, lo=1)
        if self.sample_every > self.n_measure:
            raise ConfigError(
                "sample_every", self.sample_every,
                f"must be between 1 and the number of measurement steps ({self.n_measure})",
            )

    @classmethod
    def from_times(cls, *, dt: float, t_transient: float, t_measure: float,
                   sample_every: int) -> "IntegrationSpec":
        _check_real("dt", dt, lo=0.0, lo_open=True)
        _check_real("t_transient", t_transient, lo=0.0)
        _check_real("t_measure", t_measure, lo=0.0, lo_open=True)
        n_tr = steps_for(t_transient, dt, "t_transient")
        n_me = steps_for(t_measure, dt, "t_measure", min_steps=1)
        if n_me < 1:
            raise ConfigError("t_measure", t_measure, f"must be at least one step (dt={dt!r})")
        _check_int("sample_every", sample_every, lo=1)
        if sample_every > n_me:
            raise ConfigError(
                "sample_every", sample_every,
                f"must be between 1 and the number of measurement steps "
                f"(t_measure/dt = {n_me})",
            )
        return cls(dt=float(dt), n_transient=n_tr, n_measure=n_me, sample_every=int(sample_every))

    @property
    def n_steps(self) -> int:
        return self.n_transient + self.n_measure

    def schedule(self) -> Iterator[int | None]:
        """The protocol's step loop, shared by every engine: for each RK4 step in
        order, the index of the r sample taken after it, or None."""
        for step in range(self.n_steps):
            s = step - self.n_transient
            yield s // self.sample_every if s >= 0 and s % self.sample_every == 0 else None

    @property
    def n_samples(self) -> int:
        """Samples per system: measurement steps s with s % sample_every == 0."""
        return -(-self.n_measure // self.sample_every)

    @property
    def n_first_half(self) -> int:
        """Samples in the first half of the measurement window (stationarity check)."""
        return self.n_samples // 2


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """One Kc study: the protocol of ``docs/design.md`` and how to run it.

    Units: times (``dt``, ``t_transient``, ``t_measure``) in the model's time
    units, frequencies in radians per time unit, couplings ``K`` dimensionless
    multiples of the frequency unit.
    """

    runs: int = 1000
    nodes: int = 10000
    m: int = 3
    omega_mu: float = 0.0
    omega_sigma: float = 0.5
    k_min: float = 0.0
    k_max: float = 5.0
    k_num: int = 50
    dt: float = 0.05
    t_transient: float = 5.0
    t_measure: float = 5.0
    sample_every: int = 10
    threshold: float = 0.5
    seed: int | None = None
    device: str = "auto"
    precision: str = "float32"
    batch: int | str = 32
    producers: int = 1
    fast_math: bool = False
    run_start: int = 0
    run_stop: int | None = None
    out: Path | None = None

    def __post_init__(self):
        _plain_numbers(self)
        _check_int("runs", self.runs, lo=1)
        _check_int("m", self.m, lo=1)
        _check_int("nodes", self.nodes, lo=1)
        if self.nodes <= self.m:
            raise ConfigError("nodes", self.nodes,
                              f"must be greater than m={self.m} (the BA seed star has m+1 nodes)")
        _check_real("omega_mu", self.omega_mu)
        _check_real("omega_sigma", self.omega_sigma, lo=0.0)
        _check_real("k_min", self.k_min)
        _check_real("k_max", self.k_max)
        _check_int("k_num", self.k_num, lo=1)
        if self.k_min > self.k_max:
            raise ConfigError("k_min", self.k_min, f"must be <= k_max={self.k_max!r}")
        _check_real("threshold", self.threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError("threshold", self.threshold, "must lie strictly between 0 and 1")
        if self.seed is not None:
            _check_int("seed", self.seed, lo=0)
        if self.device not in DEVICE_CHOICES:
            raise ConfigError("device", self.device,
                              f"must be one of {', '.join(DEVICE_CHOICES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError("precision", self.precision,
                              f"must be one of {', '.join(PRECISIONS)}")
        if self.batch != "auto":
            _check_int("batch", self.batch, lo=1, extra="or 'auto'")
        _check_int("producers", self.producers, lo=1)
        if not isinstance(self.fast_math, bool):
            raise ConfigError("fast_math", self.fast_math, "must be true or false")
        _check_int("run_start", self.run_start, lo=0)
        stop = self.runs if self.run_stop is None else self.run_stop
        _check_int("run_stop", stop, lo=1)
        if not self.run_start < stop <= self.runs:
            raise ConfigError("run_range", f"{self.run_start}:{stop}",
                              f"must satisfy 0 <= START < STOP <= runs={self.runs}")
        _ = self.spec  # raises ConfigError for dt, t_transient, t_measure, sample_every
        if self.out is not None:
            object.__setattr__(self, "out", Path(self.out))
            _check_out(self.out)

    @property
    def spec(self) -> IntegrationSpec:
        return IntegrationSpec.from_times(dt=self.dt, t_transient=self.t_transient,
                                          t_measure=self.t_measure,
                                          sample_every=self.sample_every)

    @property
    def k_values(self):
        """The coupling grid ``linspace(k_min, k_max, k_num)`` (float64)."""
        return np.linspace(self.k_min, self.k_max, self.k_num)

    @property
    def run_ids(self) -> range:
        return range(self.run_start, self.runs if self.run_stop is None else self.run_stop)

    def replace(self, **changes) -> "StudyConfig":
        return dataclasses.replace(self, **changes)

    @property
    def real_dtype(self) -> type:
        return REAL_DTYPES[self.precision]

    def protocol(self) -> dict[str, Any]:
        """The fields that define the numbers (see PROTOCOL_FIELDS)."""
        return {k: getattr(self, k) for k in PROTOCOL_FIELDS}

    def check_compatible(self, stored: Mapping[str, Any], *, what: str) -> None:
        """Refuse (ConfigError naming the first differing field) unless this
        config computes the same numbers as ``stored``, the config dict of a
        store (resume) or of another shard (merge)."""
        for name in PROTOCOL_FIELDS:
            if stored.get(name) != getattr(self, name):
                raise ConfigError(name, getattr(self, name),
                                  f"contradicts {what}, which has {name}={stored.get(name)!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["out"] = None if self.out is None else str(self.out)
        return d

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "config") -> "StudyConfig":
        """Build from a mapping (e.g. parsed TOML); unknown keys are errors."""
        names = {f.name for f in dataclasses.fields(cls)}
        aliases = {"n": "nodes", "mu": "omega_mu", "sigma": "omega_sigma"}
        clean: dict[str, Any] = {}
        for key, value in data.items():
            name = aliases.get(key, key).replace("-", "_")
            if name not in names:
                raise ConfigError(f"{source} key", key,
                                  f"unknown; allowed keys: {', '.join(sorted(names))}")
            clean[name] = value
        return cls(**clean)


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a study TOML file: top-level keys, or a ``[study]`` table."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError("config", str(p), f"must be a readable TOML file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config", str(p), f"must be valid TOML ({exc})") from None
    if set(data) == {"study"} and isinstance(data["study"], dict):
        data = data["study"]
    return data


_INT_FIELDS = ("runs", "nodes", "m", "k_num", "sample_every", "seed", "batch", "producers",
               "run_start", "run_stop")
_REAL_FIELDS = ("omega_mu", "omega_sigma", "k_min", "k_max", "dt", "t_transient", "t_measure",
                "threshold")


def _plain_numbers(cfg: "StudyConfig") -> None:
    """Accept numpy scalars from API users: store them as Python int/float (the
    config goes to JSON). bools and non-integral floats stay as given, to be
    rejected by the checks."""
    for name in _INT_FIELDS:
        v = getattr(cfg, name)
        if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
            object.__setattr__(cfg, name, int(v))
    for name in _REAL_FIELDS:
        v = getattr(cfg, name)
        if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)):
            object.__setattr__(cfg, name, float(v) if not isinstance(v, int) else v)


def _check_int(name: str, value: Any, *, lo: int | None = None, extra: str = "") -> None:
    allowed = "an integer" + (f" >= {lo}" if lo is not None else "") + (f" {extra}" if extra else "")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, value, f"must be {allowed}")
    if lo is not None and value < lo:
        raise ConfigError(name, value, f"must be {allowed}")


def _check_real(name: str, value: Any, *, lo: float | None = None, lo_open: bool = False) -> None:
    if lo is None:
        allowed = "a finite number"
    else:
        allowed = f"a finite number {'>' if lo_open else '>='} {lo:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(name, value, f"must be {allowed}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ConfigError(name, value, f"must be {allowed}")


def _check_out(out: Path) -> None:
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError("out", str(out), f"must be a directory ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError("out", str(out), f"must be writable ({probe} is not writable)")

