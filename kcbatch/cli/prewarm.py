"""Import matplotlib in the background while a study computes (``run`` and ``scan``)."""
from __future__ import annotations

import threading


def prewarm_plots() -> None:
    """Import matplotlib in a daemon thread while the study runs: after the last
    batch its import (~2 s of a loaded 2-core machine) would be on the critical path
    of every `kcbatch run` and of each scan point, before the plots could be drawn."""
    def work() -> None:
        try:
            import matplotlib.backends.backend_agg
            import matplotlib.figure  # noqa: F401
        except Exception:  # the plots' own import reports a broken matplotlib
            pass

    threading.Thread(target=work, name="kcbatch-prewarm-plots", daemon=True).start()
