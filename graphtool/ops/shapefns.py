"""Building blocks shared by the shape functions of several op families."""
from __future__ import annotations

import math

from graphtool.ops.context import Ctx, TensorInfo, format_shape, new_record


def out(dtype, shape, value=None, partial=None) -> TensorInfo:
    if type(shape) is not tuple and shape is not None:
        shape = tuple(shape)
    return new_record(TensorInfo, (dtype, shape, value, partial))  # every shape function


def unknown_rank(dtype=None) -> TensorInfo:
    return TensorInfo(dtype, None)


def same_as(index: int = 0, dtype_attr: str = "T"):
    """Shape function: the output looks like input ``index``."""
    def shape(ctx: Ctx) -> TensorInfo:
        info = ctx.info(index)  # most unary ops: read the input once
        dtype = info.dtype if info.dtype is not None else ctx.out_dtype(dtype_attr, None)
        return out(dtype, info.shape)
    return shape


def merge_dim(a, b):
    """The dim two compatible dims agree on (None when both unknown); raises ValueError."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    raise ValueError


def merge_shapes(ctx: Ctx, a, b, what: str = "inputs") -> tuple | None:
    """Two shapes that must be equal, refined by each other."""
    if a is None:
        return b
    if b is None:
        return a
    try:
        if len(a) != len(b):
            raise ValueError
        return tuple(merge_dim(x, y) for x, y in zip(a, b))
    except ValueError:
        raise ctx.error(f"needs {what} of the same shape, got {format_shape(a)} and "
                        f"{format_shape(b)}") from None


def broadcast_dim(a, b):
    """numpy/TF broadcasting of two dims, None for unknown; ValueError when incompatible."""
    if a == 1:
        return b
    if b == 1:
        return a
    if a is None:
        return b if b is not None and b != 0 else None
    if b is None:
        return a if a != 0 else None
    if a == b:
        return a
    raise ValueError


def broadcast(ctx: Ctx, a, b) -> tuple | None:
    """The broadcast shape of ``a`` and ``b``; a clear error when they cannot broadcast."""
    if a is None or b is None:
        return None
    # A known shape with one that equals its last dims (the same shape, a per-channel
    # vector, a scalar) is most calls: no padding, no dim by dim.
    if len(b) <= len(a):
        if a[len(a) - len(b):] == b and None not in a:
            return tuple(a)
    elif b[len(b) - len(a):] == a and None not in b:
        return tuple(b)
    rank = max(len(a), len(b))
    pa = (1,) * (rank - len(a)) + tuple(a)
    pb = (1,) * (rank - len(b)) + tuple(b)
    try:
        return tuple(broadcast_dim(x, y) for x, y in zip(pa, pb))
    except ValueError:
        raise ctx.error(f"cannot broadcast shapes {format_shape(a)} and "
                        f"{format_shape(b)}") from None


def normalize_axis(ctx: Ctx, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ctx.error(f"axis {axis} is out of range for a tensor of rank {rank}")
    return axis % rank


def dims_operand(ctx: Ctx, index: int) -> tuple | None:
    """A shape given as a 1-D int input: its elements (None where unknown), or None
    when not even its length is known."""
    elements = ctx.elements(index)
    if elements is not None:
        return tuple(elements)
    shape = ctx.shape(index)
    if shape is not None and len(shape) == 1 and shape[0] is not None:
        return (None,) * shape[0]
    return None


def as_dims(elements) -> tuple | None:
    """Shape-operand elements -> dims (negative entries are unknown)."""
    if elements is None:
        return None
    return tuple(None if e is None or e < 0 else int(e) for e in elements)


def product(dims) -> int | None:
    if dims is None or None in dims:
        return None
    return math.prod(dims)


def data_format_axes(ctx: Ctx, rank: int) -> tuple[int, list[int]]:
    """(channel axis, spatial axes) for the node's data_format attr."""
    fmt = ctx.attr("data_format", "NHWC")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt.startswith("NC"):
        return 1, list(range(2, rank))
    return rank - 1, list(range(1, rank - 1))
