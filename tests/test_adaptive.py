"""The adaptive converged protocol (kcbatch/analysis/adaptive.py) against the
exhaustive one and against long fixed transients.

* the retirement rule's hard cases, one by one (slow risers below the bracket,
  columns above it falling back, the first window, censored windows);
* exactness: with nothing retired, every number of the adaptive protocol's
  windows is the exhaustive protocol's bit for bit, and with retiring, every
  column still integrated at a network's final window has the exhaustive r;
* agreement (slow): on BA, ER and power-law networks, degree and raw coupling,
  64 networks each, kc_refined within max(refine TOL, kc_tol) of the
  exhaustive protocol's for at least 99% of them; every disagreement is
  printed;
* accuracy (slow): against fixed transients of T = 400 on BA networks, the
  adaptive kc_refined is as close as the exhaustive one;
* work: what each protocol integrated, counted independently.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import random_batch

import kcbatch
from kcbatch import pack
from kcbatch.analysis import adaptive
from kcbatch.analysis.adaptive import FALL, MARGIN, RISE, retiring
from kcbatch.analysis.converge import estimate_kc
from kcbatch.analysis.windows import Crossing
from kcbatch.engines import get_engine

THR = 0.5


def _cross(i: int, censored: str = "none") -> Crossing:
    return Crossing(1.0, 1.0, 0.01, censored, i)


# ----------------------------------------------------------------- the rule's cases

def _rule(r, r_prev, i, prev_i, first=False, censored="none"):
    r, r_prev = np.asarray(r, float), np.asarray(r_prev, float)
    prev = None if prev_i is None else _cross(prev_i)
    return retiring(_cross(i, censored), prev, r, r_prev, np.ones(r.size, bool), THR, first)


def test_far_columns_retire_and_the_bracket_stays():
    # 10 columns, bracket [5, 6]; the crossing did not move: the bracket and
    # the guard columns next to it stay
    r = [0.01, 0.01, 0.02, 0.02, 0.02, 0.45, 0.55, 0.8, 0.9, 0.95]
    out = _rule(r, r, 6, 6)
    assert out.tolist() == [True, True, True, True, False, False, False, False, True, True]


def test_slow_riser_below_the_bracket_stays():
    r_prev = [0.01, 0.02, 0.02, 0.05, 0.3, 0.45, 0.55, 0.8, 0.9, 0.95]
    r = list(r_prev)
    r[2] = r_prev[2] + RISE + 0.01         # far below, but rising faster than RISE
    r[3] = r_prev[3] + RISE                # rising by RISE exactly: settled
    out = _rule(r, r_prev, 6, 6)
    assert not out[2] and out[3] and out[0]


def test_columns_within_twice_the_crossing_move_stay():
    r = [0.01] * 8 + [0.3, 0.45, 0.55, 0.9]
    # the crossing moved down by 3 columns: the 2 * 3 columns below the bracket stay
    out = _rule(r, r, 10, 13)
    below = np.flatnonzero(out[:9])
    assert below.tolist() == [0, 1, 2]


def test_column_above_falling_back_stays():
    r_prev = [0.01, 0.01, 0.3, 0.45, 0.55, 0.9, 0.9, 0.9, 0.9]
    r = list(r_prev)
    r[7] = 0.9 - FALL - 0.01               # fell by more than FALL
    r[8] = 0.9 - FALL                      # fell by FALL exactly: settled
    out = _rule(r, r_prev, 4, 4)
    assert not out[5] and out[6] and not out[7] and out[8]


def test_columns_near_the_threshold_never_retire():
    r = [0.01, 0.45, 0.55, 0.9, THR + MARGIN - 0.001, THR + MARGIN + 0.01]
    out = _rule(r, r, 2, 2)
    assert not out[3] and not out[4] and out[5]
    r2 = [0.01, 0.01, 0.01, THR - MARGIN + 0.001, 0.02, 0.2, 0.45, 0.55]
    out2 = _rule(r2, r2, 7, 7)
    assert out2[0] and not out2[3] and out2[4]


def test_first_window_retires_only_above():
    r = [0.01, 0.01, 0.01, 0.01, 0.3, 0.45, 0.55, 0.9, 0.9]
    out = _rule(r, [math.nan] * 9, 6, None, first=True)
    assert out.tolist() == [False] * 8 + [True]


@pytest.mark.parametrize("censored", ["right", "failed"])
def test_censored_windows_retire_nothing(censored):
    r = [0.01, 0.01, 0.2, 0.3, 0.4]
    assert not _rule(r, r, -1, 3, censored=censored).any()


# ----------------------------------------------------------------- exactness

KW = dict(dt=0.1, t_transient="auto", t_max=80.0, sample_every=5)
K = np.linspace(0.0, 4.0, 21)


@pytest.fixture(scope="module")
def small_batch():
    graphs, omega, theta0 = random_batch(6, 300, 3, 31)
    return pack(graphs, list(omega), list(theta0), K)


def test_nothing_retired_is_the_exhaustive_protocol_bit_for_bit(small_batch, monkeypatch):
    engine = get_engine("cpu")
    ex = estimate_kc(engine, small_batch, K, converge="exhaustive", **KW)
    monkeypatch.setattr(adaptive, "MARGIN", 1.0)      # |r - 0.5| <= 0.5: none retires
    ad = estimate_kc(engine, small_batch, K, converge="adaptive", **KW)
    for name in ("kc", "kc_interp", "kc_sigma", "t_transient", "converged", "r", "r_std",
                 "kc_windows", "r_first", "r_second", "censored", "kc_chi"):
        a, e = getattr(ad, name), getattr(ex, name)
        assert np.array_equal(a, e, equal_nan=a.dtype.kind == "f"), name
    assert np.array_equal(ad.work, ex.work)


def test_integrated_columns_keep_the_exhaustive_numbers(small_batch):
    engine = get_engine("cpu")
    ex = estimate_kc(engine, small_batch, K, converge="exhaustive", **KW)
    ad = estimate_kc(engine, small_batch, K, converge="adaptive", **KW)
    same = ad.t_transient == ex.t_transient
    assert same.sum() >= 5
    retired, exact = 0, 0
    for b in np.flatnonzero(same):
        final = ad.last_window[b] == ad.last_window[b].max()
        assert np.array_equal(ad.r[b, final], ex.r[b, final])
        assert np.array_equal(ad.r_std[b, final], ex.r_std[b, final])
        retired += int((~final).sum())
        i = int(np.flatnonzero(ad.r[b] > 0.5)[0])
        if final[i] and final[max(i - 1, 0)]:           # the guarantee's condition
            exact += 1
            assert ad.kc_interp[b] == ex.kc_interp[b] and ad.kc[b] == ex.kc[b]
            assert ad.kc_sigma[b] == ex.kc_sigma[b] or np.isnan(ex.kc_sigma[b])
    assert retired > 0 and exact >= 5                 # the test saw both
    assert np.all(ad.work < ex.work)


def test_work_is_what_was_integrated(small_batch):
    engine = get_engine("cpu")
    ad = estimate_kc(engine, small_batch, K, converge="adaptive", refine=0.01, **KW)
    ex = estimate_kc(engine, small_batch, K, converge="exhaustive", refine=0.01, **KW)
    nodes = np.diff(small_batch.node_offset)
    steps = np.round(ex.t_transient / KW["dt"]).astype(np.int64) + 50   # T + t_measure 5
    assert np.array_equal(ex.work, nodes * K.size * steps)
    assert np.array_equal(ad.plain_work, nodes * K.size * (50 + 50))
    assert np.array_equal(ad.plain_work, ex.plain_work)
    # refinement by continuation: rounds of refine_points couplings for two windows
    # (relaxation, then measurement), against rounds of the whole final transient
    rounds = ad.refine_work / (nodes * 8 * 2 * 50)
    assert np.all(rounds == np.round(rounds)) and np.all(rounds[np.isfinite(ad.kc_refined)] >= 1)
    assert ad.refine_work.sum() < ex.refine_work.sum()


def test_refined_kc_lies_in_the_final_bracket(small_batch):
    ad = estimate_kc(get_engine("cpu"), small_batch, K, converge="adaptive", refine=0.01,
                     **KW)
    ok = ad.censored == "none"
    i = np.array([int(np.flatnonzero(r > 0.5)[0]) for r in ad.r[ok]])
    assert np.all(K[i - 1] <= ad.kc_refined[ok]) and np.all(ad.kc_refined[ok] <= K[i])
    assert np.all(np.isnan(ad.kc_refined[~ok]))


def test_find_kc_takes_the_choice_and_refuses_others(small_batch):
    graphs, omega, theta0 = random_batch(1, 100, 3, 5)
    with pytest.raises(kcbatch.ConfigError, match="converge"):
        kcbatch.find_kc(graphs, omega, theta0, K, converge="lazy", device="cpu", **KW)


# ----------------------------------------------------------------- the choice in a study

def test_config_takes_the_choice_and_names_a_bad_one():
    from kcbatch import StudyConfig
    assert StudyConfig().converge == "adaptive"
    assert StudyConfig(t_transient="auto", converge="exhaustive").converge == "exhaustive"
    with pytest.raises(kcbatch.ConfigError, match=r"converge.*'lazy'.*adaptive.*exhaustive"):
        StudyConfig(t_transient="auto", converge="lazy")


def test_stores_compare_the_protocol_they_compute():
    from kcbatch import StudyConfig
    auto = dict(t_transient="auto", refine=0.005)
    adaptive = StudyConfig(**auto)
    exhaustive = StudyConfig(converge="exhaustive", **auto)
    with pytest.raises(kcbatch.ConfigError, match=r"converge.*which has converge='exhaustive'"):
        adaptive.check_compatible(exhaustive.to_dict(), what="the store")
    exhaustive.check_compatible(exhaustive.to_dict(), what="the store")
    # a store from before the choice: its converged studies were exhaustive
    old = {k: v for k, v in exhaustive.to_dict().items() if k != "converge"}
    exhaustive.check_compatible(old, what="the store")
    with pytest.raises(kcbatch.ConfigError, match="converge"):
        adaptive.check_compatible(old, what="the store")
    # a fixed transient is one window refined from theta0 either way
    fixed_a, fixed_e = StudyConfig(refine=0.005), StudyConfig(refine=0.005, converge="exhaustive")
    fixed_a.check_compatible(fixed_e.to_dict(), what="the store")
    fixed_e.check_compatible({k: v for k, v in fixed_a.to_dict().items() if k != "converge"},
                             what="the store")


def test_cli_option(tmp_path):
    from helpers import assert_usage_error, invoke
    assert_usage_error(invoke(["run", "--runs", "1", "--t-transient", "auto", "--converge",
                               "lazy", "--out", tmp_path / "x"]), "converge", "lazy",
                       config_error=False)
