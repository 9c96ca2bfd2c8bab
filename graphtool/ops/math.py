"""Reductions, arg-reductions, matrix products and einsum."""
from __future__ import annotations

import re

import numpy as np

from graphtool.dtypes import DType, as_dtype, to_numpy
from graphtool.ops.context import CannotEvaluate, Ctx, format_shape
from graphtool.ops.numeric import widened as _wide
from graphtool.ops.registry import family
from graphtool.ops.shapefns import broadcast, merge_dim, normalize_axis, out

define = family("math")


# -- reductions ------------------------------------------------------------------------
def _reduced_axes(ctx: Ctx, rank: int, axes) -> set[int]:
    return {normalize_axis(ctx, int(a), rank) for a in axes}


def _reduce_shape(ctx: Ctx, dtype=None):
    dtype = dtype or ctx.out_dtype()
    shape, axes = ctx.shape(0), ctx.ints(1)
    keep = ctx.attr("keep_dims", False)
    if shape is None:
        return out(dtype, None)
    if axes is None:
        return out(dtype, (None,) * len(shape) if keep else None)
    reduced = _reduced_axes(ctx, len(shape), axes)
    if keep:
        return out(dtype, [1 if k in reduced else d for k, d in enumerate(shape)])
    return out(dtype, [d for k, d in enumerate(shape) if k not in reduced])


def _mean(x, axis, keepdims):
    if x.dtype.kind in "iu":
        count = np.prod([x.shape[a] for a in axis], dtype=np.int64) if axis else 1
        total = np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)
        if count == 0:
            raise CannotEvaluate("mean of nothing")
        quotient = np.abs(total.astype(np.int64)) // count  # TF divides toward zero
        return (np.sign(total) * quotient).astype(x.dtype)
    return np.mean(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _prod(x, axis, keepdims):
    if x.dtype == object:
        return np.multiply.reduce(x, axis=axis, keepdims=keepdims)
    return np.prod(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _sum(x, axis, keepdims):
    if x.dtype == object:
        return np.add.reduce(x, axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _extreme(fn):
    def reduce(x, axis, keepdims):
        if axis and any(x.shape[a] == 0 for a in axis):
            raise CannotEvaluate("min/max of nothing")
        return fn(x, axis=axis, keepdims=keepdims)
    return reduce


# name -> reduce(x, axis tuple, keepdims)
REDUCTIONS = {
    "Sum": _sum, "Mean": _mean, "Prod": _prod,
    "Max": _extreme(np.max), "Min": _extreme(np.min),
    "All": lambda x, axis, keepdims: np.all(x, axis=axis, keepdims=keepdims),
    "Any": lambda x, axis, keepdims: np.any(x, axis=axis, keepdims=keepdims),
    "EuclideanNorm": lambda x, axis, keepdims: np.sqrt(np.sum(np.square(x), axis=axis,
                                                              keepdims=keepdims)),
}


def _reduction(fn):
    def kernel(ctx: Ctx, x, axes):
        axis = tuple(sorted(_reduced_axes(ctx, x.ndim, axes.reshape(-1).tolist())))
        keep = ctx.attr("keep_dims", False)
        if not axis:
            return x
        if x.dtype == object:
            return fn(x, axis, keep)
        return _wide(lambda v: fn(v, axis, keep))(x)
    return kernel


for _name, _fn in REDUCTIONS.items():
    define(_name, shape=_reduce_shape, kernel=_reduction(_fn), partial=_name in ("Sum", "Prod"))


def _arg_shape(ctx: Ctx):
    dtype = as_dtype(ctx.attr("output_type", DType.int64))
    shape, axis = ctx.shape(0), ctx.scalar(1)
    if shape is None:
        return out(dtype, None)
    if axis is None:
        return out(dtype, (None,) * (len(shape) - 1))
    axis = normalize_axis(ctx, axis, len(shape))
    return out(dtype, shape[:axis] + shape[axis + 1:])


def _arg(fn):
    def kernel(ctx: Ctx, x, axis):
        if x.dtype.kind == "f" and np.isnan(x).any():
            raise CannotEvaluate("NaN ordering differs between TF and numpy")
        axis = normalize_axis(ctx, int(axis), x.ndim)
        if x.shape[axis] == 0:
            raise CannotEvaluate("arg-reduction over an empty axis")
        dtype = to_numpy(as_dtype(ctx.attr("output_type", DType.int64)))
        return fn(x, axis=axis).astype(dtype)
    return kernel


define("ArgMax", shape=_arg_shape, kernel=_arg(np.argmax))
define("ArgMin", shape=_arg_shape, kernel=_arg(np.argmin))


# -- matrix products ------------------------------------------------------------------
def _inner_mismatch(ctx: Ctx, a, b, ta: bool, tb: bool):
    raise ctx.error(f"multiplies matrices with mismatched inner dimensions: "
                    f"{format_shape(a)}{'ᵀ' if ta else ''} x {format_shape(b)}{'ᵀ' if tb else ''}")


def _matrix_dims(ctx: Ctx, a, b, ta: bool, tb: bool):
    """(rows, cols) of the product of the last two dims of ``a`` and ``b``."""
    m, ka = (a[-1], a[-2]) if ta else (a[-2], a[-1])
    kb, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
    try:
        merge_dim(ka, kb)
    except ValueError:
        _inner_mismatch(ctx, a, b, ta, tb)
    return m, n


def _matmul_shape(ctx: Ctx):
    a, b, dtype = ctx.shape(0), ctx.shape(1), ctx.out_dtype()
    if a is None or b is None:
        return out(dtype, (None, None))
    if len(a) != 2 or len(b) != 2:
        raise ctx.error(f"needs matrices, got shapes {format_shape(a)} and {format_shape(b)}")
    return out(dtype, _matrix_dims(ctx, a, b, ctx.attr("transpose_a", False),
                                   ctx.attr("transpose_b", False)))


def _matmul(ctx: Ctx, a, b):
    a = a.T if ctx.attr("transpose_a", False) else a
    b = b.T if ctx.attr("transpose_b", False) else b
    return _wide(np.matmul)(a, b)


define("MatMul", shape=_matmul_shape, kernel=_matmul)


def _batch_matmul_shape(ctx: Ctx):
    a, b = ctx.shape(0), ctx.shape(1)
    dtype = as_dtype(ctx.attr("Tout")) if ctx.op == "BatchMatMulV3" else ctx.out_dtype()
    if a is None or b is None:
        return out(dtype, None)
    if len(a) < 2 or len(b) < 2:
        raise ctx.error(f"needs tensors of rank >= 2, got {format_shape(a)} and {format_shape(b)}")
    ta, tb = ctx.attr("adj_x", False), ctx.attr("adj_y", False)
    rows, cols = _matrix_dims(ctx, a, b, ta, tb)
    batch = broadcast(ctx, a[:-2], b[:-2])
    return out(dtype, batch + (rows, cols))


def _adjoint(x):
    return np.conj(np.swapaxes(x, -1, -2))


def _batch_matmul(ctx: Ctx, a, b):
    a = _adjoint(a) if ctx.attr("adj_x", False) else a
    b = _adjoint(b) if ctx.attr("adj_y", False) else b
    return _wide(np.matmul)(a, b)


define("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", shape=_batch_matmul_shape,
       kernel=_batch_matmul)


# -- einsum ------------------------------------------------------------------------------
_EINSUM = re.compile(r"^([a-zA-Z.,]*)(->([a-zA-Z.]*))?$")


def _einsum_shape(ctx: Ctx):
    equation = ctx.attr("equation").replace(" ", "")
    dtype = ctx.out_dtype()
    match = _EINSUM.match(equation)
    if not match or match.group(2) is None:
        return out(dtype, None)
    terms, result = match.group(1).split(","), match.group(3)
    if len(terms) != len(ctx):
        raise ctx.error(f"has equation {equation!r} for {len(ctx)} inputs")
    sizes: dict[str, int | None] = {}
    ellipsis = ()
    for k, term in enumerate(terms):
        shape = ctx.shape(k)
        if shape is None:
            return out(dtype, None)
        labels = term.replace("...", "")
        if "..." in term:
            before = term.index("...")
            extra = len(shape) - len(labels)
            ellipsis = broadcast(ctx, ellipsis, shape[before:before + extra])
            shape = shape[:before] + shape[before + extra:]
        if len(labels) != len(shape):
            raise ctx.error(f"term {term!r} does not fit input shape {format_shape(ctx.shape(k))}")
        for label, dim in zip(labels, shape):
            try:
                sizes[label] = dim if label not in sizes else (
                    sizes[label] if dim == 1 else dim if sizes[label] == 1 else
                    merge_dim(sizes[label], dim))
            except ValueError:
                raise ctx.error(f"gives label {label!r} sizes {sizes[label]} and {dim}") from None
    dims = []
    for part in re.split(r"(\.\.\.)", result):
        dims += list(ellipsis) if part == "..." else [sizes.get(c) for c in part]
    return out(dtype, dims)


define("Einsum", shape=_einsum_shape,
       kernel=lambda ctx, *xs: _wide(lambda *a: np.einsum(ctx.attr("equation"), *a))(*xs))


# Signatures only (no shapes, no kernels): ops with several outputs that a function body
# may name by output arg.
define("Svd", outputs=3, output_args=("s", "u", "v"))
define("Qr", outputs=2, output_args=("q", "r"))
define("Eig", outputs=2, output_args=("e", "v"))
define("QuantizeV2", outputs=3, output_args=("output", "output_min", "output_max"))
