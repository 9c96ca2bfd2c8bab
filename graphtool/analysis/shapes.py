"""Static dtype and shape of every tensor in a graph, without TensorFlow.

One pass in topological order: each node's op entry (``graphtool.ops``) turns
its inputs' TensorInfos into output TensorInfos.  Small int tensors carry their
(partially) known values, so shapes computed at run time from ``Shape`` ->
``StridedSlice`` -> ``Pack`` chains are resolved.  A node whose op is unknown
gets unknown outputs (or the shapes in its ``_output_shapes`` attr), never a
guess; shapes that contradict each other raise a GraphtoolError naming the node.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from graphtool import ops
from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.graph import parse_ref
from graphtool.ops.context import UNKNOWN, VALUE_LIMIT, Ctx, TensorInfo, format_shape
from graphtool.ops.evaluate import infer_node

# The Placeholder attr that input shapes pin.
_INPUT_SHAPE_ATTR = "shape"
_MISSING = object()


class Shapes(Mapping):
    """``"node:port"`` -> TensorInfo for every tensor; ``"node"`` means port 0."""

    def __init__(self, table: dict[str, list[TensorInfo]], unknown_ops: dict[str, int],
                 order: list[str] | None = None):
        self._table = table
        self.unknown_ops = unknown_ops  # op type -> node count, for ops without an entry
        self.order = order or list(table)  # node names, producers before consumers

    def __getitem__(self, tensor: str) -> TensorInfo:
        r = parse_ref(str(tensor))
        outputs = self._table.get(r.node)
        if outputs is None or r.control:
            raise KeyError(tensor)
        if r.port < len(outputs):
            return outputs[r.port]
        if not outputs or outputs is _UNKNOWN_OUTPUTS:
            return UNKNOWN
        raise KeyError(tensor)

    def __iter__(self):
        for name, outputs in self._table.items():
            for port in range(len(outputs)):
                yield f"{name}:{port}"

    def __len__(self) -> int:
        return sum(len(o) for o in self._table.values())

    def outputs(self, node) -> list[TensorInfo]:
        """TensorInfos of all outputs of a node (a Node or a name)."""
        name = node if isinstance(node, str) else node.name
        if name not in self._table:
            raise GraphtoolError(f"no node named {name!r} in the shape table"
                                 + did_you_mean(name, self._table))
        return list(self._table[name])

    def set_outputs(self, name: str, infos: list[TensorInfo]) -> None:
        """Record the outputs of a node added after the analysis ran."""
        self._table[name] = list(infos)

    def shape(self, tensor: str):
        return self[tensor].shape

    def dtype(self, tensor: str):
        return self[tensor].dtype

    def value(self, tensor: str):
        return self[tensor].value


class _UnknownOutputs(list):
    """Outputs of a node whose op graphtool does not know: every port is unknown."""


_UNKNOWN_OUTPUTS = _UnknownOutputs()


def _pinned_shapes(graph, input_shapes) -> dict[str, tuple | None]:
    """Placeholder name -> shape (None for unknown dims), checked against the graph."""
    if not input_shapes:
        return {}
    names = {n.name for n in graph.inputs}
    pinned = {}
    for key, shape in dict(input_shapes).items():
        name = parse_ref(str(key)).node
        if name not in names:
            raise GraphtoolError(f"input shape given for {name!r}, which is not a graph input"
                                 + did_you_mean(name, names))
        if shape is not None:
            try:
                shape = tuple(None if d is None or int(d) < 0 else int(d) for d in shape)
            except (TypeError, ValueError):
                raise GraphtoolError(f"input shape {shape!r} for {name!r} is not a list of "
                                     "sizes; use e.g. [1, 224, 224, 3]") from None
        pinned[name] = shape
    return pinned


def split_input(text: str) -> tuple[str, int]:
    """(producer, port) of a data input string; a fast ``parse_ref`` for hot loops."""
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit():
        return head, int(tail)
    return text, 0


def _producer(text: str) -> str:
    return text[1:] if text.startswith("^") else split_input(text)[0]


def topological_order(graph) -> tuple[list, list]:
    """Nodes in an order where producers come first; also the nodes caught in cycles."""
    nodes = graph.nodes
    by_name = {n.name: n for n in nodes}
    producers = {}
    users: dict[str, list[str]] = {}
    for node in nodes:
        deps = {d for d in map(_producer, node.proto.input) if d in by_name}
        producers[node.name] = len(deps)
        for d in deps:
            users.setdefault(d, []).append(node.name)
    ready = [n.name for n in reversed(nodes) if producers[n.name] == 0]
    order = []
    while ready:
        name = ready.pop()
        order.append(by_name[name])
        for user in users.get(name, ()):
            producers[user] -= 1
            if producers[user] == 0:
                ready.append(user)
    placed = {n.name for n in order}
    return order, [n for n in nodes if n.name not in placed]


def _declared_shapes(node) -> list[TensorInfo]:
    """Outputs of an unknown op, from its ``_output_shapes`` attr when present."""
    shapes = node.attr("_output_shapes", None)
    if not shapes:
        return _UNKNOWN_OUTPUTS
    return _UnknownOutputs(TensorInfo(None, None if s is None else tuple(
        None if d < 0 else d for d in s)) for s in shapes)


def node_context(node, inputs: list[TensorInfo], value_limit: int = VALUE_LIMIT,
                 pinned=_MISSING) -> Ctx:
    """The op-table view of a graph node (attrs decoded on demand)."""
    msg = node.proto
    get_attr = node.attr
    if pinned is not _MISSING:
        def get_attr(key, default, _attr=node.attr):
            return pinned if key == _INPUT_SHAPE_ATTR else _attr(key, default)
    return Ctx(node.op, node.name, inputs, get_attr,
               lambda key: msg.attr[key] if key in msg.attr else None, value_limit)


def infer_shapes(graph, input_shapes=None, *, value_limit: int = VALUE_LIMIT) -> Shapes:
    """Static dtype/shape (and small known values) of every tensor in ``graph``.

    ``input_shapes`` maps Placeholder names to shapes (None or -1 for unknown
    dims) and overrides their ``shape`` attrs, e.g. the shapes in a freeze sidecar.
    """
    pinned = _pinned_shapes(graph, input_shapes)
    order, cyclic = topological_order(graph)
    table: dict[str, list[TensorInfo]] = {}
    unknown = Counter()
    for node in order:
        inputs = []
        for text in node.data_inputs:
            producer, port = split_input(text)
            produced = table.get(producer, _UNKNOWN_OUTPUTS)
            inputs.append(produced[port] if port < len(produced) else UNKNOWN)
        entry = ops.get(node.op)
        if entry is None or entry.shape is None:
            unknown[node.op] += 1
            table[node.name] = _declared_shapes(node)
            continue
        extra = {"pinned": pinned[node.name]} if node.name in pinned else {}
        table[node.name] = infer_node(entry, node_context(node, inputs, value_limit, **extra))
    for node in cyclic:
        table[node.name] = _UNKNOWN_OUTPUTS
    return Shapes(table, dict(unknown), [n.name for n in order])


def format_shapes(graph, shapes: Shapes | None = None, *, values: bool = True) -> str:
    """A table of every node's outputs (``inspect --shapes``): tensor, op, dtype[shape], value."""
    shapes = shapes if shapes is not None else infer_shapes(graph)
    rows = []
    for node in graph.nodes:
        outputs = shapes.outputs(node) if node.name in shapes._table else []
        if not outputs:
            rows.append((node.name, node.op, "-" if ops.get(node.op) else "?", ""))
        for port, info in enumerate(outputs):
            tensor = node.name if port == 0 else f"{node.name}:{port}"
            rows.append((tensor, node.op, info.describe(), _value_text(info) if values else ""))
    width = [max((len(r[k]) for r in rows), default=0) for k in range(3)]
    lines = [f"{'tensor':<{width[0]}}  {'op':<{width[1]}}  {'type':<{width[2]}}  value".rstrip()]
    lines += [f"{t:<{width[0]}}  {o:<{width[1]}}  {s:<{width[2]}}  {v}".rstrip()
              for t, o, s, v in rows]
    if shapes.unknown_ops:
        lines.append("unknown ops (outputs unknown): " + ", ".join(
            f"{op} x{n}" for op, n in sorted(shapes.unknown_ops.items())))
    return "\n".join(lines)


def _value_text(info: TensorInfo, limit: int = 8) -> str:
    elements = info.elements()
    if elements is None or info.value is not None and info.value.size > limit:
        return ""
    text = ", ".join("?" if e is None else str(e) for e in elements[:limit])
    return f"= [{text}]" if info.rank else f"= {text}"


__all__ = ["Shapes", "TensorInfo", "format_shape", "format_shapes", "infer_shapes"]
