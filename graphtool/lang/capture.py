"""A captured tensor as expressions and helper functions see it.

A match binds capture names to node outputs.  Expressions need three views of
a capture: its value when the node holds a constant (``w * scale``), the node
itself (``attr(conv, 'padding')``, ``op(x)``) and static facts such as its
shape.  ``Capture`` offers all three and reads the constant lazily, once.
"""
from __future__ import annotations

import numpy as np

from graphtool.errors import GraphtoolError
from graphtool.graph import parse_ref
from graphtool.tensors import shape_of


def holds_constant(msg) -> bool:
    """Whether a NodeDef holds a constant tensor: a ``value`` tensor attr, no data inputs."""
    return ("value" in msg.attr and msg.attr["value"].WhichOneof("value") == "tensor"
            and not any(not i.startswith("^") for i in msg.input))


class Capture:
    """Output ``tensor`` (``name`` or ``name:port``) of the graph, bound to capture ``name``."""

    __slots__ = ("name", "graph", "tensor", "_value")

    def __init__(self, name: str, graph, tensor: str):
        self.name = name
        self.graph = graph
        self.tensor = tensor
        self._value = None

    def __repr__(self) -> str:
        return f"<capture {self.name}={self.tensor}>"

    @property
    def node(self):
        return self.graph.node(self.tensor)

    @property
    def port(self) -> int:
        return parse_ref(self.tensor).port

    @property
    def is_const(self) -> bool:
        """Whether the node holds a constant tensor (a ``value`` attr and no data inputs)."""
        return holds_constant(self.node.proto)

    @property
    def value(self) -> np.ndarray:
        """The constant's value; an error when the node is not a constant."""
        if self._value is None:
            if not self.is_const:
                node = self.node
                raise GraphtoolError(
                    f"capture {self.name!r} is node {node.name!r} ({node.op}), not a constant, "
                    "so it has no value; check is_const(...) in where: or run fold_constants")
            self._value = self.node.tensor
        return self._value

    def static_shape(self) -> list[int] | None:
        """The shape if known without running the graph: constants, ``_output_shapes``, ``shape``."""
        if self.is_const:
            if self._value is not None:
                return list(self._value.shape)
            dims = shape_of(self.node.proto.attr["value"].tensor.tensor_shape)  # no decoding
            return None if dims is None else list(dims)
        node = self.node
        shapes = node.attr("_output_shapes", None)
        if shapes and self.port < len(shapes) and shapes[self.port] is not None:
            return list(shapes[self.port])
        shape = node.attr("shape", None)
        if isinstance(shape, tuple) and self.port == 0:
            return list(shape)
        return None
