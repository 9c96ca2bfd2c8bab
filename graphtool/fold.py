"""Constant folding without TensorFlow: replace computable nodes by Consts.

A node is folded when its op has a numpy kernel (``graphtool.ops``) and every
data input is a Const or has a value known from static shapes (``Shape`` of a
tensor of known shape, ...).  The result is written as a Const with
``tensor_content`` (the only form OpenCV reads) under the folded node's own
name, so its consumers stay wired; a multi-output node becomes one Const per
used output (``<name>/out_<port>``).  Consts that fed only folded nodes are
removed.  Stateful and random ops, inputs and unknown ops are never folded, and
no tensor larger than ``max_bytes`` is materialised.

Control inputs: the new Const keeps the folded node's control inputs and those
of the Consts it replaces.  Frozen inference graphs carry no control flow
(freeze removes it), so no extra anchors are added for shape-only inputs.
"""
from __future__ import annotations

import numpy as np

from graphtool import ops
from graphtool.analysis.shapes import infer_shapes, node_context, split_input, topological_order
from graphtool.dtypes import as_dtype, to_numpy
from graphtool.errors import GraphtoolError
from graphtool.ops.evaluate import kernel_arguments, run_kernel
from graphtool.tensors import shape_proto

DEFAULT_MAX_BYTES = 64 * 2**20


def fold_constants(graph, *, max_bytes: int = DEFAULT_MAX_BYTES, input_shapes=None) -> list[dict]:
    """Fold every foldable node of ``graph`` in place; returns one log entry per Const
    written: ``{"node", "op", "shape", "dtype"}`` (+ ``"from"`` for multi-output nodes)."""
    if max_bytes is None or int(max_bytes) < 0:
        raise GraphtoolError(f"max_bytes must be a size in bytes >= 0, got {max_bytes!r}")
    return _Folder(graph, int(max_bytes), infer_shapes(graph, input_shapes)).run()


class _Folder:
    def __init__(self, graph, max_bytes: int, shapes):
        self.graph = graph
        self.max_bytes = max_bytes
        self.shapes = shapes
        self.outputs = {split_input(o)[0] for o in graph.outputs}
        self.log: list[dict] = []

    def run(self) -> list[dict]:
        order, _ = topological_order(self.graph)
        for node in order:
            if node.alive:
                entry = ops.get(node.op)
                if entry is not None and entry.foldable:
                    self._fold(node, entry)
        return self.log

    # -- deciding ----------------------------------------------------------------
    def _used_ports(self, node) -> set[int] | None:
        """Data output ports that something reads; None when nothing reads the node."""
        consumers = self.graph.consumers(node.name)
        if not consumers and node.name not in self.outputs:
            return None
        ports = {0} if node.name in self.outputs else set()
        for user in consumers:
            for text in user.data_inputs:
                producer, port = split_input(text)
                if producer == node.name:
                    ports.add(port)
        return ports

    def _fits(self, info) -> bool:
        if info.size is None or info.dtype is None:
            return False
        try:
            itemsize = to_numpy(info.dtype).itemsize
        except GraphtoolError:
            return False
        return info.size * itemsize <= self.max_bytes

    def _fold(self, node, entry) -> None:
        ports = self._used_ports(node)
        if ports is None:
            return
        infos = self.shapes.outputs(node)
        if len(infos) != 1 and node.name in self.outputs:
            return  # its outputs would change names
        wanted = sorted(ports) if len(infos) != 1 else [0]
        if not wanted or any(p >= len(infos) or not self._fits(infos[p]) for p in wanted):
            return
        values = [info.value for info in infos]
        sources = {}
        if any(values[p] is None for p in wanted):
            computed = self._compute(node, entry, infos, sources)
            if computed is None:
                return
            values = computed
        if any(values[p] is None for p in wanted):
            return
        if len(infos) == 1:
            self._replace_in_place(node, values[0], sources)
        else:
            self._replace_ports(node, {p: values[p] for p in wanted})

    def _compute(self, node, entry, infos, sources):
        """Run the kernel on the values of the node's inputs; None when they are not known."""
        inputs, values = [], []
        for text in node.data_inputs:
            producer, port = split_input(text)
            info = self.shapes[text]
            inputs.append(info)
            value = info.value
            if value is None:
                source = self.graph.get(producer)
                source_entry = ops.get(source.op) if source is not None else None
                if source_entry is not None and source_entry.constant and port == 0:
                    value = source_entry.kernel(node_context(source, []))
                    sources[id(value)] = (value, source.proto.attr["value"].tensor)
            values.append(value)
        ctx = node_context(node, inputs, value_limit=2**62)
        args = kernel_arguments(entry, ctx, values)
        if args is None:
            return None
        return run_kernel(entry, ctx, args, infos)

    # -- rewriting -----------------------------------------------------------------
    def _replace_in_place(self, node, value, sources) -> None:
        producers = list(dict.fromkeys(split_input(t)[0] for t in node.data_inputs))
        controls = list(node.control_inputs)
        op = node.op
        msg = node.proto
        node.op = ops.CONST_OP
        for key in list(msg.attr):
            del msg.attr[key]
        _store(node, value, sources)
        node.set_inputs(["^" + c for c in controls])
        self._record(node.name, op, value)
        self._drop_dead(node, producers)

    def _replace_ports(self, node, values: dict[int, np.ndarray]) -> None:
        graph = self.graph
        controls = ["^" + c for c in node.control_inputs]
        producers = list(dict.fromkeys(split_input(t)[0] for t in node.data_inputs))
        created = []
        for port, value in sorted(values.items()):
            const = graph.add_const(value, graph.fresh_name(f"{node.name}/out_{port}"),
                                    dtype=self.shapes.outputs(node)[port].dtype)
            const.set_inputs(controls)
            self.shapes.set_outputs(const.name, [self.shapes.outputs(node)[port]._replace(
                value=None, partial=None)])
            graph.replace_all_uses(f"{node.name}:{port}", const.name)
            created.append(const)
            self._record(const.name, node.op, value, source=node.name)
        for user in graph.consumers(node.name):  # control edges left on the old node
            user.set_inputs([("^" + created[0].name) if t == "^" + node.name else t
                             for t in user.inputs])
        graph.remove(node)
        for const in created:
            self._drop_dead(const, producers)

    def _drop_dead(self, node, producers: list[str]) -> None:
        """Remove Consts that fed the folded node and feed nothing else now."""
        inherited = []
        for name in producers:
            source = self.graph.get(name)
            if source is None or not source.alive or name in self.outputs:
                continue
            entry = ops.get(source.op)
            if entry is None or not entry.constant or self.graph.consumers(name):
                continue
            inherited += [c for c in source.control_inputs if c != node.name]
            self.graph.remove(source)
        for control in dict.fromkeys(inherited):
            if self.graph.get(control) is not None:
                node.add_control_input(control)

    def _record(self, name: str, op: str, value, source: str | None = None) -> None:
        entry = {"node": name, "op": op, "shape": list(value.shape),
                 "dtype": str(as_dtype(value.dtype) if value.dtype != object else "string")}
        if source is not None:
            entry["from"] = source
        self.log.append(entry)


def _store(node, value: np.ndarray, sources) -> None:
    """Write ``value`` as the node's Const value; an unchanged buffer taken from another
    Const is copied as protobuf bytes instead of being re-encoded."""
    tensor = _same_bytes_source(value, sources)
    if tensor is None:
        node.set_tensor(value)
        return
    msg = node.proto
    msg.attr["value"].tensor.CopyFrom(tensor)
    msg.attr["value"].tensor.tensor_shape.CopyFrom(shape_proto(value.shape))
    msg.attr["dtype"].type = tensor.dtype


def _same_bytes_source(value: np.ndarray, sources):
    for source, tensor in sources.values():
        if (source.dtype == value.dtype and source.size == value.size and source.size
                and value.flags.c_contiguous and tensor.tensor_content
                and source.flags.c_contiguous
                and _address(source) == _address(value)):
            return tensor
    return None


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


__all__ = ["DEFAULT_MAX_BYTES", "fold_constants"]
