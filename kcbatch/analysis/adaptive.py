"""The adaptive converged protocol (``converge="adaptive"``, the default with
``t_transient="auto"``): integration time only where the threshold is decided.

The windows and the network stopping rule are the exhaustive protocol's
(:mod:`kcbatch.analysis.windows`; docs/design.md, "Step 6"). Two things differ.

**Retiring couplings.** After each window, a running network's grid column k
stops being integrated ("retires") once its side of the threshold cannot
change which grid bracket holds the first crossing. Its r, spread and halves
stay those of the last window it was integrated in; the crossing of every
later window is read on those values. With ``i`` the crossing's grid index
(the bracket is ``[i - 1, i]``; ``i = 0`` when left-censored), column k retires
when it was integrated in this window and

* *above* (``k > i + ABOVE_GUARD``): ``r_k > threshold + MARGIN``, and ``r_k`` fell by at
  most ``FALL`` since the previous window (any r in the first window). Far
  above the threshold a synchronised column stays synchronised; one falling
  back towards it (r re-crossing the threshold near Kc) stays integrated, as
  does every column within ``MARGIN`` of the threshold;
* *below* (``k < i - 1 - max(BELOW_GUARD, FRONT_FACTOR v)``, from the second
  window on): ``r_k < threshold - MARGIN`` and ``r_k`` rose by at most ``RISE``
  since the previous window. ``v`` is how many grid columns the crossing moved
  since the previous window. The crossing moves down while the transient
  synchronises the columns below it, by fewer columns in each (twice as long)
  window, so a column further below than twice the last move cannot be
  reached in the next window; slow risers (critical slowing down just above
  onset: r sits near its incoherent value, then grows) are the columns just
  below the bracket, which this guard and the rise test keep.

The guard columns let the crossing move by one column up (the column above
the bracket falling back) or by the guard down and still find both ends of
its bracket integrated. Right-censored and failed windows retire nothing.

**The guarantee**: every number of a network (its windows' crossings, its
stopping window, ``kc``, ``kc_interp``, ``kc_sigma``) is the exhaustive
protocol's, bit for bit, as long as no retired column would have changed side
of the threshold after it retired and the bracket's two columns were
integrated in every window (the systems that go on are integrated exactly as
there: ``Simulation.take``). Otherwise ``kc`` can differ, or ``kc_interp`` be
read on a retired end's last r; tests/test_adaptive.py measures how often
against the exhaustive protocol on BA, ER and power-law networks.

The remaining columns of the running networks are regrouped after each window
into chunks of W columns (networks repeated, one chunk per W columns, the last
padded with copies of its last column): W minimises the lanes integrated, with
an engine's K vector (:meth:`Engine.k_lanes`) as its unit and ``CHUNK_COST``
lanes for each chunk's own pass over its graph.

**Refinement by continuation.** When a network stops (converged, failed or at
``t_max``), its final bracket ``[K[i-1], K[i]]`` is multisected at once, from
the state it has reached: each round integrates ``refine_points`` evenly
spaced interior couplings, each continuing the phases of the nearest coupling
integrated so far at the end of the bracket (the grid column in the first
round, the previous round's points after), first for ``RELAX_WINDOWS``
window lengths (``t_measure`` each) in the first round and one in later rounds
(whose points start a fraction of the previous spacing away from points that
relaxed next to them), and then for one measurement window; the
new bracket is the first crossing read left to right over the bracket's ends
(r of the final window) and the points, until it is at most TOL wide. The
rounds are those ``refine_points`` per round would take; each has the fewest
points that reach TOL in that many (:func:`points_per_round`).
``kc_refined`` is the linear crossing in it. This estimator differs from the
exhaustive one (each point integrated from ``theta0`` for the whole final
transient): it measures each point after a transient of the network's final
one plus the rounds before, started from a state that has already converged
next to it. Near the threshold a network relaxes slowly after its coupling
changes: relaxing one window in every round, the refined crossing was off the
long-time one by 0.034 rms on 24 BA networks of 1000 nodes, four by 0.020,
sixteen by 0.021; four in the first round and one later (this protocol) by
0.019, the exhaustive estimator's error (0.019; tests/test_adaptive.py
measures it against fixed transients of T = 400).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from kcbatch.analysis.windows import (
    Crossing,
    MeasuredWindows,
    bracket_crossing,
    grid_crossing,
    narrowed,
    settled,
    stops,
    window_means,
)
from kcbatch.engines import (
    Engine,
    Simulation,
    StepProgress,
    checked_couplings,
    select_networks,
)
from kcbatch.inputs.batch import Batch
from kcbatch.protocol.config import IntegrationSpec

__all__ = ["ABOVE_GUARD", "BELOW_GUARD", "CHUNK_COST", "FALL", "FRONT_FACTOR", "MARGIN",
           "RELAX_WINDOWS", "RISE", "adaptive_windows", "points_per_round", "rounds_needed",
           "retiring"]

MARGIN = 0.1       # |r - threshold| beyond which a column may retire
FALL = 0.05        # the most an above column's r may fall between windows and retire
RISE = 0.03        # the most a below column's r may rise between windows and retire
ABOVE_GUARD = 1    # columns above the bracket that never retire
BELOW_GUARD = 2    # columns below the bracket that never retire ...
FRONT_FACTOR = 2   # ... or twice the crossing's last move, in grid columns
CHUNK_COST = 2     # lanes' worth of work a chunk costs beyond its lanes
RELAX_WINDOWS = 4  # a refinement point's relaxation before its window, in windows


def retiring(cur: Crossing, prev: Crossing | None, r: np.ndarray, r_prev: np.ndarray,
             integrated: np.ndarray, threshold: float, first_window: bool) -> np.ndarray:
    """The columns ``[nK]`` bool of one network that retire after this window
    (module docstring): ``cur`` and ``prev`` are this and the previous window's
    crossings, ``r`` [nK] this window's means, ``r_prev`` [nK] the previous
    window's (NaN where not integrated), ``integrated`` [nK] the columns
    integrated in this window."""
    out = np.zeros(r.shape, dtype=bool)
    if cur.censored not in ("none", "left"):
        return out
    i = cur.index
    ks = np.arange(r.size)
    with np.errstate(invalid="ignore"):
        steady = np.ones(r.size, dtype=bool) if first_window else r >= r_prev - FALL
        out |= integrated & (ks > i + ABOVE_GUARD) & (r > threshold + MARGIN) & steady
        if not first_window and prev is not None and prev.censored in ("none", "left"):
            move = abs(i - prev.index)
            below = ks < i - 1 - max(BELOW_GUARD, FRONT_FACTOR * move)
            out |= integrated & below & (r < threshold - MARGIN) & (r - r_prev <= RISE)
    return out


def rounds_needed(width: float, tol: float, points: int) -> int:
    """Rounds of ``points`` evenly spaced couplings (each divides the bracket by
    ``points + 1``) that bring a bracket ``width`` wide to at most ``tol``; 0 when
    it is already."""
    if not width > tol:
        return 0
    return math.ceil(math.log(width / tol) / math.log(points + 1) - 1e-12)


def points_per_round(width: float, tol: float, points: int) -> int:
    """Couplings per refinement round of the adaptive protocol for a bracket
    ``width`` wide: as many rounds as ``points`` per round need to bring it to
    at most ``tol``, each with the fewest evenly spaced points that still do
    in that many rounds (``points`` at most; 8 and a bracket of 0.102 to 0.005:
    two rounds of 4, not of 8). A round relaxes its points for windows, so its
    cost is its points; the rounds are what the exhaustive protocol's would be."""
    rounds = rounds_needed(width, tol, points)
    if not rounds:
        return 1                                     # no round
    ratio = width / tol
    fewest = math.ceil(ratio ** (1.0 / rounds) - 1e-9) - 1
    while (fewest + 1) ** rounds < ratio:
        fewest += 1
    return max(1, min(points, fewest))


def _width(counts: np.ndarray, lanes: int) -> int:
    """The chunk width W (a multiple of ``lanes``, at most the largest count
    rounded up) that minimises ``sum(ceil(c / W)) * (W + CHUNK_COST)``; ties go to
    the wider."""
    top = -(-int(counts.max()) // lanes) * lanes
    best, best_cost = lanes, math.inf
    for w in range(lanes, top + 1, lanes):
        cost = int(np.sum(-(-counts // w))) * (w + CHUNK_COST)
        if cost <= best_cost:
            best, best_cost = w, cost
    return best


@dataclass(frozen=True)
class _Layout:
    """The simulation's networks: ``nets`` [M] (index into the study's batch),
    ``cols`` [M, W] (grid column of each lane) and ``real`` [M, W] (False on
    padding lanes, copies of their chunk's last column)."""

    nets: np.ndarray
    cols: np.ndarray
    real: np.ndarray

    @staticmethod
    def of(want: np.ndarray, lanes: int) -> _Layout:
        counts = want.sum(axis=1)
        nets_with = np.flatnonzero(counts)
        w = _width(counts[nets_with], lanes)
        nets, cols, real = [], [], []
        for b in nets_with:
            mine = np.flatnonzero(want[b])
            for c0 in range(0, mine.size, w):
                chunk = mine[c0:c0 + w]
                nets.append(b)
                cols.append(np.concatenate([chunk, np.full(w - chunk.size, chunk[-1])]))
                real.append(np.arange(w) < chunk.size)
        return _Layout(np.array(nets, dtype=np.int64), np.array(cols, dtype=np.int64),
                       np.array(real, dtype=bool))


def _regroup(sim: Simulation, batch: Batch, old: _Layout, nets: np.ndarray,
             src: np.ndarray, couplings: np.ndarray) -> Simulation:
    """A simulation of networks ``nets`` [M] (indices into ``batch``) whose lane
    (m, c) continues the system at flat position ``src[m, c]`` (``instance * W_old +
    lane``) of ``sim``, laid out as ``old``, at ``couplings[m, c]``. Every source
    of network m is a chunk of the same network of ``batch``."""
    sub, _ = select_networks(batch, nets)
    sub = dataclasses.replace(sub, couplings=checked_couplings(sub, couplings,
                                                               (sub.n_networks, src.shape[1])))
    w_old = old.cols.shape[1]
    inst, lane = np.divmod(src, w_old)                              # [M, W]
    sizes = np.diff(sub.node_offset)
    local = np.arange(sub.n_rows) - np.repeat(sub.node_offset[:-1], sizes)   # [R']
    first = sim.batch.node_offset[:-1][inst]                        # [M, W]
    rows = np.repeat(first, sizes, axis=0) + local[:, None]         # [R', W]
    cols = np.repeat(lane, sizes, axis=0)                           # [R', W]
    return sim.take(sub, rows, cols)


def adaptive_windows(engine: Engine, batch: Batch, k_grid: np.ndarray, starts: list[int],
                     spec: IntegrationSpec, *, threshold: float, kc_tol: float,
                     noise_factor: float, refine: float | None, refine_points: int,
                     progress: StepProgress | None = None) -> MeasuredWindows:
    """The windows at ``starts`` (steps) of every network of ``batch`` with
    ``k_grid`` [G, nK] (float64, the values the couplings were packed from),
    retiring settled columns, and each network's refinement when it stops
    (module docstring)."""
    n_net, n_k = k_grid.shape
    shape = (n_net, n_k)
    r, r_std = np.full(shape, np.nan), np.full(shape, np.nan)
    r_first, r_second = np.full(shape, np.nan), np.full(shape, np.nan)
    last_window = np.full(shape, -1, dtype=np.int64)
    kc_windows = np.full((n_net, len(starts)), np.nan)
    crossing: list[Crossing | None] = [None] * n_net
    final_start = np.zeros(n_net, dtype=np.int64)
    final_window = np.zeros(n_net, dtype=np.int64)
    converged = np.zeros(n_net, dtype=bool)
    kc_refined = np.full(n_net, np.nan)
    active = np.ones(shape, dtype=bool)
    running = np.ones(n_net, dtype=bool)
    lanes = engine.k_lanes(batch.dtype.itemsize)
    half = spec.n_first_half
    layout = _Layout(np.arange(n_net), np.tile(np.arange(n_k), (n_net, 1)),
                     np.ones(shape, dtype=bool))
    sim = engine.start(batch, spec.dt)
    work = np.zeros(n_net, dtype=np.int64)
    refine_work = np.zeros(n_net, dtype=np.int64)
    for j, start in enumerate(starts):
        gap = start - sim.steps
        sim.advance(gap, progress)
        samples = sim.measure(spec.n_measure, spec.sample_every, progress)   # [M, W, nS]
        np.add.at(work, layout.nets, np.diff(sim.batch.node_offset) * layout.real.sum(axis=1)
                  * (gap + spec.n_measure))
        mean, std, first, second = window_means(samples, half)
        m_idx, c_idx = np.nonzero(layout.real)
        nets, cols = layout.nets[m_idx], layout.cols[m_idx, c_idx]
        r_prev = np.where(last_window == j - 1, r, np.nan) if j else np.full(shape, np.nan)
        r[nets, cols], r_std[nets, cols] = mean[m_idx, c_idx], std[m_idx, c_idx]
        r_first[nets, cols], r_second[nets, cols] = first[m_idx, c_idx], second[m_idx, c_idx]
        last_window[nets, cols] = j
        stopped = []
        for net in np.flatnonzero(running):
            cur = grid_crossing(k_grid[net], r[net], r_std[net], threshold)
            kc_windows[net, j] = cur.kc_interp
            done = settled(crossing[net], cur, kc_tol, noise_factor)
            converged[net] = done
            if stops(done, cur, j, len(starts)):
                stopped.append(net)
            else:
                active[net] &= ~retiring(cur, crossing[net], r[net], r_prev[net],
                                         last_window[net] == j, threshold, j == 0)
            crossing[net], final_start[net], final_window[net] = cur, start, j
        running[stopped] = False
        if refine is not None:
            ends = [(b, c) for b in stopped if (c := crossing[b]) is not None
                    and c.censored == "none"]
            if ends:
                todo = [b for b, _ in ends]
                got, spent = _refine_continued(sim, layout, batch, k_grid, r,
                                               [c for _, c in ends],
                                               np.array(todo), spec, threshold, refine,
                                               refine_points)
                kc_refined[todo] = got
                refine_work[todo] += spent
        if not running.any():
            break
        new = _Layout.of(active & running[:, None], lanes)
        # where each (network, column) is now: its flat position in the simulation
        where = np.full(shape, -1, dtype=np.int64)
        w_old = layout.cols.shape[1]
        where[nets, cols] = m_idx * w_old + c_idx
        sim = _regroup(sim, batch, layout, new.nets, where[new.nets[:, None], new.cols],
                       batch.couplings[new.nets[:, None], new.cols])
        layout = new
    return MeasuredWindows(
        r=r, r_std=r_std, r_first=r_first, r_second=r_second, last_window=last_window,
        final=[c for c in crossing if c is not None], final_start=final_start,
        final_window=final_window, converged=converged, kc_windows=kc_windows,
        kc_refined=kc_refined, work=work, refine_work=refine_work)


def _refine_continued(sim: Simulation, layout: _Layout, batch: Batch, k_grid: np.ndarray,
                      r: np.ndarray, final: list[Crossing], nets: np.ndarray,
                      spec: IntegrationSpec, threshold: float, tol: float,
                      points: int) -> tuple[np.ndarray, np.ndarray]:
    """kc_refined of ``nets`` [n] (stopped now, uncensored, in ``sim`` laid out as
    ``layout``) and the system-steps spent on each, [n] int64 (module
    docstring, Refinement)."""
    n = nets.size
    i = np.array([c.index for c in final])
    lo, hi = k_grid[nets, i - 1], k_grid[nets, i]
    r_lo, r_hi = r[nets, i - 1], r[nets, i]
    # the couplings integrated up to now, and where their state is: each
    # network's columns in sim (the bracket's, unless the crossing moved onto
    # a retired column), padded with copies of its last
    mine = [np.flatnonzero((layout.nets[:, None] == b) & layout.real) for b in nets]
    width = max(m.size for m in mine)
    src_at = np.array([np.concatenate([m, np.full(width - m.size, m[-1])]) for m in mine])
    src_k = k_grid[nets[:, None], layout.cols.ravel()[src_at]]              # [n, S]
    src_sim, src_layout = sim, layout
    points = max(points_per_round(float(w), tol, points) for w in hi - lo)
    frac = np.arange(1, points + 1) / (points + 1)
    going = np.ones(n, dtype=bool)     # in the last round's simulation, still to narrow
    failed = np.zeros(n, dtype=bool)
    work = np.zeros(n, dtype=np.int64)
    first_round = True
    while True:
        todo = np.flatnonzero(going & (hi - lo > tol))
        if todo.size == 0:
            break
        ks = lo[todo, None] + (hi - lo)[todo, None] * frac                 # [n', P]
        near = np.argmin(np.abs(ks[:, :, None] - src_k[todo, None, :]), axis=2)
        src = np.take_along_axis(src_at[todo], near, axis=1)                # [n', P]
        step = _regroup(src_sim, batch, src_layout, nets[todo], src, ks)
        # the first round's points move by up to half a grid bracket from the
        # converged columns; a later round's by a fraction of the previous round's
        # spacing from points that relaxed next to them: one window is enough
        relax = (RELAX_WINDOWS if first_round else 1) * spec.n_measure
        first_round = False
        step.advance(relax)
        with np.errstate(all="ignore"):
            rs = step.measure(spec.n_measure, spec.sample_every).mean(axis=2)   # [n', P]
        work[todo] += np.diff(step.batch.node_offset) * points * (relax + spec.n_measure)
        going[:] = False
        for g, b in enumerate(todo):
            new = narrowed(lo[b], hi[b], r_lo[b], r_hi[b], ks[g], rs[g], threshold)
            if new is None:
                failed[b] = True                                 # no kc_refined
                continue
            # a bracket float64 cannot narrow any more ends the refinement
            going[b] = new[1] - new[0] < hi[b] - lo[b]
            lo[b], hi[b], r_lo[b], r_hi[b] = new
        # the next round continues this round's points
        src_sim = step
        src_layout = _Layout(nets[todo], np.tile(np.arange(points), (todo.size, 1)),
                             np.ones((todo.size, points), dtype=bool))
        pos = np.full(n, -1, dtype=np.int64)
        pos[todo] = np.arange(todo.size)
        src_k = np.full((n, points), np.nan)
        src_k[todo] = ks
        src_at = np.full((n, points), -1, dtype=np.int64)
        src_at[todo] = pos[todo, None] * points + np.arange(points)
    kc = bracket_crossing(lo, hi, r_lo, r_hi, threshold)
    kc[failed] = np.nan
    return kc, work
