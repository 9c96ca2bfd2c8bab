"""The HTML report: one self-contained page with before/after graphs, log and checks.

Everything the page needs (SVGs, stylesheet, script) is inlined, so the file
can be mailed, attached to a CI run or opened offline.
"""
from __future__ import annotations

import datetime
import html
import os
import re
from collections import Counter

from graphtool.errors import GraphtoolError

from graphtool.render import assets, style
from graphtool.render.diff import diff_graphs
from graphtool.render.rewrite_log import read_log, summarize

MAX_LOG_NAMES = 12       # node names shown per log row before "and N more"
MAX_CHANGE_ROWS = 500    # rows in the table of changed nodes
PASS_KEYS = ("passed", "pass", "ok", "match", "status")
_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)


def ensure_dir(out_dir) -> str:
    """Create ``out_dir`` if needed; a one-line error when it cannot be written."""
    path = os.fspath(out_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise GraphtoolError("the output path exists and is not a directory; give a "
                             "directory", path=path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise GraphtoolError(f"cannot create the output directory: {exc.strerror}",
                             path=path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise GraphtoolError("the output directory is not writable; choose another one or fix "
                             "its permissions", path=path)
    return path


def inline_svg(svg: str) -> str:
    """SVG text without the XML prolog and doctype, ready to sit inside HTML."""
    return _PROLOG.sub("", svg, count=1).strip()


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _panel(which: str, graph, svg: str) -> str:
    name = f"{which}: {os.path.basename(graph.source) if graph.source else 'graph'}"
    return (f'<div class="panel" id="panel-{which}"><div class="toolbar">'
            f'<span class="name">{_e(name)} ({len(graph)} nodes)</span>'
            '<button class="zoom-out" title="zoom out">&minus;</button>'
            '<button class="zoom-in" title="zoom in">+</button>'
            '<button class="reset" title="fit the graph into the panel">reset</button>'
            '<span class="zoom"></span></div>'
            f'<div class="viewport"><div class="stage">{inline_svg(svg)}</div></div></div>')


def _names_cell(names: list[str]) -> str:
    shown = ", ".join(_e(n) for n in names[:MAX_LOG_NAMES])
    if len(names) > MAX_LOG_NAMES:
        rest = ", ".join(_e(n) for n in names[MAX_LOG_NAMES:])
        shown += (f' <details><summary>and {len(names) - MAX_LOG_NAMES} more</summary>'
                  f'{rest}</details>')
    return f'<td class="names">{shown}</td>'


def _log_section(entries) -> str:
    if not entries:
        return '<p class="empty">No rewrite log was given.</p>'
    rows = "".join(
        f"<tr><td>{_e(r.rule)}</td><td>{_e(r.stage)}</td><td class=\"num\">{r.count}</td>"
        f"{_names_cell(r.nodes)}</tr>" for r in summarize(entries))
    return ('<table class="log"><thead><tr><th>rule</th><th>stage</th><th>count</th>'
            f'<th>nodes</th></tr></thead><tbody>{rows}</tbody></table>')


def _scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _runs(validation) -> list[dict]:
    """Normalise validation results to ``[{"meta": {...}, "rows": [{...}]}]``."""
    if validation is None:
        return []
    if isinstance(validation, dict) and isinstance(validation.get("runs"), list):
        return [r for run in validation["runs"] for r in _runs(run)]
    if isinstance(validation, list):
        if validation and all(isinstance(v, dict) and "outputs" in v for v in validation):
            return [r for run in validation for r in _runs(run)]
        return [{"meta": {}, "rows": [v for v in validation if isinstance(v, dict)]}]
    if not isinstance(validation, dict):
        raise GraphtoolError("validation results must be a dict or a list of dicts")
    meta = {k: v for k, v in validation.items() if _scalar(v)}
    outputs = validation.get("outputs")
    if outputs is None:
        outputs = {k: v for k, v in validation.items() if isinstance(v, dict)}
    if isinstance(outputs, dict):
        outputs = [{"output": k, **v} if isinstance(v, dict) else {"output": k, "value": v}
                   for k, v in outputs.items()]
    return [{"meta": meta, "rows": [r for r in outputs if isinstance(r, dict)]}]


def _cell(key: str, value) -> str:
    if key.lower() in PASS_KEYS and isinstance(value, bool):
        return f'<td class="{"pass" if value else "fail"}">{"pass" if value else "FAIL"}</td>'
    if key.lower() in PASS_KEYS and isinstance(value, str):
        ok = value.lower() in ("pass", "passed", "ok", "true")
        return f'<td class="{"pass" if ok else "fail"}">{_e(value)}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    if isinstance(value, (list, tuple)):
        value = "x".join(str(v) for v in value)
    return f"<td>{_e(value)}</td>"


def _validation_section(validation) -> str:
    runs = _runs(validation)
    if not runs:
        return '<p class="empty">No validation results were given.</p>'
    parts = []
    for run in runs:
        meta = " &middot; ".join(f"<b>{_e(k)}</b>: {_e(v)}" for k, v in run["meta"].items())
        if meta:
            parts.append(f'<p class="run">{meta}</p>')
        columns = list(dict.fromkeys(k for row in run["rows"] for k in row))
        if not columns:
            continue
        head = "".join(f"<th>{_e(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(_cell(c, row.get(c, "")) for c in columns) + "</tr>"
                       for row in run["rows"])
        parts.append(f'<table class="validation"><thead><tr>{head}</tr></thead>'
                     f"<tbody>{body}</tbody></table>")
    return "".join(parts)


def _summary_section(before, after, diff) -> str:
    counts = (f'<div class="counts"><span>before: <b>{len(before)}</b> nodes</span>'
              f'<span>after: <b>{len(after)}</b> nodes</span>')
    for kind, number in (("removed", len(diff.removed)), ("added", len(diff.added)),
                         ("changed", len(diff.changed))):
        mark = style.MARKS[kind]
        counts += (f'<span><i class="swatch" style="background:{mark.fill};'
                   f'border-color:{mark.colour}"></i>{_e(kind)}: <b>{number}</b></span>')
    counts += "</div>"
    old, new = Counter(before.op_histogram()), Counter(after.op_histogram())
    moved = sorted((op for op in set(old) | set(new) if old[op] != new[op]),
                   key=lambda op: (-abs(new[op] - old[op]), op))
    if moved:
        rows = "".join(f'<tr><td>{_e(op)}</td><td class="num">{old[op]}</td>'
                       f'<td class="num">{new[op]}</td></tr>' for op in moved)
        counts += ('<details><summary>op counts that changed</summary><table><thead><tr>'
                   f'<th>op</th><th>before</th><th>after</th></tr></thead><tbody>{rows}'
                   '</tbody></table></details>')
    if diff.changed:
        items = list(diff.changed.items())[:MAX_CHANGE_ROWS]
        rows = "".join(
            f'<tr><td class="names">{_e(a)}</td><td class="names">'
            f'{_e("; ".join(diff.notes.get(a) or ["renamed from " + b]))}</td></tr>'
            for a, b in items)
        more = (f"<p>... and {len(diff.changed) - MAX_CHANGE_ROWS} more</p>"
                if len(diff.changed) > MAX_CHANGE_ROWS else "")
        counts += ('<details><summary>changed nodes</summary><table><thead><tr><th>node</th>'
                   f'<th>what changed</th></tr></thead><tbody>{rows}</tbody></table>{more}'
                   '</details>')
    return counts


def build_report(before, after, *, log=None, validation=None,
                 title="graphtool rewrite report", diff=None, svgs=None, **opts) -> str:
    """The report page as HTML text; ``opts`` go to ``render_svg`` for both graphs.

    ``diff`` and ``svgs`` (as returned by ``write_diff``) skip recomputing them.
    """
    from graphtool.render import render_diff_svgs

    entries = read_log(log)
    if diff is None:
        diff = diff_graphs(before, after, entries)
    if svgs is None:
        svgs = render_diff_svgs(before, after, diff, **opts)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    sources = " &rarr; ".join(_e(g.source) for g in (before, after) if g.source)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{assets.CSS}</style></head>
<body>
<header><h1>{_e(title)}</h1><div class="meta">{sources} &middot; generated {stamp}</div></header>
<main>
<section id="summary"><h2>Summary</h2>{_summary_section(before, after, diff)}</section>
<section id="graphs"><h2>Graphs</h2>
<div class="finder"><input type="search" placeholder="node name, then Enter: highlight it in both graphs"><span class="status">drag to pan, wheel to zoom, click a node to find it in the other graph</span></div>
<div class="panels">{_panel("before", before, svgs["before"])}{_panel("after", after, svgs["after"])}</div>
</section>
<section id="log"><h2>Rewrite log</h2>{_log_section(entries)}</section>
<section id="validation"><h2>Validation</h2>{_validation_section(validation)}</section>
</main>
<script>{assets.JS}</script>
</body></html>
"""
