"""The test suite's spine: device parametrisation, engine faults, markers.

* ``device`` -- a test that takes an argument named ``device`` (and does not
  parametrize it itself) runs once per device: ``cpu``, ``gpu-sim``, ``gpu``.
  Unusable devices are skipped with ``why_unavailable``'s reason; the ``gpu``
  cases carry the ``gpu`` marker, so ``pytest -m gpu tests`` (``bench/gpu_check``)
  runs every one of them on a GPU machine; the ``gpu-sim`` cases are ``slow``. For an explicit list (a subset, or
  combined with other ids) use ``helpers.device_params``.
* ``faulty_engines`` -- make ``run_study`` integrate through
  :class:`helpers.FaultyEngine` wrappers (exceptions on chosen calls, callbacks
  after calls); returns the list of wrappers handed out.
* GPU skips -- every test skipped because the GPU is unusable is reported
  (``-ra``, pyproject's addopts) on one line, ``tests/conftest.py: gpu
  unavailable: <reason>`` with their count, not one line per test function.
* markers (``--strict-markers``; registered in pyproject.toml): ``gpu`` (needs a
  working CUDA device), ``slow`` (seconds each, as pyproject.toml lists them:
  excluded from the fast lane ``-m "not slow"``), ``hostile`` (given here to every
  test under ``tests/hostile/``: bad input, damaged files, planted code, signals).

The CLI helpers (``invoke``, ``ok``, ``assert_usage_error``, ``run_kcbatch``, ...)
are plain functions in tests/helpers.py: ``from helpers import ok``.
"""
from __future__ import annotations

import os
import sys

import pytest

# tests/ on sys.path whatever pytest's import mode: helpers.py and reference.py
# are imported by name from the test modules.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from helpers import FaultyEngine, device_params  # noqa: E402


def _parametrizes(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether the test parametrizes ``name`` itself (then it chose its devices)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


_HOSTILE = os.path.join(_HERE, "hostile")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # every test under tests/hostile/ is marked hostile: -m hostile from anywhere
    for item in items:
        if str(item.path).startswith(_HOSTILE + os.sep):
            item.add_marker(pytest.mark.hostile)


@pytest.fixture(scope="session", autouse=True)
def _compiled_generators(request: pytest.FixtureRequest) -> None:
    """The hostile tests assert the exact lines a command prints. A network
    model's first use on a machine adds one of its own, ``compiling the X
    generator (first use, ~N s)`` (kcbatch.run.time_estimate.compile_notice),
    and on a fresh clone tests/hostile/ runs before any other test made a
    network: a session that holds hostile tests compiles the generators
    (numba's on-disk cache) before its first test."""
    if not any(item.get_closest_marker("hostile") for item in request.session.items):
        return
    from kcbatch.inputs.pipeline import make_batch
    from kcbatch.protocol.config import StudyConfig
    from kcbatch.protocol.models import GRAPH_MODELS
    from kcbatch.run.time_estimate import compile_notice

    configs = [StudyConfig(runs=1, nodes=60, m=2, k_num=2, graph=graph, seed=1)
               for graph in GRAPH_MODELS]
    for cfg in configs:
        make_batch([0], cfg)
    # what the commands under test would print first, were it still to come
    assert [compile_notice(cfg) for cfg in configs] == [None] * len(configs)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A hook rather than a parametrized fixture: the device probe (CUDA for gpu)
    # then runs only in sessions that collect a device-parametrized test.
    if "device" in metafunc.fixturenames and not _parametrizes(metafunc, "device"):
        metafunc.parametrize("device", device_params())


_GPU_REASON: list[str | None] = []  # why the GPU is unusable, once asked


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    longrepr = report.longrepr
    if not (report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3):
        return
    if not _GPU_REASON:
        from kcbatch.engines import why_unavailable
        _GPU_REASON.append(why_unavailable("gpu"))
    why = _GPU_REASON[0]
    if why and why in str(longrepr[2]):
        # one folded line for all of them: same path, no line, same reason
        report.longrepr = ("tests/conftest.py", None, f"gpu unavailable: {why}")


@pytest.fixture
def faulty_engines(monkeypatch):
    """``install(**kw) -> list[FaultyEngine]``: from then on (until
    ``monkeypatch.undo()`` or the end of the test) every engine that
    a study's plan (``kcbatch.run.plan``) gets is a real one wrapped in
    ``FaultyEngine(engine, **kw)``; the returned list fills with the wrappers as
    they are made."""
    import kcbatch.run.plan as study

    def install(**kw) -> list[FaultyEngine]:
        made: list[FaultyEngine] = []
        real_get_engine = study.get_engine

        def get_engine(*args, **kwargs):
            made.append(FaultyEngine(real_get_engine(*args, **kwargs), **kw))
            return made[-1]

        monkeypatch.setattr(study, "get_engine", get_engine)
        return made

    return install
