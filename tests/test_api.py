"""kcbatch.simulate: bad input raises one clear line naming the argument.

(What simulate computes, on every device: tests/test_correctness.py.)
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import kcbatch
from kcbatch.protocol.config import ConfigError

N = 12
GOOD_TIMES = dict(dt=0.1, t_transient=0.2, t_measure=0.4, sample_every=2)


def good():
    """Two 12-node graphs (one networkx, one CSR pair) and their inputs."""
    ring = nx.cycle_graph(N)
    csr = (np.arange(0, 2 * N + 1, 2), np.array([j for i in range(N)
                                                  for j in sorted(((i - 1) % N, (i + 1) % N))]))
    rng = np.random.default_rng(3)
    return dict(graphs=[ring, csr], omega=rng.normal(0, 0.5, (2, N)),
                theta0=rng.uniform(0, 2 * np.pi, (2, N)), k_values=np.array([0.0, 1.0, 2.0]),
                device="cpu", **GOOD_TIMES)


def test_the_good_inputs_run():
    kw = good()
    r = kcbatch.simulate(**kw)
    assert r.shape == (2, 3) and np.all((r >= 0) & (r <= 1))
    # the networkx ring and the CSR ring are the same graph
    kw["omega"], kw["theta0"] = kw["omega"][[0, 0]], kw["theta0"][[0, 0]]
    r = kcbatch.simulate(**kw)
    np.testing.assert_array_equal(r[0], r[1])


def _with(**changes):
    return lambda kw: kw.update(changes)


@pytest.mark.parametrize("change, exc, words", [
    # graphs
    (_with(graphs=[nx.cycle_graph(N), 42]), TypeError, ["graphs[1]", "int", "networkx",
                                                        "(indptr, indices)"]),
    (_with(graphs=["ring", nx.cycle_graph(N)]), TypeError, ["graphs[0]", "str"]),
    (_with(graphs=[nx.cycle_graph(N), (np.arange(3),)]), TypeError, ["graphs[1]", "tuple"]),
    (_with(graphs=[]), ValueError, ["graphs", "empty", "at least one"]),
    # omega / theta0: count and shape
    (lambda kw: kw.update(omega=kw["omega"][:1]), ValueError, ["omega", "(1, 12)", "2 rows"]),
    (lambda kw: kw.update(theta0=np.zeros((3, N))), ValueError, ["theta0", "(3, 12)", "2 rows"]),
    (lambda kw: kw.update(omega=list(kw["omega"]) * 2), ValueError, ["omega", "4 arrays",
                                                                     "2 graphs"]),
    (lambda kw: kw.update(theta0=[np.zeros(N)]), ValueError, ["theta0", "1 arrays", "2 graphs"]),
    (lambda kw: kw.update(omega=np.zeros((2, N - 1))), ValueError, ["omega", "graph 0", "(11,)",
                                                                    "(12,)"]),
    (lambda kw: kw.update(theta0=[np.zeros(N), np.zeros(N + 2)]), ValueError,
     ["theta0", "graph 1", "(14,)", "(12,)"]),
    # precision
    (_with(precision="float16"), ConfigError, ["precision", "'float16'", "float32", "float64"]),
    (_with(precision="double"), ConfigError, ["precision", "'double'"]),
    # times
    (_with(dt=0.0), ConfigError, ["dt", "0.0", "> 0"]),
    (_with(dt=-0.1), ConfigError, ["dt", "-0.1"]),
    (_with(dt=float("nan")), ConfigError, ["dt", "nan"]),
    (_with(t_transient=-1.0), ConfigError, ["t_transient", "-1.0"]),
    (_with(t_measure=0.0), ConfigError, ["t_measure", "0.0"]),
    (_with(t_measure=0.45), ConfigError, ["t_measure", "0.45", "multiple of dt"]),
    (_with(sample_every=0), ConfigError, ["sample_every", "0"]),
    (_with(sample_every=5), ConfigError, ["sample_every", "5", "4"]),  # t_measure/dt = 4
    (_with(sample_every=1.5), ConfigError, ["sample_every", "1.5"]),
    # k_values: [nK] or [G, nK], nK >= 1
    (_with(k_values=np.zeros((3, 2))), ValueError, ["k_values", "(3, 2)", "[2, nK]"]),
    (_with(k_values=np.zeros((2, 2, 2))), ValueError, ["k_values", "(2, 2, 2)"]),
    (_with(k_values=[]), ValueError, ["k_values", "(0,)", "nK >= 1"]),
    (_with(k_values=np.zeros((2, 0))), ValueError, ["k_values", "(2, 0)", "nK >= 1"]),
    (_with(k_values=1.0), ValueError, ["k_values", "()"]),
], ids=["graph-int", "graph-str", "graph-1-tuple", "no-graphs", "omega-rows", "theta0-rows",
        "omega-count", "theta0-count", "omega-nodes", "theta0-nodes", "precision-float16",
        "precision-double", "dt-0", "dt-negative", "dt-nan", "t_transient-negative",
        "t_measure-0", "t_measure-not-a-multiple", "sample_every-0", "sample_every-too-big",
        "sample_every-float", "k_values-rows", "k_values-3d", "k_values-empty",
        "k_values-nK-0", "k_values-scalar"])
def test_simulate_bad_input_names_the_argument(change, exc, words):
    kw = good()
    change(kw)
    with pytest.raises(exc) as info:
        kcbatch.simulate(**kw)
    msg = str(info.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    if isinstance(info.value, ConfigError):
        assert info.value.param == words[0]
