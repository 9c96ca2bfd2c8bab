"""Drawing graphs: SVG renders, before/after diffs and a self-contained HTML report.

``render_svg`` draws one graph; ``write_diff`` draws two with what changed
marked; ``write_report`` puts both, the rewrite log and validation results on
one HTML page.  Drawing goes through Graphviz's ``dot``.
"""
from __future__ import annotations

import os

from graphtool.emit.files import atomic_write

from graphtool.render.layout import build_dot
from graphtool.render.svg import dot_to_svg

__all__ = ["render_diff_svgs", "render_svg", "render_to_file", "write_diff", "write_report"]


def render_svg(graph, *, collapse_depth=None, focus=None, radius=2, shapes=None, marks=None,
               max_nodes_expanded=400, title=None, graph_id="g", legend=None) -> str:
    """The graph as SVG text.

    collapse_depth: None picks one so that at most ``max_nodes_expanded`` items
        are drawn; 0 collapses nothing; N draws each name scope N levels deep as
        one box (level 1 = Keras layers).
    focus, radius: draw only nodes within ``radius`` edges of node ``focus``.
    shapes: None asks ``graph.shapes()`` for edge labels (none if it fails),
        False draws none, a mapping ``{tensor: (shape, dtype)}`` is used as given.
    marks: ``{node name: "added" | "removed" | "changed" | Mark}`` to highlight.
    legend: draw the mark legend (default: when marks are given).
    """
    dot = build_dot(graph, collapse_depth=collapse_depth, focus=focus, radius=radius,
                    shapes=shapes, marks=marks, max_nodes_expanded=max_nodes_expanded,
                    graph_id=graph_id, title=title,
                    legend=bool(marks) if legend is None else legend)
    return dot_to_svg(dot.source)


def render_to_file(graph, path, **opts) -> None:
    """Write ``render_svg(graph, **opts)`` to ``path`` atomically."""
    svg = render_svg(graph, **opts)
    atomic_write(path, svg, protect=(getattr(graph, "source", None),))


def render_diff_svgs(before, after, diff, **opts) -> dict[str, str]:
    """``{"before": svg, "after": svg}`` with the marks of ``diff`` and a legend."""
    return {which: render_svg(graph, marks=marks, graph_id=which, legend=True,
                              title=_title(which, graph), **opts)
            for which, graph, marks in (("before", before, diff.before_marks()),
                                        ("after", after, diff.after_marks()))}


def write_diff(before, after, out_dir, *, log=None, **opts) -> dict:
    """Write ``out_dir/before.svg`` and ``out_dir/after.svg`` with changes marked.

    ``log`` (a list of rewrite-log dicts or a .jsonl path) names in each changed
    node's tooltip the rules that touched it.  Returns ``{"paths": {which: path},
    "diff": GraphDiff, "svgs": {which: svg text}}``.
    """
    from graphtool.render.diff import diff_graphs
    from graphtool.render.report import ensure_dir

    ensure_dir(out_dir)
    diff = diff_graphs(before, after, log)
    written = {}
    svgs = render_diff_svgs(before, after, diff, **opts)
    for which, svg in svgs.items():
        path = os.path.join(os.fspath(out_dir), f"{which}.svg")
        atomic_write(path, svg, protect=(before.source, after.source))
        written[which] = path
    return {"paths": written, "diff": diff, "svgs": svgs}


def _title(which: str, graph) -> str:
    source = os.path.basename(graph.source) if getattr(graph, "source", None) else ""
    return f"{which}: {source} ({len(graph)} nodes)" if source else f"{which} ({len(graph)} nodes)"


def write_report(path, before, after, *, log=None, validation=None,
                 title="graphtool rewrite report", **opts) -> None:
    """Write one self-contained HTML page comparing ``before`` and ``after``."""
    from graphtool.render.report import build_report

    html = build_report(before, after, log=log, validation=validation, title=title, **opts)
    atomic_write(path, html, protect=(before.source, after.source))
