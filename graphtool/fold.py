"""Constant folding without TensorFlow: replace computable nodes by Consts.

A node is folded when its op has a numpy kernel (``graphtool.ops``) and every
data input is a Const, a folded node, or (for inputs whose value the op does not
read) has a fully known static shape.  Stateful and random ops, inputs and
unknown ops are never folded, and no tensor larger than ``max_bytes`` is
materialised.

It runs in two passes, so a chain such as a Keras 3 batch norm
(``Identity -> Reshape -> AddV2 -> Rsqrt -> Mul``) costs one Const, not one per
step:

1. plan: in data order, compute the value of every foldable node (numpy arrays;
   pass-throughs of a Const's stored bytes, like Identity and Reshape, stay
   references to those bytes);
2. rewrite: a folded node that something unfolded still reads (or a graph
   output) becomes a Const with ``tensor_content`` (the only form OpenCV reads)
   under its own name, so its consumers stay wired; a multi-output node becomes
   one Const per used output (``<name>/out_<port>``).  Folded nodes and Consts
   that only folded nodes read are removed in one batch.  A Const whose bytes a
   surviving pass-through reuses moves under the new name instead of being
   copied.

Control inputs: a new Const keeps the folded node's control inputs and those of
every node removed upstream of it (what it replaces waited for them).  Frozen
inference graphs carry no control flow (freeze removes it), so no extra anchors
are added for shape-only inputs.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from graphtool import ops
from graphtool.analysis.shapes import data_order, infer_shapes
from graphtool.dtypes import DType, dtype_name, to_numpy
from graphtool.errors import GraphtoolError
from graphtool.gcpause import paused_gc
from graphtool.graph import split_ref
from graphtool.ops.basic import const_tensor, tensor_info
from graphtool.ops.context import NodeCtx, TensorInfo, new_record
from graphtool.ops.evaluate import normalize_outputs, placeholder_array, run_kernel, settle
from graphtool.tensors import has_typed_values, header_value, make_const, to_array

DEFAULT_MAX_BYTES = 64 * 2**20
_ITEMSIZE: dict = {}


def fold_constants(graph, *, max_bytes: int = DEFAULT_MAX_BYTES, input_shapes=None,
                   shapes=None) -> list[dict]:
    """Fold every foldable node of ``graph`` in place; returns one log entry per folded
    value, in data order: ``{"node", "op", "shape", "dtype"}`` (+ ``"from"`` for the
    per-output Consts of a multi-output node).  Entries of folded nodes that only
    other folded nodes read name nodes that are gone afterwards.

    ``shapes``: a lazy ``infer_shapes(graph, input_shapes, lazy=True)`` to work with
    instead of a new one; it stays valid for the folded graph (folding keeps every
    surviving tensor's shape), so a caller can go on using it.
    """
    return _fold(graph, max_bytes, input_shapes, shapes, True)


class FoldReport(NamedTuple):
    """What a fold changed, by name (``fold_report``)."""
    created: list  # new Consts, one per read output of a multi-output node, in data order
    changed: list  # folded nodes that are Consts now under their own name, in data order
    removed: list  # nodes removed (folded nodes and Consts that only folded nodes read),
                   # about in graph order: sorting them costs a third of sorting a set
    folded: int    # values folded: the entries ``fold_constants`` would log


def fold_report(graph, shapes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> FoldReport:
    """``fold_constants`` for a caller that needs only the names of what changed (the
    rewrite action): no log entry is built, and the removed nodes are known without
    comparing the graph's names before and after."""
    return _fold(graph, max_bytes, None, shapes, False)


def _fold(graph, max_bytes, input_shapes, shapes, entries: bool):
    if max_bytes is None or int(max_bytes) < 0:
        raise GraphtoolError(f"max_bytes must be a size in bytes >= 0, got {max_bytes!r}")
    if shapes is None:
        shapes = infer_shapes(graph, input_shapes, lazy=True)
    with np.errstate(all="ignore"), paused_gc():
        planner = _Planner(graph, int(max_bytes), shapes, entries)
        planner.run()
        rewriter = _Rewriter(graph, planner)
        created = rewriter.run()
        result = rewriter.log(created) if entries else rewriter.report(created)
        # Freed while collection is still off: the collection that follows walks
        # only what survives (the log and what the graph holds).
        del planner, rewriter, shapes
    return result


class _Stored(NamedTuple):
    """A value that is a Const's stored bytes as they are, viewed with ``shape``."""
    source: str  # the Const's name
    tensor: object  # its TensorProto (it stays the same message when another node adopts it)
    shape: tuple
    reshaped: bool = False  # ``shape`` differs from the stored one

    def array(self) -> np.ndarray:
        tensor = self.tensor
        content = tensor.tensor_content
        dtype = to_numpy(tensor.dtype)
        if len(content) != math.prod(self.shape) * dtype.itemsize:
            return to_array(tensor).reshape(self.shape)  # empty, or corrupt: to_array says so
        return np.frombuffer(content, dtype).reshape(self.shape)


class _Fold(NamedTuple):
    """One folded node: its outputs and how it was wired."""
    node: object
    infos: list        # TensorInfo per output (small values filled in)
    values: list       # per output: ndarray, _Stored, or None for outputs nobody reads
    ports: list        # the outputs something reads
    producers: list    # distinct data producer names
    controls: list     # control input names


# -- pass 1: values ------------------------------------------------------------------------
class _OutOfOrder(Exception):
    """A node reads one that comes later in graph order (the planner then sorts)."""


class _Planner:
    """Also settles, as it goes, which nodes the rewrite removes: a fold or Const is
    dead once as many folded nodes read it by data edges alone as it has readers."""

    def __init__(self, graph, max_bytes: int, shapes, entries: bool = True):
        self.graph = graph
        self.entries = entries  # whether to build log entries
        self.max_bytes = max_bytes
        self.shapes = shapes
        self.limit = shapes.value_limit
        self.outputs = {split_ref(o)[0] for o in graph.outputs}
        # Nodes with control inputs (seldom any): the Consts among them hold some.
        self.waiting = {node.name for node in graph.controlled()}
        self._reset()

    def _reset(self) -> None:
        self.constants: dict = {}  # name -> Node, for nodes of constant ops (Const)
        self.headers: dict = {}  # Const name -> (TensorInfo, TensorProto), read once
        self.folds: dict[str, _Fold] = {}
        self.readers: dict[str, int] = {}  # fold or Const a fold reads -> nodes reading it
        self.reads: dict[str, int] = {}  # producer -> folded nodes reading it by data edges only
        # folds and Consts that only folded nodes read, as they die: about graph order
        self.dead: dict[str, None] = {}
        self.held: dict[str, list] = {}  # Const a fold reads -> its control inputs, if any
        self.controlled = False  # whether a fold has control inputs
        # per fold in data order: its entry, or (name, op) if multi-output; None: no log
        self.log: list | None = [] if self.entries else None
        self.visited: set[str] = set()  # foldable nodes seen so far that did not fold

    def run(self) -> dict[str, _Fold]:
        graph = self.graph
        try:  # frozen graphs list producers first: no ordering pass needed
            # names and ops as lists: no NodeDef read for the nodes that never fold
            self._pass(zip(graph.names(), graph.nodes, graph.ops()), strict=True)
        except _OutOfOrder:
            self._reset()
            self._pass(((node.name, node, node.op) for node in data_order(graph)), strict=False)
        return self.folds

    def _pass(self, nodes, strict: bool) -> None:
        """``nodes``: (name, Node, op) in data order."""
        table, constants, attempt = ops.OPS, self.constants, self._try
        folds, visited = self.folds, self.visited
        kinds: dict = {}  # op -> _CONSTANT, its entry when foldable, else None
        for name, node, op in nodes:
            kind = kinds.get(op, _UNSEEN)
            if kind is _UNSEEN:
                entry = table.get(op)
                kind = kinds[op] = None if entry is None else _CONSTANT if entry.constant \
                    else entry if entry.foldable else None
            if kind is None:
                continue
            if kind is _CONSTANT:
                constants[name] = node
            else:
                attempt(name, node, kind, strict)
                if name not in folds:
                    visited.add(name)

    def _try(self, name, node, entry, strict: bool) -> None:
        msg = node.proto
        folds, constants, headers = self.folds, self.constants, self.headers
        controls, refs, inputs, producers = [], [], [], []
        for text in msg.input[:]:  # a list: a upb field ends its iteration with an IndexError
            if text.startswith("^"):
                controls.append(text[1:])
                continue
            if ":" in text:
                producer, port = split_ref(text)
            else:
                producer, port = text, 0
            # Cheap test first, before any shape is computed: every input the kernel
            # reads is known, every other input has a fully known shape.
            fold = folds.get(producer)
            if fold is not None and port < len(fold.values) and fold.values[port] is not None:
                inputs.append(fold.infos[port])
            elif port == 0 and producer in constants:
                inputs.append((headers.get(producer) or self._header(producer))[0])
            else:
                if strict and producer not in self.visited and producer not in folds \
                        and producer != name:
                    self._check_order(producer)
                if entry.reads_value(len(refs)):
                    return
                info = self.shapes[text]
                if not info.fully_known:
                    return
                inputs.append(info)
            refs.append((producer, port))
            if producer not in producers:
                producers.append(producer)
        n_readers = self.graph.reader_count(name)
        if not n_readers and name not in self.outputs:
            return  # nothing reads it
        source = inputs[0] if inputs else None
        if entry.identity and source is not None and source.dtype is not None:
            # Its input as it is: that input's TensorInfo (small value included) and
            # value, without a Ctx, a shape function or a second look at the value.
            if not self._fits(source):
                return
            producer, port = refs[0]
            fold = folds.get(producer)
            values = [fold.values[port] if fold is not None else self._stored(producer)]
            infos = [source if source.partial is None
                     else new_record(TensorInfo, (source.dtype, source.shape, source.value, None))]
            self._record(name, entry, node, infos, values, _PORT_0, producers, controls, n_readers)
            return
        given = _given_dims(entry, inputs) if entry.dims_input is not None else None
        if given is not None:
            ctx, infos = None, [given]
        else:
            ctx = NodeCtx(msg, inputs, self.limit)
            result = entry.shape(ctx)
            if type(result) is TensorInfo:
                infos = [settle(result) if result.partial is not None else result]
            else:
                infos = [settle(i) for i in normalize_outputs(result)]
        if len(infos) == 1:
            if not self._fits(infos[0]):
                return
            ports = _PORT_0
        elif name in self.outputs:
            return  # its outputs would change names
        else:
            ports = _used_ports(self.graph, name)
            if not ports:
                return
            for port in ports:
                if port >= len(infos) or not self._fits(infos[port]):
                    return
        values = self._values(entry, msg, ctx, inputs, infos, refs, ports)
        if values is None:
            return
        for port in ports:
            if values[port] is None:
                return
        limit = self.limit
        for index, value in enumerate(values):  # what shape inference would give
            info = infos[index]
            if info.value is None and value is not None and info.size <= limit:
                infos[index] = new_record(TensorInfo, (info.dtype, info.shape, _small_value(value),
                                                  info.partial))
        self._record(name, entry, node, infos, values, ports, producers, controls, n_readers)

    def _record(self, name, entry, node, infos, values, ports, producers, controls,
                n_readers: int) -> None:
        """Remember a folded node and its log entry; its output infos go to the shape
        analysis too.  Producers that only folded nodes read are dead from here on."""
        self.shapes.give_outputs(name, infos)
        self.folds[name] = new_record(_Fold, (node, infos, values, ports, producers, controls))
        self.readers[name] = n_readers
        log = self.log
        if len(infos) == 1:
            if log is not None:
                log.append(_entry(name, entry.name, infos[0]))
        else:  # its outputs become Consts of their own
            self.dead[name] = None
            if log is not None:
                log.append((name, entry.name))
        if controls:
            self.controlled = True
        reads, readers, outputs = self.reads, self.readers, self.outputs
        for producer in producers:
            if not controls or producer not in controls:
                count = reads[producer] = reads.get(producer, 0) + 1
                if count == readers.get(producer) and producer not in outputs:
                    self.dead[producer] = None

    def _check_order(self, producer: str) -> None:
        """An input whose producer comes later in the graph could still become known."""
        node = self.graph.get(producer)
        entry = ops.OPS.get(node.op) if node is not None else None
        if entry is not None and producer not in self.constants and (
                entry.constant or entry.foldable):
            raise _OutOfOrder(producer)

    def _fits(self, info) -> bool:
        shape, dtype = info.shape, info.dtype
        if shape is None or None in shape or dtype is None:
            return False
        itemsize = _ITEMSIZE.get(dtype)
        if itemsize is None:
            try:
                itemsize = _ITEMSIZE[dtype] = to_numpy(dtype).itemsize
            except GraphtoolError:
                return False
        return math.prod(shape) * itemsize <= self.max_bytes

    def _values(self, entry, msg, ctx, inputs, infos, refs, ports) -> list | None:
        """Output values (``_try`` checked that the outputs fit, so their shapes are
        fully known).  ``ctx``: the node's, None when no shape function ran."""
        if entry.keeps_bytes and len(infos) == 1:
            info, source = infos[0], inputs[0]
            if info.dtype is not None and info.dtype == source.dtype and info.fully_known:
                producer, port = refs[0]
                fold = self.folds.get(producer)
                value = fold.values[port] if fold is not None else self._stored(producer)
                if type(value) is not _Stored:
                    return [value.reshape(info.shape)]
                if info.value is None and source.value is not None and info.size <= self.limit:
                    # the small value shape inference knows: no second decoding of the bytes
                    small = _small_value(source.value.reshape(info.shape))
                    infos[0] = new_record(TensorInfo, (info.dtype, info.shape, small, info.partial))
                if value.shape == info.shape:
                    return [value]
                return [new_record(_Stored, (value.source, value.tensor, info.shape, True))]
        for port in ports:
            if infos[port].value is None:
                break
        else:
            return [info.value for info in infos]  # the shape function knew them
        if ctx is None:
            ctx = NodeCtx(msg, inputs, self.limit)
        args, reads = [], entry.value_inputs  # None: the kernel reads every input's value
        for index, info in enumerate(inputs):
            if reads is not None and index not in reads:
                value = placeholder_array(info)
                if value is None:
                    return None
            else:
                value = info.value
                if value is None:
                    value = self._value(*refs[index])
            args.append(value)
        return run_kernel(entry, ctx, args, infos)

    def _value(self, producer: str, port: int) -> np.ndarray:
        """The value of a known input as an array."""
        fold = self.folds.get(producer)
        if fold is not None:
            value = fold.values[port]
            return value.array() if type(value) is _Stored else value
        info, tensor = self._header(producer)
        return header_value(tensor, info.dtype, info.shape)

    def _header(self, name: str) -> tuple:
        """TensorInfo and TensorProto of a Const, read from its NodeDef once however many
        nodes read it (the planner's Consts skip the shape analysis's per-node steps)."""
        found = self.headers.get(name)
        if found is None:
            msg = self.constants[name].proto
            tensor = const_tensor(msg)
            found = self.headers[name] = (tensor_info(tensor, self.limit), tensor)
            self.readers[name] = self.graph.reader_count(name)
            if name in self.waiting:  # a Const can only have control inputs
                held = [t[1:] for t in msg.input[:] if t.startswith("^")]
                if held:
                    self.held[name] = held
        return found

    def _stored(self, producer: str):
        """A Const's value as a _Stored when its bytes can be reused as they are, else
        as an array."""
        info, tensor = self._header(producer)
        if info.dtype != DType.string and not has_typed_values(tensor, info.dtype):
            return new_record(_Stored, (producer, tensor, info.shape, False))
        return header_value(tensor, info.dtype, info.shape)


_PORT_0 = [0]
_UNSEEN = object()
_CONSTANT = object()


def _small_value(value) -> np.ndarray:
    """A small value as a read-only array (TensorInfo values are shared; kernels, which
    get such values from shape inference too, never write to their inputs)."""
    array = value.array() if type(value) is _Stored else value
    array.setflags(write=False)  # cheaper than through the flags object
    return array


def _given_dims(entry, inputs: list) -> TensorInfo | None:
    """Output 0 of an op whose ``dims_input`` lists its dims (Reshape), when they are all
    given and hold input 0's elements; else None, and the shape function decides."""
    index = entry.dims_input
    if index >= len(inputs):
        return None
    source, value = inputs[0], inputs[index].value
    if value is None or value.ndim != 1 or source.dtype is None:
        return None
    dims = tuple(value.tolist())
    if dims and min(dims) < 0 or math.prod(dims) != source.size:
        return None
    return new_record(TensorInfo, (source.dtype, dims, None, None))


def _used_ports(graph, name: str) -> list[int]:
    """Data output ports of ``name`` that its readers read (multi-output nodes only)."""
    ports = set()
    for user in graph.readers(name):
        for text in graph.get(user).proto.input:
            if not text.startswith("^"):
                producer, port = split_ref(text)
                if producer == name:
                    ports.add(port)
    return sorted(ports)


# -- pass 2: rewriting -------------------------------------------------------------------
class _Rewriter:
    def __init__(self, graph, planner: _Planner):
        self.graph = graph
        self.folds = planner.folds
        self.constants = planner.constants
        self.outputs = planner.outputs
        self.readers = planner.readers
        self.dead = planner.dead
        self.entries = planner.log
        self.renamed: dict[str, str] = {}  # multi-output node -> its first new Const
        # Without control edges around the folds (most graphs) there is nothing to carry.
        self.controls = self._controls(planner.held) \
            if planner.controlled or planner.held else {}

    def run(self) -> dict[str, list]:
        """Rewrites the graph; returns the new Consts of each multi-output node."""
        if not self.folds:
            return {}
        dead, controls = self.dead, self.controls
        created = self._split_multi_output()
        doomed = [c for consts in created.values() for c in consts if self._unread(c.name)]
        adopters, donors = [], set()
        cleared = []  # folded nodes that stay without inputs: cleared with the removal
        for name, fold in self.folds.items():
            if name in dead:  # multi-output folds included
                continue
            value, node = fold.values[0], fold.node
            source = value.source if type(value) is _Stored else None
            if source is not None and source in dead and source not in donors:
                donors.add(source)
                if fold.producers == [source] and self.readers[source] == 1:
                    self._adopt(name, fold, source)  # Identity(Const): at once
                else:  # the donor still has readers to remove first
                    adopters.append((name, fold))
                    cleared.append(name)
                continue
            msg = node.proto
            msg.ClearField("attr")
            node.op = ops.CONST_OP  # through the Node, before make_const: the graph hears of it
            if isinstance(value, _Stored):  # copy the stored bytes under the new shape
                tensor = msg.attr["value"].tensor
                tensor.CopyFrom(value.tensor)
                _set_dims(tensor, value.shape)
                msg.attr["dtype"].type = tensor.dtype
            else:
                make_const(msg, value, fold.infos[0].dtype)
            refs = self._control_refs(controls[name]) if name in controls else None
            if refs:
                node.set_inputs(refs)
            else:
                cleared.append(name)
        doomed.extend([name for name in dead if name not in donors])  # in graph order, by name
        self.graph.remove_batch(doomed, cleared)
        for name, fold in adopters:
            self._adopt(name, fold, fold.values[0].source)
        return created

    def _unread(self, name: str) -> bool:
        """Whether only folded nodes read ``name``, and through data edges only."""
        folds = self.folds
        for user in self.graph.readers(name):
            fold = folds.get(user)
            if fold is None or fold.controls and name in fold.controls:
                return False
        return name not in self.outputs

    def _controls(self, held: dict) -> dict[str, list[str]]:
        """The control inputs of each folded node plus those of the removed nodes it
        replaces (``held``: the Consts' own), for the nodes that have any.  One pass in
        data order: a node's producers are settled before it."""
        dead, controls = self.dead, {c: inputs for c, inputs in held.items() if c in self.dead}
        for name, fold in self.folds.items():
            merged = dict.fromkeys(fold.controls) if fold.controls else None
            for producer in fold.producers:
                inherited = controls.get(producer) if producer in dead else None
                if inherited:
                    merged = merged if merged is not None else {}
                    merged.update((c, None) for c in inherited if c != name)
            if merged:
                controls[name] = list(merged)
        return controls

    def _control_refs(self, names) -> list[str]:
        refs = []
        for name in names:
            name = self.renamed.get(name, name)
            if self.graph.get(name) is not None:
                refs.append("^" + name)
        return refs

    def _split_multi_output(self) -> dict[str, list]:
        """One Const per read output of each folded multi-output node; readers rewired."""
        graph, created = self.graph, {}
        for name, fold in self.folds.items():
            if len(fold.infos) == 1:
                continue
            consts = created[name] = []
            for port in fold.ports:
                value = fold.values[port]
                array = value.array() if isinstance(value, _Stored) else value
                const = graph.add_const(array, graph.fresh_name(f"{name}/out_{port}"),
                                        dtype=fold.infos[port].dtype)
                graph.replace_all_uses(f"{name}:{port}", const.name)
                consts.append(const)
            for user in graph.consumers(name):  # control edges left on the old node
                user.set_inputs([("^" + consts[0].name) if t == "^" + name else t
                                 for t in user.inputs])
            self.renamed[name] = consts[0].name
            for const in consts:
                const.set_inputs(self._control_refs(self.controls.get(name, ())))
        return created

    def _adopt(self, name: str, fold, donor: str) -> None:
        """The folded pass-through takes over its source Const's NodeDef (no copy), and
        the control inputs ``_controls`` found (the donor's own included)."""
        node, value = fold.node, fold.values[0]
        self.graph.adopt(node, self.constants[donor])
        if value.reshaped:
            _set_dims(value.tensor, value.shape)
        controls = self.controls
        if controls:
            inherited, own = controls.get(donor, []), controls.get(name, [])
            if inherited or own:
                refs = self._control_refs(list(dict.fromkeys(inherited + own)))
                if refs:
                    node.set_inputs(refs)

    def report(self, created: dict) -> FoldReport:
        dead = self.dead
        new = [const.name for consts in created.values() for const in consts]
        changed = [name for name in self.folds if name not in dead]  # multi-output: dead
        singles = len(self.folds) - len(created)
        return new_record(FoldReport, (new, changed, list(dead), singles + len(new)))

    def log(self, created: dict) -> list[dict]:
        """The planner's entries, with one per new Const for each multi-output node."""
        if not created:
            return self.entries
        log = []
        for item in self.entries:
            if type(item) is dict:
                log.append(item)
                continue
            name, op = item
            fold = self.folds[name]
            for port, const in zip(fold.ports, created[name]):
                log.append(dict(_entry(const.name, op, fold.infos[port]), **{"from": name}))
        return log


def _set_dims(tensor, shape: tuple) -> None:
    dims = tensor.tensor_shape.dim
    del dims[:]
    for size in shape:
        dims.add(size=size)


def _entry(name: str, op: str, info) -> dict:
    return {"node": name, "op": op, "shape": list(info.shape), "dtype": dtype_name(info.dtype)}


__all__ = ["DEFAULT_MAX_BYTES", "FoldReport", "fold_constants", "fold_report"]
