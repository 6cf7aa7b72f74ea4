"""The garbage collector's settings for a run.

A run builds a large heap that lives as long as the run (the config, the day's papers, the
word index, the templates) and then makes tens of thousands of short-lived objects per mail,
almost none of them in reference cycles. With the default settings the collector walks that
whole long-lived heap again and again: about 0.8 ms of CPU per mail across the run's process and
its render worker, and full collections of 80-110 ms while the run sets up (bench_send, 1,000
subscribers). `gc.freeze()` sets what exists aside (it is never walked, and is kept, not
collected, until `gc.unfreeze()`), and a larger first threshold collects the young objects
less often. Cycles are still collected, the frozen objects included once the run ends.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Collections of the youngest generation after this many allocations (the default is 700).
YOUNG_THRESHOLD = 20_000


@contextlib.contextmanager
def run_heap() -> Iterator[None]:
    """For the length of a run: what exists now is frozen, and the young generation is
    collected less often. Call `settle()` once the run's long-lived data is built. On exit the
    settings are restored and everything frozen is collectable again (a daemon runs on)."""
    thresholds = gc.get_threshold()
    settle()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def settle() -> None:
    """Set aside what exists now (long-lived for this process or run) from later collections,
    and collect young objects every YOUNG_THRESHOLD allocations."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
