"""Kc beyond the finite-time protocol: converged transients, refinement, chi peak.

:func:`estimate_kc` integrates one packed batch and returns, per network, the
estimators of :class:`KcEstimates`. ``kcbatch.find_kc`` (users' graphs) and
studies call it; docs/design.md, "Step 6: the converged protocol", is the definition.
With ``t_transient="auto"`` it runs the adaptive protocol
(:mod:`kcbatch.analysis.adaptive`, ``converge="adaptive"``, the default) or the
exhaustive one described here (``converge="exhaustive"``); both share the
windows, the crossing and the stopping rule (:mod:`kcbatch.analysis.windows`).

**Windows.** A measurement window is ``t_measure`` long and starts at a
transient ``T`` (steps ``n_T = T/dt``): r is sampled exactly as the protocol
samples it, so window ``T`` gives what ``simulate(t_transient=T)`` gives, bit
for bit. A fixed ``t_transient`` is one window. ``"auto"`` measures at
``T_0 = min(5, t_max)``, ``T_{j+1} = min(t_max, max(2 T_j, T_j + t_measure))``
(doubling; never overlapping; the last at ``t_max``), integrating each network
continuously from ``theta0`` (between windows the state is advanced, never
restarted).

**Stopping rule.** After window ``j >= 1`` a network stops (``converged``) when
its interpolated crossing moved by at most
``max(kc_tol, noise_factor * sqrt(2) * sigma_j)``. ``sigma_j`` is the
crossing's own uncertainty in window j: the r samples at the two grid points
bracketing the crossing have standard deviations ``s_lo``, ``s_hi``; moving r
by that much moves the linear crossing by ``dK * hypot(s_lo, s_hi) /
(r_hi - r_lo)`` (capped at the bracket width dK). A window mean fluctuates by
at most its samples' spread (less when samples are independent), so two
windows of a settled network differ by about ``sqrt(2) sigma`` at most; the
later window's sigma is used because the earlier one's spread still carries
the drift of the transient (which would let a moving crossing pass). A
settled network whose crossing only jitters (r re-crossing the threshold near
Kc) stops instead of running to ``t_max``; a fixed tolerance alone would not
(``noise_factor=0`` gives that rule). Where the noise is small the rule is
just ``kc_tol``. Guards against critical slowing down (r sitting near its
incoherent value for a long time just above onset, so that r hardly changes
from window to window): a network with no crossing (right-censored) in either
window never stops, and nothing is decided from the change of r itself. A
network with non-finite r is failed (kc NaN) and stops. Networks that never
stop are flagged unconverged at ``t_max``.

**Retiring.** A network that stops is removed from the integration
(``Simulation.retain``): its state is dropped and the others continue in a
smaller batch. Nothing of a network reads another's rows, so every network's
numbers are those it would have alone (tested), and ``work`` counts the
(row, K) system-steps actually integrated.

**Refinement** (``refine=TOL``). The first grid bracket ``[K[i-1], K[i])`` of
the final window is multisected: each round evaluates ``refine_points``
evenly spaced interior couplings per network (batched, couplings per (network,
K)), each a fresh integration from ``theta0`` under the same protocol at the
network's own final transient (networks are grouped by transient, one batch
per group); the new bracket is the first crossing read left to right, until it
is at most TOL wide, or until a round no longer narrows it (float64 cannot
split it further). ``kc_refined`` is the linear crossing in that bracket
(NaN for censored or failed networks, or without ``refine``).

**chi.** ``chi(K) = N var(r)`` over the final window's samples (ddof 0).
``kc_chi`` is the vertex of a least-squares quadratic in ``log chi`` (a
Gaussian peak) over the points near the peak: those whose smoothed log chi (a
three-point running mean) is within ``log 4`` of its largest value (the
first to the last such point), widened one neighbour at a time, the higher
first, to at least five points where the grid has them. Within half the
maximum a Gaussian's log drops by only ``log 2``, too little against the
sampling noise of log chi (about 0.5 with 10 samples) to fix a curvature;
within a quarter it drops by ``log 4``. Equal weights in log chi: the
relative error of a sample variance does not depend on its size.
``kc_chi_err`` is the vertex's standard error (delta method) from the fit's
covariance, with log chi's variance taken as the larger of ``2/(n_samples -
1)`` (the variance of the log of a variance of ``n_samples`` independent
normal samples) and the residuals' mean square over the fit's degrees of
freedom (which also takes in a peak that is not Gaussian): never below what
the scatter gives. No estimate (NaN; ``kc_chi_censored`` says why) when the
smoothed maximum is at the grid's first or last point or the fitted vertex
lies outside the points fitted ("left" / "right": the peak lies beyond them on
that side), when the fit has no maximum or some chi is 0 ("flat"), or when chi
is not finite ("failed").
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from kcbatch.analysis.adaptive import adaptive_windows
from kcbatch.analysis.windows import (
    NOISE_FACTOR,
    Crossing,
    MeasuredWindows,
    bracket_crossing,
    grid_crossing,
    narrowed,
    settled,
    stops,
    window_means,
    window_starts,
)
from kcbatch.engines import Engine, StepProgress, select_networks
from kcbatch.inputs.batch import Batch
from kcbatch.protocol.choices import Converge, is_auto
from kcbatch.protocol.config import ConfigError, IntegrationSpec

__all__ = ["ChiPeak", "KcEstimates", "check_options", "chi_peak", "estimate_kc",
           "window_starts"]


@dataclass(frozen=True, eq=False)
class KcEstimates:
    """Per-network estimates of one batch (G networks, nK grid couplings, W windows).

    k_values [G, nK] float64: the grid of each network.
    kc, kc_interp [G]: grid rule and linear crossing at the final window (K[0]
      when left-censored, NaN when right-censored or failed).
    kc_refined [G]: crossing in the refined bracket (NaN without refine, when
      censored or failed). kc_sigma [G]: uncertainty of kc_interp from the
      spread of r (the stopping rule's sigma; NaN when censored or failed).
    kc_chi, kc_chi_err [G]: K of the chi peak and its standard error (NaN
      unless kc_chi_censored is "none"). kc_chi_censored [G] str: "none",
      "left", "right" (the peak is beyond the grid's or the fit's points on
      that side), "flat" (no maximum) or "failed" (:class:`ChiPeak`).
    censored [G] str: "none", "left" or "right" at the final window ("failed"
      for non-finite r).
    t_transient [G] float64: the transient of the final window (time units).
    converged [G] bool: stopped by the rule (always False with a fixed transient,
      where nothing is checked; see ``auto``).
    r, r_std, chi [G, nK] float64: mean, standard deviation (ddof 0) and
      N var of the r samples of the final window.
    windows [W] float64: the transients measured (time units).
    kc_windows [G, W] float64: kc_interp after each window (NaN where not
      measured or not crossing); kc_windows[:, 0] with T_0 = 5 is the original
      protocol's crossing when t_measure, dt and sample_every are the original's.
    work, refine_work [G] int64: (row, K) system-steps integrated for each
      network's windows and refinement (its couplings; the padding lanes of the
      adaptive protocol's chunks, which a CPU vector computes anyway, are not
      counted); ``plain_work`` [G]: what the plain protocol (one window at
      T = 5, or at the fixed transient) integrates for it.
    auto: whether the transient was "auto".
    r_first, r_second [G, nK] float64: means of the first ``n_first_half``
      samples of the final window and of the rest (the stationarity check).
    last_window [G, nK] int64: the window (index into ``windows``) each K was
      last integrated in: the final window, except for couplings the adaptive
      protocol retired, whose r, r_std, chi and halves are of that window.
    """

    k_values: np.ndarray
    kc: np.ndarray
    kc_interp: np.ndarray
    kc_refined: np.ndarray
    kc_sigma: np.ndarray
    kc_chi: np.ndarray
    kc_chi_err: np.ndarray
    kc_chi_censored: np.ndarray
    censored: np.ndarray
    t_transient: np.ndarray
    converged: np.ndarray
    r: np.ndarray
    r_std: np.ndarray
    chi: np.ndarray
    windows: np.ndarray
    kc_windows: np.ndarray
    work: np.ndarray
    refine_work: np.ndarray
    plain_work: np.ndarray
    auto: bool
    r_first: np.ndarray | None = None
    r_second: np.ndarray | None = None
    last_window: np.ndarray | None = None


def _finite(name: str, value: Any, *, positive: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.floating)) \
        and math.isfinite(value) and (value > 0 if positive else True)
    if not ok:
        raise ConfigError(name, value, "must be a finite number" + (" > 0" if positive else ""))
    return float(value)


def check_options(*, dt: float, t_transient: float | str, t_measure: float, sample_every: int,
                  threshold: float, refine: float | None, refine_points: int, kc_tol: float,
                  t_max: float, converge: Converge | str = Converge.ADAPTIVE) -> IntegrationSpec:
    """Validate the options (ConfigError naming the first bad one); returns the
    spec of the first window (``n_transient`` = its start)."""
    if converge not in tuple(Converge):
        raise ConfigError("converge", converge,
                          f"must be one of {', '.join(repr(str(c)) for c in Converge)}")
    threshold = _finite("threshold", threshold, positive=False)
    if not 0.0 < threshold < 1.0:
        raise ConfigError("threshold", threshold, "must be between 0 and 1 (r lies in [0, 1])")
    if refine is not None:
        _finite("refine", refine, positive=True)
    if isinstance(refine_points, bool) or not isinstance(refine_points, (int, np.integer)) \
            or refine_points < 1:
        raise ConfigError("refine_points", refine_points, "must be an integer >= 1")
    _finite("kc_tol", kc_tol, positive=True)
    if isinstance(t_transient, str):
        if not is_auto(t_transient):
            raise ConfigError("t_transient", t_transient, 'must be a number >= 0 or "auto"')
        _finite("t_max", t_max, positive=True)
        first = IntegrationSpec.from_times(dt=dt, t_transient=0.0, t_measure=t_measure,
                                           sample_every=sample_every)
        starts = window_starts(dt, t_max, first.n_measure)
        return dataclasses.replace(first, n_transient=starts[0])
    return IntegrationSpec.from_times(dt=dt, t_transient=t_transient, t_measure=t_measure,
                                      sample_every=sample_every)


# The chi peak's fit (module docstring, chi): the points whose smoothed log chi
# is within log(1/CHI_FIT_LEVEL) of its largest value, at least CHI_FIT_POINTS
# of them where the grid has them.
CHI_FIT_POINTS = 5
CHI_FIT_LEVEL = 0.25


@dataclass(frozen=True)
class ChiPeak:
    """The chi peak of one network: ``kc`` and its standard error ``err``
    [rad per time unit], NaN unless ``censored == "none"``; ``censored``:
    "none", "left" / "right" (the peak lies below / above the points that
    can be fitted: the largest chi at the grid's first / last point, or the
    fitted vertex outside the points fitted), "flat" (no maximum: the fit is
    not concave, or fewer than 3 positive chi) or "failed" (non-finite chi);
    "retired" where :func:`estimate_kc` found a point of the fit retired before
    the final window (``converge="adaptive"``). ``first``, ``last``: the grid
    indices of the first and last point fitted (-1 when no fit was made)."""

    kc: float
    err: float
    censored: str
    first: int = -1
    last: int = -1


def chi_peak(k: np.ndarray, chi: np.ndarray, n_samples: int) -> ChiPeak:
    """The peak of ``chi`` [nK] on the increasing grid ``k`` [nK] (module
    docstring, chi): a least-squares quadratic in log chi (a Gaussian peak)
    over the points near its largest value. ``n_samples``: the r samples
    behind each chi, which set the a-priori noise of log chi."""
    nan = math.nan
    k = np.asarray(k, dtype=np.float64)
    chi = np.asarray(chi, dtype=np.float64)
    if not np.all(np.isfinite(chi)):
        return ChiPeak(nan, nan, "failed")
    if not np.all(chi > 0.0):
        return ChiPeak(nan, nan, "flat")
    y_all = np.log(chi)
    # three-point running mean of log chi (the end points repeated): picks
    # the peak and the points fitted without following a single noisy point
    smooth = np.convolve(np.pad(y_all, 1, mode="edge"), np.full(3, 1.0 / 3.0), mode="valid")
    i = int(np.argmax(smooth))
    if i == 0:
        return ChiPeak(nan, nan, "left")
    if i == k.size - 1:
        return ChiPeak(nan, nan, "right")
    above = np.flatnonzero(smooth >= smooth[i] + math.log(CHI_FIT_LEVEL))
    lo, hi = int(above[0]), int(above[-1])
    while hi - lo + 1 < CHI_FIT_POINTS and (lo > 0 or hi < k.size - 1):
        left = smooth[lo - 1] if lo > 0 else -math.inf
        right = smooth[hi + 1] if hi < k.size - 1 else -math.inf
        if left >= right:
            lo -= 1
        else:
            hi += 1
    sel = slice(lo, hi + 1)
    # x centred on the largest chi and scaled by the fitted span, for conditioning
    scale = float(k[hi] - k[lo])
    x = (k[sel] - k[i]) / scale
    y = y_all[sel]
    a = np.stack([np.ones_like(x), x, x * x], axis=1)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    _, b, c = (float(v) for v in coef)
    if not c < 0:
        return ChiPeak(nan, nan, "flat")
    vertex = -b / (2.0 * c)
    if vertex < x[0]:
        return ChiPeak(nan, nan, "left")
    if vertex > x[-1]:
        return ChiPeak(nan, nan, "right")
    # log of a variance of n independent normal samples: variance 2/(n-1);
    # scaled up (never down) by the residuals' reduced chi-square
    var_y = 2.0 / max(n_samples - 1, 1)
    dof = x.size - 3
    if dof > 0:
        resid = y - a @ coef
        var_y = max(var_y, float(resid @ resid) / dof)
    cov = var_y * np.linalg.inv(a.T @ a)
    grad = np.array([0.0, -1.0 / (2.0 * c), b / (2.0 * c * c)])
    err = math.sqrt(max(float(grad @ cov @ grad), 0.0)) * scale
    return ChiPeak(float(k[i]) + vertex * scale, err, "none", lo, hi)


def estimate_kc(engine: Engine, batch: Batch, k_values: np.ndarray, *, dt: float,
                t_transient: float | str = 5.0, t_measure: float = 5.0,
                sample_every: int = 10, threshold: float = 0.5, refine: float | None = None,
                refine_points: int = 8, kc_tol: float = 0.01, t_max: float = 400.0,
                retire: bool = True, noise_factor: float = NOISE_FACTOR,
                converge: Converge | str = Converge.ADAPTIVE,
                progress: Callable[[int], None] | None = None,
                spec: IntegrationSpec | None = None) -> KcEstimates:
    """Kc estimators of every network of ``batch`` (module docstring).

    k_values: ``[nK]`` or ``[B, nK]`` float64, increasing per network: the grid
      the batch's couplings were packed from (Kc is read on these unrounded values).
    retire: drop stopped networks from the integration (False keeps them, for the
      benchmark; results are the same). Exhaustive protocol only.
    converge: with ``t_transient="auto"``, "adaptive" (retire settled couplings,
      refine by continuation: :mod:`kcbatch.analysis.adaptive`) or "exhaustive"
      (every coupling to the final window, refinement from theta0). A fixed
      transient is one window and refines from theta0 either way.
    progress(steps): after each RK4 step of the windows, or each group of steps
      the engine runs at once (steps since theta0).
    spec: the first window's schedule when the options were already checked
      (a study's ``StudyConfig.spec``, or :func:`check_options`' result); None
      checks them here.
    """
    if spec is None:
        spec = check_options(dt=dt, t_transient=t_transient, t_measure=t_measure,
                             sample_every=sample_every, threshold=threshold, refine=refine,
                             refine_points=refine_points, kc_tol=kc_tol, t_max=t_max,
                             converge=converge)
    n_net, n_k = batch.n_networks, batch.n_k
    k_grid = np.array(np.broadcast_to(np.asarray(k_values, dtype=np.float64), (n_net, n_k)))
    if np.any(np.diff(k_grid, axis=1) <= 0) or not np.all(np.isfinite(k_grid)):
        raise ConfigError("k_values", "[...]", "must be finite and increasing")
    auto = is_auto(t_transient)
    starts = (window_starts(dt, t_max, spec.n_measure) if auto else [spec.n_transient])
    nodes = np.diff(batch.node_offset).astype(np.float64)
    if auto and Converge(converge) is Converge.ADAPTIVE:
        got = adaptive_windows(engine, batch, k_grid, starts, spec, threshold=threshold,
                               kc_tol=kc_tol, noise_factor=noise_factor, refine=refine,
                               refine_points=int(refine_points), progress=progress)
    else:
        got = _exhaustive_windows(engine, batch, k_grid, starts, spec, auto=auto,
                                  threshold=threshold, kc_tol=kc_tol,
                                  noise_factor=noise_factor, refine=refine,
                                  refine_points=int(refine_points), retire=retire,
                                  progress=progress)
    chi = nodes[:, None] * got.r_std ** 2
    peaks = [_measured_peak(chi_peak(k_grid[b], chi[b], spec.n_samples),
                            got.last_window[b], got.final_window[b])
             for b in range(n_net)]
    return _estimates(k_grid, got.final, got.kc_refined, peaks, got.final_start,
                      got.converged, got.r, got.r_std, chi, starts, got.kc_windows,
                      got.work, got.refine_work, got.r_first, got.r_second,
                      got.last_window, spec, nodes, auto=auto)


def _exhaustive_windows(engine: Engine, batch: Batch, k_grid: np.ndarray, starts: list[int],
                        spec: IntegrationSpec, *, auto: bool, threshold: float,
                        kc_tol: float, noise_factor: float, refine: float | None,
                        refine_points: int, retire: bool,
                        progress: StepProgress | None) -> MeasuredWindows:
    """The exhaustive protocol's windows at ``starts`` (one window with a fixed
    transient): every grid column of a network to its final window, stopped
    networks dropped (``retire``), then each network's refinement from theta0
    for its final transient (:func:`_refine`)."""
    n_net, n_k = k_grid.shape
    r = np.full((n_net, n_k), np.nan)
    r_std = np.full((n_net, n_k), np.nan)
    r_first = np.full((n_net, n_k), np.nan)
    r_second = np.full((n_net, n_k), np.nan)
    half = spec.n_first_half
    kc_windows = np.full((n_net, len(starts)), np.nan)
    final: list[Crossing | None] = [None] * n_net
    final_start = np.zeros(n_net, dtype=np.int64)
    converged = np.zeros(n_net, dtype=bool)
    # network of each of the simulation's networks; -1: finished but still
    # integrated (retire=False)
    slots = np.arange(n_net)
    work = np.zeros(n_net, dtype=np.int64)
    sim = engine.start(batch, spec.dt)
    for j, start in enumerate(starts):
        gap = start - sim.steps
        sim.advance(gap, progress)
        samples = sim.measure(spec.n_measure, spec.sample_every, progress)
        # the simulation's networks (without retiring: every network, in place)
        owner = slots if retire else np.arange(n_net)
        work[owner] += np.diff(sim.batch.node_offset) * n_k * (gap + spec.n_measure)
        mean, std, first, second = window_means(samples, half)
        finished = []
        for pos, net in enumerate(slots):
            if net < 0:
                continue
            cur = grid_crossing(k_grid[net], mean[pos], std[pos], threshold)
            kc_windows[net, j] = cur.kc_interp
            done = auto and settled(final[net], cur, kc_tol, noise_factor)
            converged[net] = done
            final[net], final_start[net] = cur, start
            r[net], r_std[net] = mean[pos], std[pos]
            r_first[net], r_second[net] = first[pos], second[pos]
            if stops(done, cur, j, len(starts)):
                finished.append(pos)
        if retire and finished:
            keep = np.setdiff1d(np.arange(slots.size), finished)
            if keep.size == 0:
                break
            sim.retain(keep)
            slots = slots[keep]
        else:
            slots[finished] = -1
        if np.all(slots < 0):
            break

    last = cast(list[Crossing], final)  # every network has had its last window
    kc_refined = np.full(n_net, np.nan)
    refine_work = np.zeros(n_net, dtype=np.int64)
    if refine is not None:
        kc_refined, refine_work = _refine(engine, batch, k_grid, r, last, final_start, spec,
                                          threshold, float(refine), refine_points)
    final_window = np.searchsorted(np.asarray(starts), final_start)
    return MeasuredWindows(
        r=r, r_std=r_std, r_first=r_first, r_second=r_second,
        last_window=np.repeat(final_window[:, None], n_k, axis=1), final=last,
        final_start=final_start, final_window=final_window, converged=converged,
        kc_windows=kc_windows, kc_refined=kc_refined, work=work, refine_work=refine_work)


def _measured_peak(peak: ChiPeak, last_window: np.ndarray, final_window: int) -> ChiPeak:
    """``peak``, or "retired" where a point of its fit was last integrated
    before the network's final window (its chi is of an earlier window)."""
    if peak.censored == "none" and np.any(last_window[peak.first:peak.last + 1]
                                          < final_window):
        return ChiPeak(math.nan, math.nan, "retired")
    return peak


def _estimates(k_grid: np.ndarray, last: list[Crossing], kc_refined: np.ndarray,
               peaks: list[ChiPeak], final_start: np.ndarray, converged: np.ndarray,
               r: np.ndarray, r_std: np.ndarray, chi: np.ndarray, starts: list[int],
               kc_windows: np.ndarray, work: np.ndarray, refine_work: np.ndarray,
               r_first: np.ndarray, r_second: np.ndarray, last_window: np.ndarray,
               spec: IntegrationSpec, nodes: np.ndarray, *, auto: bool = True) -> KcEstimates:
    dt = spec.dt
    # the plain protocol: the first window alone (T = 5, or the fixed transient)
    plain = (nodes * k_grid.shape[1] * (starts[0] + spec.n_measure)).astype(np.int64)
    return KcEstimates(
        k_values=k_grid,
        kc=np.array([c.kc for c in last]), kc_interp=np.array([c.kc_interp for c in last]),
        kc_refined=kc_refined, kc_sigma=np.array([c.sigma for c in last]),
        kc_chi=np.array([p.kc for p in peaks]), kc_chi_err=np.array([p.err for p in peaks]),
        kc_chi_censored=np.array([p.censored for p in peaks]),
        censored=np.array([c.censored for c in last]),
        t_transient=_times(final_start, dt), converged=converged, r=r, r_std=r_std, chi=chi,
        windows=_times(np.asarray(starts), dt), kc_windows=kc_windows,
        work=work, refine_work=refine_work, plain_work=plain, auto=auto, r_first=r_first,
        r_second=r_second, last_window=last_window)


def _times(steps: np.ndarray, dt: float) -> np.ndarray:
    """Steps as time units, without the product's last-bit noise (100 * 0.05 = 5)."""
    return np.array([float(f"{n * dt:.12g}") for n in np.ravel(steps)], dtype=np.float64)


def _refine(engine: Engine, batch: Batch, k_grid: np.ndarray, r: np.ndarray,
            final: list[Crossing], final_start: np.ndarray, spec: IntegrationSpec,
            threshold: float, tol: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    """kc_refined [B] and the system-steps spent on each network, [B] int64
    (module docstring, Refinement)."""
    n_net = batch.n_networks
    lo = np.full(n_net, np.nan)
    hi = np.full(n_net, np.nan)
    r_lo = np.full(n_net, np.nan)
    r_hi = np.full(n_net, np.nan)
    for b, c in enumerate(final):
        if c.censored == "none":
            i = c.index
            lo[b], hi[b], r_lo[b], r_hi[b] = k_grid[b, i - 1], k_grid[b, i], r[b, i - 1], r[b, i]
    work = np.zeros(n_net, dtype=np.int64)
    frac = np.arange(1, points + 1) / (points + 1)
    stuck = np.zeros(n_net, dtype=bool)  # a round left the bracket as wide: float64's limit
    while True:
        todo = np.flatnonzero((hi - lo > tol) & ~stuck)  # NaN compares False: no bracket
        if todo.size == 0:
            break
        width = (hi - lo)[todo]
        for start in np.unique(final_start[todo]):
            nets = todo[final_start[todo] == start]
            ks = lo[nets, None] + (hi - lo)[nets, None] * frac          # [G', P] float64
            sub, _ = select_networks(batch, nets)
            sub = dataclasses.replace(sub, couplings=np.ascontiguousarray(ks, dtype=batch.dtype))
            group_spec = dataclasses.replace(spec, n_transient=int(start))
            with np.errstate(all="ignore"):
                rs = engine.integrate(sub, group_spec).mean(axis=2)        # [G', P]
            work[nets] += np.diff(sub.node_offset) * points * group_spec.n_steps
            for g, b in enumerate(nets):
                new = narrowed(lo[b], hi[b], r_lo[b], r_hi[b], ks[g], rs[g], threshold)
                if new is None:
                    lo[b] = hi[b] = np.nan                             # failed: no kc_refined
                    continue
                lo[b], hi[b], r_lo[b], r_hi[b] = new
        stuck[todo] = ~((hi - lo)[todo] < width)
    return bracket_crossing(lo, hi, r_lo, r_hi, threshold), work
