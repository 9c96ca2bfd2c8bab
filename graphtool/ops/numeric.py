"""Numeric helpers shared by kernels of several families."""
from __future__ import annotations

import functools

import numpy as np

_FLOAT16 = frozenset([np.dtype(np.float16)])  # a hash lookup: cheaper than comparing dtypes
# Dtypes computed as they are: neither half precision (widened) nor object (partial values).
PLAIN = frozenset(np.dtype(t) for t in (
    np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
    np.uint32, np.uint64, np.bool_, np.complex64, np.complex128))


def is_half(dtype: np.dtype) -> bool:
    """float16 or bfloat16. bfloat16 is told by name, not by importing ml_dtypes (0.6 s
    on every run): a bfloat16 array only exists once something has imported it."""
    return dtype in _FLOAT16 or (dtype.kind == "V" and dtype.name == "bfloat16")


def widened(fn):
    """Run ``fn`` with half-precision arrays widened to float32 and the result rounded
    back once, as TensorFlow's CPU kernels do for float16 and bfloat16."""
    @functools.wraps(fn)
    def run(*arrays):
        for a in arrays:
            if is_half(a.dtype):
                narrow = a.dtype
                break
        else:
            return fn(*arrays)
        result = fn(*[a.astype(np.float32) if is_half(a.dtype) else a for a in arrays])
        return result.astype(narrow) if result.dtype.kind == "f" else result
    return run
