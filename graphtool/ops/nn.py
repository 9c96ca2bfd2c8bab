"""Neural-network ops: convolutions, pooling, bias, batch norm, softmax, resizing.

Window arithmetic follows TF: VALID gives floor((in - eff) / stride) + 1 with
eff = (k - 1) * dilation + 1, SAME gives ceil(in / stride) with the extra
padding at the end, EXPLICIT adds the given paddings first.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from graphtool.dtypes import DType
from graphtool.ops.context import CannotEvaluate, Ctx, format_shape
from graphtool.ops.numeric import widened
from graphtool.ops.registry import family
from graphtool.ops.shapefns import (as_dims, data_format_axes, dims_operand, merge_dim, out,
                                    same_as)

define = family("nn")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _window_size(ctx: Ctx, size, k, stride, dilation, padding, pads) -> int | None:
    if size is None or k is None:
        return None
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return -(-size // stride)
    if padding == "EXPLICIT":
        size += pads[0] + pads[1]
    if size < eff:
        raise ctx.error(f"has a window of {eff} (kernel {k}, dilation {dilation}) larger than "
                        f"its padded input dimension {size}")
    return (size - eff) // stride + 1


def _explicit(ctx: Ctx, axis: int):
    return _axis_pads(ctx.attr("explicit_paddings", []), axis)


def _axis_pads(pads, axis: int):
    return pads[2 * axis:2 * axis + 2] if pads else (0, 0)


def _spatial_shape(ctx: Ctx, x, kernel_dims, strides, dilations):
    """Output shape of a windowed op (channels copied from the input)."""
    rank = len(x)
    channel, spatial = data_format_axes(ctx, rank)
    padding = _text(ctx.attr("padding"))
    # Only EXPLICIT padding uses the pads: read them once, and only then.
    pads = ctx.attr("explicit_paddings", []) if padding == "EXPLICIT" else ()
    dims = list(x)
    for i, axis in enumerate(spatial):
        dims[axis] = _window_size(ctx, x[axis], kernel_dims[i], strides[axis], dilations[axis],
                                  padding, _axis_pads(pads, axis))
    return dims, channel


def _conv_shape(ctx: Ctx):
    x, w, dtype = ctx.shape(0), ctx.shape(1), ctx.out_dtype()
    rank = len(x) if x is not None else (len(w) if w is not None else None)
    if rank is None:
        return out(dtype, None)
    if x is None:
        x = (None,) * rank
    if w is None:
        w = (None,) * rank
    strides = ctx.attr("strides")
    dilations = ctx.attr("dilations", None) or [1] * rank
    dims, channel = _spatial_shape(ctx, x, w[:-2], strides, dilations)
    in_channels, w_in, w_out = x[channel], w[-2], w[-1]
    depthwise = ctx.op.startswith("Depthwise")
    if in_channels is not None and w_in is not None and (
            in_channels != w_in if depthwise else in_channels % w_in):
        raise ctx.error(f"gets an input of shape {format_shape(x)} with {in_channels} channels "
                        f"and a filter of shape {format_shape(w)} made for {w_in}")
    if depthwise:
        channels = merge_dim(in_channels, w_in)
        dims[channel] = None if channels is None or w_out is None else channels * w_out
    else:
        dims[channel] = w_out
    return out(dtype, dims)


def _pads(size, k, stride, dilation, padding, explicit) -> tuple[int, int]:
    eff = (k - 1) * dilation + 1
    if padding == "VALID":
        return 0, 0
    if padding == "EXPLICIT":
        return tuple(explicit)
    total = max((-(-size // stride) - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _nhwc(ctx: Ctx, x):
    return np.moveaxis(x, 1, -1) if data_format_axes(ctx, x.ndim)[0] == 1 else x


def _from_nhwc(ctx: Ctx, y, rank):
    return np.moveaxis(y, -1, 1) if data_format_axes(ctx, rank)[0] == 1 else y


def _hw(ctx: Ctx, attr: str, rank: int, default=1) -> list[int]:
    """The spatial entries of a per-dimension attr, in NHWC order."""
    values = ctx.attr(attr, None) or [default] * rank
    _, spatial = data_format_axes(ctx, rank)
    return [values[a] for a in spatial]


def _windows(ctx: Ctx, x, kernel, fill=0.0):
    """(N, OH, OW, C, KH, KW) windows of an NHWC array, padded as the op says."""
    strides, dilations = _hw(ctx, "strides", x.ndim), _hw(ctx, "dilations", x.ndim)
    padding = _text(ctx.attr("padding"))
    _, spatial = data_format_axes(ctx, x.ndim)
    pads = [_pads(x.shape[1 + i], kernel[i], strides[i], dilations[i], padding,
                  _explicit(ctx, spatial[i])) for i in range(2)]
    x = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)], constant_values=fill)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    view = sliding_window_view(x, eff, axis=(1, 2))
    return view[:, ::strides[0], ::strides[1], :, ::dilations[0], ::dilations[1]]


@widened
def _conv_nhwc(windows, w):
    n, oh, ow, c, kh, kw = windows.shape
    groups = c // w.shape[2]
    cols = windows.reshape(n, oh, ow, groups, c // groups, kh, kw)
    w = w.reshape(kh, kw, c // groups, groups, w.shape[3] // groups)
    return np.einsum("nhwgcij,ijcgo->nhwgo", cols, w, optimize=True).reshape(n, oh, ow, -1)


def _conv2d(ctx: Ctx, x, w):
    windows = _windows(ctx, _nhwc(ctx, x), w.shape[:2])
    return _from_nhwc(ctx, _conv_nhwc(windows, w).astype(x.dtype), x.ndim)


@widened
def _depthwise_nhwc(windows, w):
    n, oh, ow, c, _, _ = windows.shape
    return np.einsum("nhwcij,ijcm->nhwcm", windows, w, optimize=True).reshape(n, oh, ow, -1)


def _depthwise(ctx: Ctx, x, w):
    windows = _windows(ctx, _nhwc(ctx, x), w.shape[:2])
    return _from_nhwc(ctx, _depthwise_nhwc(windows, w).astype(x.dtype), x.ndim)


define("Conv2D", "DepthwiseConv2dNative", shape=_conv_shape,
       kernel=lambda ctx, x, w: (_depthwise if ctx.op.startswith("Depthwise") else _conv2d)(
           ctx, x, w))
define("Conv3D", shape=_conv_shape)


def _conv_backprop_input_shape(ctx: Ctx):
    dims = as_dims(dims_operand(ctx, 0))
    return out(ctx.out_dtype("T", 1), dims)


def _conv_backprop_input(ctx: Ctx, sizes, w, dy):
    sizes = [int(s) for s in sizes]
    rank = len(sizes)
    channel, spatial = data_format_axes(ctx, rank)
    n, h, wd, c = [sizes[0]] + [sizes[a] for a in spatial] + [sizes[channel]]
    dy = _nhwc(ctx, dy)
    strides, dilations = _hw(ctx, "strides", rank), _hw(ctx, "dilations", rank)
    padding = _text(ctx.attr("padding"))
    kh, kw = w.shape[:2]
    (top, _), (left, _) = [_pads(size, k, s, d, padding, _explicit(ctx, a)) for size, k, s, d, a in
                           zip((h, wd), (kh, kw), strides, dilations, spatial)]
    oh, ow = dy.shape[1:3]
    rows = max((oh - 1) * strides[0] + (kh - 1) * dilations[0] + 1, top + h)
    cols = max((ow - 1) * strides[1] + (kw - 1) * dilations[1] + 1, left + wd)
    grad = np.zeros((n, rows, cols, c), np.float32 if dy.dtype.itemsize < 4 else dy.dtype)
    for i in range(kh):
        for j in range(kw):
            r, q = i * dilations[0], j * dilations[1]
            grad[:, r:r + (oh - 1) * strides[0] + 1:strides[0],
                 q:q + (ow - 1) * strides[1] + 1:strides[1]] += dy @ w[i, j].T
    return _from_nhwc(ctx, grad[:, top:top + h, left:left + wd].astype(dy.dtype), rank)


define("Conv2DBackpropInput", shape=_conv_backprop_input_shape, kernel=_conv_backprop_input)


def _pool_shape(ctx: Ctx):
    x, dtype = ctx.shape(0), ctx.out_dtype()
    if x is None:
        return out(dtype, None)
    ksize = ctx.attr("ksize", None) if len(ctx) == 1 else ctx.ints(1)
    strides = ctx.attr("strides", None) if len(ctx) == 1 else ctx.ints(2)
    if ksize is None or strides is None:
        channel, _ = data_format_axes(ctx, len(x))
        return out(dtype, [d if k in (0, channel) else None for k, d in enumerate(x)])
    _, spatial = data_format_axes(ctx, len(x))
    dims, _ = _spatial_shape(ctx, x, [ksize[a] for a in spatial], strides, [1] * len(x))
    return out(dtype, dims)


@widened
def _pool_max(windows):
    return windows.max(axis=(4, 5))


def _max_pool(ctx: Ctx, x, *_):
    if len(ctx) != 1:
        raise CannotEvaluate("MaxPoolV2 is not evaluated")
    _, spatial = data_format_axes(ctx, x.ndim)
    ksize = [ctx.attr("ksize")[a] for a in spatial]
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    windows = _windows(ctx, _nhwc(ctx, x), ksize, fill=low)
    return _from_nhwc(ctx, _pool_max(windows), x.ndim)


def _avg_pool(ctx: Ctx, x):
    _, spatial = data_format_axes(ctx, x.ndim)
    ksize = [ctx.attr("ksize")[a] for a in spatial]
    nhwc = _nhwc(ctx, x)
    total = widened(lambda v: v.sum(axis=(4, 5)))(_windows(ctx, nhwc, ksize))
    count = _windows(ctx, np.ones(nhwc.shape[:3] + (1,), np.float32), ksize).sum(axis=(4, 5))
    return _from_nhwc(ctx, (total.astype(np.float32) / count).astype(x.dtype), x.ndim)


define("MaxPool", "MaxPoolV2", shape=_pool_shape, kernel=_max_pool)
define("AvgPool", shape=_pool_shape, kernel=_avg_pool)
define("MaxPool3D", "AvgPool3D", shape=_pool_shape)


def _bias_add_shape(ctx: Ctx):
    x, bias = ctx.shape(0), ctx.shape(1)
    if x is not None and bias is not None:
        channel = data_format_axes(ctx, len(x))[0] if len(x) > 2 else len(x) - 1
        try:
            merge_dim(x[channel], bias[0])
        except ValueError:
            raise ctx.error(f"adds a bias of shape {format_shape(bias)} to a tensor of shape "
                            f"{format_shape(x)}") from None
    return out(ctx.out_dtype(), x)


def _bias_add(ctx: Ctx, x, bias):
    channel = data_format_axes(ctx, x.ndim)[0] if x.ndim > 2 else x.ndim - 1
    shape = [1] * x.ndim
    shape[channel] = -1
    return widened(np.add)(x, bias.reshape(shape))


define("BiasAdd", "BiasAddV1", shape=_bias_add_shape, kernel=_bias_add)


def _batch_norm_shape(ctx: Ctx):
    x = ctx.shape(0)
    channels = ctx.shape(1)[0] if ctx.shape(1) else None
    if x is not None:
        channel = data_format_axes(ctx, len(x))[0]
        channels = merge_dim(x[channel], channels) if channels is not None else x[channel]
    stats = out(ctx.out_dtype("U", 1), (channels,))
    outputs = [out(ctx.out_dtype(), x)] + [stats] * 4
    return outputs + [out(ctx.out_dtype("U", 1), None)] if ctx.op == "FusedBatchNormV3" else outputs


def _batch_norm(ctx: Ctx, x, scale, offset, mean, variance):
    if ctx.attr("is_training", True):
        raise CannotEvaluate("training-mode batch norm is not folded")
    channel = data_format_axes(ctx, x.ndim)[0]
    shape = [1] * x.ndim
    shape[channel] = -1
    factor = (scale / np.sqrt(variance + np.float32(ctx.attr("epsilon", 1e-4)))).reshape(shape)
    y = (x.astype(np.float32) - mean.reshape(shape)) * factor + offset.reshape(shape)
    return [y.astype(x.dtype)] + [None] * (5 if ctx.op == "FusedBatchNormV3" else 4)


_BATCH_NORM_OUTPUTS = ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2")
define("FusedBatchNorm", "FusedBatchNormV2", shape=_batch_norm_shape, kernel=_batch_norm,
       outputs=5, output_args=_BATCH_NORM_OUTPUTS)
define("FusedBatchNormV3", shape=_batch_norm_shape, kernel=_batch_norm, outputs=6,
       output_args=_BATCH_NORM_OUTPUTS + ("reserve_space_3",))


@widened
def _softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


@widened
def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


define("Softmax", shape=same_as(0), kernel=lambda ctx, x: _softmax(x))
define("LogSoftmax", shape=same_as(0), kernel=lambda ctx, x: _log_softmax(x))


# -- resizing ------------------------------------------------------------------------------
def _resize_shape(ctx: Ctx):
    x, size = ctx.shape(0), as_dims(dims_operand(ctx, 1))
    dtype = DType.float32 if ctx.op == "ResizeBilinear" else ctx.out_dtype()
    if size is None or len(size) != 2:
        size = (None, None)
    batch, channels = (x[0], x[3]) if x is not None else (None, None)
    return out(dtype, (batch, size[0], size[1], channels))


def _resize_scale(in_size: int, out_size: int, align: bool) -> np.float32:
    if align and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


def _source_coords(in_size, out_size, align, half_pixel):
    scale = _resize_scale(in_size, out_size, align)
    i = np.arange(out_size, dtype=np.float32)
    return (i + np.float32(0.5)) * scale - np.float32(0.5) if half_pixel else i * scale


def _bilinear_axis(in_size, out_size, align, half_pixel):
    src = _source_coords(in_size, out_size, align, half_pixel)
    floor = np.floor(src)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    return lower, upper, (src - floor).astype(np.float32)


def _resize_bilinear(ctx: Ctx, x, size):
    align, half = ctx.attr("align_corners", False), ctx.attr("half_pixel_centers", False)
    (oh, ow), (_, h, w, _) = size.tolist(), x.shape
    y0, y1, dy = _bilinear_axis(h, oh, align, half)
    x0, x1, dx = _bilinear_axis(w, ow, align, half)
    image = x.astype(np.float32)
    dx = dx[None, None, :, None]
    top = image[:, y0][:, :, x0] + (image[:, y0][:, :, x1] - image[:, y0][:, :, x0]) * dx
    bottom = image[:, y1][:, :, x0] + (image[:, y1][:, :, x1] - image[:, y1][:, :, x0]) * dx
    return top + (bottom - top) * dy[None, :, None, None]


def _nearest_axis(in_size, out_size, align, half_pixel):
    scale = _resize_scale(in_size, out_size, align)
    i = np.arange(out_size, dtype=np.float32)
    src = (i + np.float32(0.5)) * scale if half_pixel else i * scale
    index = np.floor(src + np.float32(0.5)) if align else np.floor(src)  # round half up
    return np.clip(index.astype(np.int64), 0, in_size - 1)


def _resize_nearest(ctx: Ctx, x, size):
    align, half = ctx.attr("align_corners", False), ctx.attr("half_pixel_centers", False)
    (oh, ow), (_, h, w, _) = size.tolist(), x.shape
    rows, cols = _nearest_axis(h, oh, align, half), _nearest_axis(w, ow, align, half)
    return x[:, rows][:, :, cols]


define("ResizeBilinear", shape=_resize_shape, kernel=_resize_bilinear)
define("ResizeNearestNeighbor", shape=_resize_shape, kernel=_resize_nearest)


# -- space/batch/depth rearrangements --------------------------------------------------------
def _block_operands(ctx: Ctx):
    """(input shape, block sizes, paddings/crops rows) of Space<->Batch ops, or None."""
    x, block, rows = ctx.shape(0), ctx.ints(1), ctx.value(2)
    if x is None or block is None or rows is None:
        return None
    return x, block, rows.tolist()


def _unknown_like_input(ctx: Ctx):
    x = ctx.shape(0)
    return out(ctx.out_dtype(), None if x is None else (None,) * len(x))


def _space_to_batch_shape(ctx: Ctx):
    operands = _block_operands(ctx)
    if operands is None:
        return _unknown_like_input(ctx)
    x, block, pads = operands
    dims = list(x)
    batch = x[0]
    for i, (b, (lo, hi)) in enumerate(zip(block, pads)):
        size = x[1 + i]
        if size is not None and (size + lo + hi) % b:
            raise ctx.error(f"pads dimension {1 + i} of shape {format_shape(x)} to "
                            f"{size + lo + hi}, not a multiple of block size {b}")
        dims[1 + i] = None if size is None else (size + lo + hi) // b
        batch = None if batch is None else batch * b
    dims[0] = batch
    return out(ctx.out_dtype(), dims)


def _batch_to_space_shape(ctx: Ctx):
    operands = _block_operands(ctx)
    if operands is None:
        return _unknown_like_input(ctx)
    x, block, crops = operands
    dims = list(x)
    total = int(np.prod(block))
    if x[0] is not None and x[0] % total:
        raise ctx.error(f"has batch {x[0]}, not a multiple of the block sizes {block}")
    dims[0] = None if x[0] is None else x[0] // total
    for i, (b, (lo, hi)) in enumerate(zip(block, crops)):
        dims[1 + i] = None if x[1 + i] is None else x[1 + i] * b - lo - hi
    return out(ctx.out_dtype(), dims)


def _space_to_batch(ctx: Ctx, x, block, pads):
    block, pads = block.tolist(), pads.tolist()
    m = len(block)
    x = np.pad(x, [(0, 0)] + pads + [(0, 0)] * (x.ndim - 1 - m))
    n, rest = x.shape[0], x.shape[1 + m:]
    split = [n]
    for i, b in enumerate(block):
        split += [x.shape[1 + i] // b, b]
    x = x.reshape(split + list(rest))
    order = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)]
    order += list(range(1 + 2 * m, x.ndim))
    x = x.transpose(order)
    return x.reshape([n * int(np.prod(block))] + [x.shape[m + 1 + i] for i in range(m)]
                     + list(rest))


def _batch_to_space(ctx: Ctx, x, block, crops):
    block, crops = block.tolist(), crops.tolist()
    m = len(block)
    n = x.shape[0] // int(np.prod(block))
    spatial, rest = list(x.shape[1:1 + m]), list(x.shape[1 + m:])
    x = x.reshape(block + [n] + spatial + rest)
    order = [m]
    for i in range(m):
        order += [m + 1 + i, i]
    order += list(range(2 * m + 1, x.ndim))
    x = x.transpose(order).reshape([n] + [s * b for s, b in zip(spatial, block)] + rest)
    index = [slice(None)] + [slice(lo, x.shape[1 + i] - hi) for i, (lo, hi) in enumerate(crops)]
    return x[tuple(index)]


define("SpaceToBatchND", shape=_space_to_batch_shape, kernel=_space_to_batch)
define("BatchToSpaceND", shape=_batch_to_space_shape, kernel=_batch_to_space)


def _depth_space_shape(ctx: Ctx):
    x, dtype, block = ctx.shape(0), ctx.out_dtype(), ctx.attr("block_size")
    if x is None:
        return out(dtype, None)
    channel, spatial = data_format_axes(ctx, len(x))
    dims = list(x)
    to_space = ctx.op == "DepthToSpace"
    for a in spatial:
        dims[a] = None if x[a] is None else (x[a] * block if to_space else x[a] // block)
    c = x[channel]
    dims[channel] = None if c is None else (c // block ** 2 if to_space else c * block ** 2)
    return out(dtype, dims)


define("DepthToSpace", "SpaceToDepth", shape=_depth_space_shape)


# Signatures only (no shapes, no kernels): ops with several outputs that a function body
# may name by output arg.
define("TopKV2", outputs=2, output_args=("values", "indices"))
define("MaxPoolWithArgmax", outputs=2, output_args=("output", "argmax"))
define("NonMaxSuppressionV4", outputs=2, output_args=("selected_indices", "valid_outputs"))
define("NonMaxSuppressionV5", outputs=3,
       output_args=("selected_indices", "selected_scores", "valid_outputs"))
