"""The Python API for users' own networks: ``simulate`` (r(K)), ``find_kc`` (Kc)
and ``hysteresis`` (the adiabatic sweep's two branches)."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kcbatch.analysis.converge import KcEstimates, check_options, estimate_kc
from kcbatch.analysis.sweep import run_sweep
from kcbatch.engines import Engine, get_engine, resolve_device
from kcbatch.inputs.batch import pack
from kcbatch.protocol import choices
from kcbatch.protocol.choices import Coupling, Precision
from kcbatch.protocol.config import (
    DEFAULT_SAMPLE_EVERY,
    DEFAULTS,
    PRECISIONS,
    ConfigError,
    IntegrationSpec,
    check_kernel,
    check_refine,
    steps_for,
    unstable_dt,
)
from kcbatch.protocol.coupling import COUPLINGS, max_weighted_degree

# The API's defaults are the study's (one table: config.DEFAULTS).
_D = DEFAULTS


def _as_csr(graph: Any, g: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(graph, tuple) and len(graph) == 2:
        return np.asarray(graph[0]), np.asarray(graph[1])
    if hasattr(graph, "adj") and hasattr(graph, "nodes"):
        from kcbatch.networks import from_networkx
        return from_networkx(graph)
    raise TypeError(f"invalid graphs[{g}] of type {type(graph).__name__}: "
                    "need a networkx graph or an (indptr, indices) pair")


def _per_graph(values: Any, n_graphs: int, name: str) -> list[np.ndarray]:
    if isinstance(values, np.ndarray) and values.ndim == 2:
        if values.shape[0] != n_graphs:
            raise ValueError(f"invalid {name} with shape {values.shape}: "
                             f"need {n_graphs} rows, one per graph")
        return list(values)
    if isinstance(values, np.ndarray) and values.ndim == 1 and n_graphs == 1:
        return [values]
    values = list(values)
    if len(values) != n_graphs:
        raise ValueError(f"invalid {name}: {len(values)} arrays for {n_graphs} graphs")
    return [np.asarray(v, dtype=np.float64) for v in values]


def simulate(graphs: Sequence[Any], omega: Any, theta0: Any, k_values: Any, *,
             dt: float = _D["dt"], t_transient: float = _D["t_transient"],
             t_measure: float = _D["t_measure"], sample_every: int = DEFAULT_SAMPLE_EVERY,
             device: str = _D["device"], precision: str = _D["precision"],
             fast_math: bool = _D["fast_math"], return_samples: bool = False,
             coupling: str = _D["coupling"], kernel: str = _D["kernel"]) -> np.ndarray:
    """Time-averaged order parameter of each graph at each coupling.

    graphs: sequence of networkx graphs or CSR ``(indptr, indices)`` pairs.
    omega, theta0: one 1-D array per graph (rad/time, rad), or 2-D ``[G, N]``.
    k_values: ``[nK]`` couplings (the same for every graph) or ``[G, nK]``.
    coupling: the weight w_i of ``dtheta_i/dt = omega_i + K w_i sum_j A_ij
      sin(theta_j - theta_i)``: ``degree`` (1/max(k_i, 1)), ``raw`` (1),
      ``mean-degree`` (1/<k> of the node's graph) or ``global`` (1/N).
    kernel: the GPU kernels' strategy, ``auto``, ``global`` or ``shared``
      (one block per graph and K with the graph in shared memory; not on the
      CPU); the same numbers to float32 rounding.
    Returns ``r[G, nK]`` (float64); with ``return_samples=True`` the samples
    ``[G, nK, n_samples]`` instead (r is their mean).

    ConfigError (naming dt and the largest dt allowed) when dt is beyond RK4's
    stability bound ``dt * 2 * max|K| * max_i(w_i k_i) <= 2.78`` on any graph.
    """
    prec, coupling, engine = _options(precision, coupling, device, kernel, fast_math)
    spec = IntegrationSpec.from_times(dt=dt, t_transient=t_transient, t_measure=t_measure,
                                      sample_every=sample_every)
    batch, k_values = _pack_inputs(graphs, omega, theta0, k_values, prec, coupling)
    _check_stable(batch, k_values, spec.dt, coupling)
    samples = engine().integrate(batch, spec)
    return samples if return_samples else samples.mean(axis=2)


def find_kc(graphs: Sequence[Any], omega: Any, theta0: Any, k_values: Any, *,
            threshold: float = _D["threshold"], coupling: str = _D["coupling"],
            dt: float = _D["dt"], t_transient: float | str = _D["t_transient"],
            t_measure: float = _D["t_measure"], sample_every: int = DEFAULT_SAMPLE_EVERY,
            refine: float | None = _D["refine"], refine_points: int = _D["refine_points"],
            kc_tol: float = _D["kc_tol"], t_max: float = _D["t_max"],
            converge: str = _D["converge"], device: str = _D["device"],
            precision: str = _D["precision"],
            fast_math: bool = _D["fast_math"], kernel: str = _D["kernel"]) -> KcEstimates:
    """Kc of each graph: grid rule, interpolated, refined and chi-peak estimators.

    graphs, omega, theta0, k_values, coupling, dt, t_measure, sample_every,
    device, precision, fast_math, kernel: as :func:`simulate` (k_values
      increasing; with ``kernel="shared"`` the converged transients, refinement
      rounds and windows run the shared-memory kernel too).
    t_transient: a time (one measurement window after it, the original
      protocol) or ``"auto"``: windows at T = 5, 10, 20, ... up to ``t_max``,
      integrated continuously, until each graph's interpolated crossing moves by
      less than ``kc_tol`` (or its own noise) between windows.
    refine: bracket width to multisect the first grid bracket down to, with
      ``refine_points`` couplings per graph and round; None: no refinement.
    converge: with ``t_transient="auto"``, "adaptive" (the default: couplings
      whose side of the threshold is settled stop being integrated, and
      refinement continues from the converged bracket) or "exhaustive" (every
      coupling to each graph's final window, refinement from theta0);
      docs/design.md, "Step 6". Ignored with a fixed transient (one window).
    Returns :class:`~kcbatch.analysis.converge.KcEstimates` (per-graph arrays kc,
    kc_interp, kc_refined, kc_chi, kc_chi_err, kc_chi_censored, kc_sigma, t_transient,
    converged, r, r_std, chi, ...; definitions in kcbatch/analysis/converge.py and
    docs/design.md). With a fixed transient, ``r`` is exactly ``simulate(...)``'s.
    """
    prec, coupling, engine = _options(precision, coupling, device, kernel, fast_math)
    spec = check_options(dt=dt, t_transient=t_transient, t_measure=t_measure,
                         sample_every=sample_every, threshold=threshold, refine=refine,
                         refine_points=refine_points, kc_tol=kc_tol, t_max=t_max,
                         converge=converge)
    batch, k_values = _pack_inputs(graphs, omega, theta0, k_values, prec, coupling)
    if not np.all(np.isfinite(k_values)) or np.any(np.diff(k_values, axis=-1) <= 0):
        raise ConfigError("k_values", _short(k_values), "must be finite and increasing")
    if refine is not None:
        check_refine(refine, float(np.max(np.abs(k_values))), int(refine_points))
    _check_stable(batch, k_values, spec.dt, coupling)
    return estimate_kc(engine(), batch, k_values, dt=spec.dt,
                       t_transient=t_transient, t_measure=t_measure,
                       sample_every=sample_every, threshold=threshold, refine=refine,
                       refine_points=refine_points, kc_tol=kc_tol, t_max=t_max,
                       converge=converge, spec=spec)


def hysteresis(graphs: Sequence[Any], omega: Any, theta0: Any, k_values: Any, *,
               coupling: str = _D["coupling"], dt: float = _D["dt"],
               t_transient: float = _D["t_transient"], t_measure: float = _D["t_measure"],
               sample_every: int = DEFAULT_SAMPLE_EVERY, dwell: float | None = _D["dwell"],
               device: str = _D["device"], precision: str = _D["precision"],
               fast_math: bool = _D["fast_math"],
               kernel: str = _D["kernel"]) -> tuple[np.ndarray, np.ndarray]:
    """The adiabatic sweep of each graph: ``(r_forward, r_backward)``, each
    ``[G, nK]`` float64 in increasing-K order (kcbatch/analysis/sweep.py).

    The forward branch starts the first K from ``theta0`` and each later K
    from the previous K's final phases (after its transient and measurement);
    the backward branch continues from the forward branch's end down the same
    grid, K_max first. At every K, r is sampled as :func:`simulate` does.
    graphs, omega, theta0, coupling, dt, t_transient, t_measure, sample_every,
    device, precision, fast_math, kernel: as :func:`simulate`; k_values ``[nK]`` or
    ``[G, nK]``, strictly increasing. With one K, ``r_forward`` is
    ``simulate(...)``'s.
    dwell: the time spent at each K, measurement included [time units]: a
      multiple of dt, at least t_measure; each K integrates ``dwell -
      t_measure`` then measures ``t_measure``. None: ``t_transient + t_measure``
      (t_transient is then not used).
    """
    prec, coupling, engine = _options(precision, coupling, device, kernel, fast_math)
    spec = IntegrationSpec.from_times(dt=dt, t_transient=t_transient, t_measure=t_measure,
                                      sample_every=sample_every)
    if dwell is not None:
        spec = dataclasses.replace(spec, n_transient=_dwell_transient_steps(dwell, spec))
    batch, k_values = _pack_inputs(graphs, omega, theta0, k_values, prec, coupling)
    if not np.all(np.isfinite(k_values)) or np.any(np.diff(k_values, axis=-1) <= 0):
        raise ConfigError("k_values", _short(k_values), "must be finite and increasing")
    _check_stable(batch, k_values, spec.dt, coupling)
    samples = run_sweep(engine(), batch, batch.couplings, dt=spec.dt,
                        n_transient=spec.n_transient, n_measure=spec.n_measure,
                        sample_every=spec.sample_every)
    return samples.forward.mean(axis=2), samples.backward.mean(axis=2)


def _dwell_transient_steps(dwell: Any, spec: IntegrationSpec) -> int:
    """RK4 steps integrated before measuring at each K of a sweep spending
    ``dwell`` there [time units]; ConfigError unless dwell is a positive whole
    number of ``spec.dt`` steps, at least the measurement's."""
    if isinstance(dwell, bool) or not isinstance(dwell, (int, float, np.floating)) \
            or not math.isfinite(dwell) or dwell <= 0:
        raise ConfigError("dwell", dwell, "must be a finite number > 0 (time units at each "
                          "K, measurement included) or None")
    n_dwell = steps_for(float(dwell), spec.dt, "dwell", min_steps=spec.n_measure)
    if n_dwell < spec.n_measure:
        raise ConfigError("dwell", dwell, f"must be at least t_measure="
                          f"{float(f'{spec.n_measure * spec.dt:.12g}')!r} (the time at "
                          f"each K includes its measurement)")
    return n_dwell - spec.n_measure


def _options(precision: Any, coupling: Any, device: Any, kernel: Any, fast_math: bool
             ) -> tuple[Precision, Coupling, Callable[[], Engine]]:
    """The engine options of a call, checked once: the precision's record, the
    coupling's member, and the engine to call once the inputs are checked
    (the device resolved then). ConfigError naming the first bad one."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ConfigError("precision", precision, f"must be one of {', '.join(PRECISIONS)}")
    if not isinstance(coupling, str) or coupling not in COUPLINGS:
        raise ConfigError("coupling", coupling, f"must be one of {', '.join(COUPLINGS)}")
    strategy = check_kernel(kernel, device)

    def engine() -> Engine:
        concrete, _ = resolve_device(device)
        return get_engine(concrete, fast_math, strategy)

    return choices.precision(precision), Coupling(coupling), engine


def _short(values: np.ndarray) -> str:
    return np.array2string(np.ravel(values), threshold=6, edgeitems=2, max_line_width=10**6)


def _pack_inputs(graphs, omega, theta0, k_values, precision: Precision, coupling: Coupling):
    """(Batch, k_values as float64 [nK] or [G, nK]) with the arguments' own messages."""
    if not isinstance(graphs, (list, tuple)):
        graphs = list(graphs)
    csr = [_as_csr(g, i) for i, g in enumerate(graphs)]
    # checked here, not left to pack(), so that the messages name these arguments
    if not csr:
        raise ValueError("invalid graphs: empty; need at least one graph")
    k_values = np.asarray(k_values, dtype=np.float64)
    if k_values.ndim not in (1, 2) or k_values.shape[-1] < 1 \
            or (k_values.ndim == 2 and k_values.shape[0] != len(csr)):
        raise ValueError(f"invalid k_values with shape {k_values.shape}: need [nK] or "
                         f"[{len(csr)}, nK] (one row per graph) with nK >= 1")
    batch = pack(csr, _per_graph(omega, len(csr), "omega"),
                 _per_graph(theta0, len(csr), "theta0"), k_values, precision, coupling)
    return batch, k_values


def _check_stable(batch, k_values: np.ndarray, dt: float, coupling: Coupling) -> None:
    """ConfigError for dt unless every graph of ``batch`` is within its RK4
    bound at its largest |K|; the message names the graph that bounds dt most.
    (Non-finite couplings are left to the integration: they give non-finite r.)"""
    max_wk = max_weighted_degree(np.diff(batch.indptr), batch.node_offset, coupling)
    k_abs = np.abs(np.broadcast_to(k_values, (batch.n_networks, k_values.shape[-1]))).max(axis=1)
    rate = np.where(np.isfinite(k_abs), k_abs * max_wk, 0.0)
    g = int(np.argmax(rate))
    problem = unstable_dt(dt, float(k_abs[g]), float(max_wk[g]))
    if problem is not None:
        raise ConfigError("dt", dt, problem.replace("(K_max", f"(graph {g}: K_max", 1)
                          + "; use a smaller dt or smaller couplings")
