"""Where a scan keeps its parts: the plan (the parameter, its values and the
base config) and the folder of each value's sub-study.

A scan of ``param`` over ``values`` in ``DIR`` holds ``DIR/scan.json`` (the
manifest) and one study per value in ``DIR/<param>=<value>/``. The plan is
shared by the scan's driver (:mod:`kcbatch.run.scan`) and its outputs
(:mod:`kcbatch.export.scan_outputs`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kcbatch.protocol.config import StudyConfig
from kcbatch.version import __version__

__all__ = ["MANIFEST", "ScanPlan", "format_value", "point_dir", "point_out"]

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
