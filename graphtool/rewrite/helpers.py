"""graphtool's own helper functions for ``call:`` in rules.

Helpers are for what an expression cannot say briefly.  They stay free of op
names: they work on arrays and shapes, and the rule says where they apply.
"""
from __future__ import annotations

import math

import numpy as np

from graphtool.errors import GraphtoolError
from graphtool.lang.functions import register_function, value_of


@register_function("scale_trailing_axes")
def scale_trailing_axes(weights, scale):
    """``weights`` times ``scale`` laid along its trailing axes.

    A per-output-channel scale multiplies a Conv2D kernel (H, W, I, O) along
    its last axis and a depthwise kernel (H, W, C, M) along its last two
    (output channel c*M + m), so the fewest trailing axes whose sizes
    multiply to ``scale.size`` are the ones it runs along.
    """
    w = np.asarray(value_of(weights))
    s = np.asarray(value_of(scale)).reshape(-1)
    if s.size == 1:
        return w * s.reshape(())
    for k in range(1, w.ndim + 1):
        trailing = w.shape[w.ndim - k:]
        if math.prod(trailing) == s.size:
            return w * s.reshape(trailing).astype(w.dtype, copy=False)
        if math.prod(trailing) > s.size:
            break
    raise GraphtoolError(f"a scale of {s.size} values does not fit the trailing axes of "
                         f"weights shaped {list(w.shape)}")
