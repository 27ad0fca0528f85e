"""Mean-field predictions of the quantity kcbatch measures: ``r(K)`` and where it
crosses a threshold.

kcbatch measures the unweighted order parameter ``r = |mean_j e^{i theta_j}|``.
Each theory here predicts it as the mean over nodes of each node's phase-locked
contribution: a node that feels the coupling strength ``a`` (its frequency
``omega`` drawn from ``g``) locks when ``|omega| <= a``, at ``sin(theta) =
omega / a``, and contributes on average

    phi(a) = int_{|omega| <= a} sqrt(1 - (omega / a)^2) g(omega) d omega = a J(a)

(``J`` is :func:`kcbatch.theory.mean_field.order_integral`); drifting nodes
cancel for a symmetric ``g``. So ``r = (1/N) sum_i phi(a_i)``, and the theories
differ in the strength ``a_i`` each node feels:

``mf``  (homogeneous): every node has the mean degree, ``a = K w(<k>) <k> r``:
        Kuramoto's all-to-all model at ``K_eff = K c`` with ``c = 1`` (degree,
        mean-degree), ``<k>`` (raw), ``<k>/N`` (global).
``hmf`` (heterogeneous, Ichinomiya 2004): the annealed network, ``a_i = K w_i
        k_i R`` with the degree-weighted ``R = sum_j k_j phi(a_j) / (N <k>)``,
        solved as one scalar equation over the degree classes.
``qmf`` (quenched, Restrepo, Ott & Hunt 2005): the network itself, local fields
        ``r_i = sum_j A_ij phi(K w_j r_j)`` and ``a_i = K w_i r_i``, the largest
        fixed point, found by monotone iteration from ``r_i = k_i``.

The onsets (where ``r`` leaves 0) are :mod:`kcbatch.theory.mean_field`'s
``kc_mf``, ``kc_hmf``, ``kc_qmf``; :func:`kc_at_threshold` gives where each
curve crosses a threshold, which is what a measured Kc is. Units: ``K`` and the
frequencies in rad per time unit, ``r`` dimensionless. The centre ``mu`` of the
frequencies never enters (the rotating frame).
"""
from __future__ import annotations

import enum
import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from kcbatch.networks import from_networkx, graph_stats
from kcbatch.protocol.choices import Coupling
from kcbatch.theory.mean_field import (
    bisect_below,
    coupling_weights,
    k_at_r,
    kc0,
    kc_hmf,
    kc_mf,
    kc_qmf,
    order_integral,
    r_all_to_all,
    theory_applies,
    why_theory_does_not_apply,
)

__all__ = ["TheoryModel", "kc_at_threshold", "r_curve", "threshold_crossings"]


class TheoryModel(enum.StrEnum):
    """Which mean-field theory predicts ``r(K)`` (module docstring)."""

    MF = "mf"
    HMF = "hmf"
    QMF = "qmf"


# The quenched fixed point: stop when no local field moves by more than this
# fraction of the largest one; give up (with a warning) after so many sweeps.
QMF_RTOL = 1e-12
QMF_MAX_SWEEPS = 20_000
# The tabulated phi(a) of the quenched iteration: points per half of the grid
# in s = a / (a + sigma) (linear interpolation, relative error ~1e-9).
TABLE_POINTS = 1 << 14
# ... computed in this many blocks (the speed of building it, not its values).
TABLE_BLOCKS = 64
# kc_at_threshold's bisection stops at this relative width of the K bracket.
K_RTOL = 1e-12


def _csr(graph: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` of ``graph``: a CSR pair or an undirected networkx graph."""
    if hasattr(graph, "is_directed"):
        return from_networkx(graph)
    if isinstance(graph, Sequence) and len(graph) == 2:
        indptr, indices = np.asarray(graph[0]), np.asarray(graph[1])
        graph_stats(indptr, indices)  # refuses a malformed CSR pair
        return indptr, indices
    raise ValueError(f"invalid graph of type {type(graph).__name__}: must be a CSR pair "
                     f"(indptr, indices) or an undirected networkx graph")


def _model(model: Any) -> TheoryModel:
    try:
        return TheoryModel(model)
    except ValueError:
        raise ValueError(f"invalid model={model!r}: must be one of "
                         f"{', '.join(m.value for m in TheoryModel)}") from None


def _settings(omega_dist: str, omega_mu: float, omega_sigma: float) -> None:
    if not theory_applies(omega_dist):
        why = why_theory_does_not_apply(omega_dist)
        raise ValueError(f"invalid omega_dist={omega_dist!r}: {why}")
    if isinstance(omega_mu, bool) or not isinstance(omega_mu, (int, float, np.floating)) \
            or not math.isfinite(omega_mu):
        raise ValueError(f"invalid omega_mu={omega_mu!r}: must be a finite number")


def _phi(a: np.ndarray, dist: str, sigma: float) -> np.ndarray:
    """``phi(a) = a J(a)``, a node's mean locked contribution at strength ``a >= 0``."""
    return a * order_integral(a, dist, sigma)


# The table reaches a = TABLE_REACH * sigma, where phi = 1 - O(1e-12); beyond it
# phi is taken as its last value.
TABLE_REACH = 1e6


class _PhiTable:
    """``phi`` tabulated on ``[0, TABLE_REACH sigma]`` for the quenched iteration's
    N nodes per sweep; one table per (dist, sigma), built once (:func:`_phi_table`).

    The grid is uniform in ``s = a / (a + sigma)`` on ``[0, 1/2]`` and on
    ``[1/2, s_max]``: ``phi`` is smooth in ``s`` on each, and ``s = 1/2`` (``a =
    sigma``) is where the uniform density's ``phi`` has its kink."""

    def __init__(self, dist: str, sigma: float):
        self.sigma = sigma
        s_max = TABLE_REACH / (TABLE_REACH + 1.0)
        self.s = np.concatenate((np.linspace(0.0, 0.5, TABLE_POINTS),
                                 np.linspace(0.5, s_max, TABLE_POINTS)[1:]))
        a = sigma * self.s / (1.0 - self.s)
        # In blocks of increasing a: order_integral's panels reach the largest a
        # of its argument, so small a need not pay for the large a's panels.
        self.phi = np.concatenate([_phi(block, dist, sigma)
                                   for block in np.array_split(a, TABLE_BLOCKS)])

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return np.interp(a / (a + self.sigma), self.s, self.phi)


@functools.lru_cache(maxsize=64)
def _all_to_all_k(t: float, dist: str, sigma: float) -> float:
    """The all-to-all K at ``r = t`` (:func:`k_at_r`), once per (t, dist, sigma):
    every network of a study shares it."""
    return float(k_at_r(t, dist, sigma))


@functools.lru_cache(maxsize=8)
def _phi_table(dist: str, sigma: float) -> _PhiTable:
    return _PhiTable(dist, sigma)


class _Network:
    """What the theories need of one graph under one coupling normalisation."""

    def __init__(self, graph: Any, coupling: str):
        self.indptr, self.indices = _csr(graph)
        self.w = coupling_weights(self.indptr, coupling)  # [N]; checks coupling
        self.coupling = Coupling(coupling)
        self.deg = np.diff(self.indptr).astype(np.float64)
        self.n = self.deg.shape[0]
        self.wk = self.w * self.deg  # [N] w_i k_i
        self.rows = np.repeat(np.arange(self.n), np.diff(self.indptr))
        # The fraction of nodes that can lock at all (hmf, qmf): r tends to it as K grows.
        self.r_limit = float(np.count_nonzero(self.deg)) / self.n

    def neighbour_sum(self, x: np.ndarray) -> np.ndarray:
        """``A x``: [N] -> [N]."""
        return np.bincount(self.rows, weights=x[self.indices], minlength=self.n)


def _r_mf(net: _Network, k: np.ndarray, dist: str, sigma: float) -> np.ndarray:
    mean_k = float(net.deg.mean())
    if mean_k == 0.0:
        return np.zeros(k.shape)
    c = {Coupling.DEGREE: 1.0, Coupling.MEAN_DEGREE: 1.0, Coupling.RAW: mean_k,
         Coupling.GLOBAL: mean_k / net.n}
    return r_all_to_all(k * c[net.coupling], dist, sigma)


def _r_hmf(net: _Network, k: np.ndarray, dist: str, sigma: float) -> np.ndarray:
    """Ichinomiya's equation over degree classes, for every K of ``k`` at once."""
    r = np.zeros(k.shape)
    if net.deg.sum() == 0:
        return r
    linked = net.deg > 0  # isolated nodes neither feel nor make a field
    classes, first, counts = np.unique(net.deg[linked], return_index=True,
                                       return_counts=True)  # [C] each
    w_class = net.w[linked][first]  # w depends on the degree alone
    strength = w_class * classes  # [C] w_k k: a = K w_k k R
    norm = float(net.deg.sum())  # N <k>
    flat = k.reshape(-1)
    on = flat > 0
    if not on.any():
        return r
    ks = flat[on][:, None]  # [nK, 1]

    def gain(big_r: np.ndarray) -> np.ndarray:
        # sum_k n_k k (K w_k k) J(K w_k k R) / (N <k>), decreasing in R
        c = ks * strength
        return np.sum(counts * classes * c * order_integral(c * big_r[:, None], dist, sigma),
                      axis=1) / norm

    big_r = bisect_below(lambda x: gain(x) > 1.0, np.zeros(ks.shape[0]), np.ones(ks.shape[0]))
    big_r = np.where(gain(np.zeros(ks.shape[0])) > 1.0, big_r, 0.0)
    a = ks * strength * big_r[:, None]
    out = np.zeros(flat.shape)
    out[on] = np.sum(counts * _phi(a, dist, sigma), axis=1) / net.n
    return out.reshape(k.shape)


def _qmf_fixed_point(net: _Network, kk: float, start: np.ndarray, table: _PhiTable) -> np.ndarray:
    """The largest ``r_i = sum_j A_ij phi(K w_j r_j)`` below ``start`` (a super-solution).

    Monotone sweeps from ``start`` descend to that fixed point. Near the onset
    they descend slowly along one direction (the coupling matrix's Perron
    vector), at a steady ratio ``q`` per sweep; when the last sweeps show such a
    ratio, the rest of the geometric descent is taken at once (Aitken), and the
    sweeps go on from there (from below the fixed point they rise back to it)."""
    r_loc = start
    steps: list[float] = []
    step = math.inf
    for sweep in range(QMF_MAX_SWEEPS):
        new = net.neighbour_sum(table(kk * net.w * r_loc))
        delta = new - r_loc
        step = float(np.max(np.abs(delta))) if net.n else 0.0
        r_loc = new
        if step <= QMF_RTOL * max(float(r_loc.max()), 1e-300):
            return r_loc
        steps.append(step)
        if sweep % 8 == 7 and len(steps) >= 3:
            q1, q2 = steps[-1] / steps[-2], steps[-2] / steps[-3]
            if 0.5 < q1 < 1.0 and abs(q1 - q2) <= 1e-3 * q1:
                r_loc = np.maximum(r_loc + delta * (q1 / (1.0 - q1)), 0.0)
                steps.clear()
    warnings.warn(f"quenched mean field at K={kk!r}: no fixed point after {QMF_MAX_SWEEPS} "
                  f"sweeps (last change {step:.3g}); r is an upper bound", RuntimeWarning,
                  stacklevel=3)
    return r_loc


def _r_qmf(net: _Network, k: np.ndarray, dist: str, sigma: float) -> np.ndarray:
    flat = k.reshape(-1)
    out = np.zeros(flat.shape)
    onset = kc_qmf(net.indptr, net.indices, net.coupling, dist, sigma)
    above = np.flatnonzero(flat > onset)
    if above.size == 0:
        return out.reshape(k.shape)
    table = _phi_table(str(dist), sigma)
    # Highest K first: the fixed point at a larger K is a super-solution at a
    # smaller one, so each iteration starts from the previous K's fixed point.
    r_loc = net.deg.copy()
    for i in above[np.argsort(-flat[above], kind="stable")]:
        kk = float(flat[i])
        r_loc = _qmf_fixed_point(net, kk, r_loc, table)
        out[i] = float(np.sum(_phi(kk * net.w * r_loc, dist, sigma))) / net.n
    return out.reshape(k.shape)


_CURVES = {TheoryModel.MF: _r_mf, TheoryModel.HMF: _r_hmf, TheoryModel.QMF: _r_qmf}


def r_curve(graph: Any, k_values: Any, *, model: str, coupling: str = "degree",
            omega_dist: str = "normal", omega_mu: float = 0.0,
            omega_sigma: float = 0.5) -> np.ndarray:
    """The theory's prediction of the measured ``r`` at each coupling.

    ``graph``: a CSR pair ``(indptr, indices)`` or an undirected networkx graph;
    ``k_values``: couplings (any shape, finite) [rad per time unit]; ``model``:
    ``"mf"``, ``"hmf"`` or ``"qmf"`` (module docstring). Returns float64 ``r``
    of ``k_values``' shape, in ``[0, 1)``; 0 at and below the model's onset and
    for ``K <= 0``. ValueError names a bad argument; ``omega_dist="degree"``
    has no theory (omega_i = k_i is not drawn from a density).
    """
    which = _model(model)
    _settings(omega_dist, omega_mu, omega_sigma)
    k = np.asarray(k_values, dtype=np.float64)
    if not np.all(np.isfinite(k)):
        raise ValueError(f"invalid k_values containing {float(k[~np.isfinite(k)].flat[0])!r}: "
                         f"couplings must be finite numbers")
    net = _Network(graph, coupling)
    sigma = float(omega_sigma)
    kc_mf(net.indptr, net.indices, coupling, omega_dist, sigma)  # refuses a bad sigma
    return _CURVES[which](net, k, omega_dist, sigma)


def _onset(net: _Network, which: TheoryModel, dist: str, sigma: float) -> float:
    fn = {TheoryModel.MF: kc_mf, TheoryModel.HMF: kc_hmf, TheoryModel.QMF: kc_qmf}[which]
    value = fn(net.indptr, net.indices, net.coupling, dist, sigma)
    return math.inf if value is None else float(value)


def kc_at_threshold(graph: Any, threshold: float, *, model: str, coupling: str = "degree",
                    omega_dist: str = "normal", omega_mu: float = 0.0,
                    omega_sigma: float = 0.5) -> float:
    """The lowest coupling at which the theory's ``r(K)`` reaches ``threshold``.

    The quantity comparable with a measured Kc (the crossing of ``r =
    threshold``), unlike the onsets. ``threshold`` in ``(0, 1)``. Returns K [rad
    per time unit], to relative precision ~1e-12 (mf: the all-to-all inverse
    :func:`kcbatch.theory.mean_field.k_at_r`; hmf: Ichinomiya's equation solved
    at the threshold; qmf: K and the local fields iterated together);
    ``inf`` when ``r`` never reaches the threshold (a graph without edges, or
    more isolated nodes than ``1 - threshold`` of them).
    """
    which = _model(model)
    _settings(omega_dist, omega_mu, omega_sigma)
    t = _threshold(threshold)
    sigma = float(omega_sigma)
    net = _Network(graph, coupling)
    return _crossing(net, which, t, _onset(net, which, omega_dist, sigma), omega_dist, sigma)


def threshold_crossings(graph: Any, threshold: float, onsets: Sequence[float], *,
                        coupling: str, omega_dist: str,
                        omega_sigma: float) -> tuple[float, float, float]:
    """:func:`kc_at_threshold` of the mf, hmf and qmf models of one graph whose
    onsets ``(kc_mf, kc_hmf, kc_qmf)`` are known (a study's producers have just
    computed them): the graph is read once and qmf's eigenvalue is not solved
    again. Arguments as :func:`kc_at_threshold`."""
    _settings(omega_dist, 0.0, omega_sigma)
    t = _threshold(threshold)
    sigma = float(omega_sigma)
    net = _Network(graph, coupling)
    mf, hmf, qmf = (_crossing(net, which, t, float(onset), omega_dist, sigma)
                    for which, onset in zip(TheoryModel, onsets, strict=True))
    return mf, hmf, qmf


def _threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) \
            or not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"invalid threshold={threshold!r}: must lie strictly between 0 and 1")
    return float(threshold)


def _crossing(net: _Network, which: TheoryModel, t: float, onset: float, dist: str,
              sigma: float) -> float:
    """The crossing of ``r = t`` by model ``which`` on ``net``, its onset given."""
    if not math.isfinite(onset):
        return math.inf
    if which is TheoryModel.MF:
        # K c = the all-to-all coupling of r = t, and the onset is Kc0 / c.
        return _all_to_all_k(t, str(dist), sigma) * onset / kc0(dist, sigma)
    if t >= net.r_limit:
        return math.inf
    if which is TheoryModel.HMF:
        return _hmf_at(net, t, dist, sigma)
    return _qmf_at(net, t, onset, dist, sigma)


def _hmf_at(net: _Network, t: float, dist: str, sigma: float) -> float:
    """Ichinomiya's equation solved for K at ``r = t``, exactly.

    Every node feels ``a_i = s_i u`` with ``s_i = w_i k_i`` and the one scalar
    ``u = K R``: ``r = mean_i phi(s_i u)`` increases with ``u``, so ``r = t``
    fixes ``u``; then ``R = sum_i k_i phi(s_i u) / (N <k>)`` and ``K = u / R``.
    ``u`` is bracketed on the tabulated phi (cheap) and then found with the exact
    phi by regula falsi (:func:`_root_increasing`), a few evaluations."""
    # Nodes of one degree feel the same field: sum over the degree classes.
    degrees, counts = np.unique(net.deg, return_counts=True)  # [C] each
    s = np.array([net.wk[net.deg == d][0] for d in degrees])  # [C] w_k k
    table = _phi_table(str(dist), sigma)

    def excess(u: float) -> float:
        return float(np.sum(counts * _phi(u * s, dist, sigma))) / net.n - t

    def rough(u: float) -> float:
        return float(np.sum(counts * table(u * s))) / net.n - t

    guess = _root_increasing(rough, sigma / float(s.max()), 1e-7)
    u = _root_increasing(excess, guess, K_RTOL)
    big_r = float(np.sum(counts * degrees * _phi(u * s, dist, sigma))) / float(net.deg.sum())
    return u / big_r


def _root_increasing(f, guess: float, rtol: float) -> float:
    """The root of an increasing ``f`` on ``(0, inf)``, starting from ``guess > 0``:
    a bracket widened by factors of 2 around it, then the Illinois variant of
    regula falsi to relative width ``rtol``."""
    lo, hi = guess / 1.001, guess * 1.001
    f_lo, f_hi = f(lo), f(hi)
    for _ in range(2000):
        if f_lo < 0.0:
            break
        hi, f_hi, lo = lo, f_lo, lo / 2.0
        f_lo = f(lo)
    for _ in range(2000):
        if f_hi >= 0.0:
            break
        lo, f_lo, hi = hi, f_hi, hi * 2.0
        f_hi = f(hi)
    side = 0
    for _ in range(200):
        if hi - lo <= rtol * hi:
            break
        x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        if not lo < x < hi:
            x = 0.5 * (lo + hi)
        f_x = f(x)
        if f_x == 0.0:
            return x
        if f_x < 0.0:
            lo, f_lo = x, f_x
            if side == -1:
                f_hi *= 0.5
            side = -1
        else:
            hi, f_hi = x, f_x
            if side == 1:
                f_lo *= 0.5
            side = 1
    return 0.5 * (lo + hi)


def _k_for_mean(net: _Network, r_loc: np.ndarray, t: float, table: _PhiTable,
                guess: float = math.nan) -> float:
    """The K at which ``mean_i phi(K w_i r_i) = t`` for fixed local fields ``r_loc``
    (``mean phi`` increases with K), from ``guess``: the previous sweep's K, close
    once the sweeps settle, so regula falsi needs a few evaluations."""
    strength = net.w * r_loc  # [N]
    start = guess if math.isfinite(guess) and guess > 0 else 1.0 / float(strength.max())
    return _root_increasing(lambda kk: float(np.mean(table(kk * strength))) - t, start,
                            0.25 * K_RTOL)


def _qmf_at(net: _Network, t: float, onset: float, dist: str, sigma: float) -> float:
    """K at which the quenched ``r(K)`` reaches ``t``.

    K and the local fields are iterated together: the fields' sweep
    ``r_i <- sum_j A_ij phi(K w_j r_j)``, then K re-solved so that the mean
    locked contribution is ``t``; at the joint fixed point both equations hold.
    Typically a few dozen sweeps. Should that not settle, bisection on K of
    :func:`r_curve` (the fixed point at each K) gives the answer instead."""
    table = _phi_table(str(dist), sigma)
    r_loc = net.deg.copy()
    k_now = math.nan
    for _ in range(QMF_MAX_SWEEPS // 10):
        k_new = _k_for_mean(net, r_loc, t, table, k_now)
        new = net.neighbour_sum(table(k_new * net.w * r_loc))
        settled = (float(np.max(np.abs(new - r_loc))) <= QMF_RTOL * float(new.max())
                   and abs(k_new - k_now) <= K_RTOL * k_new)
        r_loc, k_now = new, k_new
        if settled:
            return k_now

    return _root_increasing(lambda kk: float(_r_qmf(net, np.array([kk]), dist, sigma)[0]) - t,
                            2.0 * onset, K_RTOL)
