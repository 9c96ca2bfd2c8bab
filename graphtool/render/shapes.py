"""What the renderer knows about tensors: shape and dtype per ``(node, port)``.

Some facts are stated in the graph itself (a Placeholder's ``shape``/``dtype``
attrs, a Const's tensor header); the rest comes from the shape analysis
(``Graph.shapes()``) when it is available.  Edge labels are a convenience, so
any failure of the analysis only means fewer labels, never a failed render.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

from graphtool.dtypes import DType, as_dtype
from graphtool.graph import parse_ref
from graphtool.tensors import shape_of

from graphtool.render.style import is_constant


class TensorFacts(NamedTuple):
    shape: tuple | None   # None: unknown rank; -1 or None inside: unknown dimension
    dtype: DType | None


def const_facts(node) -> TensorFacts | None:
    """Shape and dtype of a Const from its tensor header (the values are not decoded)."""
    attr = node.proto.attr
    if "value" not in attr or attr["value"].WhichOneof("value") != "tensor":
        return None
    tensor = attr["value"].tensor
    try:
        dtype = as_dtype(tensor.dtype)
    except Exception:  # an unknown DataType number: show the shape alone
        dtype = None
    return TensorFacts(shape_of(tensor.tensor_shape), dtype)


def _stated_facts(graph) -> dict[tuple[str, int], TensorFacts]:
    facts = {}
    for node in graph.inputs:
        attr = node.proto.attr
        shape = shape_of(attr["shape"].shape) if "shape" in attr else None
        dtype = as_dtype(attr["dtype"].type) if "dtype" in attr else None
        facts[(node.name, 0)] = TensorFacts(shape, dtype)
    for node in graph.nodes:
        if is_constant(node.op):
            found = const_facts(node)
            if found is not None:
                facts[(node.name, 0)] = found
    return facts


def _one(value) -> TensorFacts | None:
    """Accept the shapes an analysis may plausibly return for one tensor."""
    if value is None:
        return None
    if isinstance(value, TensorFacts):
        return value
    if isinstance(value, Mapping):
        shape, dtype = value.get("shape"), value.get("dtype")
    elif hasattr(value, "shape") and hasattr(value, "dtype"):
        shape, dtype = value.shape, value.dtype
    elif isinstance(value, (tuple, list)) and all(
            isinstance(d, int) or d is None for d in value):
        shape, dtype = value, None
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        first, second = value
        shape, dtype = (second, first) if isinstance(first, (DType, str)) else (first, second)
    else:
        return None
    try:
        dtype = as_dtype(dtype) if dtype is not None else None
    except Exception:
        dtype = None
    if shape is not None:
        shape = tuple(None if d is None else int(d) for d in shape)
    return TensorFacts(shape, dtype)


def _from_analysis(result) -> dict[tuple[str, int], TensorFacts]:
    facts = {}
    items = result.items() if isinstance(result, Mapping) else ()
    for key, value in items:
        ref = parse_ref(str(key))
        if isinstance(value, list) and value and not all(
                isinstance(d, int) or d is None for d in value):
            for port, item in enumerate(value):
                found = _one(item)
                if found is not None:
                    facts[(ref.node, port)] = found
            continue
        found = _one(value)
        if found is not None:
            facts[(ref.node, ref.port)] = found
    return facts


def tensor_facts(graph, shapes=None) -> dict[tuple[str, int], TensorFacts]:
    """``shapes``: False for none, None to ask ``graph.shapes()``, or a mapping to use."""
    if shapes is False:
        return {}
    facts = _stated_facts(graph)
    if shapes is None or shapes is True:
        try:
            shapes = graph.shapes()
        except Exception:  # analysis missing or unable to handle this graph: no labels
            shapes = None
    if shapes:
        facts.update(_from_analysis(shapes))
    return facts
