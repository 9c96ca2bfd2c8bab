"""``graphtool validate``: does OpenCV compute what TensorFlow computes?"""
from __future__ import annotations

NAME = "validate"
HELP = ("run REFERENCE in TensorFlow and CANDIDATE in OpenCV (in a child process) on the same "
        "input and compare every output")


def add_arguments(parser) -> None:
    parser.add_argument("reference", help="the original frozen graph (.pb), run in TensorFlow")
    parser.add_argument("candidate", help="the rewritten frozen graph (.pb), run in OpenCV")
    parser.add_argument("--pbtxt", metavar="CFG",
                        help="text topology for readNetFromTensorflow(CANDIDATE, CFG)")
    parser.add_argument("--input", metavar="FILE",
                        help="input data: .npy (one input), .npz (key per input name) or an "
                             "image (resized and converted to the input shape); default: "
                             "seeded random data")
    parser.add_argument("--reference-data", metavar="FILE.npz",
                        help="inputs/NAME and outputs/NAME arrays that replace the TensorFlow "
                             "run (e.g. the .npz `graphtool freeze --reference` writes)")
    parser.add_argument("--sidecar", metavar="FILE.json",
                        help="freeze sidecar naming inputs and outputs (default: REFERENCE's "
                             ".json when it exists)")
    parser.add_argument("--input-shape", metavar="NAME=DIMS", action="append", default=[],
                        help="shape of an input, e.g. input_1=1,224,224,3 (repeatable)")
    parser.add_argument("--rtol", type=float, default=None,
                        help="relative tolerance (default 1e-4): an output passes when "
                             "max abs error <= atol + rtol * max(1, max|reference|)")
    parser.add_argument("--atol", type=float, default=None, help="absolute tolerance (default 0)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random input (0)")
    parser.add_argument("--engine", choices=("opencv", "tf"), default="opencv",
                        help="what runs CANDIDATE: OpenCV (default) or TensorFlow, which checks "
                             "that a rewrite kept the semantics before OpenCV is involved")
    parser.add_argument("--opencv-python", metavar="PATH",
                        help="Python interpreter whose cv2 runs CANDIDATE (default: "
                             "$GRAPHTOOL_OPENCV_PYTHON, else this one)")
    parser.add_argument("--opencv-engine", metavar="NAME",
                        help="OpenCV 5 DNN engine: auto (OpenCV's default), new or classic")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S",
                        help="seconds OpenCV may take before it counts as hung (default 120)")
    parser.add_argument("--bisect", action="store_true",
                        help="on mismatch, find the first layer whose value diverges")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    import json

    from graphtool.validate import validate
    from graphtool.validate.compare import DEFAULT_ATOL, DEFAULT_RTOL
    from graphtool.validate.feeds import DEFAULT_SEED
    from graphtool.options import parse_input_shapes

    shapes = parse_input_shapes(args.input_shape)
    report = validate(
        args.reference, args.candidate, pbtxt=args.pbtxt, input_file=args.input,
        reference_data=args.reference_data, sidecar=args.sidecar, input_shapes=shapes,
        rtol=DEFAULT_RTOL if args.rtol is None else args.rtol,
        atol=DEFAULT_ATOL if args.atol is None else args.atol,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        engine=args.engine, opencv_python=args.opencv_python, opencv_engine=args.opencv_engine,
        timeout=args.timeout, bisect=args.bisect)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        from graphtool.validate.table import print_report
        print_report(report)
    return 0 if report.passed else 1
