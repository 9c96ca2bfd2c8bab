"""graphtool vs TensorFlow's own tooling on the zoo, side by side, as one markdown report.

For each zoo graph (``bench/zoo.py``: keras.applications models frozen by
graphtool, built on first use) two whole processes make an OpenCV candidate:

- graphtool: ``python -m graphtool rewrite IN --rules rules/opencv.yaml -o OUT``;
- the peer: ``bench/peer_grappler.py`` - Grappler (constfold, arithmetic,
  dependency, function, remap) + optimize_for_inference.

Each is timed from start to exit with its peak RSS (``wait4``), its output's
node count is taken, and each output is validated in OpenCV 4.x and 5.x
against the zoo's TensorFlow reference data (``graphtool.validate``, OpenCV in
child processes) and timed in OpenCV 4: the median of repeated ``forward()``
calls, both outputs in one child process taking turns, so that load from
other processes slows both alike - twice, once in each load order, because
the net loaded first runs 1-3% slower even when both are the same file
(measured).  Then the rule engine's scaling series
(``bench/bench_rewrite.py``'s synthetic graphs), one child process per size.

    python bench/run.py [--models MobileNetV2,EfficientNetB0] [--flavours k3,k2] [--quick]
                        [--repeat N] [--runs N] [--sizes 10000,100000]

OpenCV interpreters: $GRAPHTOOL_OPENCV4_PYTHON (default: this Python) and
$GRAPHTOOL_OPENCV5_PYTHON (a column of "not set" without it).  Targets (issue
9): graphtool time <= 0.25x the peer on every model; forward latency <= 1.0x
the peer's output wherever the peer's output loads at all.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [p for p in (ROOT, HERE) if p not in sys.path]

RULES = os.path.join(ROOT, "rules", "opencv.yaml")
QUICK_MODELS = ("MobileNetV2", "MobileNetV3Small", "EfficientNetB0")
SCALING_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SCALING_SIZES = (10_000, 100_000)
TIME_TARGET = 0.25        # graphtool whole-process time / peer's
LATENCY_TARGET = 1.0      # graphtool result's forward latency / peer result's
OPENCV_TIMEOUT = 600.0

# Runs in an OpenCV interpreter: each graph loaded and warmed up once, then forward() calls
# taken in turns, the order flipped every round (A, B, B, A, A, B, ...), so that load from
# other processes hits all of them alike and neither always runs right after the other.
# Prints every time; the caller runs it once per load order and pools them.
_FORWARD_TIMER = r"""
import json, sys, time
import numpy as np, cv2
paths, shapes, repeat = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
nets = []
for path in paths:
    net = cv2.dnn.readNetFromTensorflow(path)
    for name, x in feeds.items():
        net.setInput(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x, name if len(feeds) > 1 else "")
    net.forward()
    nets.append(net)
times = [[] for _ in nets]
for round_ in range(repeat):
    turns = list(zip(nets, times))
    for net, spent in (turns if round_ % 2 == 0 else turns[::-1]):
        started = time.perf_counter()
        net.forward()
        spent.append(time.perf_counter() - started)
print(json.dumps([[t * 1e3 for t in spent] for spent in times]))
"""

# Runs in a fresh Python: load + rewrite (in place, as the CLI does) one synthetic graph of
# bench_rewrite.py.
_SCALING_RUN = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from bench_rewrite import cached_graph, measure
from graphtool.rewrite import load_rules
rules = load_rules(sys.argv[5])
print(json.dumps(measure(cached_graph(int(sys.argv[3]), sys.argv[4]), rules)))
"""


@dataclass
class Process:
    """How one whole process went: exit code, wall time, peak RSS, its output."""
    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str = ""
    stderr: str = ""


# Starts COMMAND from a small process and reports its wall time and peak RSS.  Linux keeps
# the peak RSS of the memory a process had before exec, and a child forked by the big
# benchmark process would start out with the benchmark's; a child of this fresh, small
# Python starts with almost nothing.
_LAUNCHER = r"""
import json, os, subprocess, sys, time
started = time.monotonic()
proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"seconds": time.monotonic() - started, "peak_rss_kb": usage.ru_maxrss,
               "returncode": os.waitstatus_to_exitcode(status)}, fh)
"""


def run_process(command: list[str], *, timeout: float | None = None, env=None) -> Process:
    """Run ``command`` to its end: exit code, wall time and peak RSS of that process alone."""
    with tempfile.TemporaryDirectory(prefix="graphtool-bench-run-") as tmp:
        report = os.path.join(tmp, "usage.json")
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, report, *command],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        if not os.path.exists(report):
            return Process(proc.returncode or -1, float(timeout or 0), 0.0,
                           out.decode(errors="replace"), err.decode(errors="replace"))
        with open(report) as fh:
            usage = json.load(fh)
    return Process(usage["returncode"], usage["seconds"], usage["peak_rss_kb"] / 1024,
                   out.decode(errors="replace"), err.decode(errors="replace"))


@dataclass
class Candidate:
    """One tool's output for one zoo graph, and what OpenCV made of it."""
    tool: str
    process: Process | None = None
    nodes: int | None = None
    opencv: dict = field(default_factory=dict)       # "4" / "5" -> cell text
    passed: dict = field(default_factory=dict)       # "4" / "5" -> bool
    latency_ms: float | None = None
    notes: list = field(default_factory=list)


def signature(pb: str) -> dict:
    with open(os.path.splitext(pb)[0] + ".json", encoding="utf-8") as fh:
        return json.load(fh)


def make_candidates(pb: str, work: str, runs: int = 1) -> list[Candidate]:
    """Both tools on ``pb`` as whole processes, ``runs`` times in turns; outputs land in ``work``.

    Each tool's run of median time is the one reported (with its peak RSS).
    """
    import graphtool

    sidecar = signature(pb)
    inputs = ",".join(p["name"] for p in sidecar["inputs"])
    outputs = ",".join(p["name"] for p in sidecar["outputs"])
    commands = {
        "graphtool": [sys.executable, "-m", "graphtool", "rewrite", pb, "--rules", RULES,
                      "-o", os.path.join(work, "graphtool.pb")],
        "peer": [sys.executable, os.path.join(HERE, "peer_grappler.py"), pb,
                 os.path.join(work, "peer.pb"), "--inputs", inputs, "--outputs", outputs],
    }
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    done = {tool: [] for tool in commands}
    for _ in range(runs):
        for tool, command in commands.items():
            done[tool].append(run_process(command, env=env))
    candidates = []
    for tool, processes in done.items():
        failed = [p for p in processes if p.returncode != 0]
        middle = sorted(processes, key=lambda p: p.seconds)[len(processes) // 2]
        candidate = Candidate(tool, failed[0] if failed else middle)
        out = os.path.join(work, f"{tool}.pb")
        if candidate.process.returncode == 0 and os.path.exists(out):
            candidate.nodes = len(graphtool.load(out, check=False))
        else:
            candidate.notes.append(f"{tool} failed: " + _last_line(candidate.process.stderr))
        candidates.append(candidate)
    return candidates


def check_in_opencv(pb: str, work: str, candidate: Candidate, pythons: dict) -> None:
    """Load+match in each OpenCV (its own child process per run, via graphtool.validate)."""
    from graphtool.validate import validate

    out = os.path.join(work, f"{candidate.tool}.pb")
    if candidate.nodes is None:
        return
    reference = os.path.splitext(pb)[0] + ".npz"
    for version, python in pythons.items():
        if python is None:
            candidate.opencv[version] = "not set"
            continue
        report = validate(pb, out, reference_data=reference, opencv_python=python,
                          timeout=OPENCV_TIMEOUT)
        candidate.passed[version] = report.passed
        if report.passed:
            candidate.opencv[version] = "pass"
        elif report.error:
            crashed = "crashed" in report.error or "SIG" in report.error
            candidate.opencv[version] = "crash" if crashed else "error"
            candidate.notes.append(f"{candidate.tool}, OpenCV {version}: {report.error}")
        else:
            worst = max(o.max_abs for o in report.outputs if o.max_abs is not None)
            candidate.opencv[version] = f"mismatch {worst:.2g}"


def time_forward(pb: str, work: str, candidates: list[Candidate], python: str | None,
                 repeat: int) -> None:
    """Median forward() latency in OpenCV 4 of each output it loaded, timed in turns."""
    loaded = [c for c in candidates if c.opencv.get("4", "") == "pass"
              or c.opencv.get("4", "").startswith("mismatch")]
    if not python or not loaded:
        return
    shapes = {p["name"]: p["shape"] for p in signature(pb)["inputs"]}
    pooled = {c.tool: [] for c in loaded}
    for order in (loaded, loaded[::-1]):  # each load order once: the first net runs slower
        paths = [os.path.join(work, f"{c.tool}.pb") for c in order]
        timed = run_process([python, "-c", _FORWARD_TIMER, json.dumps(paths), json.dumps(shapes),
                             str(repeat)], timeout=OPENCV_TIMEOUT)
        if timed.returncode != 0:
            loaded[0].notes.append("forward timing failed: " + _last_line(timed.stderr))
            return
        for candidate, spent in zip(order, json.loads(timed.stdout.strip().splitlines()[-1])):
            pooled[candidate.tool] += spent
    for candidate in loaded:
        candidate.latency_ms = statistics.median(pooled[candidate.tool])


def scaling_series(sizes, cache: str) -> list[dict]:
    """bench_rewrite.py's synthetic graphs, load + rewrite each size in its own process."""
    try:
        import bench_rewrite  # noqa: F401
    except ImportError:
        return []
    rules = RULES  # the measure: rules/opencv.yaml, everything it does
    rows = []
    for size in sizes:
        done = run_process([sys.executable, "-c", _SCALING_RUN, ROOT, HERE, str(size), cache,
                            rules])
        if done.returncode != 0:
            rows.append({"size": size, "error": _last_line(done.stderr)})
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row.update(size=size, process_s=done.seconds, peak_rss_mb=done.peak_rss_mb)
        rows.append(row)
    return rows


# -- the report --------------------------------------------------------------------------
def _pair(a, b, fmt="{}") -> str:
    show = lambda v: "-" if v is None else fmt.format(v)    # noqa: E731
    return f"{show(a)} / {show(b)}"


def _ratio(a, b) -> str:
    return "-" if a is None or b is None or not b else f"{a / b:.2f}x"


def comparison_table(rows: list[tuple[str, int, list[Candidate]]]) -> str:
    head = ("| model | nodes | time s | time ratio | peak RSS MB | nodes after | OpenCV 4 | "
            "OpenCV 5 | forward ms (OpenCV 4) | latency ratio |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---|---|---:|---:|"]
    for label, nodes, (ours, peer) in rows:
        time_ours = ours.process.seconds if ours.process else None
        time_peer = peer.process.seconds if peer.process else None
        peer_loads = any(cell == "pass" or cell.startswith("mismatch")
                         for cell in peer.opencv.values())
        lines.append(
            f"| {label} | {nodes} | {_pair(time_ours, time_peer, '{:.1f}')} | "
            f"{_ratio(time_ours, time_peer)} | "
            f"{_pair(ours.process and ours.process.peak_rss_mb, peer.process and peer.process.peak_rss_mb, '{:.0f}')} | "  # noqa: E501
            f"{_pair(ours.nodes, peer.nodes)} | "
            f"{_pair(ours.opencv.get('4'), peer.opencv.get('4'))} | "
            f"{_pair(ours.opencv.get('5'), peer.opencv.get('5'))} | "
            f"{_pair(ours.latency_ms, peer.latency_ms, '{:.1f}')} | "
            f"{_ratio(ours.latency_ms, peer.latency_ms) if peer_loads else 'peer fails'} |")
    return "\n".join(lines)


def targets(rows) -> list[str]:
    """One line per target: met or not, and where not."""
    slow = [label for label, _, (ours, peer) in rows
            if not (ours.process and peer.process
                    and ours.process.seconds <= TIME_TARGET * peer.process.seconds)]
    latency = [label for label, _, (ours, peer) in rows
               if peer.latency_ms is not None and (ours.latency_ms is None
                                                   or ours.latency_ms > LATENCY_TARGET
                                                   * peer.latency_ms)]
    return [f"- time <= {TIME_TARGET}x the peer: "
            + ("met on every model" if not slow else "missed on " + ", ".join(slow)),
            f"- forward latency <= {LATENCY_TARGET}x the peer's output where it loads: "
            + ("met" if not latency else "missed on " + ", ".join(latency))]


def scaling_table(rows: list[dict]) -> str:
    if not rows:
        return "bench/bench_rewrite.py not found: no scaling series."
    lines = ["| nodes | load s | rewrite s | rewrite CPU s | us/node (CPU) | firings | "
             "nodes after | process s | peak RSS MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['size']} | failed: {row['error']} | | | | | | | |")
            continue
        lines.append(f"| {row['nodes']} | {row['load_s']:.2f} | {row['rewrite_s']:.2f} | "
                     f"{row['rewrite_cpu_s']:.2f} | {row['rewrite_cpu_s'] / row['nodes'] * 1e6:.1f}"
                     f" | {row['firings']} | {row['after']} | {row['process_s']:.1f} | "
                     f"{row['peak_rss_mb']:.0f} |")
    per_node = [r["rewrite_cpu_s"] / r["nodes"] for r in rows if "error" not in r]
    if len(per_node) > 1:
        lines.append(f"\ntime per node spread: {max(per_node) / min(per_node):.2f}x "
                     "(target <= 2x)")
    return "\n".join(lines)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def opencv_pythons() -> dict:
    return {"4": os.environ.get("GRAPHTOOL_OPENCV4_PYTHON") or sys.executable,
            "5": os.environ.get("GRAPHTOOL_OPENCV5_PYTHON")}


def main(argv=None) -> int:
    from zoo import FLAVOURS, MODELS, zoo_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated (default: all; --quick: "
                                         f"{','.join(QUICK_MODELS)}): {','.join(MODELS)}")
    parser.add_argument("--flavours", help="comma-separated: k3, k2 (default: both; --quick: k3)")
    parser.add_argument("--quick", action="store_true",
                        help="three small models, Keras 3 only, 5 timed forwards, scaling "
                             "series up to 100k nodes")
    parser.add_argument("--repeat", type=int, help="timed forward() calls (default 40, quick 5)")
    parser.add_argument("--runs", type=int,
                        help="whole-process runs per tool, in turns; the median is reported "
                             "(default 3, quick 1)")
    parser.add_argument("--sizes", help="scaling series sizes, comma-separated (default "
                        f"{','.join(map(str, SCALING_SIZES))}; --quick: "
                        f"{','.join(map(str, QUICK_SCALING_SIZES))}; 0 for none)")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "graphtool-bench"),
                        help="where the synthetic scaling graphs are cached")
    args = parser.parse_args(argv)
    models = args.models.split(",") if args.models else list(
        QUICK_MODELS if args.quick else MODELS)
    flavours = args.flavours.split(",") if args.flavours else (["k3"] if args.quick
                                                               else list(FLAVOURS))
    unknown = [m for m in models if m not in MODELS] + [f for f in flavours if f not in FLAVOURS]
    if unknown:
        parser.error(f"unknown model or flavour: {', '.join(unknown)}")
    repeat = args.repeat or (5 if args.quick else 40)
    runs = args.runs or (1 if args.quick else 3)
    pythons = opencv_pythons()
    # Both tools start from compiled bytecode, as after pip install: TensorFlow's modules
    # come compiled, graphtool's would otherwise be compiled again by every timed process
    # where PYTHONDONTWRITEBYTECODE is set (0.1 - 0.2 s of each run).
    import compileall
    compileall.compile_dir(os.path.join(ROOT, "graphtool"), quiet=1)
    started = time.monotonic()
    rows, notes = [], []
    for model in models:
        for flavour in flavours:
            pb = zoo_path(model, flavour)
            label = f"{model} {flavour}"
            print(f"... {label}", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory(prefix="graphtool-bench-") as work:
                candidates = make_candidates(pb, work, runs)
                for candidate in candidates:
                    check_in_opencv(pb, work, candidate, pythons)
                time_forward(pb, work, candidates, pythons["4"], repeat)
                notes += [f"{label}: {n}" for c in candidates for n in c.notes]
            import graphtool
            rows.append((label, len(graphtool.load(pb, check=False)), candidates))
    sizes = ([int(s) for s in args.sizes.split(",") if int(s) > 0] if args.sizes
             else QUICK_SCALING_SIZES if args.quick else SCALING_SIZES)
    print(f"... scaling series {', '.join(map(str, sizes))}", file=sys.stderr, flush=True)
    scaling = scaling_series(sizes, args.cache) if sizes else None

    print("## graphtool vs Grappler + optimize_for_inference\n")
    print("Each cell: graphtool / peer. Time and peak RSS of the whole process (median of "
          f"{runs} run{'s' if runs > 1 else ''} each, in turns); OpenCV "
          "columns: the output loaded and matched TensorFlow (max abs err <= 1e-4 x "
          "max(1, max|ref|)); forward: median of "
          f"2 x {repeat} timed `forward()` calls after one warm-up, both outputs timed in "
          f"turns in one OpenCV 4 process ({pythons['4']}), once in each load order.\n")
    print(comparison_table(rows))
    print("\nTargets:")
    print("\n".join(targets(rows)))
    if notes:
        print("\nNotes:\n" + "\n".join(f"- {n}" for n in notes))
    if scaling is not None:
        print("\n## Rule engine scaling (bench/bench_rewrite.py graphs, rules/opencv.yaml)\n")
        print(scaling_table(scaling))
    print(f"\n(total {time.monotonic() - started:.0f} s, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
