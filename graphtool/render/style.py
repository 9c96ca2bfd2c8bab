"""How rendered graphs look: op families, their colours, and diff mark styles.

How ops look lives in the tables below, so a new op family or a new colour
is a one-line data change (what ops compute, including which ones hold
constants, comes from the op table in ``graphtool.ops``).  An op's family comes from
the first pattern that matches its name; ops no pattern knows are "other".
The same op therefore always gets the same colour, in every graph and every
run, which lets a reader learn the palette once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Family:
    """A group of ops drawn alike."""
    name: str
    fill: str
    pattern: str  # regular expression matched against the whole op name


# Order matters: the first matching family wins (e.g. "Conv2DBackpropInput" is conv,
# "BatchMatMul" is matmul, "AvgPool" is pool before "reduce" sees it).
FAMILIES = (
    Family("input", "#ffe9a8", r"Placeholder(WithDefault)?"),
    Family("const", "#eeeeee", r"Const|HostConst"),
    Family("call", "#f4c7c3", r".*PartitionedCall|.*Function.*|If|While|Stateless(If|While)"),
    Family("conv", "#a9cdf5", r".*Conv.*|.*Deconv.*"),
    Family("matmul", "#b7d9f7", r".*MatMul.*|Einsum"),
    Family("norm", "#c9e7c0", r".*BatchNorm.*|LRN|L2Normalize|MVN|.*LayerNorm.*"),
    Family("activation", "#fcd5b5",
           r"Relu6?|LeakyRelu|Elu|Selu|Celu|Gelu.*|Sigmoid|HardSigmoid|Tanh|Softmax|"
           r"LogSoftmax|Softplus|Softsign|Swish|HardSwish|Mish|PReLU|Erfc?"),
    Family("pool", "#d9c9ef", r".*Pool.*"),
    Family("reduce", "#e3d7f3", r"Mean|Sum|Max|Min|Prod|All|Any|ArgMax|ArgMin"),
    Family("arith", "#fff6c8",
           r"Add|AddV2|AddN|BiasAdd|Sub|Mul|RealDiv|Div|FloorDiv|Maximum|Minimum|Square|"
           r"SquaredDifference|Sqrt|Rsqrt|Reciprocal|Exp|Log|Log1p|Abs|Neg|Pow|Sign|Floor|"
           r"Ceil|Round|Sin|Cos|ClipByValue|Cast"),
    Family("shape", "#d7eef0",
           r"Reshape|Squeeze|ExpandDims|Transpose|Shape|ShapeN|Size|Rank|Pack|Unpack|"
           r"Concat|ConcatV2|Split|SplitV|Slice|StridedSlice|Pad|PadV2|MirrorPad|Tile|"
           r"Gather.*|Flatten|SpaceToBatchND|BatchToSpaceND|SpaceToDepth|DepthToSpace|"
           r"Resize.*|Fill|Range|ZerosLike|OnesLike|BroadcastTo|Reverse.*"),
    Family("control", "#f5f5f5",
           r"Identity|IdentityN|NoOp|StopGradient|Snapshot|Switch|Merge|Enter|Exit|"
           r"NextIteration|Assert|Print.*"),
)
OTHER = Family("other", "#ffffff", r".*")

# Name components that say nothing about a folded constant; the input slot is shown instead.
GENERIC_NAME_PARTS = frozenset({"ReadVariableOp", "resource", "read", "value", "Read"})


@dataclass(frozen=True)
class MarkStyle:
    """How a diff mark looks: outline colour, fill override and legend wording."""
    kind: str
    colour: str
    fill: str
    legend: str


MARKS = {
    "removed": MarkStyle("removed", "#c62828", "#ffcdd2", "removed (only in before)"),
    "added": MarkStyle("added", "#2e7d32", "#c8e6c9", "added (only in after)"),
    "changed": MarkStyle("changed", "#ef6c00", "#ffe0b2", "changed (attrs, inputs or name)"),
}
# When a collapsed box holds several kinds of mark, the first kind here names it.
MARK_PRECEDENCE = ("removed", "added", "changed")

FONT = "Helvetica"
EDGE_COLOUR = "#555555"
CONTROL_EDGE_COLOUR = "#aaaaaa"
CLUSTER_COLOUR = "#9e9e9e"
CLUSTER_FILL = "#fafafa"
COLLAPSED_FILL = "#eceff1"
FOCUS_COLOUR = "#1565c0"
DETAIL_COLOUR = "#555555"


def is_constant(op: str) -> bool:
    """Ops whose value sits in their own attrs (drawn inside their readers' labels)."""
    from graphtool import ops

    entry = ops.get(op)
    return entry is not None and entry.constant


def is_pass_through(node) -> bool:
    """One data input whose elements flow out unchanged: folded along with a constant."""
    from graphtool import ops

    entry = ops.get(node.op)
    return entry is not None and entry.keeps_bytes and len(node.data_inputs) == 1


@lru_cache(maxsize=None)
def family_of(op: str) -> Family:
    """The family an op belongs to (``OTHER`` when no pattern matches)."""
    for family in FAMILIES:
        if re.fullmatch(family.pattern, op):
            return family
    return OTHER


def fill_of(op: str) -> str:
    return family_of(op).fill
