"""Static shapes + constant folding in graphtool (no TensorFlow) next to Grappler's constfold.

For each model (Keras 3 keras.applications, weights=None, frozen by bench/zoo.py)
it measures, each side in its own child process so that peak RSS is its own:

* graphtool: ``infer_shapes`` alone, then ``fold_constants`` (which runs its own shape
  inference, so its time is the total) on a freshly loaded graph;
* TensorFlow: Grappler with only the constant-folding optimizer, one iteration,
  on the same GraphDef with the model outputs as fetch nodes (after a warm-up run).

The two sides alternate in ``--rounds`` rounds (graphtool child, Grappler child,
graphtool child, ...), and the ratio is taken per round, from the medians of that
round's two children: a shared machine that slows down for a while then slows
both sides of a round, not one side of the whole comparison.

It prints a markdown table: median wall times over all rounds, the median of the
per-round ratios with their range (target <= 0.2x),
peak RSS of each process, and graphtool's memory during shapes + folding
against the budget "graph size + the set of folded tensors" (the largest single
folded tensor is printed too).  That memory is the peak RSS while
``infer_shapes`` and ``fold_constants`` run (the kernel's high-water mark is
reset after loading, so the file buffer ``graphtool.load`` holds while parsing
does not count) minus the RSS after imports, before the graph was loaded: it
includes the loaded graph itself.  Where the high-water mark cannot be reset it
falls back to the whole process's peak (load included) and says so.

    python bench/bench_fold.py [--models ResNet50,DenseNet121,NASNetMobile] [--repeat 3]
                               [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_MODELS = ("ResNet50", "DenseNet121", "NASNetMobile")

_GRAPHTOOL = r"""
import json, resource, sys, time
sys.path.insert(0, ROOT)
def rss_now():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20
def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
def peak_now():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import numpy as np
import graphtool
from graphtool.analysis import infer_shapes
from graphtool.dtypes import to_numpy
from graphtool.fold import fold_constants
baseline = rss_now()
runs = []
for i in range(REPEAT):
    graph = graphtool.load(PATH)
    nodes, loaded = len(graph), rss_now()
    if i == 0:
        process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        reset = reset_peak()
    t0 = time.perf_counter()
    infer_shapes(graph)
    t1, c1 = time.perf_counter(), time.process_time()
    log = fold_constants(graph)
    t2, c2 = time.perf_counter(), time.process_time()
    if i == 0:
        analysis_peak = peak_now() if reset else max(process_peak, peak_now())
        peak = max(process_peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        sizes = [int(np.prod(e["shape"])) * to_numpy(e["dtype"]).itemsize for e in log]
        first = {"nodes": nodes, "nodes_after": len(graph), "folded": len(log),
                 "loaded_mib": loaded, "peak_mib": peak, "analysis_peak_mib": analysis_peak,
                 "peak_reset": reset, "largest_mib": max(sizes) / 2**20,
                 "folded_mib": sum(sizes) / 2**20}
    runs.append({"shapes": t1 - t0, "fold": t2 - t1, "fold_cpu": c2 - c1})
    del graph, log
print(json.dumps(dict(first, baseline_mib=baseline, runs=runs,
                      tensorflow_imported="tensorflow" in sys.modules)))
"""

_GRAPPLER = r"""
import json, resource, sys, time
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
from tensorflow.python.grappler import tf_optimizer
def rss_now():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20
def meta_graph(graph_def, fetches):
    with tf.Graph().as_default() as g:
        tf.import_graph_def(graph_def, name="")
        meta = tf.compat.v1.train.export_meta_graph(graph_def=g.as_graph_def(), graph=g)
    meta.collection_def["train_op"].node_list.value.extend(fetches)
    return meta
def constfold(meta):
    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.optimizers[:] = ["constfold"]
    rewrite.meta_optimizer_iterations = rewriter_config_pb2.RewriterConfig.ONE
    rewrite.min_graph_nodes = -1
    return tf_optimizer.OptimizeGraph(config, meta)
with tf.Graph().as_default() as warm:  # first Grappler call pays for device setup
    tf.identity(tf.constant(1.0) + tf.constant(2.0), name="out")
constfold(meta_graph(warm.as_graph_def(), ["out"]))
graph_def = tf.compat.v1.GraphDef.FromString(open(PATH, "rb").read())
baseline = rss_now()
runs = []
for i in range(REPEAT):
    meta = meta_graph(graph_def, FETCHES)
    t0, c0 = time.perf_counter(), time.process_time()
    result = constfold(meta)
    runs.append({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0})
    nodes_after = len(result.node)
    del meta, result
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"runs": runs, "nodes_after": nodes_after, "baseline_mib": baseline,
                  "peak_mib": peak}))
"""


def _child(template: str, python: str, **values) -> dict:
    prelude = "".join(f"{k} = {v!r}\n" for k, v in values.items())
    out = subprocess.run([python, "-c", prelude + template], capture_output=True, text=True,
                         cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(model: str, repeat: int, python: str, rounds: int = 1) -> dict:
    """Both sides, alternating, ``rounds`` times; the first round's graphtool child gives
    the memory figures, every round gives its runs and one ratio."""
    sys.path.insert(0, HERE)
    from zoo import zoo_path

    path = zoo_path(model, "k3")
    with open(os.path.splitext(path)[0] + ".json") as fh:
        fetches = [o["name"] for o in json.load(fh)["outputs"]]
    ours = theirs = None
    ratios, cpu_ratios = [], []
    for _ in range(rounds):
        mine = _child(_GRAPHTOOL, python, ROOT=ROOT, PATH=path, REPEAT=repeat)
        peer = _child(_GRAPPLER, python, PATH=path, REPEAT=repeat, FETCHES=fetches)
        ratios.append(_median(mine, "fold") / _median(peer, "wall"))
        cpu_ratios.append(_median(mine, "fold_cpu") / _median(peer, "cpu"))
        if ours is None:
            ours, theirs = mine, peer
        else:
            ours["runs"] += mine["runs"]
            theirs["runs"] += peer["runs"]
    return {"model": model, "path": path, "size_mib": os.path.getsize(path) / 2**20,
            "graphtool": ours, "grappler": theirs, "ratios": ratios, "cpu_ratios": cpu_ratios}


def _median(side: dict, key: str) -> float:
    return statistics.median(run[key] for run in side["runs"])


def _spread(ratios: list[float]) -> str:
    """The median ratio, and the range over the rounds when there are several."""
    text = f"{statistics.median(ratios):.2f}x"
    if len(ratios) > 1:
        text += f" ({min(ratios):.2f} - {max(ratios):.2f})"
    return text


def table(results: list[dict]) -> str:
    lines = [
        "| model | nodes | graph MiB | graphtool shapes ms | graphtool shapes+fold ms"
        " | Grappler constfold ms | ratio (range over rounds) | CPU ms (graphtool / Grappler)"
        " | CPU ratio"
        " | nodes after (graphtool / Grappler) | peak RSS MiB (graphtool / Grappler)"
        " | graphtool memory during shapes+fold: used / budget (largest folded) MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ours, theirs = r["graphtool"], r["grappler"]
        shapes = _median(ours, "shapes") * 1000
        total = _median(ours, "fold") * 1000
        grappler = _median(theirs, "wall") * 1000
        cpu = _median(ours, "fold_cpu") * 1000
        grappler_cpu = _median(theirs, "cpu") * 1000
        used = ours["analysis_peak_mib"] - ours["baseline_mib"]
        budget = r["size_mib"] + ours["folded_mib"]
        lines.append(
            f"| {r['model']} | {ours['nodes']} | {r['size_mib']:.1f} | {shapes:.0f}"
            f" | {total:.0f} | {grappler:.0f} | {_spread(r['ratios'])}"
            f" | {cpu:.0f} / {grappler_cpu:.0f} | {_spread(r['cpu_ratios'])}"
            f" | {ours['nodes_after']} / {theirs['nodes_after']}"
            f" | {ours['peak_mib']:.0f} / {theirs['peak_mib']:.0f}"
            f" | {used:.0f} / {budget:.0f} ({ours['largest_mib']:.1f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help="comma-separated bench/zoo.py model names")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per child process (median)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of one child per side, alternating (ratio per round)")
    parser.add_argument("--json", help="also write the raw measurements to this file")
    args = parser.parse_args(argv)
    results = [measure(m, args.repeat, sys.executable, args.rounds)
               for m in args.models.split(",")]
    print(table(results))
    if not all(r["graphtool"]["peak_reset"] for r in results):
        print("\nnote: could not reset the peak RSS after loading; graphtool memory includes "
              "graphtool.load's parse buffer")
    if any(r["graphtool"]["tensorflow_imported"] for r in results):
        print("\nwarning: graphtool imported TensorFlow during folding")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
