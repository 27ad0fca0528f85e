"""``refine`` TOL below what float64 resolves: refused at validation, and the
refinement loop ends by itself when a round no longer narrows a bracket.

The bound is checked against float64 itself (``np.spacing``): a TOL just at
the bound splits the last bracket into distinct couplings, one below it is
refused naming refine, the value and the least TOL allowed.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import FaultyEngine, random_batch

from kcbatch import ConfigError, StudyConfig, pack
from kcbatch.analysis.converge import estimate_kc
from kcbatch.engines import get_engine
from kcbatch.protocol.config import REFINE_MIN_ULPS, min_refine

# More refinement rounds than a float64 bracket can take: each round divides
# the bracket by at least 2 until it is one ulp wide, so 1100 rounds would
# halve any finite width below the smallest subnormal.
MAX_ROUNDS = 1100


def test_refinement_below_float64_resolution_ends():
    """refine=1e-300 on a grid near K = 1: the loop stops once a round leaves
    the bracket as wide as before (a few ulps), with kc_refined inside the
    grid's bracket and the bracket as narrow as float64 allows."""
    graphs, omega, theta0 = random_batch(2, 30, 2, seed=11)
    k = np.linspace(0.0, 8.0, 9)
    batch = pack(graphs, omega, theta0, k, precision="float64")
    engine = FaultyEngine(get_engine("cpu"), exc=lambda: RuntimeError("refinement never ends"),
                          fail_on=lambda call, _b: call > MAX_ROUNDS)
    kw = dict(dt=0.05, t_transient=2.0, t_measure=2.0, sample_every=5)
    res = estimate_kc(engine, batch, k, refine=1e-300, refine_points=2, **kw)
    crossed = np.flatnonzero(res.censored == "none")
    assert crossed.size > 0, res.censored  # a bracket to refine, so the test can fail
    # each round integrates one group per network transient (one here): rounds = calls
    assert 1 <= engine.calls < 200, engine.calls
    for b in crossed:
        i = int(np.flatnonzero(res.r[b] > 0.5)[0])
        assert k[i - 1] <= res.kc_refined[b] <= k[i]
    # the same study refined to a TOL float64 can resolve gives a crossing a few
    # hundred ulps of K=8 at most from the one refined to the limit
    coarse = estimate_kc(get_engine("cpu"), batch, k, refine=1e-12, refine_points=2, **kw)
    spread = np.abs(coarse.kc_refined[crossed] - res.kc_refined[crossed])
    assert np.all(spread <= 1e-12), spread


@pytest.mark.parametrize("k_max", [0.5, 5.0, 20.0])
@pytest.mark.parametrize("points", [1, 8, 1000])
def test_least_refine_splits_the_last_bracket_into_distinct_couplings(k_max, points):
    """At the least TOL allowed, a bracket just wider than TOL at the top of
    the grid splits into ``points`` distinct float64 couplings strictly inside
    it, each part at least REFINE_MIN_ULPS ulps wide; below it, refused."""
    least = min_refine(k_max, points)
    ulp = float(np.spacing(k_max))
    assert least >= (points + 1) * REFINE_MIN_ULPS * ulp
    assert least <= 1.02 * (points + 1) * REFINE_MIN_ULPS * ulp  # not far above either
    hi = k_max
    lo = hi - least
    frac = np.arange(1, points + 1) / (points + 1)
    ks = np.concatenate(([lo], lo + (hi - lo) * frac, [hi]))
    assert np.all(np.diff(ks) >= REFINE_MIN_ULPS * ulp / 2)
    cfg = StudyConfig(runs=2, k_max=k_max, refine=least, refine_points=points)
    assert cfg.refine == least
    below = math.nextafter(least, 0.0)
    with pytest.raises(ConfigError) as err:
        StudyConfig(runs=2, k_max=k_max, refine=below, refine_points=points)
    assert err.value.param == "refine"
    assert f"at least {least!r}" in str(err.value)


@pytest.mark.parametrize("refine", [1e-17, 1e-300, 5e-324])
def test_refine_below_resolution_is_refused(refine):
    with pytest.raises(ConfigError) as err:
        StudyConfig(runs=2, refine=refine)
    msg = str(err.value)
    assert err.value.param == "refine" and repr(refine) in msg
    assert "float64" in msg and f"at least {min_refine(5.0, 8)!r}" in msg
