"""TensorFlow data types: enum numbers, short names and numpy equivalents.

numpy is imported only when a numpy dtype is asked for, ml_dtypes (bfloat16, float8,
int4; 0.6 s to import) only for those types, so commands start faster.

A ``DType`` is an ``IntEnum`` (so it compares equal to the raw ``DataType``
number stored in protobufs) whose ``str()`` is TensorFlow's short name
(``float32``), the spelling used in rule files and reports.
"""
from __future__ import annotations

import enum
import functools

from graphtool.errors import GraphtoolError
from graphtool.proto.schema import DATA_TYPES

_SHORT_NAMES = {
    "DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16",
    "DT_BFLOAT16": "bfloat16", "DT_INT8": "int8", "DT_INT16": "int16", "DT_INT32": "int32",
    "DT_INT64": "int64", "DT_UINT8": "uint8", "DT_UINT16": "uint16", "DT_UINT32": "uint32",
    "DT_UINT64": "uint64", "DT_BOOL": "bool", "DT_STRING": "string",
    "DT_COMPLEX64": "complex64", "DT_COMPLEX128": "complex128", "DT_RESOURCE": "resource",
    "DT_VARIANT": "variant", "DT_QINT8": "qint8", "DT_QUINT8": "quint8", "DT_QINT16": "qint16",
    "DT_QUINT16": "quint16", "DT_QINT32": "qint32", "DT_INVALID": "invalid",
    "DT_FLOAT8_E5M2": "float8_e5m2", "DT_FLOAT8_E4M3FN": "float8_e4m3fn",
    "DT_FLOAT8_E4M3FNUZ": "float8_e4m3fnuz", "DT_FLOAT8_E4M3B11FNUZ": "float8_e4m3b11fnuz",
    "DT_FLOAT8_E5M2FNUZ": "float8_e5m2fnuz", "DT_INT4": "int4", "DT_UINT4": "uint4",
    "DT_INT2": "int2", "DT_UINT2": "uint2",
}

DType = enum.IntEnum("DType", {_SHORT_NAMES[k]: v for k, v in DATA_TYPES.items()})
DType.__str__ = lambda self: self.name  # type: ignore[method-assign]
DType.__doc__ = "A TensorFlow DataType; str() gives the short name, e.g. 'float32'."

_BY_NUMBER = {int(d): d for d in DType}
_BY_NUMBER.update({int(d) + 100: d for d in DType if d})  # reference types (DT_FLOAT_REF)

# Bytes per element, known without importing numpy.
_ITEMSIZE = {
    "float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int8": 1, "int16": 2, "int32": 4,
    "int64": 8, "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8, "bool": 1,
    "complex64": 8, "complex128": 16, "qint8": 1, "quint8": 1, "qint16": 2, "quint16": 2,
    "qint32": 4, "float8_e5m2": 1, "float8_e4m3fn": 1, "int4": 1, "uint4": 1,
}


# Types numpy lacks come from ml_dtypes, by name. Importing it takes 0.6 s, so that
# happens only for a graph that holds one of them.
_ML_DTYPES = ("bfloat16", "float8_e5m2", "float8_e4m3fn", "int4", "uint4")


@functools.lru_cache(maxsize=None)
def _numpy_map() -> dict:
    import numpy as np
    return {
        DType.float32: np.float32, DType.float64: np.float64, DType.float16: np.float16,
        DType.int8: np.int8, DType.int16: np.int16,
        DType.int32: np.int32, DType.int64: np.int64, DType.uint8: np.uint8,
        DType.uint16: np.uint16, DType.uint32: np.uint32, DType.uint64: np.uint64,
        DType.bool: np.bool_, DType.string: np.object_, DType.complex64: np.complex64,
        DType.complex128: np.complex128, DType.qint8: np.int8, DType.quint8: np.uint8,
        DType.qint16: np.int16, DType.quint16: np.uint16, DType.qint32: np.int32,
    }


@functools.lru_cache(maxsize=None)
def _ml_numpy_map() -> dict:
    import ml_dtypes
    return {DType[name]: getattr(ml_dtypes, name) for name in _ML_DTYPES}


@functools.lru_cache(maxsize=None)
def _from_numpy_map() -> dict:
    import numpy as np
    return {np.dtype(v): k for k, v in reversed(list(_numpy_map().items()))
            if not k.name.startswith("q")}


@functools.lru_cache(maxsize=None)
def _from_ml_numpy_map() -> dict:
    import numpy as np
    return {np.dtype(v): k for k, v in _ml_numpy_map().items()}


def _from_ml_dtype(dtype):
    """The DType of an ml_dtypes numpy dtype, or None; with ml_dtypes not loaded, no
    array can have such a type, so it is not imported for the question."""
    import sys
    if "ml_dtypes" not in sys.modules:
        return None
    return _from_ml_numpy_map().get(dtype)


def itemsize(dtype) -> int:
    """Bytes per element (0 for types without a fixed size, like string)."""
    return _ITEMSIZE.get(as_dtype(dtype).name, 0)


def as_dtype(value) -> DType:
    """Accept a DType, a DataType number (refs folded), 'float32', 'DT_FLOAT' or a numpy dtype."""
    if type(value) is int:  # the common case: a DataType number read from a protobuf
        found = _BY_NUMBER.get(value)
        if found is not None:
            return found
    elif isinstance(value, DType):
        return value
    if isinstance(value, int) and not isinstance(value, bool) or type(value).__name__ in (
            "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
        number = int(value)
        number = number - 100 if number > 100 else number
        try:
            return DType(number)
        except ValueError:
            raise GraphtoolError(f"unknown TensorFlow DataType number {value}") from None
    if isinstance(value, str):
        name = value[3:] if value.startswith("DT_") else value
        name = name[:-4] if name.endswith("_REF") else name
        if value.startswith("DT_") and f"DT_{name}" in _SHORT_NAMES:
            return DType[_SHORT_NAMES[f"DT_{name}"]]
        if name in DType.__members__:
            return DType[name]
        aliases = {"float": DType.float32, "double": DType.float64, "half": DType.float16}
        if name in aliases:
            return aliases[name]
        raise GraphtoolError(f"unknown data type {value!r}; use a name like 'float32' or 'int32'")
    import numpy as np
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise GraphtoolError(f"no TensorFlow data type for {value!r}") from None
    found = _from_numpy_map().get(dtype)
    if found is None:
        found = _from_ml_dtype(dtype)
    if found is None:
        raise GraphtoolError(f"no TensorFlow data type for {value!r}")
    return found


_NAMES: dict = {}


def dtype_name(dtype) -> str:
    """The short name of a DType or DataType number ('float32'), remembered: rule checks
    and fold logs name the same few types over and over."""
    name = _NAMES.get(dtype)  # DTypes hash as their numbers: one table for both
    if name is None:
        name = _NAMES[dtype] = str(as_dtype(dtype))
    return name


def to_numpy(dtype) -> np.dtype:
    """The numpy dtype holding values of a TensorFlow dtype."""
    if type(dtype) is DType or type(dtype) is int:  # DTypes and their numbers hash alike
        found = _NUMPY_DTYPES.get(dtype)
        if found is not None:
            return found
    dt = as_dtype(dtype)
    import numpy as np
    table = _ml_numpy_map() if dt.name in _ML_DTYPES else _numpy_map()
    if dt not in table:
        raise GraphtoolError(f"data type {dt} has no numpy equivalent")
    found = _NUMPY_DTYPES[dt] = np.dtype(table[dt])
    return found


_NUMPY_DTYPES: dict = {}  # DType -> np.dtype, filled on first use


def tf_name(dtype) -> str:
    """'DT_FLOAT' style name, as text-format GraphDefs spell it."""
    dt = as_dtype(dtype)
    return next(k for k, v in DATA_TYPES.items() if v == int(dt))
