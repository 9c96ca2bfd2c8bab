"""AttrValue <-> plain Python values.

Decoding gives: int, float, bool, str (bytes that are not UTF-8 stay bytes),
``DType``, a shape tuple (None for unknown rank, -1 for unknown dims), a numpy
array for tensors, a list for list attrs, and a ``Func`` for function attrs.
Encoding infers the kind from the Python type; pass ``kind`` where it is
ambiguous (an empty list, a list of shapes, a type given as a string).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graphtool.dtypes import DType, as_dtype
from graphtool.errors import GraphtoolError
from graphtool.proto import AttrValue, TensorShapeProto


def shape_of(proto) -> tuple[int, ...] | None:
    """A TensorShapeProto as a tuple (-1 for unknown dimensions), None for unknown rank.

    Remembered by the message's bytes: serializing costs a third of reading the dims
    (protobuf builds a Python object per dim), and a graph repeats few shapes."""
    key = proto.SerializeToString()
    shape = _SHAPES.get(key, _UNSEEN)
    if shape is _UNSEEN:
        shape = None if proto.unknown_rank else tuple([d.size for d in proto.dim[:]])
        if len(_SHAPES) < _SHAPES_MAX:
            _SHAPES[key] = shape
    return shape


_SHAPES: dict = {}  # serialized TensorShapeProto -> shape_of's answer
_SHAPES_MAX = 1 << 14
_UNSEEN = object()


def shape_proto(shape) -> TensorShapeProto:
    """A TensorShapeProto from a sequence (None/-1 for unknown dims) or None (unknown rank)."""
    proto = TensorShapeProto()
    if shape is None:
        proto.unknown_rank = True
        return proto
    for size in shape:
        proto.dim.add(size=-1 if size is None else int(size))
    return proto


def to_array(tensor):
    from graphtool.tensors import to_array as convert
    return convert(tensor)


def from_array(array):
    from graphtool.tensors import from_array as convert
    return convert(array)

KINDS = ("s", "i", "f", "b", "type", "shape", "tensor", "func", "list", "placeholder")


@dataclass(frozen=True)
class Func:
    """A function attr: a function name with attrs of its own."""
    name: str
    attrs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Shape:
    """Marks a tuple as a shape when encoding (plain tuples become int lists)."""
    dims: tuple | None


def _decode_bytes(raw: bytes):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _decode_func(func) -> Func:
    return Func(func.name, {k: decode(v) for k, v in sorted(func.attr.items())})


def decode(value) -> object:
    """The Python value of an AttrValue."""
    kind = value.WhichOneof("value")
    if kind == "s":
        return _decode_bytes(value.s)
    if kind in ("i", "f", "b", "placeholder"):
        return getattr(value, kind)
    if kind == "type":
        return as_dtype(value.type)
    if kind == "shape":
        return shape_of(value.shape)
    if kind == "tensor":
        return to_array(value.tensor)
    if kind == "func":
        return _decode_func(value.func)
    if kind == "list":
        # Remembered by the message's bytes, as shape_of does: reading the fields costs
        # four times the serializing, and a graph repeats few lists (strides, ksize).
        key = value.SerializeToString()
        items = _LISTS.get(key)
        if items is None:
            items = _decode_list(value.list)
            if len(_LISTS) < _LISTS_MAX and not value.list.tensor and not value.list.func:
                _LISTS[key] = items  # (arrays and functions are no items to share)
        return list(items)  # a copy: callers may change their list
    return None


_LISTS: dict = {}  # serialized AttrValue -> decoded list of immutable items
_LISTS_MAX = 1 << 12


def _decode_list(value) -> list:
    # ListFields names the one non-empty kind in a single call (a list holds one kind;
    # should a malformed one hold several, the first in field order wins, as before)
    present = value.ListFields()
    if not present:
        return []
    field, items = present[0]
    name = field.name
    if name == "s":
        return [_decode_bytes(v) for v in items]
    if name == "type":
        return [as_dtype(v) for v in items]
    if name == "shape":
        return [shape_of(v) for v in items]
    if name == "tensor":
        return [to_array(v) for v in items]
    if name == "func":
        return [_decode_func(v) for v in items]
    return list(items)


def _kind_of(value) -> str:
    import numpy as np
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return "b"
    if isinstance(value, DType):
        return "type"
    if isinstance(value, (int, np.integer)):
        return "i"
    if isinstance(value, (float, np.floating)):
        return "f"
    if isinstance(value, (str, bytes)):
        return "s"
    if isinstance(value, Shape):
        return "shape"
    if isinstance(value, np.ndarray):
        return "tensor"
    if isinstance(value, Func):
        return "func"
    if isinstance(value, (list, tuple)):
        return "list"
    raise GraphtoolError(f"cannot store a {type(value).__name__} as a TensorFlow attr")


def _fill(target, kind: str, value) -> None:
    """Store one scalar-kind value into an AttrValue or a ListValue slot owner."""
    if kind == "s":
        target.s = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    elif kind == "i":
        target.i = int(value)
    elif kind == "f":
        target.f = float(value)
    elif kind == "b":
        target.b = bool(value)
    elif kind == "type":
        target.type = int(as_dtype(value))
    elif kind == "shape":
        target.shape.CopyFrom(shape_proto(value.dims if isinstance(value, Shape) else value))
    elif kind == "tensor":
        target.tensor.CopyFrom(from_array(value))
    elif kind == "func":
        target.func.name = value.name
        for k, v in value.attrs.items():
            target.func.attr[k].CopyFrom(encode(v))
    elif kind == "placeholder":
        target.placeholder = str(value)
    else:
        raise GraphtoolError(f"unknown attr kind {kind!r}; use one of {', '.join(KINDS)}")


def encode(value, kind: str | None = None, item_kind: str | None = None) -> AttrValue:
    """An AttrValue for ``value``; ``kind``/``item_kind`` force the (list element) kind."""
    if isinstance(value, AttrValue):
        return value
    kind = kind or _kind_of(value)
    out = AttrValue()
    if kind != "list":
        _fill(out, kind, value)
        return out
    items = list(value)
    item_kind = item_kind or (_kind_of(items[0]) if items else "i")
    lst = out.list
    lst.SetInParent()
    for item in items:
        if item_kind == "s":
            lst.s.append(item.encode("utf-8") if isinstance(item, str) else bytes(item))
        elif item_kind == "i":
            lst.i.append(int(item))
        elif item_kind == "f":
            lst.f.append(float(item))
        elif item_kind == "b":
            lst.b.append(bool(item))
        elif item_kind == "type":
            lst.type.append(int(as_dtype(item)))
        elif item_kind == "shape":
            lst.shape.add().CopyFrom(shape_proto(item.dims if isinstance(item, Shape) else item))
        elif item_kind == "tensor":
            lst.tensor.add().CopyFrom(from_array(item))
        elif item_kind == "func":
            f = lst.func.add(name=item.name)
            for k, v in item.attrs.items():
                f.attr[k].CopyFrom(encode(v))
        else:
            raise GraphtoolError(f"unknown list attr kind {item_kind!r}")
    return out
