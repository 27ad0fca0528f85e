"""Mean-field theory of each network: onsets and r(K) predicted from its degrees.

:mod:`kcbatch.theory.mean_field` holds the theories (all-to-all, heterogeneous
and quenched mean field); :mod:`kcbatch.theory.per_run` applies them to a
study's runs (which theory applies to which coupling and frequency law).
:mod:`kcbatch.theory.curves` predicts the measured ``r(K)`` and where it
crosses a threshold (``r_curve``, ``kc_at_threshold``). The package re-exports
the public functions of both.
"""
from kcbatch.theory import curves, mean_field
from kcbatch.theory.curves import *  # noqa: F403
from kcbatch.theory.mean_field import *  # noqa: F403

__all__ = list(mean_field.__all__) + list(curves.__all__)
