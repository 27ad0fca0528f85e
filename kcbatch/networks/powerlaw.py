"""Scale-free networks with a chosen degree exponent: the erased configuration model.

Construction (a pure function of ``(n, gamma, min_degree, seed)``):

1. **Degrees.** Each node draws its degree independently from the discrete,
   truncated power law

       P(k) = k**-gamma / sum_{j=k_min}^{n-1} j**-gamma,   k_min <= k <= n - 1,

   sampled exactly (no rounding of a continuous Pareto): inverse transform on
   the tabulated survival function ``S(k) = P(K >= k)``, whose tail sums are
   accumulated from the largest degree down so that small tail probabilities
   keep full relative precision (the table has ``n - k_min`` entries; degrees
   whose ``S(k)`` is below 2**-53 are never drawn). The only cutoff is
   ``n - 1``, the largest degree a simple graph allows; the structural
   cutoff ``sqrt(<k> n)`` is NOT imposed, so hubs reach the natural cutoff
   ``~ k_min n**(1/(gamma-1))``.
2. **Even sum.** If the degrees sum to an odd number the whole sequence is
   redrawn (about two tries on average), which samples the i.i.d. law
   conditioned on an even sum exactly; adjusting one node instead would bias
   that node. Only where an even sum is nearly impossible (every node stuck
   at an odd ``k_min`` by a huge ``gamma``, with ``n`` odd) does the 64th odd
   sum give one random node (below ``n - 1``) an extra stub instead.
3. **Pairing.** Node ``i`` gets ``k_i`` stubs; a uniform shuffle of all stubs
   pairs them uniformly at random (the configuration model).
4. **Erasing.** Self-loops are dropped and multi-edges merged into one edge,
   leaving a simple graph in the package's CSR form.

Known biases, all shrinking for larger ``gamma``:

* Erasing removes edges, mostly at hubs: a node of degree ``k`` expects about
  ``k <k(k-1)> / (2 <k>**2 n)`` of its edges to repeat another (plus
  ``(k-1) / (<k> n)`` lost to self-loops), a fraction that grows with ``k``
  and matters for hubs beyond the structural cutoff ``sqrt(<k> n)``. For
  ``gamma > 3`` the expected number erased stays bounded as ``n`` grows; for
  ``2 < gamma < 3`` it grows with ``n`` (``<k^2>`` diverges), the largest
  degrees come out below their draws and hubs become disassortative (they
  cannot link to each other more than once). At ``n = 10**4``,
  ``k_min = 3`` (20 graphs each), 0.2% of the stub pairs are erased on
  average for ``gamma = 3`` (at most 0.4%), and 3.6% for ``gamma = 2.5``
  (up to 9% in a graph whose largest hub nears ``n``).
* Erasing can push a node below ``k_min`` (even to degree 0, when all its
  stubs formed self-loops), so the minimum degree is guaranteed only for the
  drawn sequence (:func:`powerlaw_sample` returns it).
* Finite size: with ``k_max ~ n**(1/(gamma-1))`` the realised ``<k^2>`` grows
  with ``n`` for ``gamma < 3`` and varies strongly from graph to graph, and
  so does every quantity that depends on it (e.g. Kc under raw coupling).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from kcbatch.networks.csr import (
    MAX_NODES,
    require_int,
    require_real,
    simple_csr_from_edges,
)
from kcbatch.networks.rng import uniform01, uniform_below, xoshiro_seed

__all__ = ["PowerLawSample", "powerlaw", "powerlaw_sample"]


@numba.njit(cache=True, nogil=True)
def _survival(gamma, k_min, k_max):
    """``S[i] = P(K >= k_min + i)`` for ``i = 0..k_max-k_min``, then a 0 sentinel.

    Weights are ``(k / k_min)**-gamma`` (1 at ``k_min``), so large ``gamma``
    underflows only in the far tail, never the normalisation.
    """
    size = k_max - k_min + 1
    s = np.empty(size + 1, dtype=np.float64)
    s[size] = 0.0
    total = 0.0
    # Smallest terms first: the tail sums keep their relative precision.
    for i in range(size - 1, -1, -1):
        total += math.exp(-gamma * math.log((k_min + i) / k_min))
        s[i] = total
    for i in range(size):
        s[i] /= total
    s[0] = 1.0
    return s


# Whole-sequence redraws before giving up on an even sum (see _draw_degrees).
_EVEN_TRIES = 64


@numba.njit(cache=True, nogil=True)
def _draw_degrees(state, n, k_min, survival):
    """``n`` i.i.d. degrees by inverse transform on ``survival``, with an even sum.

    An odd sum redraws the whole sequence, which conditions on an even sum
    exactly. Laws where an even sum is (nearly) impossible, e.g. every node
    stuck at an odd ``k_min`` (large ``gamma``) with ``n`` odd, would loop
    forever: after ``_EVEN_TRIES`` odd sums (probability ``2**-64`` when
    odd and even sums are about equally likely) one node drawn uniformly among
    those below ``n - 1`` gets one more stub. Such a node exists: all at
    ``n - 1`` would make the sum even.
    """
    deg = np.empty(n, dtype=np.int64)
    top = survival.shape[0] - 2  # index of k_max
    total = 0
    for _ in range(_EVEN_TRIES):
        total = 0
        for v in range(n):
            u = 1.0 - uniform01(state)  # in (0, 1]
            # Largest i with S[i] >= u; S[0] = 1 >= u, so lo = 0 is valid.
            lo = 0
            hi = top
            while lo < hi:
                mid = (lo + hi + 1) >> 1
                if survival[mid] >= u:
                    lo = mid
                else:
                    hi = mid - 1
            deg[v] = k_min + lo
            total += deg[v]
        if total % 2 == 0:
            return deg, total
    while True:
        v = uniform_below(state, n)
        if deg[v] < n - 1:
            deg[v] += 1
            return deg, total + 1


@numba.njit(cache=True, nogil=True)
def _powerlaw_csr(n, gamma, k_min, seed):
    state = xoshiro_seed(seed)
    survival = _survival(gamma, k_min, n - 1)
    deg, n_stubs = _draw_degrees(state, n, k_min, survival)
    stubs = np.empty(n_stubs, dtype=np.int32)
    t = 0
    for v in range(n):
        for _ in range(deg[v]):
            stubs[t] = v
            t += 1
    # Fisher–Yates: a uniform permutation, so (stubs[2i], stubs[2i+1]) is a
    # uniform perfect matching of the stubs.
    for i in range(n_stubs - 1, 0, -1):
        j = uniform_below(state, i + 1)
        x = stubs[i]
        stubs[i] = stubs[j]
        stubs[j] = x
    n_pairs = n_stubs // 2
    src = np.empty(n_pairs, dtype=np.int32)
    dst = np.empty(n_pairs, dtype=np.int32)
    for i in range(n_pairs):
        src[i] = stubs[2 * i]
        dst[i] = stubs[2 * i + 1]
    indptr, indices, self_loops, multi = simple_csr_from_edges(n, src, dst, n_pairs)
    return indptr, indices, deg, self_loops, multi


class PowerLawSample(NamedTuple):
    """One erased-configuration-model graph and what erasing did to it."""

    indptr: np.ndarray    # int64 [n+1]
    indices: np.ndarray   # int32 [2E], sorted rows
    degrees: np.ndarray   # int64 [n], the drawn degrees (before erasing), even sum
    self_loops: int       # stub pairs dropped as self-loops
    multi_edges: int      # stub pairs dropped as repeats of an edge already made


def powerlaw_sample(n: int, gamma: float, min_degree: int, seed: int) -> PowerLawSample:
    """:func:`powerlaw`'s graph together with its drawn degrees and erased counts.

    ``E = degrees.sum() / 2 - self_loops - multi_edges`` always holds. Same
    arguments, validation and random stream as :func:`powerlaw`.
    """
    min_degree = require_int("min_degree", min_degree, ">= 1")
    if min_degree < 1:
        raise ValueError(f"invalid min_degree={min_degree}: must be an integer >= 1")
    n = require_int("n", n, f"with min_degree < n <= {MAX_NODES} (min_degree={min_degree})")
    if not min_degree < n <= MAX_NODES:
        raise ValueError(f"invalid n={n}: must be an integer with min_degree < n <= {MAX_NODES} "
                         f"(min_degree={min_degree})")
    exponent = require_real("gamma", gamma, "> 2")
    if not exponent > 2.0:
        raise ValueError(f"invalid gamma={gamma!r}: must be a finite number > 2")
    seed = require_int("seed", seed, "in [0, 2**64)")
    if not 0 <= seed < 2**64:
        raise ValueError(f"invalid seed={seed}: must be an integer in [0, 2**64)")
    # Fixed argument types so there is exactly one compiled (and cached) variant.
    indptr, indices, deg, self_loops, multi = _powerlaw_csr(
        np.int64(n), np.float64(exponent), np.int64(min_degree), np.uint64(seed))
    return PowerLawSample(indptr, indices, deg, int(self_loops), int(multi))


def powerlaw(n: int, gamma: float, min_degree: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A scale-free graph, degrees ~ k**-gamma for k >= min_degree, as CSR.

    The erased configuration model described in this module's docstring:
    i.i.d. degrees from the discrete power law on ``[min_degree, n-1]``
    (redrawn until their sum is even), stubs paired uniformly, self-loops and
    multi-edges erased. Use :func:`powerlaw_sample` for the drawn degrees and
    the numbers erased.

    Random stream: ``n`` :func:`~kcbatch.networks.rng.uniform01` draws per
    degree sequence tried (after 64 odd sums,
    :func:`~kcbatch.networks.rng.uniform_below` ``(n)`` draws pick the node that
    gets an extra stub), then one
    :func:`~kcbatch.networks.rng.uniform_below` per stub for the shuffle (from
    the last stub down). That order is part of the contract.

    Parameters
    ----------
    n : int, ``min_degree < n <= 2**31 - 1``
    gamma : finite real ``> 2`` (the mean degree is finite)
    min_degree : int ``>= 1``
    seed : int in ``[0, 2**64)``

    Returns
    -------
    indptr : ndarray, int64, shape ``[n+1]``
    indices : ndarray, int32, shape ``[2*E]``, neighbours sorted within a row.

    Raises
    ------
    ValueError
        naming the parameter, its value and what is allowed.

    Runs in a ``nogil`` numba function in O(n + E) (plus O(n log n) for the
    degree draws' binary searches).
    """
    sample = powerlaw_sample(n, gamma, min_degree, seed)
    return sample.indptr, sample.indices
