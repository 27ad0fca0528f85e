"""Exit codes, one-line errors and the abort path of the ``kcbatch`` CLI."""
from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import click

EXIT_USAGE = 2
EXIT_RUNTIME = 1
EXIT_SIGNAL: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


def fail(msg: str) -> None:
    click.echo(f"Error: {msg}", err=True)
    sys.exit(EXIT_USAGE)


def fail_io(msg: str, out: Path | str | None, command: str = "kcbatch run", *,
            stored: bool = True) -> None:
    """A run-time I/O failure: the error line, the resume command, exit 1.
    ``stored`` False (no store was made): the line says so, and no resume."""
    if not stored:
        click.echo(f"Error: {msg}; nothing was stored: free some space or fix the "
                   f"permissions, then run the same command again", err=True)
        sys.exit(EXIT_RUNTIME)
    click.echo(f"Error: {msg}; the finished batches are kept in the store: free some space "
               f"or fix the permissions, then resume", err=True)
    if out is not None:
        click.echo(f"resume with: {command} --resume {out}", err=True)
    sys.exit(EXIT_RUNTIME)


# A line of one_line_errors: the text, or a function giving it when the error
# comes (None: no such line, e.g. no resume command before a store exists).
Line = str | Callable[[], str | None]


def _line(text: Line | None) -> str | None:
    return text() if callable(text) else text


def io_message(exc: BaseException, out: Path | str | None) -> str:
    """One line for a failed read or write (StoreIOError, sqlite3 or OSError) in ``out``."""
    if isinstance(exc, OSError):
        what = exc.filename if exc.filename else f"the results in {out}"
        return f"writing {what} failed: {exc.strerror or exc}"
    if isinstance(exc, sqlite3.Error):
        return f"writing the store in {out} failed ({exc})"
    return str(exc)


@contextlib.contextmanager
def one_line_errors(*, io_failed: Callable[[BaseException], None] | None = None,
                    damaged: Callable[[sqlite3.DatabaseError], str] | None = None,
                    kept: Line | None = None, aborted: Line | None = None,
                    resume: Line | None = None,
                    signal_exit: Callable[[], int] | None = None) -> Iterator[None]:
    """A command's errors as one line and its exit status; a kind whose
    argument is None propagates.

    * ConfigError, StoreError, EngineUnavailable, GraphFileError:
      ``Error: <exc>``, exit 2.
    * ClusterError (with ``kept``): ``Error: <exc>; <kept>``, then
      ``resume with: <resume>`` when ``resume`` is given, exit 1. ``kept``,
      ``aborted`` and ``resume`` may be functions, called when the error
      comes; one that gives None leaves out its part (``; <kept>``, the
      resume line).
    * StoreIOError, sqlite3.OperationalError, OSError (with ``io_failed``):
      ``io_failed(exc)``, which prints and exits (``fail_io``).
    * any other sqlite3.DatabaseError (with ``damaged``):
      ``Error: <damaged(exc)>``, exit 2.
    * KeyboardInterrupt (with ``aborted``): ``<aborted>``, then
      ``resume with: <resume>`` when given, exit ``signal_exit()`` (130
      without it) through :func:`exit_now`.
    """
    from kcbatch.engines import EngineUnavailable
    from kcbatch.networks.io import GraphFileError
    from kcbatch.protocol.config import ConfigError
    from kcbatch.results.store import StoreError, StoreIOError
    from kcbatch.run.scheduler import ClusterError
    try:
        yield
    except (ConfigError, StoreError, EngineUnavailable, GraphFileError) as exc:
        fail(str(exc))
    except ClusterError as exc:
        if kept is None:
            raise
        kept_now, resume_now = _line(kept), _line(resume)
        click.echo(f"Error: {exc}" + (f"; {kept_now}" if kept_now else ""), err=True)
        if resume_now is not None:
            click.echo(f"resume with: {resume_now}", err=True)
        sys.exit(EXIT_RUNTIME)
    except (StoreIOError, sqlite3.OperationalError, OSError) as exc:
        if io_failed is None:
            raise
        io_failed(exc)
    except sqlite3.DatabaseError as exc:
        if damaged is None:
            raise
        fail(damaged(exc))
    except KeyboardInterrupt:
        if aborted is None:
            raise
        click.echo(_line(aborted) or "aborted", err=True)
        resume_now = _line(resume)
        if resume_now is not None:
            click.echo(f"resume with: {resume_now}", err=True)
        exit_now(signal_exit() if signal_exit is not None else EXIT_SIGNAL[signal.SIGINT])


# After an abort, threads still running (a producer inside a huge graph
# generation) get this long to finish before the process exits without them.
_ABORT_GRACE_SECONDS = 1.0


def exit_now(code: int) -> None:
    """sys.exit(code), or os._exit(code) when producer threads still running
    would keep the interpreter from exiting (a graph generation cannot be
    interrupted; the store is consistent whatever they do, as only the main
    thread writes it)."""
    import time

    from kcbatch.inputs.pipeline import PRODUCER_THREAD_PREFIX
    sys.stdout.flush()
    sys.stderr.flush()
    deadline = time.monotonic() + _ABORT_GRACE_SECONDS
    producers = [t for t in threading.enumerate() if t.name.startswith(PRODUCER_THREAD_PREFIX)]
    for t in producers:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in producers):
        os._exit(code)
    sys.exit(code)


class OneLineErrors(click.Group):
    """click.Group whose usage errors (bad value, unknown option, missing
    argument, bad choice) print one line, ``Error: ... (see 'CMD --help')``,
    like every other error, instead of click's Usage/Try preamble."""

    @staticmethod
    def _one_line(exc: click.UsageError) -> None:
        if exc.ctx is not None:
            text = f"{exc.format_message()} (see '{exc.ctx.command_path} --help')"
            # what show() prints after "Error: "; set on the instance, as BadParameter and its
            # kind compose the message in format_message itself
            exc.format_message = lambda: text  # type: ignore[method-assign]
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
