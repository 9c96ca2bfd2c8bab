"""``graphtool convert``: a Keras model (or frozen graph) to checked OpenCV files in one folder."""
from __future__ import annotations

import os

NAME = "convert"
HELP = ("freeze a Keras model, rewrite it for OpenCV, write model.pb + model.pbtxt, draw "
        "before/after, validate in OpenCV and write report.html")


def add_arguments(parser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help=".keras or .h5 file, SavedModel directory, or an already frozen "
                             ".pb (then freezing is skipped)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                        help="folder for the results (created if missing; files in it with the "
                             "same names are replaced)")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...",
                        help="full shape of an input, e.g. image=1,224,224,3 (repeatable)")
    parser.add_argument("--custom-objects", action="append", default=[],
                        metavar="FILE.py|MODULE",
                        help="file or module defining the model's custom layers (repeatable)")
    parser.add_argument("--rules", action="append", default=[], metavar="RULES.yaml",
                        help="rule file (repeatable, applied in order; default: the checkout's "
                             "rules/opencv.yaml)")
    parser.add_argument("--opencv-python", action="append", default=[], metavar="PATH",
                        help="Python whose cv2 validates the result (repeat to check several "
                             "OpenCV builds; default: $GRAPHTOOL_OPENCV_PYTHON, else this one)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines, only the summary")


def run(args) -> int:
    from graphtool.convert import convert
    from graphtool.options import parse_input_shapes

    shapes = parse_input_shapes(args.input_shape)
    result = convert(args.model, args.output, input_shapes=shapes,
                     custom_objects=args.custom_objects, rules=args.rules or None,
                     opencv_python=args.opencv_python or None, progress=not args.quiet)
    print(summary(result))
    return 0 if result.passed else 1


def summary(result) -> str:
    """Files written, node counts, one line per OpenCV run, and the verdict."""
    names = ", ".join(os.path.basename(p) for p in result.files.values())
    fired = sum(result.fired.values())
    lines = [f"wrote {result.out_dir}: {names}",
             f"{'frozen' if result.froze else 'read'} {result.nodes_before} nodes -> "
             f"{result.nodes_after} nodes after {fired} rule firings"]
    width = max(len(v.form) for v in result.validations)
    for v in result.validations:
        report = v.report
        verdict = "pass" if v.passed else "FAIL"
        error = f"max abs err {_number(v.max_abs_err)}" if v.max_abs_err is not None else ""
        tolerance = max((o.tolerance for o in report.outputs if o.tolerance is not None),
                        default=None)
        if tolerance is not None:
            error += f" (tolerance {_number(tolerance)})"
        lines.append(f"  {report.runtime:32} {v.form:{width}}  {verdict}  {error}".rstrip())
        if report.error:
            lines.append(f"    {report.error}")
        elif report.bisect is not None and report.bisect.node:
            lines.append(f"    first diverging node: {report.bisect.node} "
                         f"(OpenCV layer {report.bisect.layer}, {report.bisect.layer_type})")
    report_path = result.files.get("report", "report.html")
    if result.passed:
        lines.append(f"PASS: OpenCV computes what the model computes (max abs err "
                     f"{_number(result.max_abs_err)}); details in {report_path}")
    else:
        failed = sum(not v.passed for v in result.validations)
        lines.append(f"FAIL: {failed} of {len(result.validations)} OpenCV runs failed; "
                     f"see {report_path}")
    return "\n".join(lines)


def _number(value) -> str:
    return f"{value:.3g}"
