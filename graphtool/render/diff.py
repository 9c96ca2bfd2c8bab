"""What changed between two graphs, node by node.

Nodes are matched by name first (same name, same op).  What is left over is
matched by content: same op, same attrs and the same (already matched)
inputs, which recognises renames such as ``Graph.bypass`` handing an output
name to the producer.  A matched pair whose attrs, inputs or name differ is
"changed"; unmatched nodes are "removed" (before only) or "added" (after
only).  The rewrite log, when given, adds the rules that touched each node.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graphtool import attrs as attr_codec
from graphtool.errors import GraphtoolError
from graphtool.graph import parse_ref

from graphtool.render.rewrite_log import read_log, rules_by_node
from graphtool.render.style import MARKS
from graphtool.render.text import attr_text

MAX_NOTES = 8  # change notes listed per node before "... and N more"


@dataclass(frozen=True)
class Mark:
    """A diff mark on one node: kind (a key of ``style.MARKS``) and notes for its tooltip."""
    kind: str
    notes: tuple[str, ...] = ()


def as_marks(marks) -> dict[str, Mark]:
    """Accept ``{name: Mark | kind | (kind, notes)}``; unknown kinds are an error."""
    result = {}
    for name, value in (marks or {}).items():
        if isinstance(value, str):
            value = Mark(value)
        elif isinstance(value, tuple):
            value = Mark(value[0], tuple(value[1]) if len(value) > 1 else ())
        if value.kind not in MARKS:
            raise GraphtoolError(f"unknown mark kind {value.kind!r} for node {name!r}; use one "
                                 f"of {', '.join(MARKS)}")
        result[name] = value
    return result


@dataclass
class GraphDiff:
    removed: list[str] = field(default_factory=list)          # before names
    added: list[str] = field(default_factory=list)            # after names
    changed: dict[str, str] = field(default_factory=dict)     # after name -> before name
    notes: dict[str, list[str]] = field(default_factory=dict)  # after name -> change notes
    rules: dict[str, list[str]] = field(default_factory=dict)  # node name -> rules

    def before_marks(self) -> dict[str, Mark]:
        """Marks for drawing the before graph: removed and changed nodes."""
        return self._marks("removed", "removed by", self.removed, before_side=True)

    def after_marks(self) -> dict[str, Mark]:
        """Marks for drawing the after graph: added and changed nodes."""
        return self._marks("added", "created by", self.added, before_side=False)

    def _marks(self, kind, verb, names, *, before_side: bool) -> dict[str, Mark]:
        marks = {n: Mark(kind, self._rule_notes(n, verb)) for n in names}
        for after, before in self.changed.items():
            here, there = (before, after) if before_side else (after, before)
            notes = list(self.notes.get(after, []))
            if after != before:
                notes.insert(0, f"renamed {'to' if before_side else 'from'} {there!r}")
            rules = self._rule_notes(here, "changed by")
            if there != here:
                rules += self._rule_notes(there, "changed by")
            marks[here] = Mark("changed", tuple(notes) + rules)
        return marks

    def _rule_notes(self, name, verb) -> tuple[str, ...]:
        return tuple(f"{verb} rule {rule}" for rule in self.rules.get(name, ()))

    @property
    def unchanged(self) -> bool:
        return not (self.removed or self.added or self.changed)


def _attrs_differ(b, a) -> list[str]:
    """Notes on attrs that differ between two NodeDefs."""
    notes = []
    battr, aattr = b.proto.attr, a.proto.attr
    for key in sorted(set(battr) | set(aattr)):
        if key not in aattr:
            notes.append(f"attr {key} removed")
        elif key not in battr:
            notes.append(f"attr {key} added: {attr_text(attr_codec.decode(aattr[key]))}")
        elif battr[key] != aattr[key]:
            old, new = attr_codec.decode(battr[key]), attr_codec.decode(aattr[key])
            notes.append(f"attr {key}: {attr_text(old)} -> {attr_text(new)}")
    return notes


def _mapped_inputs(node, rename: dict[str, str]) -> list[str]:
    """Inputs of a before-node spelled with after-graph names (unmatched names kept)."""
    out = []
    for text in node.inputs:
        r = parse_ref(text)
        out.append(str(r._replace(node=rename.get(r.node, r.node))))
    return out


def _inputs_differ(old: list[str], new: list[str]) -> list[str]:
    notes = []
    for i in range(max(len(old), len(new))):
        o = old[i] if i < len(old) else None
        n = new[i] if i < len(new) else None
        if o != n:
            notes.append(f"input {i}: {o or '(none)'} -> {n or '(none)'}")
    return notes


def _attr_key(node) -> tuple:
    return (node.op, tuple(sorted((k, v.SerializeToString(deterministic=True))
                                  for k, v in node.proto.attr.items())))


def _match_by_content(before, after, rename: dict[str, str]) -> None:
    """Pair leftover nodes whose op, attrs and mapped inputs agree (renames).

    Repeats while it finds pairs, since a pair can make its consumers' inputs agree.
    """
    left_before = [n for n in before.nodes if n.name not in rename]
    taken = set(rename.values())
    left_after = [n for n in after.nodes if n.name not in taken]
    if not left_before or not left_after:
        return
    attr_keys = {id(n): _attr_key(n) for n in left_before + left_after}
    progress = True
    while progress and left_before and left_after:
        progress = False
        pending: dict[tuple, list[str]] = {}
        for node in left_before:
            key = (attr_keys[id(node)], tuple(_mapped_inputs(node, rename)))
            pending.setdefault(key, []).append(node.name)
        for node in left_after:
            candidates = pending.get((attr_keys[id(node)], node.inputs))
            if candidates:
                rename[candidates.pop(0)] = node.name
                taken.add(node.name)
                progress = True
        left_before = [n for n in left_before if n.name not in rename]
        left_after = [n for n in left_after if n.name not in taken]


def diff_graphs(before, after, log=None) -> GraphDiff:
    """Classify every node of two graphs as removed, added, changed or unchanged."""
    rename = {}
    for node in before.nodes:
        other = after.get(node.name)
        if other is not None and other.name == node.name and other.op == node.op:
            rename[node.name] = node.name
    _match_by_content(before, after, rename)
    result = GraphDiff(rules=rules_by_node(read_log(log)))
    matched_after = set(rename.values())
    result.removed = [n.name for n in before.nodes if n.name not in rename]
    result.added = [n.name for n in after.nodes if n.name not in matched_after]
    for old, new in rename.items():
        b, a = before.node(old), after.node(new)
        notes = _attrs_differ(b, a) + _inputs_differ(_mapped_inputs(b, rename), list(a.inputs))
        if b.device != a.device:
            notes.append(f"device: {b.device or '(none)'} -> {a.device or '(none)'}")
        if notes or old != new:
            if len(notes) > MAX_NOTES:
                notes = notes[:MAX_NOTES] + [f"... and {len(notes) - MAX_NOTES} more changes"]
            result.changed[new] = old
            result.notes[new] = notes
    return result
