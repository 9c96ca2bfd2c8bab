"""Recorded graph edits: what one rule firing created, removed and changed.

Every change the driver makes goes through an ``Edit``, for three reasons:
the rewrite log needs the names, the op index must follow op changes without
rescanning the graph, and the driver re-examines only the neighbourhood of
what changed.  Python helpers used as ``replace: {call: ...}`` get the same
object, so their edits are logged and indexed too.
"""
from __future__ import annotations


CONST_OP = "Const"  # the GraphDef constant op, as Graph.add_const writes it


class OpIndex:
    """Node names by op type, with a serial number per node for a stable order.

    Built once per rewrite, it follows the graph as its observer (``Graph.observe``):
    a million-node graph is not rescanned at every stage.  ``settle()`` at the start
    of each stage's rules makes it order candidates as a fresh index of the graph
    would (serials in graph order, each op's names in that order).  Serials of
    removed names stay (a dead name is never a candidate); within a stage a name
    that comes back keeps its serial, as a fresh index would.
    """

    def __init__(self, graph):
        self.by_op: dict[str, dict[str, None]] = {}
        by_op = self.by_op
        names = graph.names()
        for name, op in zip(names, graph.ops()):  # _append() without its order test: every node, in order
            try:
                by_op[op][name] = None
            except KeyError:  # the first node of its op
                by_op[op] = {name: None}
        self.serial: dict[str, int] = dict(zip(names, range(len(names))))  # no comprehension frame
        self._next = len(names)  # the serial of the next new name
        self._serial_in_order = True  # iterating serial goes in serial order (until a rename)
        self._gone: set[str] = set()  # names removed since the last settle()
        self._unsorted: set[str] = set()  # ops whose names are out of serial order
        self._stale = False  # a name came back within a stage, or the graph was reordered

    # -- following the graph (Graph.observe) -------------------------------------------
    def inserted(self, name: str, op: str) -> None:
        if name in self._gone:  # back within the stage: it keeps its serial until settle()
            self._stale = True
        else:  # new, or dead since an earlier stage: last, as in a fresh index
            if name in self.serial:
                self._serial_in_order = False
            self.serial[name] = self._next
            self._next += 1
        self._append(name, op)

    def removed(self, name: str, op: str) -> None:
        self._drop(name, op)
        self._gone.add(name)

    def retyped(self, name: str, old_op: str, new_op: str) -> None:
        self._drop(name, old_op)
        self._append(name, new_op)

    def renamed(self, old: str, new: str, op: str) -> None:
        """The node keeps its place in the graph under its new name, and its serial."""
        self.removed(old, op)
        self._gone.discard(new)  # a removed node's name may be taken over this way
        self.serial[new] = self.serial.get(old, self._next)
        self._serial_in_order = False
        self._append(new, op)

    def reordered(self) -> None:
        self._stale = True

    def _drop(self, name: str, op: str) -> None:
        group = self.by_op.get(op)
        if group is not None:
            group.pop(name, None)

    def _append(self, name: str, op: str) -> None:
        group = self.by_op.get(op)
        if group is None:
            self.by_op[op] = {name: None}
            return
        if group and self.serial[name] < self.serial[next(reversed(group))]:
            self._unsorted.add(op)
        group[name] = None

    def settle(self, graph) -> "OpIndex":
        """This index, ordering candidates as a fresh one of ``graph`` would (or a fresh
        one, when a name came back within a stage or the graph was reordered)."""
        if self._stale:
            return OpIndex(graph)
        self._gone = set()
        serial = self.serial
        for op in self._unsorted:
            self.by_op[op] = dict.fromkeys(sorted(self.by_op[op], key=serial.__getitem__))
        self._unsorted.clear()
        return self

    def ordered(self, names: set[str]) -> list[str]:
        """``names`` (those ever indexed) in stable serial order."""
        serial = self.serial
        if self._serial_in_order and len(names) * 4 > len(serial):  # a filter beats a sort
            return [n for n in serial if n in names]
        return sorted((n for n in names if n in serial), key=serial.__getitem__)

    def offers_each(self, pattern_nodes) -> bool:
        """Whether every pattern node that names ops has a node of one of them to bind."""
        by_op = self.by_op
        for node in pattern_nodes:
            if node.ops is not None and not any(by_op.get(op) for op in node.ops):
                return False
        return True

    def candidates(self, ops, within: set[str] | None = None) -> list[str]:
        """Names of nodes with one of ``ops`` (None: any), in serial order; only those in
        ``within`` (a set of names) when given.  The set is cut down to the candidates
        before anything is ordered: a later pass's neighbourhood can be most of a large
        graph, and ordering all of it would cost more than the few candidates it holds."""
        if within is not None:
            if ops is None:
                return self.ordered(within)
            groups = [self.by_op[o] for o in ops if o in self.by_op]
            if not groups:
                return []
            found = within.intersection(groups[0])
            for group in groups[1:]:
                found.update(within.intersection(group))
            return self.ordered(found)
        if ops is None:
            names = [n for group in self.by_op.values() for n in group]
        elif len(ops) == 1:
            return list(self.by_op.get(next(iter(ops)), ()))
        else:
            names = [n for o in ops for n in self.by_op.get(o, ())]
        return sorted(names, key=self.serial.__getitem__)


class Edit:
    """The edits of one rule firing (or one action run) on ``graph``."""

    def __init__(self, graph, outputs: set | None = None):
        self.graph = graph
        self.outputs = outputs if outputs is not None else set()
        self.created: dict[str, None] = {}
        self.removed: dict[str, None] = {}
        self.changed: dict[str, None] = {}
        self.renamed: dict[str, str] = {}
        self.seeds: set[str] = set()   # surviving producers of removed nodes

    # -- creating -----------------------------------------------------------
    def add_node(self, op: str, name: str, inputs=(), attrs: dict | None = None, *, base=None):
        """Add a node named ``name`` (made unique); ``attrs`` maps keys to AttrValues (None
        removes the key); ``base``, a NodeDef, gives the attrs to start from."""
        name = self.graph.fresh_name(name)
        node = self.graph.add_node(op, name, inputs)
        if attrs or base is not None:
            _set_attrs(node.proto, attrs or {}, base)
        self.created[name] = None
        return node

    def add_const(self, array, name: str, dtype=None):
        name = self.graph.fresh_name(name)
        node = self.graph.add_const(array, name, dtype)
        self.created[name] = None
        return node

    # -- changing -----------------------------------------------------------
    def rebuild(self, node, op: str, inputs, attrs: dict, *, base=None) -> None:
        """Turn ``node`` into a different node in place: it keeps its name and position.
        ``attrs`` and ``base`` as for ``add_node``."""
        old_op = node.op
        msg = node.proto
        msg.attr.clear()
        _set_attrs(msg, attrs, base)
        if op != old_op:
            node.op = op
        node.set_inputs(list(inputs))
        self.mark_changed(node.name)

    def set_inputs(self, node, inputs) -> None:
        node.set_inputs(list(inputs))
        self.mark_changed(node.name)

    def set_op(self, node, op: str) -> None:
        node.op = op
        self.mark_changed(node.name)

    def mark_changed(self, name: str) -> None:
        if name not in self.created:
            self.changed[name] = None

    def replace_uses(self, old: str, new: str, *, single_output: bool = False) -> None:
        """Readers of tensor ``old`` read ``new`` instead (control edges follow);
        ``single_output`` as for ``Graph.rewire``."""
        created, changed = self.created, self.changed
        for node in self.graph.rewire(old, new, single_output=single_output):
            name = node.name
            if name not in created:  # mark_changed inlined: once per rewired reader
                changed[name] = None

    def rename(self, old: str, new: str) -> None:
        self.graph.rename(old, new)
        self.renamed[old] = new
        if old in self.outputs:
            self.outputs.discard(old)
            self.outputs.add(new)

    # -- removing -----------------------------------------------------------
    def remove(self, names) -> None:
        """Remove nodes that nothing outside the set reads."""
        graph = self.graph
        self._remove_nodes([graph.node(n).name for n in names])

    def _remove_nodes(self, names: list[str]) -> None:
        """``remove`` for names that are nodes of the graph (no lookup)."""
        self.seeds.update(self.graph.remove(names))  # by name: Graph.remove's cheapest form
        removed, created, changed = self.removed, self.created, self.changed
        for name in names:
            removed[name] = None
            created.pop(name, None)
            changed.pop(name, None)

    def remove_dead(self, names) -> list[str]:
        """Remove those of ``names`` that nothing outside them reads and that are no graph
        output (a node read only by other dead ones is dead too)."""
        graph, outputs = self.graph, self.outputs
        pending = [n for n in dict.fromkeys(names) if n not in outputs and n in graph]
        if len(pending) == 1:  # the common case: one node (bypassed, or a rebuilt pattern's rest)
            if graph.has_consumers(pending[0]):
                return []
            self._remove_nodes(pending)
            return pending
        # Readers are read once; the walk goes readers first (a match lists producers
        # before readers), so a chain dies in one pass; a pass that leaves none alive
        # needs no second one to confirm it.
        readers = [(name, graph.readers(name)) for name in reversed(pending)]
        dead: set[str] = set()
        while len(dead) < len(readers):
            before = len(dead)
            for name, users in readers:
                if name not in dead and dead.issuperset(users):
                    dead.add(name)
            if len(dead) == before:
                break
        gone = [n for n in pending if n in dead]
        if gone:
            self._remove_nodes(gone)
        return gone

    # -- results ------------------------------------------------------------
    def add_touched(self, names: set) -> None:
        """Add the nodes whose neighbourhood changed - where new matches may appear - to
        ``names``; some may be gone by now (the driver keeps only those in the graph)."""
        names.update(self.created, self.changed, self.renamed.values(), self.seeds)

    def summary(self) -> dict:
        changed = self.changed
        entry = {"created": list(self.created), "removed": list(self.removed),
                 "changed": list(filter(self.graph.__contains__, changed)) if changed else []}
        if self.renamed:
            entry["renamed"] = dict(self.renamed)
        return entry


def _set_attrs(msg, attrs: dict, base) -> None:
    """``base``'s attrs (one merge), then each of ``attrs``: set, or removed when None."""
    if base is not None:
        msg.attr.MergeFrom(base.attr)
    for key, value in attrs.items():
        if value is None:
            if key in msg.attr:
                del msg.attr[key]
        else:
            msg.attr[key].CopyFrom(value)
