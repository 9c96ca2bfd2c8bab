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
from graphtool.analysis.shapes import data_order, infer_shapes, node_context
from graphtool.dtypes import DType, to_numpy
from graphtool.errors import GraphtoolError
from graphtool.graph import split_ref
from graphtool.ops.evaluate import kernel_arguments, run_kernel
from graphtool.tensors import has_typed_values, shape_proto

DEFAULT_MAX_BYTES = 64 * 2**20
_ITEMSIZE: dict = {}


def fold_constants(graph, *, max_bytes: int = DEFAULT_MAX_BYTES, input_shapes=None) -> list[dict]:
    """Fold every foldable node of ``graph`` in place; returns one log entry per Const
    written: ``{"node", "op", "shape", "dtype"}`` (+ ``"from"`` for multi-output nodes)."""
    if max_bytes is None or int(max_bytes) < 0:
        raise GraphtoolError(f"max_bytes must be a size in bytes >= 0, got {max_bytes!r}")
    shapes = infer_shapes(graph, input_shapes, lazy=True)
    with np.errstate(all="ignore"):
        return _Folder(graph, int(max_bytes), shapes).run()


class _Folder:
    def __init__(self, graph, max_bytes: int, shapes):
        self.graph = graph
        self.max_bytes = max_bytes
        self.shapes = shapes
        self.outputs = {split_ref(o)[0] for o in graph.outputs}
        self.constants = {n.name for n in graph.nodes if _is_constant(n.op)}
        self.log: list[dict] = []

    def run(self) -> list[dict]:
        for node in data_order(self.graph):
            if not node.alive:
                continue
            entry = ops.get(node.op)
            if entry is not None and entry.foldable and self._inputs_known(node, entry):
                self._fold(node, entry)
        return self.log

    def _inputs_known(self, node, entry) -> bool:
        """Cheap first test, before any shape is computed: every input the kernel reads
        is a Const, and every other input has a fully known shape."""
        for index, text in enumerate(node.proto.input):
            if text.startswith("^"):
                break
            producer, port = split_ref(text)
            if port == 0 and producer in self.constants:
                continue
            if entry.reads_value(index) or not self.shapes[text].fully_known:
                return False
        return True

    # -- deciding ----------------------------------------------------------------
    def _used_ports(self, node) -> list[int]:
        """Data output ports that something reads (scans consumers: multi-output nodes only)."""
        ports = set()
        for user in self.graph.consumers(node.name):
            for text in user.data_inputs:
                producer, port = split_ref(text)
                if producer == node.name:
                    ports.add(port)
        return sorted(ports)

    def _fits(self, info) -> bool:
        if info.size is None or info.dtype is None:
            return False
        itemsize = _ITEMSIZE.get(info.dtype)
        if itemsize is None:
            try:
                itemsize = _ITEMSIZE[info.dtype] = to_numpy(info.dtype).itemsize
            except GraphtoolError:
                return False
        return info.size * itemsize <= self.max_bytes

    def _fold(self, node, entry) -> None:
        if node.name not in self.outputs and not self.graph.consumers(node.name):
            return  # nothing reads it
        infos = self.shapes.outputs(node)
        if len(infos) != 1 and node.name in self.outputs:
            return  # its outputs would change names
        wanted = [0] if len(infos) == 1 else self._used_ports(node)
        if not wanted or any(p >= len(infos) or not self._fits(infos[p]) for p in wanted):
            return
        values = [info.value for info in infos]
        if len(infos) == 1 and values[0] is None and entry.keeps_bytes:
            source = self._stored_input(node, infos[0])
            if source is not None and self._sole_reader(source, node):
                self._adopt(node, source, infos[0])
                return
            if source is not None:
                tensor = source.proto.attr["value"].tensor
                self._replace_in_place(node, infos[0], lambda: _store_copy(node, tensor, infos[0]))
                return
        if any(values[p] is None for p in wanted):
            computed = self._compute(node, entry, infos)
            if computed is None:
                return
            values = computed
        if any(values[p] is None for p in wanted):
            return
        if len(infos) == 1:
            self._replace_in_place(node, infos[0], lambda: node.set_tensor(values[0]))
        else:
            self._replace_ports(node, {p: values[p] for p in wanted}, infos)

    def _stored_input(self, node, info):
        """The Const feeding input 0, when its stored bytes can be reused as they are."""
        producer, port = split_ref(node.proto.input[0])
        if port != 0 or producer not in self.constants or not info.fully_known:
            return None
        source = self.graph.node(producer)
        tensor = source.proto.attr["value"].tensor
        if info.dtype is None or tensor.dtype != int(info.dtype) or has_typed_values(tensor) \
                or info.dtype == DType.string:
            return None
        return source

    def _compute(self, node, entry, infos):
        """Run the kernel on the values of the node's inputs; None when they are not known."""
        inputs, sources = [], []
        for index, text in enumerate(node.data_inputs):
            producer, port = split_ref(text)
            info = self.shapes[text]
            source = None
            if info.value is None and entry.reads_value(index):
                if port != 0 or producer not in self.constants:
                    return None  # decided before decoding any (possibly big) constant
                source = self.graph.node(producer)
            inputs.append(info)
            sources.append(source)
        values = [info.value if source is None else ops.get(source.op).kernel(
            node_context(source, [])) for info, source in zip(inputs, sources)]
        ctx = node_context(node, inputs, value_limit=2**62)
        args = kernel_arguments(entry, ctx, values)
        if args is None:
            return None
        return run_kernel(entry, ctx, args, infos)

    # -- rewriting -----------------------------------------------------------------
    def _replace_in_place(self, node, info, store) -> None:
        """Turn ``node`` into a Const; ``store()`` writes its value."""
        msg = node.proto
        producers, controls = _split_inputs(msg.input)
        op = msg.op
        msg.ClearField("attr")
        store()
        node.op = ops.CONST_OP
        self.constants.add(msg.name)
        node.set_inputs(controls)
        self._record(msg.name, op, info)
        self._drop_dead(node, producers)

    def _sole_reader(self, source, node) -> bool:
        """Whether ``node`` is the only reader of ``source`` (so its bytes can move, not copy)."""
        return source.name not in self.outputs and {
            n.name for n in self.graph.consumers(source.name)} == {node.name}

    def _adopt(self, node, source, info) -> None:
        """Fold a pass-through of a Const read only here by moving the Const under this name."""
        producers, controls = _split_inputs(node.proto.input)
        op = node.op
        self.graph.adopt(node, source)
        self.constants.discard(source.name)
        self.constants.add(node.name)
        node.proto.attr["value"].tensor.tensor_shape.CopyFrom(shape_proto(info.shape))
        if controls:
            node.set_inputs(list(node.inputs) + controls)
        self._record(node.name, op, info)
        self._drop_dead(node, [p for p in producers if p != source.name])

    def _replace_ports(self, node, values: dict[int, np.ndarray], infos) -> None:
        graph = self.graph
        producers, controls = _split_inputs(node.proto.input)
        created = []
        for port, value in sorted(values.items()):
            info = infos[port]._replace(value=None, partial=None)
            const = graph.add_const(value, graph.fresh_name(f"{node.name}/out_{port}"),
                                    dtype=info.dtype)
            const.set_inputs(controls)
            self.constants.add(const.name)
            self.shapes.set_outputs(const.name, [info])
            graph.replace_all_uses(f"{node.name}:{port}", const.name)
            created.append(const)
            self._record(const.name, node.op, info, source=node.name)
        for user in graph.consumers(node.name):  # control edges left on the old node
            user.set_inputs([("^" + created[0].name) if t == "^" + node.name else t
                             for t in user.inputs])
        graph.remove(node)
        self.constants.discard(node.name)
        for const in created:
            self._drop_dead(const, producers)

    def _drop_dead(self, node, producers: list[str]) -> None:
        """Remove Consts that fed the folded node and feed nothing else now."""
        inherited = []
        for name in producers:
            source = self.graph.get(name)
            if source is None or not source.alive or name in self.outputs:
                continue
            if name not in self.constants or self.graph.consumers(name):
                continue
            inherited += [c for c in source.control_inputs if c != node.name]
            self.graph.remove(source)
            self.constants.discard(name)
        for control in dict.fromkeys(inherited):
            if self.graph.get(control) is not None:
                node.add_control_input(control)

    def _record(self, name: str, op: str, info, source: str | None = None) -> None:
        entry = {"node": name, "op": op, "shape": list(info.shape), "dtype": str(info.dtype)}
        if source is not None:
            entry["from"] = source
        self.log.append(entry)


def _split_inputs(inputs) -> tuple[list[str], list[str]]:
    """(distinct data producers, control input strings) of a NodeDef's inputs."""
    producers, controls = {}, []
    for text in inputs:
        if text.startswith("^"):
            controls.append(text)
        else:
            producers[split_ref(text)[0]] = None
    return list(producers), controls


def _is_constant(op: str) -> bool:
    entry = ops.get(op)
    return entry is not None and entry.constant


def _store_copy(node, tensor, info) -> None:
    """Write a Const's stored tensor under a new shape (Identity, Reshape of a Const)."""
    value = node.proto.attr["value"].tensor
    value.CopyFrom(tensor)
    value.tensor_shape.CopyFrom(shape_proto(info.shape))
    node.proto.attr["dtype"].type = tensor.dtype


__all__ = ["DEFAULT_MAX_BYTES", "fold_constants"]
