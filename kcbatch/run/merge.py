"""Merging shards (``--run-range``) of one study into one store."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from kcbatch.protocol.config import ConfigError, StudyConfig
from kcbatch.results.store import (
    GRAPH_FILES_META,
    STORE_NAME,
    Store,
    StoreError,
    store_exists,
    study_lock,
)
from kcbatch.version import __version__


def _ranges(runs: Sequence[int]) -> str:
    runs = sorted(runs)
    parts, i = [], 0
    while i < len(runs):
        j = i
        while j + 1 < len(runs) and runs[j + 1] == runs[j] + 1:
            j += 1
        parts.append(str(runs[i]) if i == j else f"{runs[i]}-{runs[j]}")
        i = j + 1
    return ", ".join(parts)


def merge_stores(out_dir: str | Path, shards: Sequence[str | Path]) -> str:
    """Copy every run of ``shards`` into a new store in ``out_dir`` and export it.

    Refuses shards whose protocol (config fields that define the numbers,
    seed included) differs, naming the field. Runs present in several shards
    are taken from the first and reported; runs of the study missing from all
    shards are reported (the merged store can be completed with
    ``kcbatch run --resume OUT_DIR``). Returns a text report.
    """
    from kcbatch.export.report import export_store
    out_dir = Path(out_dir)
    if store_exists(out_dir / STORE_NAME):
        raise StoreError(f"{out_dir / STORE_NAME} already exists; merge into a new directory")
    _refuse_repeats(shards)
    with contextlib.ExitStack() as held:
        # No shard may be resumed (or merged elsewhere into the same place) meanwhile.
        for shard in shards:
            held.enter_context(study_lock(shard))
        stores = []
        for shard in shards:
            stores.append(held.enter_context(Store.open(Path(shard) / STORE_NAME)))
        base = _check_shards(stores, shards)
        for s in stores:  # a damaged shard (a run not of the study, a bad value): refused
            s.check_runs()
        out_dir.mkdir(parents=True, exist_ok=True)
        held.enter_context(study_lock(out_dir))
        config, seen, overlaps = _copy_shards(out_dir, base, stores, shards)
    missing = [r for r in range(config["runs"]) if r not in seen]
    export_store(out_dir)
    lines = [f"merged {len(shards)} shards into {out_dir}: {len(seen)} of {config['runs']} runs"]
    if overlaps:
        lines.append(f"overlapping runs (kept the first shard's): {_ranges(overlaps)}")
    if missing:
        lines.append(f"missing runs: {_ranges(missing)} — complete them with "
                     f"`kcbatch run --resume {out_dir}`")
    return "\n".join(lines)


def _refuse_repeats(shards: Sequence[str | Path]) -> None:
    """ConfigError when two arguments name the same shard (the same path, or
    paths that lead to the same store file)."""
    seen: dict[tuple, str] = {}
    for shard in shards:
        store = Path(shard) / STORE_NAME
        try:
            st = os.stat(store)
            key: tuple = ("inode", st.st_dev, st.st_ino)
        except OSError:  # no store there: Store.open says so
            key = ("path", os.path.realpath(shard))
        if key in seen:
            same = "" if str(seen[key]) == str(shard) else f" (the same store as {seen[key]})"
            raise ConfigError("shards", str(shard),
                              f"is given twice{same}; give each shard once")
        seen[key] = str(shard)


def _check_shards(stores: list[Store], shards: Sequence[str | Path]) -> dict:
    """The first shard's config, after checking every shard computes the same
    numbers (ConfigError naming the shard and the field otherwise)."""
    base = stores[0].config
    for s, path in zip(stores[1:], shards[1:], strict=True):
        try:
            # "out" is where the shard was written, maybe gone by now: not protocol.
            StudyConfig.from_mapping({**s.config, "out": None}).check_compatible(
                base, what=f"shard {shards[0]}")
        except ConfigError as exc:
            raise ConfigError(exc.param, exc.value,
                              f"in shard {path} {exc.allowed}; shards of one study "
                              "must share every protocol field and the seed") from None
    return base


def _copy_shards(out_dir: Path, base: dict, stores: list[Store],
                 shards: Sequence[str | Path]):
    """Create the merged store and copy the shards' runs into it;
    returns (merged config, run -> shard, overlapping runs)."""
    config = dict(base, run_start=0, run_stop=None, out=str(out_dir))
    seen: dict[int, str] = {}
    overlaps: list[int] = []
    with Store.create(out_dir / STORE_NAME, config, stores[0].k_values,
                      __version__) as merged:
        # A --graphs study's file list (shards of one study share it): the merged
        # store's resume must refuse added or changed files as the shards' would.
        listed = stores[0].meta(GRAPH_FILES_META)
        if listed is not None:
            merged.set_meta(GRAPH_FILES_META, listed)
        for s, path in zip(stores, shards, strict=True):
            runs = s.done_runs()
            overlaps += sorted(r for r in runs if r in seen)
            new = [r for r in runs if r not in seen]
            merged.copy_runs_from(s, new)
            for r in new:
                seen[r] = str(path)
    return config, seen, overlaps
