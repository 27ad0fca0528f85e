"""Studies on the users' own networks: ``--graphs PATH`` (issue 9, item 2).

Expected values come from independent computations: each file's nodes and edges
from networkx (its own edge-list and GraphML handling), the checksums from
hashlib, the per-run streams from numpy's SeedSequence directly, the stability
bound from the largest degree over the files.
"""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading

import networkx as nx
import numpy as np
import pytest
from helpers import (
    assert_same_records,
    assert_usage_error,
    device_params,
    invoke,
    ok,
    r_matrix,
    read_csv,
)

from kcbatch import StudyConfig, run_study
from kcbatch.inputs.pipeline import make_batch
from kcbatch.networks import GraphFileError
from kcbatch.protocol.config import ConfigError
from kcbatch.results.store import STORE_NAME, Store, StoreError
from kcbatch.run.plan import check_paths

# A tiny protocol every file network runs in well under a second.
PROTOCOL = dict(k_num=3, k_max=2.0, t_transient=0.5, t_measure=0.5, sample_every=2,
                seed=23)
FLAGS = ["--k-num", "3", "--k-max", "2", "--t-transient", "0.5", "--t-measure", "0.5",
         "--sample-every", "2", "--seed", "23", "--device", "cpu", "--quiet"]

# An edge list with comments, a repeated edge (both orders) and a self-loop.
EDGE_LIST = """# a small ring with chords
% a KONECT-style header line
0 1
1 2   # trailing comment
2 3
3 4
4 5
5 0
0 3
3 0
2 2
6 0
6 1
"""
# A CSV with a repeated row.
CSV = "\n".join(f"{u},{v}" for u, v in
                [(10, 11), (11, 12), (12, 13), (13, 10), (10, 12), (11, 13), (13, 14),
                 (14, 15), (11, 12), (15, 10)]) + "\n"
# A directed GraphML: reciprocal arcs, a repeated arc, two self-loops, an isolated node.
ARCS = [("a", "b"), ("b", "a"), ("b", "c"), ("c", "d"), ("d", "a"), ("a", "c"),
        ("c", "d"), ("d", "d"), ("e", "e"), ("e", "a")]
GRAPHML = ("""<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <graph id="G" edgedefault="directed">
""" + "".join(f'    <node id="{n}"/>\n' for n in "abcdef")
           + "".join(f'    <edge source="{u}" target="{v}"/>\n' for u, v in ARCS)
           + "  </graph>\n</graphml>\n")

FILES = {"a_ring.txt": EDGE_LIST, "b_square.csv": CSV, "c_directed.graphml": GRAPHML}


def _edge_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("%"):
            u, v = re.split(r"[,\s]+", line)[:2]
            pairs.append((u, v))
    return pairs


def expected(name: str, text: str) -> dict:
    """nodes, edges and the reader's changes, from networkx and plain counting."""
    if name.endswith(".graphml"):
        d = nx.DiGraph()
        d.add_nodes_from("abcdef")
        d.add_edges_from(ARCS)
        g = d.to_undirected()
        loops = sum(u == v for u, v in ARCS)
        dups = len(ARCS) - len(set(ARCS))
        directed = True
    else:
        pairs = _edge_pairs(text)
        g = nx.Graph()
        g.add_edges_from(pairs)
        loops = sum(u == v for u, v in pairs)
        dups = (len(pairs) - loops) - len({frozenset(p) for p in pairs if p[0] != p[1]})
        directed = False
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    return dict(nodes=g.number_of_nodes(), edges=g.number_of_edges(), loops=loops,
                dups=dups, directed=directed,
                k_max=max(d for _, d in g.degree()),
                sha=hashlib.sha256(text.encode()).hexdigest())


@pytest.fixture
def nets(tmp_path):
    d = tmp_path / "nets"
    d.mkdir()
    for name, text in FILES.items():
        (d / name).write_text(text)
    (d / "notes.md").write_text("not a graph: skipped\n")
    return d


ORDER = sorted(FILES)  # the files in the order runs use them
WANT = {name: expected(name, text) for name, text in FILES.items()}


def stream(seed, run):
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed).spawn(run + 1)[run]))


# --------------------------------------------------------------------------- a study

def test_cli_study_cycles_through_the_files_and_records_each(nets, tmp_path):
    out = tmp_path / "out"
    res = ok(["run", "--graphs", nets, "--runs", "7", "--batch", "3", "--out", out, *FLAGS])
    # one notice line, the changes summed over the files
    notices = [ln for ln in res.stderr.splitlines() if ln.startswith("graphs:")]
    assert len(notices) == 1, res.stderr
    line = notices[0]
    loops = sum(w["loops"] for w in WANT.values())
    dups = sum(w["dups"] for w in WANT.values())
    assert f"3 files from {nets}" in line
    assert "1 directed file symmetrised" in line
    assert f"{loops} self-loops and {dups} duplicate edges dropped" in line, line

    header, rows = read_csv(out / "runs.csv")
    assert "graph_file" in header and "graph_sha256" in header
    assert [int(r["run"]) for r in rows] == list(range(7))
    for i, row in enumerate(rows):
        name = ORDER[i % 3]
        want = WANT[name]
        assert row["graph_file"] == name
        assert row["graph_sha256"] == want["sha"]
        assert (int(row["nodes"]), int(row["edges"]), int(row["k_max"])) == \
            (want["nodes"], want["edges"], want["k_max"]), (i, name)

    con = sqlite3.connect(out / STORE_NAME)
    try:
        stored = con.execute("SELECT run, graph_file, graph_sha256 FROM runs "
                             "ORDER BY run").fetchall()
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()
    assert stored == [(i, ORDER[i % 3], WANT[ORDER[i % 3]]["sha"]) for i in range(7)]
    assert json.loads(meta["graph_files"]) == [[n, WANT[n]["sha"]] for n in ORDER]
    assert meta["schema_version"] == "7"
    config = json.loads(meta["config"])
    assert config["graphs"] == str(nets.resolve()) and config["runs"] == 7


@pytest.mark.slow
def test_runs_default_to_the_number_of_files_and_one_file_works(nets, tmp_path):
    ok(["run", "--graphs", nets, "--out", tmp_path / "all", *FLAGS])
    _, rows = read_csv(tmp_path / "all" / "runs.csv")
    assert [r["graph_file"] for r in rows] == ORDER

    one = nets / "b_square.csv"
    res = ok(["run", "--graphs", one, "--runs", "2", "--out", tmp_path / "one", *FLAGS])
    assert f"graphs: 1 file {one}" in res.stderr
    _, rows = read_csv(tmp_path / "one" / "runs.csv")
    assert [r["graph_file"] for r in rows] == ["b_square.csv"] * 2
    assert {int(r["nodes"]) for r in rows} == {WANT["b_square.csv"]["nodes"]}
    assert check_paths(StudyConfig(graphs=one)).runs == 1
    assert check_paths(StudyConfig(graphs=nets)).runs == 3


def test_each_run_draws_its_own_omega_and_theta0_after_an_unused_graph_seed(nets):
    cfg = StudyConfig(graphs=nets, runs=5, omega_mu=0.2, omega_sigma=0.4, precision="float64",
                      **{k: v for k, v in PROTOCOL.items() if k != "seed"}, seed=5)
    item = make_batch([0, 1, 2, 3, 4], cfg)
    off = item.batch.node_offset
    for b, run in enumerate(range(5)):
        n = WANT[ORDER[run % 3]]["nodes"]
        g = stream(5, run)
        g.integers(0, 2**63 - 1, dtype=np.int64)  # the graph seed, drawn and unused
        omega = g.normal(0.2, 0.4, n)
        theta0 = g.uniform(0.0, 2.0 * np.pi, n)
        assert off[b + 1] - off[b] == n
        np.testing.assert_array_equal(item.batch.omega[off[b]:off[b + 1]], omega)
        np.testing.assert_array_equal(item.batch.theta0[off[b]:off[b + 1]], theta0)
    # runs 0 and 3 share a network, not their frequencies
    assert not np.array_equal(item.batch.omega[off[0]:off[1]], item.batch.omega[off[3]:off[4]])


def test_api_study_equals_the_cli_and_is_batch_size_invariant(nets, tmp_path):
    out = tmp_path / "cli"
    ok(["run", "--graphs", nets, "--runs", "5", "--batch", "2", "--out", out, *FLAGS])
    one = run_study(StudyConfig(graphs=str(nets), runs=5, batch=1, device="cpu", **PROTOCOL))
    five = run_study(StudyConfig(graphs=nets, runs=5, batch=5, device="cpu", **PROTOCOL))
    assert_same_records(one.records, five.records)
    np.testing.assert_array_equal(r_matrix(out / "runs.csv"), five.r)
    assert [r.graph_file for r in five.records] == [ORDER[i % 3] for i in range(5)]
    assert any(n.startswith("graphs: 3 files") for n in five.notices)
    # the theory per run is the graph's, so runs on one file share it
    assert five.records[0].kc_qmf == five.records[3].kc_qmf is not None


def test_resume_after_an_interruption_gives_the_same_results(nets, tmp_path):
    cfg = StudyConfig(graphs=nets, runs=7, batch=2, device="cpu", out=tmp_path / "s",
                      **PROTOCOL)
    stop = threading.Event()
    stop.set()  # stop after the first batch
    first = run_study(cfg, stop=stop)
    assert first.interrupted and len(first.records) == 2
    rest = run_study(cfg, resume=True)
    assert rest.computed == 5 and not rest.interrupted
    whole = run_study(cfg.replace(out=None))
    assert_same_records(rest.records, whole.records)


def test_resume_over_an_empty_leftover_store_finds_nothing_to_resume(nets, tmp_path):
    """A killed creation's empty file is no stored study: resuming says so (the
    graph files are not checked against it), and a new study replaces it."""
    out = tmp_path / "s"
    out.mkdir()
    (out / STORE_NAME).write_bytes(b"")
    cfg = StudyConfig(graphs=nets, runs=3, device="cpu", out=out, **PROTOCOL)
    with pytest.raises(StoreError, match="nothing to resume"):
        run_study(cfg, resume=True)
    assert_same_records(run_study(cfg).records, run_study(cfg.replace(out=None)).records)


@pytest.mark.parametrize("change", ["modified", "removed", "added"])
@pytest.mark.slow
def test_resume_refuses_files_that_changed(nets, tmp_path, change):
    out = tmp_path / "s"
    stop_flags = ["--runs", "6", "--batch", "2", "--run-range", "0:2"]
    ok(["run", "--graphs", nets, *stop_flags, "--out", out, *FLAGS])
    target = nets / "b_square.csv"
    if change == "modified":
        target.write_text(CSV + "15,16\n")
    elif change == "removed":
        target.unlink()
    else:
        target = nets / "b_zz_new.txt"
        target.write_text("0 1\n")
    line = assert_usage_error(invoke(["run", "--resume", out, "--quiet"]), str(target))
    assert {"modified": "changed", "removed": "gone", "added": "new"}[change] in line
    # nothing was computed
    with Store.open(out / STORE_NAME) as store:
        assert store.done_runs() == {0, 1}


@pytest.mark.slow
def test_a_merged_store_refuses_an_added_file_on_resume(nets, tmp_path):
    # Shards of one --graphs study merged: the merged store keeps the file list, so
    # its resume refuses a file added since (it would move later runs to new networks).
    shards = []
    for rng in ("0:2", "2:4"):
        out = tmp_path / f"shard{rng[0]}"
        ok(["run", "--graphs", nets, "--runs", "6", "--batch", "2", "--run-range", rng,
            "--out", out, *FLAGS])
        shards.append(out)
    merged = tmp_path / "merged"
    ok(["merge", merged, *shards])
    added = nets / "b_zz_new.txt"
    added.write_text("0 1\n")
    line = assert_usage_error(invoke(["run", "--resume", merged, "--quiet"]), str(added))
    assert "new" in line
    with Store.open(merged / STORE_NAME) as store:
        assert store.done_runs() == {0, 1, 2, 3}


# --------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("flag,value", [("--nodes", "10000"), ("--m", "3"), ("--graph", "er"),
                                        ("--ws-p", "0.1"), ("--gamma", "3")])
def test_model_flags_are_refused_with_graphs(nets, flag, value):
    assert_usage_error(invoke(["run", "--graphs", nets, flag, value, *FLAGS]),
                       flag, "does not apply with --graphs")


def test_model_fields_are_refused_in_toml_and_the_api(nets, tmp_path):
    toml = tmp_path / "study.toml"
    toml.write_text(f'graphs = "{nets}"\nm = 4\n')
    assert_usage_error(invoke(["run", "--config", toml, *FLAGS]), "m=4", "does not apply")
    for field, value in (("nodes", 50), ("graph", "ws"), ("gamma", 2.5)):
        with pytest.raises(ConfigError, match=f"{field}.*does not apply with graphs"):
            StudyConfig(graphs=nets, **{field: value})
    toml.write_text(f'graphs = "{nets}"\nruns = 2\n')
    res = ok(["run", "--config", toml, "--out", tmp_path / "t", *FLAGS])
    assert "graphs: 3 files" in res.stderr


@pytest.mark.parametrize("name,text,needles", [
    ("bad.txt", "0 1\n1 2\n1 2 3 4\n", ["bad.txt", "line 3", "expected 2 columns"]),
    ("weights.csv", "0,1,heavy\n", ["weights.csv", "line 1", "not a number"]),
    ("empty.edges", "", ["empty.edges", "empty file"]),
    ("broken.graphml", "<graphml><graph>\n<node id='a'>\n</graphml>", ["broken.graphml", "line 3",
                                                                        "malformed XML"]),
])
def test_malformed_files_are_refused_before_the_study_starts(nets, tmp_path, name, text,
                                                             needles):
    (nets / name).write_text(text)
    out = tmp_path / "never"
    assert_usage_error(invoke(["run", "--graphs", nets, "--out", out, *FLAGS]), *needles)
    assert not (out / STORE_NAME).exists()
    with pytest.raises(GraphFileError, match=needles[1]):
        run_study(StudyConfig(graphs=nets, device="cpu", **PROTOCOL))


def test_missing_paths_and_empty_directories_are_refused(tmp_path):
    assert_usage_error(invoke(["run", "--graphs", tmp_path / "nowhere", *FLAGS]),
                       "nowhere", "no such file")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no graphs\n")
    assert_usage_error(invoke(["run", "--graphs", empty, *FLAGS]), str(empty),
                       "no graph files")
    # with --runs the listing waits for the study: still refused, still one line
    assert_usage_error(invoke(["run", "--graphs", empty, "--runs", "2", *FLAGS]),
                       str(empty), "no graph files")


# --------------------------------------------------------------------------- dt, sizes

def test_dt_auto_and_the_guard_use_the_files_largest_degree(nets):
    k_max_deg = max(w["k_max"] for w in WANT.values())
    bound = 2.78 / (2 * 2.0 * k_max_deg)  # dt * 2 K_max max(w_i k_i) <= 2.78, raw: w = 1
    res = run_study(StudyConfig(graphs=nets, dt="auto", coupling="raw", device="cpu",
                                **PROTOCOL))
    dt = res.config.dt
    assert dt <= 0.9 * bound * (1 + 1e-12)
    for t in (0.5, 0.5):
        assert abs(t / dt - round(t / dt)) < 1e-9
    assert any("over the study's 3 network files" in n for n in res.notices)
    too_big = round(bound * 1.05, 4)
    with pytest.raises(ConfigError, match="3 network files"):
        run_study(StudyConfig(graphs=nets, dt=too_big, t_transient=too_big * 2,
                              t_measure=too_big * 2, coupling="raw", device="cpu",
                              k_num=3, k_max=2.0, sample_every=1, seed=1))


def test_memory_and_batch_limits_use_the_largest_file(nets):
    from kcbatch.engines import get_engine
    from kcbatch.inputs.graph_source import network_size
    from kcbatch.run.batching import batch_shape, packed_batch_bytes

    cfg = StudyConfig(graphs=nets, device="cpu", **PROTOCOL)
    n = max(w["nodes"] for w in WANT.values())
    e = max(w["edges"] for w in WANT.values())
    assert network_size(cfg) == (n, e)
    # indptr, indices, and weight/omega/theta0 (float32) + row_net per row
    assert packed_batch_bytes(cfg, 4) == 8 * (4 * n + 1) + 4 * 2 * e * 4 + 4 * n * (4 + 3 * 4)
    assert batch_shape(cfg).nodes == n and batch_shape(cfg).edges == e
    assert get_engine("cpu").predict_bytes(batch_shape(cfg), 2) > 0


def test_schema_2_store_is_upgraded_in_place(tmp_path):
    path = tmp_path / STORE_NAME
    Store.create(path, StudyConfig().to_dict(), np.array([0.0, 1.0]), "x").close()
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE runs DROP COLUMN graph_file")
    con.execute("ALTER TABLE runs DROP COLUMN graph_sha256")
    con.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    con.commit()
    con.close()
    with Store.open(path) as store:
        assert store.meta("schema_version") == "7"
        cols = {row[1] for row in store.conn.execute("PRAGMA table_info(runs)")}
        assert {"graph_file", "graph_sha256"} <= cols
        assert store.graph_files() == set()


# --------------------------------------------------------------------------- devices

@pytest.mark.parametrize("device", device_params(("gpu-sim", "gpu")))
def test_devices_agree_with_cpu_on_file_graphs(nets, device):
    fields = dict(graphs=nets, runs=4, batch=4, **PROTOCOL)
    cpu = run_study(StudyConfig(**fields, device="cpu"))
    other = run_study(StudyConfig(**fields, device=device))
    assert [r.graph_file for r in other.records] == [r.graph_file for r in cpu.records]
    assert np.max(np.abs(other.r - cpu.r)) <= 1e-4
