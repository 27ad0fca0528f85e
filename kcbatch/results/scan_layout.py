"""Where a scan keeps its parts: the plan (the parameter, its values and the
base config) and the folder of each value's sub-study.

A scan of ``param`` over ``values`` in ``DIR`` holds ``DIR/scan.json`` (the
manifest) and one study per value in ``DIR/<param>=<value>/``. The plan, and
the manifest read back and checked (:func:`load_scan`), are shared by the
scan's driver (:mod:`kcbatch.run.scan`), its outputs
(:mod:`kcbatch.export.scan_outputs`) and ``kcbatch.load``
(:mod:`kcbatch.export.notebook`).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kcbatch.protocol.config import (
    MAX_CONFIG_BYTES,
    ConfigError,
    NotARegularFile,
    StudyConfig,
    read_regular_file,
)
from kcbatch.results.store import StoreError
from kcbatch.version import __version__

__all__ = ["MANIFEST", "MAX_SCAN_VALUES", "SCAN_PARAMS", "ScanPlan", "check_param",
           "check_values", "format_value", "load_scan", "parse_values", "point_dir",
           "point_out"]

MANIFEST = "scan.json"
# The fields a scan's manifest keeps out of its base config: where each point
# goes is the scan's business.
PER_POINT = ("out",)


def format_value(value: int | float) -> str:
    """A value as it appears in folder names and tables: shortest round-trip form."""
    return str(value) if isinstance(value, int) else repr(float(value))


def point_dir(out: str | Path, param: str, value: int | float) -> Path:
    return Path(out) / f"{param}={format_value(value)}"


def point_out(cfg: StudyConfig) -> Path:
    """The folder of a scan point's sub-study, ``cfg.out``, which
    :meth:`ScanPlan.point_config` always sets (ValueError for a config without one)."""
    if cfg.out is None:
        raise ValueError("a scan point's config needs out, the point's folder "
                         "(ScanPlan.point_config sets it); got out=None")
    return cfg.out


@dataclass(frozen=True)
class ScanPlan:
    """A scan: ``base`` (every field but ``param``, with the master seed; ``out`` None)
    varied over ``values`` of ``param``, written under ``out``."""

    param: str
    values: tuple[int | float, ...]
    base: StudyConfig
    out: Path

    def point_config(self, value: int | float) -> StudyConfig:
        """The sub-study of ``value`` (ConfigError naming the value when it is invalid)."""
        return self.base.replace(**{self.param: value, "out": point_dir(self.out, self.param,
                                                                        value)})

    def points(self) -> list[tuple[int | float, StudyConfig]]:
        return [(v, self.point_config(v)) for v in self.values]

    def manifest(self) -> dict[str, Any]:
        base = {k: v for k, v in self.base.to_dict().items() if k not in PER_POINT}
        return {"param": self.param, "values": list(self.values), "seed": self.base.seed,
                "base": base, "version": __version__}


# The numeric protocol fields a scan may vary. Not runs (the points would share
# their first runs, not a scan) nor seed (every point has the master seed).
SCAN_PARAMS = ("nodes", "m", "ws_p", "gamma", "omega_mu", "omega_sigma", "k_min", "k_max",
               "k_num", "dt", "t_transient", "t_measure", "sample_every", "threshold",
               "kc_tol", "t_max", "refine", "refine_points")
_INT_PARAMS = ("nodes", "m", "k_num", "sample_every", "refine_points")


def check_param(param: str) -> None:
    if param not in SCAN_PARAMS:
        raise ConfigError("param", param, f"must be one of {', '.join(SCAN_PARAMS)}")


# The most values one scan takes (README, "Limits"): each is a study of its own.
MAX_SCAN_VALUES = 1000


def parse_values(param: str, text: str) -> list[int | float]:
    """``"250,500,1e3"`` -> ``[250, 500, 1000]``: numbers separated by commas,
    integers for integer fields (``1e3`` reads as 1000; ``1.5`` stays a float
    for the config's own check to refuse), at least two, no repeats."""
    check_param(param)
    items = [t.strip() for t in str(text).split(",")]
    if len(items) > MAX_SCAN_VALUES:
        raise ConfigError("values", f"{len(items)} values",
                          f"at most {MAX_SCAN_VALUES} values per scan (a study each; README, "
                          f"Limits)")
    values: list[int | float] = []
    for item in items:
        try:
            v: int | float = float(item)
        except ValueError:
            raise ConfigError("values", text, f"must be numbers separated by commas "
                                              f"({item!r} is not a number)") from None
        if param in _INT_PARAMS and float(v).is_integer():
            v = int(v)
        values.append(v)
    if len(values) < 2:
        raise ConfigError("values", text, "must hold at least 2 values (one value is a "
                                          "study: use kcbatch run)")
    seen: set[float] = set()
    for v in values:
        if v in seen:
            raise ConfigError("values", text, f"must not repeat a value ({v!r} is given twice)")
        seen.add(v)
    return values


def check_values(base: StudyConfig, param: str, values: Sequence[int | float]) -> None:
    """ConfigError, naming the value, for the first value that makes an invalid study."""
    for value in values:
        base.replace(**{param: value})


def load_scan(out: str | Path) -> ScanPlan:
    """The scan stored in ``out``. StoreError, in one line, when there is none
    or its manifest is unreadable or damaged: not a regular file of at most
    MAX_CONFIG_BYTES, not JSON, not an object with ``param`` (a scan
    parameter), ``values`` (2 to MAX_SCAN_VALUES distinct numbers) and ``base``
    (a study config valid at every value)."""
    out = Path(out)
    path = out / MANIFEST
    try:
        text = read_regular_file(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise StoreError(f"nothing to resume: no {MANIFEST} in {out}") from None
    except OSError as exc:
        raise StoreError(f"the scan manifest {path} cannot be read "
                         f"({exc.strerror or exc})") from None
    except NotARegularFile as exc:
        raise StoreError(f"the scan manifest {path} {exc}") from None

    def damaged(what: str) -> StoreError:
        return StoreError(f"the scan manifest {path} is damaged: {what}; restore it from a "
                          f"backup, or start a new scan in another --out")

    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise damaged(f"not JSON ({exc})") from None
    if not (isinstance(doc, dict) and isinstance(doc.get("param"), str)
            and isinstance(doc.get("values"), list) and isinstance(doc.get("base"), dict)):
        raise damaged("not a JSON object with param, values and base")
    param, values = doc["param"], doc["values"]
    try:
        check_param(param)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise damaged(f"its values {_shown(values)} are not all numbers")
        values = parse_values(param, ",".join(repr(v) for v in values))
        base = StudyConfig.from_mapping(doc["base"])
        check_values(base, param, values)
    except ConfigError as exc:
        raise damaged(str(exc)) from None
    return ScanPlan(param=param, values=tuple(values), base=base, out=out)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
