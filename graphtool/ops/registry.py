"""The op table: one ``OpDef`` per TensorFlow op, filled in by the family modules.

An entry says how many outputs the op has, how to compute their dtypes and
static shapes (``shape``), how to compute their values with numpy
(``kernel``), and whether the op may be folded at all.  Everything else in
graphtool (shape inference, folding, rules, lint, render) asks this table
instead of hard-coding op names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from graphtool.ops.context import Ctx, TensorInfo

# The op that holds a constant; folding writes its results as nodes of this op.
CONST_OP = "Const"


@dataclass(frozen=True)
class OpDef:
    """What graphtool knows about one op.

    shape:  ``shape(ctx) -> TensorInfo | list[TensorInfo]``: output dtypes and
            static shapes; may also give values known from shapes alone.
    kernel: ``kernel(ctx, *arrays) -> array | list``: output values on numpy inputs;
            raise ``CannotEvaluate`` to decline.  None: never folded.
    outputs: number of outputs, or ``outputs(ctx) -> int`` when attrs decide.
    stateful: side effects or randomness; never folded, values never assumed.
    value_inputs: data inputs whose *values* the kernel reads (None: all); the
            others only need a known shape (Shape, ZerosLike, ...).
    partial: the kernel only moves or combines elements, so it also runs on
            partially known int vectors (e.g. StridedSlice of a Shape).
    constant: the node's value is in its own attrs (Const).
    keeps_bytes: output 0 holds input 0's elements in the same order (Identity,
            Reshape), so folding can copy the stored bytes instead of decoding them.
    identity: output 0 is input 0 as it is (Identity and its aliases): folding gives it
            its input's dtype and shape without a Ctx or the shape function.
    dims_input: with ``keeps_bytes``, the data input whose value lists output 0's dims
            (Reshape): when those are all given and hold input 0's elements, folding
            takes them without a Ctx or the shape function (which decides the rest).
    node_info: ``node_info(node_def, value_limit) -> TensorInfo``: the output of an op
            without inputs read straight from its NodeDef, skipping the Ctx
            (Const: every graph has many, and each costs only a header read).
    output_args: the names of the outputs in the op's signature, for ops with several
            (a FunctionDef body names tensors ``node:arg:index``; inlining needs ports).
            An op may have an entry with only this (and ``outputs``) filled in.
    """
    name: str
    shape: Callable[[Ctx], TensorInfo | list] | None = None
    kernel: Callable | None = None
    outputs: int | Callable[[Ctx], int] = 1
    stateful: bool = False
    value_inputs: tuple[int, ...] | None = None
    partial: bool = False
    constant: bool = False
    keeps_bytes: bool = False
    identity: bool = False
    dims_input: int | None = None
    node_info: Callable | None = None
    output_args: tuple[str, ...] = ()
    family: str = ""

    @property
    def foldable(self) -> bool:
        return self.kernel is not None and not self.stateful and not self.constant

    def reads_value(self, index: int) -> bool:
        return self.value_inputs is None or index in self.value_inputs

    def num_outputs(self, ctx: Ctx) -> int:
        return self.outputs(ctx) if callable(self.outputs) else self.outputs


OPS: dict[str, OpDef] = {}


def define(*names: str, family: str = "", **fields) -> None:
    """Register the same entry under each of ``names`` (aliases such as Add/AddV2)."""
    for name in names:
        if name in OPS:
            raise ValueError(f"op {name} is defined twice in graphtool.ops")
        OPS[name] = OpDef(name=name, family=family, **fields)


def family(name: str) -> Callable:
    """``define`` with the family filled in, for use inside a family module."""
    def define_in_family(*names: str, **fields) -> None:
        define(*names, family=name, **fields)
    return define_in_family


def get(op: str) -> OpDef | None:
    """The entry for op type ``op``, or None when graphtool does not know it."""
    return OPS.get(op)
