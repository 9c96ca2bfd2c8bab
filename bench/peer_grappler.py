"""The peer graphtool is measured against: what a user would run without graphtool.

TensorFlow's Grappler with the optimizers that matter for a frozen inference
graph (constfold, arithmetic, dependency, function, remap), then
``optimize_for_inference`` (strips training-only nodes, folds batch norms it
recognises).  Run as a whole process, as ``bench/run.py`` does:

    python bench/peer_grappler.py IN.pb OUT.pb --inputs image --outputs probs

Only TensorFlow's own tooling is used; graphtool is not imported.
"""
from __future__ import annotations

import argparse
import os

OPTIMIZERS = ("constfold", "arithmetic", "dependency", "function", "remap")


def grappler_then_optimize_for_inference(graph_def, inputs, outputs):
    """Grappler over the GraphDef with ``outputs`` kept, then optimize_for_inference."""
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer
    from tensorflow.python.tools import optimize_for_inference_lib

    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        meta = tf.compat.v1.train.export_meta_graph(graph=graph)
    keep = meta_graph_pb2.CollectionDef()
    keep.node_list.value.extend(outputs)
    meta.collection_def["train_op"].CopyFrom(keep)      # Grappler keeps what train_op names
    config = config_pb2.ConfigProto()
    rewrites = config.graph_options.rewrite_options
    rewrites.optimizers.extend(OPTIMIZERS)
    optimized = tf_optimizer.OptimizeGraph(config, meta)
    dtypes = [_placeholder_dtype(optimized, name) for name in inputs]
    return optimize_for_inference_lib.optimize_for_inference(optimized, inputs, outputs, dtypes)


def _placeholder_dtype(graph_def, name: str) -> int:
    for node in graph_def.node:
        if node.name == name:
            return node.attr["dtype"].type
    raise SystemExit(f"input {name!r} is not in the graph")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--inputs", required=True, help="comma-separated input node names")
    parser.add_argument("--outputs", required=True, help="comma-separated output node names")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    with open(args.input, "rb") as fh:
        graph_def = tf.compat.v1.GraphDef.FromString(fh.read())
    result = grappler_then_optimize_for_inference(graph_def, args.inputs.split(","),
                                                  args.outputs.split(","))
    with open(args.output, "wb") as fh:
        fh.write(result.SerializeToString())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
