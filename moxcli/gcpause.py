"""Python's cycle collector paused for a bulk job (issues 6 and 14: speed)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Turn the cycle collector off for the block, back on (if it was) afterwards.

    Bulk jobs (the TLS report sender's rows, an import batch's records) make many small
    containers that live until their commit; once promoted, the collector re-scans every one
    of them again and again (a quarter of the sender's run on a million rows, a tenth of an
    import). They hold no reference cycles, so reference counting frees them all the same;
    the callers collect the young generation now and then (``gc.collect(0)``) in case
    something else, such as the email package, made cyclic garbage.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
