"""Helpers for the rule-engine tests: small real frozen graphs built with TensorFlow in
tmp dirs, and rule files written from inline YAML.

Each builder makes ops in a fresh ``tf.Graph`` (constants are Consts, so the
GraphDef is frozen as built) and returns the names of its outputs; ``frozen``
writes the GraphDef and loads it back with graphtool.
"""
from __future__ import annotations

import os
import textwrap

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def frozen(tmp_path, name: str, build):
    """Build a graph with ``build(tf)`` -> output names; returns the loaded graphtool Graph."""
    import tensorflow as tf

    import graphtool

    graph = tf.Graph()
    with graph.as_default():
        outputs = build(tf)
    path = tmp_path / f"{name}.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    loaded = graphtool.load(path)
    loaded.outputs = outputs
    return loaded


def run(graph, feeds: dict, outputs=None) -> list[np.ndarray]:
    """Run a graphtool Graph with TensorFlow: feeds by node name, fetches the graph outputs."""
    from graphtool.freeze.tfrun import run_graph
    from graphtool.rewrite.testing import tf_graph_def
    fetches = [o if ":" in o else o + ":0" for o in (outputs or graph.outputs)]
    return run_graph(tf_graph_def(graph), {k + ":0": v for k, v in feeds.items()}, fetches)


def random_input(*shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def const(tf, rng, shape, low=-1.0, high=1.0, name=None):
    return tf.constant(rng.uniform(low, high, shape).astype(np.float32), name=name)


def waited_on(tf):
    """x -> Relu 'inner' -> Neg 'root', and a NoOp 'waiter' with a control edge on 'inner'."""
    x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
    inner = tf.nn.relu(x, name="inner")
    with tf.control_dependencies([inner]):
        tf.no_op(name="waiter")
    tf.negative(inner, name="root")
    return ["root"]


def rules_from(tmp_path, text: str, name: str = "r.yaml"):
    """Write ``text`` (dedented) as a rule file in ``tmp_path`` and load it."""
    from graphtool.rewrite import load_rules
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return load_rules(path)
