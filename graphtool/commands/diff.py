"""``graphtool diff``: before/after SVGs with changes marked, plus an HTML report."""
from __future__ import annotations

NAME = "diff"
HELP = "draw two graphs with removed/added/changed nodes marked (DIR/before.svg, " \
       "DIR/after.svg, DIR/index.html)"


def add_arguments(parser) -> None:
    parser.add_argument("before", help="frozen graph before the change (.pb or .pbtxt)")
    parser.add_argument("after", help="frozen graph after the change (.pb or .pbtxt)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="directory for before.svg, after.svg and index.html "
                             "(created if missing)")
    parser.add_argument("--log", metavar="FILE",
                        help="rewrite log (.jsonl) naming the rules that changed each node")
    parser.add_argument("--collapse-depth", type=int, default=None, metavar="N",
                        help="draw name scopes N levels deep as single boxes (0 = none); "
                             "default: automatic for big graphs")
    parser.add_argument("--no-shapes", action="store_true",
                        help="no shape/dtype labels on edges")


def run(args) -> int:
    import os

    import graphtool
    from graphtool.emit.files import atomic_write
    from graphtool.render import write_diff
    from graphtool.render.report import build_report

    before = graphtool.load(args.before)
    after = graphtool.load(args.after)
    opts = dict(collapse_depth=args.collapse_depth, shapes=False if args.no_shapes else None)
    result = write_diff(before, after, args.output, log=args.log, **opts)
    report = os.path.join(args.output, "index.html")
    diff = result["diff"]
    atomic_write(report, build_report(before, after, log=args.log, diff=diff,
                                      svgs=result["svgs"]),
                 protect=(before.source, after.source))
    print(f"{len(diff.removed)} removed, {len(diff.added)} added, {len(diff.changed)} changed; "
          f"wrote {result['paths']['before']}, {result['paths']['after']}, {report}")
    return 0
