"""Why does (or doesn't) a rule match?  Per candidate root: the best partial match and the reason.

Users of every rewrite system ask this; onnxscript answers it with a tracer
that keeps the best partial match.  Here ``explain`` runs one rule's matcher
with a ``Tracer`` at each candidate root (or at the nodes asked for) and
reports what got bound and where the search stopped, with node names.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.graph import parse_ref
from graphtool.match.matcher import Matcher, Tracer


@dataclass
class Explanation:
    """The outcome at one candidate root."""
    root: str | None
    op: str | None
    matched: bool
    bindings: dict = field(default_factory=dict)   # capture -> node / tensor / list
    failed_at: str | None = None                   # the capture where the search stopped
    reason: str | None = None

    def to_dict(self) -> dict:
        return {"root": self.root, "op": self.op, "matched": self.matched,
                "bindings": self.bindings, "failed_at": self.failed_at, "reason": self.reason}

    def __str__(self) -> str:
        head = f"{self.root} ({self.op})" if self.root else "(no candidate)"
        if self.matched:
            return f"{head}: matches " + _bound(self.bindings)
        where = f" at {self.failed_at!r}" if self.failed_at else ""
        return f"{head}: no match{where}: {self.reason}" + (
            f" [bound {_bound(self.bindings)}]" if self.bindings else "")


def _bound(bindings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in bindings.items())


def explain(graph, rules, rule_id: str, *, nodes=None, prepare: bool = False,
            input_shapes: dict | None = None) -> list[Explanation]:
    """Explain rule ``rule_id`` at each candidate root of ``graph`` (or at ``nodes``).

    ``prepare=True`` first runs the stages before the rule's stage, so the rule
    sees the graph it would see in a real rewrite.
    """
    rule = rules.rule(rule_id)
    if rule.is_action:
        raise GraphtoolError(f"rule {rule_id!r} runs the action {rule.action!r}; explain "
                             "works on pattern rules")
    if prepare:
        from graphtool.rewrite.driver import rewrite
        graph = rewrite(graph, rules.until_stage(rule.stage), input_shapes=input_shapes).graph
    pattern = rule.pattern
    if nodes:
        candidates = [graph.node(n) for n in nodes]
    else:
        ops = pattern.root_ops
        candidates = [n for n in graph.nodes if ops is None or n.op in ops]
    if not candidates:
        wanted = sorted(pattern.root_ops or [])
        present = graph.op_histogram()
        hint = "".join(did_you_mean(op, present) for op in wanted)
        return [Explanation(None, None, False, reason=(
            f"no node has op {'/'.join(wanted)}{hint}; the root of the pattern is "
            f"{pattern.root!r}"))]
    outputs = {parse_ref(o).node for o in graph.outputs}
    matcher = Matcher(pattern, conditions=rule.conditions, control=rule.control, lets=rule.lets)
    results = []
    for node in candidates:
        tracer = Tracer()
        found = matcher.match(graph, node, outputs=outputs, tracer=tracer)
        if found is not None:
            results.append(Explanation(node.name, node.op, True, found.bindings()))
        else:
            results.append(Explanation(node.name, node.op, False, tracer.bindings, tracer.at,
                                       tracer.reason))
    return results
