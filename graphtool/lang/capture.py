"""A captured tensor as expressions and helper functions see it.

A match binds capture names to node outputs.  Expressions need three views of
a capture: its value when the node holds a constant (``w * scale``), the node
itself (``attr(conv, 'padding')``, ``op(x)``) and static facts such as its
shape.  ``Capture`` offers all three and reads the constant lazily, once.
"""
from __future__ import annotations

import numpy as np

from graphtool.attrs import shape_of
from graphtool.dtypes import DType, as_dtype
from graphtool.errors import GraphtoolError
from graphtool.graph import parse_ref
from graphtool.tensors import header_value


_UNSET = object()


def constant_tensor(msg):
    """The TensorProto of a NodeDef that holds a constant (a ``value`` tensor attr, no
    data inputs), else None; the attr is looked up once."""
    held = msg.attr.get("value")
    if held is None or held.WhichOneof("value") != "tensor":
        return None
    for text in msg.input[:]:
        if not text.startswith("^"):
            return None
    return held.tensor


def holds_constant(msg) -> bool:
    """Whether a NodeDef holds a constant tensor: a ``value`` tensor attr, no data inputs."""
    return constant_tensor(msg) is not None


class Capture:
    """Output ``tensor`` (``name`` or ``name:port``) of the graph, bound to capture ``name``."""

    __slots__ = ("name", "graph", "tensor", "_value", "_node", "_const", "_held", "_shape",
                 "_attrs")

    def __init__(self, name: str, graph, tensor: str):
        self.name = name
        self.graph = graph
        self.tensor = tensor
        self._value = None
        self._node = None
        self._const = None   # is_const, once asked
        self._held = None    # the constant's TensorProto, found by is_const
        self._shape = _UNSET  # static_shape(), once asked (rewrites keep shapes)
        self._attrs = None    # decoded attrs, key -> value, as asked

    def __repr__(self) -> str:
        return f"<capture {self.name}={self.tensor}>"

    @property
    def node(self):
        node = self._node
        if node is None or not node.alive:  # looked up once, again only if it was replaced
            node = self._node = self.graph.node(self.tensor)
        return node

    def attr(self, key: str, default=_UNSET):
        """Attr ``key`` of the node, decoded once per match (conditions ask again and again);
        ``default`` when absent, an error when absent and no default is given."""
        attrs = self._attrs
        if attrs is None:
            attrs = self._attrs = {}
        elif key in attrs:
            return attrs[key]
        node = self.node
        if not node.has_attr(key):
            if default is _UNSET:
                return node.attr(key)  # raises, naming the node and the attrs it has
            return default
        value = attrs[key] = node.attr(key)
        return value

    @property
    def port(self) -> int:
        if ":" not in self.tensor:  # a node capture, or port 0: asked once per shape lookup
            return 0
        return parse_ref(self.tensor).port

    @property
    def is_const(self) -> bool:
        """Whether the node holds a constant tensor (a ``value`` attr and no data inputs)."""
        if self._const is None or not self._node.alive:
            # the TensorProto is kept: value, dtype and shape read it without asking again
            held = self._held = constant_tensor(self.node.proto)
            self._const = held is not None
        return self._const

    @property
    def value(self) -> np.ndarray:
        """The constant's value; an error when the node is not a constant."""
        if self._value is None:
            if not self.is_const:
                node = self.node
                raise GraphtoolError(
                    f"capture {self.name!r} is node {node.name!r} ({node.op}), not a constant, "
                    "so it has no value; check is_const(...) in where: or run fold_constants")
            tensor = self._held
            shape = self._shape  # once a condition has read it from this header, not again
            if shape is _UNSET:  # the header's shape, remembered by its bytes
                shape = shape_of(tensor.tensor_shape)
            self._value = header_value(tensor, as_dtype(tensor.dtype), shape)
        return self._value

    def static_dtype(self) -> DType | None:
        """The element type without decoding: a constant's tensor, else a ``T``/``dtype`` attr."""
        if self.is_const:
            return DType(self._held.dtype)
        for key in ("T", "dtype"):
            value = self.attr(key, None)
            if value is not None:
                return as_dtype(value)
        return None

    def static_shape(self) -> list[int] | None:
        """The shape if known without running the graph: constants, ``_output_shapes``, ``shape``."""
        dims = self.static_dims()
        return None if dims is None else list(dims)

    def static_dims(self) -> tuple | None:
        """``static_shape`` as the remembered tuple: no copy for conditions that only
        test, count or measure it (``known_shape``, ``rank``, ``size``)."""
        if self._shape is _UNSET:
            self._shape = self._find_shape()
        return self._shape

    def _find_shape(self) -> tuple | None:
        if self.is_const:
            if self._value is not None:
                return self._value.shape
            return shape_of(self._held.tensor_shape)  # no decoding
        attr = self.node.proto.attr
        port = self.port
        if "_output_shapes" in attr:  # read straight from the list: asked for every match
            shapes = attr["_output_shapes"].list.shape
            if port < len(shapes):
                shape = shape_of(shapes[port])
                if shape is not None:
                    return shape
        if port == 0 and "shape" in attr and attr["shape"].WhichOneof("value") == "shape":
            return shape_of(attr["shape"].shape)
        return None
