"""kcbatch.inputs.batch.pack: the documented layout of a packed batch, and its input checks.

Expected arrays are built here from the inputs (neighbour lists, degrees counted
directly), not from pack's own arithmetic.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from reference import csr_from_edges

import kcbatch.inputs.batch as batch_mod
from kcbatch.inputs.batch import pack

# Three small graphs: a triangle with a tail, a path with an isolated last node
# (degree 0: the degree weight must be 1/max(0, 1) = 1), a star.
EDGES = [(4, [(0, 1), (1, 2), (2, 0), (2, 3)]),
         (5, [(0, 1), (1, 2), (2, 3)]),
         (6, [(0, i) for i in range(1, 6)])]


def graphs():
    return [tuple(np.asarray(a) for a in csr_from_edges(n, e)) for n, e in EDGES]


def node_inputs(seed=0):
    """omega (rad/time) and theta0 (rad, deliberately outside [0, 2pi) too) per graph."""
    rng = np.random.default_rng(seed)
    omegas = [rng.normal(0.0, 0.5, n) for n, _ in EDGES]
    thetas = [rng.uniform(-10.0, 20.0, n) for n, _ in EDGES]
    return omegas, thetas


def good_args():
    omegas, thetas = node_inputs()
    return dict(graphs=graphs(), omegas=omegas, thetas=thetas,
                couplings=np.array([0.0, 1.5, 3.0]), precision="float32")


# --------------------------------------------------------------------------- valid input

def expected_weights(coupling, sizes, edges, degree):
    """w_i per row from the equation, per graph: 1/max(k_i,1), 1, N/(2E) (= 1/<k>), 1/N."""
    out = []
    first = 0
    for n, e in zip(sizes, edges, strict=True):
        for i in range(first, first + n):
            out.append({"degree": 1.0 / max(degree[i], 1), "raw": 1.0,
                        "mean-degree": n / (2 * len(e)), "global": 1.0 / n}[coupling])
        first += n
    return np.array(out)


@pytest.mark.parametrize("coupling", ["degree", "raw", "mean-degree", "global"])
@pytest.mark.parametrize("precision, real", [("float32", np.float32), ("float64", np.float64)])
@pytest.mark.parametrize("per_graph_k", [False, True], ids=["k-grid", "k-per-graph"])
def test_pack_layout(precision, real, per_graph_k, coupling):
    omegas, thetas = node_inputs(1)
    sizes = [n for n, _ in EDGES]
    k = (np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]) if per_graph_k
         else np.array([0.5, 2.5]))
    b = pack(graphs(), omegas, thetas, k, precision, coupling)

    rows, n_graphs = sum(sizes), len(EDGES)
    # neighbour lists with global row ids, straight from the edge lists
    neighbours: list[list[int]] = [[] for _ in range(rows)]
    first = np.concatenate([[0], np.cumsum(sizes)])
    for g, (_, edges) in enumerate(EDGES):
        for i, j in edges:
            neighbours[first[g] + i].append(first[g] + j)
            neighbours[first[g] + j].append(first[g] + i)
    degree = np.array([len(nb) for nb in neighbours])
    nnz = int(degree.sum())

    expect = {  # name: (shape, dtype)
        "indptr": ((rows + 1,), np.int64), "indices": ((nnz,), np.int32),
        "weight": ((rows,), real), "omega": ((rows,), real), "theta0": ((rows,), real),
        "row_net": ((rows,), np.int32), "node_offset": ((n_graphs + 1,), np.int64),
        "couplings": ((n_graphs, 2), real)}
    for name, (shape, dtype) in expect.items():
        arr = getattr(b, name)
        assert arr.shape == shape and arr.dtype == dtype, (name, arr.shape, arr.dtype)
    assert (b.n_networks, b.n_rows, b.n_k, b.nnz, b.dtype) == (n_graphs, rows, 2, nnz, real)

    np.testing.assert_array_equal(b.node_offset, first)
    np.testing.assert_array_equal(b.row_net, np.repeat(np.arange(n_graphs), sizes))
    for i in range(rows):
        got = b.indices[b.indptr[i]:b.indptr[i + 1]]
        assert sorted(got.tolist()) == sorted(neighbours[i]), i
        assert np.all(np.diff(got) > 0), i  # sorted within a row
    want_w = expected_weights(coupling, sizes, [e for _, e in EDGES], degree)
    if coupling == "degree":  # today's numbers, bit for bit
        np.testing.assert_array_equal(b.weight, want_w.astype(real))
        assert b.weight[first[1] + 4] == 1  # the isolated node
    else:  # w in float64, rounded to the precision once
        np.testing.assert_allclose(b.weight, want_w.astype(real), rtol=np.finfo(real).eps,
                                   atol=0)
    if coupling in ("mean-degree", "global"):  # per network: different sizes, different w
        assert len(set(b.weight[first[:-1]].tolist())) == len(EDGES)
    np.testing.assert_array_equal(b.omega, np.concatenate(omegas).astype(real))
    # theta0 is reduced to [0, 2pi) (math.fmod-based, independent of numpy's mod)
    wrapped = [(t % (2 * math.pi)) for t in np.concatenate(thetas).tolist()]
    assert np.all((b.theta0 >= 0) & (b.theta0 < real(2 * math.pi)))
    np.testing.assert_allclose(b.theta0, wrapped, rtol=0,
                               atol=1e-12 if real is np.float64 else 1e-6)
    want_k = k if per_graph_k else np.tile(k, (n_graphs, 1))
    np.testing.assert_array_equal(b.couplings, want_k.astype(real))
    assert b.couplings.flags.c_contiguous


def test_mean_degree_weight_of_a_network_without_edges_is_finite():
    """<k> = 0: no coupling sum to scale; the weight is 1, not inf, beside a normal graph."""
    g = [csr_from_edges(3, []), csr_from_edges(2, [(0, 1)])]
    b = pack(g, [np.zeros(3), np.zeros(2)], [np.zeros(3), np.zeros(2)], [1.0], "float64",
             "mean-degree")
    np.testing.assert_array_equal(b.weight, [1.0, 1.0, 1.0, 1.0, 1.0])
    b = pack(g, [np.zeros(3), np.zeros(2)], [np.zeros(3), np.zeros(2)], [1.0], "float64",
             "global")
    np.testing.assert_array_equal(b.weight, [1 / 3, 1 / 3, 1 / 3, 0.5, 0.5])


def test_theta0_just_below_two_pi_stays_below_in_float32():
    g = [csr_from_edges(2, [(0, 1)])]
    theta = [np.array([2 * math.pi - 1e-9, -1e-9])]  # both round to 2pi in float32
    b = pack(g, [np.zeros(2)], theta, [1.0], "float32")
    assert np.all((b.theta0 >= 0) & (b.theta0 < np.float32(2 * math.pi))), b.theta0


# --------------------------------------------------------------------------- bad input

def _set(**changes):
    def change(args):
        args.update(changes)
    return change


def _graph(g, indptr=None, indices=None):
    def change(args):
        ip, ix = args["graphs"][g]
        args["graphs"][g] = (ip if indptr is None else np.asarray(indptr),
                             ix if indices is None else np.asarray(indices))
    return change


def _node_array(name, g, value):
    def change(args):
        args[name][g] = value
    return change


@pytest.mark.parametrize("change, words", [
    (_set(precision="float16"), ["precision", "'float16'", "float32", "float64"]),
    (_set(precision="double"), ["precision", "'double'"]),
    (_set(coupling="bogus"), ["coupling", "'bogus'", "degree", "raw", "mean-degree", "global"]),
    (_set(graphs=[], omegas=[], thetas=[]), ["graphs=[]", "at least one"]),
    (lambda a: a["omegas"].pop(), ["omega", "got 2 and 3", "3 graphs"]),
    (lambda a: a["thetas"].append(np.zeros(4)), ["theta0", "got 3 and 4", "3 graphs"]),
    (_set(couplings=np.zeros((2, 3))), ["couplings", "(2, 3)", "[3, nK]"]),
    (_set(couplings=np.zeros((3, 0))), ["couplings", "(3, 0)", "nK >= 1"]),
    (_set(couplings=np.zeros(0)), ["couplings", "(3, 0)", "nK >= 1"]),
    (_set(couplings=np.zeros((3, 2, 2))), ["couplings", "(3, 2, 2)"]),
    (_set(couplings=np.float64(1.0)), ["couplings", "()"]),
    (_graph(0, indptr=[1, 3, 5, 7, 8]), ["graph 0", "indptr", "[1 3 5 7 8]", "starting at 0"]),
    (_graph(1, indptr=[0, 2, 1, 3, 6, 6]), ["graph 1", "indptr", "[0 2 1 3 6 6]",
                                           "non-decreasing"]),
    (_graph(2, indptr=[0]), ["graph 2", "indptr", "shape (1,)", "at least 2 entries"]),
    (_graph(2, indptr=np.zeros((2, 3), np.int64)), ["graph 2", "indptr", "shape (2, 3)", "1-D"]),
    (_graph(0, indptr=np.int64(0)), ["graph 0", "indptr", "shape ()", "1-D"]),
    (_graph(0, indices=[1, 2, 0, 2, 0, 1, 3]), ["graph 0", "indices", "(7,)", "indptr[-1]=8"]),
    (_graph(0, indices=np.zeros((8, 1), np.int32)), ["graph 0", "indices", "(8, 1)"]),
    (_graph(1, indices=[1, 0, 2, 1, 3, 9]), ["graph 1", "neighbour id 9", "[0, 5)"]),
    (_graph(2, indices=[1, 2, 3, 4, -1, 0, 0, 0, 0, 0]), ["graph 2", "neighbour id -1",
                                                          "[0, 6)"]),
    (_node_array("omegas", 1, np.zeros(4)), ["omega", "graph 1", "(4,)", "(5,)"]),
    (_node_array("thetas", 2, np.zeros((6, 1))), ["theta0", "graph 2", "(6, 1)", "(6,)"]),
    (_node_array("omegas", 0, 0.5), ["omega", "graph 0", "()", "(4,)"]),
], ids=["precision-float16", "precision-double", "coupling-unknown", "no-graphs", "omega-count",
        "theta0-count",
        "couplings-rows", "couplings-nK-0", "couplings-empty-grid", "couplings-3d",
        "couplings-scalar", "indptr-start", "indptr-decreasing", "indptr-too-short",
        "indptr-2d", "indptr-scalar", "indices-length", "indices-2d", "neighbour-too-big",
        "neighbour-negative", "omega-shape", "theta0-shape", "omega-scalar"])
def test_pack_rejects_bad_input_naming_what_and_the_value(change, words):
    args = good_args()
    change(args)
    with pytest.raises(ValueError) as info:
        pack(**args)
    msg = str(info.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


def test_pack_refuses_more_rows_than_int32_ids_allow(monkeypatch):
    # 2**31 real rows would need tens of GiB: lower the limit instead (15 rows here).
    args = good_args()
    pack(**args)
    monkeypatch.setattr(batch_mod, "MAX_ROWS", 15)
    pack(**args)  # exactly at the limit: fine
    monkeypatch.setattr(batch_mod, "MAX_ROWS", 14)
    with pytest.raises(ValueError, match=r"too large: 15 rows.*at most 14"):
        pack(**args)


def test_the_row_limit_is_what_int32_can_index():
    assert batch_mod.MAX_ROWS == np.iinfo(np.int32).max


# --------------------------------------------------------------------------- coupling checked once

def test_row_weights_takes_a_checked_member_without_checking_it_again(monkeypatch):
    import kcbatch.protocol.coupling as coupling_mod
    from kcbatch.protocol.choices import Coupling

    def no_check(value):
        raise AssertionError(f"coupling {value!r} checked again")
    monkeypatch.setattr(coupling_mod, "check_coupling", no_check)
    deg = np.array([2, 1, 0, 3])
    offset = np.array([0, 2, 4])
    assert coupling_mod.row_weights(deg, offset, Coupling.DEGREE).tolist() == \
        [0.5, 1.0, 1.0, 1 / 3]
    assert coupling_mod.row_weights(deg, offset, Coupling.RAW).tolist() == [1.0] * 4
    assert coupling_mod.row_weights(deg, offset, Coupling.GLOBAL).tolist() == [0.5] * 4
    assert coupling_mod.row_weights(deg, offset, Coupling.MEAN_DEGREE).tolist() == \
        [2 / 3, 2 / 3, 2 / 3, 2 / 3]


def test_pack_checks_the_coupling_once_and_keeps_its_message(monkeypatch):
    import kcbatch.protocol.coupling as coupling_mod
    calls = []
    real_check = coupling_mod.check_coupling

    def counted(value):
        calls.append(value)
        return real_check(value)
    monkeypatch.setattr(coupling_mod, "check_coupling", counted)
    monkeypatch.setattr(batch_mod, "check_coupling", counted)
    omegas, thetas = node_inputs()
    pack(graphs(), omegas, thetas, [1.0], "float64", "raw")
    assert calls == ["raw"]
    with pytest.raises(ValueError, match=r"^invalid coupling='dgree': must be one of degree, "
                                         r"raw, mean-degree, global$"):
        pack(graphs(), omegas, thetas, [1.0], "float64", "dgree")
