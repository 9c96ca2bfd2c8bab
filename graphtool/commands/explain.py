"""graphtool explain: why a rule matches, or does not, at each candidate node."""
from __future__ import annotations

import json
import sys

NAME = "explain"
HELP = "show, per candidate node, how far a rule's pattern matched and why it stopped"


def add_arguments(parser) -> None:
    from graphtool.commands.rewrite import add_graph_and_rules, add_input_shapes
    add_graph_and_rules(parser)
    parser.add_argument("--rule", required=True, metavar="ID", help="the rule to explain")
    parser.add_argument("--node", action="append", default=[], metavar="NAME",
                        help="explain at this node only (repeatable); default: every candidate")
    parser.add_argument("--prepare", action="store_true",
                        help="first run the stages before the rule's stage")
    add_input_shapes(parser)
    parser.add_argument("--limit", type=int, default=50, metavar="N",
                        help="show at most N candidates (default 50; 0 = all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args) -> int:
    import graphtool
    from graphtool.commands.rewrite import input_shapes
    from graphtool.rewrite import explain, load_rules

    rules = load_rules(*args.rules)
    for warning in rules.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    graph = graphtool.load(args.input)
    results = explain(graph, rules, args.rule, nodes=args.node or None, prepare=args.prepare,
                      input_shapes=input_shapes(args.input_shape))
    shown = results if args.limit <= 0 else results[:args.limit]
    if args.json:
        print(json.dumps([e.to_dict() for e in shown], indent=2))
        return 0
    matched = sum(e.matched for e in results)
    candidates = sum(e.root is not None for e in results)
    print(f"rule {args.rule!r}: {matched} of {candidates} candidate(s) match")
    for e in shown:
        print(f"  {e}")
    if len(shown) < len(results):
        print(f"  ... {len(results) - len(shown)} more (use --limit 0 or --node NAME)")
    return 0
