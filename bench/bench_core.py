"""Load+save cost of graphtool next to plain protobuf and TensorFlow's own GraphDef.

Prints a markdown table per model: median wall time of load+save and peak RSS,
each variant measured in its own child process so peak RSS is its own.  Also
the whole-process time of `graphtool inspect` on ResNet50.

    python bench/bench_core.py [--models resnet50,vgg16] [--repeat 5]

Targets (issue 2): graphtool load+save <= 1.5x the plain-protobuf floor;
`graphtool inspect resnet50.pb` under 0.5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(os.environ.get("GRAPHTOOL_BENCH_CACHE", Path.home() / ".cache" / "graphtool" / "bench"))
APPS = {"resnet50": ("ResNet50", (224, 224, 3)), "vgg16": ("VGG16", (224, 224, 3))}

_VARIANTS = {
    "graphtool": """
import graphtool
g = graphtool.load(PATH)
data = g.serialize()
""",
    "protobuf": """
from graphtool.proto import GraphDef
raw = open(PATH, 'rb').read()
gd = GraphDef(); gd.ParseFromString(raw)
data = gd.SerializeToString(deterministic=True)
""",
    "tensorflow": """
from tensorflow.core.framework import graph_pb2
raw = open(PATH, 'rb').read()
gd = graph_pb2.GraphDef(); gd.ParseFromString(raw)
data = gd.SerializeToString(deterministic=True)
""",
}

_CHILD = """
import json, resource, sys, time
PATH = sys.argv[1]
{imports}
t0 = time.perf_counter()
{body}
elapsed = time.perf_counter() - t0
print(json.dumps({{"seconds": elapsed, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def frozen_app(name: str) -> Path:
    """Freeze keras.applications.<name>(weights=None) once into the cache."""
    path = CACHE / f"{name}.k3.pb"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    cls, shape = APPS[name]
    script = f"""
import keras, tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
keras.utils.set_random_seed(0)
m = keras.applications.{cls}(weights=None, input_shape={shape})
fn = tf.function(lambda x: m(x, training=False))
c = fn.get_concrete_function(tf.TensorSpec((1,) + {shape}, tf.float32, name="input"))
open({str(path) + '.tmp'!r}, "wb").write(
    convert_variables_to_constants_v2(c).graph.as_graph_def().SerializeToString())
"""
    subprocess.run([sys.executable, "-c", script], check=True, stderr=subprocess.DEVNULL)
    os.replace(str(path) + ".tmp", path)
    return path


def measure(variant: str, path: Path, repeat: int) -> dict:
    # Imports happen before the clock starts: we time load+save, not module import.
    imports = {"graphtool": "import graphtool", "protobuf": "from graphtool.proto import GraphDef",
               "tensorflow": "from tensorflow.core.framework import graph_pb2"}[variant]
    code = _CHILD.format(imports=imports, body=_VARIANTS[variant])
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                             text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "rss_mib": max(r["rss_mib"] for r in runs)}


def inspect_process_time(path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "graphtool", "inspect", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,vgg16")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| model | size MiB | variant | load+save s | x protobuf | peak RSS MiB |")
    print("|---|---:|---|---:|---:|---:|")
    for name in args.models.split(","):
        path = frozen_app(name)
        results = {v: measure(v, path, args.repeat) for v in _VARIANTS}
        floor = results["protobuf"]["seconds"]
        for variant, r in results.items():
            print(f"| {name} | {path.stat().st_size / 2**20:.0f} | {variant} | {r['seconds']:.3f} "
                  f"| {r['seconds'] / floor:.2f} | {r['rss_mib']:.0f} |")
    resnet = frozen_app("resnet50")
    print(f"\n`graphtool inspect resnet50.pb`, whole process (median of {args.repeat}): "
          f"{inspect_process_time(resnet, args.repeat):.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
