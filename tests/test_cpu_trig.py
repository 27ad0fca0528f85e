"""The CPU engine's vectorisable sin/cos against numpy's libm-accurate ones."""
from __future__ import annotations

import numpy as np
import pytest

from kcbatch.engines.cpu.trig import LIMIT32, LIMIT64, sincos_array


@pytest.mark.parametrize("dtype,ulps", [(np.float32, 2), (np.float64, 2)])
def test_sincos_accuracy_over_the_phase_range(dtype, ulps):
    rng = np.random.default_rng(1)
    # Wrapped phases plus RK4 increments, quadrant boundaries, and wider values.
    x = np.concatenate([
        np.linspace(-10.0, 20.0, 400_001),
        np.pi / 2 * np.arange(-40, 41),
        rng.uniform(-5000.0, 5000.0, 100_000),
    ]).astype(dtype)
    s, c = np.empty_like(x), np.empty_like(x)
    sincos_array(x, s, c)
    xs = x.astype(np.float64)
    # Compare with float64 libm: the error allowed is a few ulps of |result| <= 1.
    tol = ulps * np.finfo(dtype).eps
    ref_s, ref_c = np.sin(xs), np.cos(xs)
    if dtype is np.float64:  # float64 libm is the reference itself: allow its ulp too
        tol += np.finfo(np.float64).eps
    assert np.max(np.abs(s - ref_s)) <= tol
    assert np.max(np.abs(c - ref_c)) <= tol


@pytest.mark.parametrize("dtype,limit", [(np.float32, LIMIT32), (np.float64, LIMIT64)])
def test_large_and_non_finite_arguments(dtype, limit):
    x = np.array([limit * 3, -limit * 7, 1e30, np.nan, np.inf, -np.inf], dtype=dtype)
    s, c = np.empty_like(x), np.empty_like(x)
    sincos_array(x, s, c)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(s[:3], np.sin(x[:3]), atol=np.finfo(dtype).eps * 4)
        np.testing.assert_allclose(c[:3], np.cos(x[:3]), atol=np.finfo(dtype).eps * 4)
    assert np.all(np.isnan(s[3:])) and np.all(np.isnan(c[3:]))
