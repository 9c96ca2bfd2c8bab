"""Numeric helpers shared by kernels of several families."""
from __future__ import annotations

import functools

import ml_dtypes
import numpy as np

HALF_TYPES = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
_HALF_SET = frozenset(HALF_TYPES)  # a hash lookup: cheaper than comparing dtypes in turn


def widened(fn):
    """Run ``fn`` with half-precision arrays widened to float32 and the result rounded
    back once, as TensorFlow's CPU kernels do for float16 and bfloat16."""
    @functools.wraps(fn)
    def run(*arrays):
        for a in arrays:
            if a.dtype in _HALF_SET:
                narrow = a.dtype
                break
        else:
            return fn(*arrays)
        result = fn(*[a.astype(np.float32) if a.dtype in HALF_TYPES else a for a in arrays])
        return result.astype(narrow) if result.dtype.kind == "f" else result
    return run
