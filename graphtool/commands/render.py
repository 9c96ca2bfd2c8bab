"""``graphtool render``: draw a frozen graph as SVG."""
from __future__ import annotations

NAME = "render"
HELP = "draw a frozen graph as SVG (name scopes as clusters, constants folded into labels)"


def add_arguments(parser) -> None:
    parser.add_argument("graph", help="frozen graph (.pb or .pbtxt)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.svg",
                        help="SVG file to write")
    parser.add_argument("--collapse-depth", type=int, default=None, metavar="N",
                        help="draw name scopes N levels deep as single boxes (1 = Keras "
                             "layers, 0 = collapse nothing); default: automatic above "
                             "--max-nodes nodes")
    parser.add_argument("--max-nodes", type=int, default=400, metavar="N",
                        help="collapse automatically when more than N nodes would be drawn "
                             "(default 400)")
    parser.add_argument("--focus", metavar="NODE", help="draw only the neighbourhood of NODE")
    parser.add_argument("--radius", type=int, default=2, metavar="K",
                        help="with --focus: how many edges away from NODE to draw (default 2)")
    parser.add_argument("--no-shapes", action="store_true",
                        help="no shape/dtype labels on edges (skips shape inference)")


def run(args) -> int:
    import graphtool
    from graphtool.render import render_to_file

    graph = graphtool.load(args.graph)
    render_to_file(graph, args.output, collapse_depth=args.collapse_depth, focus=args.focus,
                   radius=args.radius, shapes=False if args.no_shapes else None,
                   max_nodes_expanded=args.max_nodes)
    print(f"wrote {args.output}")
    return 0
