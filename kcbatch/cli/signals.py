"""Ctrl-C / SIGTERM while a study computes: the first signal asks it to stop after
the batch in flight, a second one aborts now. Shared by ``run`` and ``scan``."""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

from kcbatch.cli.errors import EXIT_SIGNAL


class StopOnSignal:
    """While entered, SIGINT and SIGTERM are handled: the first sets ``stop``
    (and is kept in ``caught``), a second sets ``abort`` (the pipeline stops
    waiting for graphs being generated) and raises KeyboardInterrupt. The
    previous handlers come back on exit."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.abort = threading.Event()
        self.caught: list[int] = []
        self._old: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def _on_signal(self, signum, _frame) -> None:
        if self.caught:
            self.abort.set()
            raise KeyboardInterrupt
        self.caught.append(signum)
        self.stop.set()
        click.echo(f"\n{signal.Signals(signum).name}: finishing the batch in flight, then "
                   "stopping (again to abort now; finished batches are kept)", err=True)

    def exit_code(self) -> int:
        """The status of a process ended by the caught signal (130 without one)."""
        return EXIT_SIGNAL.get(self.caught[0], 130) if self.caught else 130

    def __enter__(self) -> StopOnSignal:
        self._old = {s: signal.signal(s, self._on_signal) for s in EXIT_SIGNAL}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
