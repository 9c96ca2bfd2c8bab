"""How OpenCV layer names relate to TensorFlow node names.

OpenCV names each layer after a TensorFlow node, but not one-to-one (measured
on 4.13 and 5.0, both engines): Identity nodes vanish; a Conv2D/MatMul layer
is named after the Conv2D/MatMul node yet also computes the BiasAdd or Add
that follows it; subgraph fusions name the fused layer after one node of the
group; and some layers are OpenCV's own (``Reshape/nhwc``, ``Mean/Pooling``).
These helpers walk the graph to list which TensorFlow tensors a layer's value
may stand for, and which nodes a layer covers.
"""
from __future__ import annotations

from graphtool.graph import parse_ref

_SOURCE_OPS = frozenset({"Placeholder", "Const"})
_PASS_THROUGH_OPS = frozenset({"Identity", "IdentityN", "Snapshot", "StopGradient"})
CHAIN_LIMIT = 8


def upstream_names(graph, tensor: str, limit: int = CHAIN_LIMIT) -> list[str]:
    """``tensor``'s node, then its producers along the first non-Const data input.

    An output node OpenCV removed (Identity) or fused into its producer (an
    Add after MatMul) is found under one of these names.
    """
    name = parse_ref(tensor).node
    names = [name]
    node = graph.get(name)
    while node is not None and len(names) < limit:
        producers = [graph.get(i) for i in node.data_inputs]
        producers = [p for p in producers if p is not None and p.op not in _SOURCE_OPS]
        if not producers:
            break
        node = producers[0]
        names.append(node.name)
    return names


def downstream_names(graph, name: str, layers, limit: int = CHAIN_LIMIT) -> list[str]:
    """``name``, then each sole data consumer that is not itself a layer.

    These are the nodes a layer called ``name`` may have absorbed; the layer's
    value is the value of one of them (usually the last).
    """
    names = [name]
    current = name
    while len(names) < limit:
        users = [u for u in graph.consumers(current)
                 if any(parse_ref(i).node == current for i in u.data_inputs)]
        if len(users) != 1 or users[0].name in layers or users[0].name in names:
            break
        current = users[0].name
        names.append(current)
    return names


def feeding_consts(names, *graphs) -> list[str]:
    """Const nodes read (directly or through Identity) by the nodes ``names``: their weights.

    Each name is looked up in the first of ``graphs`` that has it - a pbtxt
    topology first, then the .pb whose Consts it refers to by name.
    """
    def find(text):
        return next((g.get(text) for g in graphs if g.get(text) is not None), None)

    found = []
    for name in names:
        node = find(name)
        if node is None:
            continue
        for text in node.data_inputs:
            source = find(text)
            while source is not None and source.op in _PASS_THROUGH_OPS and source.data_inputs:
                source = find(source.data_inputs[0])
            if source is not None and source.op == "Const" and source.name not in found:
                found.append(source.name)
    return found


def input_dependent(graph) -> set[str]:
    """Names of the nodes whose value depends on a graph input (weights and shape maths do not)."""
    reached = set()
    stack = [n.name for n in graph.inputs]
    while stack:
        name = stack.pop()
        if name in reached:
            continue
        reached.add(name)
        stack.extend(u.name for u in graph.consumers(name)
                     if any(parse_ref(i).node == name for i in u.data_inputs))
    return reached


def topological_index(graph) -> dict[str, int]:
    """Node name -> position in a topological order of ``graph`` (graph order breaks ties)."""
    ordered = graph.copy()
    ordered.toposort()
    return {name: i for i, name in enumerate(ordered.names())}
