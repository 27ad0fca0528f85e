"""The typed results: the summary's dataclasses against summary.json and
docs/outputs.md, and the store's columns as a walk of the run record's fields."""
from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from pathlib import Path

import numpy as np
import pytest

from kcbatch.analysis.crossing import make_record
from kcbatch.analysis.records import ConvergedPart, RunRecord, SweepPart, stored
from kcbatch.analysis.summary import JsonBlock, Summary, format_summary, partial_info, summarize
from kcbatch.export.study_outputs import write_summary_json
from kcbatch.results import store as store_module
from kcbatch.results.store import RUN_COLUMNS, SCHEMA_VERSION, Store, run_columns

ROOT = Path(__file__).resolve().parent.parent
K = np.linspace(0.0, 2.0, 5)
STATS = dict(nodes=10, edges=20, mean_k=4.0, mean_k2=18.0, k_max=6, kc_mf=0.5, kc_hmf=0.4,
             kc_qmf=0.3)


def _block_type(hint):
    """The JsonBlock class of a field's type hint (``X | None`` too), else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _block_type(inner[0]) if len(inner) == 1 else None
    return hint if isinstance(hint, type) and issubclass(hint, JsonBlock) else None


def _typed_paths(cls, prefix: str) -> set[str]:
    """Every dotted path of a block's JSON view, from its dataclass fields."""
    out = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}.{f.name}"
        out.add(path)
        inner = _block_type(hints[f.name])
        if inner is not None:
            out |= _typed_paths(inner, path)
    return out


def _records() -> list[RunRecord]:
    """Six ok runs crossing at different K, one right-censored, one failed."""
    out = []
    for run in range(8):
        onset = 1 + run % 4 if run < 6 else K.size
        samples = np.repeat(np.where(np.arange(K.size) >= onset, 0.9, 0.1)[:, None], 4, axis=1)
        if run == 7:
            samples = samples.copy()
            samples[2, 1] = np.nan
        out.append(make_record(run=run, seed_material=f"m{run}", stats=STATS, samples=samples,
                               n_first_half=2, k_values=K, threshold=0.5))
    return out


def test_the_summary_types_are_the_fields_docs_outputs_md_documents():
    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    section = next(p for p in re.split(r"^## ", text, flags=re.M)[1:]
                   if p.splitlines()[0].strip() == "summary.json")
    documented = {d for d in re.findall(r"`([^`]+)`", section)
                  if re.fullmatch(r"summary\.[\w.]+", d)}
    assert _typed_paths(Summary, "summary") == documented


def test_to_dict_is_the_json_view_in_field_order_and_round_trips(tmp_path):
    partial = partial_info(runs_total=10, run_start=0, run_stop=None, runs_done=8,
                           interrupted=True)
    s = summarize(_records(), K, 0.5, partial=partial, omega_sigma=0.5)
    d = s.to_dict()
    assert list(d) == [f.name for f in dataclasses.fields(Summary)]
    assert list(d["theory"]) == [f.name for f in dataclasses.fields(type(s.theory))]
    assert d["partial"]["run_range"] == [0, 10] and isinstance(d["failed_runs"], list)
    # summary.json holds exactly the JSON view, and reads back to an equal summary
    write_summary_json(tmp_path / "summary.json", s, {}, {})
    written = (tmp_path / "summary.json").read_text(encoding="utf-8")
    assert written == json.dumps({"summary": d, "config": {}}, indent=2, allow_nan=False,
                                 ensure_ascii=False) + "\n"
    back = Summary.from_dict(json.loads(written)["summary"])
    assert back == s and back.to_dict() == d
    assert format_summary(back) == format_summary(s) == format_summary(d)
    # the dict-style reads of code written against the dict
    assert s["kc"]["n"] == s.kc.n == 6 and s["failed_runs"] == [7] and s == d
    assert "theory" in s and s.get("partial") == {"runs_done": 8, "runs_total": 10,
                                                  "run_range": [0, 10], "reason": "interrupted"}


def test_the_store_columns_are_the_record_fields_walked():
    record_fields = []
    for f in dataclasses.fields(RunRecord):
        part = f.metadata.get("part")
        record_fields += [g.name for g in dataclasses.fields(part)] if part else [f.name]
    assert ({c.name for c in RUN_COLUMNS if c.part != "store"} == set(record_fields)
            and len(record_fields) == len(RUN_COLUMNS) - 1)
    assert [c.name for c in RUN_COLUMNS if c.part == "store"] == ["batch_id"]
    assert {c.part for c in RUN_COLUMNS} == {None, "convergence", "sweep", "store"}
    assert SCHEMA_VERSION == max(c.since for c in RUN_COLUMNS) == 7
    # the columns each version added are appended in version order
    assert [c.since for c in RUN_COLUMNS] == sorted(c.since for c in RUN_COLUMNS)


def test_a_field_added_to_the_record_adds_a_column():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Extended(RunRecord):
        kc_new: float | None = stored("REAL", since=7, default=None)
        r_new: np.ndarray | None = stored("TEXT", since=7, default=None)

    cols = run_columns(Extended)
    assert cols[:len(RUN_COLUMNS)] == RUN_COLUMNS
    assert [(c.name, c.sql, c.since, c.kind) for c in cols[len(RUN_COLUMNS):]] == [
        ("kc_new", "REAL", 7, "value"), ("r_new", "TEXT", 7, "array")]

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Undeclared(RunRecord):
        extra: int = 0

    with pytest.raises(TypeError, match="extra"):
        run_columns(Undeclared)


def test_a_fixed_protocol_record_has_no_parts_and_each_part_round_trips():
    fixed, *_ = _records()
    assert fixed.convergence is None and fixed.sweep is None
    assert fixed.kc_refined is None and fixed.loop_area is None and fixed.converged is None
    conv = dataclasses.replace(fixed, run=1, convergence=ConvergedPart(
        t_transient_used=5.0, converged=False, kc_refined=1.25,
        kc_windows=np.array([np.nan, 1.0])))
    swept = dataclasses.replace(fixed, run=2, sweep=SweepPart(
        r_forward=fixed.r.copy(), r_backward=fixed.r[::-1].copy(), kc_backward=0.5))
    with Store.create(":memory:", {"runs": 3}, K, "test") as st:
        st.write_batch([fixed, conv, swept], device="cpu", seconds=0.0)
        back = st.records()
        raw = dict(st.conn.execute("SELECT run, converged FROM runs"))
    assert raw == {0: None, 1: 0, 2: None}
    assert back[0].convergence is None and back[0].sweep is None
    assert back[1].sweep is None and back[1].convergence.converged is False
    assert back[1].kc_refined == 1.25 and back[1].kc_protocol is None
    assert np.array_equal(back[1].kc_windows, [np.nan, 1.0], equal_nan=True)
    assert back[2].convergence is None and back[2].kc_backward == 0.5
    assert np.array_equal(back[2].r_backward, fixed.r[::-1])
    assert store_module._ADDED_COLUMNS[5] == tuple(
        (c.name, c.sql) for c in RUN_COLUMNS if c.part == "sweep")
