"""A whole rewrite from files: what ``graphtool rewrite`` does, as one function.

``run_rewrite`` loads the rules first (so a broken rule file is reported
before any graph is read), then the graph and its freeze sidecar
(``model.json`` next to ``model.pb``: outputs and input shapes), and rewrites.
It returns a ``RewriteRun`` holding the graph before and after, the log and the
stats - the extension point for writers that want more than the ``.pb``
(a ``.pbtxt`` config, rendered SVGs, an HTML report, validation).
``write_outputs`` writes the rewritten graph, its sidecar and the log.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.graph import parse_ref
from graphtool.lang.loader import load_rules
from graphtool.lang.model import RuleSet
from graphtool.rewrite.driver import DEFAULT_MAX_PASSES, RewriteResult, rewrite, write_log


@dataclass
class RewriteRun:
    input_path: str
    rules: RuleSet
    before: object                   # the Graph as loaded (never modified), or None
    result: RewriteResult
    sidecar: dict | None = None      # the input's freeze sidecar, if any
    input_shapes: dict = field(default_factory=dict)

    @property
    def after(self):
        return self.result.graph

    @property
    def log(self) -> list:
        return self.result.log

    @property
    def stats(self) -> dict:
        return self.result.stats


def sidecar_path(graph_path) -> str:
    """``model.json`` next to ``model.pb``."""
    return os.path.splitext(os.fspath(graph_path))[0] + ".json"


def run_rewrite(input_path, rule_paths, *, input_shapes: dict | None = None,
                max_passes: int = DEFAULT_MAX_PASSES, keep_before: bool = True) -> RewriteRun:
    """Load rules, graph and sidecar, and rewrite; nothing is written.

    ``keep_before=False`` rewrites the loaded graph in place (no copy) and leaves
    ``before`` None: for callers that need only the result.
    """
    import graphtool

    rules = load_rules(*rule_paths)
    graph = graphtool.load(input_path)
    sidecar, shapes = None, {}
    path = sidecar_path(input_path)
    if os.path.exists(path):
        from graphtool.validate.signature import read_signature
        signature = read_signature(graph, input_path, sidecar=path, input_shapes=input_shapes)
        graph.outputs = [p.tensor for p in signature.outputs]
        shapes = {p.name: list(p.shape) for p in signature.inputs if p.shape is not None}
        with open(path, encoding="utf-8") as fh:
            sidecar = json.load(fh)
    inputs = [n.name for n in graph.inputs]
    for name, dims in (input_shapes or {}).items():
        node = parse_ref(name).node
        if node not in inputs:
            raise GraphtoolError(f"--input-shape names {name!r}, which is not a graph input"
                                 + (did_you_mean(node, inputs)
                                    or f"; inputs: {', '.join(inputs) or 'none'}"))
        shapes[node] = [int(d) for d in dims]
    result = rewrite(graph, rules, input_shapes=shapes, max_passes=max_passes,
                     in_place=not keep_before)
    return RewriteRun(os.fspath(input_path), rules, graph if keep_before else None, result,
                      sidecar, shapes)


def write_outputs(run: RewriteRun, out_path=None, *, log_path=None) -> list[str]:
    """Write the rewritten graph (+ its sidecar when the input had one) and the log."""
    from graphtool.emit.files import atomic_write
    written = []
    if out_path is not None:
        out_path = os.fspath(out_path)
        run.after.save(out_path)
        written.append(out_path)
        if run.sidecar is not None:
            target = sidecar_path(out_path)
            atomic_write(target, json.dumps(_out_sidecar(run, out_path), indent=2) + "\n",
                         protect=(sidecar_path(run.input_path),))
            written.append(target)
    if log_path is not None:
        write_log(os.fspath(log_path), run.log)
        written.append(os.fspath(log_path))
    return written


def _out_sidecar(run: RewriteRun, out_path: str) -> dict:
    """The input's sidecar, with the reference data found from the output's folder."""
    data = dict(run.sidecar)
    reference = data.get("reference")
    if reference:
        source = os.path.join(os.path.dirname(os.path.abspath(run.input_path)), reference)
        if os.path.exists(source):
            data["reference"] = os.path.relpath(source, os.path.dirname(os.path.abspath(out_path)))
        else:
            data.pop("reference")
    data["rewritten"] = {"from": os.path.abspath(run.input_path), "rules": run.rules.files}
    return data
