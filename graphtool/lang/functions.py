"""The functions expressions may call, and the registry of named Python helpers.

Built-in functions (``sqrt``, ``reshape``, ``attr``, ``shape``, ...) are the
whole vocabulary of expressions; the evaluator refuses any other call.  Every
numeric function accepts captures (their constant value is used) and numpy
arrays with broadcasting.  Functions whose first argument is a node
(``attr``, ``op``, ``name``, ...) want a capture.

Helpers registered with ``@register_function("name")`` are the escape hatch for
what expressions cannot say; rules reference them as ``call: name`` with
``args:`` expressions.  See docs/rules.md for how each use site calls them.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import numpy as np

from graphtool.dtypes import DType, as_dtype, to_numpy
from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.lang.capture import Capture

MAX_ELEMENTS = 1 << 26  # arrays built by expressions are refused above this size

CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "nan": math.nan}
CONSTANTS.update({name: DType[name] for name in (
    "float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool", "string")})

class _NoDefault:
    def __repr__(self) -> str:
        return "error"


_MISSING = _NoDefault()


def value_of(x):
    """The numeric value behind a capture; other values unchanged."""
    return x.value if isinstance(x, Capture) else x


def _array(x) -> np.ndarray:
    return np.asarray(value_of(x))


def _capture(x, function: str) -> Capture:
    if not isinstance(x, Capture):
        raise GraphtoolError(f"{function}() wants a capture name as its first argument, "
                             f"not {type(x).__name__}")
    return x


def _not_static(x: Capture, fact: str, why: str) -> GraphtoolError:
    node = x.node
    return GraphtoolError(f"the {fact} of {x.name!r} (node {node.name!r}, {node.op}) is {why}")


def _np_dtype(dtype):
    return to_numpy(as_dtype(dtype))


def _check_size(shape) -> list[int]:
    dims = [int(d) for d in (list(shape) if np.ndim(shape) else [shape])]
    if any(d < 0 for d in dims):
        raise GraphtoolError(f"negative dimension in shape {dims}")
    if math.prod(dims) > MAX_ELEMENTS:
        raise GraphtoolError(f"shape {dims} has more than {MAX_ELEMENTS} elements")
    return dims


# -- node facts -----------------------------------------------------------------
def attr(x, key, default=_MISSING):
    """Attr ``key`` of the captured node (decoded: int, float, str, list, DType, ...)."""
    capture = _capture(x, "attr")
    if default is _MISSING:
        return capture.attr(key)
    return capture.attr(key, default)


def has_attr(x, key) -> bool:
    return _capture(x, "has_attr").node.has_attr(key)


def op(x) -> str:
    return _capture(x, "op").node.op


def name(x) -> str:
    return _capture(x, "name").node.name


def is_const(x) -> bool:
    return not isinstance(x, Capture) or x.is_const


def value(x):
    return value_of(x)


def num_consumers(x) -> int:
    """How many nodes read the captured node (data or control)."""
    node = _capture(x, "num_consumers").node
    return node.graph.reader_count(node.name)  # a count from the consumer index, no Node list


def dtype(x) -> DType:
    """Element type: of an array, a constant, or a node's ``T``/``dtype`` attr."""
    if isinstance(x, Capture):
        found = x.static_dtype()
        if found is None:
            raise _not_static(x, "dtype", "not recorded in a T or dtype attr")
        return found
    return as_dtype(_array(x).dtype)


def shape(x) -> list[int]:
    """Static shape as a list: of an array, a constant, or a node with a recorded shape."""
    if isinstance(x, Capture):
        dims = x.static_shape()
        if dims is None:
            raise _not_static(x, "shape", "not known statically; test known_shape(...) first")
        return dims
    if isinstance(x, (list, tuple)) and any(isinstance(i, Capture) for i in x):
        return [len(x)]
    return list(np.shape(x))


def known_shape(x) -> bool:
    return not isinstance(x, Capture) or x.static_dims() is not None


def _dims(x):
    """``shape(x)``, as a capture's remembered tuple when it has one (no list built)."""
    if isinstance(x, Capture):
        dims = x.static_dims()
        if dims is not None:
            return dims
    return shape(x)


def rank(x) -> int:
    return len(_dims(x))


def size(x) -> int:
    return int(math.prod(_dims(x)))


def length(x) -> int:
    if isinstance(x, (list, tuple, str)):
        return len(x)
    return len(_array(x))


# -- elementwise ------------------------------------------------------------------
def _unary(function):
    return lambda x: function(_array(x))


def rsqrt(x):
    return 1.0 / np.sqrt(_array(x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-_array(x)))


def erf(x):
    a = _array(x)
    result = np.vectorize(math.erf, otypes=[np.float64])(a)
    return result.astype(a.dtype) if a.dtype.kind == "f" else result


def clip(x, low, high):
    return np.clip(_array(x), value_of(low), value_of(high))


def where(condition, a, b):
    return np.where(_array(condition), value_of(a), value_of(b))


def minimum(a, b):
    return np.minimum(value_of(a), value_of(b))


def maximum(a, b):
    return np.maximum(value_of(a), value_of(b))


# -- reductions ---------------------------------------------------------------------
def _reduce(function):
    def reduce(x, axis=None):
        return function(_array(x), axis=None if axis is None else _axis(axis))
    return reduce


def _axis(axis):
    axis = value_of(axis)
    return tuple(int(a) for a in axis) if np.ndim(axis) else int(axis)


def all_equal(x) -> bool:
    """Every element has the same value (true for empty arrays)."""
    a = _array(x)
    return bool(a.size == 0 or np.all(a == a.reshape(-1)[0]))


def allclose(a, b, rtol=1e-5, atol=1e-8) -> bool:
    a, b = _array(a), _array(b)
    try:
        return bool(np.allclose(a, b, rtol=rtol, atol=atol))
    except ValueError:
        return False


def isclose(a, b, rtol=1e-5, atol=1e-8):
    return np.isclose(_array(a), _array(b), rtol=rtol, atol=atol)


# -- shapes ---------------------------------------------------------------------------
def reshape(x, new_shape):
    dims = value_of(new_shape)
    if type(dims) is not list or not {int}.issuperset(map(type, dims)):  # [-1] is the usual
        dims = [int(d) for d in np.ravel(dims)]
    return _array(x).reshape(dims)  # the method: np.reshape adds two Python calls


def transpose(x, perm=None):
    return np.transpose(_array(x), None if perm is None else [int(p) for p in value_of(perm)])


def expand_dims(x, axis):
    return np.expand_dims(_array(x), _axis(axis))


def squeeze(x, axis=None):
    return np.squeeze(_array(x), None if axis is None else _axis(axis))


def concat(items, axis=0):
    return np.concatenate([_array(i) for i in items], axis=int(axis))


def stack(items, axis=0):
    return np.stack([_array(i) for i in items], axis=int(axis))


def broadcast_to(x, new_shape):
    return np.broadcast_to(_array(x), _check_size(value_of(new_shape))).copy()


def tile(x, reps):
    a = _array(x)
    reps = [int(r) for r in np.ravel(value_of(reps))]
    result_shape = np.multiply(list(a.shape) + [1] * max(0, len(reps) - a.ndim),
                               reps + [1] * max(0, a.ndim - len(reps)))
    _check_size(result_shape)
    return np.tile(a, reps)


def ones(new_shape, dtype=DType.float32):
    return np.ones(_check_size(value_of(new_shape)), _np_dtype(dtype))


def zeros(new_shape, dtype=DType.float32):
    return np.zeros(_check_size(value_of(new_shape)), _np_dtype(dtype))


def full(new_shape, fill, dtype=None):
    fill = value_of(fill)
    return np.full(_check_size(value_of(new_shape)), fill,
                   None if dtype is None else _np_dtype(dtype))


def arange(start, stop=None, step=1):
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    _check_size(values.shape)
    return values


def array(x, dtype=None):
    a = np.array(value_of(x) if not isinstance(x, list) else [value_of(i) for i in x])
    return a if dtype is None else a.astype(_np_dtype(dtype))


def cast(x, dtype):
    return _array(x).astype(_np_dtype(dtype))


def to_float(x) -> float:
    return float(np.asarray(value_of(x)).reshape(()))


def to_int(x) -> int:
    return int(np.asarray(value_of(x)).reshape(()))


FUNCTIONS: dict[str, Callable] = {
    # node facts
    "attr": attr, "has_attr": has_attr, "op": op, "name": name, "is_const": is_const,
    "value": value, "num_consumers": num_consumers, "dtype": dtype, "shape": shape,
    "known_shape": known_shape, "rank": rank, "size": size, "len": length,
    # elementwise
    "abs": _unary(np.abs), "sqrt": _unary(np.sqrt), "rsqrt": rsqrt, "exp": _unary(np.exp),
    "log": _unary(np.log), "square": _unary(np.square), "sign": _unary(np.sign),
    "floor": _unary(np.floor), "ceil": _unary(np.ceil), "round": _unary(np.round),
    "tanh": _unary(np.tanh), "sigmoid": sigmoid, "erf": erf,
    "reciprocal": _unary(np.reciprocal), "clip": clip, "where": where,
    "minimum": minimum, "maximum": maximum,
    # reductions
    "sum": _reduce(np.sum), "mean": _reduce(np.mean), "prod": _reduce(np.prod),
    "min": _reduce(np.min), "max": _reduce(np.max), "all": _reduce(np.all),
    "any": _reduce(np.any), "all_equal": all_equal, "allclose": allclose, "isclose": isclose,
    # shapes and construction
    "reshape": reshape, "transpose": transpose, "expand_dims": expand_dims,
    "squeeze": squeeze, "concat": concat, "stack": stack, "broadcast_to": broadcast_to,
    "tile": tile, "ones": ones, "zeros": zeros, "full": full, "arange": arange,
    "array": array, "cast": cast, "float": to_float, "int": to_int,
}


def _signature(function: Callable):
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def check_call(function_name: str, n_args: int, keywords: list[str]) -> str | None:
    """Why a call with this many arguments and these keywords cannot work, or None."""
    sig = _signature(FUNCTIONS[function_name])
    if sig is None:
        return None
    try:
        sig.bind(*([None] * n_args), **{k: None for k in keywords})
    except TypeError as exc:
        return f"{function_name}{sig}: {exc}"
    return None


# -- the escape hatch -------------------------------------------------------------------
_HELPERS: dict[str, Callable] = {}


def register_function(helper_name: str):
    """Register a Python function that rules can reference as ``call: helper_name``.

    For a computed value or a ``where:`` condition it is called with the
    evaluated ``args:``; for ``replace: {call: ...}`` it is called as
    ``function(edit, match, *args)`` and does the rewrite itself.
    """
    def decorate(function: Callable) -> Callable:
        old = _HELPERS.get(helper_name)
        if old is not None and (old.__module__, old.__qualname__) != (
                function.__module__, function.__qualname__):
            raise GraphtoolError(f"a helper function named {helper_name!r} is already "
                                 f"registered by {old.__module__}; choose another name")
        _HELPERS[helper_name] = function
        return function
    return decorate


def helper(helper_name: str) -> Callable:
    """The registered helper called ``helper_name``; an error with suggestions otherwise."""
    _load_builtin_helpers()
    function = _HELPERS.get(helper_name)
    if function is None:
        known = sorted(_HELPERS)
        raise GraphtoolError(f"no helper function {helper_name!r} is registered"
                             + (did_you_mean(helper_name, known)
                                or f"; registered: {', '.join(known) or 'none'}")
                             + "; list the module that registers it under python:")
    return function


def registered_helpers() -> list[str]:
    _load_builtin_helpers()
    return sorted(_HELPERS)


def _load_builtin_helpers() -> None:
    import graphtool.rewrite.helpers  # noqa: F401  (registers graphtool's own helpers)
