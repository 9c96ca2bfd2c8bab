"""What a shape function or kernel sees of one node: its attrs and its inputs.

Shape functions and kernels never touch the graph.  They get a ``Ctx`` (attrs,
input dtypes/shapes/known values) and return ``TensorInfo``s or arrays, so the
same entry serves shape inference, constant folding and the tests that call a
kernel on plain numpy arrays.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from graphtool.attrs import decode as decode_attr
from graphtool.dtypes import DType, as_dtype
from graphtool.errors import GraphtoolError

# Values of tensors up to this many elements are carried along by shape
# inference (shape vectors, axes, scalars); bigger constants only give a shape.
VALUE_LIMIT = 64
# Partially known values are tracked for int tensors of rank <= 1 up to this size.
PARTIAL_LIMIT = 64


class CannotEvaluate(Exception):
    """A kernel declines these inputs (TF would fail, or the result is platform-defined)."""


# Builds a NamedTuple (a TensorInfo, fold's records) from a tuple of all its fields
# without the Python-level __new__ the class generates, a third of the cost: for records
# made once per node on the hot paths.
new_record = tuple.__new__


class TensorInfo(NamedTuple):
    """Static facts about one tensor: dtype, shape, and its value when known.

    ``shape`` is a tuple with None for unknown dims, or None for unknown rank.
    ``value`` is the full numpy value (small tensors only).  ``partial`` holds
    the elements of a small int tensor in row-major order, None where unknown
    (e.g. the output of Shape on a tensor with an unknown batch size).
    """
    dtype: DType | None
    shape: tuple | None
    value: np.ndarray | None = None
    partial: tuple | None = None

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def fully_known(self) -> bool:
        """Whether every dimension is known."""
        shape = self.shape
        return shape is not None and None not in shape

    @property
    def size(self) -> int | None:
        """Number of elements, when the shape is fully known."""
        shape = self.shape
        return math.prod(shape) if shape is not None and None not in shape else None

    def elements(self) -> tuple | None:
        """Known elements (None for unknown ones) of a small int tensor, else None."""
        if self.value is not None:
            return tuple(self.value.reshape(-1).tolist()) if self.value.size <= PARTIAL_LIMIT \
                else None
        return self.partial

    def describe(self) -> str:
        """'float32[1,?,?,3]' style text."""
        dtype = str(self.dtype) if self.dtype is not None else "?"
        return dtype + format_shape(self.shape)


UNKNOWN = TensorInfo(None, None)


def format_shape(shape) -> str:
    if shape is None:
        return "[*]"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


_REQUIRED = object()


class Ctx:
    """One node as seen by its op entry: attrs through ``attr``, inputs as TensorInfos."""

    __slots__ = ("op", "name", "inputs", "_get_attr", "_raw_attr", "value_limit")

    def __init__(self, op: str, name: str, inputs: list[TensorInfo],
                 get_attr: Callable, raw_attr: Callable | None = None,
                 value_limit: int = VALUE_LIMIT):
        self.op = op
        self.name = name
        self.inputs = inputs
        self._get_attr = get_attr
        self._raw_attr = raw_attr
        self.value_limit = value_limit

    def attr(self, key: str, default=_REQUIRED):
        value = self._get_attr(key, _REQUIRED)
        if value is _REQUIRED:
            if default is _REQUIRED:
                raise self.error(f"has no attr {key!r}")
            return default
        return value

    def raw_attr(self, key: str):
        """The AttrValue message itself (None when absent or not backed by a NodeDef)."""
        return self._raw_attr(key) if self._raw_attr else None

    def error(self, message: str) -> GraphtoolError:
        return GraphtoolError(f"node {self.name!r} ({self.op}) {message}")

    # -- inputs -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.inputs)

    def info(self, i: int) -> TensorInfo:
        return self.inputs[i] if i < len(self.inputs) else UNKNOWN

    def dtype(self, i: int) -> DType | None:
        inputs = self.inputs
        return inputs[i].dtype if i < len(inputs) else None

    def shape(self, i: int) -> tuple | None:
        inputs = self.inputs
        return inputs[i].shape if i < len(inputs) else None

    def rank(self, i: int) -> int | None:
        return self.info(i).rank

    def value(self, i: int) -> np.ndarray | None:
        return self.info(i).value

    def elements(self, i: int) -> tuple | None:
        """Known elements of input ``i`` as Python ints/None (small int tensors)."""
        return self.info(i).elements()

    def ints(self, i: int) -> list[int] | None:
        """The value of input ``i`` as a flat list of ints, only when fully known."""
        el = self.elements(i)
        if el is None or any(e is None for e in el):
            return None
        return [int(e) for e in el]

    def scalar(self, i: int) -> int | None:
        values = self.ints(i)
        return values[0] if values is not None and len(values) == 1 else None

    def out_dtype(self, attr: str = "T", input_index: int | None = 0) -> DType | None:
        """Output dtype: the given input's dtype, else the attr's value."""
        if input_index is not None:
            dtype = self.dtype(input_index)
            if dtype is not None:
                return dtype
        value = self.attr(attr, None)
        return as_dtype(value) if value is not None else None


class NodeCtx(Ctx):
    """A Ctx over a NodeDef: attrs decoded from the message when asked for (one object
    per node, no closures), ``pinned`` standing in for the ``pinned_attr`` attr.  Op and
    name are read from the message only when asked for too (most shape functions and
    kernels never do)."""

    __slots__ = ("_msg", "_pinned", "_pinned_attr")

    def __init__(self, msg, inputs: list[TensorInfo], value_limit: int = VALUE_LIMIT,
                 pinned_attr: str | None = None, pinned=None):
        self.inputs = inputs
        self.value_limit = value_limit
        self._msg = msg
        self._pinned_attr = pinned_attr
        self._pinned = pinned

    @property
    def op(self) -> str:
        return self._msg.op

    @property
    def name(self) -> str:
        return self._msg.name

    def attr(self, key: str, default=_REQUIRED):
        # Ctx.attr with the lookup inlined: shape functions read attrs of most nodes.
        if key == self._pinned_attr:
            return self._pinned
        attrs = self._msg.attr
        if key in attrs:
            return decode_attr(attrs[key])
        if default is _REQUIRED:
            raise self.error(f"has no attr {key!r}")
        return default

    def _raw_attr(self, key: str):
        attrs = self._msg.attr
        return attrs[key] if key in attrs else None


def dict_attrs(attrs: dict) -> Callable:
    """An attr getter over a plain dict (for evaluating kernels outside a graph)."""
    return lambda key, default: attrs.get(key, default)
