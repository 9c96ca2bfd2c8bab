"""Last steps every freeze shares: stable input/output names, pruning, the final check.

Whatever produced the GraphDef (Keras 3, tf-keras, a SavedModel), the result must
look the same to the rest of graphtool: inputs are Placeholders with static
shapes named after the model's inputs, each output is a node named after the
model's output, nothing but the path from inputs to outputs remains, and no
variable, function call, control flow or function library is left.
"""
from __future__ import annotations

from dataclasses import dataclass

from graphtool.errors import GraphtoolError
from graphtool.freeze.tensors import node_name_for, split_ref, tensor_name, unique_name

FORBIDDEN_OPS = {
    "VarHandleOp", "VariableV2", "Variable", "ReadVariableOp", "AssignVariableOp",
    "VarIsInitializedOp", "ResourceGather", "PartitionedCall", "StatefulPartitionedCall",
    "Switch", "Merge", "If", "StatelessIf", "While", "StatelessWhile", "Enter", "Exit",
    "NextIteration", "LoopCond",
}


@dataclass
class Port:
    """One graph input or output as the sidecar describes it."""
    name: str           # node name
    tensor: str         # "node:0", what to feed or fetch
    dtype: str          # numpy/TF dtype name, e.g. "float32"
    shape: list[int]


def rename_node(graph_def, old: str, new: str) -> None:
    """Rename a node and every reference to it."""
    for node in graph_def.node:
        if node.name == old:
            node.name = new
        for k, ref in enumerate(node.input):
            name, index, control = split_ref(ref)
            if name == old:
                node.input[k] = "^" + new if control else (new if index == 0 else f"{new}:{index}")


def set_placeholder_shape(graph_def, name: str, shape: list[int]) -> None:
    for node in graph_def.node:
        if node.name == name:
            node.attr["shape"].shape.Clear()
            for size in shape:
                node.attr["shape"].shape.dim.add(size=size)


def name_inputs(graph_def, placeholders: list[str], wanted: list[str]) -> list[str]:
    """Give each input Placeholder the model's input name (unless that name is taken)."""
    taken = {n.name for n in graph_def.node}
    names = []
    for current, want in zip(placeholders, wanted):
        want = node_name_for(want)
        if want != current and want not in taken:
            rename_node(graph_def, current, want)
            taken.add(want)
            current = want
        names.append(current)
    return names


def name_outputs(graph_def, refs: list[str], wanted: list[str], dtypes: list[int]) -> list[str]:
    """Make each output a node called after the model's output; return the node names.

    A dangling Identity (what tf.function puts on each result) is renamed; any
    other producer gets a new Identity.  A wanted name already used by another
    node gets a numeric suffix.
    """
    consumers = {split_ref(i)[0] for n in graph_def.node for i in n.input}
    nodes = {n.name: n for n in graph_def.node}
    taken = set(nodes)
    results = []
    for ref, want, dtype in zip(refs, wanted, dtypes):
        want = node_name_for(want)
        node, index, _ = split_ref(ref)
        if node == want and index == 0:
            results.append(node)
            continue
        producer = nodes.get(node)
        renamable = (producer is not None and producer.op == "Identity" and index == 0
                     and node not in consumers and node not in results)
        name = want if want not in taken else unique_name(want, taken)
        if renamable:
            rename_node(graph_def, node, name)
            nodes[name] = nodes.pop(node)
            taken.discard(node)
        else:
            identity = graph_def.node.add(name=name, op="Identity", input=[ref])
            identity.attr["T"].type = dtype
        taken.add(name)
        results.append(name)
    return results


def prune(graph_def, outputs: list[str]):
    """Keep only what the outputs need; drop the function library when nothing calls it."""
    import tensorflow as tf

    pruned = tf.compat.v1.graph_util.extract_sub_graph(graph_def, outputs)
    pruned.versions.CopyFrom(graph_def.versions)
    uses_functions = any(
        a.func.name or a.list.func for n in pruned.node for a in n.attr.values()
    )
    if not uses_functions:
        pruned.ClearField("library")
    return pruned


def check_frozen(graph_def, inputs: list[str], path: str) -> None:
    """Fail naming what is left if the graph still needs variables, functions or control flow."""
    left: dict[str, list[str]] = {}
    for node in graph_def.node:
        stray_placeholder = node.op in ("Placeholder", "PlaceholderWithDefault") and node.name not in inputs
        if node.op in FORBIDDEN_OPS or stray_placeholder:
            left.setdefault(node.op, []).append(node.name)
    parts = [f"{len(v)} {op} (e.g. '{v[0]}')" for op, v in sorted(left.items())]
    if len(graph_def.library.function):
        parts.append(f"a function library of {len(graph_def.library.function)} functions")
    if parts:
        raise GraphtoolError(
            "cannot freeze completely, the graph still has " + ", ".join(parts)
            + "; these ops are not inlinable by graphtool: report the model with --debug output",
            path=path,
        )


def ports(names: list[str], arrays: list) -> list[Port]:
    return [Port(n, tensor_name(n), str(a.dtype), list(a.shape)) for n, a in zip(names, arrays)]
