"""The bounds behind the one-line refusals of tests/hostile/test_bad_inputs.py, checked
in-process against what they protect: the theory's g(0) and Kc0 at the ends of
the omega_sigma range, the refusal of files that are not regular before they
are opened, each count limit at its edge, and a TOML key spelled twice."""
from __future__ import annotations

import math
import os
import threading

import pytest
from helpers import assert_usage_error, run_cli

from kcbatch.protocol.config import (
    MAX_BATCH,
    MAX_K_NUM,
    MAX_PRODUCERS,
    MAX_REFINE_POINTS,
    MAX_RUNS,
    OMEGA_SIGMA_MAX,
    OMEGA_SIGMA_MIN,
    ConfigError,
    NotARegularFile,
    StudyConfig,
    load_toml,
    read_regular_file,
)
from kcbatch.results.scan_layout import MAX_SCAN_VALUES, parse_values
from kcbatch.run.scheduler import max_local_workers, parse_scheduler
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


# The count limits, in-process (tests/hostile/test_bad_inputs.py runs each through a
# real `kcbatch` process under an address-space limit, in the slow lane).
COUNT_LIMITS = [("runs", MAX_RUNS, {}), ("k_num", MAX_K_NUM, {}),
                ("refine_points", MAX_REFINE_POINTS, {"refine": 0.01}),
                ("batch", MAX_BATCH, {}), ("producers", MAX_PRODUCERS, {})]


@pytest.mark.parametrize("name, most, extra", COUNT_LIMITS, ids=[c[0] for c in COUNT_LIMITS])
def test_each_count_limit_is_exact(name, most, extra):
    """The limit itself is accepted, one more is refused naming the field, the
    value and the limit, whatever the value's size (3e9 allocated 4.8 GB before)."""
    StudyConfig(**{"runs": 2, **extra, name: most})
    for value in (most + 1, 3 * 10**9, 10**100):
        with pytest.raises(ConfigError) as err:
            StudyConfig(**{"runs": 2, **extra, name: value})
        assert err.value.param == name and err.value.value == value
        assert f"<= {most}" in str(err.value) and "Limits" in str(err.value)


def test_local_workers_limit_follows_the_cores():
    most = max_local_workers()
    assert most == max(4, len(os.sched_getaffinity(0)))
    assert parse_scheduler(f"local:{most}").workers == most
    for n in (most + 1, 64 * most, 10**30):
        with pytest.raises(ConfigError, match=f"at most {most}"):
            parse_scheduler(f"local:{n}")


def test_scan_values_limit():
    values = ",".join(str(100 + i) for i in range(MAX_SCAN_VALUES))
    assert len(parse_values("nodes", values)) == MAX_SCAN_VALUES
    with pytest.raises(ConfigError, match=f"at most {MAX_SCAN_VALUES} values"):
        parse_values("nodes", values + ",99999")


@pytest.mark.parametrize("argv, needle", [
    (["--batches", "1,3000000000"], "<= 1000000"),
    (["--batches", ",".join(["1"] * 65)], "at most 64 batch sizes"),
    (["--steps", "1000000000"], "<= 10000"),
])
def test_tune_limits(argv, needle):
    line = assert_usage_error(run_cli(["tune", "--runs", "2", "--nodes", "100", "--device",
                                       "cpu", *argv]), needle)
    assert "README, Limits" in line


def test_a_toml_key_spelled_twice_is_refused(tmp_path):
    """Each pair of spellings of one field; a single spelling reads as the field."""
    for first, second, field, value in (("nodes", "n", "nodes", 100),
                                        ("k_num", "k-num", "k_num", 4),
                                        ("omega_sigma", "sigma", "omega_sigma", 0.5)):
        path = tmp_path / "study.toml"
        path.write_text(f"{second} = {value}\n")
        assert load_toml(path) == {field: value}
        path.write_text(f"{first} = {value}\n{second} = {value}\n")
        with pytest.raises(ConfigError) as err:
            load_toml(path)
        assert err.value.value == second and repr(first) in str(err.value)
        with pytest.raises(ConfigError):
            StudyConfig.from_mapping({first: value, second: value, "runs": 2})
