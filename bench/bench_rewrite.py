"""Rewrite cost per node on synthetic frozen graphs of 10k, 100k and 1M nodes.

The graphs are chains with residual branches of Keras-3-shaped blocks: a
convolution whose kernel sits behind an Identity, a bias stored as
Squeeze(Reshape(Const)), a decomposed batch norm (AddV2/Rsqrt/Mul/Mul/Mul/Sub/
AddV2), a ReLU and an Identity - 26 nodes per block, built with graphtool's
Graph API (TensorFlow would take far longer at a million nodes) and cached as
.pb files.  Each size is loaded and rewritten in place, as ``graphtool rewrite``
does (the API's default copy of the input is left out), with the rule file (default:
rules/opencv.yaml, all 78 rules: inline, cleanup, folding, shape annotation,
fusing, ...; rules/examples/pipeline.yaml is a lighter set), and the time per
node is printed.

Targets: 1M nodes under 60 s; time per node within 2x across the sizes.

    python bench/bench_rewrite.py [--sizes 10000,100000,1000000] [--rules FILE]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import graphtool  # noqa: E402
from graphtool.graph import Graph  # noqa: E402
from graphtool.rewrite import load_rules, rewrite  # noqa: E402

CHANNELS = 4
BLOCK_NODES = 26


class _Builder:
    def __init__(self):
        self.graph = Graph()
        self.rng = np.random.default_rng(0)
        self.count = 0

    def const(self, name, array):
        return self.graph.add_const(np.asarray(array, np.float32), name).name

    def read(self, name, array):
        """A Const behind an Identity, as frozen Keras variables are."""
        value = self.const(name + "/resource", array)
        return self.graph.add_node("Identity", name, [value], {"T": graphtool.dtypes.DType.float32}).name

    def node(self, op, name, inputs, **attrs):
        attrs.setdefault("T", graphtool.dtypes.DType.float32)
        return self.graph.add_node(op, name, inputs, attrs).name

    def block(self, x: str, scope: str) -> str:
        c = CHANNELS
        rng = self.rng
        w = self.read(f"{scope}/conv/ReadVariableOp", rng.standard_normal((1, 1, c, c)) * 0.5)
        conv = self.node("Conv2D", f"{scope}/conv", [x, w], strides=[1, 1, 1, 1],
                         padding="SAME", data_format="NHWC", dilations=[1, 1, 1, 1])
        bias_value = self.const(f"{scope}/bias/value", rng.standard_normal(c) * 0.1)
        shape = self.graph.add_const(np.array([1, 1, 1, c], np.int32), f"{scope}/bias/shape").name
        reshaped = self.graph.add_node("Reshape", f"{scope}/bias/Reshape", [bias_value, shape],
                                       {"T": graphtool.dtypes.DType.float32,
                                        "Tshape": graphtool.dtypes.DType.int32}).name
        squeezed = self.node("Squeeze", f"{scope}/bias/Squeeze", [reshaped], squeeze_dims=[])
        bias = self.node("BiasAdd", f"{scope}/BiasAdd", [conv, squeezed], data_format="NHWC")
        var = self.read(f"{scope}/bn/var", rng.uniform(0.5, 2.0, c))
        eps = self.const(f"{scope}/bn/eps", 1e-3)
        add_eps = self.node("AddV2", f"{scope}/bn/add", [var, eps])
        rsqrt = self.node("Rsqrt", f"{scope}/bn/Rsqrt", [add_eps])
        gamma = self.read(f"{scope}/bn/gamma", rng.uniform(0.5, 1.5, c))
        scale = self.node("Mul", f"{scope}/bn/mul", [rsqrt, gamma])
        scaled = self.node("Mul", f"{scope}/bn/mul_1", [bias, scale])
        mean = self.read(f"{scope}/bn/mean", rng.standard_normal(c) * 0.1)
        mean_scaled = self.node("Mul", f"{scope}/bn/mul_2", [mean, scale])
        beta = self.read(f"{scope}/bn/beta", rng.standard_normal(c) * 0.1)
        offset = self.node("Sub", f"{scope}/bn/sub", [beta, mean_scaled])
        out = self.node("AddV2", f"{scope}/bn/add_1", [scaled, offset])
        relu = self.node("Relu", f"{scope}/relu", [out])
        return self.node("Identity", f"{scope}/out", [relu])


def synthetic_graph(nodes: int) -> Graph:
    """About ``nodes`` nodes: blocks in a chain, every fourth step a residual pair of branches."""
    builder = _Builder()
    x = builder.graph.add_node("Placeholder", "input", [], {
        "dtype": graphtool.dtypes.DType.float32,
        "shape": graphtool.attrs.Shape((1, 8, 8, CHANNELS))}).name
    step = 0
    while len(builder.graph) + 3 * BLOCK_NODES < nodes:
        if step % 4 == 3:
            left = builder.block(x, f"s{step}/left")
            right = builder.block(x, f"s{step}/right")
            x = builder.node("AddV2", f"s{step}/residual", [left, right])
        else:
            x = builder.block(x, f"s{step}")
        step += 1
    builder.node("Identity", "output", [x])
    return builder.graph


def cached_graph(nodes: int, cache: str) -> str:
    path = os.path.join(cache, f"synthetic_{nodes}.pb")
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        started = time.perf_counter()
        synthetic_graph(nodes).save(path)
        print(f"  built {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def _calibration() -> float:
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    return time.perf_counter() - started


def measure(path: str, rules) -> dict:
    """Load ``path`` and rewrite it in place, as ``graphtool rewrite`` does (no copy):
    node counts, firings, load and rewrite wall time, rewrite CPU time."""
    started = time.perf_counter()
    graph = graphtool.load(path, check=False)
    loaded = time.perf_counter() - started
    nodes = len(graph)
    started, cpu = time.perf_counter(), time.process_time()
    result = rewrite(graph, rules, in_place=True)
    spent, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"nodes": nodes, "load_s": loaded, "rewrite_s": spent, "rewrite_cpu_s": cpu,
            "after": result.stats["nodes_after"],
            "firings": sum(result.stats["fired"].values())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rules", default=os.path.join(ROOT, "rules", "opencv.yaml"))
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "graphtool-bench"))
    args = parser.parse_args(argv)
    rules = load_rules(args.rules)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"rules: {os.path.relpath(args.rules, ROOT)}")
    print(f"machine: an empty 10M-iteration Python loop takes {_calibration():.2f} s "
          "(about 0.2 s on an idle desktop); CPU time is this process only")
    print(f"{'nodes':>9} {'load s':>8} {'rewrite s':>10} {'cpu s':>8} {'us/node':>8} "
          f"{'firings':>8} {'after':>9}")
    per_node = []
    total_at = {}
    for size in sizes:
        row = measure(cached_graph(size, args.cache), rules)
        n, cpu = row["nodes"], row["rewrite_cpu_s"]
        per_node.append(cpu / n * 1e6)
        total_at[size] = row["rewrite_s"]
        print(f"{n:>9} {row['load_s']:>8.2f} {row['rewrite_s']:>10.2f} {cpu:>8.2f} "
              f"{per_node[-1]:>8.1f} {row['firings']:>8} {row['after']:>9}", flush=True)
    spread = max(per_node) / min(per_node)
    print(f"CPU time per node spread: {spread:.2f}x (target <= 2x)")
    biggest = max(sizes)
    if biggest >= 1_000_000:
        print(f"{biggest} nodes: {total_at[biggest]:.1f} s (target < 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
