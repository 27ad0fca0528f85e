"""The CPU engine sharing the machine: one default run quiet and beside one busy process.

    PYTHONPATH=. python -m pytest bench/test_bench_cpu_share.py -s \
        --benchmark-json bench/measurements/cpu-2core_share_<date>.json

The default study's run (N=10^4, BA m=3, 50 K, dt=0.05, 100 + 100 RK4 steps, sample every
10, float32; network 0 of seed 2026; ``KCBATCH_BENCH_SHARE_CASE=rows-shared``: 5 K and
800 + 100 steps, see ``CASES``), timed in interleaved rounds: each round runs every
engine quiet (after waiting for an idle moment, timing.py) and then beside one busy
process (a ``while True: pass`` subprocess, started before and killed after the run,
``busy_process``; ``KCBATCH_BENCH_SHARE_BUSY=n`` for n of them, ``..._ROUNDS`` for the
rounds, default 4). ``extra_info`` holds, per engine, every round (wall s, CPU
utilisation) and the ratios loaded / quiet of the best and of the median rounds.

Engines:

* ``current``: ``get_engine("cpu").integrate`` with all numba threads (the native pass);
* ``current-1-thread``: the same on one thread, the yardstick of what the busy process
  takes from a run that uses one core (it moves little: the scheduler gives the other
  core to the busy process);
* ``previous`` (only with ``KCBATCH_BENCH_PREVIOUS=<checkout>``): the native pass of
  another checkout (its ``kcbatch/engines/cpu/native.py`` and ``kernels/kuramoto_cpu.cpp``),
  in the same rounds, for before/after figures taken in the same conditions.

On a machine that others share, "quiet" is only as quiet as they leave it: each round
records its utilisation (process CPU seconds / wall seconds), and the ratio check
(``SHARE_LIMIT``, with one busy process) fails only when some quiet round of the current
engine had its threads' cores (utilisation >= 0.9 per thread); else it skips, saying so.
``test_same_numbers_quiet_and_loaded`` checks that every run, quiet or loaded, of every
engine gave the same samples bit for bit.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pytest

from kcbatch.engines import get_engine
from kcbatch.engines.stepping import run_protocol
from kcbatch.inputs.pipeline import make_batch
from kcbatch.protocol.config import StudyConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import settle, timed

# KCBATCH_BENCH_SHARE_CASE: "default" (the default study's run), or "rows-shared":
# the same network with 5 K over [1.5, 2.5] and a transient of 40 (800 + 100 steps),
# which 2 threads integrate with its rows shared and a barrier per stage (native.py's
# plan): a converged study's last network, or one network's refinement.
CASES = {"default": StudyConfig(seed=2026),
         "rows-shared": StudyConfig(seed=2026, k_num=5, k_min=1.5, k_max=2.5, t_transient=40.0)}
CASE = os.environ.get("KCBATCH_BENCH_SHARE_CASE", "default")
CFG = CASES[CASE]
SPEC = CFG.spec
ROUNDS = int(os.environ.get("KCBATCH_BENCH_SHARE_ROUNDS", "4"))
SETTLE_S = 2.0      # wait at most this long for an idle moment before a quiet run
SHARE_LIMIT = 2.0   # loaded / quiet, best rounds, that the current engine must keep under
BUSY = int(os.environ.get("KCBATCH_BENCH_SHARE_BUSY", "1"))  # busy processes when loaded
PREVIOUS = "KCBATCH_BENCH_PREVIOUS"


@contextlib.contextmanager
def busy_process(count: int = 1):
    """``count`` other processes, each wanting a whole core, for as long as the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.3)  # running, and placed by the scheduler
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _previous_native(checkout: Path):
    """The native module of another checkout, reading that checkout's kernel."""
    spec = importlib.util.spec_from_file_location(
        "kcbatch_previous_native", checkout / "kcbatch" / "engines" / "cpu" / "native.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    kernels = checkout / "kernels"
    mod.kernel_text = lambda name: (kernels / name).read_text("utf-8")
    return mod


@pytest.fixture(scope="module")
def batch():
    return make_batch([0], CFG).batch


@pytest.fixture(scope="module")
def engines():
    """name -> (run, threads)."""
    threads = numba.get_num_threads()
    current = get_engine("cpu")
    runs = {"current": (lambda b: current.integrate(b, SPEC), threads),
            "current-1-thread": (lambda b: current.integrate(b, SPEC), 1)}
    if os.environ.get(PREVIOUS):
        prev = _previous_native(Path(os.environ[PREVIOUS]))
        runs["previous"] = (lambda b: run_protocol(
            lambda bb, dt: prev.NativeSimulation(bb, dt, numba.get_num_threads()), b, SPEC),
            threads)
    small = make_batch([0], CFG.replace(nodes=200)).batch
    for run, _ in runs.values():  # builds, loads caches
        run(small)
    return runs


def _timed_at(run, threads, batch):
    saved = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return timed(lambda: run(batch))
    finally:
        numba.set_num_threads(saved)


@pytest.fixture(scope="module")
def rounds(engines, batch):
    """name -> {"quiet"|"loaded": [(wall s, utilisation, samples), ...]}, interleaved."""
    out = {name: {"quiet": [], "loaded": []} for name in engines}
    for _ in range(ROUNDS):
        for name, (run, threads) in engines.items():
            settle(SETTLE_S)
            out[name]["quiet"].append(_timed_at(run, threads, batch))
            with busy_process(BUSY):
                out[name]["loaded"].append(_timed_at(run, threads, batch))
    return out


def test_bench_share(benchmark, engines, rounds, batch):
    lines, info = [], {}
    for name, r in rounds.items():
        threads = engines[name][1]
        q = [w for w, _, _ in r["quiet"]]
        ld = [w for w, _, _ in r["loaded"]]
        best = min(ld) / min(q)
        median = statistics.median(ld) / statistics.median(q)
        info[name] = {"threads": threads,
                      "quiet_rounds": [(w, u) for w, u, _ in r["quiet"]],
                      "loaded_rounds": [(w, u) for w, u, _ in r["loaded"]],
                      "quiet_best_s": min(q), "loaded_best_s": min(ld),
                      "quiet_median_s": statistics.median(q),
                      "loaded_median_s": statistics.median(ld),
                      "ratio_best": best, "ratio_median": median}
        lines.append(f"{name} ({threads} thread(s)): quiet best {min(q):.3f} s median "
                     f"{statistics.median(q):.3f} s; loaded best {min(ld):.3f} s median "
                     f"{statistics.median(ld):.3f} s; loaded/quiet {best:.2f}x (best), "
                     f"{median:.2f}x (median)\n  quiet  "
                     + ", ".join(f"{w:.2f}s@{u:.2f}" for w, u, _ in r["quiet"])
                     + "\n  loaded " + ", ".join(f"{w:.2f}s@{u:.2f}" for w, u, _ in r["loaded"]))
    benchmark.extra_info.update(case=CASE, rows=batch.n_rows, nnz=batch.nnz, n_k=batch.n_k,
                                steps=SPEC.n_transient + SPEC.n_measure, rounds=ROUNDS,
                                busy_processes=BUSY,
                                numba_threads=numba.get_num_threads(), **info)
    benchmark.pedantic(lambda: None, rounds=1)  # only to carry extra_info into the JSON
    print("\n" + "\n".join(lines))
    cur = info["current"]
    if cur["ratio_best"] >= SHARE_LIMIT and BUSY == 1:
        full = 0.9 * cur["threads"]
        if not any(u >= full for _, u in cur["quiet_rounds"]):
            pytest.skip(f"loaded/quiet {cur['ratio_best']:.2f}x >= {SHARE_LIMIT}x but no "
                        f"quiet round had its cores: machine too busy to decide")
        pytest.fail(f"beside one busy process the CPU engine took {cur['ratio_best']:.2f}x "
                    f"its quiet time (limit {SHARE_LIMIT}x)")


def test_same_numbers_quiet_and_loaded(rounds):
    want = rounds["current"]["quiet"][0][2]
    assert np.all(np.isfinite(want)) and np.unique(want).size > want.size // 2
    for name, r in rounds.items():
        for i, (_, _, got) in enumerate(r["quiet"] + r["loaded"]):
            np.testing.assert_array_equal(got, want, err_msg=f"{name} run {i + 1}")
