"""graphtool lint: which nodes a target runtime (OpenCV) will not accept, and why."""
from __future__ import annotations

NAME = "lint"
HELP = "list the nodes OpenCV will not import or will compute wrong (checked statically)"


def add_arguments(parser) -> None:
    parser.add_argument("graph", help="frozen graph (.pb or .pbtxt)")
    parser.add_argument("--target", default="opencv",
                        help="built-in target name (opencv) or a target YAML file")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=DIMS",
                        help="pin an input's shape for the rank checks (default: the freeze "
                             "sidecar next to the graph)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")


def run(args) -> int:
    import json
    import os

    from graphtool.lint import format_findings, lint
    from graphtool.load import load
    from graphtool.options import parse_input_shapes
    from graphtool.validate.signature import sidecar_path

    graph = load(args.graph)
    shapes = parse_input_shapes(args.input_shape)
    if not shapes and os.path.exists(sidecar_path(args.graph)):
        from graphtool.validate.signature import read_signature
        signature = read_signature(graph, args.graph)
        shapes = {p.name: list(p.shape) for p in signature.inputs}
    findings = lint(graph, args.target, input_shapes=shapes or None)
    if args.json:
        print(json.dumps({"graph": args.graph, "target": args.target,
                          "findings": [f.to_dict() for f in findings]}, indent=2))
    else:
        print(format_findings(findings, args.graph))
    return 1 if findings else 0
