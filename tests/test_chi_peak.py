"""The chi peak's fit (kcbatch.analysis.converge.chi_peak) on synthetic chi
curves with a known peak: the fitted peak lies within its stated error at
the stated rate over many seeds, and a peak at the grid's edge is NaN with
its side."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kcbatch.analysis.converge import chi_peak

K = np.linspace(0.0, 5.0, 50)  # the default grid


def gaussian(k0: float, width: float, sigma: float, rng: np.random.Generator,
             k: np.ndarray = K) -> np.ndarray:
    """chi(K) = 100 exp(-(K-k0)^2/(2 width^2)) times log-normal noise of sigma."""
    return 100.0 * np.exp(-(k - k0) ** 2 / (2 * width ** 2)
                          + sigma * rng.standard_normal(k.size))


def coverage(width: float, sigma: float, n_samples: int, seeds: int = 1000):
    """(estimates, fraction within 1 err, within 2 err) over ``seeds`` curves."""
    rng = np.random.default_rng(20)
    z, n = [], 0
    for _ in range(seeds):
        k0 = rng.uniform(1.5, 3.5)
        p = chi_peak(K, gaussian(k0, width, sigma, rng), n_samples)
        if p.censored != "none":
            continue
        assert math.isfinite(p.kc) and p.err > 0
        n += 1
        z.append(abs(p.kc - k0) / p.err)
    z_arr = np.array(z)
    return n, float(np.mean(z_arr <= 1)), float(np.mean(z_arr <= 2))


@pytest.mark.parametrize("width, sigma", [(0.4, 0.2), (0.25, 0.3), (0.8, 0.3), (0.4, 0.47)])
def test_peak_within_its_error_at_the_stated_rate(width, sigma):
    # noise as stated by n_samples (var log chi = 2/(n-1)): 68% / 95% nominal;
    # the error is never below the a-priori one, so coverage is at least that
    n_samples = round(2 / sigma ** 2 + 1)
    n, one, two = coverage(width, sigma, n_samples)
    assert n >= 990
    assert 0.66 <= one <= 0.85, one
    assert 0.94 <= two <= 0.995, two


@pytest.mark.parametrize("width, sigma", [(0.4, 0.4), (0.8, 0.6)])
def test_scatter_takes_over_from_an_understated_noise(width, sigma):
    # n_samples states half the real noise: the residual scatter scales the
    # error up, so the fitted peak still lies within 2 err about 9 times in 10
    n_samples = round(2 / (sigma / 2) ** 2 + 1)
    n, _, two = coverage(width, sigma, n_samples)
    assert n >= 900
    assert two >= 0.88, two


def test_noiseless_peak_is_exact_between_grid_points():
    for k0 in (1.234, 2.5, 3.71):
        p = chi_peak(K, gaussian(k0, 0.4, 0.0, np.random.default_rng(0)), 10)
        assert p.censored == "none"
        assert p.kc == pytest.approx(k0, abs=1e-9)


@pytest.mark.parametrize("k0, side", [(-0.5, "left"), (-0.2, "left"), (5.2, "right"),
                                      (6.0, "right")])
def test_peak_beyond_the_grid_edge_is_censored(k0, side):
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = chi_peak(K, gaussian(k0, 0.4, 0.1, rng), 10)
        assert p.censored == side
        assert math.isnan(p.kc) and math.isnan(p.err)


@pytest.mark.parametrize("k0, side", [(0.0, "left"), (5.0, "right")])
def test_largest_chi_at_the_grid_edge_is_censored(k0, side):
    p = chi_peak(K, gaussian(k0, 0.4, 0.0, np.random.default_rng(0)), 10)
    assert p.censored == side
    assert math.isnan(p.kc) and math.isnan(p.err)


def test_decreasing_chi_is_left_censored_not_clamped():
    # largest chi at K_min: no peak on the grid (the three-point rule gave K_min)
    chi = np.exp(-K)
    p = chi_peak(K, chi, 10)
    assert (p.censored, math.isnan(p.kc)) == ("left", True)
    p = chi_peak(K, chi[::-1].copy(), 10)
    assert (p.censored, math.isnan(p.kc)) == ("right", True)


def test_vertex_outside_the_fitted_points_is_censored():
    # rising to a shoulder next to the last point: the points' maximum is
    # inside the grid but the fitted vertex lies beyond the points fitted
    k = np.linspace(0.0, 1.0, 6)
    chi = np.exp(np.array([0.0, 1.0, 1.8, 2.3, 2.4, 2.3]))
    p = chi_peak(k, chi, 10)
    assert p.censored in ("none", "right")
    chi = np.exp(np.array([0.0, 1.0, 1.8, 2.3, 2.6, 2.59]))
    p = chi_peak(k, chi, 10)
    assert p.censored == "right" and math.isnan(p.kc)


def test_non_finite_and_non_positive_chi():
    chi = np.ones(K.size)
    chi[3] = np.nan
    assert chi_peak(K, chi, 10).censored == "failed"
    chi[3] = 0.0
    assert chi_peak(K, chi, 10).censored == "flat"
    # a flat top with no curvature: no maximum to report
    assert chi_peak(K, np.ones(K.size), 10).censored in ("flat", "left")
