"""The theory beside a study's results: where it applies, and each run's thresholds.

A study's theory is set by three config fields: its coupling normalisation
``coupling``, its frequency distribution ``omega_dist`` and the spread
``omega_sigma`` (rad per time unit). Per run, :func:`run_thresholds` gives two
kinds of number for each theory (mf, hmf, qmf) of the run's graph:

* the onsets ``kc_mf``, ``kc_hmf``, ``kc_qmf`` (:mod:`kcbatch.theory.mean_field`):
  where the theory's r leaves 0. Not comparable with a measured Kc, which is a
  crossing of ``r = threshold``: on heterogeneous networks the onsets sit far below it.
* the crossings ``kc_mf_at_threshold``, ``kc_hmf_at_threshold``,
  ``kc_qmf_at_threshold`` (:func:`kcbatch.theory.curves.kc_at_threshold`): where
  the theory's prediction of the measured, unweighted r crosses the study's
  threshold. These measure what kcbatch measures.

Each is a float in rad per time unit, ``math.inf`` for a graph without edges (no
coupling, no onset, no crossing), or None where the theory does not apply
(:func:`why_no_theory`).

The all-to-all curve ``r(K)`` (:func:`kcbatch.theory.mean_field.r_all_to_all`) is the
prediction for the measured ``r(K)`` with degree normalisation only: there each
node feels ``K`` times the mean of its neighbours, and in the annealed mean
field every node then sees ``K R`` with the same degree-weighted order
parameter ``R``, which obeys Kuramoto's all-to-all self-consistency. With the
other normalisations the coupling a node feels grows with its degree (``K w_i
k_i``), so ``r(K)`` departs from the all-to-all curve on heterogeneous graphs.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from kcbatch.protocol.choices import Coupling
from kcbatch.theory import mean_field as theory
from kcbatch.theory.curves import threshold_crossings

__all__ = ["AT_THRESHOLD_FIELDS", "THEORY_FIELDS", "all_to_all_why_not", "run_thresholds",
           "theory_settings", "why_no_theory"]

# The per-run onset fields, in the order of the records, the store and runs.csv.
THEORY_FIELDS = ("kc_mf", "kc_hmf", "kc_qmf")
# The per-run crossings of the threshold, one per theory, in the same order.
AT_THRESHOLD_FIELDS = ("kc_mf_at_threshold", "kc_hmf_at_threshold", "kc_qmf_at_threshold")
# What a stored config without these fields was computed with.
_DEFAULTS = {"coupling": "degree", "omega_dist": "normal"}


def theory_settings(config: Any) -> dict[str, Any]:
    """``{"coupling", "omega_dist", "omega_sigma"}`` of a StudyConfig or of a stored
    config dict; a stored config without ``coupling``/``omega_dist`` was
    computed with ``degree``/``normal``."""
    if isinstance(config, Mapping):
        get = config.get
    else:
        def get(name, default=None):
            return getattr(config, name, default)
    return {"coupling": get("coupling", None) or _DEFAULTS["coupling"],
            "omega_dist": get("omega_dist", None) or _DEFAULTS["omega_dist"],
            "omega_sigma": float(get("omega_sigma", math.nan))}


def why_no_theory(omega_dist: str, omega_sigma: float) -> str | None:
    """None when the thresholds apply to frequencies ``omega_dist`` of spread
    ``omega_sigma``; otherwise the reason, one sentence."""
    why = theory.why_theory_does_not_apply(omega_dist)
    if why is not None:
        return why
    if not omega_sigma > 0:
        return (f"omega_sigma = {omega_sigma:g}: identical frequencies have no density g, "
                f"so Kc0 = 2/(pi g(0)) and the thresholds built on it are not computed")
    return None


def all_to_all_why_not(coupling: str, omega_dist: str, omega_sigma: float) -> str | None:
    """None when the all-to-all r(K) predicts the measured r(K) (module
    docstring); otherwise the reason, one sentence."""
    why = why_no_theory(omega_dist, omega_sigma)
    if why is not None:
        return why
    if coupling != Coupling.DEGREE:
        return (f"the all-to-all r(K) is the mean-field prediction with coupling degree only; "
                f"with coupling {coupling} the coupling a node feels grows with its degree")
    return None


def run_thresholds(indptr, indices, coupling: str, omega_dist: str,
                   omega_sigma: float, threshold: float | None = None,
                   ) -> dict[str, float | None]:
    """The onsets ``{"kc_mf", "kc_hmf", "kc_qmf"}`` of one CSR graph (``indptr``
    [N+1], ``indices`` [2E]) in rad per time unit, and with ``threshold`` (the
    study's r threshold) the crossings of AT_THRESHOLD_FIELDS; all None where
    :func:`why_no_theory` gives a reason; ``math.inf`` for a graph without edges
    (and a crossing the theory's r never reaches)."""
    fields = THEORY_FIELDS + (AT_THRESHOLD_FIELDS if threshold is not None else ())
    if why_no_theory(omega_dist, omega_sigma) is not None:
        return dict.fromkeys(fields)
    values = theory.thresholds(indptr, indices, coupling, omega_dist, omega_sigma)
    out: dict[str, float | None] = {
        name: None if values[name] is None else float(values[name]) for name in THEORY_FIELDS}
    if threshold is not None:
        onsets = [math.inf if (v := out[name]) is None else v for name in THEORY_FIELDS]
        crossings = threshold_crossings((indptr, indices), threshold, onsets,
                                        coupling=coupling, omega_dist=omega_dist,
                                        omega_sigma=omega_sigma)
        out.update(zip(AT_THRESHOLD_FIELDS, crossings, strict=True))
    return out
