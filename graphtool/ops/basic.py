"""Graph plumbing: constants, inputs, identities, no-ops and ops that must never fold."""
from __future__ import annotations

import math

import numpy as np

from graphtool.dtypes import DType, as_dtype
from graphtool.errors import GraphtoolError
from graphtool.ops.context import CannotEvaluate, Ctx, TensorInfo, new_record
from graphtool.ops.registry import family
from graphtool.ops.shapefns import as_dims, dims_operand, merge_shapes, out, same_as, unknown_rank
from graphtool.tensors import decode, shape_of, to_array

define = family("basic")


def _static_shape(shape) -> tuple | None:
    """A shape attr (-1 for unknown dims) as a static shape (None for unknown dims)."""
    if shape is None:
        return None
    return tuple(None if d is None or d < 0 else int(d) for d in shape)


def _const_info(ctx: Ctx) -> TensorInfo:
    raw = ctx.raw_attr("value")
    if raw is None:  # evaluated outside a graph: the value comes decoded
        value = np.asarray(ctx.attr("value"))
        return out(as_dtype(ctx.attr("dtype")), value.shape, value)
    return tensor_info(raw.tensor, ctx.value_limit)


def tensor_info(tensor, value_limit: int) -> TensorInfo:
    """Dtype and shape of a TensorProto from its header; the value is decoded only
    for tensors up to ``value_limit`` elements (every Const passes through here)."""
    dtype = as_dtype(tensor.dtype)
    shape = shape_of(tensor.tensor_shape)
    if shape is None or math.prod(shape) > value_limit:
        return new_record(TensorInfo, (dtype, shape, None, None))
    if shape and dtype not in _INTEGERS:  # small weights: seldom twice the same
        np_dtype = _FLOATS.get(dtype)
        if np_dtype is not None:
            content = tensor.tensor_content
            if content and len(content) == math.prod(shape) * np_dtype.itemsize:
                # read-only already: a view of immutable bytes (decode's common case)
                value = np.frombuffer(content, np_dtype).reshape(shape)
                return new_record(TensorInfo, (dtype, shape, value, None))
        return _small_info(tensor, dtype, shape)
    # Scalars, axes and shape vectors repeat all over a graph: remembered by their bytes,
    # whose serializing costs a fifth of the decoding.
    key = tensor.SerializeToString()
    info = _SMALL.get(key)
    if info is None:
        info = _small_info(tensor, dtype, shape)
        if len(_SMALL) < _SMALL_MAX:
            _SMALL[key] = info
    return info


def _small_info(tensor, dtype: DType, shape: tuple) -> TensorInfo:
    if shape and min(shape) < 0:
        to_array(tensor)  # raises: a constant needs a fully known shape
    value = decode(tensor, dtype, shape)
    value.setflags(write=False)  # cheaper than through the flags object
    return new_record(TensorInfo, (dtype, shape, value, None))


_INTEGERS = frozenset(d for d in DType if d.name.startswith(("int", "uint")))
# Weight dtypes -> numpy dtype, for tensor_info's view of tensor_content.
_FLOATS = {DType.float32: np.dtype(np.float32), DType.float64: np.dtype(np.float64)}
_SMALL: dict = {}  # serialized TensorProto -> TensorInfo (values read-only, so shared)
_SMALL_MAX = 1 << 14


def _const_kernel(ctx: Ctx):
    raw = ctx.raw_attr("value")
    return to_array(raw.tensor) if raw is not None else np.asarray(ctx.attr("value"))


def const_tensor(msg):
    """The TensorProto of a Const's NodeDef."""
    held = msg.attr.get("value")  # one lookup
    if held is None:
        raise GraphtoolError(f"node {msg.name!r} (Const) has no attr 'value'")
    return held.tensor


def _const_node_info(msg, value_limit: int) -> TensorInfo:
    return tensor_info(const_tensor(msg), value_limit)


define("Const", shape=_const_info, kernel=_const_kernel, outputs=1, constant=True,
       node_info=_const_node_info)


def _placeholder(ctx: Ctx) -> TensorInfo:
    return out(as_dtype(ctx.attr("dtype")), _static_shape(ctx.attr("shape", None)))


define("Placeholder", shape=_placeholder)


def _placeholder_with_default(ctx: Ctx) -> TensorInfo:
    # The fed value may have any shape compatible with the attr, so the attr wins.
    shape = _static_shape(ctx.attr("shape", None))
    return out(ctx.out_dtype("dtype"), shape)


define("PlaceholderWithDefault", shape=_placeholder_with_default)


def _identity(ctx: Ctx, x):
    return x


define("Identity", "StopGradient", "Snapshot", "PreventGradient",
       shape=same_as(0), kernel=_identity, partial=True, keeps_bytes=True, identity=True)


def _ensure_shape(ctx: Ctx) -> TensorInfo:
    wanted = _static_shape(ctx.attr("shape", None))
    return out(ctx.out_dtype(), merge_shapes(ctx, ctx.shape(0), wanted, "input and shape attr"))


define("EnsureShape", shape=_ensure_shape, kernel=_identity, partial=True, keeps_bytes=True)


def _check_numerics(ctx: Ctx, x):
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise CannotEvaluate("CheckNumerics would fail")
    return x


define("CheckNumerics", shape=same_as(0), kernel=_check_numerics)


def _identity_n(ctx: Ctx):
    return [out(info.dtype, info.shape) for info in ctx.inputs]


define("IdentityN", shape=_identity_n, kernel=lambda ctx, *xs: list(xs),
       outputs=lambda ctx: len(ctx.attr("T", [])) or len(ctx.inputs))

define("NoOp", shape=lambda ctx: [], outputs=0)


# Ops with side effects or randomness: known, so that lint and render can say so,
# but never folded.
def _shaped_by_input(index: int, dtype_attr: str):
    def shape(ctx: Ctx) -> TensorInfo:
        return out(ctx.out_dtype(dtype_attr, None), as_dims(dims_operand(ctx, index)))
    return shape


define("RandomUniform", "RandomStandardNormal", "TruncatedNormal",
       shape=_shaped_by_input(0, "dtype"), stateful=True)
define("RandomUniformInt", shape=_shaped_by_input(0, "Tout"), stateful=True)
define("RandomShuffle", shape=same_as(0), stateful=True)
define("Multinomial", shape=lambda ctx: unknown_rank(ctx.out_dtype("output_dtype", None)),
       stateful=True)
define("VarHandleOp", shape=lambda ctx: out(DType.resource, ()), stateful=True)
define("ReadVariableOp", "VariableV2", shape=lambda ctx: unknown_rank(ctx.out_dtype("dtype", None)),
       stateful=True)
define("Print", shape=same_as(0), stateful=True)
define("AssignVariableOp", "Assert", "PrintV2", shape=lambda ctx: [], outputs=0, stateful=True)


# Control flow (TF1 cond/while): shapes pass through; never folded, since which
# branch runs is decided at run time.
def _merge_shape(ctx: Ctx):
    shapes = [ctx.shape(i) for i in range(len(ctx))]
    dtype = next((ctx.dtype(i) for i in range(len(ctx)) if ctx.dtype(i) is not None), None)
    first = shapes[0]
    if any(s is None or first is None or len(s) != len(first) for s in shapes):
        shape = None
    else:
        shape = tuple(d if all(s[k] == d for s in shapes) else None for k, d in enumerate(first))
    return [out(dtype, shape), out(DType.int32, ())]


define("Switch", "RefSwitch", shape=lambda ctx: [out(ctx.dtype(0), ctx.shape(0))] * 2,
       outputs=2, output_args=("output_false", "output_true"))
define("Merge", shape=_merge_shape, outputs=2, output_args=("output", "value_index"))
define("Enter", "Exit", "NextIteration", "RefEnter", "RefExit", shape=same_as(0))
define("LoopCond", shape=lambda ctx: out(DType.bool, ()))
