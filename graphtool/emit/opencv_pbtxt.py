"""The text topology OpenCV reads next to a binary graph: ``readNetFromTensorflow(pb, pbtxt)``.

When both files are given, OpenCV builds layers from the text file and looks up
weights by Const node name in the binary one.  So the text file keeps every
node and attr except Const values (a Const holding a value in both files is
rejected as a duplicate), and leaves out what OpenCV's own, older copy of
TensorFlow's schema cannot parse: data types past DT_HALF (DT_RESOURCE,
DT_VARIANT, ...), per-node debug info and full types, the function library.
OpenCV runs none of its fusions in this mode, so the graph must already be in
the form OpenCV computes directly.
"""
from __future__ import annotations

from google.protobuf import text_format

from graphtool.proto import GraphDef

# The last DataType OpenCV's bundled types.proto knows (DT_HALF = 19).
_LAST_KNOWN_DTYPE = 19
# NodeDef fields OpenCV's schema has: name, op, input, device, attr.
_KEPT_NODE_FIELDS = ("name", "op", "input", "device")


def _dtype_ok(value: int) -> bool:
    base = value - 100 if value > 100 else value
    return base <= _LAST_KNOWN_DTYPE


def _attr_ok(attr) -> bool:
    kind = attr.WhichOneof("value")
    if kind == "type":
        return _dtype_ok(attr.type)
    if kind == "tensor":
        return _dtype_ok(attr.tensor.dtype)
    if kind == "list":
        return all(_dtype_ok(t) for t in attr.list.type) and all(
            _dtype_ok(t.dtype) for t in attr.list.tensor)
    return kind != "func"


def opencv_config(graph) -> str:
    """The pbtxt topology for ``graph`` (which must be saved as the matching .pb)."""
    out = GraphDef()
    source = graph.to_graph_def()
    if source.HasField("versions"):
        out.versions.producer = source.versions.producer
    for node in source.node:
        copy = out.node.add()
        for field in _KEPT_NODE_FIELDS:
            value = getattr(node, field)
            if field == "input":
                copy.input.extend(value)
            else:
                setattr(copy, field, value)
        for key in sorted(node.attr):
            if node.op == "Const" and key == "value":
                continue
            if _attr_ok(node.attr[key]):
                copy.attr[key].CopyFrom(node.attr[key])
    return text_format.MessageToString(out)
