"""Helpers shared by the test modules (importable: ``from helpers import ...``).

tests/conftest.py turns some of these into fixtures; everything here is plain
Python so that it can also be used at collection time (parametrize lists,
skipif conditions) and in module-level constants.

* devices:  :func:`device_params` -- cpu, gpu-sim, gpu as ``pytest.param`` s, the
  gpu ones marked ``gpu`` (``bench/gpu_check`` runs ``pytest -m gpu``), the gpu-sim
  ones ``slow``, and every unusable one skipped with the reason
  ``kcbatch.engines.why_unavailable`` gives.
* engines:  :class:`FaultyEngine` -- a real engine with injected faults.
* CLI:      :func:`run_cli`, :func:`invoke`, :func:`ok`, :func:`assert_usage_error`
  (in-process, click's CliRunner) and :func:`run_kcbatch` (a real
  ``python -m kcbatch`` process); :func:`read_csv`, :func:`r_columns`, :func:`r_matrix`
  read a study's ``runs.csv``.
* records:  :func:`assert_same_records`.
* files:    :func:`is_root`, :func:`unwritable_out`.
* inputs:   :func:`random_batch`.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- devices

ALL_DEVICES = ("cpu", "gpu-sim", "gpu")


@functools.cache
def device_unusable(device: str) -> str | None:
    """None when ``device`` can run here, else why not (one line). Cached: asking
    about ``gpu`` probes CUDA, which costs a second or so."""
    from kcbatch.engines import why_unavailable
    try:
        return why_unavailable(device)
    except Exception as exc:  # a broken optional backend counts as unusable, not as an error
        return f"{type(exc).__name__}: {exc}"


def device_params(devices: Sequence[str] = ALL_DEVICES) -> list:
    """``pytest.param`` per device: id = the device name; ``gpu`` carries the ``gpu``
    marker (so ``pytest -m gpu`` selects it on a GPU machine); ``gpu-sim`` carries
    ``slow`` (slow by design: its cases took ~25 s together on 2 cores, too much of
    the fast lane's minute); an unusable device is skipped with the reason."""
    params = []
    for dev in devices:
        marks = {"gpu": [pytest.mark.gpu], "gpu-sim": [pytest.mark.slow]}.get(dev, [])
        reason = device_unusable(dev)
        if reason is not None:
            marks.append(pytest.mark.skip(reason=f"{dev} unavailable: {reason}"))
        params.append(pytest.param(dev, id=dev, marks=marks))
    return params


# --------------------------------------------------------------------------- engines

class FaultyEngine:
    """A real engine with injected faults, for tests of what ``run_study`` does
    when its engine fails.

    Every attribute but ``integrate`` is the wrapped engine's (the Engine protocol:
    batch_limit, auto_batch, predict_bytes, describe, release_memory,
    memory_in_use, name). ``integrate`` counts the call (``calls``, 1-based),
    records the batch's network count (``sizes``), then

    * raises ``exc`` when ``fail_on`` says so: a collection of call numbers, or a
      predicate ``fail_on(call, batch) -> bool``; ``exc`` without ``fail_on``
      fails every call;
    * otherwise integrates with the real engine and runs ``after(call, batch)``.

    ``exc`` may be an exception instance (raised as is) or a zero-argument
    callable making one (a fresh exception per failure).
    """

    def __init__(self, engine: Any, *, exc: BaseException | Callable[[], BaseException] | None
                 = None, fail_on: Collection[int] | Callable[[int, Any], bool] | None = None,
                 after: Callable[[int, Any], None] | None = None):
        if fail_on is not None and exc is None:
            raise TypeError("fail_on needs exc")
        self.engine = engine
        self.exc = exc
        self.fail_on = fail_on
        self.after = after
        self.calls = 0
        self.sizes: list[int] = []

    def _fails(self, call: int, batch: Any) -> bool:
        if self.exc is None:
            return False
        if self.fail_on is None:
            return True
        if callable(self.fail_on):
            return bool(self.fail_on(call, batch))
        return call in self.fail_on

    def integrate(self, batch, spec, *args, **kwargs):
        # *args/**kwargs: whatever else the protocol passes (e.g. a progress callback)
        self.calls += 1
        call = self.calls
        self.sizes.append(batch.n_networks)
        if self._fails(call, batch):
            exc = self.exc
            raise exc if isinstance(exc, BaseException) else exc()
        out = self.engine.integrate(batch, spec, *args, **kwargs)
        if self.after is not None:
            self.after(call, batch)
        return out

    def __getattr__(self, name):
        # only reached for attributes not set in __init__: the wrapped engine's
        return getattr(self.engine, name)


# --------------------------------------------------------------------------- CLI

def run_cli(args: Sequence[Any], **kw):
    """``kcbatch ARGS`` in-process (click's CliRunner); the raw result, nothing checked."""
    from click.testing import CliRunner

    from kcbatch.cli import main
    return CliRunner().invoke(main, [str(a) for a in args], **kw)


def invoke(args: Sequence[Any], **kw):
    """``kcbatch ARGS`` in-process; fails the test on a traceback or on any
    exception other than ``sys.exit`` (an unhandled crash), whatever the exit code."""
    result = run_cli(args, **kw)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        (result.output, result.exception)
    return result


def ok(args: Sequence[Any], **kw):
    """``kcbatch ARGS`` in-process; it must exit 0."""
    result = invoke(args, **kw)
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result


def assert_usage_error(result, *needles: str, config_error: bool = True) -> str:
    """Exit 2, no traceback, nothing on stdout, exactly one ``Error: ...`` line on
    stderr containing every needle; returns that line.

    The Error line must be the *only* stderr line (click's own usage errors are
    one line too); ``config_error=False`` tolerates other stderr lines around it.
    """
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.stdout == "", result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    if config_error:
        assert lines == errors, f"expected one line on stderr, got {result.stderr!r}"
    line = errors[0]
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


KCBATCH = [sys.executable, "-m", "kcbatch"]
PROCESS_TIMEOUT = 180  # seconds: generous, the machine may be shared


def kcbatch_env() -> dict[str, str]:
    """The environment of a real ``kcbatch`` process: unbuffered, so that what it
    printed before a signal is there to read."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_kcbatch(*args: Any, timeout: float = PROCESS_TIMEOUT) -> subprocess.CompletedProcess:
    """``python -m kcbatch ARGS`` as a real process (text output captured, no stdin)."""
    return subprocess.run([*KCBATCH, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=kcbatch_env(), stdin=subprocess.DEVNULL)


class StderrWatch:
    """Reads a child's stderr on a thread: ``lines`` so far, and ``seen`` set once a
    line contains ``marker`` (e.g. the handler's first-signal message, which
    must be out before a second signal counts as a second one)."""

    def __init__(self, proc: subprocess.Popen, marker: str):
        self.proc = proc
        self.lines: list[str] = []
        self.seen = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(proc, marker), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen, marker: str) -> None:
        for line in proc.stderr:
            self.lines.append(line)
            if marker in line:
                self.seen.set()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def join(self, timeout: float = 10) -> None:
        self._thread.join(timeout=timeout)

    def finish(self) -> None:
        """Kill the child if it still runs (a test that failed half-way), then
        read its stderr to the end."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.join()


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV file."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def r_columns(header: Sequence[str]) -> list[str]:
    """The r(K) columns of a ``runs.csv`` header, in order."""
    return [h for h in header if h.startswith("r@K=")]


def r_matrix(path: Path) -> np.ndarray:
    """r of every run of a ``runs.csv``: ``[runs, nK]`` float64."""
    header, rows = read_csv(path)
    return np.array([[float(row[c]) for c in r_columns(header)] for row in rows])


# --------------------------------------------------------------------------- records

def assert_same_records(got, want, *, ignore: Collection[str] = ("seconds",)) -> None:
    """Equal per-run records (``kcbatch.analysis.records.RunRecord``): every field but
    ``ignore``, those of its parts (convergence, sweep) included; arrays bitwise, same
    dtype and shape (NaN equal to NaN, for failed runs)."""
    assert [r.run for r in got] == [r.run for r in want]
    for a, b in zip(got, want, strict=True):
        _assert_same_fields(a, b, a.run, ignore)


def _assert_same_fields(a, b, run, ignore) -> None:
    for f in dataclasses.fields(a):
        if f.name in ignore:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x) or dataclasses.is_dataclass(y):
            assert type(x) is type(y), f"run {run}: {f.name} differs: {x!r} vs {y!r}"
            _assert_same_fields(x, y, run, ignore)
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            x, y = np.asarray(x), np.asarray(y)
            assert x.dtype == y.dtype and x.shape == y.shape, (run, f.name)
            assert np.array_equal(x, y, equal_nan=True), (
                f"run {run}: {f.name} differs: {x!r} vs {y!r}")
        else:
            assert x == y, f"run {run}: {f.name} differs: {x!r} vs {y!r}"


# --------------------------------------------------------------------------- files

def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def unwritable_out(tmp_path: Path) -> Path:
    """An ``out`` path that nobody can create.

    As a normal user: a subdirectory of a directory with mode 0o500. As root
    (permission bits do not stop root): a path whose parent is a regular file.
    """
    if not is_root():
        ro = tmp_path / "readonly"
        ro.mkdir()
        ro.chmod(0o500)
        if not os.access(ro, os.W_OK):
            return ro / "out"
        ro.chmod(0o700)  # e.g. CAP_DAC_OVERRIDE without uid 0: fall through
    blocker = tmp_path / "a_regular_file"
    blocker.write_text("not a directory\n")
    return blocker / "out"


# --------------------------------------------------------------------------- inputs

def random_batch(n_graphs: int, nodes: int, m: int, seed: int):
    """``n_graphs`` BA graphs (CSR pairs) with Gaussian omega (sigma 0.5, ``[G, N]``)
    and uniform theta0 in [0, 2pi) (``[G, N]``)."""
    from kcbatch.networks import barabasi_albert
    rng = np.random.default_rng(seed)
    graphs = [barabasi_albert(nodes, m, int(rng.integers(2**62))) for _ in range(n_graphs)]
    omega = rng.normal(0.0, 0.5, (n_graphs, nodes))
    theta0 = rng.uniform(0.0, 2 * np.pi, (n_graphs, nodes))
    return graphs, omega, theta0


def finished_runs(out: Path) -> int:
    """Runs in the store, read through a read-only connection (0 if not there yet)."""
    from kcbatch.results.store import STORE_NAME

    path = out / STORE_NAME
    if not path.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            return con.execute("SELECT count(*) FROM runs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # created but no tables yet, or locked for a moment
        return 0
