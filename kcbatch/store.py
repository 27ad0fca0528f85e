"""The results store: one SQLite database per study (``DIR/kcbatch.sqlite``).

It is the single source of truth; ``summary.json``, ``runs.csv`` and the plots
are exports of it. Each finished batch is written in ONE transaction, so a
hard kill loses at most the batch in flight and never leaves a half-written
batch. Reading it needs nothing but SQLite: r curves are JSON arrays of numbers
(``json_each`` reads them), the config is a JSON object in ``meta``.

Schema:
  meta(key TEXT PRIMARY KEY, value TEXT)      -- config (JSON), seed, version, k_values
  runs(run INTEGER PRIMARY KEY, ...)           -- one row per finished run
  batches(id INTEGER PRIMARY KEY, ...)         -- device, size, timings per batch
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .records import RunRecord

STORE_NAME = "kcbatch.sqlite"
SCHEMA_VERSION = 1

_RUN_COLUMNS = (
    ("run", "INTEGER PRIMARY KEY"), ("status", "TEXT NOT NULL"), ("fail_reason", "TEXT"),
    ("seed_material", "TEXT NOT NULL"), ("nodes", "INTEGER"), ("edges", "INTEGER"),
    ("mean_k", "REAL"), ("mean_k2", "REAL"), ("k_max", "INTEGER"), ("kc", "REAL"),
    ("kc_interp", "REAL"), ("censored", "TEXT"), ("bracket_lo", "REAL"), ("bracket_hi", "REAL"),
    ("stationarity", "REAL"), ("seconds", "REAL"), ("r", "TEXT NOT NULL"),
    ("r_first", "TEXT NOT NULL"), ("r_second", "TEXT NOT NULL"), ("batch_id", "INTEGER"),
)
_ARRAYS = ("r", "r_first", "r_second")


class StoreError(RuntimeError):
    """The store is missing, foreign, or contradicts the requested study."""


def _dump_array(a: np.ndarray) -> str:
    # repr-exact floats; NaN/inf as null so the text stays valid JSON for SQLite.
    return json.dumps([float(x) if np.isfinite(x) else None for x in np.asarray(a, float)])


def _load_array(s: str) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in json.loads(s)], dtype=np.float64)


class Store:
    """A study's SQLite store. Use :meth:`create` or :meth:`open`."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self.conn = conn
        self.path = path

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config: dict[str, Any], k_values: np.ndarray,
               version: str) -> "Store":
        """Create a new store (``":memory:"`` for a throw-away one)."""
        path = str(path)
        if path != ":memory:" and Path(path).exists():
            raise StoreError(f"store {path} already exists")
        conn = cls._connect(path)
        with conn:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            cols = ", ".join(f"{n} {t}" for n, t in _RUN_COLUMNS)
            conn.execute(f"CREATE TABLE runs ({cols})")
            conn.execute("CREATE TABLE batches (id INTEGER PRIMARY KEY, first_run INTEGER, "
                         "n_runs INTEGER, device TEXT, seconds REAL, finished_at TEXT)")
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("schema_version", str(SCHEMA_VERSION)),
                ("config", json.dumps(config, sort_keys=True)),
                ("k_values", _dump_array(k_values)),
                ("kcbatch_version", version),
            ])
        return cls(conn, path)

    @classmethod
    def open(cls, path: str | Path) -> "Store":
        path = str(path)
        if not Path(path).is_file():
            raise StoreError(f"no kcbatch store at {path}")
        conn = cls._connect(path)
        try:
            version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a kcbatch store ({exc})") from None
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise StoreError(f"{path}: unsupported store schema {version}")
        return cls(conn, path)

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
        if path != ":memory:":
            # WAL: a killed writer leaves the last committed batch intact and readable.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
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
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.meta("config"))

    @property
    def k_values(self) -> np.ndarray:
        return _load_array(self.meta("k_values"))

    # -- runs --------------------------------------------------------------
    def write_batch(self, records: Sequence[RunRecord], *, device: str, seconds: float) -> None:
        """Insert one finished batch atomically (all its runs or none)."""
        if not records:
            return
        names = [n for n, _ in _RUN_COLUMNS]
        placeholders = ", ".join("?" for _ in names)
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO batches (first_run, n_runs, device, seconds, finished_at) "
                "VALUES (?, ?, ?, ?, datetime('now'))",
                (records[0].run, len(records), device, seconds))
            batch_id = cur.lastrowid
            self.conn.executemany(
                f"INSERT INTO runs ({', '.join(names)}) VALUES ({placeholders})",
                [self._row(r, batch_id) for r in records])

    @staticmethod
    def _row(rec: RunRecord, batch_id: int) -> tuple:
        out = []
        for name, _ in _RUN_COLUMNS:
            if name == "batch_id":
                out.append(batch_id)
            elif name in _ARRAYS:
                out.append(_dump_array(getattr(rec, name)))
            else:
                v = getattr(rec, name)
                out.append(v.item() if isinstance(v, np.generic) else v)
        return tuple(out)

    def done_runs(self) -> set[int]:
        return {r for (r,) in self.conn.execute("SELECT run FROM runs")}

    def records(self, runs: Iterable[int] | None = None) -> list[RunRecord]:
        names = [n for n, _ in _RUN_COLUMNS]
        rows = self.conn.execute(f"SELECT {', '.join(names)} FROM runs ORDER BY run").fetchall()
        wanted = None if runs is None else set(runs)
        out = []
        for row in rows:
            d = dict(zip(names, row, strict=True))
            if wanted is not None and d["run"] not in wanted:
                continue
            d.pop("batch_id")
            for a in _ARRAYS:
                d[a] = _load_array(d[a])
            out.append(RunRecord(**d))
        return out

    def copy_runs_from(self, other: "Store", runs: Iterable[int]) -> int:
        """Copy finished runs (rows as stored) from another store; returns the count."""
        names = [n for n, _ in _RUN_COLUMNS if n != "batch_id"]
        wanted = sorted(set(runs))
        rows = []
        for run in wanted:
            row = other.conn.execute(f"SELECT {', '.join(names)} FROM runs WHERE run=?",
                                     (run,)).fetchone()
            if row is not None:
                rows.append(row)
        with self.conn:
            self.conn.executemany(
                f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                rows)
        return len(rows)
