"""Helpers and actions for rules/opencv.yaml: what a rule expression cannot say briefly.

Loaded by the rule file's ``python:`` key.  Nothing here names a model or a
node; op knowledge stays in the rule files, which decide where each helper
applies.  Helpers work on arrays, shapes and the edges of a match.
"""
from __future__ import annotations

import os

import numpy as np

from graphtool.attrs import Shape
from graphtool.attrs import encode as encode_attr
from graphtool.dtypes import as_dtype
from graphtool.errors import GraphtoolError
from graphtool.lang.capture import holds_constant
from graphtool.lang.functions import register_function, value_of
from graphtool.rewrite.actions import SHAPES_HANDOFF, register_action


# -- actions ----------------------------------------------------------------------------
@register_action("resolve_constant_switches")
def resolve_constant_switches(graph, ctx):
    """Cut the dead side of every Switch whose predicate is a constant, drop spent Merges.

    TF1 graphs route dropout and batch norm through tf.cond on a learning-phase
    flag; once that flag is its default Const, only the inference branch is live.
    """
    from graphtool.freeze.phase import BRANCH_OPS, prune_known_branches

    if BRANCH_OPS.isdisjoint(graph.ops()):
        return {"removed": [], "changed": []}
    graph_def = _wiring(graph)
    before = {n.name: list(n.input) for n in graph_def.node}
    prune_known_branches(graph_def)
    after = {n.name: list(n.input) for n in graph_def.node}
    gone = [name for name in before if name not in after]
    lost = [o for o in graph.outputs if o.split(":")[0] in gone]
    if lost:
        raise GraphtoolError(f"graph output(s) {', '.join(lost)} sit on a dead branch of a "
                             "constant Switch; choose outputs on the inference path")
    changed = []
    for name, inputs in after.items():
        if inputs != before[name]:
            graph.node(name).set_inputs(inputs)
            changed.append(name)
    if gone:
        graph.remove(gone)
    return {"removed": gone, "changed": changed}


_SHAPES_ATTR = "_output_shapes"
_SEEN = "annotate_output_shapes"  # ctx.memo key


@register_action("annotate_output_shapes")
def annotate_output_shapes(graph, ctx):
    """Record every fully known static shape in ``_output_shapes``, so ``shape(x)`` works.

    Rules that permute weights or check broadcasting need the shapes of
    computed tensors; nodes created later have none, so rules needing a shape
    simply do not fire on them.  Constants need no annotation: ``shape(c)``
    reads their tensor.

    Incremental: rewrites keep every tensor's value, so a shape once fully
    known stays true for as long as the same node exists.  Those shapes are
    remembered across the stages of a rewrite (``ctx.memo``), and a later run
    only infers the nodes created or still unknown since (recalling the
    remembered shapes of their producers), and writes the attr only where it
    is missing.
    """
    from graphtool.analysis.shapes import infer_shapes

    # Node -> its output infos (all fully known), or the op of a constant; kept only for
    # nodes still in the graph (a removed node held here would keep its NodeDef alive).
    earlier = ctx.memo.get(_SEEN, {})
    seen = ctx.memo[_SEEN] = {}
    # First what each node needs - nothing, its known shapes written, or inference - and
    # then, in graph order, the inference (only if some node needs it) and the writing.
    todo = []
    for node in graph.nodes:
        msg = node.proto
        mark = earlier.get(node)
        if mark is not None:
            if not isinstance(mark, str):
                seen[node] = mark
                if _SHAPES_ATTR not in msg.attr and not (
                        "value" in msg.attr and holds_constant(msg)):
                    todo.append((node, mark))  # its attr went: written again
                continue
            if mark == msg.op:
                seen[node] = mark  # the same constant as in an earlier run
                continue
        if "value" in msg.attr and holds_constant(msg):
            seen[node] = msg.op  # shape(c) of a constant reads its tensor
            continue
        todo.append((node, None))
    if any(infos is None for _, infos in todo):
        shapes = ctx.handoff.get(SHAPES_HANDOFF)  # a fold right before: its analysis holds
        if shapes is None:
            def recall(name):
                mark = seen.get(graph.get(name))
                return None if mark is None or isinstance(mark, str) else mark
            shapes = infer_shapes(graph, ctx.input_shapes, lazy=True, recall=recall)
        else:
            for node, mark in seen.items():
                if not isinstance(mark, str):
                    shapes.set_outputs(node.name, mark)
    changed = []
    # The shapes of a node's outputs -> their AttrValue, None unless all are fully known:
    # most nodes share a few shapes, so each is checked and encoded once.
    encoded: dict = {}
    with np.errstate(all="ignore"):
        for node, infos in todo:
            inferred = infos is None
            if inferred:
                infos = shapes.outputs(node)
            dims = tuple([i.shape for i in infos])
            value = encoded.get(dims, _UNSEEN)
            if value is _UNSEEN:
                value = encoded[dims] = _shapes_attr(dims)
            if value is None:
                continue
            if inferred:
                seen[node] = infos  # (an attr from the input graph is overwritten)
            msg = node.proto
            msg.attr[_SHAPES_ATTR].CopyFrom(value)
            changed.append(msg.name)
    return {"changed": changed}


_UNSEEN = object()


def _shapes_attr(dims: tuple):
    """The ``_output_shapes`` AttrValue of outputs shaped ``dims``; None when there are
    none or a shape is not fully known."""
    if not dims or any(d is None or None in d for d in dims):
        return None
    return encode_attr([Shape(tuple(d)) for d in dims], "list")


@register_action("drop_attr")
def drop_attr(graph, ctx, key: str):
    """Remove attr ``key`` from every node that has it."""
    changed = []
    for node in graph.nodes:
        msg = node.proto
        attrs = msg.attr
        if key in attrs:
            del attrs[key]
            changed.append(msg.name)
    return {"changed": changed}


def _wiring(graph):
    """A copy of the graph's names, ops, inputs and attrs without the large constants."""
    from graphtool.proto import GraphDef

    wiring = GraphDef()
    for node in graph.nodes:
        msg = node.proto
        copy = wiring.node.add(name=msg.name, op=msg.op, input=list(msg.input))
        for key, value in msg.attr.items():
            if value.WhichOneof("value") != "tensor" or len(value.tensor.tensor_content) <= 64:
                copy.attr[key].CopyFrom(value)
    return wiring


# -- computed values ------------------------------------------------------------------------
@register_function("dilate_kernel")
def dilate_kernel(kernel, rate_h, rate_w):
    """A (H, W, ...) kernel with rate - 1 zeros between neighbouring taps along H and W."""
    w = np.asarray(value_of(kernel))
    rate_h, rate_w = int(value_of(rate_h)), int(value_of(rate_w))
    if rate_h < 1 or rate_w < 1 or w.ndim < 2:
        raise GraphtoolError(f"cannot dilate a kernel shaped {list(w.shape)} by "
                             f"({rate_h}, {rate_w})")
    height, width = (w.shape[0] - 1) * rate_h + 1, (w.shape[1] - 1) * rate_w + 1
    out = np.zeros((height, width) + w.shape[2:], w.dtype)
    out[::rate_h, ::rate_w] = w
    return out


@register_function("dense_slice")
def dense_slice(node, data, part):
    """One of "begin", "end", "strides" of a StridedSlice, as plain per-dimension values.

    Every mask is applied (begin/end masks, ellipsis, new and shrunk axes), so the
    arrays have one entry per input dimension, non-negative begins and ends, and no
    mask is needed; a shrunk axis becomes a slice of length 1.  OpenCV honours only
    end_mask, and reads these arrays as they are.
    """
    spec = _slice_spec(node, data)
    index = {"begin": 0, "end": 1, "strides": 2}.get(str(part))
    if index is None:
        raise GraphtoolError(f"dense_slice: part must be begin, end or strides, not {part!r}")
    return np.array([entry[index] for entry in spec], np.int32)


def _slice_spec(node, data) -> list[tuple[int, int, int]]:
    """(begin, end, stride) per input dimension of the StridedSlice captured as ``node``."""
    begin, end, strides = (np.asarray(node.graph.node(t).tensor).reshape(-1).tolist()
                           for t in node.node.data_inputs[1:4])
    dims = list(data.static_shape() or ())
    if not dims or any(s <= 0 for s in strides):
        raise GraphtoolError("dense_slice needs the input's static shape and positive strides")
    masks = {key: int(node.node.attr(key, 0)) for key in (
        "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    real = sum(1 for i in range(len(begin))
               if not (masks["new_axis_mask"] >> i) & 1 and not (masks["ellipsis_mask"] >> i) & 1)
    out, d = [], 0
    for i in range(len(begin)):
        if (masks["ellipsis_mask"] >> i) & 1:
            for _ in range(len(dims) - real):
                out.append((0, dims[d], 1))
                d += 1
            continue
        if (masks["new_axis_mask"] >> i) & 1:
            continue
        size = dims[d]
        b = begin[i] + size if begin[i] < 0 else begin[i]
        if (masks["shrink_axis_mask"] >> i) & 1:
            out.append((b, b + 1, 1))
        else:
            b = 0 if (masks["begin_mask"] >> i) & 1 else min(max(b, 0), size)
            e = end[i] + size if end[i] < 0 else end[i]
            e = size if (masks["end_mask"] >> i) & 1 else min(max(e, 0), size)
            out.append((b, e, strides[i]))
        d += 1
    out.extend((0, size, 1) for size in dims[d:])
    return out


# -- replacements --------------------------------------------------------------------------
@register_function("forward_outputs_to_inputs")
def forward_outputs_to_inputs(edit, match):
    """Readers of output k of the matched root read its data input k instead."""
    node = edit.graph.node(match.root)
    for port, source in reversed(list(enumerate(node.data_inputs))):
        edit.replace_uses(node.output(port), source)


@register_function("store_in_typed_field")
def store_in_typed_field(edit, match, const):
    """Rewrite a constant's values into its typed ``*_val`` list (int_val for int32).

    OpenCV reads a Concat or Split axis with ``int_val().Get(0)`` only, so an
    axis stored in tensor_content (as folding writes it) reads out of bounds.
    """
    from graphtool.tensors import _VAL_FIELD

    node = const.node
    array = node.tensor
    tensor = node.proto.attr["value"].tensor
    field = _VAL_FIELD.get(as_dtype(tensor.dtype))
    if field not in ("int_val", "int64_val", "float_val", "double_val"):
        raise GraphtoolError(f"cannot store a {as_dtype(tensor.dtype)} constant in a typed list")
    tensor.ClearField("tensor_content")
    getattr(tensor, field).extend(array.reshape(-1).tolist())
    edit.mark_changed(node.name)


# -- the whole job -----------------------------------------------------------------------
def find_rules(name: str = "opencv.yaml") -> str:
    """Where a bundled rule file is: ``rules/NAME`` of the checkout this package is
    imported from (an editable install), else ``share/graphtool/rules/NAME`` under the
    installation prefix (``pip install .`` copies the rule files there); the checkout
    path when neither exists, for the error message."""
    import site
    import sys

    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "rules", name)
    if os.path.isfile(checkout):
        return checkout
    for prefix in (sys.prefix, sys.base_prefix, site.getuserbase()):
        installed = os.path.join(prefix, "share", "graphtool", "rules", name)
        if os.path.isfile(installed):
            return installed
    return checkout


RULES = find_rules()


def rewrite_for_opencv(source, out, *, pbtxt=None, rules=None, input_shapes=None, log=None):
    """Rewrite the frozen graph ``source`` with rules/opencv.yaml into ``out`` (+ ``pbtxt``).

    Input shapes come from the freeze sidecar next to ``source`` unless given.
    Returns the RewriteResult.  ``source`` is never overwritten.
    """
    from graphtool.emit.files import atomic_write
    from graphtool.emit.opencv_pbtxt import opencv_config
    from graphtool.load import load
    from graphtool.rewrite import load_rules, rewrite
    from graphtool.validate.signature import read_signature

    graph = load(source)
    if input_shapes is None:
        signature = read_signature(graph, source)
        input_shapes = {p.name: list(p.shape) for p in signature.inputs}
        graph.outputs = [p.tensor for p in signature.outputs]
    ruleset = rules if rules is not None and not isinstance(rules, (str, os.PathLike)) \
        else load_rules(rules or RULES)
    result = rewrite(graph, ruleset, input_shapes=input_shapes, log=log)
    protect = (os.fspath(source),)
    atomic_write(os.fspath(out), result.graph.serialize(), protect=protect)
    if pbtxt is not None:
        atomic_write(os.fspath(pbtxt), opencv_config(result.graph), protect=protect)
    return result
