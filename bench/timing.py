"""Timing helpers for the CPU benchmarks on a shared machine.

Other processes on the cores slow a multi-threaded run far more than a
single-threaded one, so each timed round waits (up to a few seconds) for an idle
moment and each timing records its CPU utilisation (process CPU seconds / wall
seconds), which tells a contended round apart.
"""
from __future__ import annotations

import time


def idle_fraction(seconds: float) -> float | None:
    """Fraction of all CPUs idle over ``seconds`` (Linux /proc/stat), else None."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    try:
        t0, i0 = read()
        time.sleep(seconds)
        t1, i1 = read()
    except (OSError, ValueError, IndexError):
        return None
    return (i1 - i0) / max(1, t1 - t0)


def settle(max_wait: float = 5.0, idle: float = 0.9) -> None:
    """Wait (up to ``max_wait`` s) for a 0.2 s window with >= ``idle`` of the CPUs idle."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        f = idle_fraction(0.2)
        if f is None or f >= idle:
            return


def timed(fn):
    """(wall seconds, CPU utilisation = process CPU seconds / wall seconds, result)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    return wall, (time.process_time() - c0) / wall, out
