"""What a newcomer meets in the first hour (issue 22): messages that name the
real directory, a seed printed only for a study that passed its checks, an
aborted study called interrupted, no progress bar for a study with nothing to
compute, a warning for runs unconverged at t_max, proper metavars, and a
0-run store reported as such."""
from __future__ import annotations

import re

import pytest
from helpers import invoke, ok

import kcbatch.run.study as study
from kcbatch.analysis.summary import format_partial, partial_info
from kcbatch.protocol.config import StudyConfig
from kcbatch.run.study import run_study

FLAGS = ["--runs", "3", "--nodes", "100", "--k-num", "4", "--t-transient", "1",
         "--t-measure", "1", "--sample-every", "5", "--device", "cpu", "--batch", "1"]


def _abort_after(monkeypatch, batches: int) -> None:
    """compute_records raises KeyboardInterrupt (a second Ctrl-C) after ``batches`` batches."""
    real = study.compute_records
    calls = []

    def fake(*args, **kwargs):
        if len(calls) >= batches:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(study, "compute_records", fake)


def test_an_aborted_study_is_reported_interrupted_with_its_resume_command(tmp_path,
                                                                          monkeypatch):
    out = tmp_path / "s"
    _abort_after(monkeypatch, 1)
    res = invoke(["run", *FLAGS, "--seed", "1", "--quiet", "--out", out])
    assert res.exit_code == 130, res.output
    monkeypatch.undo()
    text = ok(["report", out]).stdout
    (line,) = [ln for ln in text.splitlines() if ln.startswith("PARTIAL STUDY")]
    assert "1 of 3 runs (interrupted)" in line, line
    assert f"`kcbatch run --resume {out}` completes it" in line and "DIR" not in line


def test_a_report_of_a_study_without_runs_does_not_blame_an_older_kcbatch(tmp_path,
                                                                          monkeypatch):
    out = tmp_path / "s"
    _abort_after(monkeypatch, 0)
    assert invoke(["run", *FLAGS, "--seed", "1", "--quiet", "--out", out]).exit_code == 130
    monkeypatch.undo()
    text = ok(["report", out]).stdout
    assert "older kcbatch" not in text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("theory onset")]
    assert line.split(None, 5)[-1].endswith("n/a: no runs"), line


def test_the_partial_phrase_names_the_directory():
    p = partial_info(runs_total=10, run_start=0, run_stop=None, runs_done=4, interrupted=True)
    assert "`kcbatch run --resume /data/kc1` completes it" in format_partial(p, "/data/kc1")
    assert "`kcbatch run --resume DIR`" in format_partial(p)  # the directory unknown


def test_the_seed_is_printed_only_after_the_study_passed_its_checks(tmp_path):
    # dt = 1 is beyond RK4's bound at K = 5: refused on the study's networks,
    # after the seed is drawn; the error is the only line
    res = invoke(["run", *FLAGS, "--dt", "1", "--k-max", "5", "--t-transient", "5",
                  "--t-measure", "5", "--sample-every", "1", "--out", tmp_path / "s"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "dt" in lines[0], lines
    # a study that runs prints its drawn seed
    res = ok(["run", *FLAGS, "--quiet", "--out", tmp_path / "t"])
    assert re.search(r"^seed: \d+ \(drawn; repeat with --seed \d+\)$", res.stderr, re.M)


def test_a_finished_study_resumed_shows_no_progress_bar(tmp_path):
    out = tmp_path / "s"
    ok(["run", *FLAGS, "--seed", "1", "--quiet", "--out", out])
    res = ok(["run", "--resume", out])
    assert "nothing to compute" in res.stdout
    assert "%|" not in res.stderr and "runs [" not in res.stderr, res.stderr


def test_runs_unconverged_at_t_max_are_a_warning():
    # K up to 0.3: no network crosses, so none settles: every run reaches t_max
    cfg = StudyConfig(runs=2, nodes=100, m=3, k_num=4, k_max=0.3, t_transient="auto",
                      t_measure=1.0, sample_every=5, t_max=10.0, seed=2, device="cpu")
    res = run_study(cfg)
    unconverged = sum(1 for r in res.records if r.converged is False)
    assert unconverged == 2
    (w,) = [w for w in res.summary.warnings if "unconverged at t_max" in w]
    assert w.startswith("2 of 2 runs unconverged at t_max=10") and "--t-max" in w
    # a converged protocol whose runs all settled has no such warning
    settled = StudyConfig(runs=2, nodes=100, m=3, k_num=6, k_max=4.0, t_transient="auto",
                          t_measure=1.0, sample_every=5, t_max=40.0, kc_tol=10.0, seed=2,
                          device="cpu")
    res = run_study(settled)
    assert all(r.converged for r in res.records)
    assert not any("unconverged" in w for w in res.summary.warnings)


@pytest.mark.parametrize("flag", ["--batch", "--producers"])
def test_batch_and_producers_show_a_metavar(flag):
    text = ok(["run", "--help"]).stdout
    assert re.search(rf"{flag} N\|auto\s", text), text
    assert f"{flag} TEXT" not in text


class _Outcome:
    def __init__(self, report):
        self.report = report

    def get_result(self):
        return self.report


class _Report:
    def __init__(self, longrepr, skipped=True):
        self.longrepr, self.skipped = longrepr, skipped


def _fold(report, reason, monkeypatch):
    import conftest
    monkeypatch.setattr(conftest, "_GPU_REASON", [reason])
    hook = conftest.pytest_runtest_makereport(None, None)
    next(hook)
    with pytest.raises(StopIteration):
        hook.send(_Outcome(report))
    return report.longrepr


def test_gpu_skips_fold_into_one_summary_line(monkeypatch):
    why = "no NVIDIA driver (libcuda.so.1 missing)"
    # skips of different tests, lines and wordings: one (path, line, reason) key
    a = _fold(_Report(("tests/test_gpu.py", 20, f"{why}")), why, monkeypatch)
    b = _fold(_Report(("tests/test_x.py", 136, f"gpu unavailable: {why}")), why, monkeypatch)
    assert a == b == ("tests/conftest.py", None, f"gpu unavailable: {why}")
    # other skips keep their own lines
    other = ("tests/test_kernels.py", 159, "no C++ compiler")
    assert _fold(_Report(other), why, monkeypatch) == other
    # a usable GPU: nothing folded
    assert _fold(_Report(("tests/test_gpu.py", 20, why)), None, monkeypatch) == \
        ("tests/test_gpu.py", 20, why)


def test_tune_warms_up_before_its_first_row(monkeypatch):
    # an engine whose first three calls are slow (compilation, allocator, thread
    # pool), on a fake clock: every row then times warm calls, so the same batch
    # size gives the same rate in the first row as later
    import types

    import kcbatch.run.tuning as tuning
    from kcbatch.engines import get_engine
    clock = [0.0]
    real = get_engine("cpu")

    class SlowStart:
        calls = 0

        def integrate(self, batch, spec, progress=None):
            SlowStart.calls += 1
            clock[0] += (1.0 if SlowStart.calls <= 3 else 0.01) * batch.n_networks

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(tuning, "get_engine", lambda *a, **k: SlowStart())
    monkeypatch.setattr(tuning, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    cfg = StudyConfig(runs=8, nodes=60, m=2, k_num=3, t_transient=0.5, t_measure=0.5,
                      sample_every=5, seed=1, device="cpu")
    text = tuning.tune(cfg, [1, 1, 2], steps=5)
    rates = [float(m.group(1)) for m in re.finditer(r"^\s+\d+\s+([\d.]+)\s", text, re.M)]
    assert len(rates) == 3
    assert rates[0] == pytest.approx(rates[1], rel=1e-9) == pytest.approx(rates[2], rel=1e-9)


@pytest.mark.parametrize("graph", ["ba", "er", "ws", "powerlaw"])
def test_a_generators_first_use_is_announced(graph, monkeypatch):
    import os

    import kcbatch.run.time_estimate as estimate
    cfg = StudyConfig(runs=2, nodes=100, m=2, graph=graph, k_num=3, t_transient=0.5,
                      t_measure=0.5, sample_every=5, seed=1, device="cpu")
    real_exists = os.path.exists
    # no numba cache index on disk: the generator compiles at its first use
    monkeypatch.setattr(os.path, "exists",
                        lambda p: False if str(p).endswith(".nbi") else real_exists(p))
    seconds = estimate.GENERATOR_COMPILE_SECONDS[graph]
    line = f"compiling the {graph} generator (first use, ~{seconds:.0f} s)"
    assert estimate.compile_notice(cfg) == line
    notices: list[str] = []
    study.run_study(cfg, on_notice=notices.append)
    assert notices and notices[0] == line  # before the networks are made
    # every index on disk: nothing to say
    monkeypatch.setattr(os.path, "exists",
                        lambda p: True if str(p).endswith(".nbi") else real_exists(p))
    assert estimate.compile_notice(cfg) is None


@pytest.mark.parametrize("graph", ["ba", "er", "ws", "powerlaw"])
def test_a_generator_compiled_once_is_not_announced_again(graph, monkeypatch):
    """After a model's first study only the numba functions it uses have a cache
    index; the helpers only other models use have none, and must not make the
    notice come back at every study of this model."""
    import importlib
    import os

    import kcbatch.run.time_estimate as estimate

    def index(obj):
        return getattr(getattr(getattr(obj, "_cache", None), "_cache_file", None),
                       "_index_path", None)

    used = {index(obj) for obj in vars(importlib.import_module(f"kcbatch.networks.{graph}"))
            .values()} - {None}
    others = {index(obj) for name in ("csr", "rng", "ba", "er", "ws", "powerlaw")
              for obj in vars(importlib.import_module(f"kcbatch.networks.{name}")).values()}
    assert used and others - {None} - used  # some helper this model does not use
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists",
                        lambda p: p in used if str(p).endswith(".nbi") else real_exists(p))
    cfg = StudyConfig(runs=2, nodes=100, m=2, graph=graph, seed=1, device="cpu")
    assert estimate.compile_notice(cfg) is None
