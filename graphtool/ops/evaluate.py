"""Running op entries: output infos of a node, kernels on arrays, partial values.

Shared by shape inference (small values only) and constant folding (any size
up to a limit), so both agree on what a node computes.
"""
from __future__ import annotations

import numpy as np

from graphtool.dtypes import DType, as_dtype, to_numpy
from graphtool.errors import GraphtoolError
from graphtool.ops.context import PARTIAL_LIMIT, CannotEvaluate, Ctx, TensorInfo, dict_attrs
from graphtool.ops.registry import OpDef, get

# What a kernel raises when it cannot compute a value: the node is then not folded.
EVAL_ERRORS = (CannotEvaluate, ArithmeticError, ValueError, TypeError, IndexError)
_NO_NUMPY = {DType.resource, DType.variant}
_WANT: dict = {}  # DType -> numpy dtype, for run_kernel's casts


class _Unknown:
    """An unknown element of a partially known int vector; arithmetic keeps it unknown,
    anything that needs its value (comparison, int(), indexing) fails."""
    __slots__ = ()

    def _stay(self, *_):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _stay
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __neg__ = __pos__ = __abs__ = _stay

    def _fail(self, *_):
        raise TypeError("unknown value")

    __int__ = __index__ = __bool__ = __float__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = _fail

    def __repr__(self) -> str:
        return "?"


UNKNOWN_ELEMENT = _Unknown()


def normalize_outputs(result) -> list:
    kind = type(result)
    if kind is TensorInfo or kind is np.ndarray:  # the common single outputs
        return [result]
    if isinstance(result, TensorInfo) or not isinstance(result, (list, tuple)):
        return [result]
    return list(result)


def placeholder_array(info: TensorInfo) -> np.ndarray | None:
    """A zero-cost array of the right dtype and shape for inputs whose values a kernel
    ignores (Shape, ZerosLike)."""
    if not info.fully_known or info.dtype is None or info.dtype in _NO_NUMPY:
        return None
    return np.broadcast_to(np.zeros((), to_numpy(info.dtype)), info.shape)


def kernel_arguments(opdef: OpDef, ctx: Ctx, values: list) -> list | None:
    """Kernel inputs: known values, or shape-only stand-ins where the op allows."""
    args = []
    for i, info in enumerate(ctx.inputs):
        value = values[i]
        if value is None and not opdef.reads_value(i):
            value = placeholder_array(info)
        if value is None:
            return None
        args.append(value)
    return args


def _call(opdef: OpDef, ctx: Ctx, args: list) -> list | None:
    """The kernel's outputs as a list; None when it declines or fails on these inputs.
    (Callers silence numpy's floating-point warnings once, around their whole loop.)"""
    try:
        result = opdef.kernel(ctx, *args)
    except EVAL_ERRORS:
        return None
    return [result] if type(result) is np.ndarray else normalize_outputs(result)


def run_kernel(opdef: OpDef, ctx: Ctx, args: list, expected: list[TensorInfo] | None = None):
    """Output arrays of the kernel (None for outputs it cannot give), cast to the
    expected dtypes; None when the kernel declines."""
    results = _call(opdef, ctx, args)
    if results is None:
        return None
    arrays = []
    known = len(expected) if expected is not None else 0
    for k, result in enumerate(results):
        if result is None:
            arrays.append(None)
            continue
        array = result if type(result) is np.ndarray else np.asarray(result)
        if k >= known:
            arrays.append(array)
            continue
        dtype, shape = expected[k].dtype, expected[k].shape
        if dtype is not None and dtype not in _NO_NUMPY:
            want = _WANT.get(dtype)
            if want is None:
                want = _WANT[dtype] = to_numpy(dtype)
            if array.dtype is not want and array.dtype != want:  # built-in dtypes are singletons
                array = array.astype(want)
        if shape is not None and array.shape != shape and not _fits(array.shape, shape):
            raise RuntimeError(
                f"graphtool.ops: {ctx.op} kernel gave shape {array.shape} for node "
                f"{ctx.name!r} but its shape function says {shape}")
        arrays.append(array)
    return arrays


def _fits(actual, static) -> bool:
    return len(actual) == len(static) and all(s is None or s == a for a, s in zip(actual, static))


def _as_object_array(info: TensorInfo) -> np.ndarray | None:
    elements = info.elements()
    if elements is None or not info.fully_known:
        return None
    array = np.empty(len(elements), dtype=object)
    array[:] = [UNKNOWN_ELEMENT if e is None else e for e in elements]
    return array.reshape(info.shape)


def partial_values(opdef: OpDef, ctx: Ctx, infos: list[TensorInfo]) -> list | None:
    """Run a data-moving kernel on partially known int vectors; elements stay None
    where unknown.  None when it does not apply."""
    args, unknown = [], False
    for i, info in enumerate(ctx.inputs):
        if not opdef.reads_value(i):
            args.append(placeholder_array(info))
            if args[-1] is None:
                return None
            continue
        array = _as_object_array(info)
        if array is None:
            return None
        unknown = unknown or info.value is None
        args.append(array)
    results = _call(opdef, ctx, args) if unknown else None
    if results is None:
        return None
    partials = []
    for k, result in enumerate(results):
        info = infos[k] if k < len(infos) else None
        result = np.asarray(result, dtype=object) if result is not None else None
        if (result is None or info is None or info.dtype is None or not info.dtype.name.startswith(
                ("int", "uint")) or result.ndim > 1 or result.size > PARTIAL_LIMIT):
            partials.append(None)
            continue
        partials.append(tuple(None if isinstance(e, _Unknown) else int(e)
                              for e in result.reshape(-1)))
    return partials


def infer_node(opdef: OpDef, ctx: Ctx) -> list[TensorInfo]:
    """Output infos of one node: the shape function, then values where the inputs allow
    (small tensors only, see ``ctx.value_limit``)."""
    infos = normalize_outputs(opdef.shape(ctx))
    if opdef.stateful:
        return [TensorInfo(i.dtype, i.shape) for i in infos]
    if not opdef.foldable or _blocked(opdef, ctx.inputs) or all(_has_value(i) for i in infos):
        return _settled(infos)
    values = [info.value for info in ctx.inputs]
    args = kernel_arguments(opdef, ctx, values)
    if args is not None and _small(infos, args, ctx.value_limit):
        arrays = run_kernel(opdef, ctx, args, infos)
        if arrays is not None:
            return [settle(info._replace(value=_frozen(a)) if a is not None else info)
                    for info, a in zip(infos, arrays)]
    elif opdef.partial:
        partials = partial_values(opdef, ctx, infos)
        if partials is not None:
            infos = [info._replace(partial=p) if p is not None and info.partial is None else info
                     for info, p in zip(infos, partials)]
    return _settled(infos)


def _blocked(opdef: OpDef, inputs: list[TensorInfo]) -> bool:
    """Whether an input whose value the kernel reads has no known element: then neither
    the kernel nor a partial run can apply (most nodes: float activations), and the
    argument building is skipped."""
    reads = opdef.value_inputs  # OpDef.reads_value inlined: asked for most nodes
    for i, info in enumerate(inputs):
        if info.value is None and info.partial is None and (reads is None or i in reads):
            return True
    return False


def _settled(infos: list[TensorInfo]) -> list[TensorInfo]:
    """``settle`` on each info; the list itself when none has a partial value (most)."""
    for info in infos:
        if info.partial is not None:
            return [settle(i) for i in infos]
    return infos


def _has_value(info: TensorInfo) -> bool:
    return info.value is not None or (info.partial is not None and None not in info.partial)


def _small(infos, args, limit: int) -> bool:
    if any(a.size > limit and any(a.strides) for a in args):
        return False
    return all(i.size is not None and i.size <= limit for i in infos)


def _frozen(array: np.ndarray) -> np.ndarray:
    if array.flags.writeable:
        array.flags.writeable = False
    return array


def settle(info: TensorInfo) -> TensorInfo:
    """Make value and partial agree: a fully known partial becomes a value."""
    if info.value is None and info.partial is not None and None not in info.partial \
            and info.fully_known and info.dtype is not None and info.dtype not in _NO_NUMPY:
        value = np.array(info.partial, dtype=to_numpy(info.dtype)).reshape(info.shape)
        return info._replace(value=_frozen(value))
    return info


def evaluate(op: str, inputs, attrs: dict | None = None, name: str = "evaluate") -> list:
    """Compute op ``op`` on numpy ``inputs`` with ``attrs`` (TF attr names), as folding
    would: a list with one array per output (None where the kernel gives none)."""
    opdef = get(op)
    if opdef is None or opdef.kernel is None:
        raise GraphtoolError(f"graphtool cannot evaluate op {op!r}: it has no numpy kernel")
    arrays = [np.asarray(a) for a in inputs]
    infos = [TensorInfo(as_dtype(a.dtype) if a.dtype != object else DType.string,
                        tuple(a.shape), a) for a in arrays]
    ctx = Ctx(op, name, infos, dict_attrs(attrs or {}), value_limit=2**62)
    expected = normalize_outputs(opdef.shape(ctx)) if opdef.shape else None
    with np.errstate(all="ignore"):
        result = run_kernel(opdef, ctx, arrays, expected)
    if result is None:
        raise GraphtoolError(f"{op} cannot be evaluated on these inputs (TensorFlow would "
                             "fail, or the result is platform-defined)")
    return result
