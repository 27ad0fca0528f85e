"""A study's batches on a Dask cluster: the client side.

:func:`open_cluster` starts or joins a cluster (``kcbatch.run.scheduler.SchedulerSpec``)
and yields a :class:`ClusterSession`; ``run_study(cfg, scheduler=...)`` uses it
in place of its single-process loop. The session submits one task per batch
(``cluster_task.compute_batch``: a run range in, records out; graphs are never
shipped), at most one per worker thread at a time so that a Ctrl-C waits for
little and workers that join later get work, and hands each finished batch to
the caller as it arrives, in any order: the client alone writes the store.

A worker killed mid-batch is Dask's business: the scheduler reruns its batch
elsewhere (``distributed.scheduler.allowed-failures`` times), and the records
are the same whoever computes them. dask and distributed are imported here
only, inside functions: ``import kcbatch`` never loads them.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn

from kcbatch.engines import EngineUnavailable
from kcbatch.inputs.pipeline import chunk_runs
from kcbatch.protocol.config import ConfigError, StudyConfig
from kcbatch.run.cluster_task import (
    BatchOutcome,
    WorkerPlan,
    WorkerProblem,
    compute_batch,
    probe,
)
from kcbatch.run.scheduler import (
    ClusterError,
    SchedulerSpec,
    address_of_file,
    host_port,
    parse_scheduler,
    require_extra,
    usable_cores,
)
from kcbatch.version import __version__

# Seconds to reach a scheduler before giving up with its address.
CONNECT_TIMEOUT = 20.0
# A Dask scheduler sends its handshake as soon as a connection opens: a message
# of a few hundred bytes, announced in its first 8 bytes. A peer that sends
# nothing within HANDSHAKE_WAIT seconds (an HTTP server, such as the dashboard
# on 8787, waits for a request) or announces more than HANDSHAKE_MAX_BYTES is
# not a scheduler, and is refused before distributed would allocate what it
# announces.
HANDSHAKE_WAIT = 5.0
HANDSHAKE_MAX_BYTES = 1 << 20
# How often the client wakes up while it waits for batches: a Ctrl-C's stop,
# a lost scheduler and workers that joined are noticed within this.
_POLL = 0.25
# Seconds the client may stay disconnected from its scheduler before the study
# stops (distributed reconnects by itself for a short outage).
_LOST_AFTER = 10.0
# distributed's errors for futures cancelled under us (one future, several): when the
# scheduler is lost they are how a result or a wait ends.
_CANCELLED = ("FutureCancelledError", "FuturesCancelledError")


class WorkerUnusable(EngineUnavailable):
    """A worker cannot run the study's device; the message names the worker."""


@dataclass
class WorkerTimes:
    """What one worker did in this session: batches, runs, seconds inside the
    engine and generating networks, and its device."""

    device: str = ""
    batches: int = 0
    runs: int = 0
    engine_seconds: float = 0.0
    generate_seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"device": self.device, "batches": self.batches, "runs": self.runs,
                "engine_seconds": round(self.engine_seconds, 3),
                "generate_seconds": round(self.generate_seconds, 3)}


@dataclass
class ClusterRun:
    """What :meth:`ClusterSession.run` did: per worker, and whether a stop
    ended it with runs left."""

    workers: dict[str, WorkerTimes] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def engine_seconds(self) -> float:
        return sum(w.engine_seconds for w in self.workers.values())

    @property
    def generate_seconds(self) -> float:
        return sum(w.generate_seconds for w in self.workers.values())


def local_worker_env(n_workers: int, cores: int | None = None) -> dict[str, str]:
    """The environment of each of ``n_workers`` worker processes on this
    machine: the cores divided between their numba (and BLAS) thread pools,
    at least one thread each, so that N workers never oversubscribe."""
    threads = str(max(1, (cores or usable_cores()) // n_workers))
    return {"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def _ignore_sigint_plugin():
    """A worker plugin that makes local worker processes ignore SIGINT: a
    Ctrl-C in the terminal reaches the whole process group, and the client
    (kcbatch's own handler) decides what it means; the workers must not die
    with their batch. Workers restarted later get it too."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class IgnoreSigint(WorkerPlugin):
        name = "kcbatch-ignore-sigint"

        def setup(self, worker):
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return IgnoreSigint()


def _cannot_connect(spec: SchedulerSpec, timeout: float, exc: BaseException) -> ClusterError:
    where = (f"at {spec.target}" if spec.kind == "address"
             else f"of the scheduler file {spec.target}")
    return ClusterError(f"cannot connect to the Dask scheduler {where} within {timeout:g} s "
                        f"({type(exc).__name__}: {exc}); is it running, and reachable from "
                        f"here?")


def _recv(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def probe_scheduler(spec: SchedulerSpec, timeout: float = CONNECT_TIMEOUT) -> None:
    """ClusterError unless what listens at ``spec``'s tcp:// address sends a
    Dask scheduler's handshake: within ``timeout`` seconds a connection (tried
    again while refused: the scheduler may be starting), then within
    HANDSHAKE_WAIT seconds the 8 bytes announcing a message of at most
    HANDSHAKE_MAX_BYTES. Nothing is sent to the peer. tls:// addresses are left
    to distributed (the handshake comes after TLS's own)."""
    import socket
    import struct

    address = _address(spec)
    if not address.startswith("tcp://"):
        return
    host, port = host_port(address)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((host, port),
                                            timeout=max(0.01, deadline - time.monotonic()))
            break
        except OSError as exc:
            if time.monotonic() + 0.2 >= deadline:
                raise _cannot_connect(spec, timeout, exc) from None
            time.sleep(0.2)
    with sock:
        sock.settimeout(HANDSHAKE_WAIT)
        try:
            head = _recv(sock, 8)
        except TimeoutError:
            raise _not_scheduler(address, f"it sent nothing within {HANDSHAKE_WAIT:g} s of "
                                          f"the connection (a scheduler sends its handshake "
                                          f"at once)") from None
        except OSError as exc:
            raise _cannot_connect(spec, timeout, exc) from None
    if len(head) < 8:
        raise _not_scheduler(address, "it closed the connection without a handshake")
    (announced,) = struct.unpack("Q", head)
    if not 0 < announced <= HANDSHAKE_MAX_BYTES:
        raise _not_scheduler(address, f"its first message announces {announced} bytes (a "
                                      f"handshake is a few hundred)")


def check_tls(spec: SchedulerSpec) -> None:
    """ConfigError for a tls:// scheduler address without Dask's TLS settings
    (distributed would fail to connect with a TypeError)."""
    if spec.kind != "address" or not spec.target.startswith("tls://"):
        return
    from distributed.security import Security

    if Security().get_connection_args("client").get("ssl_context") is None:
        raise ConfigError("scheduler", spec.target,
                          "tls:// needs Dask's TLS settings (distributed.comm.tls: ca-file, "
                          "client cert and key, in the Dask config or its "
                          "DASK_DISTRIBUTED__COMM__TLS__... variables); without them, give "
                          "the scheduler's tcp://HOST:PORT")


def _start(spec: SchedulerSpec, timeout: float):
    """(client, cluster or None) for ``spec``; ClusterError when it cannot
    connect, or when what answers is not a Dask scheduler (:func:`probe_scheduler`)."""
    from distributed import Client, LocalCluster

    # No dashboard; the scheduler's HTTP endpoints (health, metrics) on a free
    # port, not 8787, so that studies started side by side do not warn.
    quiet = {"dashboard_address": None, "silence_logs": logging.ERROR,
             "scheduler_kwargs": {"dashboard_address": ":0"}}
    if spec.kind == "local":
        cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                               env=local_worker_env(spec.workers), **quiet)
    elif spec.kind == "local-cuda":
        from dask_cuda import (
            LocalCUDACluster,  # CUDA_VISIBLE_DEVICES rotated per worker
        )
        # Two threads: one generates the next batch's networks while the other
        # integrates (one batch on the GPU at a time, cluster_task's lock).
        cluster = LocalCUDACluster(threads_per_worker=2, **quiet)
    else:
        cluster = None
    try:
        if cluster is not None:
            client = Client(cluster)
            client.register_plugin(_ignore_sigint_plugin())
            return client, cluster
        probe_scheduler(spec, timeout)
        return _client(spec, timeout), None
    except (OSError, TimeoutError, TypeError, ValueError, AssertionError, MemoryError) as exc:
        # no connection, or distributed's own failure on what it was given
        if cluster is not None:
            cluster.close()
        raise _cannot_connect(spec, timeout, exc) from None


def _client(spec: SchedulerSpec, timeout: float):
    """A Client of the scheduler at ``spec`` (an address or a scheduler file),
    past :func:`probe_scheduler`. A peer whose handshake announces a plausible
    size and then holds bytes distributed cannot unpack fails inside its
    protocol code (struct.error, msgpack's errors, KeyError on a message
    without its fields, an allocation of the size a frame announces, ...):
    any failure but a lost connection is a ClusterError naming the address
    and the error, in one line."""
    from distributed import Client

    try:
        if spec.kind == "address":
            return Client(spec.target, timeout=timeout)
        return Client(scheduler_file=spec.target, timeout=timeout)
    except (OSError, TimeoutError):
        raise  # no connection: _start's line
    except Exception as exc:
        raise _not_scheduler(_address(spec), f"its handshake could not be read "
                                             f"({type(exc).__name__}: {exc}); or it is one "
                                             f"this distributed cannot talk to") from None


def _address(spec: SchedulerSpec) -> str:
    """The scheduler address of an address or scheduler-file ``spec``."""
    return spec.target if spec.kind == "address" else address_of_file(spec.target)


def _not_scheduler(address: str, why: str) -> ClusterError:
    return ClusterError(f"the server at {address} is not a Dask scheduler: {why}; check the "
                        f"address: the scheduler listens on port 8786 unless told otherwise, "
                        f"8787 is its dashboard's (HTTP)")


def _raise_problem(problem: WorkerProblem) -> None:
    if problem.kind == "device":
        raise WorkerUnusable(f"worker {problem.worker}: {problem.message}")
    if problem.kind == "config":
        raise ConfigError(problem.param, problem.value,
                          f"{problem.allowed} (on worker {problem.worker})")
    raise ClusterError(f"worker {problem.worker}: {problem.message}")


class ClusterSession:
    """A connected Dask client (and the cluster it started, if any)."""

    def __init__(self, spec: SchedulerSpec, client, cluster=None):
        self.spec = spec
        self.client = client
        self.cluster = cluster
        self._lost_since: float | None = None

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    def worker_threads(self) -> dict[str, int]:
        """Worker address -> its Dask threads, as the scheduler knows them now.
        ClusterError when the scheduler is gone: the call is a round trip to it,
        and a scheduler that died since the last status check fails it with an
        OSError (distributed's CommClosedError, a refused connection)."""
        try:
            return dict(self.client.nthreads())
        except OSError:
            self._lost()

    def _check_connected(self) -> None:
        if self.client.status == "running":
            self._lost_since = None
            return
        now = time.monotonic()
        if self._lost_since is None:
            self._lost_since = now
        if self.client.status in ("closed", "closing") or now - self._lost_since > _LOST_AFTER:
            self._lost()

    def _lost(self) -> NoReturn:
        raise ClusterError(f"lost the connection to the Dask scheduler at {self.address}")

    def _wait(self, futures, stop: threading.Event | None, *, until_stop: bool):
        """The futures of ``futures`` that are done, waiting for at least one.
        None when ``stop`` is set first and ``until_stop``."""
        from distributed import wait
        while True:
            self._check_connected()
            if until_stop and stop is not None and stop.is_set():
                return None
            try:
                done, _ = wait(futures, timeout=_POLL, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            except Exception as exc:
                if type(exc).__name__ not in _CANCELLED:
                    raise
                self._lost()
            if done:
                return done

    def plan(self, cfg: StudyConfig, pending: int,
             stop: threading.Event | None = None,
             notice: Callable[[str], None] | None = None) -> WorkerPlan | None:
        """The device and batch size for ``pending`` runs of ``cfg``, as one worker's
        engine decides them (waiting for a worker to join). None when ``stop`` is set
        first. WorkerUnusable, ConfigError or ClusterError when that worker cannot run it."""
        told = False
        while not self.worker_threads():
            self._check_connected()
            if not told and notice is not None:
                notice(f"waiting for Dask workers to join the scheduler at {self.address}")
                told = True
            if stop is not None and stop.is_set():
                return None
            time.sleep(_POLL)
        fut = self.client.submit(probe, cfg, pending, __version__, pure=False,
                                 key=f"kcbatch-probe-{uuid.uuid4().hex[:8]}")
        if self._wait([fut], stop, until_stop=True) is None:
            fut.cancel()
            return None
        answer = self._result(fut, "the probe of the workers")
        if isinstance(answer, WorkerProblem):
            _raise_problem(answer)
        return answer

    def _result(self, fut, what: str):
        if fut.status == "cancelled":
            self._check_connected()
            self._lost()
        if fut.status == "error":
            exc = fut.exception()
            if type(exc).__name__ == "KilledWorker":
                raise ClusterError(f"{what} killed every worker that ran it ({exc}); "
                                   f"the workers may lack memory for it")
        try:
            return fut.result()
        except Exception as exc:
            # cancelled since the status was read: the scheduler went away meanwhile
            if type(exc).__name__ not in _CANCELLED:
                raise
            self._lost()

    def run(self, cfg: StudyConfig, pending: list[int], batch: int,
            on_batch: Callable[[BatchOutcome], None],
            stop: threading.Event | None = None) -> ClusterRun:
        """Compute ``pending`` runs of ``cfg`` in batches of ``batch`` runs;
        ``on_batch(outcome)`` for each as it arrives (any order). When ``stop``
        is set no more batches are submitted; those running finish and are
        handed over. Raises WorkerUnusable naming the worker whose device
        fails, ClusterError when the scheduler is lost."""
        out = ClusterRun()
        todo = deque(chunk_runs(pending, batch))
        in_flight: dict = {}
        tag = uuid.uuid4().hex[:8]
        capacity, checked = 1, 0.0
        try:
            while in_flight or (todo and not (stop is not None and stop.is_set())):
                if time.monotonic() - checked > 1.0:  # workers join and leave
                    capacity = max(1, sum(self.worker_threads().values()))
                    checked = time.monotonic()
                while todo and len(in_flight) < capacity and not (stop is not None
                                                                  and stop.is_set()):
                    runs = todo.popleft()
                    fut = self.client.submit(compute_batch, cfg, runs, pure=False,
                                             key=f"kcbatch-runs-{runs[0]}-{runs[-1]}-{tag}")
                    in_flight[fut] = runs
                if not in_flight:
                    break
                done = self._wait(list(in_flight), stop, until_stop=False)
                for fut in done:
                    runs = in_flight.pop(fut)
                    outcome = self._result(fut, f"the batch of runs {runs[0]}-{runs[-1]}")
                    fut.release()
                    if isinstance(outcome, WorkerProblem):
                        _raise_problem(outcome)
                    w = out.workers.setdefault(outcome.worker, WorkerTimes(outcome.device))
                    w.batches += 1
                    w.runs += len(outcome.runs)
                    w.engine_seconds += outcome.engine_seconds
                    w.generate_seconds += outcome.generate_seconds
                    on_batch(outcome)
        finally:
            for fut in in_flight:
                fut.cancel()
        out.interrupted = bool(todo)
        return out

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


@contextlib.contextmanager
def open_cluster(scheduler: SchedulerSpec | str,
                 timeout: float = CONNECT_TIMEOUT) -> Iterator[ClusterSession]:
    """A :class:`ClusterSession` for ``scheduler`` (a spec, or the text of
    ``--scheduler``), closed (and a cluster it started shut down) on exit."""
    spec = parse_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
    require_extra(spec)
    check_tls(spec)
    with _quiet_client_logs():
        session = ClusterSession(spec, *_start(spec, timeout))
        try:
            yield session
        finally:
            session.close()


@contextlib.contextmanager
def _quiet_client_logs():
    """distributed's client logs a lost scheduler as tracebacks on stderr while
    it tries to reconnect; kcbatch says it in one line (ClusterError) instead."""
    import distributed  # noqa: F401  (its import sets the levels of its loggers)

    loggers = [logging.getLogger(n) for n in ("distributed.client", "distributed.comm",
                                              "distributed.core", "distributed.batched")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


__all__ = ["CONNECT_TIMEOUT", "ClusterRun", "ClusterSession", "WorkerTimes", "WorkerUnusable",
           "local_worker_env", "open_cluster"]
