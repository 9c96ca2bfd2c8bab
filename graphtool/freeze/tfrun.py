"""Run a frozen GraphDef with TensorFlow, and make the seeded reference input."""
from __future__ import annotations

import numpy as np


def reference_inputs(shapes: list[list[int]], dtypes: list[str]) -> list[np.ndarray]:
    """Seed-0 standard normal samples, drawn in input order (integers: 0..9, bools: coin flips)."""
    rng = np.random.default_rng(0)
    arrays = []
    for shape, dtype in zip(shapes, dtypes):
        dt = np.dtype(dtype)
        if dt.kind == "f":
            arrays.append(rng.standard_normal(shape).astype(dt))
        elif dt.kind in "iu":
            arrays.append(rng.integers(0, 10, size=shape).astype(dt))
        elif dt.kind == "b":
            arrays.append(rng.random(shape) < 0.5)
        else:
            raise ValueError(f"no reference input for dtype {dtype}")
    return arrays


def run_graph(graph_def, feeds: dict[str, np.ndarray], fetches: list[str]) -> list[np.ndarray]:
    """Outputs of `fetches` ("node:0") with TensorFlow's own runtime."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return [np.asarray(a) for a in session.run(fetches, feeds)]


def max_error(got: list[np.ndarray], want: list[np.ndarray]) -> tuple[float, float]:
    """(max abs difference, tolerance = 1e-5 * max(1, max |want|)) over all outputs."""
    err, scale = 0.0, 1.0
    for g, w in zip(got, want):
        w = np.asarray(w, dtype=np.float64)
        err = max(err, float(np.max(np.abs(np.asarray(g, dtype=np.float64) - w))) if w.size else 0.0)
        scale = max(scale, float(np.max(np.abs(w))) if w.size else 0.0)
    return err, 1e-5 * scale
