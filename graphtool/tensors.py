"""TensorProto <-> numpy.

Reading follows TensorFlow's rules: values come from ``tensor_content`` when it
is set, else from the typed ``*_val`` field, where fewer values than elements
means the last one repeats (a "splat"; none at all means zeros).  Writing always
uses ``tensor_content`` for numeric types, because OpenCV's importer reads
weights and most constant operands only from there.
"""
from __future__ import annotations

import math

import numpy as np

from graphtool.dtypes import DType, as_dtype, to_numpy
from graphtool.errors import GraphtoolError
from graphtool.attrs import shape_of, shape_proto  # noqa: F401 (re-exported)
from graphtool.proto import NodeDef, TensorProto

# Which typed field holds the values of each dtype when tensor_content is empty.
_VAL_FIELD = {
    DType.float32: "float_val", DType.float64: "double_val", DType.int32: "int_val",
    DType.int16: "int_val", DType.int8: "int_val", DType.uint8: "int_val",
    DType.uint16: "int_val", DType.qint8: "int_val", DType.quint8: "int_val",
    DType.qint16: "int_val", DType.quint16: "int_val", DType.qint32: "int_val",
    DType.int64: "int64_val", DType.uint32: "uint32_val", DType.uint64: "uint64_val",
    DType.bool: "bool_val", DType.float16: "half_val", DType.bfloat16: "half_val",
    DType.string: "string_val", DType.complex64: "scomplex_val",
    DType.complex128: "dcomplex_val",
}


def to_array(tensor) -> np.ndarray:
    """The value of a TensorProto as a numpy array (read-only when it views the proto's bytes)."""
    dtype = as_dtype(tensor.dtype)
    shape_msg = tensor.tensor_shape
    shape = None if shape_msg.unknown_rank else tuple([d.size for d in shape_msg.dim[:]])
    if shape is None or shape and min(shape) < 0:  # min() without a keyword: cheaper
        raise GraphtoolError(f"a constant tensor has no fully known shape ({shape})")
    return decode(tensor, dtype, shape)


def header_value(tensor, dtype: DType, shape) -> np.ndarray:
    """``to_array`` for a caller that has already read the dtype and shape from the
    TensorProto's header, whatever that shape: one not fully known goes to ``to_array``,
    which refuses it with the reason."""
    if shape is None or shape and min(shape) < 0:
        return to_array(tensor)
    return decode(tensor, dtype, shape)


def decode(tensor, dtype: DType, shape: tuple) -> np.ndarray:
    """``to_array`` for a caller that has already read the dtype and the (fully known)
    shape from the TensorProto's header."""
    np_dtype = to_numpy(dtype)
    count = math.prod(shape)  # exact Python int; np.prod costs more on tiny tuples
    if dtype == DType.string:
        values = list(tensor.string_val)
        return _splat(np.array(values, dtype=object), count, dtype).reshape(shape)
    content = tensor.tensor_content
    if content:
        if len(content) != count * np_dtype.itemsize:
            raise GraphtoolError(
                f"tensor_content holds {len(content)} bytes but a {dtype} tensor of shape "
                f"{list(shape)} needs {count * np_dtype.itemsize}")
        return np.frombuffer(content, dtype=np_dtype).reshape(shape)
    field = _VAL_FIELD.get(dtype)
    if field is None:
        raise GraphtoolError(f"cannot read constant tensors of type {dtype}")
    raw = getattr(tensor, field)[:]  # a list: numpy reads it much faster than the container
    if dtype in (DType.float16, DType.bfloat16):
        values = np.array(raw, dtype=np.uint16).view(np_dtype)
    elif dtype in (DType.complex64, DType.complex128):
        pairs = np.array(raw, dtype=np.float32 if dtype == DType.complex64 else np.float64)
        values = pairs[0::2] + 1j * pairs[1::2]
        values = values.astype(np_dtype)
    else:
        values = np.array(raw).astype(np_dtype, copy=False)
    return _splat(values, count, dtype).reshape(shape)


def _splat(values: np.ndarray, count: int, dtype: DType) -> np.ndarray:
    if len(values) == count:
        return values
    if len(values) > count:
        raise GraphtoolError(f"a {dtype} constant lists {len(values)} values for {count} elements")
    if len(values) == 0:
        fill = b"" if dtype == DType.string else 0
        return np.full(count, fill, dtype=values.dtype if dtype == DType.string
                       else to_numpy(dtype))
    return np.concatenate([values, np.full(count - len(values), values[-1], dtype=values.dtype)])


def from_array(array, dtype=None) -> TensorProto:
    """A TensorProto holding ``array``; numeric data always goes to tensor_content."""
    tensor = TensorProto()
    write_array(tensor, array, dtype)
    return tensor


def write_array(tensor, array, dtype=None) -> DType:
    """Fill an empty TensorProto (e.g. a NodeDef's ``value`` attr, in place, saving
    ``from_array``'s copy) with ``array``; returns the dtype written."""
    array = np.asarray(array)
    dt = array_dtype(array, dtype)
    tensor.dtype = int(dt)
    tensor.tensor_shape.CopyFrom(array_shape(array.shape))  # present even for a scalar
    write_values(tensor, array, dt)
    return dt


def array_dtype(array: np.ndarray, dtype=None) -> DType:
    """The dtype ``write_array`` stores ``array`` as: ``dtype`` when given."""
    if dtype is not None:
        return as_dtype(dtype)
    kind = array.dtype.kind
    return as_dtype(array.dtype if kind != "O" and kind not in "SU" else DType.string)


_SHAPES: dict[tuple, object] = {}  # array shape -> TensorShapeProto, shared: copy, never edit


def array_shape(shape: tuple):
    """A TensorShapeProto for a numpy shape, shared between calls: copying it in one go
    costs less than adding the dims one by one (constants come in few shapes)."""
    proto = _SHAPES.get(shape)
    if proto is None:
        if len(_SHAPES) >= 4096:  # bounded, for long sessions over many graphs
            _SHAPES.clear()
        proto = _SHAPES[shape] = shape_proto(shape)
    return proto


_CONSTS: dict[tuple, object] = {}  # (dtype, shape) -> nameless, valueless Const NodeDef


def const_def(name: str, array, dtype=None):
    """A Const NodeDef called ``name`` holding ``array`` (as ``write_array`` writes it):
    a copy of a cached one of its dtype and shape, named and filled, which costs less
    than setting both attrs field by field."""
    array = np.asarray(array)
    dt = array_dtype(array, dtype)
    msg = NodeDef()
    msg.CopyFrom(_const_template(dt, array.shape))
    msg.name = name
    write_values(msg.attr["value"].tensor, array, dt)
    return msg


def make_const(msg, array, dtype) -> None:
    """Turn NodeDef ``msg``, whose attrs are cleared, into a Const holding ``array``, with
    the attrs ``const_def`` writes: merged from the cached template of its dtype and
    shape in one go.  Its op becomes Const too (set it through ``Node.op`` first, so the
    graph hears of it); name, inputs and device stay."""
    array = np.asarray(array)
    dt = array_dtype(array, dtype)
    msg.MergeFrom(_const_template(dt, array.shape))
    write_values(msg.attr["value"].tensor, array, dt)


def _const_template(dt: DType, shape: tuple):
    key = (dt, shape)
    template = _CONSTS.get(key)
    if template is None:
        if len(_CONSTS) >= 4096:  # bounded, like _SHAPES
            _CONSTS.clear()
        template = _CONSTS[key] = NodeDef(op="Const")
        tensor = template.attr["value"].tensor
        tensor.dtype = int(dt)
        tensor.tensor_shape.CopyFrom(array_shape(shape))
        template.attr["dtype"].type = int(dt)
    return template


def write_values(tensor, array: np.ndarray, dt: DType) -> None:
    """The values part of ``write_array``: tensor_content, or string_val for strings."""
    if dt == DType.string:
        tensor.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1))
        return
    data = np.ascontiguousarray(array, dtype=to_numpy(dt))
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"))
    tensor.tensor_content = data.tobytes()


def uses_tensor_content(tensor) -> bool:
    """Whether OpenCV can read this tensor: numeric data in tensor_content (empty tensors count)."""
    if as_dtype(tensor.dtype) == DType.string:
        return True
    shape = shape_of(tensor.tensor_shape)
    empty = shape is not None and 0 in shape
    return bool(tensor.tensor_content) or empty


def has_typed_values(tensor, dtype=None) -> bool:
    """Whether values sit in the typed ``*_val`` field (scalar/splat form) rather than in
    ``tensor_content``; cheap, unlike reading ``tensor_content`` (which copies the bytes).
    ``dtype``: the tensor's, when the caller has read it already."""
    field = _VAL_FIELD.get(tensor.dtype if dtype is None else dtype)  # DTypes hash as numbers
    if field is None:
        field = _VAL_FIELD.get(as_dtype(tensor.dtype))  # a reference type
    return field is not None and len(getattr(tensor, field)) > 0
