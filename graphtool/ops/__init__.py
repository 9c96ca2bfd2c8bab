"""The single table of TensorFlow op semantics: shapes, dtypes and numpy kernels.

    >>> from graphtool import ops
    >>> ops.get("Conv2D").foldable
    True
    >>> ops.evaluate("AddV2", [np.ones(2, np.float32), np.float32(1)])
    [array([2., 2.], dtype=float32)]

Entries live in family modules (``basic``, ``elementwise``, ``array``,
``math``, ``nn``); ``registry`` holds the table and ``evaluate`` runs entries.
See docs/ops.md for adding an op.
"""
from __future__ import annotations

from graphtool.ops import array, basic, elementwise, math, nn  # noqa: F401  (fill the table)
from graphtool.ops.context import (UNKNOWN, VALUE_LIMIT, CannotEvaluate, Ctx, TensorInfo,
                                   format_shape)
from graphtool.ops.evaluate import evaluate
from graphtool.ops.registry import CONST_OP, OPS, OpDef, define, get

__all__ = ["CONST_OP", "OPS", "UNKNOWN", "VALUE_LIMIT", "CannotEvaluate", "Ctx", "OpDef",
           "TensorInfo", "define", "evaluate", "format_shape", "get", "is_foldable",
           "known_ops", "num_outputs"]


def _op_name(op) -> str:
    return op if isinstance(op, str) else op.op


def is_foldable(op) -> bool:
    """Whether nodes of this op (a name or a Node) can be replaced by their value."""
    entry = get(_op_name(op))
    return entry is not None and entry.foldable


def is_stateful(op) -> bool:
    """Whether the op has side effects or randomness (unknown ops count as stateful)."""
    entry = get(_op_name(op))
    return entry is None or entry.stateful


def num_outputs(node) -> int | None:
    """How many outputs ``node`` has, or None for ops graphtool does not know."""
    entry = get(node.op)
    if entry is None:
        return None
    ctx = Ctx(node.op, node.name, [UNKNOWN] * len(node.data_inputs), node.attr)
    return entry.num_outputs(ctx)


def known_ops() -> list[str]:
    return sorted(OPS)
