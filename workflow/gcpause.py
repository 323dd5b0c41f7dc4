"""Pausing Python's cyclic garbage collector around bulk work.

A sweep builds hundreds of thousands of objects that live until it ends (rows read, planned
items, keys, payloads) and frees them together. Reference counting frees them as usual; but the
cyclic collector, triggered by the allocations, walks the growing heap again and again looking
for cycles there are none of. ``bench/sweep.py``'s 100,000-measure burst spent about a quarter of
its CPU time on SQLite in it. ``cyclic_gc_paused`` switches the collector off for the duration
(for the whole process: the collector is global) and back on afterwards, also when nested or used
by several threads at once. Used as a decorator (``@cyclic_gc_paused()``), it switches the
collector back on once the function has returned, so its locals are freed already: the
collector's first pass then walks what is left, not every object the function made (inside the
function, that pass took 0.24 s of a 100,000-measure burst on PostgreSQL).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    """How many pauses are open, and whether the collector was on before the first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.was_enabled = False


_PAUSES = _Pauses()


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    with _PAUSES.lock:
        if _PAUSES.open == 0:
            _PAUSES.was_enabled = gc.isenabled()
            gc.disable()
        _PAUSES.open += 1
    try:
        yield
    finally:
        with _PAUSES.lock:
            _PAUSES.open -= 1
            if _PAUSES.open == 0 and _PAUSES.was_enabled:
                gc.enable()
