"""Python's cyclic garbage collector, set for a batch process that holds a large, long-lived heap.

A pipeline run's process imports Dagster, polars, DuckDB, matplotlib, pydantic and the asset
graph: a few hundred thousand long-lived objects. CPython's default thresholds ``(700, 10, 10)``
collect the youngest generation every 700 net allocations and the older ones often enough that
the collector's traversals added up to ~10 % of the demo pipeline's wall time on this project's
2-core machine, while the garbage it found was small (docs/architecture.md, "What the demo
pipeline costs", the garbage collector).

:func:`tune_for_batch`, called once the imports are done:

- moves every object alive at that moment into the permanent generation (``gc.freeze``): the
  modules, classes and definitions that live as long as the process are no longer traversed by
  any collection;
- collects the youngest generation every :data:`THRESHOLDS` ``[0]`` net allocations instead of
  700, and the older ones correspondingly less often.

Reference cycles are still collected, later; reference counting frees everything else at once,
as before. Memory: the young generation holds up to ~10,000 more objects between collections
(about a megabyte).
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 50, 100)
"""``gc.set_threshold`` of a batch process: generation 0 every 10,000 net allocations,
generation 1 every 50 of those, generation 2 every 100 generation-1 collections (and, as always,
only when the objects that survived one are a quarter of the long-lived ones)."""


def tune_for_batch() -> tuple[int, int, int]:
    """Freeze the objects alive now and raise the collector's thresholds (module docstring);
    returns the thresholds in force before. Called again, it also freezes what was made
    since the first."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return before
