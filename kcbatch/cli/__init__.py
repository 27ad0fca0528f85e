"""The ``kcbatch`` command line (click): ``main`` is the group, each command
lives in its own module and registers on it when imported here.

  app.py       the group (one-line usage errors)
  errors.py    exit codes, one-line failures, the abort path
  options.py   the study options shared by run and tune, flags -> StudyConfig
  scheduler_options.py  --scheduler / --scheduler-file (Dask), for run and scan
  run.py       kcbatch run
  commands.py  kcbatch info, merge, report, tune
  scan.py      kcbatch scan
  signals.py   Ctrl-C: stop after the batch in flight; SIGTERM or a second Ctrl-C: abort
"""
from kcbatch.cli import commands, run, scan  # noqa: F401  (registers the commands on main)
from kcbatch.cli.app import main

__all__ = ["main"]
