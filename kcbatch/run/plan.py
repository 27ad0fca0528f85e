"""One study, resolved once at the edge into a :class:`StudyPlan`.

A :class:`~kcbatch.protocol.config.StudyConfig` is checked without touching
the file system. Here, once per study, comes what needs the file system or
the machine: ``out`` must be a writable directory (or creatable), ``graphs``
is listed (``runs`` defaults to its number of files) and read, the seed is
drawn, ``dt = "auto"`` is chosen (and an explicit dt checked) on the study's
first networks, and the device is resolved. Everything downstream reads the
plan's values and checks nothing again.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kcbatch.engines import Engine, ResolvedDevice, get_engine, kernel_misfit, resolve_device
from kcbatch.inputs.graph_source import GraphSet, read_graph_set
from kcbatch.inputs.pipeline import producer_threads
from kcbatch.inputs.step_size import prepare_dt
from kcbatch.networks.io import GraphFileError, graph_files
from kcbatch.protocol.choices import Device, Precision
from kcbatch.protocol.config import ConfigError, IntegrationSpec, StudyConfig
from kcbatch.protocol.seeding import draw_seed
from kcbatch.run.batching import batch_shape

__all__ = ["StudyPlan", "check_out", "check_paths", "plan_study"]


def check_out(out: Path) -> None:
    """ConfigError unless ``out`` is a directory, or can be made one, that this
    process may write into: its nearest existing ancestor is a writable
    directory in which a directory can really be made (tried, then removed:
    /proc and /sys say writable to root and refuse every new entry)."""
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError("out", str(out), f"must be a directory ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError("out", str(out), f"must be writable ({probe} is not writable)")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".kcbatch-probe-", dir=probe))
    except OSError as exc:
        raise ConfigError("out", str(out), f"must be a directory kcbatch can create files in "
                                           f"({probe} refuses a new directory: "
                                           f"{exc.strerror or exc})") from None


def check_paths(cfg: StudyConfig) -> StudyConfig:
    """``cfg`` checked against the file system: ``out`` writable (check_out),
    and with ``graphs`` and no ``runs`` the number of graph files as ``runs``
    (ConfigError naming ``graphs`` when there are none or the path is missing).
    The files themselves are read by :func:`plan_study`."""
    if cfg.out is not None:
        check_out(cfg.out)
    if cfg.runs is None:
        try:
            runs = len(graph_files(cfg.graphs))
        except GraphFileError as exc:
            raise ConfigError("graphs", str(cfg.graphs), exc.reason) from None
        cfg = cfg.resolved(runs=runs)
    return cfg


@dataclass(frozen=True)
class StudyPlan:
    """A study resolved: the values every later step reads, none of them
    checked again.

    config: the study's config with ``seed``, ``runs`` and ``dt`` as numbers
      (what its store holds); graphs: the files read once (None without
      ``graphs``); spec: the step schedule; precision: the real type's record;
      notices: what resolving told the user (graph files, dt auto).
    The engine's side is :meth:`on_engine`'s :class:`EnginePlan`, made in the
    process that integrates (a Dask worker resolves its own).
    """

    config: StudyConfig
    graphs: GraphSet | None
    spec: IntegrationSpec
    precision: Precision
    notices: tuple[str, ...] = ()

    @property
    def seed(self) -> int:
        seed = self.config.seed
        if seed is None:  # plan_study draws it; a plan never holds None
            raise RuntimeError("StudyPlan.seed read before the seed was drawn")
        return seed

    @property
    def dt(self) -> float:
        return self.spec.dt

    def on_engine(self, resolved: ResolvedDevice | None = None) -> EnginePlan:
        """This plan with its device (a notice when ``auto`` fell back to the
        CPU), its engine (ConfigError when ``kernel = shared`` cannot hold the
        networks) and the producer threads. ``resolved``: what
        ``resolve_device(config.device)`` returned to the caller in this
        process; None resolves it here."""
        cfg = self.config
        concrete, why = resolve_device(cfg.device) if resolved is None else resolved
        device = Device(concrete)
        engine = get_engine(device, cfg.fast_math, cfg.kernel)
        misfit = kernel_misfit(engine, batch_shape(cfg))
        if misfit is not None:
            raise ConfigError("kernel", cfg.kernel, f"needs every network in one block's shared "
                              f"memory, but {misfit}; use --kernel global or auto")
        return EnginePlan(study=self, device=device, device_notice=why, engine=engine,
                          producers=producer_threads(cfg.producers, device))


@dataclass(frozen=True)
class EnginePlan:
    """A :class:`StudyPlan` on its engine, in the process that integrates.

    device: the concrete device; device_notice: why ``auto`` chose it (None when
    nothing needs saying); engine: the engine (its kernel strategy checked
    against the networks); producers: threads generating networks; batch: the
    work unit's size (networks), set by :meth:`with_batch` once the store says
    how many runs are pending (0 before)."""

    study: StudyPlan
    device: Device
    device_notice: str | None
    engine: Engine
    producers: int
    batch: int = 0

    def with_batch(self, batch: int) -> EnginePlan:
        return dataclasses.replace(self, batch=batch)


def plan_study(config: StudyConfig, *, resume: bool = False,
               notice: Callable[[str], None] | None = None,
               check_stored: Callable[[StudyConfig], None] | None = None) -> StudyPlan:
    """Resolve ``config`` once: paths checked (:func:`check_paths`), a seed drawn
    when it has none, the graph files read (after ``check_stored(cfg)``, which
    compares a resume's files with the stored study's), dt checked on (or, for
    ``"auto"``, chosen from) the study's first networks. ``notice`` hears each
    notice as it is made."""
    notices: list[str] = []

    def tell(msg: str) -> None:
        notices.append(msg)
        if notice is not None:
            notice(msg)

    cfg = check_paths(config)
    if cfg.seed is None:
        cfg = cfg.resolved(seed=draw_seed())
    graphs = None
    if cfg.graphs is not None:
        # Every file read (and a resume's files compared with the stored ones)
        # before anything runs; this snapshot is what every batch uses.
        if resume and check_stored is not None:
            check_stored(cfg)
        graphs = read_graph_set(cfg.graphs)
        tell(graphs.notice())
    # dt checked on (or, for "auto", chosen from) the study's first networks;
    # the store then holds the number.
    cfg, dt_notice = prepare_dt(cfg, graphs)
    if dt_notice:
        tell(dt_notice)
    return StudyPlan(config=cfg, graphs=graphs, spec=cfg.spec,
                     precision=cfg.precision_record, notices=tuple(notices))
