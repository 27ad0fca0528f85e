"""The study resolved once (kcbatch.run.plan): the config's parts check their
own fields without I/O, the file system and the study's choices are resolved
at the edge, every value is checked once, and the choices are stored as the
plain strings users type. A store written by the release at commit 86e877e
(tests/data/store_86e877e) still resumes and merges."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from helpers import assert_same_records, ok

import kcbatch.protocol.config as config_module
from kcbatch import run_study
from kcbatch.protocol.choices import AUTO, Coupling, Device, GraphModel, KernelStrategy, Sweep
from kcbatch.protocol.config import (
    ConfigError,
    Execution,
    IntegrationSpec,
    Output,
    StudyConfig,
    StudyProtocol,
)
from kcbatch.results.store import STORE_NAME, Store
from kcbatch.run.plan import check_paths, plan_study
from kcbatch.theory.per_run import AT_THRESHOLD_FIELDS

FIXTURE = Path(__file__).parent / "data" / "store_86e877e"
# The study the fixture's shards belong to (shard_a: runs 0-1, shard_b: run 2 of 4).
FIXTURE_STUDY = dict(runs=4, nodes=100, m=3, k_min=0.0, k_max=12.0, k_num=5, dt=0.05,
                     t_transient=0.5, t_measure=0.5, sample_every=2, seed=7, device="cpu")
SMALL = dict(runs=3, nodes=60, k_num=4, t_transient=0.5, t_measure=0.5, sample_every=2,
             seed=3, device="cpu", batch=2)


def test_the_parts_hold_the_fields_and_the_checks():
    cfg = StudyConfig(coupling="raw", device="cpu", batch=4, out="x")
    assert isinstance(cfg.protocol_part, StudyProtocol)
    assert isinstance(cfg.execution, Execution) and isinstance(cfg.output, Output)
    assert cfg.protocol_part.coupling is Coupling.RAW and cfg.coupling is Coupling.RAW
    assert cfg.execution.device is Device.CPU and cfg.output.out == Path("x")
    assert cfg.protocol() == {k: getattr(cfg.protocol_part, k) if k != "graphs" else None
                              for k in config_module.PROTOCOL_FIELDS}
    # each part refuses its own bad values, naming them
    with pytest.raises(ConfigError, match="invalid coupling='dgree'"):
        StudyProtocol(coupling="dgree")
    with pytest.raises(ConfigError, match="invalid device='tpu'"):
        Execution(device="tpu")
    with pytest.raises(ConfigError, match="invalid kernel='shared'"):
        Execution(device="cpu", kernel="shared")
    with pytest.raises(ConfigError, match="invalid out=''"):
        Output(out="")


def test_protocol_construction_does_no_io(tmp_path, monkeypatch):
    missing = tmp_path / "no" / "such" / "graphs"
    below_a_file = tmp_path / "file.txt"
    below_a_file.write_text("x")
    # Neither the file system nor the graph reader is asked while configs are built.
    import kcbatch.networks.io as io
    monkeypatch.setattr(io, "graph_files", lambda *_: pytest.fail("graph files listed"))
    cfg = StudyConfig(graphs=missing, device="cpu")
    assert cfg.runs is None and cfg.graphs == missing
    StudyProtocol(graphs=missing)
    StudyConfig(out=below_a_file / "out")
    monkeypatch.undo()
    # ... and resolving it does, naming the parameter.
    with pytest.raises(ConfigError, match=r"invalid graphs=.*no such"):
        check_paths(cfg)
    with pytest.raises(ConfigError, match=r"invalid out=.*must be a directory"):
        check_paths(StudyConfig(out=below_a_file / "out"))
    with pytest.raises(ConfigError, match="graphs"):
        run_study(cfg)


def test_resolved_checks_only_the_new_values():
    cfg = StudyConfig(dt="auto", **{k: v for k, v in SMALL.items() if k != "seed"})
    assert cfg.dt is AUTO
    with pytest.raises(ConfigError, match="invalid seed=-1"):
        cfg.resolved(seed=-1)
    with pytest.raises(ConfigError, match=r"invalid dt=0.3: RK4 is unstable"):
        cfg.resolved(dt=0.3)
    with pytest.raises(ConfigError, match=r"=0.5: must be an integer multiple of dt=0.15"):
        cfg.resolved(dt=0.15)
    done = cfg.resolved(seed=5, dt=0.05)
    assert (done.seed, done.dt, done.spec.n_transient) == (5, 0.05, 10)
    assert done == cfg.replace(seed=5, dt=0.05)
    assert cfg.seed is None and cfg.dt is AUTO  # the original is unchanged


def test_validation_happens_once(monkeypatch):
    """A study integrates several batches; its schedule is built once and its
    config's parts are checked once (when it is built), not per batch."""
    calls = {"spec": 0, "protocol": 0, "execution": 0}
    from_times = IntegrationSpec.from_times.__func__
    protocol_init = StudyProtocol.__post_init__
    execution_init = Execution.__post_init__

    def count(name, fn):
        def counted(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return counted

    monkeypatch.setattr(IntegrationSpec, "from_times", classmethod(count("spec", from_times)))
    monkeypatch.setattr(StudyProtocol, "__post_init__", count("protocol", protocol_init))
    monkeypatch.setattr(Execution, "__post_init__", count("execution", execution_init))
    cfg = StudyConfig(**{k: v for k, v in SMALL.items() if k != "seed"})
    assert calls == {"spec": 1, "protocol": 1, "execution": 1}
    res = run_study(cfg)  # draws a seed, two batches
    assert len(res.records) == 3 and res.config.seed is not None
    assert calls == {"spec": 1, "protocol": 1, "execution": 1}
    # dt auto: the schedule is built once, when dt is chosen
    calls.update(spec=0, protocol=0, execution=0)
    auto = StudyConfig(**{**SMALL, "dt": "auto"})
    assert calls["spec"] == 0
    res = run_study(auto)
    assert calls == {"spec": 1, "protocol": 1, "execution": 1}
    assert res.config.dt != "auto" and res.config.spec.dt == res.config.dt


def test_plan_holds_resolved_values():
    plan = plan_study(StudyConfig(**{**SMALL, "seed": None}))
    assert isinstance(plan.seed, int) and plan.dt == 0.05
    assert plan.spec is plan.config.spec
    assert plan.precision.name == "float32" and plan.precision.itemsize == 4
    on = plan.on_engine()
    assert on.device is Device.CPU and on.producers == 1 and on.engine is not None


def test_choices_are_plain_strings_in_the_stored_config(tmp_path):
    out = tmp_path / "s"
    cfg = StudyConfig(**{**SMALL, "runs": 1}, coupling="mean-degree", sweep="adiabatic",
                      kernel="global", out=out)
    assert cfg.coupling is Coupling.MEAN_DEGREE and cfg.sweep is Sweep.ADIABATIC
    assert cfg.kernel is KernelStrategy.GLOBAL and cfg.graph is GraphModel.BA
    d = cfg.to_dict()
    for name in ("coupling", "sweep", "kernel", "graph", "omega_dist", "device", "producers"):
        assert type(d[name]) is str, name
    run_study(cfg)
    with Store.open(out / STORE_NAME) as store:
        stored = store.config
    assert stored["coupling"] == "mean-degree" and type(stored["coupling"]) is str
    assert stored["sweep"] == "adiabatic" and stored["kernel"] == "global"
    text = (out / STORE_NAME).read_bytes()
    assert b"Coupling" not in text and b"Sweep." not in text
    # round trip: the stored strings build the same config
    again = StudyConfig.from_mapping(json.loads(json.dumps(stored)))
    assert again == cfg.replace(seed=SMALL["seed"], out=out)
    assert again.coupling is Coupling.MEAN_DEGREE


def test_messages_quote_choices_as_typed():
    with pytest.raises(ConfigError) as ei:
        StudyConfig(graph="er", nodes=4, m=3)
    assert "graph='er'" in str(ei.value) and "GraphModel" not in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        StudyConfig(sweep="adiabatic", t_transient="auto")
    assert str(ei.value).startswith("invalid sweep='adiabatic'")


@pytest.mark.slow  # ~2.5 s: three CLI processes
def test_a_store_of_release_86e877e_resumes_and_merges(tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(FIXTURE, shards)
    reference = run_study(StudyConfig(**FIXTURE_STUDY, batch=2)).records
    old_a = {r.run for r in store_records(shards / "shard_a")}
    old_b = {r.run for r in store_records(shards / "shard_b")}
    # resume one shard to the whole study
    a = shards / "shard_a"
    ok(["run", "--resume", a, "--run-range", "0:4", "--quiet"])
    assert_same_records(store_records(a), _as_stored_by_86e877e(reference, old_a))
    # merge the other (one run of 4) with a fresh shard, then complete it
    merged = tmp_path / "merged"
    ok(["run", *_flags(FIXTURE_STUDY), "--run-range", "3:4", "--out", tmp_path / "fresh"])
    res = ok(["merge", merged, shards / "shard_b", tmp_path / "fresh"])
    assert "2 of 4 runs" in res.output and "missing runs: 0-1" in res.output, res.output
    ok(["run", "--resume", merged, "--quiet"])
    assert_same_records(store_records(merged), _as_stored_by_86e877e(reference, old_b))


def _as_stored_by_86e877e(records, old_runs):
    """``records`` with the fields that release did not store (the theories'
    crossings of the threshold) empty for the runs it wrote."""
    return [dataclasses.replace(r, **dict.fromkeys(AT_THRESHOLD_FIELDS)) if r.run in old_runs
            else r for r in records]


def store_records(out: Path):
    with Store.open(Path(out) / STORE_NAME) as s:
        return s.records()


def _flags(study: dict) -> list[str]:
    return [item for k, v in study.items()
            for item in ("--" + k.replace("_", "-"), str(v))] + ["--quiet"]
