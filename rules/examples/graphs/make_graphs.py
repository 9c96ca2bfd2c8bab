"""Build the small frozen graphs the example rules are tested on.

Each graph is written as NAME.pb with a graphtool sidecar (NAME.json) and a
reference input/output pair (NAME.npz), like the fixtures of fixtures/.  The
graphs are built with plain TensorFlow ops so each one shows exactly the
pattern (and the near misses) its example rule is about.

    python rules/examples/graphs/make_graphs.py        # rewrites the files here
"""
from __future__ import annotations

import io
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _const(rng, shape, low=-1.0, high=1.0):
    return tf.constant(rng.uniform(low, high, shape).astype(np.float32))


def leaky() -> dict:
    """Leaky ReLU written as max(x, a*x) in both operand orders, plus a near miss (a > 1)."""
    x = tf.compat.v1.placeholder(tf.float32, [1, 6, 6, 3], name="input")
    a = tf.maximum(x, tf.multiply(x, 0.2, name="scale_a"), name="leaky_a")
    b = tf.maximum(tf.multiply(tf.constant(0.1), a, name="scale_b"), a, name="leaky_b")
    c = tf.maximum(b, tf.multiply(b, 2.0, name="scale_c"), name="not_leaky")
    tf.identity(c, name="output")
    return {"inputs": {"input": [1, 6, 6, 3]}, "outputs": ["output"]}


def concat() -> dict:
    """A concat nested inside a concat on the same axis, and one on another axis."""
    x = tf.compat.v1.placeholder(tf.float32, [1, 4, 4, 2], name="input")
    a, b, c = tf.nn.relu(x), tf.sigmoid(x), tf.tanh(x)
    inner = tf.concat([b, c], axis=3, name="inner")
    outer = tf.concat([a, inner, x], axis=3, name="outer")
    rows = tf.concat([x, x], axis=1, name="rows")
    cols = tf.concat([rows, rows], axis=2, name="cols")
    other = tf.concat([cols, tf.nn.relu(cols)], axis=1, name="mixed")
    tf.identity(outer, name="output")
    tf.identity(other, name="output_mixed")
    return {"inputs": {"input": [1, 4, 4, 2]}, "outputs": ["output", "output_mixed"]}


def scaled_conv() -> dict:
    """Conv2D and depthwise convolutions followed by per-channel and scalar multiplications."""
    rng = np.random.default_rng(1)
    x = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3], name="input")
    conv = tf.nn.conv2d(x, _const(rng, [3, 3, 3, 4]), 1, "SAME", name="conv")
    scaled = tf.multiply(_const(rng, [4], 0.5, 1.5), conv, name="scaled")
    dw = tf.nn.depthwise_conv2d(scaled, _const(rng, [3, 3, 4, 2]), [1, 1, 1, 1], "SAME",
                                name="dw")
    dw_scaled = tf.multiply(dw, _const(rng, [8], 0.5, 1.5), name="dw_scaled")
    shared = tf.nn.conv2d(dw_scaled, _const(rng, [1, 1, 8, 4]), 1, "VALID", name="shared")
    tf.identity(tf.nn.relu(shared) * 2.0 + shared, name="output")
    return {"inputs": {"input": [1, 8, 8, 3]}, "outputs": ["output"]}


GRAPHS = {"leaky": leaky, "concat": concat, "scaled_conv": scaled_conv}


def write(name: str, build) -> None:
    graph = tf.Graph()
    with graph.as_default():
        spec = build()
    graph_def = graph.as_graph_def()
    rng = np.random.default_rng(0)
    feeds = {f"{k}:0": rng.standard_normal(v).astype(np.float32) for k, v in spec["inputs"].items()}
    with tf.compat.v1.Session(graph=graph) as session:
        results = session.run([f"{o}:0" for o in spec["outputs"]], feeds)
    sidecar = {
        "format": "graphtool-sidecar/1",
        "inputs": [{"name": k, "tensor": f"{k}:0", "dtype": "float32", "shape": v}
                   for k, v in spec["inputs"].items()],
        "outputs": [{"name": o, "tensor": f"{o}:0", "dtype": "float32", "shape": list(r.shape)}
                    for o, r in zip(spec["outputs"], results)],
        "source": {"path": f"rules/examples/graphs/make_graphs.py:{build.__name__}",
                   "kind": "builder"},
        "reference": f"{name}.npz",
    }
    arrays = {f"inputs/{k[:-2]}": v for k, v in feeds.items()}
    arrays.update({f"outputs/{o}": r for o, r in zip(spec["outputs"], results)})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    base = os.path.join(HERE, name)
    with open(base + ".pb", "wb") as fh:
        fh.write(graph_def.SerializeToString(deterministic=True))
    with open(base + ".json", "w", encoding="utf-8") as fh:
        json.dump(sidecar, fh, indent=2)
        fh.write("\n")
    with open(base + ".npz", "wb") as fh:
        fh.write(buffer.getvalue())


def main(names) -> None:
    for name in names or GRAPHS:
        write(name, GRAPHS[name])


if __name__ == "__main__":
    main(sys.argv[1:])
