"""The bounds behind the one-line refusals of tests/test_bad_inputs.py, checked
against what they protect: the theory's g(0) and Kc0 at the ends of the
omega_sigma range, and the refusal of files that are not regular before they
are opened."""
from __future__ import annotations

import math
import os
import threading

import pytest

from kcbatch.protocol.config import (
    OMEGA_SIGMA_MAX,
    OMEGA_SIGMA_MIN,
    ConfigError,
    NotARegularFile,
    StudyConfig,
    read_regular_file,
)
from kcbatch.theory.mean_field import g_centre, kc0


@pytest.mark.parametrize("dist", ["normal", "lorentzian", "uniform"])
def test_theory_is_finite_over_the_omega_sigma_range(dist):
    """At both ends of the range, g(0) and Kc0 = 2/(pi g(0)) are finite, nonzero
    and proportional to 1/sigma and sigma; beyond them the config and the
    theory refuse the value (1e308 made g(0) = 0 and Kc0 a ZeroDivisionError)."""
    for sigma in (OMEGA_SIGMA_MIN, OMEGA_SIGMA_MAX):
        g, k = g_centre(dist, sigma), kc0(dist, sigma)
        assert math.isfinite(g) and g > 0 and math.isfinite(k) and k > 0
        assert math.isclose(g * sigma, g_centre(dist, 1.0), rel_tol=1e-12)
        assert math.isclose(k / sigma, kc0(dist, 1.0), rel_tol=1e-12)
        StudyConfig(runs=2, omega_dist=dist, omega_sigma=sigma)
    for sigma in (1e308, OMEGA_SIGMA_MAX * 1.0001, OMEGA_SIGMA_MIN / 1.0001, 5e-324):
        with pytest.raises(ValueError, match="sigma"):
            kc0(dist, sigma)
        with pytest.raises(ConfigError) as err:
            StudyConfig(runs=2, omega_dist=dist, omega_sigma=sigma)
        assert err.value.param == "omega_sigma"
    StudyConfig(runs=2, omega_sigma=0.0)  # identical frequencies stay allowed


def test_a_fifo_is_refused_without_blocking(tmp_path):
    """A FIFO with no writer would block open() forever: refused from its stat."""
    fifo = tmp_path / "f.toml"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def read():
        try:
            read_regular_file(fifo, 100)
        except BaseException as exc:  # handed to the test thread
            done.append(exc)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "read_regular_file blocked on a FIFO"
    assert isinstance(done[0], NotARegularFile) and "FIFO" in str(done[0])


def test_size_cap_is_exact(tmp_path):
    f = tmp_path / "g.txt"
    f.write_bytes(b"0 1\n" * 25)  # 100 bytes
    assert read_regular_file(f, 100) == b"0 1\n" * 25
    with pytest.raises(NotARegularFile, match="more than the 99 B"):
        read_regular_file(f, 99)
    with pytest.raises(NotARegularFile, match="character device"):
        read_regular_file("/dev/zero", 10**9)
    with pytest.raises(NotARegularFile, match="directory"):
        read_regular_file(tmp_path, 10**9)
