"""Graph -> dot source: what is drawn, how it is grouped, and what each item says.

Readability decisions, in order:
1. ``focus`` keeps only the neighbourhood of one node.
2. Constants (and pass-through chains on them) are folded into the labels of
   the nodes that read them, instead of being drawn as boxes of their own.
3. Name scopes become clusters; scopes at ``collapse_depth`` become single
   boxes (chosen automatically when the graph has too many nodes to draw).
4. Labels are op + short name; tooltips carry the full name, every attr and
   the inputs; edges carry shape/dtype where known.
A marked constant folds only into readers that are marked themselves, so what
changed is always visible.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.graph import parse_ref

from graphtool.render import style
from graphtool.render.diff import Mark, as_marks
from graphtool.render.scopes import (Scope, boxes_at, build_tree, choose_depth,
                                     count_by_scope)
from graphtool.render.shapes import const_facts, tensor_facts
from graphtool.render.text import attr_text, html, quoted, shape_text, short_name, tensor_text

MAX_FOLDED_LINES = 4      # folded constants listed in a label before "+N more"
MAX_SUMMARY_OPS = 4       # ops named in a collapsed box's label
MAX_TOOLTIP_NAMES = 30    # node names listed in a collapsed box's tooltip
MAX_TOOLTIP_INPUTS = 40   # inputs listed in a node's tooltip
# Control edges into one node drawn at most; more (a NoOp waiting on every weight read)
# would cross the whole graph and make dot's layout take minutes.
MAX_CONTROL_EDGES = 8
MAX_TOOLTIP_CHARS = 8000  # characters of a tooltip (before escaping)
DOT_STRING_LIMIT = 16000  # dot refuses quoted strings longer than 16384 characters


@dataclass
class DotGraph:
    """The dot source plus what went into it."""
    source: str
    total_nodes: int       # nodes in the graph (or the focus neighbourhood)
    shown_items: int       # nodes and collapsed boxes drawn
    collapse_depth: int    # 0: nothing collapsed


# -- selection and folding ----------------------------------------------------

def _neighbourhood(graph, focus: str, radius: int) -> set[str]:
    node = graph.get(focus)
    if node is None or node.name != parse_ref(focus).node:
        raise GraphtoolError(f"cannot focus on {focus!r}: no node has that name"
                             + _suggest(focus, graph.names()))
    if radius < 0:
        raise GraphtoolError(f"the focus radius must be 0 or more, not {radius}")
    seen = {node.name}
    frontier = [node.name]
    for _ in range(radius):
        nxt = []
        for name in frontier:
            current = graph.node(name)
            around = [parse_ref(i).node for i in current.inputs]
            around += [c.name for c in graph.consumers(name)]
            for other in around:
                if other not in seen and other in graph:
                    seen.add(other)
                    nxt.append(other)
        frontier = nxt
    return seen


def _suggest(word: str, names: list[str]) -> str:
    """Close names: ones ending in ``/word``, containing it, or spelled alike."""
    close = [n for n in names if n.endswith("/" + word)]
    close += sorted((n for n in names if word in n and n not in close),
                    key=lambda n: (word not in short_name(n), len(n)))
    if not close:
        return did_you_mean(word, names)
    return " (did you mean " + ", ".join(repr(n) for n in close[:3]) + "?)"


def _foldable(graph, selected: set[str], marks: dict) -> dict[str, str]:
    """Folded node -> the Const at the root of its chain."""
    roots: dict[str, str | None] = {}

    def readers_marked(name: str) -> bool:
        """A marked constant may fold only into readers that carry a mark themselves."""
        return all(c.name in marks for c in graph.consumers(name) if c.name in selected)

    def root_of(name: str) -> str | None:
        chain = []
        found = None
        while name not in roots:
            chain.append(name)
            node = graph.node(name)
            if name not in selected or (name in marks and not readers_marked(name)):
                break
            if style.is_constant(node.op) and not node.data_inputs:
                found = name
                break
            if not (style.is_pass_through(node) and not node.control_inputs):
                break
            name = parse_ref(node.data_inputs[0]).node
        else:
            found = roots[name]
        for link in chain:
            roots[link] = found
        return found

    folded = {}
    for name in selected:
        root = root_of(name)
        if root is not None and any(c.name in selected for c in graph.consumers(name)):
            folded[name] = root
    return folded


# -- labels and tooltips ------------------------------------------------------

def _slot_name(graph, name: str, index: int, folded: dict[str, str]) -> str:
    """What to call a folded input: its first telling name along the chain, else in<i>."""
    current = name
    while True:
        part = short_name(current)
        if part not in style.GENERIC_NAME_PARTS:
            return part
        node = graph.node(current)
        if current == folded.get(current) or not node.data_inputs:
            return f"in{index}"
        current = parse_ref(node.data_inputs[0]).node


def _folded_value(graph, root: str, read=None) -> str:
    """A folded input in a few characters: its values when tiny, else shape and dtype.

    ``read``: facts of the tensor the consumer reads, when known (a Squeeze on a
    constant changes the shape, not the elements).
    """
    facts = read or const_facts(graph.node(root))
    if facts is None:
        return "constant"
    stored = const_facts(graph.node(root))
    size = 1
    for d in (stored.shape if stored else None) or ():
        size *= max(d, 0)
    if stored is not None and stored.shape is not None and size <= 4:
        try:
            array = graph.node(root).tensor
            return "= " + tensor_text(array, stored.dtype).split("= ", 1)[-1]
        except GraphtoolError:
            pass
    return f"{shape_text(facts.shape)} {facts.dtype or ''}".strip()


def _tensor_label(facts) -> str:
    if facts is None:
        return ""
    text = shape_text(facts.shape)
    if facts.dtype is not None and str(facts.dtype) != "float32":
        text += " " + str(facts.dtype)
    return text


class _Labeller:
    """Labels and tooltips for the nodes of one rendering."""

    def __init__(self, graph, folded, facts, marks):
        self.graph, self.folded, self.facts, self.marks = graph, folded, facts, marks

    def label(self, node) -> str:
        lines = [f"<B>{html(node.op)}</B>"]
        if short_name(node.name) != node.op:
            lines.append(html(short_name(node.name)))
        detail = []
        for index, text in enumerate(node.data_inputs):
            src = parse_ref(text).node
            if src in self.folded:
                slot = _slot_name(self.graph, src, index, self.folded)
                r = parse_ref(text)
                value = _folded_value(self.graph, self.folded[src], self.facts.get(r[:2]))
                line = f"{slot} {value}" if value.startswith("=") else f"{slot}: {value}"
                if src in self.marks:
                    line += f" ({self.marks[src].kind})"
                detail.append(line)
        if len(detail) > MAX_FOLDED_LINES:
            detail = detail[:MAX_FOLDED_LINES - 1] + [
                f"+{len(detail) - MAX_FOLDED_LINES + 1} more constants"]
        waits = sum(1 for c in node.control_inputs if c in self.folded)
        if len(node.control_inputs) > MAX_CONTROL_EDGES:
            detail.append(f"waits for {len(node.control_inputs)} nodes (edges not drawn)")
        elif waits:
            detail.append(f"waits for {waits} folded constant{'s' if waits > 1 else ''}")
        lines += [f'<FONT POINT-SIZE="8" COLOR="{style.DETAIL_COLOUR}">{html(d)}</FONT>'
                  for d in detail]
        return "<" + "<BR/>".join(lines) + ">"

    def tooltip(self, node, hidden_neighbours: bool = False) -> str:
        lines = [node.name, f"op: {node.op}" + (f"  device: {node.device}" if node.device else "")]
        if node.inputs:
            lines.append("inputs:")
        for index, text in enumerate(node.inputs):
            if index == MAX_TOOLTIP_INPUTS:
                lines.append(f"  ... and {len(node.inputs) - index} more")
                break
            r = parse_ref(text)
            if r.control:
                lines.append(f"  ^{r.node} (control)")
                continue
            extra = ""
            if r.node in self.folded:
                root = self.graph.node(self.folded[r.node])
                extra = " = " + attr_text(root.tensor) if _decodable(root) else " (constant)"
            elif (r.node, r.port) in self.facts:
                extra = "  [" + _facts_text(self.facts[(r.node, r.port)]) + "]"
            lines.append(f"  {index}: {text}{extra}")
        out = self.facts.get((node.name, 0))
        if out is not None:
            lines.append("output: " + _facts_text(out))
        attrs = node.attrs
        if attrs:
            lines.append("attrs:")
            lines += [f"  {key}: {attr_text(value)}" for key, value in attrs.items()]
        mark = self.marks.get(node.name)
        if mark is not None:
            lines.append(f"{mark.kind}:")
            lines += [f"  {note}" for note in mark.notes]
        if hidden_neighbours:
            lines.append("(more neighbours outside the focus radius)")
        return _clip_tooltip(lines)


def _clip_tooltip(lines: list[str]) -> str:
    text = "\n".join(lines)
    if len(text) <= MAX_TOOLTIP_CHARS:
        return text
    return text[:MAX_TOOLTIP_CHARS].rsplit("\n", 1)[0] + "\n..."


def _decodable(node) -> bool:
    try:
        node.tensor
    except GraphtoolError:
        return False
    return True


def _facts_text(facts) -> str:
    return f"{shape_text(facts.shape)} {facts.dtype or '?'}"


# -- dot emission -------------------------------------------------------------

def _attrs(**values) -> str:
    """``[k=v, ...]`` where values starting with '<' are HTML-like labels."""
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        key = key.rstrip("_")
        text = str(value)
        if not (text.startswith("<") and text.endswith(">")):
            text = quoted(text)
            if len(text) > DOT_STRING_LIMIT:  # escaping grew it past what dot accepts
                text = quoted(str(value)[:DOT_STRING_LIMIT // 8] + "\n...")
        parts.append(f"{key}={text}")
    return "[" + " ".join(parts) + "]"


@dataclass
class _Box:
    """A collapsed scope drawn as one node."""
    scope: Scope
    dot_id: str


class _Emitter:
    def __init__(self, graph, graph_id, labeller, marks, focus, boundary, scope_sizes):
        self.graph, self.graph_id, self.scope_sizes = graph, graph_id, scope_sizes
        self.labeller, self.marks, self.focus, self.boundary = labeller, marks, focus, boundary
        self.lines: list[str] = []
        self.clusters = 0

    def node(self, name: str, indent: str) -> None:
        node = self.graph.node(name)
        family = style.family_of(node.op)
        mark = self.marks.get(name)
        extra = {}
        classes = [f"op-{family.name}"]
        if mark is not None:
            ms = style.MARKS[mark.kind]
            extra = dict(fillcolor=ms.fill, color=ms.colour, penwidth="2.5")
            classes.append(f"mark-{mark.kind}")
        if name == self.focus:
            extra.update(color=style.FOCUS_COLOUR, penwidth="3")
            classes.append("focus")
        if name in self.boundary:
            extra.update(style="rounded,filled,dashed")
            classes.append("boundary")
        self.lines.append(indent + quoted(name) + " " + _attrs(
            label=self.labeller.label(node),
            tooltip=self.labeller.tooltip(node, name in self.boundary),
            fillcolor=extra.pop("fillcolor", family.fill), class_=" ".join(classes), **extra))

    def box(self, box: _Box, indent: str, title: str | None = None) -> None:
        scope = box.scope
        members = list(scope.nodes())
        ops = Counter(self.graph.node(n).op for n in members)
        summary = ", ".join(f"{op}\u00d7{k}" if k > 1 else op
                            for op, k in ops.most_common(MAX_SUMMARY_OPS))
        if len(ops) > MAX_SUMMARY_OPS:
            summary += f", +{len(ops) - MAX_SUMMARY_OPS}"
        kinds = Counter(self.marks[n].kind for n in members if n in self.marks)
        size = self.scope_sizes.get(scope.path, len(members))
        lines = [f"<B>{html(title or short_name(scope.path))}</B>",
                 f"{size} nodes",
                 f'<FONT POINT-SIZE="8" COLOR="{style.DETAIL_COLOUR}">{html(summary)}</FONT>']
        extra, classes = {}, ["scope-box"]
        if kinds:
            lines.append(html(", ".join(f"{k} {kind}" for kind, k in sorted(kinds.items()))))
            first = next(k for k in style.MARK_PRECEDENCE if k in kinds)
            ms = style.MARKS[first]
            extra = dict(color=ms.colour, penwidth="2.5")
            classes.append(f"mark-{first}")
        tip = [f"scope {scope.path}", f"{size} nodes, collapsed; {size - len(members)} of them "
               "constants folded into labels", "ops drawn:"]
        tip += [f"  {op}: {k}" for op, k in ops.most_common()]
        for kind, k in sorted(kinds.items()):
            names = [n for n in members if n in self.marks and self.marks[n].kind == kind]
            tip.append(f"{kind}: " + ", ".join(short_name(n) for n in names[:MAX_TOOLTIP_NAMES])
                       + (" ..." if len(names) > MAX_TOOLTIP_NAMES else ""))
        tip += ["nodes:"] + [f"  {n}" for n in members[:MAX_TOOLTIP_NAMES]]
        if len(members) > MAX_TOOLTIP_NAMES:
            tip.append(f"  ... and {len(members) - MAX_TOOLTIP_NAMES} more")
        self.lines.append(indent + quoted(box.dot_id) + " " + _attrs(
            label="<" + "<BR/>".join(lines) + ">", tooltip=_clip_tooltip(tip), shape="box3d",
            style="filled", fillcolor=style.COLLAPSED_FILL, class_=" ".join(classes), **extra))

    def scope(self, scope: Scope, boxes: dict, indent: str, title: str | None) -> None:
        """Emit a scope's contents; ``title`` set means draw it as a cluster."""
        inner = indent
        if title is not None:
            self.clusters += 1
            inner = indent + "  "
            self.lines.append(f"{indent}subgraph {quoted('cluster_' + scope.path)} {{")
            self.lines.append(inner + " ".join(f"{k}={v};" for k, v in (
                ("id", quoted(f"{self.graph_id}_cluster{self.clusters}")),
                ("label", f"<<B>{html(title)}</B>>"), ("tooltip", quoted(scope.path)),
                ("style", quoted("rounded,filled")), ("color", quoted(style.CLUSTER_COLOUR)),
                ("fillcolor", quoted(style.CLUSTER_FILL)), ("fontsize", "10"),
                ("class", quoted("scope")))))
        for name in scope.members:
            self.node(name, inner)
        for child in scope.children.values():
            if child in boxes:
                self.box(boxes[child], inner)
            elif child.total == 1:
                self.node(next(child.nodes()), inner)
            else:
                self._nested(child, boxes, inner)
        if title is not None:
            self.lines.append(indent + "}")

    def _nested(self, child: Scope, boxes: dict, indent: str) -> None:
        """A scope holding nothing but one sub-scope is drawn once, titled "a/b"."""
        label, current = short_name(child.path), child
        while not current.members and len(current.children) == 1:
            only = next(iter(current.children.values()))
            if only in boxes:
                self.box(boxes[only], indent, f"{label}/{short_name(only.path)}")
                return
            if only.total < 2:
                break
            label += "/" + short_name(only.path)
            current = only
        self.scope(current, boxes, indent, label)


def build_dot(graph, *, collapse_depth=None, focus=None, radius=2, shapes=None, marks=None,
              max_nodes_expanded=400, graph_id="g", title=None, legend=False) -> DotGraph:
    """Dot source for ``graph``; see ``graphtool.render.render_svg`` for the options."""
    marks = as_marks(marks)
    if focus is not None:
        selected = _neighbourhood(graph, focus, radius)
        focus = graph.node(focus).name
    else:
        selected = set(graph.names())
    folded = _foldable(graph, selected, marks)
    visible = [n for n in graph.names() if n in selected and n not in folded]
    tree = build_tree(visible)
    if collapse_depth is None:
        depth = choose_depth(tree, max_nodes_expanded) if focus is None else 0
    elif collapse_depth < 0:
        raise GraphtoolError(f"collapse depth must be 0 or more, not {collapse_depth}")
    else:
        depth = collapse_depth
    boxes = {s: _Box(s, f"scope:{s.path}") for s in boxes_at(tree, depth)}
    represent = {n: n for n in visible}
    for box in boxes.values():
        for name in box.scope.nodes():
            represent[name] = box.dot_id

    boundary = set()
    if focus is not None:
        for name in selected:
            node = graph.node(name)
            around = [parse_ref(i).node for i in node.inputs] + [c.name for c in node.consumers]
            if any(o not in selected for o in around):
                boundary.add(name)

    facts = tensor_facts(graph, shapes)
    labeller = _Labeller(graph, folded, facts, marks)
    sizes = count_by_scope(selected) if boxes else {}
    emitter = _Emitter(graph, graph_id, labeller, marks, focus, boundary, sizes)
    head = [
        f"digraph {quoted(graph_id)} {{",
        f"  id={quoted(graph_id)}; rankdir=TB; nodesep=0.2; ranksep=0.3; "
        f"fontname={quoted(style.FONT)}; bgcolor=\"white\";",
        f"  node [shape=box style=\"rounded,filled\" fontname={quoted(style.FONT)} "
        f"fontsize=10 margin=\"0.08,0.03\" height=0.3 color=\"#666666\"];",
        f"  edge [fontname={quoted(style.FONT)} fontsize=8 color={quoted(style.EDGE_COLOUR)} "
        f"fontcolor=\"#444444\" arrowsize=0.6];",
    ]
    if title:
        head.append(f"  label=<<B>{html(title)}</B>>; labelloc=t; fontsize=14;")
    emitter.lines = head
    emitter.scope(tree, boxes, "  ", None)
    emitter.lines += _edges(graph, visible, represent, facts)
    emitter.lines += _anchors(graph, visible, folded, represent)
    if legend:
        emitter.lines.append(_legend(graph_id, marks))
    emitter.lines.append("}")
    shown = len(set(represent.values()))
    return DotGraph("\n".join(emitter.lines) + "\n", len(selected), shown, depth)


def _edges(graph, visible, represent, facts) -> list[str]:
    """Edges between drawn items; parallel edges between the same items become one."""
    grouped: dict[tuple[str, str, bool], list[str]] = defaultdict(list)
    for name in visible:
        dst = represent[name]
        node = graph.node(name)
        skip_control = len(node.control_inputs) > MAX_CONTROL_EDGES
        for text in node.inputs:
            r = parse_ref(text)
            src = represent.get(r.node)
            if src is None or src == dst or (r.control and skip_control):
                continue
            tensors = grouped[(src, dst, r.control)]
            if text not in tensors:
                tensors.append(text)
    lines = []
    for (src, dst, control), tensors in grouped.items():
        if control:
            attrs = _attrs(style="dashed", color=style.CONTROL_EDGE_COLOUR, arrowhead="odot",
                           tooltip=f"control: {src} -> {dst}", class_="control")
        else:
            if len(tensors) == 1:
                r = parse_ref(tensors[0])
                label = _tensor_label(facts.get((r.node, r.port)))
                if r.port:
                    label = f":{r.port} {label}".strip()
            else:
                label = f"{len(tensors)} tensors"
            tips = []
            for t in tensors[:MAX_TOOLTIP_NAMES]:
                r = parse_ref(t)
                known = facts.get((r.node, r.port))
                tips.append(t + (f"  {_facts_text(known)}" if known else ""))
            # xlabel: placed after layout; a real label makes dot 5-8x slower on big graphs.
            attrs = _attrs(xlabel=label or None, tooltip=_clip_tooltip(tips),
                           penwidth=str(min(1 + 0.3 * (len(tensors) - 1), 4)))
        lines.append(f"  {quoted(src)} -> {quoted(dst)} {attrs}")
    return lines


def _constant_derived(graph, visible: list[str], folded) -> set[str]:
    """Drawn nodes computed from constants alone (e.g. batch-norm scale = gamma * rsqrt(var))."""
    drawn = set(visible)
    state: dict[str, bool] = {}
    for start in visible:
        stack = [start]
        while stack:
            name = stack[-1]
            if name in state:
                stack.pop()
                continue
            sources = [parse_ref(i).node for i in graph.node(name).data_inputs]
            pending = [s for s in sources if s in drawn and s not in state]
            if pending:
                stack.extend(pending)
                if len(stack) > len(drawn) + 1:   # a cycle: give up on this start
                    state[start] = False
                continue
            stack.pop()
            state[name] = bool(sources) and all(s in folded or state.get(s, False)
                                                for s in sources)
    return {name for name, derived in state.items() if derived}


def _anchors(graph, visible, folded, represent) -> list[str]:
    """Invisible edges that keep constant-only chains beside the data they join.

    Left alone, dot ranks a chain like ``add(var, eps) -> Rsqrt -> Mul`` from the top
    of the graph, so every batch-norm cluster spans the ranks of the layers above it
    and the clusters drift sideways in a long staircase.  An edge from the data
    producer the chain joins to the chain's first node starts the chain below it.
    """
    derived = _constant_derived(graph, visible, folded)
    lines = []
    for root in derived:
        node = graph.node(root)
        if any(parse_ref(i).node in derived for i in node.data_inputs):
            continue
        seen, queue, anchor = {root}, [root], None
        while queue and anchor is None:
            for consumer in graph.consumers(queue.pop(0)):
                name = consumer.name
                if name in seen or name not in represent:
                    continue
                seen.add(name)
                if name in derived:
                    queue.append(name)
                    continue
                anchor = next((parse_ref(i).node for i in consumer.data_inputs
                               if parse_ref(i).node in represent
                               and parse_ref(i).node not in derived
                               and parse_ref(i).node not in folded), None)
                if anchor is not None:
                    break
        if anchor is not None and represent[anchor] != represent[root]:
            lines.append(f"  {quoted(represent[anchor])} -> {quoted(represent[root])} "
                         "[style=invis]")
    return lines


def _legend(graph_id: str, marks: dict[str, Mark]) -> str:
    """A small table explaining the mark colours (with counts for this graph)."""
    counts = Counter(m.kind for m in marks.values())
    rows = "".join(
        f'<TR><TD BGCOLOR="{m.fill}" BORDER="2" COLOR="{m.colour}" WIDTH="18"> </TD>'
        f'<TD ALIGN="LEFT">{html(m.legend)}: {counts.get(kind, 0)}</TD></TR>'
        for kind, m in style.MARKS.items())
    table = (f'<<TABLE BORDER="1" COLOR="#999999" CELLBORDER="0" CELLSPACING="3" '
             f'BGCOLOR="white"><TR><TD COLSPAN="2"><B>legend</B></TD></TR>{rows}</TABLE>>')
    return (f"  {quoted(graph_id + ':legend')} [shape=plaintext style=\"\" label={table} "
            f"class=\"legend\" tooltip=\"diff marks\"];")

