"""Elementwise ops: activations, arithmetic with broadcasting, comparisons, Cast, Select.

Half-precision inputs (float16, bfloat16) are computed in float32 and rounded
once, as TensorFlow's CPU kernels do.  Integer division follows TF: FloorDiv /
FloorMod round toward -inf, TruncateDiv / TruncateMod / Div toward zero, and a
zero divisor is an error in TF, so such nodes are not folded.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from graphtool.dtypes import DType, as_dtype, to_numpy
from graphtool.ops.context import CannotEvaluate, Ctx, TensorInfo, new_record
from graphtool.ops.numeric import PLAIN, is_half
from graphtool.ops.numeric import widened as _wide
from graphtool.ops.registry import family
from graphtool.ops.shapefns import broadcast, merge_shapes, out, same_as

define = family("elementwise")

_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


_erf = np.frompyfunc(math.erf, 1, 1)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _special(fn):
    """A scalar float function from the math module applied elementwise in float64."""
    return lambda x: fn(x.astype(np.float64)).astype(np.float64).astype(x.dtype)


# name -> numpy function of one array.  The output dtype is the input's.
UNARY = {
    "Relu": lambda x: np.maximum(x, 0),
    "Relu6": lambda x: np.minimum(np.maximum(x, 0), 6),
    "Elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "Selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x)),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "Tanh": np.tanh,
    "Softplus": lambda x: np.logaddexp(0, x),
    "Softsign": lambda x: x / (1 + np.abs(x)),
    "Erf": _special(_erf),
    "Erfc": _special(_erfc),
    "Exp": np.exp,
    "Expm1": np.expm1,
    "Log": np.log,
    "Log1p": np.log1p,
    "Sqrt": np.sqrt,
    "Rsqrt": lambda x: 1 / np.sqrt(x),
    "Sin": np.sin, "Cos": np.cos, "Tan": np.tan, "Asin": np.arcsin, "Acos": np.arccos,
    "Atan": np.arctan, "Sinh": np.sinh, "Cosh": np.cosh,
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.round,
    "Rint": np.rint,
    "Neg": np.negative,
    "Abs": np.abs,
    "Square": np.square,
    "Sign": np.sign,
}


def _unary_kernel(fn):
    """Most inputs are float32: computed at once, without the widening wrapper's checks."""
    wide = _wide(fn)
    return lambda ctx, x: fn(x) if x.dtype in PLAIN else wide(x)


for _name, _fn in UNARY.items():
    define(_name, shape=same_as(0), kernel=_unary_kernel(_fn), partial=_name == "Neg")


def _reciprocal(ctx: Ctx, x):
    if x.dtype.kind in "iu":
        if np.any(x == 0):
            raise CannotEvaluate("integer division by zero")
        return _trunc_div(np.ones_like(x), x)
    return _wide(np.reciprocal)(x)


define("Reciprocal", "Inv", shape=same_as(0), kernel=_reciprocal)
define("LeakyRelu", shape=same_as(0),
       kernel=lambda ctx, x: _wide(lambda v: np.where(v > 0, v, v * ctx.attr("alpha", 0.2)))(x))

for _name, _fn in {"IsNan": np.isnan, "IsInf": np.isinf, "IsFinite": np.isfinite,
                   "LogicalNot": np.logical_not}.items():
    define(_name, shape=lambda ctx: out(DType.bool, ctx.shape(0)),
           kernel=(lambda fn: lambda ctx, x: fn(x))(_fn))


# -- binary arithmetic -------------------------------------------------------
def _nonzero_divisor(y) -> None:
    if np.any(y == 0):
        raise CannotEvaluate("integer division by zero")


def _trunc_div(x, y):
    floor = np.floor_divide(x, y)
    inexact = np.mod(x, y) != 0
    return np.where(inexact & ((x < 0) != (y < 0)), floor + 1, floor)


def _int_or_float(int_fn, float_fn):
    """A division-like kernel: ``int_fn`` after a zero-divisor check, else ``float_fn``."""
    def kernel(x, y):
        if x.dtype.kind in "iu":
            _nonzero_divisor(y)
            return int_fn(x, y)
        return float_fn(x, y)
    return kernel


def _float_floor_mod(x, y):
    mod = np.fmod(x, y)
    return np.where((mod != 0) & ((y < 0) != (mod < 0)), mod + y, mod)


def _int_pow(x, y):
    if x.dtype.kind in "iu" and np.any(y < 0):
        raise CannotEvaluate("integers to negative integer powers are not allowed")
    return np.power(x, y)


# name -> numpy function of two arrays, broadcasting; output dtype is the inputs'.
BINARY = {
    "Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "RealDiv": _int_or_float(_trunc_div, np.true_divide),
    "Div": _int_or_float(_trunc_div, np.true_divide),
    "FloorDiv": _int_or_float(np.floor_divide, lambda x, y: np.floor(x / y)),
    "FloorMod": _int_or_float(np.mod, _float_floor_mod),
    "TruncateDiv": _int_or_float(_trunc_div, lambda x, y: np.trunc(x / y)),
    "TruncateMod": _int_or_float(np.fmod, np.fmod),
    "Mod": _int_or_float(np.fmod, np.fmod),
    "DivNoNan": lambda x, y: np.where(y == 0, np.zeros((), x.dtype), x / np.where(y == 0, 1, y)),
    "MulNoNan": lambda x, y: np.where(y == 0, np.zeros((), x.dtype), x * y),
    "Maximum": np.maximum, "Minimum": np.minimum,
    "Pow": _int_pow,
    "SquaredDifference": lambda x, y: np.square(x - y),
    "Atan2": np.arctan2,
    "BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or, "BitwiseXor": np.bitwise_xor,
}
_PARTIAL_BINARY = {"Add", "AddV2", "Sub", "Mul"}
# TF rounds the quotient to the half type before flooring/truncating, as numpy's own
# half-precision arithmetic does: these run natively instead of widened.
_NATIVE_HALF = {"FloorDiv", "FloorMod", "TruncateDiv", "TruncateMod", "Mod"}


def _broadcast_shape(dtype=None):
    def shape(ctx: Ctx):
        inputs = ctx.inputs
        if len(inputs) != 2:
            result = broadcast(ctx, ctx.shape(0), ctx.shape(1))
            return out(dtype if dtype is not None else ctx.out_dtype(), result)
        # Both inputs read once (most nodes of most graphs go through here).
        x, y = inputs
        result = broadcast(ctx, x.shape, y.shape)
        kind = dtype if dtype is not None else x.dtype if x.dtype is not None else \
            ctx.out_dtype()
        return new_record(TensorInfo, (kind, result, None, None))
    return shape


def _binary_kernel(fn, native: bool):
    """Partially known vectors arrive as object arrays: no half-precision widening.
    Most inputs are float32: computed at once, without the widening wrapper's checks."""
    wide = fn if native else _wide(fn)

    def kernel(ctx, x, y):
        if x.dtype in PLAIN and y.dtype in PLAIN or x.dtype.kind == "O" or y.dtype.kind == "O":
            return fn(x, y)
        return wide(x, y)
    return kernel


for _name, _fn in BINARY.items():
    define(_name, shape=_broadcast_shape(), kernel=_binary_kernel(_fn, _name in _NATIVE_HALF),
           partial=_name in _PARTIAL_BINARY)

# name -> numpy function of two arrays giving bool.
COMPARE = {
    "Equal": np.equal, "NotEqual": np.not_equal, "Less": np.less, "LessEqual": np.less_equal,
    "Greater": np.greater, "GreaterEqual": np.greater_equal,
    "LogicalAnd": np.logical_and, "LogicalOr": np.logical_or,
}
for _name, _fn in COMPARE.items():
    define(_name, shape=_broadcast_shape(DType.bool), kernel=(lambda fn: lambda c, x, y: fn(x, y))(_fn))


def _add_n_shape(ctx: Ctx):
    shape = ctx.shape(0)
    for i in range(1, len(ctx)):
        shape = merge_shapes(ctx, shape, ctx.shape(i))
    return out(ctx.out_dtype(), shape)


define("AddN", shape=_add_n_shape,
       kernel=lambda ctx, *xs: _wide(lambda *a: functools.reduce(np.add, a))(*xs))


# -- Cast --------------------------------------------------------------------
def _truncate_mantissa(x: np.ndarray, target: np.dtype) -> np.ndarray:
    """Zero the source mantissa bits the narrower float cannot hold (Cast Truncate=True)."""
    kept = 10 if target == np.float16 else 7  # float16 or bfloat16 mantissa bits
    bits, uint = (23, np.uint32) if x.dtype == np.float32 else (52, np.uint64)
    mask = uint(~((1 << (bits - kept)) - 1) & ((1 << (8 * x.dtype.itemsize)) - 1))
    return (np.ascontiguousarray(x).view(uint) & mask).view(x.dtype)


def _float_to_int(x: np.ndarray, target: np.dtype) -> np.ndarray:
    if x.dtype.kind == "c":
        x = x.real
    whole = np.trunc(x.astype(np.float64))
    info = np.iinfo(target)
    # NaN, infinities and out-of-range values come out platform-defined in TF
    # (INT_MIN on x86, saturated on ARM): such a Cast is left for run time.
    if not np.all((whole >= info.min) & (whole < float(info.max) + 1)):
        raise CannotEvaluate("float to int cast out of range")
    return whole.astype(target)


def _cast(ctx: Ctx, x):
    target = to_numpy(as_dtype(ctx.attr("DstT")))
    if x.dtype == object:  # partially known int vector
        if target.kind in "iu":
            return x
        raise CannotEvaluate("partial values stay integers")
    if target == np.bool_:
        return x != 0
    if x.dtype.kind in "fc" and target.kind in "iu":
        return _float_to_int(x, target)
    if x.dtype.kind == "c" and target.kind != "c":
        x = x.real
    if is_half(target):
        if ctx.attr("Truncate", False) and x.dtype in (np.float32, np.float64):
            x = _truncate_mantissa(x, target)
        if x.dtype != np.float32:
            x = x.astype(np.float32)  # TF converts to half types through float
    return x.astype(target)


define("Cast", shape=lambda ctx: out(as_dtype(ctx.attr("DstT")), ctx.shape(0)), kernel=_cast,
       partial=True)


# -- selection -----------------------------------------------------------------
def _select_shape(ctx: Ctx):
    shape = merge_shapes(ctx, ctx.shape(1), ctx.shape(2), "branches")
    cond = ctx.shape(0)
    if cond is not None and shape is not None and not (len(cond) == 1 and len(shape) > 1):
        shape = merge_shapes(ctx, shape, cond, "condition and branches")
    return out(ctx.out_dtype("T", 1), shape)


def _select(ctx: Ctx, cond, t, e):
    if cond.ndim == 1 and t.ndim > 1:
        cond = cond.reshape((-1,) + (1,) * (t.ndim - 1))
    return np.where(cond, t, e)


define("Select", shape=_select_shape, kernel=_select)


def _select_v2_shape(ctx: Ctx):
    shape = broadcast(ctx, ctx.shape(1), ctx.shape(2))
    return out(ctx.out_dtype("T", 1), broadcast(ctx, ctx.shape(0), shape))


define("SelectV2", shape=_select_v2_shape, kernel=lambda ctx, c, t, e: np.where(c, t, e))


def _clip_shape(ctx: Ctx):
    for i in (1, 2):
        bound = ctx.shape(i)
        if bound not in (None, ()) and ctx.shape(0) is not None:
            merge_shapes(ctx, ctx.shape(0), bound, "tensor and clip bound")
    return out(ctx.out_dtype(), ctx.shape(0))


define("ClipByValue", shape=_clip_shape,
       kernel=lambda ctx, t, lo, hi: _wide(lambda a, b, c: np.minimum(np.maximum(a, b), c))(
           t, lo, hi))
