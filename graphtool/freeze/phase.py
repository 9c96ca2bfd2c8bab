"""Fix a TF1 graph's learning phase to "inference" and remove its Switch/Merge.

TF1-style Keras and tf.compat.v1.layers graphs route Dropout and BatchNormalization
through `tf.cond` on a boolean placeholder (the learning phase).  Freezing must
pick the inference branch: the placeholder becomes a constant False, each Switch
on a known predicate forwards its input to the live side, everything only
reachable from the dead side is dropped, and each Merge left with one live input
is replaced by that input.
"""
from __future__ import annotations

from graphtool.freeze.tensors import data_ref, split_ref

# The ops prune_known_branches resolves: a graph without them has nothing to prune.
BRANCH_OPS = frozenset({"Switch", "Merge"})


def is_phase_placeholder(node) -> bool:
    """A scalar boolean (PlaceholderWithDefault or Placeholder): a learning-phase switch."""
    if node.op not in ("Placeholder", "PlaceholderWithDefault"):
        return False
    dtype = node.attr["dtype"].type
    shape = node.attr["shape"].shape
    return dtype == 10 and not shape.unknown_rank and len(shape.dim) == 0  # 10 = DT_BOOL


def freeze_learning_phase(graph_def, phase_nodes: list[str], value: bool = False) -> None:
    """Replace the phase placeholders by Const `value` and prune the branches it rules out."""
    from graphtool.freeze.inline import make_const
    import numpy as np

    names = set(phase_nodes)
    kept = [n for n in graph_def.node if n.name not in names]
    del graph_def.node[:]
    graph_def.node.extend(kept)
    for name in sorted(names):
        make_const(graph_def, name, np.array(value))
    prune_known_branches(graph_def)


def _topological(graph_def):
    nodes = {n.name: n for n in graph_def.node}
    order, state = [], {}
    for root in graph_def.node:
        stack = [(root.name, False)]
        while stack:
            name, done = stack.pop()
            if done:
                state[name] = 2
                order.append(nodes[name])
                continue
            if state.get(name) or name not in nodes:
                continue
            state[name] = 1
            stack.append((name, True))
            for ref in nodes[name].input:
                dep = split_ref(ref)[0]
                if not state.get(dep):
                    stack.append((dep, False))
    return order


def prune_known_branches(graph_def) -> None:
    """Resolve every Switch whose predicate is a known constant; drop what that makes dead."""
    known: dict[str, bool] = {}       # node -> its constant boolean output
    forward: dict[tuple, str] = {}    # (node, port) -> reference that replaces it
    dead_ports: set[tuple] = set()
    dead_nodes: set[str] = set()

    def resolve(ref: str) -> str:
        node, index, control = split_ref(ref)
        while (node, index) in forward:
            node, index, _ = split_ref(forward[(node, index)])
        return "^" + node if control else data_ref(node, index)

    for node in _topological(graph_def):
        data = [split_ref(i) for i in node.input if not i.startswith("^")]
        controls = [split_ref(i)[0] for i in node.input if i.startswith("^")]
        dead_in = [(n, i) in dead_ports or n in dead_nodes for n, i, _ in data]
        if node.op == "Merge":
            live = [resolve(node.input[k]) for k, dead in enumerate(dead_in) if not dead]
            if len(live) == 1:
                forward[(node.name, 0)] = live[0]
            elif not live:
                dead_nodes.add(node.name)
            continue
        if any(dead_in) or any(c in dead_nodes for c in controls):
            dead_nodes.add(node.name)
            continue
        if node.op == "Const" and node.attr["dtype"].type == 10 and not node.attr["value"].tensor.tensor_shape.dim:
            tensor = node.attr["value"].tensor
            known[node.name] = bool(tensor.bool_val[0]) if tensor.bool_val else bool(tensor.tensor_content.strip(b"\0"))
        elif node.op in ("Identity", "LogicalNot") and data and data[0][0] in known:
            known[node.name] = known[data[0][0]] ^ (node.op == "LogicalNot")
        elif node.op == "Switch" and data[1][0] in known:
            live_port = 1 if known[data[1][0]] else 0
            forward[(node.name, live_port)] = resolve(node.input[0])
            dead_ports.add((node.name, 1 - live_port))

    removed = dead_nodes | {name for name, _ in forward}
    kept = []
    for node in graph_def.node:
        if node.name in removed:
            continue
        refs = []
        for ref in node.input:
            name, index, control = split_ref(ref)
            if control and name in dead_nodes:
                continue
            if control and name in removed:
                # the node was forwarded: keep ordering on what replaced it
                targets = {split_ref(resolve(data_ref(name, p)))[0] for p in (0, 1) if (name, p) in forward}
                refs.extend("^" + t for t in sorted(targets))
            else:
                refs.append(resolve(ref))
        del node.input[:]
        # Data inputs keep their positions (Mul(x, x) reads x twice); control inputs dedupe.
        node.input.extend([r for r in refs if not r.startswith("^")]
                          + list(dict.fromkeys(r for r in refs if r.startswith("^"))))
        kept.append(node)
    del graph_def.node[:]
    graph_def.node.extend(kept)


_prune_known_branches = prune_known_branches  # older spelling, used by graphtool.targets.opencv
