"""Built-in actions: whole-graph steps that rule files run by name (``action: prune``).

Some rewrites are not "find a pattern, replace it": folding every constant
subgraph, inlining function calls, pruning, sorting.  They run as named steps
inside a stage, before the stage's pattern rules.  Each action is a Python
function ``action(graph, ctx, **args) -> dict`` registered with
``@register_action(name)``; its keyword arguments are what ``args:`` may
contain (checked when the rule file is loaded), and the dict it returns goes
into the rewrite log (``created`` / ``removed`` / ``changed`` names and any
detail of its own).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

from graphtool.attrs import Shape
from graphtool.errors import GraphtoolError, did_you_mean

_ACTIONS: dict[str, Callable] = {}


@dataclass
class ActionContext:
    """What an action may need beyond the graph."""
    input_shapes: dict = field(default_factory=dict)   # Placeholder name -> list of dims
    stage: str = "main"
    # Shared by every stage of one rewrite: results an action may reuse in a later stage
    # (keyed by the action's own name), e.g. static shapes that rewrites cannot change.
    memo: dict = field(default_factory=dict)
    # What an action leaves for the action right after it only (e.g. the shape analysis
    # a fold kept up to date); the driver empties it after that action and before the
    # stage's pattern rules, so nothing stale is ever read.
    handoff: dict = field(default_factory=dict)


SHAPES_HANDOFF = "shapes"  # ctx.handoff key: a graphtool.analysis.shapes.Shapes of the graph


def register_action(name: str):
    """Register ``function(graph, ctx, **args) -> dict | None`` as action ``name``."""
    def decorate(function: Callable) -> Callable:
        _ACTIONS[name] = function
        return function
    return decorate


def action(name: str) -> Callable:
    function = _ACTIONS.get(name)
    if function is None:
        raise GraphtoolError(f"unknown action {name!r}" + (
            did_you_mean(name, _ACTIONS) or f"; known actions: {', '.join(sorted(_ACTIONS))}"))
    return function


def action_names() -> list[str]:
    return sorted(_ACTIONS)


def check_args(name: str, args: dict) -> str | None:
    """Why ``args`` do not fit action ``name``, or None."""
    params = list(inspect.signature(action(name)).parameters.values())[2:]
    known = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in args:
        if key not in known:
            return (f"action {name!r} has no argument {key!r}" + (
                did_you_mean(key, known) or f"; it takes {', '.join(known) or 'none'}"))
    missing = [p.name for p in params if p.default is p.empty and p.name not in args]
    if missing:
        return f"action {name!r} needs the argument {missing[0]!r}"
    return None


def run_action(name: str, graph, ctx: ActionContext, args: dict) -> dict:
    result = action(name)(graph, ctx, **args)
    return dict(result or {})


# -- the built-in actions -------------------------------------------------------------
@register_action("fold_constants")
def fold_constants(graph, ctx, max_bytes: int = 64 << 20, input_shapes: dict | None = None):
    """Fold every subgraph whose inputs are known (graphtool.fold) into Consts."""
    try:
        from graphtool.fold import fold_report
    except ImportError:
        raise GraphtoolError("the fold_constants action needs graphtool.fold, which this "
                             "installation does not have") from None
    from graphtool.analysis.shapes import infer_shapes

    shapes = infer_shapes(graph, input_shapes or ctx.input_shapes, lazy=True)
    # The fold names what it changed: no set of every name before and after.
    report = fold_report(graph, shapes, max_bytes=max_bytes)
    ctx.handoff[SHAPES_HANDOFF] = shapes
    return {"created": report.created, "removed": sorted(report.removed),
            "changed": report.changed, "folded": report.folded}


@register_action("inline_functions")
def inline_functions(graph, ctx, max_depth: int = 50):
    """Replace PartitionedCall/StatefulPartitionedCall nodes by their bodies."""
    from graphtool.rewrite.inline import inline_calls
    return inline_calls(graph, max_depth=max_depth)


@register_action("prune")
def prune(graph, ctx, keep: list | None = None):
    """Remove every node no graph output depends on."""
    return {"removed": graph.prune(keep=keep or [])}


def _change_each(graph, wanted, change) -> dict:
    """Apply ``change(node)`` to every node ``wanted(node)`` selects; log their names."""
    changed = []
    for node in graph.nodes:
        if wanted(node):
            change(node)
            changed.append(node.name)
    return {"changed": changed}


@register_action("remove_control_inputs")
def remove_control_inputs(graph, ctx, ops: list | None = None):
    """Drop control inputs (of every node, or of nodes with one of ``ops``)."""
    wanted = set(ops) if ops else None
    changed = []
    for node in graph.controlled():
        if wanted is None or node.op in wanted:
            node.remove_control_inputs()
            changed.append(node.name)
    return {"changed": changed}


@register_action("rename_op")
def rename_op(graph, ctx, op: str, to: str):
    """Give every node of type ``op`` the type ``to`` (attrs and inputs unchanged)."""
    return _change_each(graph, lambda n: n.op == op, lambda n: setattr(n, "op", to))


@register_action("set_attr")
def set_attr(graph, ctx, op: str, key: str, value, kind: str | None = None):
    """Set attr ``key`` on every node of type ``op``."""
    return _change_each(graph, lambda n: n.op == op, lambda n: n.set_attr(key, value, kind))


@register_action("remove_attr")
def remove_attr(graph, ctx, op: str, key: str):
    """Remove attr ``key`` from every node of type ``op``."""
    return _change_each(graph, lambda n: n.op == op and n.has_attr(key),
                        lambda n: n.remove_attr(key))


@register_action("sort")
def sort(graph, ctx):
    """Order nodes so every node follows its inputs."""
    graph.toposort()
    return {}


@register_action("set_input_shape")
def set_input_shape(graph, ctx, shapes: dict | None = None):
    """Pin the ``shape`` attr of graph inputs (default: the shapes given to the rewrite)."""
    shapes = shapes if shapes is not None else ctx.input_shapes
    if not shapes:
        return {"changed": []}  # nothing to pin: no walk over the graph for its inputs
    changed = []
    inputs = {n.name: n for n in graph.inputs}
    for name, dims in shapes.items():
        node = inputs.get(name.split(":")[0])
        if node is None:
            raise GraphtoolError(f"set_input_shape: {name!r} is not a graph input"
                                 + (did_you_mean(name, inputs) or
                                    f"; inputs: {', '.join(inputs) or 'none'}"))
        node.set_attr("shape", Shape(tuple(int(d) for d in dims)))
        changed.append(node.name)
    if changed:  # what earlier actions remembered may rest on the old shapes
        ctx.memo.clear()
        ctx.handoff.clear()
    return {"changed": changed}
