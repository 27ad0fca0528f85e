"""Per-run random streams.

Run ``i`` of a study with seed ``S`` draws everything from
``SeedSequence(S, spawn_key=(i,))``, which is exactly
``SeedSequence(S).spawn(runs)[i]`` but costs O(1) for any ``i``: a run's inputs
depend on ``(S, i)`` only, never on batch size, device, threads or order.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np

from kcbatch.protocol.choices import OmegaDist


def draw_seed() -> int:
    """A fresh study seed (printed and recorded so the study can be repeated)."""
    return secrets.randbits(63)


def run_seed_sequence(seed: int, run: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(run,))


def seed_material(seed: int, run: int) -> str:
    """Human-readable seed material stored with each run."""
    return f"SeedSequence({seed}).spawn(runs)[{run}]"


# The one table of natural-frequency distributions (CLI choices, config validation).
# mu and sigma: normal(mu, sigma); Lorentzian (Cauchy) with location mu and
# half-width sigma; uniform on [mu - sigma, mu + sigma]. ``degree``: omega_i = k_i,
# set from the network (no draws; mu and sigma do not apply).
OMEGA_DISTS = tuple(str(d) for d in OmegaDist)


@dataclass(frozen=True)
class RunInputs:
    """Everything random about one run.

    graph_seed: seed in [0, 2**63 - 1) for the run's network generator.
    omega: [N] float64 natural frequencies (rad / time unit); None for the
      ``degree`` distribution, whose omega_i = k_i comes from the network.
    theta0: [N] float64 initial phases in [0, 2pi).
    """

    run: int
    graph_seed: int
    omega: np.ndarray | None
    theta0: np.ndarray


def draw_omega(rng: np.random.Generator, dist: str, mu: float, sigma: float,
               nodes: int) -> np.ndarray | None:
    """``nodes`` natural frequencies (float64, rad / time unit) from ``dist``; None
    (and no draws) for ``degree``. Each distribution is one numpy call, so the
    stream consumed is fixed by (dist, nodes)."""
    if dist == OmegaDist.NORMAL:
        return rng.normal(mu, sigma, nodes)
    if dist == OmegaDist.LORENTZIAN:
        return mu + sigma * rng.standard_cauchy(nodes)
    if dist == OmegaDist.UNIFORM:
        return rng.uniform(mu - sigma, mu + sigma, nodes)
    if dist == OmegaDist.DEGREE:
        return None
    raise ValueError(f"invalid omega_dist={dist!r}: must be one of {', '.join(OMEGA_DISTS)}")


def run_inputs(seed: int, run: int, nodes: int, omega_mu: float, omega_sigma: float,
               omega_dist: str = "normal") -> RunInputs:
    """Draw run ``run``'s graph seed, frequencies and initial phases (in that order)."""
    rng = np.random.Generator(np.random.PCG64(run_seed_sequence(seed, run)))
    graph_seed = int(rng.integers(0, 2**63 - 1, dtype=np.int64))
    omega = draw_omega(rng, omega_dist, omega_mu, omega_sigma, nodes)
    theta0 = rng.uniform(0.0, 2.0 * np.pi, nodes)
    return RunInputs(run=run, graph_seed=graph_seed, omega=omega, theta0=theta0)
