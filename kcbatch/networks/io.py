"""Users' own networks: edge lists and GraphML files read into the package's CSR form.

Formats, chosen by the file's extension (case-insensitive):

* **Edge lists** (``.txt``, ``.csv``, ``.edges``, ``.el``), UTF-8: one edge per
  line, two node labels separated by whitespace or by a comma (a line holding
  a comma is split at commas only, so CSV labels may contain spaces; quoted
  fields are refused rather than misread). An optional third column is a
  weight: it must be a number and is ignored (the model is unweighted); more
  columns are refused. ``#`` starts a comment anywhere on a line, and a line
  whose first non-blank character is ``%`` (KONECT, Matrix Market headers) is
  a comment; blank lines are skipped. Edge lists are undirected: ``u v`` and
  ``v u`` name the same edge. When the first data line's two labels are not
  integers but every other label is, that line is taken as a column header
  (``source,target``) and skipped. Every node is named by an edge, so edge
  lists have no isolated nodes except those named only by self-loops (kept:
  the file names them).
* **GraphML** (``.graphml``): the one ``<graph>`` of the file; its
  ``edgedefault`` says whether the input is directed (absent = undirected, as
  networkx reads it; per-edge ``directed`` attributes are not consulted). Data
  keys, ``<data>`` and ports are ignored; declared nodes without edges are kept
  as isolated nodes. Hyperedges and nested graphs are refused.

Every graph becomes undirected and simple: directed edges are symmetrised,
self-loops dropped, repeated edges kept once; :class:`ReadReport` counts each
change. Node labels are relabelled ``0..n-1`` in sorted order: numerically when
every label is an integer (ASCII digits with an optional sign; ``"01"`` and
``"1"`` are then the same node), otherwise as strings (Python's code-point
order, so ``"n10"`` sorts before ``"n2"``).

Unreadable, empty or malformed files raise :class:`GraphFileError` (a
``ValueError``) naming the file, the line where one applies, and the reason.
"""
from __future__ import annotations

import hashlib
import re
import xml.parsers.expat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from kcbatch.networks.csr import MAX_NODES, simple_csr_from_edges
from kcbatch.protocol.config import MAX_GRAPH_FILE_BYTES, NotARegularFile, read_regular_file

__all__ = ["GRAPH_EXTENSIONS", "GraphFile", "GraphFileError", "ReadReport", "file_sha256",
           "graph_files", "read_graph", "read_graphs"]

# Extension (lower case) -> format.
GRAPH_EXTENSIONS = {".txt": "edgelist", ".csv": "edgelist", ".edges": "edgelist",
                    ".el": "edgelist", ".graphml": "graphml"}

_INTEGER = re.compile(r"[+-]?[0-9]+")


class GraphFileError(ValueError):
    """A graph file that cannot be used: ``path``, ``line`` (1-based, or None) and ``reason``."""

    def __init__(self, path, reason: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"invalid graph file {where}: {reason}")


@dataclass(frozen=True)
class ReadReport:
    """What :func:`read_graph` found in a file and what it changed.

    Counts are of entries in the file: ``self_loops`` dropped, ``duplicates``
    (an edge given again: the same pair, in either order for undirected
    input, in the same order for directed input) dropped. For directed input,
    ``reciprocal`` pairs given both ways became one edge each and
    ``symmetrised`` one-way edges became undirected.
    """

    path: str
    format: str              # "edgelist" or "graphml"
    sha256: str              # of the bytes parsed
    nodes: int
    edges: int               # undirected, after the changes
    isolated: int            # nodes of degree 0
    directed: bool
    self_loops: int
    duplicates: int
    reciprocal: int
    symmetrised: int
    labels: str              # "integers" (numeric order) or "strings"
    header_skipped: bool = False
    weights_ignored: bool = False

    def notice(self) -> str:
        """One line for the user: size, and every change made to the input."""
        parts = [f"{Path(self.path).name}: {self.nodes} nodes, {_count(self.edges, 'edge')}"
                 + (f" ({_count(self.isolated, 'isolated node')})" if self.isolated else "")]
        dropped = [_count(c, what) for c, what in ((self.self_loops, "self-loop"),
                                                   (self.duplicates, "duplicate edge")) if c]
        if dropped:
            parts.append("dropped " + " and ".join(dropped))
        if self.directed:
            parts.append("directed input made undirected "
                         f"({_count(self.symmetrised, 'one-way edge')} "
                         f"symmetrised, {_count(self.reciprocal, 'reciprocal pair')} merged)")
        if self.header_skipped:
            parts.append("first line read as a header")
        if self.weights_ignored:
            parts.append("weights ignored")
        if self.labels == "strings":
            parts.append("labels sorted as strings")
        return "; ".join(parts)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


class GraphFile(NamedTuple):
    """A graph read from a file: CSR, the original labels in row order, the report."""

    indptr: np.ndarray    # int64 [n+1]
    indices: np.ndarray   # int32 [2E], sorted rows
    labels: list          # labels[i] is row i's label (int or str, as sorted)
    report: ReadReport


def file_sha256(path) -> str:
    """Hex SHA-256 of the file's bytes (what :attr:`ReadReport.sha256` holds);
    GraphFileError unless it is a regular file of at most MAX_GRAPH_FILE_BYTES."""
    return hashlib.sha256(_file_bytes(path)).hexdigest()


def _file_bytes(path) -> bytes:
    """The bytes of a graph file: a regular file (a FIFO or a device such as
    /dev/zero is refused before it is opened) of at most MAX_GRAPH_FILE_BYTES."""
    try:
        return read_regular_file(path, MAX_GRAPH_FILE_BYTES)
    except OSError as e:
        raise GraphFileError(path, f"cannot be read ({e.strerror or e})") from None
    except NotARegularFile as e:
        raise GraphFileError(path, str(e)) from None


def graph_files(path) -> list[Path]:
    """The graph files ``path`` names: itself if a file, else the directory's
    files with a supported extension in sorted name order (not recursive;
    names starting with ``.`` are skipped, e.g. editors' and macOS's ``._x``
    companions). An empty selection is refused."""
    p = Path(path)
    if p.is_dir():
        try:
            files = sorted((f for f in p.iterdir()
                            if f.suffix.lower() in GRAPH_EXTENSIONS and not f.name.startswith(".")
                            and f.is_file()), key=lambda f: f.name)
        except OSError as e:
            raise GraphFileError(path, f"directory cannot be read ({e.strerror or e})") from None
        if not files:
            raise GraphFileError(path, "directory holds no graph files (extensions "
                                       + ", ".join(GRAPH_EXTENSIONS) + ")")
        return files
    if not p.exists():
        raise GraphFileError(path, "no such file or directory")
    if not p.is_file():  # a FIFO, a device: never opened (it could block or never end)
        _file_bytes(p)
    return [p]


def read_graphs(path) -> list[GraphFile]:
    """:func:`read_graph` of each of :func:`graph_files` ``(path)``, in that order."""
    return [read_graph(f) for f in graph_files(path)]


def read_graph(path) -> GraphFile:
    """Read one edge-list or GraphML file (see the module docstring) as CSR.

    Returns ``GraphFile(indptr int64 [n+1], indices int32 [2E], labels, report)``;
    it unpacks as a 4-tuple. Raises :class:`GraphFileError` for an unsupported
    extension, an unreadable, empty or malformed file, or more than
    ``2**31 - 1`` nodes.
    """
    p = Path(path)
    fmt = GRAPH_EXTENSIONS.get(p.suffix.lower())
    if fmt is None:
        raise GraphFileError(path, f"unsupported extension {p.suffix!r}; expected one of "
                                   + ", ".join(GRAPH_EXTENSIONS))
    data = _file_bytes(p)
    if fmt == "graphml":
        parsed = _parse_graphml(path, data)
    else:
        parsed = _parse_edgelist(path, data)
    return _build(path, fmt, hashlib.sha256(data).hexdigest(), parsed)


@dataclass
class _Parsed:
    nodes: list            # declared node labels (GraphML), in file order
    us: list               # edge endpoint labels, in file order
    vs: list
    directed: bool
    header_skipped: bool = False
    weights_ignored: bool = False


def _decode(path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise GraphFileError(path, f"not UTF-8 text (byte 0x{data[e.start]:02x})", line) from None


def _fields(path, text: str, lineno: int) -> list[str]:
    if "," in text:
        fields = [f.strip() for f in text.split(",")]
        if any(not f for f in fields):
            raise GraphFileError(path, f"empty field in comma-separated line {text!r}", lineno)
    else:
        fields = text.split()
    if any('"' in f for f in fields):
        raise GraphFileError(path, f"quoted fields are not supported: {text!r}", lineno)
    if len(fields) not in (2, 3):
        raise GraphFileError(path, f"expected 2 columns (u v) or 3 (u v weight), found "
                                   f"{len(fields)} in {text!r}", lineno)
    return fields


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _parse_edgelist(path, data: bytes) -> _Parsed:
    text = _decode(path, data)
    us, vs = [], []
    weights = False
    first = None  # (lineno, fields) of the first data line, validated last
    for lineno, raw in enumerate(text.split("\n"), 1):
        if "#" in raw:
            raw = raw.split("#", 1)[0]
        line = raw.strip()
        if not line or line[0] == "%":
            continue
        # Fast path for the common whitespace-separated line; _fields
        # validates (and explains) everything else.
        fields = line.split()
        if len(fields) not in (2, 3) or "," in line or '"' in line:
            fields = _fields(path, line, lineno)
        if first is None:
            # Might be a header ("source,target,weight"): judged once all
            # labels are known.
            first = (lineno, fields)
            continue
        if len(fields) == 3:
            if not _is_number(fields[2]):
                raise GraphFileError(path, f"weight {fields[2]!r} is not a number", lineno)
            weights = True
        us.append(fields[0])
        vs.append(fields[1])
    if first is None:
        reason = "empty file" if not text.strip() else "no edges (only comments and blank lines)"
        raise GraphFileError(path, reason)

    lineno, fields = first
    header = (not _INTEGER.fullmatch(fields[0]) and not _INTEGER.fullmatch(fields[1])
              and bool(us) and all(_INTEGER.fullmatch(t) for t in set(us) | set(vs)))
    if not header:
        if len(fields) == 3:
            if not _is_number(fields[2]):
                raise GraphFileError(path, f"weight {fields[2]!r} is not a number", lineno)
            weights = True
        us.insert(0, fields[0])
        vs.insert(0, fields[1])
    return _Parsed([], us, vs, directed=False, header_skipped=header, weights_ignored=weights)


def _parse_graphml(path, data: bytes) -> _Parsed:
    parser = xml.parsers.expat.ParserCreate()
    stack: list[str] = []
    declared: dict[str, int] = {}   # node id -> line declared
    us, vs = [], []
    state: dict[str, Any] = {"graphs": 0, "directed": False, "root_end": None}

    def fail(reason):
        raise GraphFileError(path, reason, parser.CurrentLineNumber)

    def start(name, attrs):
        tag = name.rsplit(":", 1)[-1]
        parent = stack[-1] if stack else None
        stack.append(tag)
        if parent is None:
            if tag != "graphml":
                fail(f"not GraphML: the root element is <{name}>, not <graphml>")
        elif tag == "graph":
            if parent != "graphml":
                fail("nested graphs are not supported")
            state["graphs"] += 1
            if state["graphs"] > 1:
                fail("more than one <graph>: one graph per file")
            default = attrs.get("edgedefault", "undirected")
            if default not in ("directed", "undirected"):
                fail(f"edgedefault={default!r}: must be 'directed' or 'undirected'")
            state["directed"] = default == "directed"
        elif tag == "hyperedge":
            fail("hyperedges are not supported")
        elif tag == "node" and parent == "graph":
            node = attrs.get("id")
            if node is None:
                fail("<node> without an id")
            if node in declared:
                fail(f"node id {node!r} declared twice (first on line {declared[node]})")
            declared[node] = parser.CurrentLineNumber
        elif tag == "edge" and parent == "graph":
            source, target = attrs.get("source"), attrs.get("target")
            if source is None or target is None:
                fail("<edge> without source and target")
            us.append(source)
            vs.append(target)

    def end(name):
        stack.pop()
        if not stack:
            state["root_end"] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as e:
        raise GraphFileError(path, f"malformed XML ({xml.parsers.expat.ErrorString(e.code)})",
                             e.lineno) from None
    if state["graphs"] == 0:
        raise GraphFileError(path, "no <graph> element in <graphml>", state["root_end"])
    if not declared and not us:
        raise GraphFileError(path, "the graph has no nodes", state["root_end"])
    return _Parsed(list(declared), us, vs, directed=state["directed"])


def _unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's general machinery is slower for int keys)."""
    keys = np.sort(keys)
    keep = np.ones(keys.shape[0], dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


def _build(path, fmt: str, sha256: str, parsed: _Parsed) -> GraphFile:
    names = set(parsed.nodes) | set(parsed.us) | set(parsed.vs)
    if all(_INTEGER.fullmatch(t) for t in names):
        kind = "integers"
        value = {t: int(t) for t in names}
    else:
        kind = "strings"
        value = {t: t for t in names}
    labels = sorted(set(value.values()))
    n = len(labels)
    if n > MAX_NODES:
        raise GraphFileError(path, f"{n} nodes; at most {MAX_NODES} fit int32 indices")
    row = {lab: i for i, lab in enumerate(labels)}
    row_of = {t: row[value[t]] for t in names}
    u = np.fromiter(map(row_of.__getitem__, parsed.us), dtype=np.int64, count=len(parsed.us))
    v = np.fromiter(map(row_of.__getitem__, parsed.vs), dtype=np.int64, count=len(parsed.vs))

    loops = u == v
    u, v = u[~loops], v[~loops]
    a, b = np.minimum(u, v), np.maximum(u, v)
    # Pair keys a*n + b < n**2 <= 2**62: exact in int64.
    pairs = _unique(a * n + b)
    if parsed.directed:
        arcs = _unique(u * n + v)
        duplicates = u.shape[0] - arcs.shape[0]
        reciprocal = arcs.shape[0] - pairs.shape[0]
        symmetrised = pairs.shape[0] - reciprocal
    else:
        duplicates = u.shape[0] - pairs.shape[0]
        reciprocal = symmetrised = 0

    src = (pairs // max(n, 1)).astype(np.int32)
    dst = (pairs % max(n, 1)).astype(np.int32)
    indptr, indices, _, _ = simple_csr_from_edges(np.int64(n), src, dst, np.int64(src.shape[0]))
    report = ReadReport(
        path=str(path), format=fmt, sha256=sha256, nodes=n, edges=int(pairs.shape[0]),
        isolated=int(np.count_nonzero(np.diff(indptr) == 0)), directed=parsed.directed,
        self_loops=int(loops.sum()), duplicates=int(duplicates), reciprocal=int(reciprocal),
        symmetrised=int(symmetrised), labels=kind, header_skipped=parsed.header_skipped,
        weights_ignored=parsed.weights_ignored)
    return GraphFile(indptr, indices, labels, report)
