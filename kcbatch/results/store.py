"""The results store: one SQLite database per study (``DIR/kcbatch.sqlite``).

It is the single source of truth; ``summary.json``, ``runs.csv`` and the plots
are exports of it. Each finished batch is written in ONE transaction, so a
hard kill loses at most the batch in flight and never leaves a half-written
batch. Reading it needs nothing but SQLite: r curves are JSON arrays of numbers
(``json_each`` reads them), the config is a JSON object in ``meta``.

Schema (version :data:`SCHEMA_VERSION`):
  meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)  -- schema_version, kcbatch_version,
      config (JSON object), k_values (JSON array), run_info (JSON: the last
      session), graph_files (JSON: a --graphs study's files and checksums)
  runs(run INTEGER PRIMARY KEY, ...)  -- one row per finished run: :data:`RUN_COLUMNS`
  batches(id INTEGER PRIMARY KEY, first_run INTEGER, n_runs INTEGER, device TEXT,
          seconds REAL, finished_at TEXT)  -- one row per batch written

Table ``runs`` has one column per field of
:class:`~kcbatch.analysis.records.RunRecord` (those of its parts
``convergence`` and ``sweep`` included, NULL where the record has no such
part) and ``batch_id`` (the row of ``batches`` that wrote it). Each field
declares its SQL type and the schema version that added it; the columns come in
the order of those versions, each version's in the record's order. Arrays
(``r``, ``r_first``, ``r_second``, ``r_std``, ``kc_windows``, ``r_forward``,
``r_backward``) are JSON arrays, NaN and inf as null; ``converged`` is an
INTEGER 0/1; the theory thresholds are REAL with Infinity for a graph without
edges; NULL is None.

A store of an older schema is upgraded in place when opened: the columns later
versions added (NULL for the runs it holds) and its schema_version, in one
transaction. Where it cannot be written (read-only, locked) it is read as it
is, the fields it lacks None. Either way ``kcbatch report``, resume and merge
work on it.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import stat
import threading
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import Field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from kcbatch.analysis.records import RunRecord

STORE_NAME = "kcbatch.sqlite"
# meta key: the files of a --graphs study with their sha256 (JSON), checked on resume.
GRAPH_FILES_META = "graph_files"
# The lock file of a study directory: held (flock) by the process that runs or
# resumes the study there, holding its PID, and removed by it at the end.
LOCK_NAME = "kcbatch.lock"
# SQLite's files beside a database.
_SIDE_FILES = ("-wal", "-shm", "-journal")
# What to do about a store that cannot be read, for every message that says so.
_DAMAGED_FIX = "restore it from a backup, or start a new study in another --out"

# Columns of table runs that no record field holds, by the schema version that added them.
_STORE_COLUMNS = {1: (("batch_id", "INTEGER"),)}


class Column(NamedTuple):
    """One column of table runs: its name and SQL type, the schema version that
    added it, what holds it (``part``: None for the record itself, the name of
    the record's part field, or "store" for the store's own columns, which no
    record holds), and how a value is stored (``kind``)."""
    name: str
    sql: str
    since: int
    part: str | None = None
    kind: str = "value"  # "array" (JSON text), "bool" (INTEGER 0/1) or "value" (as it is)


def run_columns(record_cls: type = RunRecord) -> tuple[Column, ...]:
    """The columns of table runs for records of ``record_cls``: a walk of its
    fields (and its parts' fields) with the store's own columns, in the order of
    the schema versions that added them, each version's in declaration order."""
    walked: list[Column] = []
    hints = typing.get_type_hints(record_cls)
    for f in fields(record_cls):
        part_cls = f.metadata.get("part")
        if part_cls is None:
            walked.append(_column(f, hints[f.name], None))
            continue
        part_hints = typing.get_type_hints(part_cls)
        walked += [_column(g, part_hints[g.name], f.name) for g in fields(part_cls)]
    versions = sorted({c.since for c in walked} | set(_STORE_COLUMNS))
    out: list[Column] = []
    for v in versions:
        out += [c for c in walked if c.since == v]
        out += [Column(name, sql, v, part="store") for name, sql in _STORE_COLUMNS.get(v, ())]
    return tuple(out)


def _column(f: Field, hint: Any, part: str | None) -> Column:
    if "sql" not in f.metadata:
        raise TypeError(f"field {f.name!r} of a stored record has no column: declare it "
                        f"with kcbatch.analysis.records.stored(sql, since)")
    args = (typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType)
            else (hint,))
    kind = "array" if np.ndarray in args else "bool" if bool in args else "value"
    return Column(f.name, f.metadata["sql"], f.metadata["since"], part, kind)


RUN_COLUMNS = run_columns()
SCHEMA_VERSION = max(c.since for c in RUN_COLUMNS)
# Columns of table runs that each schema version after 1 added (appended, in
# this order): what upgrading an older store adds. 2: the theory thresholds;
# 3: the users' graph file and its checksum; 4: r_std and the converged
# protocol's part; 5: the adiabatic sweep's part.
_ADDED_COLUMNS = {v: tuple((c.name, c.sql) for c in RUN_COLUMNS if c.since == v)
                  for v in range(2, SCHEMA_VERSION + 1)}
# The record's parts: field name -> part class.
_PARTS = {f.name: f.metadata["part"] for f in fields(RunRecord) if "part" in f.metadata}


class StoreError(RuntimeError):
    """The store is missing, foreign, damaged, in use, or contradicts the
    requested study (bad input: the CLI exits with status 2)."""


class StoreLocked(StoreError):
    """Another process is running or resuming the study in that directory."""


class StoreIOError(RuntimeError):
    """Opening or writing a store failed at run time (disk full, unwritable,
    I/O error): not bad input. What was committed before is intact; the CLI
    exits with status 1 and prints the command that resumes the study."""


def _dump_array(a: np.ndarray) -> str:
    # repr-exact floats; NaN/inf as null so the text stays valid JSON for SQLite.
    return json.dumps([float(x) if np.isfinite(x) else None for x in np.asarray(a, float)])


def _load_array(s: str) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in json.loads(s)], dtype=np.float64)


def _read(c: Column, v: Any) -> Any:
    """The record's value of column ``c`` stored as ``v`` (NULL: None)."""
    if v is None:
        return None
    if c.kind == "array":
        return _load_array(v)
    if c.kind == "bool":
        return bool(v)
    return v


# The arrays of a run that hold one value per K of the grid (k_values).
_PER_K = ("r", "r_first", "r_second", "r_std", "r_forward", "r_backward")


def _damaged(path: str, what: str) -> StoreError:
    return StoreError(f"{path} is damaged: {what}; {_DAMAGED_FIX}")


def _is_number(x: Any) -> bool:
    """A JSON number (bool is not one, though Python's int holds it)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _study_runs(path: str, config: dict[str, Any]) -> int:
    """The stored config's ``runs``: the study's run indices are 0..runs-1."""
    runs = config.get("runs")
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise _damaged(path, f"its config holds runs={runs!r}, not a number of runs")
    return runs


def _check_run(path: str, run: Any, runs: int) -> int:
    """``run`` (a stored run index), StoreError unless it is one of the study's."""
    if isinstance(run, bool) or not isinstance(run, int) or not 0 <= run < runs:
        raise _damaged(path, f"it holds run {run!r}, but the study's runs are 0 to {runs - 1}")
    return run


def _check_value(path: str, run: int, c: Column, v: Any, n_k: int) -> None:
    """StoreError unless ``v`` is what column ``c`` holds: a JSON array of
    numbers (null for NaN; one per K for the per-K arrays), an integer 0/1 for
    a flag, or a value of the column's SQL type (NULL anywhere: checked by the
    record's own fields)."""
    if v is None:
        return
    if c.kind == "array":
        values: list = []
        try:
            loaded = json.loads(v) if isinstance(v, str) else None
            ok = isinstance(loaded, list) and all(x is None or _is_number(x) for x in loaded)
            if ok and isinstance(loaded, list):
                values = loaded
                np.array([np.nan if x is None else x for x in values], dtype=np.float64)
        except (ValueError, OverflowError, RecursionError):
            ok = False
        if not ok:
            raise _damaged(path, f"run {run}'s {c.name} is {_short(v)}, not a JSON array of "
                                 f"numbers")
        if c.name in _PER_K and len(values) != n_k:
            raise _damaged(path, f"run {run}'s {c.name} holds {len(values)} values, not one "
                                 f"per K ({n_k})")
        return
    sql = c.sql.split()[0]
    kinds: tuple[type, ...] = {"INTEGER": (int,), "REAL": (int, float), "TEXT": (str,)}.get(
        sql, (object,))
    if isinstance(v, bool) or not isinstance(v, kinds) or (c.kind == "bool" and v not in (0, 1)):
        what = "0 or 1" if c.kind == "bool" else {"INTEGER": "an integer", "REAL": "a number",
                                                  "TEXT": "text"}.get(sql, sql)
        raise _damaged(path, f"run {run}'s {c.name} is {_short(v)}, not {what}")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


class Store:
    """A study's SQLite store. Use :meth:`create` or :meth:`open`."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self.conn = conn
        self.path = path
        # The runs columns this store has: all of RUN_COLUMNS, unless an old
        # store could not be upgraded (then the missing ones read as None).
        self._columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config: dict[str, Any], k_values: np.ndarray,
               version: str) -> Store:
        """Create a new store (``":memory:"`` for a throw-away one).

        The store is made whole, in one transaction, in ``PATH.creating`` and
        then moved to ``path``, so a kill or a full disk meanwhile leaves no
        store at ``path`` (at most ``PATH.creating``, which the next creation
        replaces): a rerun starts afresh. An empty leftover at ``path``
        (:func:`store_exists` is False for it) is replaced; any other file
        there is refused."""
        path = str(path)
        if path == ":memory:":
            conn = cls._connect(path)
            _create_schema(conn, config, k_values, version)
            return cls(conn, path)
        target = Path(path)
        leftover = os.path.lexists(target)
        if leftover and store_exists(target):
            raise StoreError(f"store {path} already exists")
        tmp = path + ".creating"
        for name in (tmp, *(tmp + suffix for suffix in _SIDE_FILES)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)  # a killed creation's: its journal would be read as ours
        try:
            conn = sqlite3.connect(tmp, isolation_level="DEFERRED")
            try:
                conn.execute("PRAGMA synchronous=FULL")
                _create_schema(conn, config, k_values, version)
            finally:
                conn.close()
            if leftover:
                # the empty leftover's journals would be read as the new store's
                for suffix in _SIDE_FILES:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path + suffix)
                os.replace(tmp, path)
            else:
                _place(tmp, path)
            _sync_directory(target.parent)
        except BaseException:
            for name in (tmp, *(tmp + suffix for suffix in _SIDE_FILES)):
                with contextlib.suppress(OSError):
                    os.unlink(name)
            raise
        return cls(cls._connect(path), path)

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open an existing store, checked: StoreError (one line naming the file
        and what to do) when it is not a kcbatch store, is damaged, or has a
        schema this version cannot read."""
        path = str(path)
        if not Path(path).is_file():
            raise StoreError(f"no kcbatch store at {path}")
        conn = None
        try:
            conn = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
            version = _check_store(conn, path)
            _use_wal(conn)
            _upgrade(conn, version)
        except sqlite3.OperationalError as exc:
            if conn is not None:
                conn.close()
            raise StoreIOError(f"cannot open the store {path} ({exc})") from None
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"{path} is not a readable kcbatch store (SQLite: {exc}); "
                             f"{_DAMAGED_FIX}") from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return cls(conn, path)

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
        if path != ":memory:":
            _use_wal(conn)
        return conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- meta --------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._writing(f"meta {key!r}"):
            with self.conn:
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn SQLite's run-time write failures into StoreIOError naming the
        file; the transaction has been rolled back by then."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StoreIOError(f"writing {what} to {self.path} failed ({exc})") from exc
        except OSError as exc:
            raise StoreIOError(f"writing {what} to {self.path} failed "
                                  f"({exc.strerror or exc})") from exc

    def _required_meta(self, key: str) -> str:
        """The meta value ``key`` that every store holds (:meth:`create` writes
        it, :meth:`open` checks it); StoreError should it be gone since."""
        value = self.meta(key)
        if value is None:
            raise _damaged(self.path, f"its {key} is missing")
        return value

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self._required_meta("config"))

    @property
    def k_values(self) -> np.ndarray:
        return _load_array(self._required_meta("k_values"))

    # -- runs --------------------------------------------------------------
    def write_batch(self, records: Sequence[RunRecord], *, device: str, seconds: float) -> None:
        """Insert one finished batch atomically (all its runs or none)."""
        if not records:
            return
        names = [c.name for c in RUN_COLUMNS]
        placeholders = ", ".join("?" for _ in names)
        first, last = records[0].run, records[-1].run
        what = f"run {first}" if first == last else f"runs {first}-{last}"
        with self._writing(what), self.conn:
            cur = self.conn.execute(
                "INSERT INTO batches (first_run, n_runs, device, seconds, finished_at) "
                "VALUES (?, ?, ?, ?, datetime('now'))",
                (records[0].run, len(records), device, seconds))
            batch_id = cur.lastrowid
            if batch_id is None:  # sqlite3 sets it after every INSERT into a rowid table
                raise RuntimeError(f"SQLite gave no row id for the batch of {what}")
            self.conn.executemany(
                f"INSERT INTO runs ({', '.join(names)}) VALUES ({placeholders})",
                [self._row(r, batch_id) for r in records])

    @staticmethod
    def _row(rec: RunRecord, batch_id: int) -> tuple:
        out: list[Any] = []
        for c in RUN_COLUMNS:
            if c.part == "store":
                out.append(batch_id)  # batch_id, the one column of the store's own
                continue
            holder = rec if c.part is None else getattr(rec, c.part)
            v = None if holder is None else getattr(holder, c.name)
            if v is None:
                out.append(None)
            elif c.kind == "array":
                out.append(_dump_array(v))
            elif c.kind == "bool":
                out.append(int(bool(v)))
            else:
                out.append(v.item() if isinstance(v, np.generic) else v)
        return tuple(out)

    def graph_files(self) -> set[tuple[str, str]]:
        """The (graph_file, graph_sha256) pairs the stored runs used (users' own
        networks); empty for a model's study or a store older than schema 3."""
        if "graph_file" not in self._columns:
            return set()
        return set(self.conn.execute("SELECT DISTINCT graph_file, graph_sha256 FROM runs "
                                     "WHERE graph_file IS NOT NULL"))

    def done_runs(self) -> set[int]:
        """The stored runs' indices; StoreError for one outside the study's runs."""
        runs = _study_runs(self.path, self.config)
        return {_check_run(self.path, r, runs)
                for (r,) in self.conn.execute("SELECT run FROM runs")}

    def check_runs(self) -> None:
        """StoreError (naming the run and the column) unless every stored run is
        one of the study's and every value is of its column's kind, as
        :meth:`records` reads them."""
        self._checked_rows([c.name for c in RUN_COLUMNS if c.part != "store"], keep=False)

    def _checked_rows(self, names: Sequence[str], runs: Iterable[int] | None = None, *,
                      keep: bool = True) -> list[tuple]:
        """The rows of table runs (columns ``names``, by run), each checked
        (StoreError naming the run and the column otherwise): its run one of the
        study's, every value of its column's kind (:func:`_check_value`)."""
        columns = {c.name: c for c in RUN_COLUMNS}
        n_runs = _study_runs(self.path, self.config)
        n_k = len(self.k_values)
        wanted = None if runs is None else set(runs)
        at_run = list(names).index("run")
        rows = []
        for row in self.conn.execute(f"SELECT {self._select(names)} FROM runs ORDER BY run"):
            run = _check_run(self.path, row[at_run], n_runs)
            if wanted is not None and run not in wanted:
                continue
            for name, v in zip(names, row, strict=True):
                _check_value(self.path, run, columns[name], v, n_k)
            if keep:
                rows.append(row)
        return rows

    def _select(self, names: Sequence[str]) -> str:
        """The SELECT list of ``names``; columns this store lacks read as NULL."""
        return ", ".join(n if n in self._columns else f"NULL AS {n}" for n in names)

    def records(self, runs: Iterable[int] | None = None) -> list[RunRecord]:
        columns = [c for c in RUN_COLUMNS if c.part != "store"]
        names = [c.name for c in columns]
        out = []
        for row in self._checked_rows(names, runs):
            common: dict[str, Any] = {}
            parts: dict[str, dict[str, Any]] = {name: {} for name in _PARTS}
            for c, v in zip(columns, row, strict=True):
                (common if c.part is None else parts[c.part])[c.name] = _read(c, v)
            # a part is there when any of its columns is: the writer sets each
            # part's first columns whenever it sets the part
            for name, values in parts.items():
                present = any(v is not None for v in values.values())
                common[name] = _PARTS[name](**values) if present else None
            out.append(RunRecord(**common))
        return out

    def copy_runs_from(self, other: Store, runs: Iterable[int]) -> int:
        """Copy finished runs (rows as stored) from another store; returns the count."""
        names = [c.name for c in RUN_COLUMNS if c.part != "store"]
        # checked as records() checks them: a damaged shard is refused, not copied
        rows = other._checked_rows(names, runs)
        with self._writing(f"{len(rows)} runs"), self.conn:
            self.conn.executemany(
                f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                rows)
        return len(rows)


def _create_schema(conn: sqlite3.Connection, config: dict[str, Any], k_values: np.ndarray,
                   version: str) -> None:
    """The tables and meta of a new store, in one transaction."""
    with conn:
        # Explicit: Python's sqlite3 would run each CREATE TABLE in autocommit.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        cols = ", ".join(f"{c.name} {c.sql}" for c in RUN_COLUMNS)
        conn.execute(f"CREATE TABLE runs ({cols})")
        conn.execute("CREATE TABLE batches (id INTEGER PRIMARY KEY, first_run INTEGER, "
                     "n_runs INTEGER, device TEXT, seconds REAL, finished_at TEXT)")
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("schema_version", str(SCHEMA_VERSION)),
            ("config", json.dumps(config, sort_keys=True)),
            ("k_values", _dump_array(k_values)),
            ("kcbatch_version", version),
        ])


def _place(tmp: str, path: str) -> None:
    """Move the finished store ``tmp`` to ``path``, never over a file that
    appeared there meanwhile (StoreError); where the filesystem has no hard
    links, by rename."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise StoreError(f"store {path} already exists") from None
    except OSError:
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable, where the platform allows."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def store_exists(path: str | Path) -> bool:
    """Whether ``path`` holds a store, or any file other than an empty leftover.

    An empty leftover is an SQLite file that holds no row: none of its tables is
    other than meta, runs and batches, and those are empty (a zero-length file
    too). An older kcbatch killed while creating a store left such files; they
    hold nothing to resume, so a new study may replace them. A file SQLite
    cannot read counts as a store (``Store.open`` says what is wrong with it)."""
    path = Path(path)
    if not os.path.lexists(path):
        return False
    if path.is_symlink() or not path.is_file():
        return True
    try:
        conn = sqlite3.connect(path)
    except sqlite3.Error:
        return True
    try:
        tables = {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables <= {"meta", "runs", "batches"}:
            return True
        return any(conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is not None
                   for t in sorted(tables))
    except sqlite3.Error:
        return True
    finally:
        conn.close()


def _use_wal(conn: sqlite3.Connection) -> None:
    # WAL: a killed writer leaves the last committed batch intact and readable.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")


def _check_store(conn: sqlite3.Connection, path: str) -> int:
    """The schema version of the kcbatch store ``conn`` holds; StoreError unless it
    is readable and of this schema or an older one (:func:`_upgrade` upgrades it)."""
    tables = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"meta", "runs", "batches"} <= tables:
        absent = ", ".join(sorted({"meta", "runs", "batches"} - tables))
        raise StoreError(f"{path} is not a kcbatch store (no {absent} table): it is "
                         f"damaged or another database; {_DAMAGED_FIX}")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    version = meta.get("schema_version")
    number: int | None = None
    with contextlib.suppress(TypeError, ValueError):
        number = None if version is None else int(version)
    if number is None:
        raise _damaged(path, f"its schema_version is {version!r}, not a number")
    if number > SCHEMA_VERSION:
        raise StoreError(f"{path} has store schema {number}, newer than this kcbatch "
                         f"reads ({SCHEMA_VERSION}): upgrade kcbatch to read it")
    if number < 1:
        raise StoreError(f"{path} has an unknown store schema {number} (this kcbatch "
                         f"reads 1 to {SCHEMA_VERSION}); {_DAMAGED_FIX}")
    for key, kind in (("config", dict), ("k_values", list)):
        try:
            value = json.loads(meta[key])
        except (KeyError, TypeError, ValueError):
            value = None
        if key == "k_values" and isinstance(value, list) and not all(
                x is None or _is_number(x) for x in value):
            value = None
        if not isinstance(value, kind):
            raise _damaged(path, f"its {key} is missing or unreadable")
    if "run_info" in meta:
        _check_run_info(path, meta["run_info"])
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    later = {n for v, added in _ADDED_COLUMNS.items() if v > number for n, _ in added}
    missing = [c.name for c in RUN_COLUMNS if c.name not in columns and c.name not in later]
    if missing:
        raise _damaged(path, f"table runs lacks column(s) {', '.join(missing)}")
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(1)")]
    if problems != ["ok"]:
        raise StoreError(f"{path} is damaged (SQLite: {problems[0]}); {_DAMAGED_FIX}")
    return number


def _check_run_info(path: str, text: Any) -> None:
    """StoreError unless the meta value run_info (the last session's record,
    kcbatch.export.report.session_info) is a JSON object whose ``interrupted``
    is true, false or null and whose seconds are numbers."""
    try:
        info = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        info = None
    ok = isinstance(info, dict) and info.get("interrupted") in (None, True, False) and all(
        _is_number(v) for k, v in info.items()
        if k.endswith("seconds") or k.endswith("seconds_total"))
    if not ok:
        raise _damaged(path, f"its run_info is {_short(text)}, not the JSON object of a "
                             f"session")


def _upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Bring a store of schema ``version`` to SCHEMA_VERSION in one transaction:
    the columns later versions added (NULL for the stored runs), then the version.
    A store that cannot be written now (read-only file or directory, another
    process writing) is left as it is, to be read with those fields None."""
    if version >= SCHEMA_VERSION:
        return
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    try:
        with conn:
            # Explicit: Python's sqlite3 would run each ALTER TABLE in autocommit.
            conn.execute("BEGIN IMMEDIATE")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for name, kind in _ADDED_COLUMNS.get(v, ()):
                    if name not in columns:
                        conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            conn.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                         (str(SCHEMA_VERSION),))
    except sqlite3.OperationalError:
        pass


# -- the study directory's lock --------------------------------------------

_held_locks: dict[str, list] = {}  # realpath -> [(descriptor, path) or None, depth]
_held_guard = threading.Lock()


@contextlib.contextmanager
def study_lock(directory: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of the study directory ``directory`` (an existing
    directory): StoreLocked, naming the holder's PID, if another process holds
    it; StoreError if its lock file is a symbolic link or not a regular file.
    Re-entrant within a process. The lock file is removed when the outermost
    hold ends (a killed holder's file, unlocked, is taken over by the next
    run). Where locks cannot be taken (no fcntl, a read-only directory, a
    filesystem without flock) it locks nothing."""
    key = os.path.realpath(directory)
    with _held_guard:
        held = _held_locks.get(key)
        if held is not None:
            held[1] += 1
    if held is None:
        fh = _acquire(Path(directory))
        with _held_guard:
            _held_locks[key] = [fh, 1]
    try:
        yield
    finally:
        with _held_guard:
            entry = _held_locks[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held_locks[key]
                if entry[0] is not None:
                    _release(*entry[0])


# Attempts at taking a lock file that its holder removes meanwhile.
_LOCK_TRIES = 20


def _acquire(directory: Path) -> tuple[int, Path] | None:
    """The open lock file of ``directory`` (descriptor, path), flocked; None where
    locking is impossible. The file is opened without following a symbolic
    link, and is taken only if it is still the file at its path once locked
    (a holder removes it on release, so a descriptor opened before that would
    lock a file nobody else sees)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    path = directory / LOCK_NAME
    flags = os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_LOCK_TRIES):
        try:
            try:
                fd = os.open(path, os.O_RDWR | flags, 0o644)
            except PermissionError:  # another user's lock file: flock needs no write access
                fd = os.open(path, os.O_RDONLY | flags, 0o644)
        except OSError as exc:
            if os.path.islink(path):
                raise StoreError(f"{path} is a symbolic link, not kcbatch's lock file; "
                                 f"remove it (kcbatch does not follow it)") from None
            if exc.errno in (errno.ENOENT, errno.ESTALE):
                continue  # removed by its holder between the calls
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(f"{path} is not a regular file, not kcbatch's lock file; "
                                 f"remove it")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreLocked(
                    f"{directory} is in use by another kcbatch process{_holder(fd)} running "
                    f"or resuming the study there; wait for it to finish, or stop it and "
                    f"resume with `kcbatch run --resume {directory}`") from None
            except OSError:
                os.close(fd)
                return None
            try:
                now = os.stat(path, follow_symlinks=False)
            except OSError:
                now = None
            if now is None or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                os.close(fd)  # removed or replaced by its last holder: take the new one
                continue
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the lock holds without the PID
        return fd, path
    return None


def _holder(fd: int) -> str:
    """`` (pid N)`` from the lock file open as ``fd``, or "" if it holds no PID."""
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _release(fd: int, path: Path) -> None:
    """Remove the lock file while still holding it, then unlock (close)."""
    try:
        now = os.stat(path, follow_symlinks=False)
        if (now.st_dev, now.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
            os.unlink(path)
    except OSError:
        pass  # gone already, or a read-only directory: the next run takes it over
    finally:
        os.close(fd)
