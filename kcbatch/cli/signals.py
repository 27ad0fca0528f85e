"""Ctrl-C / SIGTERM while a study computes. Shared by ``run`` and ``scan``.

* The first Ctrl-C (SIGINT) asks the study to stop after the batch in flight.
* SIGTERM (what a batch scheduler sends, once, before it kills the job), or a
  second signal, stops now: at the next point where Python runs again (a
  step group of the engine, a graph finished, a wait), every finished batch
  already in the store.
* Once the study's last batch is done (the exports, the summary), a signal
  only marks the exit status: the exports are short and finish.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

from kcbatch.cli.errors import EXIT_SIGNAL


class StopOnSignal:
    """While entered, SIGINT and SIGTERM are handled. The first SIGINT sets
    ``stop`` (and is kept in ``caught``); SIGTERM, or any signal after the
    first, sets ``stop`` and ``abort`` (the pipeline stops waiting for graphs
    being generated) and raises KeyboardInterrupt, until :meth:`computed` says
    the last batch is done (from then on a signal is only kept in ``caught``).
    The previous handlers come back on exit."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.abort = threading.Event()
        self.caught: list[int] = []
        self._computing = True
        self._old: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def _on_signal(self, signum, _frame) -> None:
        again = bool(self.caught)
        self.caught.append(signum)
        self.stop.set()
        if not self._computing:
            return
        if again or signum == signal.SIGTERM:
            self.abort.set()
            if not again:
                click.echo(f"\n{signal.Signals(signum).name}: stopping now (finished batches "
                           "are kept)", err=True)
            raise KeyboardInterrupt
        click.echo(f"\n{signal.Signals(signum).name}: finishing the batch in flight, then "
                   "stopping (again to abort now; finished batches are kept)", err=True)

    def computed(self) -> None:
        """The study's batches are done: a signal from now on lets the exports finish."""
        self._computing = False

    def exit_code(self) -> int:
        """The status of a process ended by the caught signal (130 without one)."""
        return EXIT_SIGNAL.get(self.caught[0], 130) if self.caught else 130

    def __enter__(self) -> StopOnSignal:
        self._old = {s: signal.signal(s, self._on_signal) for s in EXIT_SIGNAL}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
