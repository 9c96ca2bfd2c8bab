"""Keep Python's cyclic garbage collector out of a pass over a big graph.

A loaded graph is hundreds of thousands of small Python objects, and an
edit-heavy pass (rewrite, fold) allocates enough to trigger collection after
collection, each walking all of them: a quarter of a rewrite's time on a
100k-node graph.  Graph edits make almost no reference cycles (nodes are freed
by reference counting when removed), so automatic collection is switched off
while the pass runs and back on afterwards.  Re-entrant, so a fold inside a
rewrite does not switch it back on early.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = True


@contextmanager
def paused_gc():
    """No automatic cyclic collection inside the block (restored as it was found)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
