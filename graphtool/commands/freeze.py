"""`graphtool freeze`: Keras model / SavedModel / builder -> frozen OUT.pb + OUT.json sidecar."""
from __future__ import annotations

import argparse

NAME = "freeze"
HELP = "freeze a Keras model (.keras/.h5), a SavedModel or a model builder into a GraphDef (.pb)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help=".keras file, .h5 file from model.save, or SavedModel directory")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.pb",
                        help="frozen GraphDef to write; OUT.json (and OUT.npz) go next to it")
    parser.add_argument("--builder", metavar="MODULE:FN",
                        help="build the model by calling FN() from pkg.module or FILE.py instead of reading MODEL")
    parser.add_argument("--signature", default="serving_default", metavar="NAME",
                        help="SavedModel signature to freeze (default: serving_default)")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...",
                        help="full static shape of an input, e.g. input_1=1,224,224,3 (repeatable; "
                             "the batch dimension defaults to 1)")
    parser.add_argument("--custom-objects", action="append", default=[], metavar="FILE.py|MODULE",
                        help="file or module defining custom layers/functions the model uses (repeatable)")
    parser.add_argument("--reference", action="store_true",
                        help="also write OUT.npz: a seeded input and TensorFlow's outputs for it")
    parser.add_argument("--keras", choices=("auto", "3", "2"), default="auto",
                        help="Keras that reads the model: auto (from the file; Keras 3 for builders), "
                             "3, or 2 (tf-keras, run in a child process)")


def run(args: argparse.Namespace) -> int:
    from graphtool.freeze import freeze
    from graphtool.options import parse_input_shapes

    shapes = parse_input_shapes(args.input_shape)
    sidecar = freeze(args.model, args.output, builder=args.builder, signature=args.signature,
                     input_shapes=shapes, custom_objects=args.custom_objects,
                     reference=args.reference, keras=args.keras)
    from graphtool.freeze.sidecar import sidecar_paths

    json_path, npz_path = sidecar_paths(args.output)
    written = [args.output, json_path] + ([npz_path] if sidecar["reference"] else [])
    print(f"wrote {', '.join(written)} ({sidecar['source']['kind']}, "
          f"max abs error vs model {sidecar['check']['max_abs_err']:.2g})")
    for role in ("inputs", "outputs"):
        for port in sidecar[role]:
            print(f"  {role[:-1]:6} {port['tensor']:30} {port['dtype']:8} {port['shape']}")
    return 0
