"""Mean-field theory beside the simulations: Kc0, the all-to-all r(K), network thresholds.

Units: natural frequencies ``omega`` and the spread ``sigma`` are in rad per time
unit, so every coupling ``K`` (and every threshold here) is in the same unit;
``r`` is dimensionless. The centre ``mu`` of the frequency distribution never
enters: in the frame rotating at ``mu`` the densities below are centred at 0.

Frequency distributions (``dist``), each a symmetric unimodal density ``g``:

  normal       g(w) = exp(-w^2 / (2 sigma^2)) / (sigma sqrt(2 pi))
  lorentzian   g(w) = sigma / (pi (w^2 + sigma^2))      (half-width sigma)
  uniform      g(w) = 1 / (2 sigma) on [-sigma, sigma]
  degree       omega_i = k_i: no density, so no theory here (see theory_applies)

Kuramoto's all-to-all threshold (Kuramoto 1975, 1984) is ``Kc0 = 2 / (pi g(0))``:
``sigma sqrt(8/pi)`` (normal), ``2 sigma`` (Lorentzian), ``4 sigma / pi``
(uniform; there the transition is first order: r jumps from 0 to pi/4 at Kc0).

Network model: ``dtheta_i/dt = omega_i + K w_i sum_j A_ij sin(theta_j - theta_i)``
with the per-node weight ``w_i`` of a ``coupling`` normalisation:

  degree        w_i = 1 / max(k_i, 1)
  raw           w_i = 1
  mean-degree   w_i = 1 / <k>
  global        w_i = 1 / N

and three onset predictions per graph (``kc_mf``, ``kc_hmf``, ``kc_qmf``,
see each function). References: Ichinomiya, PRE 70, 026116 (2004) for the
heterogeneous (annealed) mean field; Restrepo, Ott & Hunt, PRE 71, 036151
(2005) for the quenched mean field (the largest eigenvalue).

numpy only: the quadrature, root finding and eigenvalue iteration are written
here, so scipy is not a runtime dependency.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from kcbatch.networks import graph_stats
from kcbatch.protocol.choices import Coupling, OmegaDist
from kcbatch.protocol.config import OMEGA_SIGMA_MAX, OMEGA_SIGMA_MIN
from kcbatch.protocol.coupling import COUPLINGS, row_weights
from kcbatch.protocol.seeding import OMEGA_DISTS

__all__ = [
    "COUPLINGS", "OMEGA_DISTS", "coupling_weights", "density", "g_centre", "k_at_r",
    "kc0", "kc_hmf", "kc_mf", "kc_qmf", "lambda_max", "r_all_to_all", "theory_applies",
    "thresholds", "why_theory_does_not_apply",
]

# COUPLINGS (kcbatch.protocol.coupling) and OMEGA_DISTS (kcbatch.protocol.seeding) are the study's
# own tables, re-exported: one rule for what the simulation and the theory accept.

_NO_DENSITY = ("omega_i = k_i is set by the degrees, not drawn from a density g, so "
               "Kc0 = 2/(pi g(0)) and the mean-field thresholds do not apply")

# Gauss-Legendre nodes on [0, 1] for one panel of the composite rule below; the
# panels are narrow enough that 20 nodes reach rounding level.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)
_GL_X = 0.5 * (_GL_X + 1.0)
_GL_W = 0.5 * _GL_W


def _choice(param: str, value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"invalid {param}={value!r}: must be one of {', '.join(choices)}")
    return value


def _coupling(value) -> Coupling:
    """``value`` as its member; ValueError naming it unless it is one of COUPLINGS.
    The public functions check here; their helpers take the member unchecked."""
    return Coupling(_choice("coupling", value, COUPLINGS))


def _density_dist(dist) -> str:
    """``dist`` checked, and refused when it has no density."""
    _choice("dist", dist, OMEGA_DISTS)
    if not theory_applies(dist):
        raise ValueError(f"invalid dist={dist!r}: {_NO_DENSITY}")
    return dist


def _sigma(sigma) -> float:
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        s = math.nan
    if isinstance(sigma, (bool, np.bool_)) or not OMEGA_SIGMA_MIN <= s <= OMEGA_SIGMA_MAX:
        raise ValueError(f"invalid sigma={sigma!r}: must be a number between "
                         f"{OMEGA_SIGMA_MIN:g} and {OMEGA_SIGMA_MAX:g} (the spread of the "
                         f"frequencies, rad per time unit; g(0) ~ 1/sigma must be a finite, "
                         f"nonzero float64)")
    return s


def theory_applies(dist: str) -> bool:
    """Whether the mean-field theory here applies to frequency distribution ``dist``."""
    return _choice("dist", dist, OMEGA_DISTS) != OmegaDist.DEGREE


def why_theory_does_not_apply(dist: str) -> str | None:
    """One line saying why the theory does not apply to ``dist``; None when it does."""
    return None if theory_applies(dist) else _NO_DENSITY


def density(dist: str, sigma: float):
    """The density ``g(w)`` of ``dist``, centred at 0, as a vectorised function of ``w``."""
    dist, s = _density_dist(dist), _sigma(sigma)
    if dist == "normal":
        peak = 1.0 / (s * math.sqrt(2 * math.pi))
        return lambda w: peak * np.exp(-0.5 * (np.asarray(w, float) / s) ** 2)
    if dist == "lorentzian":
        return lambda w: s / (math.pi * (np.asarray(w, float) ** 2 + s * s))
    return lambda w: np.where(np.abs(np.asarray(w, float)) <= s, 0.5 / s, 0.0)


def g_centre(dist: str, sigma: float) -> float:
    """``g(0)``, the density at the centre of ``dist`` [time units per rad]."""
    dist, s = _density_dist(dist), _sigma(sigma)
    return {"normal": 1.0 / (s * math.sqrt(2 * math.pi)),
            "lorentzian": 1.0 / (math.pi * s),
            "uniform": 0.5 / s}[dist]


def kc0(dist: str, sigma: float) -> float:
    """Kuramoto's all-to-all threshold ``Kc0 = 2 / (pi g(0))`` [rad per time unit].

    normal ``sigma sqrt(8/pi)``, Lorentzian ``2 sigma``, uniform ``4 sigma / pi``.
    """
    return 2.0 / (math.pi * g_centre(dist, sigma))


def order_integral(u: np.ndarray, dist: str, sigma: float) -> np.ndarray:
    """``J(u) = int_{-pi/2}^{pi/2} cos^2(t) g(u sin t) dt`` for each ``u >= 0`` (any shape).

    A locked oscillator with ``|omega| <= u = K r`` sits at ``sin t = omega / u``,
    so ``u J(u)`` is the locked oscillators' share of ``r`` (the drifting ones
    cancel out for a symmetric ``g``). Composite
    Gauss-Legendre on ``[0, pi/2]`` (``g`` is even), with panel ends where
    ``u sin t = sigma * 2^j``: panels shrink where ``g(u sin t)`` varies fastest
    (small ``t`` at large ``u``), and the uniform density's jump at ``sigma`` is
    a panel end, so every panel integrates a smooth function. Relative error
    below 1e-13 (checked against adaptive quadrature in the tests).
    """
    g = density(dist, sigma)
    u = np.asarray(u, dtype=np.float64)
    top = float(u.max()) if u.size else 0.0
    levels = max(0, math.ceil(math.log2(max(top / sigma, 1.0)))) + 1
    scale = sigma * np.concatenate(([0.0], 2.0 ** np.arange(-1, levels + 1)))
    positive = u[..., None] > 0
    ratio = np.where(positive, scale / np.where(positive, u[..., None], 1.0), np.inf)
    # Ends past t = pi/2 collapse onto it: those panels have zero width.
    ends = np.arcsin(np.minimum(ratio, 1.0))
    ends[..., 0] = 0.0
    ends = np.concatenate((ends, np.full(u.shape + (1,), 0.5 * math.pi)), axis=-1)
    lo, width = ends[..., :-1], np.diff(ends, axis=-1)
    t = lo[..., None] + width[..., None] * _GL_X
    f = np.cos(t) ** 2 * g(u[..., None, None] * np.sin(t))
    return 2.0 * np.sum(width[..., None] * _GL_W * f, axis=(-1, -2))


def bisect_below(f, lo: np.ndarray, hi: np.ndarray, iterations: int = 1100) -> np.ndarray:
    """Vectorised bisection for ``f(x) = True`` on ``[lo, x*)`` and False above ``x*``,
    until every bracket is a few ulps wide (1100 halvings span all of float64)."""
    lo, hi = lo.copy(), hi.copy()
    floor = 1e-200 * hi  # a root at 0 would otherwise halve hi into subnormals
    for _ in range(iterations):
        if np.all(hi - lo <= 4 * np.spacing(hi) + floor):
            break
        mid = 0.5 * (lo + hi)
        below = f(mid)
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def r_all_to_all(k_values, dist: str, sigma: float) -> np.ndarray:
    """Stationary order parameter ``r(K)`` of the all-to-all Kuramoto model (N -> inf).

    ``k_values``: couplings (any shape, finite) [rad per time unit]; returns
    ``r`` of the same shape (float64, in [0, 1)). The partially locked state
    solves Kuramoto's self-consistency (1975)

        r = K r int_{-pi/2}^{pi/2} cos^2(t) g(K r sin t) dt,

    i.e. ``J(u) = 1/K`` with ``u = K r`` and ``J`` decreasing from
    ``J(0) = 1/Kc0`` to 0 (``g`` symmetric unimodal), so there is one root
    ``u`` in ``(0, K]`` for ``K > Kc0``, found by bisection to float64
    precision. ``r = 0`` for ``K <= Kc0`` (incoherence).

    Lorentzian: ``r = sqrt(1 - 2 sigma / K)``. Smooth ``g``: ``r ~ sqrt(16 (K - Kc0)
    / (pi Kc0^4 (-g''(0))))`` just above Kc0. Uniform: ``J`` is flat (= 1/Kc0)
    for ``u <= sigma``, so the branch starts at ``u = sigma``: r jumps to
    ``pi/4`` just above Kc0 (a first-order transition; Pazó, PRE 72, 046211, 2005).
    Within ~1e-15 relative of Kc0 the root ``r ~ 1e-8`` is set by rounding.
    """
    k = np.asarray(k_values, dtype=np.float64)
    if not np.all(np.isfinite(k)):
        bad = float(k[~np.isfinite(k)].flat[0])
        raise ValueError(f"invalid k_values containing {bad!r}: couplings must be finite numbers")
    k_c = kc0(dist, sigma)
    r = np.zeros(k.shape)
    above = k > k_c
    if above.any():
        ka = k[above]
        u = bisect_below(lambda x: order_integral(x, dist, sigma) * ka > 1.0,
                    np.zeros_like(ka), ka.copy())
        r[above] = u / ka
    return r


def k_at_r(r_target, dist: str, sigma: float):
    """The coupling at which the all-to-all ``r(K)`` reaches ``r_target`` (the inverse of
    :func:`r_all_to_all`, lowest such K).

    ``r_target``: scalar or array in ``[0, 1)``; returns a float or an array of
    its shape [rad per time unit]. Along the branch ``u = K r`` is the
    parameter: ``r = u J(u)`` increases with ``u`` and ``K = 1 / J(u)``.
    ``r_target = 0`` gives Kc0; for the uniform distribution every
    ``r_target <= pi/4`` gives Kc0 (the jump).
    """
    r = np.asarray(r_target, dtype=np.float64)
    ok = (r >= 0) & (r < 1)
    if not np.all(ok):
        raise ValueError(f"invalid r_target={float(r[~ok].flat[0])!r}: must be in [0, 1) "
                         f"(r = 1 needs an infinite coupling)")
    s = _sigma(sigma)
    k_c = kc0(dist, s)
    flat = r.reshape(-1)
    # r(u) <= 1 - O(1/u), so doubling from sigma brackets every r < 1 quickly.
    hi = np.full(flat.shape, s)
    for _ in range(200):
        short = hi * order_integral(hi, dist, s) < flat
        if not short.any():
            break
        hi = np.where(short, 2.0 * hi, hi)
    k: np.ndarray = np.full(flat.shape, k_c)
    on = flat > 0
    if on.any():
        rt = flat[on]
        u = bisect_below(lambda x: x * order_integral(x, dist, s) < rt, np.zeros_like(rt), hi[on])
        k[on] = 1.0 / order_integral(u, dist, s)
    k = k.reshape(r.shape)
    return float(k) if k.ndim == 0 else k


def _degrees(indptr, indices) -> tuple[np.ndarray, dict]:
    stats = graph_stats(indptr, indices)  # validates the CSR shape
    return np.diff(np.asarray(indptr)).astype(np.int64), stats


def coupling_weights(indptr, coupling: str) -> np.ndarray:
    """Per-node weights ``w_i`` [N] float64 of a coupling normalisation (module
    docstring): the simulation's own (``kcbatch.protocol.coupling.row_weights``).

    A graph without edges has ``<k> = 0``; its ``mean-degree`` weights are then
    1 (no edge ever uses them).
    """
    return _weights(indptr, _coupling(coupling))


def _weights(indptr, coupling: Coupling) -> np.ndarray:
    """:func:`coupling_weights` of a checked ``coupling``."""
    deg = np.diff(np.asarray(indptr)).astype(np.int64)
    if deg.shape[0] == 0:
        return np.zeros(0)
    return row_weights(deg, np.array([0, deg.shape[0]]), coupling)


def lambda_max(indptr, indices, coupling: str, rtol: float = 1e-10,
               basis: int = 40, max_products: int = 20000) -> float:
    """Largest eigenvalue of the coupling matrix ``M = W A`` (``M_ij = w_i A_ij``).

    ``M`` is similar to the symmetric ``S = W^1/2 A W^1/2`` (all ``w_i > 0``), so
    its spectrum is real; we work on ``S``. Thick-restart Lanczos (Rayleigh-Ritz
    on a Krylov basis of at most ``basis`` vectors, fully reorthogonalised,
    restarted from the top quarter of its Ritz vectors): it converges where
    power iteration crawls (close eigenvalues on lattices and paths), and since
    it takes the algebraically largest Ritz value it needs no shift for
    bipartite graphs, whose spectra come in ``+-lambda`` pairs that make plain
    power iteration oscillate. The start vector ``sqrt(w) k`` is positive on
    every node with an edge, so it overlaps the Perron vector of every
    component (several components: the largest of theirs); isolated nodes only
    add zero eigenvalues. The Ritz value rises to ``lambda_max`` from below;
    it stops when an error estimate is below ``rtol * lambda``: the residual
    ``res``, or ``res^2 / gap`` (``gap`` to the next Ritz value), or, where the
    top of the spectrum is nearly continuous (paths, lattices) and neither
    bound is sharp, the rise still to come extrapolated from the last two
    restarts. Relative error well under 1e-8 (tested against LAPACK/ARPACK).
    After ``max_products`` matrix-vector products it warns and returns the
    estimate (a lower bound). A graph without edges gives 0.

    No BLAS: the products with the basis are ``einsum`` loops on the calling
    thread and the Rayleigh quotient ``H = V S V^T`` grows by one row per product
    (``S`` is symmetric) instead of being a matrix product. Multithreaded BLAS
    in the study's producer threads, beside an engine that keeps every core
    busy, makes this 20x slower (measured: 0.57 s against 0.025 s at N=10^4).
    """
    return _lambda_max(indptr, indices, _coupling(coupling), rtol, basis, max_products)


def _lambda_max(indptr, indices, coupling: Coupling, rtol: float = 1e-10,
                basis: int = 40, max_products: int = 20000) -> float:
    """:func:`lambda_max` of a checked ``coupling``."""
    deg, stats = _degrees(indptr, indices)
    if stats["edges"] == 0:
        return 0.0
    if coupling == Coupling.DEGREE:
        # D^-1 A is row-stochastic on every node with an edge (rows of isolated
        # nodes are zero): its spectral radius is exactly 1, attained by the
        # constant vector. Skipping Lanczos halves the producers' cost per graph.
        return 1.0
    indices = np.asarray(indices)
    n = deg.shape[0]
    sw = np.sqrt(_weights(indptr, coupling))
    rows = np.repeat(np.arange(n), deg)
    products = 0

    def apply(x):
        nonlocal products
        products += 1
        z = sw * x
        return sw * np.bincount(rows, weights=z[indices], minlength=n)

    m = min(basis, n)
    keep = max(1, min(m // 4, m - 2))
    # Basis vectors are rows, so every product with the basis is contiguous.
    V = np.empty((m, n))
    W = np.empty((m, n))  # W[i] = S V[i]
    x0 = sw * deg
    V[0] = x0 / _norm(x0)
    W[0] = apply(V[0])
    H = np.empty((m, m))  # H[i, k] = V[i] . W[k], filled as the basis grows
    H[0, 0] = _dots(V[:1], W[0])[0]
    j, fresh = 1, 1  # basis size, vectors added since the last restart
    history = []  # the top Ritz value at each restart
    while True:
        invariant = False
        if j < m:
            w = W[j - 1].copy()
            before = _norm(w)
            for _ in range(2):  # twice is enough (Kahan's rule)
                w -= _combine(_dots(V[:j], w), V[:j])
            norm = _norm(w)
            # The basis spans an invariant subspace: its Ritz values are exact.
            invariant = before == 0.0 or norm <= 1e-10 * before
            if not invariant:
                V[j] = w / norm
                W[j] = apply(V[j])
                H[:j + 1, j] = H[j, :j + 1] = _dots(V[:j + 1], W[j])
                j, fresh = j + 1, fresh + 1
        # Rayleigh-Ritz every few products: easy graphs stop well before a restart.
        if not (invariant or j == m or fresh % 8 == 0):
            continue
        theta, s = np.linalg.eigh(H[:j, :j])
        top = float(theta[-1])
        resid = _combine(s[:, -1], W[:j]) - top * _combine(s[:, -1], V[:j])
        res = _norm(resid)
        gap = top - float(theta[-2]) if j > 1 else math.inf
        if j == m:
            history.append(top)
        if invariant or res <= rtol * abs(top) or res * res <= rtol * abs(top) * gap \
                or _rise_left(history) <= rtol * abs(top):
            return top
        if products >= max_products:
            warnings.warn(f"lambda_max: no convergence after {products} products "
                          f"(residual {res:.3g}); returning the lower bound {top!r}",
                          RuntimeWarning, stacklevel=2)
            return top
        if j < m:
            continue
        p = min(keep, j - 1)
        ritz = s[:, -p:].T
        V[:p], W[:p] = _project(ritz, V[:j]), _project(ritz, W[:j])
        # The Ritz vectors diagonalise H: its top-left block is their Ritz values.
        H[:p, :p] = np.diag(theta[-p:])
        # The residual is orthogonal to the old basis; it carries the search on.
        for _ in range(2):
            resid -= _combine(_dots(V[:p], resid), V[:p])
        V[p] = resid / _norm(resid)
        W[p] = apply(V[p])
        H[:p + 1, p] = H[p, :p + 1] = _dots(V[:p + 1], W[p])
        j, fresh = p + 1, 1


# BLAS-free products for lambda_max (its docstring says why): einsum without
# ``optimize`` runs its own loops and never calls BLAS.
def _dots(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``rows @ x``: [j, n] x [n] -> [j]."""
    return np.einsum("ij,j->i", rows, x)


def _combine(c: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``c @ rows``: [j] x [j, n] -> [n]."""
    return np.einsum("i,ij->j", c, rows)


def _project(c: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``c @ rows``: [p, j] x [j, n] -> [p, n]."""
    return np.einsum("pi,ij->pj", c, rows)


def _norm(x: np.ndarray) -> float:
    """Euclidean norm of a vector."""
    return math.sqrt(float(np.einsum("i,i->", x, x)))


def _rise_left(history: list[float]) -> float:
    """How much more the top Ritz value will rise, extrapolated geometrically from its
    last two rises (Aitken); inf until that is meaningful."""
    if len(history) < 3:
        return math.inf
    older, last = history[-2] - history[-3], history[-1] - history[-2]
    if not 0.0 <= last < older:
        return math.inf
    q = last / older
    return last * q / (1.0 - q) + last


def kc_mf(indptr, indices, coupling: str, dist: str, sigma: float) -> float | None:
    """Homogeneous mean-field onset: Kc0 expressed in this normalisation's K.

    Every node is given the mean degree ``<k>`` and sees ``<k>`` neighbours whose
    phases are the population's: its coupling sum becomes ``K w(<k>) <k> r
    sin(psi - theta_i)``, Kuramoto's all-to-all model with ``K_eff = K w(<k>) <k>``,
    whose onset ``K_eff = Kc0`` gives

      degree        Kc0            (w <k> = 1: row-normalised, Kuramoto's model)
      raw           Kc0 / <k>
      mean-degree   Kc0
      global        Kc0 N / <k>    (complete graph: Kc0 N/(N-1) -> Kc0; the N/(N-1)
                                    is the node itself, absent from its neighbours)

    On a regular graph kc_mf = kc_hmf = kc_qmf. None when ``dist`` has no
    density; ``inf`` for a graph without edges (no coupling, no onset).
    """
    return _kc_mf(indptr, indices, _coupling(coupling), dist, sigma)


def _kc_mf(indptr, indices, coupling: Coupling, dist: str, sigma: float) -> float | None:
    if not theory_applies(dist):
        return None
    k_c = kc0(dist, sigma)
    _, stats = _degrees(indptr, indices)
    if stats["edges"] == 0:
        return math.inf
    mean_k, n = stats["mean_k"], stats["nodes"]
    return {Coupling.DEGREE: k_c, Coupling.RAW: k_c / mean_k, Coupling.MEAN_DEGREE: k_c,
            Coupling.GLOBAL: k_c * n / mean_k}[coupling]


def kc_hmf(indptr, indices, coupling: str, dist: str, sigma: float) -> float | None:
    """Heterogeneous (annealed) mean-field onset, ``Kc0 <k> / <w k^2>`` (Ichinomiya 2004).

    Replace ``A_ij`` by its annealed average ``k_i k_j / (N <k>)``: node ``i`` sees
    ``K w_i k_i R sin(psi - theta_i)`` with the degree-weighted order parameter
    ``R e^{i psi} = sum_j k_j e^{i theta_j} / (N <k>)``. Locked nodes
    (``|omega_i| <= K w_i k_i R``) give ``R = sum_j k_j (K w_j k_j R)
    int cos^2(t) g(K w_j k_j R sin t) dt / (N <k>)``; as ``R -> 0+`` the integral
    is ``pi g(0) / 2`` and onset is at ``1 = K <w k^2> / (<k> Kc0)``:

      raw           Kc0 <k> / <k^2>
      degree        Kc0                 (<w k^2> = <k>)
      mean-degree   Kc0 <k>^2 / <k^2>
      global        Kc0 N <k> / <k^2>

    None when ``dist`` has no density; ``inf`` for a graph without edges.
    """
    return _kc_hmf(indptr, indices, _coupling(coupling), dist, sigma)


def _kc_hmf(indptr, indices, coupling: Coupling, dist: str, sigma: float) -> float | None:
    if not theory_applies(dist):
        return None
    k_c = kc0(dist, sigma)
    deg, stats = _degrees(indptr, indices)
    if stats["edges"] == 0:
        return math.inf
    w = _weights(indptr, coupling)
    mean_wk2 = float(np.sum(w * deg.astype(np.float64) ** 2)) / stats["nodes"]
    return k_c * stats["mean_k"] / mean_wk2


def kc_qmf(indptr, indices, coupling: str, dist: str, sigma: float) -> float | None:
    """Quenched mean-field onset ``Kc0 / lambda_max(W A)`` (Restrepo, Ott & Hunt 2005).

    Keep the graph, use local order parameters ``r_i e^{i psi_i} = sum_j A_ij
    <e^{i theta_j}>``: node ``i`` locks when ``|omega_i| <= K w_i r_i``, and
    linearising the self-consistency at ``r -> 0+`` gives ``r_i = (K / Kc0)
    sum_j A_ij w_j r_j``, an eigenproblem of ``A W`` (same spectrum as ``W A``):
    onset at ``K = Kc0 / lambda_max`` (:func:`lambda_max`). Degree normalisation
    on a graph with edges: ``lambda_max(D^-1 A) = 1``, so Kc0. None when ``dist``
    has no density; ``inf`` for a graph without edges.
    """
    return _kc_qmf(indptr, indices, _coupling(coupling), dist, sigma)


def _kc_qmf(indptr, indices, coupling: Coupling, dist: str, sigma: float) -> float | None:
    if not theory_applies(dist):
        return None
    k_c = kc0(dist, sigma)
    lam = _lambda_max(indptr, indices, coupling)
    return k_c / lam if lam > 0 else math.inf


def thresholds(indptr, indices, coupling: str, dist: str, sigma: float) -> dict:
    """``{"kc_mf", "kc_hmf", "kc_qmf"}`` of one CSR graph (floats; all None for a
    ``dist`` without density, see :func:`why_theory_does_not_apply`)."""
    checked = _coupling(coupling)
    if not theory_applies(dist):
        _degrees(indptr, indices)  # still refuse a malformed graph
        return {"kc_mf": None, "kc_hmf": None, "kc_qmf": None}
    _sigma(sigma)
    return {name: fn(indptr, indices, checked, dist, sigma)
            for name, fn in (("kc_mf", _kc_mf), ("kc_hmf", _kc_hmf), ("kc_qmf", _kc_qmf))}
