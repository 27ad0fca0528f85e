"""The ``kcbatch`` click group; the commands register on it (``cli/__init__``)."""
from __future__ import annotations

import click

from kcbatch.cli.errors import OneLineErrors
from kcbatch.version import __version__


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kcbatch")
def main() -> None:
    """kcbatch: the Kuramoto synchronization threshold Kc over ensembles of
    random networks (Barabasi-Albert by default; Erdos-Renyi, Watts-Strogatz,
    power law, or graph files), many networks x all couplings at once.

    Times are in the model's time units, frequencies in rad per time unit.
    The defaults are the original study's protocol: 1000 runs of N=10000, m=3
    networks, omega ~ Normal(0, 0.5), K = linspace(0, 5, 50), dt=0.05,
    t_transient=5, t_measure=5, r sampled every 10 steps, threshold 0.5,
    float32 (see 'kcbatch run --help').
    """
