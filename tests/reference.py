"""Independent float64 reference of the kcbatch protocol (docs/design.md, steps 4-5).

Written from the design document only; it imports nothing from ``kcbatch`` and
deliberately computes the coupling term the direct way,

    sum_j A_ij sin(theta_j - theta_i),

over the edge list, instead of the sin/cos factorisation the engines use.
It is slow and meant for small graphs in tests.

Protocol, for every coupling K (each starting from the same theta0):

    dtheta_i/dt = omega_i + K * w_i * sum_j A_ij sin(theta_j - theta_i)

with the coupling normalisation w_i (``coupling``): ``degree`` 1 / max(k_i, 1)
(the default), ``raw`` 1, ``mean-degree`` 1 / <k> with <k> = 2E / N of the
graph, ``global`` 1 / N;

classic RK4 with step dt; ``n_transient`` steps discarded, then ``n_measure``
steps; after measurement step s (0-based) with ``s % sample_every == 0`` the
order parameter r = |mean_j exp(i theta_j)| is sampled.  Phases are wrapped
into [0, 2pi) after every step.  r(K) is the mean of the samples, of which
there are ceil(n_measure / sample_every).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp


def edge_list(adj):
    """Return (n, rows, cols): the nonzero entries of a symmetric adjacency.

    ``adj`` may be a dense array, a scipy.sparse matrix, a networkx graph, or a
    ``(indptr, indices)`` CSR pair.
    """
    if isinstance(adj, tuple) and len(adj) == 2:
        indptr = np.asarray(adj[0], dtype=np.int64)
        indices = np.asarray(adj[1], dtype=np.int64)
        n = len(indptr) - 1
        rows = np.repeat(np.arange(n), np.diff(indptr))
        return n, rows, indices
    if hasattr(adj, "nodes") and hasattr(adj, "edges"):  # networkx graph
        import networkx as nx

        n = adj.number_of_nodes()
        # node i of the graph is row i: nodes must be labelled 0..n-1
        assert set(adj.nodes()) == set(range(n)), "label nodes 0..n-1"
        m = nx.to_scipy_sparse_array(adj, nodelist=range(n), format="coo")
        return m.shape[0], np.asarray(m.row, np.int64), np.asarray(m.col, np.int64)
    m = sp.coo_matrix(adj)
    return m.shape[0], np.asarray(m.row, np.int64), np.asarray(m.col, np.int64)


def order_parameter(theta):
    return abs(np.mean(np.exp(1j * theta)))


def coupling_weight(degree, coupling):
    """w_i of every node of one graph (float64), straight from the equations above."""
    n = len(degree)
    if coupling == "degree":
        return 1.0 / np.maximum(degree, 1.0)
    if coupling == "raw":
        return np.ones(n)
    if coupling == "mean-degree":
        edges = degree.sum() / 2.0
        # <k> = 0: no edges, nothing to weight; any finite w gives the same dynamics
        return np.full(n, 1.0 / (2.0 * edges / n) if edges else 1.0)
    if coupling == "global":
        return np.full(n, 1.0 / n)
    raise ValueError(f"unknown coupling {coupling!r}")


def rk4_stepper(adj, omega, dt, coupling="degree"):
    """``step(theta, k)``: one classic RK4 step of size ``dt`` at coupling ``k``,
    phases wrapped into [0, 2pi) afterwards (float64 throughout)."""
    n, rows, cols = edge_list(adj)
    omega = np.asarray(omega, dtype=np.float64)
    assert omega.shape == (n,)
    degree = np.bincount(rows, minlength=n).astype(np.float64)
    weight = coupling_weight(degree, coupling)

    def rhs(theta, k):
        # coupling_i = sum over edges (i, j) of sin(theta_j - theta_i)
        coupling = np.bincount(rows, weights=np.sin(theta[cols] - theta[rows]),
                               minlength=n)
        return omega + k * weight * coupling

    def rk4_step(theta, k):
        k1 = rhs(theta, k)
        k2 = rhs(theta + 0.5 * dt * k1, k)
        k3 = rhs(theta + 0.5 * dt * k2, k)
        k4 = rhs(theta + dt * k3, k)
        theta = theta + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return np.mod(theta, 2.0 * math.pi)

    return rk4_step


def reference_samples(adj, omega, theta0, k_values, dt, n_transient, n_measure,
                      sample_every, sample_shift=0, coupling="degree"):
    """Sampled order parameter, shape ``(len(k_values), ceil(n_measure/sample_every))``.

    Sample ``c`` is r after measurement step ``s = c * sample_every`` (0-based),
    i.e. after ``n_transient + s + 1`` RK4 steps in total.

    ``sample_shift`` exists only for the test that shows what an off-by-one in
    the sampling would do: it takes r after measurement step ``s + sample_shift``
    instead (``-1`` = one step early, ``+1`` = one step late).  The protocol is
    ``sample_shift=0``.
    """
    theta0 = np.asarray(theta0, dtype=np.float64)
    assert n_transient + sample_shift >= 0
    rk4_step = rk4_stepper(adj, omega, dt, coupling)
    assert theta0.shape == np.shape(omega)

    # measurement steps after which r is sampled (0-based, measurement steps only)
    sample_steps = list(range(0, n_measure, sample_every))
    assert len(sample_steps) == -(-n_measure // sample_every)  # ceil
    # total number of RK4 steps taken before each sample
    wanted = [n_transient + s + 1 + sample_shift for s in sample_steps]
    n_total = max(wanted)

    out = np.zeros((len(k_values), len(sample_steps)))
    for ik, k in enumerate(k_values):
        k = float(k)
        theta = theta0.copy()
        c = 0
        for step in range(1, n_total + 1):  # ``step`` RK4 steps done after this
            theta = rk4_step(theta, k)
            if c < len(wanted) and step == wanted[c]:
                out[ik, c] = order_parameter(theta)
                c += 1
        assert c == len(wanted)
    return out


def reference_r(adj, omega, theta0, k_values, dt, n_transient, n_measure, sample_every,
                sample_shift=0, coupling="degree"):
    """Time-averaged order parameter r(K), shape ``(len(k_values),)``."""
    s = reference_samples(adj, omega, theta0, k_values, dt, n_transient, n_measure,
                          sample_every, sample_shift=sample_shift, coupling=coupling)
    return s.mean(axis=1)


def reference_sweep(adj, omega, theta0, k_values, dt, n_transient, n_measure, sample_every,
                    coupling="degree"):
    """The adiabatic sweep: ``(r_forward, r_backward)``, each ``(len(k_values),)``
    in the order of ``k_values``.

    Forward: the first K from theta0, each later K from the phases the previous
    K ended with (after its n_transient + n_measure steps). Backward: from the
    forward branch's final phases, the same K in reverse order, each again
    n_transient + n_measure steps. At every K, r is sampled after measurement
    step s with s % sample_every == 0 and averaged, as in the protocol.
    """
    step = rk4_stepper(adj, omega, dt, coupling)

    def window(theta, k):
        for _ in range(n_transient):
            theta = step(theta, k)
        samples = []
        for s in range(n_measure):
            theta = step(theta, k)
            if s % sample_every == 0:
                samples.append(order_parameter(theta))
        return theta, float(np.mean(samples))

    theta = np.asarray(theta0, dtype=np.float64).copy()
    forward, backward = [], []
    for k in k_values:
        theta, r = window(theta, float(k))
        forward.append(r)
    for k in list(k_values)[::-1]:
        theta, r = window(theta, float(k))
        backward.append(r)
    return np.array(forward), np.array(backward[::-1])


def reference_loop(k_values, r_forward, r_backward, threshold):
    """The loop of one sweep, from the issue's definitions: ``(kc_forward,
    kc_backward, largest_jump_k, loop_area)``.

    kc_forward: first K with r_forward > threshold (None if none).
    kc_backward: smallest K from which r_backward > threshold at it and every
      larger K (None if r_backward <= threshold at the last K).
    largest_jump_k: the K just after the largest rise of r_forward between
      neighbouring grid points.
    loop_area: sum over grid intervals of dK times the mean of
      (r_backward - r_forward) at the interval's ends.
    """
    k = [float(v) for v in k_values]
    kc_f = next((kk for kk, r in zip(k, r_forward, strict=True) if r > threshold), None)
    kc_b = None
    for i in range(len(k) - 1, -1, -1):
        if r_backward[i] > threshold:
            kc_b = k[i]
        else:
            break
    rises = [r_forward[i + 1] - r_forward[i] for i in range(len(k) - 1)]
    jump_k = k[1 + max(range(len(rises)), key=lambda i: rises[i])] if rises else None
    area = 0.0
    for i in range(len(k) - 1):
        d0 = r_backward[i] - r_forward[i]
        d1 = r_backward[i + 1] - r_forward[i + 1]
        area += (k[i + 1] - k[i]) * (d0 + d1) / 2.0
    return kc_f, kc_b, jump_k, area


def reference_kc(r, k_values, threshold):
    """First K whose r exceeds ``threshold``; None if none does."""
    for k, rk in zip(k_values, r, strict=True):
        if rk > threshold:
            return float(k)
    return None


def csr_from_edges(n, edges):
    """(indptr int64, indices int32) of an undirected simple graph, sorted rows."""
    nbrs = [set() for _ in range(n)]
    for a, b in edges:
        if a == b:
            raise ValueError(f"self-loop at node {a}")
        nbrs[a].add(b)
        nbrs[b].add(a)
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(s) for s in nbrs])
    indices = np.array([j for s in nbrs for j in sorted(s)], dtype=np.int32)
    return indptr, indices


# The graph generators' random stream, from the published reference C code
# (Blackman & Vigna): splitmix64 seeding xoshiro256**.

MASK64 = (1 << 64) - 1


def ref_splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


class RefXoshiro:
    """xoshiro256** straight from Blackman & Vigna's reference C code."""

    def __init__(self, s):
        self.s = list(s)

    @classmethod
    def seeded(cls, seed):
        s, out = seed, []
        for _ in range(4):
            s, z = ref_splitmix64(s)
            out.append(z)
        return cls(out)

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & MASK64  # noqa: E731
        result = (rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform01(self):
        """The top 53 bits as a double in [0, 1)."""
        return (self.next() >> 11) / 2**53

    def below(self, bound):
        """Lemire's unbiased multiply-shift on the top 32 bits; mask-and-reject above 2**32."""
        if bound < 2**32:
            while True:
                prod = (self.next() >> 32) * bound
                if prod & 0xFFFFFFFF >= (2**32 - bound) % bound:
                    return prod >> 32
        mask = (1 << (bound - 1).bit_length()) - 1
        while True:
            x = self.next() & mask
            if x < bound:
                return x
