"""Does OpenCV load each zoo model and match TensorFlow: as frozen, after Grappler, after graphtool.

For each zoo model (``bench/zoo.py``: keras.applications models, Keras 3 and
tf-keras, random weights) in one of two sources - ``--source zoo``: frozen by
``graphtool freeze`` (built on first use); ``--source tf``: frozen by
TensorFlow's own ``convert_variables_to_constants_v2`` as users do it (built on
first use, cached next to the zoo) - three candidates go to OpenCV 4.x and 5.x,
each run in a child process by ``graphtool.validate`` against the TensorFlow
reference data:

- as frozen;
- after TensorFlow's own tooling (``bench/peer_grappler.py``: Grappler +
  optimize_for_inference, in a child process);
- after ``rules/opencv.yaml``, as a .pb alone and as .pb + .pbtxt.

Pass rule (the issue's): max abs error <= 1e-4 x max(1, max|reference|).  With
random weights, some models' softmax outputs are uniform (every value 0.001), so
any candidate that runs passes them.  Every candidate is therefore also compared
on the input of the final Softmax (the logits; TensorFlow computes that
reference once), relative to max|logits| with no floor: a cell reads "pass"
only when both agree, "pass, logits off" when only the output does, and "pass
(logits n/a)" when the candidate no longer has a node of the logits' name.

    python bench/bench_opencv.py [--models MobileNetV2,ResNet50] [--flavours k3,k2]
                                 [--source zoo|tf] [--jobs 2] [--out results.md]

OpenCV interpreters: $GRAPHTOOL_OPENCV4_PYTHON (default: this Python) and
$GRAPHTOOL_OPENCV5_PYTHON (required).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [p for p in (ROOT, HERE) if p not in sys.path]

from zoo import FLAVOURS, MODELS, cache_dir, zoo_path  # noqa: E402

TOLERANCE = 1e-4
SOURCES = ("zoo", "tf")

# Runs in a child process (tf-keras needs TF_USE_LEGACY_KERAS=1 before TensorFlow loads):
# build the zoo model, freeze it with convert_variables_to_constants_v2, write the graph,
# a graphtool sidecar and the model's own output on a seeded input.
_TF_FREEZE = r"""
import json, sys
import numpy as np, tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
sys.path.insert(0, sys.argv[1])
from zoo import build
model, out = build(sys.argv[2]), sys.argv[3]
shape = [1] + list(model.inputs[0].shape[1:])
spec = tf.TensorSpec(shape, tf.float32, name="input")
frozen = convert_variables_to_constants_v2(
    tf.function(lambda x: model(x, training=False)).get_concrete_function(spec))
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
y = np.asarray(model(tf.constant(x), training=False))
name = frozen.outputs[0].name.split(":")[0]
with open(out + ".pb", "wb") as fh:
    fh.write(frozen.graph.as_graph_def().SerializeToString())
np.savez(out + ".npz", **{"inputs/input": x, "outputs/" + name: y})
with open(out + ".json", "w") as fh:
    json.dump({"format": "graphtool-sidecar/1",
               "inputs": [{"name": "input", "tensor": frozen.inputs[0].name,
                           "dtype": "float32", "shape": shape}],
               "outputs": [{"name": name, "tensor": frozen.outputs[0].name,
                            "dtype": "float32", "shape": list(y.shape)}],
               "reference": out.rsplit("/", 1)[-1] + ".npz"}, fh)
"""


def tf_frozen_path(model: str, flavour: str) -> str:
    """The model frozen by convert_variables_to_constants_v2 (built once, then cached)."""
    base = os.path.join(cache_dir(), f"{model}.{flavour}.tf")
    if not all(os.path.exists(base + ext) for ext in (".pb", ".json", ".npz")):
        os.makedirs(cache_dir(), exist_ok=True)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        if flavour == "k2":
            env["TF_USE_LEGACY_KERAS"] = "1"
        subprocess.run([sys.executable, "-c", _TF_FREEZE, HERE, model, base], env=env,
                       check=True)
    return base + ".pb"
COLUMNS = ("frozen", "grappler", "graphtool pb", "graphtool pbtxt")


def opencv_pythons() -> dict:
    five = os.environ.get("GRAPHTOOL_OPENCV5_PYTHON")
    if not five:
        raise SystemExit("set GRAPHTOOL_OPENCV5_PYTHON to a Python with opencv-python 5.x")
    return {"4": os.environ.get("GRAPHTOOL_OPENCV4_PYTHON") or sys.executable, "5": five}


def verdict(report) -> str:
    """'pass', or why not in a few words."""
    if isinstance(report, Exception):
        return f"error: {str(report).splitlines()[0][:60]}"
    if report.passed:
        return "pass"
    if report.error:
        line = report.error.strip().splitlines()[-1]
        if "SIG" in line:
            return "crash (" + line.split("with ")[-1].split()[0] + ")"
        return "fails: " + line.split(": ", 1)[-1][:50]
    worst = max((o.max_rel or 0.0) for o in report.outputs) if report.outputs else float("nan")
    return f"wrong (rel err {worst:.2g})"


class Entry:
    """One zoo graph: its candidates, written once, and their validations."""

    def __init__(self, model: str, flavour: str, folder: str, source: str = "zoo"):
        self.model, self.flavour = model, flavour
        self.path = zoo_path(model, flavour) if source == "zoo" else tf_frozen_path(model,
                                                                                   flavour)
        self.npz = os.path.splitext(self.path)[0] + ".npz"
        with open(os.path.splitext(self.path)[0] + ".json", encoding="utf-8") as fh:
            self.sidecar = json.load(fh)
        self.base = os.path.join(folder, f"{model}.{flavour}")
        self.rewrite_seconds = None
        self.candidates: dict[str, tuple] = {}

    def prepare(self) -> None:
        from graphtool.targets.opencv import rewrite_for_opencv

        self.candidates["frozen"] = (self.path, None)
        grappler = self.base + ".grappler.pb"
        names = lambda ports: ",".join(p["tensor"].split(":")[0] for p in ports)  # noqa: E731
        done = subprocess.run([sys.executable, os.path.join(HERE, "peer_grappler.py"), self.path,
                               grappler, "--inputs", names(self.sidecar["inputs"]),
                               "--outputs", names(self.sidecar["outputs"])],
                              capture_output=True, text=True)
        self.candidates["grappler"] = ((grappler, None) if done.returncode == 0 else
                                       RuntimeError(done.stderr.strip().splitlines()[-1:]))
        started = time.perf_counter()
        out, pbtxt = self.base + ".opencv.pb", self.base + ".opencv.pbtxt"
        try:
            rewrite_for_opencv(self.path, out, pbtxt=pbtxt)
            self.candidates["graphtool pb"] = (out, None)
            self.candidates["graphtool pbtxt"] = (out, pbtxt)
        except Exception as exc:  # noqa: BLE001 - reported in the table
            failed = RuntimeError(f"rewrite failed: {exc}")
            self.candidates["graphtool pb"] = self.candidates["graphtool pbtxt"] = failed
        self.rewrite_seconds = time.perf_counter() - started

    def validate(self, column: str, python: str):
        from graphtool.validate import validate

        candidate = self.candidates[column]
        if isinstance(candidate, Exception):
            return candidate
        pb, pbtxt = candidate
        try:
            return validate(self.path, pb, pbtxt=pbtxt, reference_data=self.npz, rtol=TOLERANCE,
                            opencv_python=python, timeout=900)
        except Exception as exc:  # noqa: BLE001 - a cell of the table, not a crash of the bench
            return exc

    def prepare_probe(self) -> None:
        """Sidecar and reference data for the logits (the final Softmax's input)."""
        import numpy as np

        import graphtool
        from graphtool.freeze.tfrun import run_graph
        from graphtool.rewrite.testing import tf_graph_def

        graph = graphtool.load(self.path)
        out = graph.node(self.sidecar["outputs"][0]["tensor"].split(":")[0])
        while out.op == "Identity":
            out = graph.node(out.data_inputs[0])
        probe = (out.data_inputs[0] if out.op == "Softmax" else out.name).split(":")[0]
        self.probe = probe
        inputs = {k.split("/", 1)[1]: v for k, v in np.load(self.npz).items()
                  if k.startswith("inputs/")}
        feeds = {p["tensor"]: inputs[p["name"]] for p in self.sidecar["inputs"]}
        value = run_graph(tf_graph_def(graph), feeds, [probe + ":0"])[0]
        sidecar = dict(self.sidecar, outputs=[{"name": probe, "tensor": probe + ":0",
                                               "dtype": "float32", "shape": list(value.shape)}])
        sidecar["reference"] = os.path.basename(self.base) + ".logits.npz"
        self.probe_sidecar = self.base + ".logits.json"
        self.probe_npz = self.base + ".logits.npz"
        with open(self.probe_sidecar, "w", encoding="utf-8") as fh:
            json.dump(sidecar, fh)
        np.savez(self.probe_npz, **{f"inputs/{k}": v for k, v in inputs.items()},
                 **{f"outputs/{probe}": value})

    def logits_error(self, column: str, python: str):
        """max|OpenCV - TensorFlow| / max|TensorFlow| on the logits, or the run's failure."""
        from graphtool.validate import validate

        candidate = self.candidates[column]
        if isinstance(candidate, Exception):
            return candidate
        pb, pbtxt = candidate
        import graphtool
        if self.probe not in graphtool.load(pbtxt or pb, check=False):
            return None          # the candidate renamed or removed the node: not comparable
        try:
            report = validate(self.path, pb, pbtxt=pbtxt, sidecar=self.probe_sidecar,
                              reference_data=self.probe_npz, opencv_python=python, timeout=900)
        except Exception as exc:  # noqa: BLE001
            return exc
        if not report.outputs or report.outputs[0].max_abs is None:
            return report
        reference = report.outputs[0].reference
        return report.outputs[0].max_abs / (max(abs(reference.min), abs(reference.max)) or 1.0)


def cell(output_report, logits) -> str:
    """The table cell: the issue's verdict on the output, checked against the logits."""
    text = verdict(output_report)
    if text != "pass":
        return text
    if logits is None:
        return "pass (logits n/a)"
    if isinstance(logits, float):
        return "pass" if logits <= TOLERANCE else f"pass, logits off (rel {logits:.1g})"
    return "pass, logits " + verdict(logits)


def run(models, flavours, jobs: int, source: str = "zoo") -> list[dict]:
    pythons = opencv_pythons()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_opencv_") as folder, \
            ThreadPoolExecutor(jobs) as pool:
        for model in models:
            for flavour in flavours:
                entry = Entry(model, flavour, folder, source)
                print(f"{model} {flavour}: preparing", file=sys.stderr, flush=True)
                entry.prepare()
                entry.prepare_probe()
                runs = {(column, version): (pool.submit(entry.validate, column, python),
                                            pool.submit(entry.logits_error, column, python))
                        for column in COLUMNS for version, python in pythons.items()}
                row = {"model": model, "flavour": flavour,
                       "rewrite_s": round(entry.rewrite_seconds, 1),
                       "cells": {f"{c} cv{v}": cell(out.result(), logits.result())
                                 for (c, v), (out, logits) in runs.items()}}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def passed(text: str) -> bool:
    """A cell that counts as loading and matching (the logits agree or cannot be compared)."""
    return text in ("pass", "pass (logits n/a)")


def table(rows: list[dict]) -> str:
    versions = ("4", "5")
    head = ["model", "keras"] + [f"{c} cv{v}" for c in COLUMNS for v in versions] + [
        "rewrite s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["model"], row["flavour"]] + [row["cells"][f"{c} cv{v}"] for c in COLUMNS
                                                  for v in versions]
        cells += [str(row["rewrite_s"])]
        lines.append("| " + " | ".join(cells) + " |")
    counts = {c: sum(passed(r["cells"][c]) for r in rows) for c in rows[0]["cells"]} \
        if rows else {}
    lines.append("")
    lines.append("load and match: " + ", ".join(f"{c} {n}/{len(rows)}" for c, n in counts.items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated (default all): {','.join(MODELS)}")
    parser.add_argument("--flavours", default=",".join(FLAVOURS))
    parser.add_argument("--source", choices=SOURCES, default="zoo",
                        help="zoo: frozen by graphtool freeze; tf: by convert_variables_to_"
                             "constants_v2 (default zoo)")
    parser.add_argument("--jobs", type=int, default=2, help="OpenCV runs at a time")
    parser.add_argument("--out", help="also write the markdown table here")
    args = parser.parse_args(argv)
    models = args.models.split(",") if args.models else list(MODELS)
    flavours = args.flavours.split(",")
    unknown = [m for m in models if m not in MODELS] + [f for f in flavours if f not in FLAVOURS]
    if unknown:
        parser.error(f"unknown model/flavour: {', '.join(unknown)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    text = table(run(models, flavours, max(1, args.jobs), args.source))
    print(text)
    if args.out:
        from graphtool.emit.files import atomic_write
        atomic_write(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
