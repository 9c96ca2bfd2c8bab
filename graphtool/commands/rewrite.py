"""graphtool rewrite: apply rule files to a frozen graph."""
from __future__ import annotations

import sys

NAME = "rewrite"
HELP = "apply rewrite rules (YAML) to a frozen graph"


def add_graph_and_rules(parser) -> None:
    """IN and --rules, shared with the explain command."""
    parser.add_argument("input", metavar="IN", help="frozen graph (.pb or .pbtxt)")
    parser.add_argument("--rules", action="append", required=True, metavar="RULES.yaml",
                        help="rule file (repeat for several; applied in order)")


def add_input_shapes(parser) -> None:
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=DIMS",
                        help="pin an input's shape, e.g. input_1=1,224,224,3 (repeatable)")


def add_arguments(parser) -> None:
    add_graph_and_rules(parser)
    parser.add_argument("-o", "--output", metavar="OUT.pb",
                        help="where to write the rewritten graph (.pbtxt for text)")
    parser.add_argument("--log", metavar="FILE", help="write the rewrite log as JSON lines")
    parser.add_argument("--dry-run", action="store_true",
                        help="rewrite and report, but write no graph")
    parser.add_argument("--stats", action="store_true",
                        help="print how often each rule fired and the nodes before/after")
    add_input_shapes(parser)
    parser.add_argument("--max-passes", type=int, default=100, metavar="N",
                        help="pass cap per stage (default 100)")
    parser.add_argument("--pbtxt", metavar="OUT.pbtxt",
                        help="also write the OpenCV text config: readNetFromTensorflow(OUT.pb, "
                             "OUT.pbtxt)")
    parser.add_argument("--render", metavar="DIR",
                        help="write before.svg and after.svg with the changes marked into DIR")
    parser.add_argument("--report", metavar="OUT.html",
                        help="write one HTML page: both graphs, the rewrite log, validation")
    parser.add_argument("--validate", action="store_true",
                        help="run the input in TensorFlow and the output in OpenCV and compare "
                             "(names and shapes from the freeze sidecar)")
    parser.add_argument("--opencv-python", metavar="PATH",
                        help="Python interpreter whose cv2 runs the validation (default: this one)")


def input_shapes(options) -> dict:
    from graphtool.options import parse_input_shapes
    return parse_input_shapes(options)


def run(args) -> int:
    from graphtool.errors import GraphtoolError
    from graphtool.rewrite.run import run_rewrite, write_outputs

    if not args.output and not args.dry_run:
        raise GraphtoolError("give -o OUT.pb for the rewritten graph (or --dry-run)")
    if (args.validate or args.pbtxt) and not args.output:
        raise GraphtoolError("--validate and --pbtxt need -o OUT.pb (the graph OpenCV reads)")
    if args.max_passes < 1:
        raise GraphtoolError("--max-passes must be at least 1")
    result = run_rewrite(args.input, args.rules, input_shapes=input_shapes(args.input_shape),
                         max_passes=args.max_passes,
                         keep_before=bool(args.stats or args.render or args.report))
    for warning in result.rules.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    written = write_outputs(result, None if args.dry_run else args.output, log_path=args.log)
    stats = result.stats
    firings = sum(stats["fired"].values())
    print(f"{args.input}: {stats['nodes_before']} -> {stats['nodes_after']} nodes, "
          f"{firings} rule firings in {stats['seconds']:.2f} s"
          + (f"; wrote {', '.join(written)}" if written else "; nothing written"))
    if args.stats:
        print_stats(result)
    return write_extras(args, result)


def write_extras(args, result) -> int:
    """The optional outputs: OpenCV config, drawings, validation, report."""
    from graphtool.emit import atomic_write, opencv_config

    if args.pbtxt:
        atomic_write(args.pbtxt, opencv_config(result.after), protect=(args.input,))
        print(f"wrote {args.pbtxt}")
    if args.render:
        from graphtool.render import write_diff
        drawn = write_diff(result.before, result.after, args.render, log=result.log)
        print("wrote " + ", ".join(drawn["paths"].values()))
    validation, status = None, 0
    if args.validate:
        from graphtool.validate import validate
        from graphtool.validate.table import print_report
        reports = [validate(args.input, args.output, opencv_python=args.opencv_python,
                            input_shapes=input_shapes(args.input_shape))]
        if args.pbtxt:
            reports.append(validate(args.input, args.output, pbtxt=args.pbtxt,
                                    opencv_python=args.opencv_python,
                                    input_shapes=input_shapes(args.input_shape)))
        for report in reports:
            print_report(report)
        validation = [r.to_dict() for r in reports]
        status = 0 if all(r.passed for r in reports) else 1
    if args.report:
        from graphtool.render import write_report
        write_report(args.report, result.before, result.after, log=result.log,
                     validation=validation, title=f"graphtool rewrite {args.input}")
        print(f"wrote {args.report}")
    return status


def print_stats(result) -> None:
    stats = result.stats
    width = max([len(r) for r in stats["fired"]] + [4])
    print(f"{'rule':<{width}}  fired")
    for rule_id, count in stats["fired"].items():
        print(f"{rule_id:<{width}}  {count:>5}")
    print("passes: " + ", ".join(f"{stage} {n}" for stage, n in stats["passes"].items()))
    before, after = result.before.op_histogram(), result.after.op_histogram()
    changes = [(op, before.get(op, 0), after.get(op, 0)) for op in sorted(set(before) | set(after))
               if before.get(op, 0) != after.get(op, 0)]
    if changes:
        print("ops: " + ", ".join(f"{op} {a}->{b}" for op, a, b in changes))
