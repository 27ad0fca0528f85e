"""``--scheduler`` and ``--scheduler-file``: where a command's batches run.

One decorator and one parser, for every command that runs studies (``run``,
and ``scan``): the spec goes to ``run_study(scheduler=...)``.
"""
from __future__ import annotations

import click

from kcbatch.run.scheduler import SchedulerSpec, parse_scheduler, require_extra


def scheduler_options(fn):
    """Add ``--scheduler`` and ``--scheduler-file`` (keyword arguments
    ``scheduler`` and ``scheduler_file``) to a click command."""
    fn = click.option(
        "--scheduler-file", "scheduler_file", type=click.Path(dir_okay=False), default=None,
        help="Run the batches on the Dask cluster whose scheduler wrote this file "
             "(dask scheduler --scheduler-file; dask-jobqueue, dask-mpi).")(fn)
    return click.option(
        "--scheduler", "scheduler", default=None, metavar="local:N|local-cuda|ADDRESS",
        help="Run the batches on Dask: N worker processes here, one worker per GPU "
             "(dask-cuda), or the scheduler at ADDRESS (tcp://host:8786). Same results. "
             "[default: this process]")(fn)


def scheduler_spec(scheduler: str | None, scheduler_file: str | None) -> SchedulerSpec | None:
    """The spec of the two options (None: this process); ConfigError for a bad
    value or a missing extra (naming what to install)."""
    spec = parse_scheduler(scheduler, scheduler_file)
    if spec is not None:
        require_extra(spec)
        # A lost scheduler is reported in one line (ClusterError); distributed's
        # client would also log its reconnection attempts as tracebacks, even
        # after it is closed.
        import logging

        import distributed  # noqa: F401  (its import sets the levels of its loggers)
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        from kcbatch.run.cluster import check_tls
        check_tls(spec)
    return spec


def resume_command(out, spec: SchedulerSpec | None) -> str:
    """The command that resumes the study in ``out`` where it ran."""
    return f"kcbatch run --resume {out}" + ("" if spec is None else f" {spec.flag}")
