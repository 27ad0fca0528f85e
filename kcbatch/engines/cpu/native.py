"""The CPU engine's native pass: ``kernels/kuramoto_cpu.cpp`` built with g++.

It computes every (row, K) value with the operations, in the order, of the
numba pass (``stage.rk4_stage``), so its numbers are those of the numba
pass bit for bit (and so those of ``bench/cpu_baseline.py``), independent of
threads and batches. What differs is the layout (the file's header): K in blocks of
``vecs`` 32-byte vectors, each block a separate array; a thread takes one
network's rows of one block (a task) through a call's steps, with no barrier, so
its working set is one network's block whatever the batch.

It shares the machine: a call's threads are its own (std::threads, made per
call), take tasks from one schedule, a segment of steps at a time when tasks are
few (:func:`segment_work`), the least advanced task first, so no thread idles
while a task is free and a thread slowed by another process holds back one
segment, not the call; and a thread that waits sleeps after a short spin (no
OpenMP runtime, whose waiting threads spin, see the file's header).

:class:`~kcbatch.engines.cpu.engine.CpuEngine` uses it for batches of more than one K
per network when a C++ compiler is there (the build is cached, see
:mod:`kcbatch.engines.cxx`); otherwise, or with ``KCBATCH_CPU_NATIVE=0``, the
numba pass runs, with the same numbers.
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import os

import numpy as np
from numpy.typing import DTypeLike

from kcbatch.engines.cpu.stage import row_chunks
from kcbatch.engines.cpu.state import HostSimulation, order_parameter, start_phases
from kcbatch.engines.cxx import BuildError, build, compiler, kernel_text
from kcbatch.engines.protocols import StepProgress
from kcbatch.engines.steps import check_steps
from kcbatch.inputs.batch import Batch

ENV = "KCBATCH_CPU_NATIVE"
CPU_FILE = "kuramoto_cpu.cpp"
# -march=native: the vector width and instructions of this host (the cache key
# holds the host's CPU flags). No -ffast-math, no FMA contraction: results
# must be the numba pass's bit for bit. -pthread: the call's threads are
# std::threads (no OpenMP, whose waiting threads spin, see the file's header).
CXX_FLAGS = ("-O3", "-march=native", "-std=c++17", "-pthread", "-shared", "-fPIC",
             "-fno-fast-math", "-ffp-contract=off", "-w")
TILE = 32          # rows whose points are computed before their sin/cos (rows_stage)
PREFETCH = 8       # neighbour entries prefetched ahead in the gathers
MAX_VECS = 4       # widest block: 4 vectors (32 float32 K)
VECTOR_BYTES = 32  # one AVX2 register
CACHE_LINE = 64
# Plan costs, fitted to the default run on the 2-core development box with the
# earlier OpenMP pass (one task per thread for a whole call), best of 8
# interleaved rounds (single rounds vary by 15-40% there): 50 K in 2 blocks of
# 32: 0.75 s; in 4 of 16: 0.81 s; in 7 of 8 (4 on one thread): 0.89 s.
# Sharing a block's rows costs a barrier per stage and moves each stage's
# output between cores: per lane, ~1.5x a block taken whole.
ROWS_SPLIT_COST = 1.5
# Time per lane by block width (vectors): narrower blocks pay the index load
# and address of each neighbour for fewer lanes.
VEC_COST = {1: 1.25, 2: 1.1, 3: 1.0, 4: 1.0}
# (row, K) system-steps per task segment when tasks are few (segment_work): ~2 ms
# on this box (2 steps of a 24-K block of 10^4 rows). Shorter segments move
# tasks between cores more often; longer ones leave a thread idle for longer
# when a slowed thread holds the last segment of a call.
SEGMENT_SYSTEM_STEPS = 500_000
# Tasks per thread from which a task goes through a whole call at once: with
# that many, a slowed thread's last task is a small part of the call.
TASKS_PER_THREAD = 4
# (row, K) system-steps per C++ call at most: ~0.15 s on 2 cores. A call cannot
# be interrupted and progress is reported after each, so Ctrl-C, a study's
# clean stop and the progress bar wait for it; each call costs ~0.1 ms beyond
# its steps (its threads are made and joined, measured on 2 threads) and up to a
# segment's wait at its end, which a call per step would pay every step. The
# default run (5e5 systems) takes 50 steps per call.
CALL_SYSTEM_STEPS = 25_000_000
# Rows shared beside a busy process (kuramoto_cpu.cpp, SoloWatch): in a call,
# once a team's chunks per second stay below SOLO_RATIO times what its fastest
# member computes per second (two windows of SOLO_WINDOW_NS in a row), that
# member finishes the call's shared stages alone, with no barrier and no moving
# of each stage's rows between cores (ROWS_SPLIT_COST). Quiet, two threads do
# 1.4 to 1.9 times their fastest member's chunks per second; beside one busy
# process about 1.0, and one thread alone is faster than the team. Windows of
# 2 ms left quiet calls to one thread after blips of 4 ms; of 10 ms, not: one
# network, 5 K (bench/test_bench_cpu_share.py, KCBATCH_BENCH_SHARE_CASE=rows-shared,
# 10 interleaved rounds) took 0.443 s quiet and 0.848 s beside a busy process
# (medians), against 0.439 and 0.951 s without the watch.
SOLO_RATIO = 1.2
SOLO_WINDOW_NS = 10_000_000
# Snapshots of (sin, cos) one measurement call may keep for its samples.
SNAPSHOT_BYTES = 64 << 20


def disabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off")


def cpu_source(*, tile: int, prefetch: int) -> str:
    """The C++ translation unit of the native pass: a preamble with its tuning
    (:data:`TILE`, :data:`PREFETCH`) and the file."""
    return (f"#define KC_TILE {int(tile)}\n#define KC_PREFETCH {int(prefetch)}\n"
            f"#line 1 \"{CPU_FILE}\"\n" + kernel_text(CPU_FILE))


@functools.cache
def _built(cxx: str | None) -> ctypes.CDLL | BuildError:
    """The library built by ``cxx``, or why it could not be: a failure is
    remembered too, so a host whose build fails pays one compile, not one per
    engine start."""
    try:
        return build("kuramoto_cpu", cpu_source(tile=TILE, prefetch=PREFETCH), CXX_FLAGS)
    except BuildError as exc:
        return exc


def _library() -> ctypes.CDLL:
    lib = _built(compiler())
    if isinstance(lib, BuildError):
        raise lib
    return lib


def unavailable_reason() -> str | None:
    """None when the native pass can run here, else why not (one line: the
    failure and the compiler's first error, or what is wrong with the build
    cache, :class:`~kcbatch.engines.cxx.CacheError`)."""
    if disabled():
        return f"turned off by {ENV}={os.environ[ENV]}"
    try:
        _library()
    except BuildError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        first_error = next((ln for ln in lines[1:] if "error" in ln), None)
        reason = lines[0] if first_error is None else f"{lines[0]} {first_error}"
        return reason[:300]
    return None


@dataclasses.dataclass(frozen=True)
class Group:
    """K columns ``[k0, k1)`` in blocks of ``vecs`` vectors; ``by_block``: each
    (network, block) a task that one thread at a time advances (the call's
    schedule, see :func:`plan`), else every block's rows shared by all threads (a
    barrier per stage)."""

    k0: int
    k1: int
    vecs: int
    by_block: bool


def _task_cost(blocks: list[int], lanes: int, threads: int, networks: int) -> float:
    """Time per step of tasks (one per network and block of ``blocks``, in
    vectors) on ``threads``: the lanes per thread, each weighted by its block
    width's :data:`VEC_COST`, or the largest task if that is longer (a task runs
    on one thread at a time)."""
    per_network = [v * lanes * VEC_COST[v] for v in blocks]
    return max(sum(per_network) * networks / threads, max(per_network))


def plan(n_k: int, threads: int, itemsize: int, networks: int = 1) -> tuple[Group, ...]:
    """How :class:`NativeSimulation` cuts ``n_k`` K into groups for ``threads``
    and a batch of ``networks``.

    Candidates, per block width: every K in tasks of that width; whole blocks of
    that width and the K left over in a narrower block, all in tasks (the call
    schedules the tasks of both groups together); and, on several threads, every
    K in blocks of that width whose rows all threads share (:data:`ROWS_SPLIT_COST`
    per lane). Tasks cost :func:`_task_cost`: the call's schedule hands out
    segments of steps, so tasks of unequal size still share the threads evenly.
    Ties go to fewer groups, then tasks, then wider blocks (fewer index loads per
    neighbour). For the default 50 K on 2 threads and one network: two blocks of
    24 K and the last 2 K in a block of 8, three tasks that the threads take
    turns on."""
    lanes = VECTOR_BYTES // itemsize
    options: list[tuple[tuple[float, int, int, int], tuple[Group, ...]]] = []
    for vecs in range(1, MAX_VECS + 1):
        width = vecs * lanes
        full, rest = divmod(n_k, width)
        blocks = -(-n_k // width)
        options.append(((_task_cost([vecs] * blocks, lanes, threads, networks), 1, 0, -vecs),
                        (Group(0, n_k, vecs, True),)))
        tail = -(-rest // lanes)
        if full and 0 < tail < vecs:
            cost = _task_cost([vecs] * full + [tail], lanes, threads, networks)
            options.append(((cost, 2, 0, -vecs), (Group(0, full * width, vecs, True),
                                                  Group(full * width, n_k, tail, True))))
        if threads > 1:
            cost = blocks * width * VEC_COST[vecs] * networks / threads * ROWS_SPLIT_COST
            options.append(((cost, 1, 1, -vecs), (Group(0, n_k, vecs, False),)))
    return min(options, key=lambda o: o[0])[1]


def segment_work(plan: tuple[Group, ...], threads: int, itemsize: int, networks: int) -> int:
    """System-steps per segment of a task for a call of ``plan`` (0: a task goes
    through the whole call at once): :data:`SEGMENT_SYSTEM_STEPS` when the plan
    has fewer than :data:`TASKS_PER_THREAD` tasks per thread, so that a thread
    slowed by another process holds back at most one segment."""
    lanes = VECTOR_BYTES // itemsize
    tasks = networks * sum(-(-(g.k1 - g.k0) // (g.vecs * lanes)) for g in plan if g.by_block)
    return SEGMENT_SYSTEM_STEPS if tasks < TASKS_PER_THREAD * threads else 0


def planned_k(n_k: int, threads: int, itemsize: int, networks: int = 1) -> int:
    """The K lanes :func:`plan` allocates for ``n_k`` K (padding included):
    what the memory estimate counts."""
    lanes = VECTOR_BYTES // itemsize
    total = 0
    for g in plan(n_k, threads, itemsize, networks):
        width = g.vecs * lanes
        total += -(-(g.k1 - g.k0) // width) * width
    return total


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array starting on a 64-byte cache line.

    numpy's buffers start 16 bytes past one, so a block's records of 64-256
    bytes would straddle one more cache line each, on every gather."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(n * dtype.itemsize + CACHE_LINE, dtype=np.uint8)
    skip = -raw.ctypes.data % CACHE_LINE
    return raw[skip:skip + n * dtype.itemsize].view(dtype).reshape(shape)


def _blocks(a: np.ndarray, width: int, fill: float) -> np.ndarray:
    """``[R, nK]`` -> ``[nb, R, width]`` (cache-line aligned), the K beyond nK
    set to ``fill``."""
    rows, n_k = a.shape
    nb = -(-n_k // width)
    out = aligned_empty((nb, rows, width), a.dtype)
    out[...] = fill
    for blk in range(nb):
        k0 = blk * width
        k1 = min(n_k, k0 + width)
        out[blk, :, :k1 - k0] = a[:, k0:k1]
    return out


def _unblock(b: np.ndarray, n_k: int) -> np.ndarray:
    """``[nb, R, width]`` -> ``[R, nK]`` (a new contiguous array)."""
    nb, rows, width = b.shape
    return np.ascontiguousarray(b.transpose(1, 0, 2).reshape(rows, nb * width)[:, :n_k])


def network_chunks(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """Row chunks of equal work (``stage.row_chunks``) within each network:
    boundaries ``chunks`` int64 and ``offset [B + 1]`` int64, network ``b``'s
    chunks being ``chunks[c], chunks[c + 1]`` for ``offset[b] <= c < offset[b + 1]``
    (a network's last boundary is the next one's first)."""
    bounds, offset = [np.zeros(1, np.int64)], [0]
    for b in range(batch.n_networks):
        r0, r1 = int(batch.node_offset[b]), int(batch.node_offset[b + 1])
        local = row_chunks(batch.indptr[r0:r1 + 1]) if r1 > r0 else np.zeros(1, np.int64)
        bounds.append(local[1:] + r0)
        offset.append(offset[-1] + local.shape[0] - 1)
    return np.concatenate(bounds), np.asarray(offset, dtype=np.int64)


def _check_arrays(batch: Batch) -> None:
    """The C++ entry points read raw pointers: every array must have the type
    and layout they declare (``Batch``'s docstring), as :func:`kcbatch.inputs.batch.pack`
    makes them."""
    real = batch.dtype
    if real not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"native CPU pass: omega has dtype {real}; float32 or float64 needed")
    want: dict[str, DTypeLike] = {"indptr": np.int64, "indices": np.int32, "row_net": np.int32,
            "node_offset": np.int64, "weight": real,
            "omega": real, "couplings": real}
    for name, dtype in want.items():
        a = getattr(batch, name)
        if a.dtype != dtype or not a.flags.c_contiguous:
            raise ValueError(f"native CPU pass: batch.{name} is {a.dtype}"
                             f"{'' if a.flags.c_contiguous else ' (not C-contiguous)'}; "
                             f"a C-contiguous {np.dtype(dtype)} array is needed")


def _entry(real: np.dtype):
    """The library's ``kc_cpu_run_<real>``, its argument types set."""
    fn = getattr(_library(), f"kc_cpu_run_{real}")
    c_real = ctypes.c_float if real == np.float32 else ctypes.c_double
    i64, ptr = ctypes.c_longlong, ctypes.c_void_p
    fn.argtypes = ([ptr] * 5 + [i64, i64] + [ptr] * 4 + [i64, i64, ptr, ptr]
                   + [i64, c_real, c_real, ctypes.c_int, i64, i64, i64, ctypes.c_double, i64])
    fn.restype = ctypes.c_longlong  # 1: a shared team went on as one thread
    return fn


class _GroupState:
    """One :class:`Group`'s arrays."""

    def __init__(self, group: Group, real: np.dtype, theta, S0, C0):
        self.group = group
        self.width = group.vecs * VECTOR_BYTES // real.itemsize
        cols = slice(group.k0, group.k1)
        w = self.width
        self.theta = _blocks(theta[:, cols], w, 0.0)                     # [nb, R, w]
        shape = self.theta.shape[:2] + (2, w)                            # [nb, R, 2, w]
        X0 = aligned_empty(shape, real)
        X0[:, :, 0, :] = _blocks(S0[:, cols], w, 0.0)
        X0[:, :, 1, :] = _blocks(C0[:, cols], w, 1.0)
        # stage s reads X[s % 2]; four stages end in X[0]
        self.X = (X0, aligned_empty(shape, real))
        self.acc = aligned_empty(self.theta.shape, real)
        self.snap: np.ndarray | None = None  # [>= count, nb, R, 2, w], see snapshots

    def snapshots(self, count: int) -> np.ndarray:
        """A buffer of ``count`` snapshots of ``X[0]``, ``[count, nb, R, 2, w]``
        (kept for the next call)."""
        shape = (count,) + self.X[0].shape
        if self.snap is None or self.snap.shape[0] < count or self.snap.shape[1:] != shape[1:]:
            self.snap = aligned_empty(shape, self.X[0].dtype)
        return self.snap

    def columns(self, a: np.ndarray) -> np.ndarray:
        """This group's ``[nb, R, w]`` array as its ``[R, k1 - k0]`` columns."""
        return _unblock(a, self.group.k1 - self.group.k0)


class NativeSimulation(HostSimulation):
    """:class:`~kcbatch.engines.protocols.Simulation` on the native pass: the state
    of :class:`~kcbatch.engines.cpu.engine.CpuSimulation`, in groups of K blocks
    (:func:`plan`)."""

    def __init__(self, batch: Batch, dt: float, threads: int):
        self.dt = batch.dtype.type(dt)
        self.steps = 0
        self.threads = int(threads)
        # calls in which a rows-shared team left its stages to one thread
        # (SOLO_RATIO), counting on from the source of a take: a diagnostic;
        # which thread computes never changes a number
        self.solo_calls = 0
        self._load(batch)
        self._state(*start_phases(batch))

    def _load(self, batch: Batch) -> None:
        _check_arrays(batch)
        self.batch = batch
        self.couplings = batch.couplings  # [B, nK], padded per block by every call
        self.chunks, self.chunk_offset = network_chunks(batch)
        self.plan = plan(batch.n_k, self.threads, batch.dtype.itemsize, batch.n_networks)
        self._segment_work = segment_work(self.plan, self.threads, batch.dtype.itemsize,
                                          batch.n_networks)
        self._two_pi = batch.dtype.type(2.0 * np.pi)
        self._fn = _entry(batch.dtype)

    def _state(self, theta: np.ndarray, S0: np.ndarray, C0: np.ndarray) -> None:
        """Adopt the phases and their (sin, cos), each ``[R, nK]``; padding
        lanes start at phase 0 with K = 0."""
        self.groups = [_GroupState(g, self.batch.dtype, theta, S0, C0) for g in self.plan]

    def _gather(self, pick) -> np.ndarray:
        return np.concatenate([g.columns(pick(g)) for g in self.groups], axis=1)

    @property
    def S(self) -> np.ndarray:
        """sin of the current phases, ``[R, nK]`` (a copy)."""
        return self._gather(lambda g: g.X[0][:, :, 0, :])

    @property
    def C(self) -> np.ndarray:
        """cos of the current phases, ``[R, nK]`` (a copy)."""
        return self._gather(lambda g: g.X[0][:, :, 1, :])

    def phases(self) -> np.ndarray:
        """The current phases ``[R, nK]`` (a copy)."""
        return self._gather(lambda g: g.theta)

    def _run(self, n_steps: int, snaps: int = 0, first: int = 1, every: int = 1) -> None:
        """``n_steps`` steps of every group in one call; with ``snaps``, each
        group's :meth:`_GroupState.snapshots` get ``X[0]`` after steps ``first``,
        ``first + every``, ... (counted from 1 in this call)."""
        b = self.batch
        cpl = np.ascontiguousarray(self.couplings)  # [B, nK]
        groups = np.array([(g.group.k0, g.group.k1, g.group.vecs, int(g.group.by_block))
                           for g in self.groups], dtype=np.int64)             # [G, 4]
        buffers = np.array([(g.X[0].ctypes.data, g.X[1].ctypes.data, g.theta.ctypes.data,
                             g.acc.ctypes.data, g.snapshots(snaps).ctypes.data if snaps else 0)
                            for g in self.groups], dtype=np.uintp)             # [G, 5]
        self.solo_calls += self._fn(
            b.indptr.ctypes.data, b.indices.ctypes.data, b.weight.ctypes.data,
            b.omega.ctypes.data, b.row_net.ctypes.data, b.n_rows, b.n_networks,
            b.node_offset.ctypes.data, self.chunks.ctypes.data, self.chunk_offset.ctypes.data,
            cpl.ctypes.data, b.n_k, len(self.groups), groups.ctypes.data, buffers.ctypes.data,
            n_steps, self.dt, self._two_pi, self.threads, self._segment_work, first, every,
            SOLO_RATIO, SOLO_WINDOW_NS)
        self.steps += n_steps

    def _step(self) -> None:
        self._run(1)

    def _steps_per_call(self) -> int:
        return max(1, CALL_SYSTEM_STEPS // max(1, self.batch.n_rows * self.batch.n_k))

    def advance(self, n_steps: int, progress: StepProgress | None = None) -> None:
        """``n_steps`` RK4 steps, in calls of at most :data:`CALL_SYSTEM_STEPS`
        system-steps; ``progress(steps)``, if given, after each call."""
        check_steps(n_steps)
        per_call = self._steps_per_call()
        left = n_steps
        while left:
            n = min(left, per_call)
            self._run(n)
            left -= n
            if progress is not None:
                progress(self.steps)

    def measure(self, n_steps: int, sample_every: int,
                progress: StepProgress | None = None) -> np.ndarray:
        """As the numba pass: r after step ``s`` (0-based) when ``s % sample_every
        == 0``. Each call takes snapshots of (sin, cos) at its sampling steps
        (at most :data:`SNAPSHOT_BYTES` of them); r comes from them with the
        numba pass's :func:`order_parameter`, so the same numbers."""
        check_steps(n_steps, sample_every)
        b = self.batch
        n_samples = -(-n_steps // sample_every)
        samples = np.empty((b.n_networks, b.n_k, n_samples), dtype=np.float64)  # [B, nK, nS]
        per_call = self._steps_per_call()
        snap_bytes = sum(g.X[0].nbytes for g in self.groups)
        max_snaps = max(1, SNAPSHOT_BYTES // snap_bytes)
        done = 0
        while done < n_steps:
            first = -done % sample_every + 1  # the call's first sampling step, from 1
            # up to the step before the first sample that would not fit
            n = min(n_steps - done, per_call, first + max_snaps * sample_every - 1)
            count = 0 if first > n else (n - first) // sample_every + 1
            self._run(n, count, first, sample_every)
            for i in range(count):
                S = self._gather(lambda g, i=i: g.snap[i][:, :, 0, :])
                C = self._gather(lambda g, i=i: g.snap[i][:, :, 1, :])
                samples[:, :, (done + first - 1) // sample_every + i] = order_parameter(
                    S, C, b.node_offset)
            done += n
            if progress is not None:
                progress(self.steps)
        return samples
