"""The ``inline_functions`` action: function calls replaced by the bodies from the graph's library.

``convert_variables_to_constants_v2`` leaves calls to functions that must run
under XLA (Keras 3 grouped convolutions, as in ConvNeXt) in the frozen graph,
with the function bodies in ``graph.library``.  Inlining copies a body into the
graph under the call's name (``call/body_node``) and rewires the call's
readers to the body's results - without TensorFlow.

Inside a FunctionDef, a node's output is named ``node:output_arg:index``.
Turning that into a graph port needs the op's output argument list; for ops
with several output args it is the ``output_args`` of the op's entry in
``graphtool.ops`` (ops with a single output arg, list or not, need none).
"""
from __future__ import annotations

from graphtool.errors import GraphtoolError
from graphtool.graph import parse_ref
from graphtool.proto import AttrValue

CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")


def _port(op: str, arg: str, index: int, where: str) -> int:
    from graphtool import ops

    entry = ops.get(op)
    args = entry.output_args if entry is not None else ()
    if not args:
        return index
    if arg not in args:
        raise GraphtoolError(f"{where}: op {op} has no output {arg!r} (it has {', '.join(args)})")
    return args.index(arg) + index


def _functions_called(graph, library) -> list:
    """Call nodes whose function is in the library, in graph order."""
    calls = []
    for node in graph.nodes:
        if node.op in library:
            calls.append((node, library[node.op], {}))
        elif node.op in CALL_OPS and node.has_attr("f"):
            func = node.proto.attr["f"].func
            if func.name in library:
                calls.append((node, library[func.name], dict(func.attr)))
    return calls


def inline_calls(graph, *, max_depth: int = 50) -> dict:
    """Inline every call of a library function (nested calls too); drop unused functions."""
    library = {f.signature.name: f for f in graph.library.function}
    created: list[str] = []
    removed: list[str] = []
    changed: list[str] = []
    outputs = {parse_ref(o).node for o in graph.outputs}
    for _ in range(max_depth):
        # Without a library nothing can be inlined: no walk over every node to find that out.
        calls = _functions_called(graph, library) if library else []
        if not calls:
            break
        for call, fdef, fattrs in calls:
            made, readers = _inline_one(graph, call, fdef, fattrs, call.name in outputs)
            created.extend(made)
            changed.extend(readers)
            removed.append(call.name)
    else:
        raise GraphtoolError(f"functions are still called after inlining {max_depth} levels "
                             "deep; the library is probably recursive")
    dropped = _drop_unused_functions(graph)
    created = [n for n in created if n in graph]
    return {"created": created, "removed": removed,
            "changed": [n for n in dict.fromkeys(changed) if n in graph],
            "functions_removed": dropped}


def _inline_one(graph, call, fdef, fattrs, was_output: bool):
    sig = fdef.signature
    where = f"function {sig.name!r} called by {call.name!r}"
    data = list(call.data_inputs)
    if len(data) != len(sig.input_arg):
        raise GraphtoolError(f"{where}: the call passes {len(data)} inputs, the function takes "
                             f"{len(sig.input_arg)}")
    args = {a.name: t for a, t in zip(sig.input_arg, data)}
    ops = {nd.name: nd.op for nd in fdef.node_def}
    names = {nd.name: graph.fresh_name(f"{call.name}/{nd.name}") for nd in fdef.node_def}
    # Reserve every name first so the bodies cannot collide with each other.
    for nd in fdef.node_def:
        if names[nd.name] in graph:
            raise GraphtoolError(f"{where}: node name {names[nd.name]!r} is taken")

    def tensor(text: str) -> str:
        control = text.startswith("^")
        body = text[1:] if control else text
        parts = body.split(":")
        if parts[0] in args and len(parts) == 1:
            source = args[parts[0]]
            return "^" + parse_ref(source).node if control else source
        if parts[0] not in names:
            raise GraphtoolError(f"{where}: {text!r} names nothing in the function body")
        if control or len(parts) == 1:
            return ("^" if control else "") + names[parts[0]]
        if len(parts) != 3:
            raise GraphtoolError(f"{where}: cannot read the input reference {text!r}")
        port = _port(ops[parts[0]], parts[1], int(parts[2]), where)
        return names[parts[0]] if port == 0 else f"{names[parts[0]]}:{port}"

    made = []
    controls = ["^" + c for c in call.control_inputs]
    for nd in fdef.node_def:
        inputs = [tensor(i) for i in nd.input]
        node = graph.add_node(nd.op, names[nd.name], inputs, device=nd.device)
        for key in nd.attr:
            node.proto.attr[key].CopyFrom(_resolve_attr(nd.attr[key], fattrs, where, nd.name))
        if controls and not any(not i.startswith("^") for i in inputs):
            node.set_inputs(inputs + controls)
        made.append(node.name)
    results = [tensor(fdef.ret[a.name]) for a in sig.output_arg]
    readers = [n.name for n in call.consumers]
    for port, result in enumerate(results):
        graph.replace_all_uses(f"{call.name}:{port}" if port else call.name, result)
    if not results:
        for reader in call.consumers:
            reader.set_inputs([i for i in reader.inputs if i != "^" + call.name])
    graph.remove(call)
    if was_output and results and ":" not in results[0] and not graph.consumers(results[0]):
        graph.rename(results[0], call.name)
        made = [call.name if n == results[0] else n for n in made]
    return made, readers


def _resolve_attr(value, fattrs: dict, where: str, node: str):
    if value.WhichOneof("value") != "placeholder":
        return value
    if value.placeholder not in fattrs:
        raise GraphtoolError(f"{where}: node {node!r} takes attr {value.placeholder!r} from the "
                             "call, which does not set it")
    resolved = AttrValue()
    resolved.CopyFrom(fattrs[value.placeholder])
    return resolved


def _drop_unused_functions(graph) -> list[str]:
    """Remove library functions no node (and no kept function) refers to."""
    library = graph.library
    if not len(library.function):
        return []
    by_name = {f.signature.name: f for f in library.function}
    needed: set[str] = set()
    stack = []

    def refer(node_defs):
        for nd in node_defs:
            if nd.op in by_name:
                stack.append(nd.op)
            for value in nd.attr.values():
                for func in _funcs(value):
                    if func in by_name:
                        stack.append(func)

    refer(n.proto for n in graph.nodes)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        refer(by_name[name].node_def)
    dropped = [name for name in by_name if name not in needed]
    keep = [by_name[name] for name in by_name if name in needed]
    gradients = [g for g in library.gradient if g.function_name in needed]
    del library.function[:]
    library.function.extend(keep)
    del library.gradient[:]
    library.gradient.extend(gradients)
    return dropped


def _funcs(value):
    kind = value.WhichOneof("value")
    if kind == "func":
        yield value.func.name
    elif kind == "list":
        for func in value.list.func:
            yield func.name
