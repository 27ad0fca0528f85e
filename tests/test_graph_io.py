"""Tests for kcbatch.networks.read_graph / read_graphs: edge lists and GraphML files.

Expected graphs are built independently (networkx graphs or Python sets,
relabelled by sorting their labels, converted with scipy), never by the reader.
"""
from __future__ import annotations

import hashlib
import random

import networkx as nx
import numpy as np
import pytest

from kcbatch.networks import (
    GraphFileError,
    file_sha256,
    graph_files,
    read_graph,
    read_graphs,
)


def expected_csr(edges, nodes=(), key=None):
    """CSR of the undirected simple graph on ``edges`` (+ isolated ``nodes``),
    rows in sorted label order, via networkx and scipy."""
    G = nx.Graph()
    G.add_nodes_from(nodes)
    G.add_edges_from((u, v) for u, v in edges if u != v)
    G.add_nodes_from(u for e in edges for u in e)
    order = sorted(G.nodes, key=key)
    A = nx.to_scipy_sparse_array(G, nodelist=order, format="csr")
    A.sort_indices()
    return A.indptr.astype(np.int64), A.indices.astype(np.int32), order


def assert_graph(got, edges, nodes=(), key=None):
    indptr, indices, order = expected_csr(edges, nodes, key)
    assert got.indptr.dtype == np.int64 and got.indices.dtype == np.int32
    np.testing.assert_array_equal(got.indptr, indptr)
    np.testing.assert_array_equal(got.indices, indices)
    assert got.labels == order


def random_edges(n, m, seed, labels=None):
    G = nx.gnm_random_graph(n, m, seed=seed)
    rnd = random.Random(seed)
    labels = labels or list(range(n))
    edges = [(labels[u], labels[v]) if rnd.random() < 0.5 else (labels[v], labels[u])
             for u, v in G.edges]
    rnd.shuffle(edges)
    return edges


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# --------------------------------------------------------------------------
# One test per format
# --------------------------------------------------------------------------

@pytest.mark.parametrize("ext,sep", [(".txt", " "), (".txt", "\t"), (".edges", "  "),
                                     (".el", " \t "), (".csv", ","), (".csv", ", ")])
def test_edge_list_formats(tmp_path, ext, sep):
    # Labels 0..59 scattered over 0..999 so that the relabelling matters.
    labels = random.Random(1).sample(range(1000), 60)
    edges = random_edges(60, 150, seed=2, labels=labels)
    f = write(tmp_path / f"g{ext}", "".join(f"{u}{sep}{v}\n" for u, v in edges))
    g = read_graph(f)
    assert_graph(g, edges)
    r = g.report
    assert (r.format, r.nodes, r.edges, r.labels) == ("edgelist", len({x for e in edges for x in e}),
                                                      150, "integers")
    assert (r.self_loops, r.duplicates, r.isolated, r.directed) == (0, 0, 0, False)


def test_graphml_undirected_written_by_networkx(tmp_path):
    G = nx.gnm_random_graph(40, 90, seed=3)
    G.add_nodes_from([40, 41])  # isolated nodes, declared only
    G = nx.relabel_nodes(G, {i: f"v{i:03d}" for i in G})
    nx.set_node_attributes(G, "red", "color")
    nx.set_edge_attributes(G, 1.5, "weight")
    nx.write_graphml(G, tmp_path / "g.graphml")
    g = read_graph(tmp_path / "g.graphml")
    assert_graph(g, list(G.edges), nodes=G.nodes)
    r = g.report
    assert (r.format, r.nodes, r.edges, r.isolated, r.directed) == ("graphml", 42, 90, 2, False)
    assert r.labels == "strings"


def test_graphml_directed_is_symmetrised_and_counted(tmp_path):
    D = nx.MultiDiGraph(nx.gnm_random_graph(30, 120, seed=4, directed=True))
    repeated = list(D.edges())[:3]
    D.add_edges_from(repeated + [(5, 5), (7, 7)])
    arcs = list(D.edges())
    nx.write_graphml(D, tmp_path / "d.graphml")
    g = read_graph(tmp_path / "d.graphml")
    assert_graph(g, arcs, nodes=D.nodes)
    # The counts from plain sets.
    arc_set = {(u, v) for u, v in arcs if u != v}
    pairs = {frozenset(a) for a in arc_set}
    both = {p for p in pairs if len({(a, b) for a in p for b in p if a != b} & arc_set) == 2}
    r = g.report
    assert r.directed and r.self_loops == 2 and r.duplicates == len(repeated)
    assert r.reciprocal == len(both) and r.symmetrised == len(pairs) - len(both)
    assert r.edges == len(pairs)
    assert len(both) > 0 and r.symmetrised > 0  # the case exercises both counts


def test_graphml_handwritten_with_namespaces_and_data(tmp_path):
    f = write(tmp_path / "h.GraphML", """<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<graphml xmlns="http://graphml.graphdrawing.org/xmlns"
         xmlns:y="http://www.yworks.com/xml/graphml">
  <key id="d0" for="node" attr.name="label" attr.type="string"><default>x</default></key>
  <graph id="G" edgedefault="undirected">
    <desc>three nodes</desc>
    <node id="2"><data key="d0"><y:ShapeNode/></data><port name="p"/></node>
    <node id="10"/>
    <node id="-1"/>
    <node id="7"/>
    <edge source="10" target="2"><data key="d0">w</data></edge>
    <edge id="e1" source="-1" target="10" directed="true"/>
    <edge source="2" target="10"/>
  </graph>
</graphml>
""")
    g = read_graph(f)
    assert_graph(g, [(10, 2), (-1, 10)], nodes=[2, 10, -1, 7])
    assert g.labels == [-1, 2, 7, 10]
    assert (g.report.duplicates, g.report.isolated, g.report.directed) == (1, 1, False)


def test_graphml_without_edgedefault_is_undirected(tmp_path):
    f = write(tmp_path / "u.graphml", '<graphml><graph><node id="a"/><node id="b"/>'
                                      '<edge source="a" target="b"/><edge source="b" target="a"/>'
                                      '</graph></graphml>')
    r = read_graph(f).report
    assert not r.directed and r.duplicates == 1 and r.edges == 1


# --------------------------------------------------------------------------
# Relabelling, cleaning and the report
# --------------------------------------------------------------------------

def test_integer_labels_sort_numerically(tmp_path):
    f = write(tmp_path / "g.txt", "10 9\n9 100\n-3 10\n+4 -3\n")
    g = read_graph(f)
    assert g.labels == [-3, 4, 9, 10, 100]
    assert_graph(g, [(10, 9), (9, 100), (-3, 10), (4, -3)])
    assert g.report.labels == "integers"


def test_string_labels_sort_by_code_point(tmp_path):
    f = write(tmp_path / "g.txt", "n10 n2\nn2 B\nb n10\né a\n")
    g = read_graph(f)
    assert g.labels == sorted(["n10", "n2", "B", "b", "é", "a"]) == ["B", "a", "b", "n10", "n2", "é"]
    assert_graph(g, [("n10", "n2"), ("n2", "B"), ("b", "n10"), ("é", "a")])


def test_mixed_labels_sort_as_strings_and_say_so(tmp_path):
    f = write(tmp_path / "g.txt", "1 2\n2 10\n10 x\n")
    g = read_graph(f)
    assert g.labels == ["1", "10", "2", "x"]
    assert g.report.labels == "strings" and "labels sorted as strings" in g.report.notice()


def test_integer_spellings_of_one_number_are_one_node(tmp_path):
    g = read_graph(write(tmp_path / "g.txt", "01 2\n1 3\n001 1\n"))
    assert g.labels == [1, 2, 3]
    assert (g.report.edges, g.report.self_loops) == (2, 1)


def test_self_loops_and_duplicates_dropped_and_counted(tmp_path):
    lines = ["1 2", "2 1", "1 2", "3 3", "2 3", "4 4", "3 2"]
    g = read_graph(write(tmp_path / "g.txt", "\n".join(lines)))
    # Node 4 appears only in a self-loop: kept, isolated.
    assert_graph(g, [(1, 2), (2, 3)], nodes=[4])
    r = g.report
    assert (r.self_loops, r.duplicates, r.edges, r.nodes, r.isolated) == (2, 3, 2, 4, 1)
    assert r.notice() == ("g.txt: 4 nodes, 2 edges (1 isolated node); "
                          "dropped 2 self-loops and 3 duplicate edges")


def test_comments_blank_lines_and_line_endings(tmp_path):
    text = ("\ufeff# header comment\r\n"
            "% KONECT-style comment\r\n"
            "\r\n"
            "   \t\r\n"
            "1 2   # inline comment\r\n"
            "  2\t3  \r\n"
            "#3 4\r\n"
            "3 1")  # no final newline
    g = read_graph(write(tmp_path / "g.edges", text))
    assert_graph(g, [(1, 2), (2, 3), (3, 1)])


def test_csv_fields_may_hold_spaces(tmp_path):
    g = read_graph(write(tmp_path / "g.csv", "New York, Boston\nBoston,Chicago , 2.5\n"))
    assert_graph(g, [("New York", "Boston"), ("Boston", "Chicago")])
    assert g.report.weights_ignored


def test_weights_are_ignored(tmp_path):
    plain = read_graph(write(tmp_path / "a.txt", "1 2\n2 3\n"))
    weighted = read_graph(write(tmp_path / "b.txt", "1 2 0.5\n2 3 -1e3\n"))
    np.testing.assert_array_equal(plain.indices, weighted.indices)
    assert weighted.report.weights_ignored and not plain.report.weights_ignored
    assert "weights ignored" in weighted.report.notice()


def test_csv_header_is_skipped_when_the_rest_is_integers(tmp_path):
    g = read_graph(write(tmp_path / "g.csv", "source,target,weight\n1,2,1.0\n2,3,1.0\n"))
    assert_graph(g, [(1, 2), (2, 3)])
    assert g.report.header_skipped and "header" in g.report.notice()
    # With string labels a header cannot be told from an edge: it stays one
    # (documented; comment it out with #).
    g = read_graph(write(tmp_path / "s.csv", "from,to\na,b\n"))
    assert_graph(g, [("from", "to"), ("a", "b")])
    assert not g.report.header_skipped


def test_checksum_is_sha256_of_the_bytes(tmp_path):
    f = write(tmp_path / "g.txt", "1 2\n2 3\n")
    want = hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_sha256(f) == want == read_graph(f).report.sha256
    write(f, "1 2\n2 4\n")
    assert file_sha256(f) != want


# --------------------------------------------------------------------------
# Malformed, empty and unreadable files: file, line and reason
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name,content,line,reason", [
    ("bad_weight.txt", "1 2\n# c\n2 3 heavy\n", 3, "weight 'heavy' is not a number"),
    ("one_column.txt", "1 2\n\n3\n", 3, "expected 2 columns (u v) or 3 (u v weight), found 1"),
    ("four_columns.el", "1 2 3 4\n", 1, "found 4"),
    ("empty_field.csv", "1,2\n1,,2\n", 2, "empty field"),
    ("quoted.csv", '1,2\n"a,b",c\n', 2, "quoted fields are not supported"),
    ("first_line_weight.txt", "1 2 x\n2 3\n", 1, "weight 'x' is not a number"),
    ("bad_xml.graphml", "<graphml>\n<graph>\n<node id='a'>\n</graph>\n</graphml>\n", 4,
     "malformed XML (mismatched tag)"),
    ("truncated.graphml", "<graphml>\n<graph>\n", 3, "malformed XML"),
    ("no_graph.graphml", "<graphml>\n<key id='d0'/>\n</graphml>\n", 3, "no <graph> element"),
    ("not_graphml.graphml", "<?xml version='1.0'?>\n<svg/>\n", 2, "root element is <svg>"),
    ("two_graphs.graphml", "<graphml><graph/>\n<graph/></graphml>", 2, "more than one <graph>"),
    ("hyper.graphml", "<graphml><graph>\n<hyperedge/></graph></graphml>", 2, "hyperedges"),
    ("nested.graphml", "<graphml><graph><node id='a'>\n<graph/></node></graph></graphml>", 2,
     "nested graphs"),
    ("no_id.graphml", "<graphml><graph>\n<node/></graph></graphml>", 2, "<node> without an id"),
    ("dup_id.graphml", "<graphml><graph>\n<node id='a'/>\n<node id='a'/></graph></graphml>", 3,
     "node id 'a' declared twice (first on line 2)"),
    ("half_edge.graphml", "<graphml><graph><node id='a'/>\n<edge source='a'/></graph></graphml>", 2,
     "<edge> without source and target"),
    ("bad_default.graphml", "<graphml>\n<graph edgedefault='both'/></graphml>", 2, "edgedefault='both'"),
    ("no_nodes.graphml", "<graphml>\n<graph edgedefault='undirected'>\n</graph>\n</graphml>", 4,
     "the graph has no nodes"),
])
def test_malformed_files_name_file_line_and_reason(tmp_path, name, content, line, reason):
    f = write(tmp_path / name, content)
    with pytest.raises(GraphFileError) as info:
        read_graph(f)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.path, err.line) == (str(f), line)
    assert reason in err.reason
    assert str(err).startswith(f"invalid graph file {f}, line {line}: ")
    assert reason in str(err)


def test_non_utf8_bytes_name_their_line(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("a b\nc d\né f\n".encode("latin-1"))
    with pytest.raises(GraphFileError, match=r"latin1.txt, line 3: not UTF-8 text \(byte 0xe9\)"):
        read_graph(f)


@pytest.mark.parametrize("content,reason", [("", "empty file"), ("\n  \n", "empty file"),
                                            ("# only\n% comments\n\n", "no edges")])
def test_empty_files(tmp_path, content, reason):
    f = write(tmp_path / "e.txt", content)
    with pytest.raises(GraphFileError) as info:
        read_graph(f)
    # There is no line to blame: the whole file is the problem.
    assert info.value.line is None and reason in info.value.reason
    assert str(info.value) == f"invalid graph file {f}: {info.value.reason}"


def test_empty_graphml_is_malformed_xml(tmp_path):
    with pytest.raises(GraphFileError, match=r"e.graphml, line 1: malformed XML \(no element found\)"):
        read_graph(write(tmp_path / "e.graphml", ""))


def test_missing_unreadable_and_unsupported(tmp_path):
    with pytest.raises(GraphFileError, match=r"invalid graph file .*nope.txt: cannot be read \(No such file"):
        read_graph(tmp_path / "nope.txt")
    with pytest.raises(GraphFileError, match=r"nope.txt: cannot be read"):
        file_sha256(tmp_path / "nope.txt")
    (tmp_path / "dir.txt").mkdir()
    with pytest.raises(GraphFileError, match=r"dir.txt: is a directory, not a regular file"):
        read_graph(tmp_path / "dir.txt")
    with pytest.raises(GraphFileError, match=r"g.json: unsupported extension '.json'; expected one of "
                                             r"\.txt, \.csv, \.edges, \.el, \.graphml"):
        read_graph(write(tmp_path / "g.json", "1 2\n"))


# --------------------------------------------------------------------------
# Directories
# --------------------------------------------------------------------------

def test_directory_in_sorted_name_order(tmp_path):
    names = ["net10.txt", "net2.txt", "b.graphml", "a.csv", "C.el", "x.EDGES"]
    for i, name in enumerate(names):
        if name.endswith(".graphml"):
            write(tmp_path / name, f'<graphml><graph><edge source="0" target="{i + 1}"/></graph></graphml>')
        else:
            write(tmp_path / name, f"0 {i + 1}\n")
    # Ignored: other extensions, hidden files (e.g. macOS ._ companions), subdirectories.
    write(tmp_path / "notes.md", "1 2\n")
    (tmp_path / "._net2.txt").write_bytes(b"\x00\x05\x16\x07")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "inner.txt", "1 2\n")
    order = sorted(names)
    assert [p.name for p in graph_files(tmp_path)] == order == ["C.el", "a.csv", "b.graphml",
                                                                 "net10.txt", "net2.txt", "x.EDGES"]
    graphs = read_graphs(tmp_path)
    assert [g.report.path for g in graphs] == [str(tmp_path / n) for n in order]
    # Each file's content (its second node) comes back in the same order.
    assert [g.labels[1] for g in graphs] == [names.index(n) + 1 for n in order]


def test_single_file_and_bad_paths(tmp_path):
    f = write(tmp_path / "one.txt", "1 2\n")
    assert graph_files(f) == [f]
    assert [g.report.path for g in read_graphs(f)] == [str(f)]
    empty = tmp_path / "empty"
    empty.mkdir()
    write(empty / "readme.md", "x")
    with pytest.raises(GraphFileError, match=r"invalid graph file .*empty: directory holds no graph "
                                             r"files \(extensions \.txt, \.csv"):
        read_graphs(empty)
    with pytest.raises(GraphFileError, match=r"missing: no such file or directory"):
        read_graphs(tmp_path / "missing")


def test_a_bad_file_in_a_directory_names_itself(tmp_path):
    write(tmp_path / "a.txt", "1 2\n")
    write(tmp_path / "b.txt", "1 2\n3\n")
    with pytest.raises(GraphFileError, match=r"b.txt, line 2: expected 2 columns"):
        read_graphs(tmp_path)
