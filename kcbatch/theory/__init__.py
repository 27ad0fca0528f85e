"""Mean-field theory of each network: onsets and r(K) predicted from its degrees.

:mod:`kcbatch.theory.mean_field` holds the theories (all-to-all, heterogeneous
and quenched mean field); :mod:`kcbatch.theory.per_run` applies them to a
study's runs (which theory applies to which coupling and frequency law). The
package re-exports the public functions of ``mean_field``.
"""
from kcbatch.theory import mean_field
from kcbatch.theory.mean_field import *  # noqa: F403

__all__ = list(mean_field.__all__)
