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

import numpy as np

from graphtool import ops
from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.graph import split_ref
from graphtool.ops.context import UNKNOWN, VALUE_LIMIT, Ctx, NodeCtx, TensorInfo, format_shape
from graphtool.ops.evaluate import infer_node

# The Placeholder attr that input shapes pin.
_INPUT_SHAPE_ATTR = "shape"
_MISSING = object()


class Shapes(Mapping):
    """``"node:port"`` -> TensorInfo for every tensor; ``"node"`` means port 0.

    Entries are computed on first use (producers first), so asking for one
    tensor costs only its upstream; iterating computes everything.
    """

    def __init__(self, graph, pinned: dict, value_limit: int = VALUE_LIMIT, recall=None):
        self._graph = graph
        self._pinned = pinned
        self._limit = value_limit
        self._table: dict[str, list[TensorInfo]] = {}
        # name -> outputs computed before (None if not), asked before computing a node that
        # is needed as a producer: a caller that remembers outputs across graph edits.
        self._recall = recall
        self.unknown_ops: Counter = Counter()  # op type -> node count, for ops without an entry
        self.order: list[str] = []  # node names in the order computed: producers first

    @property
    def value_limit(self) -> int:
        """Tensors up to this many elements carry their values."""
        return self._limit

    # -- lookups ---------------------------------------------------------------------
    def __getitem__(self, tensor: str) -> TensorInfo:
        found = self._table.get(tensor)  # fast path: a plain node name already computed
        if found:
            return found[0]
        name, port = split_ref(str(tensor))
        if name.startswith("^"):
            raise KeyError(tensor)
        try:
            return self.output(name, port)
        except KeyError:
            raise KeyError(tensor) from None

    def __iter__(self):
        self.compute_all()
        for name, outputs in self._table.items():
            for port in range(len(outputs)):
                yield f"{name}:{port}"

    def __len__(self) -> int:
        self.compute_all()
        return sum(len(o) for o in self._table.values())

    def outputs(self, node) -> list[TensorInfo]:
        """TensorInfos of all outputs of a node (a Node or a name)."""
        if isinstance(node, str):
            name, known = node, None
        else:
            name, known = node.name, node
        found = self._table.get(name)
        if found is None:
            if known is None:
                known = self._graph.get(name)
                if known is None:
                    raise GraphtoolError(f"no node named {name!r} in the graph"
                                         + did_you_mean(name, self._table))
            found = self._compute(known)
        return list(found)

    def output(self, name: str, port: int = 0) -> TensorInfo:
        """TensorInfo of output ``port`` of node ``name`` (``shapes[f"{name}:{port}"]``
        without parsing the reference)."""
        outputs = self._table.get(name)
        if outputs is None:
            node = self._graph.get(name)
            if node is None:
                raise KeyError(name)
            outputs = self._compute(node)
        if port < len(outputs):
            return outputs[port]
        if isinstance(outputs, _UnknownOutputs):
            return UNKNOWN
        raise KeyError(f"{name}:{port}")

    def set_outputs(self, name: str, infos: list[TensorInfo]) -> None:
        """Record the outputs of a node added after the analysis ran."""
        self._table[name] = list(infos)

    def give_outputs(self, name: str, infos: list[TensorInfo]) -> None:
        """``set_outputs`` taking ``infos`` as it is: the caller leaves that list alone."""
        self._table[name] = infos

    def shape(self, tensor: str):
        return self[tensor].shape

    def dtype(self, tensor: str):
        return self[tensor].dtype

    def value(self, tensor: str):
        return self[tensor].value

    def compute_all(self) -> "Shapes":
        with np.errstate(all="ignore"):
            for node in self._graph.nodes:
                if node.name not in self._table:
                    self._walk(node.name)
        return self

    # -- computing ---------------------------------------------------------------------
    def _compute(self, node) -> list[TensorInfo]:
        """Outputs of a node not in the table yet (and of whatever it needs)."""
        msg = node.proto
        name = msg.name
        inputs = msg.input[:]
        if not inputs:  # a source (Const): no walk
            found = self._table[name] = self._outputs_of(node, msg, [])
            self.order.append(name)
            return found
        # The input infos in one pass over the inputs, while every producer is known
        # already (callers going in graph order) or needs no walk; else the walk.
        table = self._table
        infos = []
        for text in inputs:
            if text.startswith("^"):
                break
            producer, port = split_ref(text) if ":" in text else (text, 0)
            produced = table.get(producer)
            if produced is None:
                produced = self._unwalked(producer)
                if produced is None:
                    self._walk(name)  # lazy callers silence numpy warnings around their loop
                    return table[name]
            infos.append(produced[port] if port < len(produced) else UNKNOWN)
        found = table[name] = self._outputs_of(node, msg, infos)
        self.order.append(name)
        return found

    def _unwalked(self, name: str) -> list[TensorInfo] | None:
        """Outputs of a producer missing from the table that need no walk - recalled, or
        a source (a Const) computed now - else None."""
        if self._recalled(name):
            return self._table[name]
        source = self._graph.get(name)
        if source is None or source.proto.input:
            return None
        return self._compute(source)

    def _walk(self, name: str, refs: list | None = None) -> None:
        """Compute ``name`` (whose data inputs ``refs`` may be parsed already) and whatever
        it needs, producers first, without recursion."""
        table, graph = self._table, self._graph
        stack, waiting, parsed = [name], set(), {} if refs is None else {name: refs}
        while stack:
            current = stack[-1]
            if current in table:
                stack.pop()
                continue
            node = graph.get(current)
            if node is None:
                table[current] = _UNKNOWN_OUTPUTS
                stack.pop()
                continue
            refs = parsed.get(current)
            if refs is None:
                refs = parsed[current] = _data_refs(node.proto.input)
            missing = [p for p, _ in refs if p not in table and not self._recalled(p)]
            if missing and current not in waiting:
                waiting.add(current)
                stack.extend(missing)
                continue
            stack.pop()
            # Producers still missing after their turn sit on a cycle with this node.
            table[current] = _UNKNOWN_OUTPUTS if missing else self._infer(node, refs)
            self.order.append(current)

    def _recalled(self, name: str) -> bool:
        """Whether the outputs of ``name`` were recalled into the table."""
        if self._recall is None:
            return False
        found = self._recall(name)
        if found is None:
            return False
        self._table[name] = found
        return True

    def _infer(self, node, refs) -> list[TensorInfo]:
        table = self._table
        inputs = []
        for producer, port in refs:
            produced = table.get(producer, _UNKNOWN_OUTPUTS)
            inputs.append(produced[port] if port < len(produced) else UNKNOWN)
        return self._outputs_of(node, node.proto, inputs)

    def _outputs_of(self, node, msg, inputs: list[TensorInfo]) -> list[TensorInfo]:
        """Outputs of ``node`` (NodeDef ``msg``) from the infos of its data inputs."""
        op = msg.op
        entry = ops.OPS.get(op)
        if entry is None or entry.shape is None:
            self.unknown_ops[op] += 1
            return _declared_shapes(node)
        name = msg.name
        if name in self._pinned:
            return infer_node(entry, node_context(node, inputs, self._limit,
                                                  pinned=self._pinned[name]))
        if entry.node_info is not None:
            return [entry.node_info(msg, self._limit)]
        return infer_node(entry, NodeCtx(msg, inputs, self._limit))


def _data_refs(inputs) -> list[tuple[str, int]]:
    """(producer, port) of each data input of a NodeDef's input list."""
    refs = []
    for text in inputs[:]:
        if text.startswith("^"):
            break
        refs.append(split_ref(text) if ":" in text else (text, 0))  # most are plain names
    return refs


def _data_producers(node) -> list[str]:
    producers = []
    for text in node.proto.input[:]:
        if text.startswith("^"):
            break
        producers.append(split_ref(text)[0])
    return producers


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
        name = split_ref(str(key))[0]
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


def data_order(graph) -> list:
    """Nodes with every data producer before its consumers (graph order where it
    already is; nodes on cycles come last)."""
    nodes = graph.nodes
    by_name = {node.name: node for node in nodes}
    seen: set[str] = set()
    for node in nodes:
        if any(p not in seen and p in by_name for p in _data_producers(node)):
            break
        seen.add(node.name)
    else:
        return nodes  # already in order, as frozen graphs usually are
    placed: set[str] = set()
    order = []
    for node in nodes:
        if node.name in placed:
            continue
        stack, waiting = [node], set()
        while stack:
            current = stack[-1]
            name = current.name
            if name in placed:
                stack.pop()
                continue
            missing = [by_name[p] for p in _data_producers(current)
                       if p in by_name and p not in placed]
            if missing and name not in waiting:
                waiting.add(name)
                stack.extend(missing)
                continue
            stack.pop()
            placed.add(name)
            order.append(current)
    return order


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
    if pinned is _MISSING:
        return NodeCtx(node.proto, inputs, value_limit)
    return NodeCtx(node.proto, inputs, value_limit, _INPUT_SHAPE_ATTR, pinned)


def infer_shapes(graph, input_shapes=None, *, value_limit: int = VALUE_LIMIT,
                 lazy: bool = False, recall=None) -> Shapes:
    """Static dtype/shape (and small known values) of every tensor in ``graph``.

    ``input_shapes`` maps Placeholder names to shapes (None or -1 for unknown
    dims) and overrides their ``shape`` attrs, e.g. the shapes in a freeze sidecar.
    ``lazy=True`` computes entries only when asked for (and reports inconsistent
    shapes only there; wrap lookups in ``np.errstate(all="ignore")`` to silence
    numpy warnings from small constant computations); otherwise the whole graph
    is checked now.  ``recall(name)`` gives the outputs of a node computed before (or
    None), trusted instead of computing them again.
    """
    shapes = Shapes(graph, _pinned_shapes(graph, input_shapes), value_limit, recall)
    return shapes if lazy else shapes.compute_all()


def format_shapes(graph, shapes: Shapes | None = None, *, values: bool = True) -> str:
    """A table of every node's outputs (``inspect --shapes``): tensor, op, dtype[shape], value."""
    shapes = shapes if shapes is not None else infer_shapes(graph)
    rows = []
    for node in graph.nodes:
        outputs = shapes.outputs(node)
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
