"""``graphtool inspect``: a summary of a frozen graph."""
from __future__ import annotations

NAME = "inspect"
HELP = "summarise a frozen graph: ops, inputs, outputs, weights, leftover variables/functions"


def add_arguments(parser) -> None:
    parser.add_argument("graph", help="frozen graph (.pb or .pbtxt)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--shapes", action="store_true",
                        help="also list every tensor's static dtype and shape")


def run(args) -> int:
    import json

    import graphtool
    from graphtool.summary import format_summary, summarize

    graph = graphtool.load(args.graph)
    summary = summarize(graph)
    shapes = None
    if args.shapes:
        shapes = graph.shapes()
        summary["shapes"] = {name: {"dtype": str(info.dtype) if info.dtype is not None else None,
                                    "shape": None if info.shape is None else list(info.shape)}
                             for name, info in shapes.items()}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(format_summary(summary))
    if shapes is not None:
        print("shapes:")
        for name, entry in summary["shapes"].items():
            shape = "?" if entry["shape"] is None else "x".join(
                "?" if d is None else str(d) for d in entry["shape"]) or "scalar"
            print(f"  {name}  {entry['dtype'] or '?'} {shape}")
    return 0
