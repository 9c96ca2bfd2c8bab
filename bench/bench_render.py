"""Render time of big real graphs, collapsed (default) and fully expanded.

Models come from the benchmark zoo (keras.applications, weights=None, frozen
by graphtool; built on first use).  For each model and mode the table shows
the nodes in the graph, the items drawn (nodes + collapsed boxes), the time
spent in graphtool (layout, including shape inference for edge labels), the
time spent in Graphviz's dot, the total and the SVG size.

    python bench/bench_render.py [--models DenseNet121,NASNetMobile] [--flavour k3]
                                 [--no-full] [--no-shapes]

Target (issue 7): DenseNet121 and NASNetMobile collapsed in under 10 s each;
the fully expanded render is reported, not targeted.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

TARGET_SECONDS = 10.0


def measure(graph, collapse_depth, shapes) -> dict:
    from graphtool.render.layout import build_dot
    from graphtool.render.svg import dot_to_svg

    start = time.perf_counter()
    dot = build_dot(graph, collapse_depth=collapse_depth, shapes=shapes)
    laid_out = time.perf_counter()
    svg = dot_to_svg(dot.source)
    done = time.perf_counter()
    return {"shown": dot.shown_items, "depth": dot.collapse_depth,
            "layout": laid_out - start, "dot": done - laid_out, "total": done - start,
            "kib": len(svg.encode("utf-8")) / 1024}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="DenseNet121,NASNetMobile")
    parser.add_argument("--flavour", default="k3", help="zoo flavour: k3 (Keras 3) or k2")
    parser.add_argument("--no-full", action="store_true", help="skip the expanded render")
    parser.add_argument("--no-shapes", action="store_true", help="no edge labels")
    args = parser.parse_args(argv)

    import graphtool
    from zoo import zoo_path

    shapes = False if args.no_shapes else None
    rows, slow = [], []
    for model in args.models.split(","):
        graph = graphtool.load(zoo_path(model, args.flavour))
        modes = [("collapsed (auto)", None)] + ([] if args.no_full else [("expanded", 0)])
        for mode, depth in modes:
            result = measure(graph, depth, shapes)
            rows.append((model, mode, len(graph), result))
            if depth is None and result["total"] >= TARGET_SECONDS:
                slow.append(model)

    print(f"| model ({args.flavour}) | mode | nodes | drawn | depth | layout s | dot s "
          "| total s | SVG KiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for model, mode, nodes, r in rows:
        print(f"| {model} | {mode} | {nodes} | {r['shown']} | {r['depth']} | {r['layout']:.2f} "
              f"| {r['dot']:.2f} | {r['total']:.2f} | {r['kib']:.0f} |")
    verdict = "all" if not slow else "NOT all"
    print(f"\ntarget: collapsed render under {TARGET_SECONDS:.0f} s - {verdict} met"
          + (f" (slow: {', '.join(slow)})" if slow else ""))
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
