"""Shape-manipulating and data-moving ops: Reshape, slicing, concatenation, padding, ...

Most kernels here only move elements, so they are marked ``partial``: they also
run on partially known int vectors, which is how a Flatten written as
``Reshape(x, Pack(StridedSlice(Shape(x)), -1))`` gets a static shape.
"""
from __future__ import annotations

import numpy as np

from graphtool.dtypes import DType, as_dtype, to_numpy
from graphtool.ops.context import CannotEvaluate, Ctx, format_shape
from graphtool.ops.registry import family
from graphtool.ops.shapefns import (as_dims, broadcast, broadcast_dim, dims_operand,
                                    merge_dim, merge_shapes, normalize_axis, out, product,
                                    same_as)

define = family("array")


# -- Reshape and friends -------------------------------------------------------
def _reshape_shape(ctx: Ctx):
    dtype = ctx.out_dtype()
    target = dims_operand(ctx, 1)
    if target is None:
        return out(dtype, None)
    dims, open_dims, known = [], [], 1  # open dims: -1 or unknown
    invalid = target.count(-1) > 1
    for k, t in enumerate(target):
        if t is None or t == -1:
            open_dims.append(k)
            dims.append(None)
        else:
            invalid = invalid or t < -1
            known *= t
            dims.append(t)
    if invalid:
        raise ctx.error(f"has an invalid target shape {list(target)}")
    size = product(ctx.shape(0))
    if size is not None:
        mismatch = (not open_dims and known != size) or (
            open_dims and known != 0 and size % known != 0) or (open_dims and known == 0 and size)
        if mismatch:
            raise ctx.error(f"cannot reshape a tensor of shape {format_shape(ctx.shape(0))} "
                            f"({size} elements) into shape {list(target)}")
        if len(open_dims) == 1 and known != 0:
            dims[open_dims[0]] = size // known
    return out(dtype, dims)


define("Reshape", shape=_reshape_shape, kernel=lambda ctx, x, shape: np.reshape(x, shape.tolist()),
       partial=True, keeps_bytes=True, dims_input=1)


def _squeeze_axes(ctx: Ctx, shape) -> list[int] | None:
    axes = ctx.attr("squeeze_dims", None)
    if axes is None:
        axes = ctx.attr("axis", [])
    return sorted({normalize_axis(ctx, a, len(shape)) for a in axes})


def _squeeze_shape(ctx: Ctx):
    dtype, shape = ctx.out_dtype(), ctx.shape(0)
    if shape is None:
        return out(dtype, None)
    axes = _squeeze_axes(ctx, shape)
    if not axes:
        if any(d is None for d in shape):
            return out(dtype, None)
        return out(dtype, [d for d in shape if d != 1])
    for a in axes:
        if shape[a] is not None and shape[a] != 1:
            raise ctx.error(f"cannot squeeze dimension {a} of shape {format_shape(shape)}: "
                            "its size is not 1")
    return out(dtype, [d for k, d in enumerate(shape) if k not in axes])


def _squeeze(ctx: Ctx, x):
    axes = _squeeze_axes(ctx, x.shape)
    return np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)


define("Squeeze", shape=_squeeze_shape, kernel=_squeeze, partial=True, keeps_bytes=True)


def _expand_dims_shape(ctx: Ctx):
    dtype, shape, axis = ctx.out_dtype(), ctx.shape(0), ctx.scalar(1)
    if shape is None:
        return out(dtype, None)
    if axis is None:
        return out(dtype, (None,) * (len(shape) + 1))
    axis = normalize_axis(ctx, axis, len(shape) + 1)
    return out(dtype, shape[:axis] + (1,) + shape[axis:])


define("ExpandDims", shape=_expand_dims_shape,
       kernel=lambda ctx, x, axis: np.expand_dims(x, int(axis.reshape(-1)[0])), partial=True,
       keeps_bytes=True)


def _transpose_shape(ctx: Ctx):
    dtype, shape, perm = ctx.out_dtype(), ctx.shape(0), ctx.ints(1)
    rank = len(shape) if shape is not None else (ctx.shape(1) or (None,))[0]
    if perm is None:
        return out(dtype, None if rank is None else (None,) * rank)
    if sorted(perm) != list(range(len(perm))) or (shape is not None and len(perm) != len(shape)):
        raise ctx.error(f"has permutation {perm}, which does not fit a tensor of shape "
                        f"{format_shape(shape)}")
    return out(dtype, None if shape is None else [shape[p] for p in perm])


define("Transpose", "ConjugateTranspose", shape=_transpose_shape,
       kernel=lambda ctx, x, perm: np.transpose(x, perm.tolist()), partial=True)


def _broadcast_to_shape(ctx: Ctx):
    target = as_dims(dims_operand(ctx, 1))
    if target is not None and ctx.shape(0) is not None:
        broadcast(ctx, ctx.shape(0), target)
    return out(ctx.out_dtype(), target)


define("BroadcastTo", shape=_broadcast_to_shape,
       kernel=lambda ctx, x, shape: np.broadcast_to(x, shape.tolist()))


def _broadcast_args_shape(ctx: Ctx):
    a, b = ctx.elements(0), ctx.elements(1)
    dtype = ctx.out_dtype()
    if a is None or b is None:
        return out(dtype, None if ctx.shape(0) is None or ctx.shape(1) is None else
                   (_larger_dim(ctx.shape(0)[0], ctx.shape(1)[0]),))
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    try:
        dims = tuple(broadcast_dim(x, y) for x, y in zip(a, b))
    except ValueError:
        raise ctx.error(f"cannot broadcast shapes {list(a)} and {list(b)}") from None
    return out(dtype, (rank,), partial=dims)


def _larger_dim(a, b):
    return None if a is None or b is None else max(a, b)


define("BroadcastArgs", shape=_broadcast_args_shape,
       kernel=lambda ctx, a, b: np.array(np.broadcast_shapes(tuple(a.tolist()), tuple(b.tolist())),
                                         dtype=a.dtype))


# -- Shape, Size, Rank and constant makers -----------------------------------------
def _shape_info(ctx: Ctx, index: int):
    dtype = as_dtype(ctx.attr("out_type", DType.int32))
    shape = ctx.shape(index)
    if shape is None:
        return out(dtype, (None,))
    return out(dtype, (len(shape),), partial=tuple(shape))


def _shape_kernel(ctx: Ctx, *xs):
    dtype = to_numpy(as_dtype(ctx.attr("out_type", DType.int32)))
    shapes = [np.array(x.shape, dtype=dtype) for x in xs]
    return shapes if ctx.op == "ShapeN" else shapes[0]


define("Shape", shape=lambda ctx: _shape_info(ctx, 0), kernel=_shape_kernel, value_inputs=())
define("ShapeN", shape=lambda ctx: [_shape_info(ctx, i) for i in range(len(ctx))],
       kernel=_shape_kernel, value_inputs=(), outputs=lambda ctx: ctx.attr("N", len(ctx.inputs)))


def _size_info(ctx: Ctx):
    size = product(ctx.shape(0))
    return out(as_dtype(ctx.attr("out_type", DType.int32)), (), partial=(size,))


define("Size", shape=_size_info, kernel=lambda ctx, x: np.array(x.size), value_inputs=())
define("Rank", shape=lambda ctx: out(DType.int32, (), partial=(ctx.rank(0),)),
       kernel=lambda ctx, x: np.array(x.ndim, np.int32), value_inputs=())


def _like(fill):
    return lambda ctx, x: np.full(x.shape, fill, dtype=x.dtype)


define("ZerosLike", shape=same_as(0), kernel=_like(0), value_inputs=())
define("OnesLike", shape=same_as(0), kernel=_like(1), value_inputs=())


def _fill_shape(ctx: Ctx):
    return out(ctx.out_dtype("T", 1), as_dims(dims_operand(ctx, 0)))


define("Fill", shape=_fill_shape, kernel=lambda ctx, dims, value: np.full(dims.tolist(), value))


def _range_size(start, limit, delta, integer: bool) -> int:
    if delta == 0 or (delta > 0 and start > limit) or (delta < 0 and start < limit):
        raise CannotEvaluate("invalid range")
    if integer:
        return (abs(limit - start) + abs(delta) - 1) // abs(delta)
    return int(np.ceil(abs((limit - start) / delta)))


def _range_shape(ctx: Ctx):
    dtype = ctx.out_dtype("Tidx", 0)
    bounds = [ctx.elements(i) for i in range(3)]
    if dtype is None or any(b is None or None in b for b in bounds):
        return out(dtype, (None,))
    try:
        integer = to_numpy(dtype).kind in "iu"
        return out(dtype, (_range_size(*(b[0] for b in bounds), integer),))
    except CannotEvaluate:
        return out(dtype, (None,))


def _range(ctx: Ctx, start, limit, delta):
    dtype = start.dtype
    size = _range_size(start.item(), limit.item(), delta.item(), dtype.kind in "iu")
    return start + np.arange(size).astype(dtype) * delta  # in the op's dtype, as TF


define("Range", shape=_range_shape, kernel=_range)


# -- joining and splitting ---------------------------------------------------------
def _concat_info(ctx: Ctx, values: list[int], axis_index: int):
    dtype = next((ctx.dtype(i) for i in values if ctx.dtype(i) is not None), None)
    shapes = [ctx.shape(i) for i in values]
    rank = next((len(s) for s in shapes if s is not None), None)
    axis = ctx.scalar(axis_index)
    if rank is None:
        return out(dtype, None)
    if axis is None:
        return out(dtype, (None,) * rank)
    axis = normalize_axis(ctx, axis, rank)
    result = [None] * rank
    total = 0
    for shape in shapes:
        if shape is None:
            total = None
            continue
        if len(shape) != rank:
            raise ctx.error(f"joins tensors of different ranks: "
                            f"{', '.join(format_shape(s) for s in shapes)}")
        for k, d in enumerate(shape):
            if k == axis:
                total = None if total is None or d is None else total + d
                continue
            try:
                result[k] = merge_dim(result[k], d)
            except ValueError:
                raise ctx.error("joins tensors whose shapes differ outside the concat axis: "
                                f"{', '.join(format_shape(s) for s in shapes)}") from None
    result[axis] = total
    return out(dtype, result)


define("ConcatV2", shape=lambda ctx: _concat_info(ctx, list(range(len(ctx) - 1)), len(ctx) - 1),
       kernel=lambda ctx, *xs: np.concatenate(xs[:-1], axis=int(xs[-1])), partial=True)
define("Concat", shape=lambda ctx: _concat_info(ctx, list(range(1, len(ctx))), 0),
       kernel=lambda ctx, axis, *xs: np.concatenate(xs, axis=int(axis)), partial=True)


def _pack_shape(ctx: Ctx):
    shape = ctx.shape(0)
    for i in range(1, len(ctx)):
        shape = merge_shapes(ctx, shape, ctx.shape(i), "inputs to stack")
    dtype = ctx.out_dtype()
    if shape is None:
        return out(dtype, None)
    axis = normalize_axis(ctx, ctx.attr("axis", 0), len(shape) + 1)
    return out(dtype, shape[:axis] + (len(ctx),) + shape[axis:])


define("Pack", shape=_pack_shape, kernel=lambda ctx, *xs: np.stack(xs, axis=ctx.attr("axis", 0)),
       partial=True)


def _unpack_shape(ctx: Ctx):
    num, shape, dtype = ctx.attr("num"), ctx.shape(0), ctx.out_dtype()
    if shape is None:
        return [out(dtype, None)] * num
    axis = normalize_axis(ctx, ctx.attr("axis", 0), len(shape))
    if shape[axis] is not None and shape[axis] != num:
        raise ctx.error(f"unstacks {num} tensors along axis {axis} of shape {format_shape(shape)}")
    return [out(dtype, shape[:axis] + shape[axis + 1:])] * num


def _unpack(ctx: Ctx, x):
    axis = ctx.attr("axis", 0)
    return [np.take(x, i, axis=axis) for i in range(x.shape[axis])]


define("Unpack", shape=_unpack_shape, kernel=_unpack, outputs=lambda ctx: ctx.attr("num"),
       partial=True)


def _split_info(ctx: Ctx, value: int, axis_index: int, sizes: list | None):
    dtype, shape, axis = ctx.out_dtype("T", value), ctx.shape(value), ctx.scalar(axis_index)
    num = ctx.attr("num_split")
    if shape is None:
        return [out(dtype, None)] * num
    if axis is None:
        return [out(dtype, (None,) * len(shape))] * num
    axis = normalize_axis(ctx, axis, len(shape))
    dim = shape[axis]
    if sizes is None:
        if dim is not None and dim % num:
            raise ctx.error(f"splits dimension {axis} of shape {format_shape(shape)} into "
                            f"{num} equal parts")
        sizes = [None if dim is None else dim // num] * num
    return [out(dtype, shape[:axis] + (s,) + shape[axis + 1:]) for s in sizes]


def _split_v_sizes(ctx: Ctx) -> list | None:
    sizes = ctx.elements(1)
    if sizes is None:
        return None
    sizes = list(sizes)
    dim_shape, axis = ctx.shape(0), ctx.scalar(2)
    if -1 in sizes and dim_shape is not None and axis is not None:
        dim = dim_shape[normalize_axis(ctx, axis, len(dim_shape))]
        rest = sum(s for s in sizes if s != -1)
        sizes[sizes.index(-1)] = None if dim is None or None in sizes else dim - rest
    return [None if s is None or s < 0 else s for s in sizes]


define("Split", shape=lambda ctx: _split_info(ctx, 1, 0, None),
       kernel=lambda ctx, axis, x: np.split(x, ctx.attr("num_split"), axis=int(axis)),
       outputs=lambda ctx: ctx.attr("num_split"))


def _split_v(ctx: Ctx, x, sizes, axis):
    axis = int(axis)
    sizes = sizes.tolist()
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    if sum(sizes) != x.shape[axis] or min(sizes, default=0) < 0:
        raise CannotEvaluate("split sizes do not add up")
    return np.split(x, np.cumsum(sizes)[:-1].tolist(), axis=axis)


define("SplitV", shape=lambda ctx: _split_info(ctx, 0, 2, _split_v_sizes(ctx)), kernel=_split_v,
       outputs=lambda ctx: ctx.attr("num_split"))


# -- slicing -----------------------------------------------------------------------
def _slice_shape(ctx: Ctx):
    dtype, shape = ctx.out_dtype(), ctx.shape(0)
    begin, size = ctx.elements(1), ctx.elements(2)
    rank = len(shape) if shape is not None else (None if size is None else len(size))
    if rank is None:
        return out(dtype, None)
    dims = []
    for k in range(rank):
        b = begin[k] if begin is not None else None
        s = size[k] if size is not None else None
        d = shape[k] if shape is not None else None
        if s == -1:
            s = None if b is None or d is None else d - b
        if None not in (b, s, d) and (b < 0 or b + s > d):
            raise ctx.error(f"slices [{b}:{b + s}] out of dimension {k} of shape "
                            f"{format_shape(shape)}")
        dims.append(s)
    return out(dtype, dims)


def _slice(ctx: Ctx, x, begin, size):
    index = []
    for b, s, d in zip(begin.tolist(), size.tolist(), x.shape):
        end = d if s == -1 else b + s
        if b < 0 or end > d or end < b:
            raise CannotEvaluate("slice out of bounds")
        index.append(slice(b, end))
    return x[tuple(index)]


define("Slice", shape=_slice_shape, kernel=_slice, partial=True)

_NEW, _ALL, _INDEX, _RANGE = "new", "all", "index", "range"


def _strided_entries(ctx: Ctx, rank: int | None, count: int, begin, end, strides):
    """StridedSlice's sparse spec as one entry per step: (kind, begin, end, stride),
    with ellipsis expanded; begin/end are None where masked and '?' where unknown."""
    mask = {m: ctx.attr(m + "_mask", 0) for m in ("begin", "end", "ellipsis", "new_axis",
                                                  "shrink_axis")}
    bit = lambda name, i: (mask[name] >> i) & 1  # noqa: E731
    ellipses = [i for i in range(count) if bit("ellipsis", i)]
    if len(ellipses) > 1:
        raise ctx.error("has more than one ellipsis in its ellipsis_mask")
    consuming = sum(1 for i in range(count) if not bit("ellipsis", i) and not bit("new_axis", i))
    if rank is None and (ellipses or consuming < count):
        return None
    if rank is not None and consuming > rank:
        raise ctx.error(f"indexes {consuming} dimensions of a tensor of rank {rank}")

    def known(values, i):
        return "?" if values is None or values[i] is None else values[i]

    entries = []
    for i in range(count):
        if bit("ellipsis", i):
            entries += [(_ALL, None, None, 1)] * (rank - consuming)
        elif bit("new_axis", i):
            entries.append((_NEW, None, None, 1))
        elif bit("shrink_axis", i):
            entries.append((_INDEX, known(begin, i), None, 1))
        else:
            stride = known(strides, i)
            if stride == 0:
                raise ctx.error("has a stride of 0")
            entries.append((_RANGE, None if bit("begin", i) else known(begin, i),
                            None if bit("end", i) else known(end, i), stride))
    if not ellipses and rank is not None:
        entries += [(_ALL, None, None, 1)] * (rank - consuming)
    return entries


def _strided_slice_shape(ctx: Ctx):
    dtype, shape = ctx.out_dtype(), ctx.shape(0)
    spec = ctx.shape(1)
    count = spec[0] if spec is not None and len(spec) == 1 else None
    if count is None:
        return out(dtype, None)
    entries = _strided_entries(ctx, None if shape is None else len(shape), count,
                               ctx.elements(1), ctx.elements(2), ctx.elements(3))
    if entries is None:
        return out(dtype, None)
    dims, axis = [], 0
    for kind, b, e, s in entries:
        if kind == _NEW:
            dims.append(1)
            continue
        d = shape[axis] if shape is not None else None
        axis += 1
        if kind == _ALL:
            dims.append(d)
        elif kind == _INDEX:
            if d is not None and b != "?" and not -d <= b < d:
                raise ctx.error(f"takes index {b} of dimension {axis - 1} of shape "
                                f"{format_shape(shape)}")
        elif d is None or "?" in (b, e, s):
            dims.append(None)
        else:
            dims.append(len(range(*slice(b, e, s).indices(d))))
    return out(dtype, dims)


def _strided_slice(ctx: Ctx, x, begin, end, strides):
    entries = _strided_entries(ctx, x.ndim, len(begin), begin.tolist(), end.tolist(),
                               strides.tolist())
    index = []
    for kind, b, e, s in entries:
        index.append(np.newaxis if kind == _NEW else slice(None) if kind == _ALL else
                     int(b) if kind == _INDEX else slice(b, e, s))
    return x[tuple(index)]


define("StridedSlice", shape=_strided_slice_shape, kernel=_strided_slice, partial=True)


# -- Tile, Pad, Reverse --------------------------------------------------------------
def _tile_shape(ctx: Ctx):
    dtype, shape, multiples = ctx.out_dtype(), ctx.shape(0), dims_operand(ctx, 1)
    if shape is None:
        return out(dtype, None if multiples is None else (None,) * len(multiples))
    if multiples is None:
        return out(dtype, (None,) * len(shape))
    if len(multiples) != len(shape):
        raise ctx.error(f"has {len(multiples)} multiples for a tensor of shape "
                        f"{format_shape(shape)}")
    return out(dtype, [None if d is None or m is None else d * m for d, m in zip(shape, multiples)])


define("Tile", shape=_tile_shape, kernel=lambda ctx, x, reps: np.tile(x, reps.tolist()))


def _pad_shape(ctx: Ctx):
    dtype, shape, pads = ctx.out_dtype(), ctx.shape(0), ctx.value(1)
    if shape is None:
        rows = (ctx.shape(1) or (None,))[0]
        return out(dtype, None if rows is None else (None,) * rows)
    if pads is None:
        return out(dtype, (None,) * len(shape))
    if pads.shape != (len(shape), 2):
        raise ctx.error(f"has paddings of shape {list(pads.shape)} for a tensor of shape "
                        f"{format_shape(shape)}")
    return out(dtype, [None if d is None else d + int(a) + int(b) for d, (a, b) in
                       zip(shape, pads.tolist())])


def _pad(ctx: Ctx, x, pads, constant=None):
    pads = pads.tolist()
    if any(p < 0 for row in pads for p in row):
        raise CannotEvaluate("negative padding")
    mode = ctx.attr("mode", "CONSTANT")
    if ctx.op != "MirrorPad":
        return np.pad(x, pads, constant_values=0 if constant is None else constant.item())
    limit = 0 if mode == "REFLECT" else 1
    if any(p > d - 1 + limit for (a, b), d in zip(pads, x.shape) for p in (a, b)):
        raise CannotEvaluate("mirror padding larger than the tensor")
    return np.pad(x, pads, mode="reflect" if mode == "REFLECT" else "symmetric")


define("Pad", "PadV2", "MirrorPad", shape=_pad_shape, kernel=_pad)


def _reverse(ctx: Ctx, x, axes):
    return np.flip(x, axis=tuple(int(a) for a in axes.reshape(-1))) if axes.size else x


define("ReverseV2", shape=same_as(0), kernel=_reverse)


# -- gathering ------------------------------------------------------------------------
def _gather_shape(ctx: Ctx):
    dtype = ctx.out_dtype("Tparams", 0)
    params, indices = ctx.shape(0), ctx.shape(1)
    axis = ctx.scalar(2) if ctx.op == "GatherV2" else 0
    batch_dims = ctx.attr("batch_dims", 0)
    if params is None or indices is None:
        return out(dtype, None)
    if axis is None:
        return out(dtype, (None,) * (len(params) + len(indices) - 1 - batch_dims))
    axis = normalize_axis(ctx, axis, len(params))
    if batch_dims < 0:
        batch_dims += len(indices)
    return out(dtype, params[:axis] + indices[batch_dims:] + params[axis + 1:])


def _gather(ctx: Ctx, params, indices, axis=None):
    axis = 0 if axis is None else int(axis)
    axis %= params.ndim
    if ctx.attr("batch_dims", 0):
        raise CannotEvaluate("batched gather is not evaluated")
    if indices.dtype != object and (np.any(indices < 0) or np.any(indices >= params.shape[axis])):
        raise CannotEvaluate("gather index out of range")  # an error on TF's CPU
    return np.take(params, indices, axis=axis)


define("GatherV2", "Gather", shape=_gather_shape, kernel=_gather, partial=True)


def _one_hot_shape(ctx: Ctx):
    dtype, shape, depth = ctx.out_dtype("T", 2), ctx.shape(0), ctx.scalar(1)
    if shape is None:
        return out(dtype, None)
    axis = ctx.attr("axis", -1)
    axis = len(shape) if axis == -1 else normalize_axis(ctx, axis, len(shape) + 1)
    return out(dtype, shape[:axis] + (depth,) + shape[axis:])


def _one_hot(ctx: Ctx, indices, depth, on, off):
    depth = int(depth)
    hot = indices[..., None] == np.arange(depth)
    result = np.where(hot, on, off).astype(on.dtype)
    axis = ctx.attr("axis", -1)
    return result if axis == -1 else np.moveaxis(result, -1, axis)


define("OneHot", shape=_one_hot_shape, kernel=_one_hot)


def _where_shape(ctx: Ctx):
    rank = ctx.rank(0)
    return out(DType.int64, None if rank is None else (None, rank))


define("Where", shape=_where_shape, kernel=lambda ctx, x: np.argwhere(x))


# Signatures only (no shapes, no kernels): ops with several outputs that a function body
# may name by output arg.
define("Unique", "UniqueV2", outputs=2, output_args=("y", "idx"))
define("BroadcastGradientArgs", outputs=2, output_args=("r0", "r1"))
