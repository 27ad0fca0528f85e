"""Hostile tests assert the exact lines a command prints. A network model's
first use on a machine adds one of its own, ``compiling the X generator (first
use, ~N s)`` (kcbatch.run.time_estimate.compile_notice), whichever test runs
first: on a fresh clone these tests run before any other made a network. The
generators are compiled (numba's on-disk cache) once, before them."""
from __future__ import annotations

import pytest

from kcbatch.inputs.pipeline import make_batch
from kcbatch.protocol.config import StudyConfig
from kcbatch.protocol.models import GRAPH_MODELS
from kcbatch.run.time_estimate import compile_notice


@pytest.fixture(scope="session", autouse=True)
def compiled_generators() -> None:
    configs = [StudyConfig(runs=1, nodes=60, m=2, k_num=2, graph=graph, seed=1)
               for graph in GRAPH_MODELS]
    for cfg in configs:  # the models share the CSR and random-number helpers
        make_batch([0], cfg)
    # what the commands under test would print first, were it still to come
    assert [compile_notice(cfg) for cfg in configs] == [None] * len(configs)
