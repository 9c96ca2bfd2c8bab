"""Run a frozen GraphDef in TensorFlow: the reference side of every validation.

TensorFlow is imported only when a graph is actually run, so the rest of
graphtool (and ``--reference-data`` validation) works without it.  Besides
the graph outputs, any intermediate tensor can be fetched - bisection needs
the reference value of every layer OpenCV reports.
"""
from __future__ import annotations

import os

import numpy as np

from graphtool.errors import GraphtoolError
from graphtool.graph import parse_ref


class TFRunError(GraphtoolError):
    """TensorFlow refused to import or run a graph; the message is TF's first line."""


def import_tensorflow():
    """TensorFlow, quietened; a GraphtoolError with a hint when it is not installed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise GraphtoolError("TensorFlow is not installed: install tensorflow-cpu, or pass "
                             "--reference-data FILE.npz with the reference outputs") from None
    return tf


def tensor_name(text: str) -> str:
    """Feed/fetch spelling of a reference: 'a' -> 'a:0', 'a:1' stays."""
    r = parse_ref(text)
    return f"{r.node}:{r.port}"


def unknown_ops(graph) -> dict[str, list[str]]:
    """Op type -> node names, for ops this TensorFlow does not define (OpenCV-only layers)."""
    import_tensorflow()
    from tensorflow.python.framework import op_def_registry

    functions = {f.signature.name for f in graph.library.function}
    found: dict[str, list[str]] = {}
    for node in graph.nodes:
        if node.op not in functions and op_def_registry.get(node.op) is None:
            found.setdefault(node.op, []).append(node.name)
    return found


class TFSession:
    """One graph imported into TensorFlow, ready to run with different fetches."""

    def __init__(self, graph, *, label: str = "graph"):
        tf = import_tensorflow()
        self._tf = tf
        self.label = label
        graph_def = tf.compat.v1.GraphDef.FromString(graph.serialize())
        self._graph = tf.Graph()
        try:
            with self._graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
        except (ValueError, tf.errors.OpError) as exc:
            raise TFRunError(f"TensorFlow cannot import the {label}: {_first_line(exc)}") from None
        self._session = tf.compat.v1.Session(graph=self._graph)

    def close(self) -> None:
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fetchable(self, names) -> list[str]:
        """The node names among ``names`` whose output 0 is a numeric tensor."""
        keep = []
        for name in names:
            try:
                op = self._graph.get_operation_by_name(name)
            except KeyError:
                continue
            if op.outputs and (op.outputs[0].dtype.is_floating or op.outputs[0].dtype.is_integer
                               or op.outputs[0].dtype.is_bool):
                keep.append(name)
        return keep

    def run(self, feeds: dict, fetches) -> dict[str, np.ndarray]:
        """Values of ``fetches`` (node names or 'node:port') for ``feeds`` (input name -> array)."""
        fetches = list(fetches)
        try:
            feed_dict = {self._graph.get_tensor_by_name(tensor_name(k)): v
                         for k, v in feeds.items()}
            tensors = [self._graph.get_tensor_by_name(tensor_name(f)) for f in fetches]
        except (KeyError, ValueError) as exc:
            raise TFRunError(f"the {self.label} has no tensor {_first_line(exc)}") from None
        try:
            values = self._session.run(tensors, feed_dict=feed_dict)
        except (self._tf.errors.OpError, ValueError, TypeError) as exc:
            raise TFRunError(f"TensorFlow failed to run the {self.label}: "
                             f"{_first_line(exc)}") from None
        return {f: np.asarray(v) for f, v in zip(fetches, values)}


def run_graph(graph, feeds: dict, fetches, *, label: str = "graph") -> dict[str, np.ndarray]:
    """Run ``graph`` (a graphtool Graph) once and return the fetched values by name."""
    with TFSession(graph, label=label) as session:
        return session.run(feeds, fetches)


def _first_line(exc) -> str:
    text = getattr(exc, "message", None) or str(exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
