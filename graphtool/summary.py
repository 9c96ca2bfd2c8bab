"""What a user wants to know about a graph at a glance (``graphtool inspect``)."""
from __future__ import annotations

from graphtool.dtypes import itemsize
from graphtool.graph import Graph
from graphtool.attrs import shape_of

# Op kinds whose presence means the graph is not fully frozen for OpenCV.
LEFTOVER_OPS = {
    "variables": ("VarHandleOp", "VariableV2", "Variable", "ReadVariableOp", "VarIsInitializedOp",
                  "AssignVariableOp"),
    "function_calls": ("PartitionedCall", "StatefulPartitionedCall"),
}


def _const_bytes(node) -> int:
    """Bytes a Const holds, from its shape and dtype (no copy of the data)."""
    value = node.proto.attr.get("value")
    if value is None or value.WhichOneof("value") != "tensor":
        return 0
    tensor = value.tensor
    count = 1
    for d in shape_of(tensor.tensor_shape) or ():
        count *= max(d, 0)
    try:
        return count * itemsize(tensor.dtype)
    except Exception:  # noqa: BLE001 - exotic dtypes count as 0 bytes here
        return 0


def summarize(graph: Graph) -> dict:
    """A JSON-ready summary: counts, op histogram, inputs, outputs, weights, leftovers."""
    inputs = []
    for node in graph.inputs:
        dtype = node.attr("dtype", None)
        shape = node.attr("shape", None)
        inputs.append({"name": node.name, "dtype": str(dtype) if dtype is not None else None,
                       "shape": list(shape) if shape is not None else None})
    control_edges = sum(len(n.control_inputs) for n in graph.nodes)
    ops = graph.op_histogram()
    leftovers = {kind: {op: ops[op] for op in names if op in ops}
                 for kind, names in LEFTOVER_OPS.items()}
    library = graph.library
    return {
        "path": graph.source,
        "nodes": len(graph),
        "ops": ops,
        "inputs": inputs,
        "outputs": graph.outputs,
        "weight_bytes": sum(_const_bytes(n) for n in graph.nodes_by_op("Const")),
        "const_nodes": ops.get("Const", 0),
        "control_edges": control_edges,
        "function_library": [f.signature.name for f in library.function] if graph.has_library()
        else [],
        "variables": leftovers["variables"],
        "function_calls": leftovers["function_calls"],
        "producer": graph.versions.producer,
    }


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_summary(summary: dict) -> str:
    """The summary as plain text for a terminal."""
    lines = [f"graph: {summary['path']}",
             f"nodes: {summary['nodes']}  (Const: {summary['const_nodes']}, weights "
             f"{_human_bytes(summary['weight_bytes'])})"]
    lines.append("inputs:")
    for i in summary["inputs"] or [{"name": "(none)", "dtype": None, "shape": None}]:
        shape = "?" if i["shape"] is None else "x".join("?" if d < 0 else str(d)
                                                          for d in i["shape"]) or "scalar"
        lines.append(f"  {i['name']}  {i['dtype'] or ''} {shape if i['dtype'] else ''}".rstrip())
    lines.append("outputs:")
    lines += [f"  {o}" for o in summary["outputs"]] or ["  (none)"]
    lines.append("ops:")
    width = max((len(op) for op in summary["ops"]), default=0)
    lines += [f"  {op:<{width}}  {count}" for op, count in summary["ops"].items()]
    problems = []
    if summary["variables"]:
        problems.append("variables remain: " + ", ".join(
            f"{op} x{n}" for op, n in summary["variables"].items()))
    if summary["function_calls"]:
        problems.append("function calls remain: " + ", ".join(
            f"{op} x{n}" for op, n in summary["function_calls"].items()))
    if summary["function_library"]:
        problems.append(f"function library with {len(summary['function_library'])} functions")
    if summary["control_edges"]:
        problems.append(f"{summary['control_edges']} control edges")
    lines.append("leftovers: " + ("; ".join(problems) if problems else "none (fully frozen)"))
    return "\n".join(lines)
