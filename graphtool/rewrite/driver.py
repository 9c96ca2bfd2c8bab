"""The driver: runs a RuleSet over a graph, stage by stage, to a fixed point.

Per stage: the stage's actions run once, in file order; then its pattern rules
run in passes.  In each pass, rules go highest priority first (ties in file
order) and each rule visits its candidate roots - taken from an index by root
op, so no rule scans the whole graph - in a stable order.  The first pass
visits every candidate; later passes only the nodes within pattern depth
downstream of something the previous pass changed, which keeps the cost
linear in graph size.  A stage stops when a pass changes nothing; when it is
still changing after the pass cap, the error names the rules that kept firing.

The rewrite is transactional: it works on a copy, and the caller's graph is
never modified, whatever fails - unless the caller hands the graph over
(``in_place=True``, what the CLI does with a graph it loaded only to rewrite:
copying a million nodes costs seconds, and on failure nothing is written anyway).
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field

from graphtool.errors import GraphtoolError
from graphtool.gcpause import paused_gc
from graphtool.graph import parse_ref
from graphtool.lang.expr import strict_floats
from graphtool.match.matcher import Matcher
from graphtool.rewrite.actions import ActionContext, run_action
from graphtool.rewrite.edit import Edit, OpIndex
from graphtool.rewrite.replacement import apply

DEFAULT_MAX_PASSES = 100


@dataclass
class RewriteResult:
    """The rewritten graph, the rewrite log (one dict per rule firing) and statistics."""
    graph: object
    log: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def rewrite(graph, rules, *, log=None, input_shapes: dict | None = None,
            max_passes: int = DEFAULT_MAX_PASSES, in_place: bool = False) -> RewriteResult:
    """Apply ``rules`` (a RuleSet) to a copy of ``graph``.

    ``log`` may be a path (JSON lines are written there), a list (entries are
    appended) or a file object.  ``input_shapes`` maps Placeholder names to
    dims for the actions that need them (set_input_shape, fold_constants).
    ``in_place=True`` rewrites ``graph`` itself (the result's graph is ``graph``);
    if the rewrite fails, ``graph`` is left half rewritten and must be dropped.
    """
    with paused_gc():
        return _rewrite(graph, rules, log, input_shapes, max_passes, in_place)


def _rewrite(graph, rules, log, input_shapes, max_passes, in_place) -> RewriteResult:
    started = time.perf_counter()
    work = graph if in_place else graph.copy()
    work.outputs = work.outputs  # pin: the outputs before the rewrite stay the outputs
    outputs = {parse_ref(o).node for o in work.outputs}
    entries: list[dict] = []
    fired: Counter = Counter()
    passes: dict[str, int] = {}
    nodes_before = len(work)
    memo: dict = {}
    index = None  # built for the first stage with rules, then kept up to date
    try:
        for stage in rules.stages:
            run = _StageRun(work, stage, outputs, entries, fired,
                            ActionContext(dict(input_shapes or {}), stage.name, memo),
                            stage.max_passes or max_passes, index)
            passes[stage.name] = run.run()
            index = run.index
    finally:
        work.observe(None)
    try:
        work.check()
    except GraphtoolError as exc:
        raise GraphtoolError(f"the rewrite produced a broken graph ({exc}); a rule's replacement "
                             "is wrong - run with --log to see which rules fired") from None
    stats = {
        "nodes_before": nodes_before, "nodes_after": len(work),
        "fired": {r.id: fired[r.id] for r in rules.rules if fired[r.id]},
        "passes": passes, "seconds": round(time.perf_counter() - started, 3),
    }
    write_log(log, entries)
    return RewriteResult(work, entries, stats)


def write_log(target, entries: list[dict]) -> None:
    """Entries as JSON lines to a path (atomically), a file object, or appended to a list."""
    if target is None:
        return
    if isinstance(target, list):
        target.extend(entries)
        return
    text = "".join(json.dumps(e, sort_keys=False) + "\n" for e in entries)
    if hasattr(target, "write"):
        target.write(text)
        return
    from graphtool.emit.files import atomic_write
    atomic_write(os.fspath(target), text)


class _StageRun:
    def __init__(self, graph, stage, outputs, entries, fired, ctx, max_passes, index):
        self.graph = graph
        self.index = index
        self.stage = stage
        self.outputs = outputs
        self.entries = entries
        self.fired = fired
        self.ctx = ctx
        self.max_passes = max_passes

    def run(self) -> int:
        for rule in self.stage.actions:
            self._action(rule)
        self.ctx.handoff.clear()  # pattern rules change the graph: nothing handed on survives
        rules = self.stage.patterns
        if not rules:
            return 0
        self.index = OpIndex(self.graph) if self.index is None else self.index.settle(self.graph)
        self.graph.observe(self.index)
        matchers = {r.id: Matcher(r.pattern, conditions=r.conditions, control=r.control,
                                  lets=r.lets) for r in rules}
        depth = max(r.pattern.depth for r in rules)
        with strict_floats():
            return self._passes(rules, matchers, depth)

    def _passes(self, rules, matchers, depth) -> int:
        within = None
        for number in range(1, self.max_passes + 1):
            counts: Counter = Counter()
            touched: set[str] = set()
            for rule in rules:
                if rule.once and number > 1:
                    continue
                self._sweep(rule, matchers[rule.id], within, counts, touched)
            if not counts:
                return number
            # The possible new roots: nodes at most depth - 1 edges below a change.
            within = self.graph.downstream(touched, max(depth - 1, 0))
        busy = ", ".join(f"{rid} ({n} times)" for rid, n in counts.most_common())
        raise GraphtoolError(
            f"stage {self.stage.name!r} still changes the graph after {self.max_passes} passes; "
            f"rules still firing in the last pass: {busy}. A replacement probably re-creates its "
            "own pattern: make the pattern stricter or mark the rule once: true")

    def _sweep(self, rule, matcher, within, counts, touched) -> None:
        ops = rule.pattern.root_ops
        graph, index, outputs = self.graph, self.index, self.outputs
        replacement, control, stage, rid = rule.replacement, rule.control, self.stage.name, rule.id
        bypass = replacement.kind == "bypass"
        if not index.offers_each(rule.pattern.nodes.values()):
            return  # a pattern node that no node of the graph can bind
        fired = 0
        for name in index.candidates(ops, within):
            node = graph.get(name)
            if node is None:
                continue  # removed by an earlier firing (a changed op fails the match at once)
            try:
                found = matcher.match(graph, node, outputs=outputs)
            except GraphtoolError as exc:
                raise _rule_error(rule, name, None, exc) from exc
            if found is None:
                continue
            edit = Edit(graph, outputs)
            try:
                apply(replacement, found, edit, None if bypass else found.scope(graph, rule.lets),
                      control)
            except Exception as exc:  # noqa: BLE001 - reported with the rule and the nodes
                raise _rule_error(rule, name, found.matched, exc) from exc
            entry = {"rule": rid, "stage": stage, "root": name, "matched": found.matched}
            entry.update(edit.summary())
            self.entries.append(entry)
            fired += 1
            edit.add_touched(touched)
        if fired:
            counts[rid] += fired
            self.fired[rid] += fired

    def _action(self, rule) -> None:
        before = len(self.graph)
        handed = dict(self.ctx.handoff)
        try:
            detail = run_action(rule.action, self.graph, self.ctx, rule.args)
        except GraphtoolError as exc:
            raise GraphtoolError(f"{rule.position}: action {rule.action!r} (rule {rule.id!r}) "
                                 f"failed: {exc}") from exc
        for key, value in handed.items():  # left by the previous action: read or not, gone now
            if self.ctx.handoff.get(key) is value:
                del self.ctx.handoff[key]
        entry = {"action": rule.action, "rule": rule.id, "stage": self.stage.name}
        entry.update(detail)
        entry.setdefault("nodes", [before, len(self.graph)])
        self.entries.append(entry)
        self.fired[rule.id] += 1
        # Actions may rename or remove outputs; follow them.
        self.outputs.clear()
        self.outputs.update(parse_ref(o).node for o in self.graph.outputs)


def _rule_error(rule, root: str, matched, exc) -> GraphtoolError:
    nodes = f" (matched {', '.join(matched[:6])}{', ...' if len(matched) > 6 else ''})" \
        if matched else ""
    detail = str(exc) if isinstance(exc, GraphtoolError) else f"{type(exc).__name__}: {exc}"
    return GraphtoolError(f"rule {rule.id!r} ({rule.position}) failed at node {root!r}{nodes}: "
                          f"{detail}; nothing was changed")
