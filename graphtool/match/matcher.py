"""Matching a compiled pattern at one candidate root node, with backtracking.

The search walks the pattern from its root towards its inputs.  Commutative
nodes try every order of their interchangeable inputs, variadic inputs try
every split, and an already bound capture must meet the same tensor again.
Every full structural match is then checked against the rule's ``where:``
conditions and for containment (an inner node read from outside the match
blocks it unless the pattern node is ``shared``); a failure there resumes the
search with the next alternative.

A ``Tracer`` passed to ``Matcher.match`` records the deepest partial match and
why it failed, which is what ``graphtool explain`` prints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import permutations, product

from graphtool.graph import data_only, split_ref
from graphtool.lang.computed import Scope
from graphtool.match.pattern import Pattern, PatternNode

DEFAULT_MAX_STEPS = 20000
# Patterns with at most this many combinations of commutative input orders are matched
# by plain walks, one per combination (far below the step limit, so it never applies).
_MAX_ORDERINGS = 16


def _canonical(tensor: str) -> str:
    return tensor[:-2] if tensor.endswith(":0") else tensor


@dataclass(slots=True)
class Match:
    """A successful match: graph names bound to each capture."""
    root: str
    nodes: dict            # pattern node name -> graph node name
    tensors: dict          # leaf capture -> tensor ('a' or 'a:1')
    rests: dict            # list capture -> [tensor, ...]
    _scope: object = field(default=None, repr=False, compare=False)
    _matched: list = field(default=None, repr=False, compare=False)

    def tensor(self, capture: str) -> str:
        """The tensor bound to a single capture."""
        if capture in self.nodes:
            return self.nodes[capture]
        return self.tensors[capture]

    @property
    def matched(self) -> list[str]:
        """Graph nodes matched by pattern nodes (not leaf captures), without repeats."""
        if self._matched is None:
            self._matched = list(dict.fromkeys(self.nodes.values()))
        return self._matched

    def scope(self, graph, lets):
        """Captures and lazily computed lets, shared by conditions and the replacement."""
        if self._scope is None:
            self._scope = Scope(graph, self.bindings(), lets)
        return self._scope

    def bindings(self) -> dict:
        out = dict(self.nodes)
        out.update(self.tensors)
        out.update(self.rests)
        return out


@dataclass
class Tracer:
    """Keeps the best partial match seen for one root and the reason it failed."""
    bound: int = -1
    bindings: dict = field(default_factory=dict)
    at: str | None = None
    reason: str | None = None

    def fail(self, bindings: dict, at: str | None, reason: str, *, final: bool = False) -> None:
        """Record a failure if it got further than any before (or if it ends the search)."""
        if final or len(bindings) > self.bound:
            self.bound = len(bindings)
            self.bindings = {k: (list(v) if isinstance(v, list) else v)
                             for k, v in bindings.items()}
            self.at = at
            self.reason = reason


class _Exhausted(Exception):
    pass


def _root_screen(pattern: Pattern, structural: bool):
    """A quick necessary test for a candidate root, or None when the pattern allows none.

    Most candidates fail at the root's own tensor or inputs: a constant of the wrong
    kind (dtype, shape, storage; its values are left to the search, which decodes
    them only if it gets there), the wrong number of inputs, producers of the wrong
    op or constants of the wrong kind.  Checking that with plain loops before the
    backtracking search starts skips the search for them; a candidate that passes
    is searched in full, so the screen never changes what matches.
    """
    root = pattern.nodes[pattern.root]
    own = None if structural else root.const
    if root.reads_anything or root.variadic:
        return None if own is None else lambda graph, node: own.plausible(node.proto)
    arity = len(root.inputs)
    swappable = set(root.commutative or ())
    fixed, anywhere = [], []
    for position, ref in enumerate(root.inputs):
        pn = pattern.nodes.get(ref.name)
        const = None if pn is None or structural else pn.const
        if pn is None or pn.ops is None and const is None:
            continue
        if position in swappable:
            anywhere.append((pn.ops, const))
        else:
            fixed.append((position, pn.ops, const))
    if own is None and not fixed and not anywhere:
        return None  # the arity alone: the search itself checks that early enough
    swappable = sorted(swappable)

    def screen(graph, node) -> bool:
        msg = node.proto
        if own is not None and not own.plausible(msg):
            return False
        data = data_only(msg.input[:])
        if len(data) != arity:
            return False
        for position, ops, const in fixed:
            producer = graph.get(data[position])
            if producer is None or ops is not None and producer.op not in ops or (
                    const is not None and not const.plausible(producer.proto)):
                return False
        if anywhere:
            producers = [graph.get(data[position]) for position in swappable]
            for ops, const in anywhere:  # loops, not any(): a generator costs more than the test
                for producer in producers:
                    if producer is not None and (ops is None or producer.op in ops) and (
                            const is None or const.plausible(producer.proto)):
                        break
                else:
                    return False
        return True
    return screen


class Matcher:
    """Matches one pattern (plus conditions and containment) at candidate roots."""

    def __init__(self, pattern: Pattern, *, conditions=(), control: str = "keep",
                 max_steps: int = DEFAULT_MAX_STEPS, describe_condition=str,
                 structural: bool = False, lets=None):
        """``structural=True`` checks ops and wiring only (no attrs, values, where, containment)."""
        self.pattern = pattern
        self.structural = structural
        self.lets = lets or {}
        self.conditions = list(conditions)
        self.control = control
        self.max_steps = max_steps
        self.describe_condition = describe_condition
        self._nodes = pattern.nodes
        self._inner = [n for n in pattern.order[1:] if not pattern.nodes[n].shared]
        self._screen = _root_screen(pattern, structural)
        # Without variadic nodes (a lone '...' binds nothing: any inputs do), once each
        # commutative node's input order is chosen every pattern input meets exactly one
        # tensor: a plain walk per combination of orders (in the order the backtracking
        # search tries them) replaces the generators.
        nodes = pattern.nodes
        orders = [(n, list(permutations(nodes[n].commutative)))
                  for n in pattern.order if nodes[n].commutative]
        self._fixed = not any(n.variadic and not n.reads_anything for n in nodes.values()) \
            and math.prod(len(perms) for _, perms in orders) <= _MAX_ORDERINGS

        def arranged(name, order) -> list[int]:
            """The data input each pattern input of ``name`` reads, for one input order."""
            positions = list(range(len(nodes[name].inputs)))
            for slot, source in zip(nodes[name].commutative, order):
                positions[slot] = source
            return positions
        self._choices = [{name: arranged(name, order) for (name, _), order in zip(orders, chosen)}
                         for chosen in product(*[perms for _, perms in orders])] \
            if self._fixed else []
        # What the walk checks at each pattern node: ops, attr checks, const check, inputs
        # as (capture, port, defined node's name or None); None where any inputs do.
        self._plan = {
            name: (pn.ops, () if structural else pn.attrs, None if structural else pn.const,
                   None if pn.reads_anything else
                   [(r.name, r.port, r.name if r.name in nodes else None) for r in pn.inputs])
            for name, pn in nodes.items()}
        self._forbid = control == "forbid"

    # -- entry point --------------------------------------------------------
    def match(self, graph, node, *, outputs=frozenset(), tracer: Tracer | None = None):
        """The first Match rooted at ``node``, or None."""
        if tracer is None and self._screen is not None and not self._screen(graph, node):
            return None
        if tracer is None and self._fixed:
            return self._match_fixed(graph, node, outputs)
        self.graph = graph
        self.bind: dict = {}
        self.tracer = tracer
        self.steps = 0
        root = self._nodes[self.pattern.root]
        try:
            for _ in self._node(root, node):
                found = self._snapshot(node.name)
                if self.structural:
                    return found
                failed = self._failed(found.scope(self.graph, self.lets)) \
                    if self.conditions else None
                if failed is not None:
                    self._fail(None, lambda: f"where: {self.describe_condition(failed)} is false")
                    continue
                reason = self._containment(found, outputs)
                if reason is None:
                    return found
                self._fail(reason[0], lambda: reason[1])
        except _Exhausted:
            if tracer is not None:
                tracer.fail(self.bind, None, f"gave up after {self.max_steps} search steps (too "
                            "many commutative/variadic alternatives)", final=True)
        return None

    def _match_fixed(self, graph, node, outputs):
        """``match`` by plain walks: one per combination of commutative input orders, in
        the search's order; a combination either binds everything or fails."""
        self.graph = graph
        root = self.pattern.root
        for chosen in self._choices:
            self.bind = bind = {}
            if not self._walk_node(root, node, bind, chosen):
                continue
            scope = None
            if self.conditions and not self.structural:
                # The captures straight from the bindings, each made when first read: most
                # candidates fail here, and the Match is built only for those that pass
                # (it shares the scope).
                scope = Scope(graph, bind, self.lets)
                if self._failed(scope) is not None:
                    continue
            found = self._snapshot(node.name)
            found._scope = scope
            if self.structural or not self._inner or self._containment(found, outputs) is None:
                return found
        return None

    def _walk_node(self, name: str, node, bind: dict, chosen: dict) -> bool:
        """The checks of ``_node`` (same order, same bindings) at pattern node ``name`` as a
        plain recursive walk, a commutative node's inputs in the order ``chosen`` gives it."""
        msg = node.proto
        ops, checks, const, refs = self._plan[name]
        if ops is not None and msg.op not in ops:
            return False
        if self._forbid and any(i.startswith("^") for i in msg.input[:]):
            return False
        for check in checks:
            if check.test(node) is not None:
                return False
        if const is not None and const.failure(msg) is not None:
            return False
        bind[name] = msg.name
        if refs is None:
            return True
        data = data_only(msg.input[:])
        if len(data) != len(refs):
            return False
        positions = chosen.get(name)
        if positions is not None:
            data = [data[p] for p in positions]
        for (capture, want, defined), tensor in zip(refs, data):
            if capture is None:
                continue
            if ":" in tensor:  # most inputs are plain names: output 0
                producer, port = split_ref(tensor)
                if want is not None and port != want:
                    return False
                tensor = _canonical(tensor)
            else:
                producer, port = tensor, 0
                if want:
                    return False
            bound = bind.get(capture)
            if bound is not None:
                if defined is not None:
                    if producer != bound or port != (want or 0):
                        return False
                elif bound != tensor:
                    return False
                continue
            if defined is not None:
                if want is None and port != 0:
                    return False
                producer_node = self.graph.get(producer)
                if producer_node is None or not self._walk_node(defined, producer_node, bind,
                                                                chosen):
                    return False
                continue
            bind[capture] = tensor
        return True

    def _fail(self, at, reason) -> None:
        """Tell the tracer why the search failed at ``at``; ``reason()`` gives the message,
        formatted only when explaining (a plain rewrite fails at most candidates)."""
        if self.tracer is not None:
            self.tracer.fail(self.bind, at, reason())

    def _snapshot(self, root: str) -> Match:
        nodes, tensors, rests = {}, {}, {}
        for name, value in self.bind.items():
            if name in self._nodes:
                nodes[name] = value
            elif isinstance(value, list):
                rests[name] = list(value)
            else:
                tensors[name] = value
        return Match(root, nodes, tensors, rests)

    # -- checks after a structural match ------------------------------------
    def _failed(self, env):
        """The first condition that does not hold in ``env`` (the match's scope), or None;
        only ``explain`` describes it."""
        for condition in self.conditions:
            if not condition.holds(env):
                return condition
        return None

    def _containment(self, found: Match, outputs):
        matched = set(found.nodes.values())
        graph = self.graph
        for pname in self._inner:
            gname = found.nodes[pname]
            if gname in outputs:
                return pname, f"node {gname!r} ({pname}) is a graph output; mark it shared: true"
            for reader in graph.readers(gname):  # names: most readers are in the match
                if reader in matched:
                    continue
                consumer = graph.node(reader)
                data_use = any(split_ref(i)[0] == gname for i in consumer.data_inputs)
                if not data_use and self.control != "forbid":
                    continue  # the replacement re-points (keep) or drops (drop) control edges
                edge = "" if data_use else " (control edge)"
                return pname, (f"node {gname!r} ({pname}) is also read by {consumer.name!r}"
                               f"{edge} outside the match; mark {pname} shared: true to allow it")
        return None

    # -- structural search ----------------------------------------------------
    def _tick(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise _Exhausted

    def _node(self, pn: PatternNode, node):
        self._tick()
        msg = node.proto
        if pn.ops is not None and msg.op not in pn.ops:
            self._fail(pn.name,
                       lambda: f"node {node.name!r} is {msg.op}, not {pn.describe_op()}")
            return
        if self.control == "forbid" and any(i.startswith("^") for i in msg.input[:]):
            self._fail(pn.name, lambda: f"node {node.name!r} has control inputs "
                                        "(control_inputs: forbid)")
            return
        for check in () if self.structural else pn.attrs:
            reason = check.test(node)
            if reason is not None:
                self._fail(pn.name, lambda: f"node {node.name!r} ({msg.op}): {reason}")
                return
        if pn.const is not None and not self.structural:
            reason = pn.const.test(node)
            if reason is not None:
                self._fail(pn.name, lambda: f"node {node.name!r} ({msg.op}) {reason}")
                return
        self.bind[pn.name] = node.name
        if pn.inputs is None:
            yield
        else:
            yield from self._inputs(pn, node)
        del self.bind[pn.name]

    def _tensor(self, ref, tensor: str):
        self._tick()
        name = ref.name
        if name is None:
            yield
            return
        producer, port = split_ref(tensor)
        if ref.port is not None and port != ref.port:
            self._fail(name, lambda: f"input {tensor!r} is output {port}, the pattern wants "
                                     f":{ref.port}")
            return
        bound = self.bind.get(name)
        defined = self._nodes.get(name)
        if bound is not None:
            same = (producer == bound and port == (ref.port or 0)) if defined is not None \
                else bound == _canonical(tensor)
            if same:
                yield
            else:
                self._fail(name, lambda: f"{name!r} is already {bound!r}, but this input is "
                                         f"{tensor!r}")
            return
        if defined is not None:
            if ref.port is None and port != 0:
                self._fail(name, lambda: f"input {tensor!r} is output {port} of {producer!r}; "
                                         f"write {name}:{port} to match it")
                return
            node = self.graph.get(producer)
            if node is None:
                self._fail(name, lambda: f"input {tensor!r} names no node")
                return
            yield from self._node(defined, node)
            return
        self.bind[name] = _canonical(tensor)
        yield
        del self.bind[name]

    def _inputs(self, pn: PatternNode, node):
        data = node.data_inputs
        specs = pn.inputs
        if not pn.variadic:
            if len(data) != len(specs):
                self._fail(pn.name, lambda: f"node {node.name!r} has {len(data)} data inputs, "
                                            f"the pattern lists {len(specs)}")
                return
            if pn.commutative is None:
                yield from self._seq(list(zip(specs, data)), 0)
                return
            positions = pn.commutative
            seen = set()
            for order in permutations(positions):
                chosen = tuple(data[p] for p in order)
                if chosen in seen:
                    continue
                seen.add(chosen)
                pairs = list(zip(specs, data))
                for slot, source in zip(positions, order):
                    pairs[slot] = (specs[slot], data[source])
                yield from self._seq(pairs, 0)
            return
        fixed = [r for r in specs if not r.variadic]
        if len(data) < len(fixed):
            self._fail(pn.name, lambda: f"node {node.name!r} has {len(data)} data inputs, "
                                        f"the pattern needs at least {len(fixed)}")
            return
        if pn.commutative is None:
            yield from self._glob(specs, data, 0, 0)
            return
        rest_ref = next(r for r in specs if r.variadic)
        seen = set()
        for picks in permutations(range(len(data)), len(fixed)):
            chosen = tuple(data[p] for p in picks)
            if chosen in seen:
                continue
            seen.add(chosen)
            taken = set(picks)
            if rest_ref.name is not None:
                self.bind[rest_ref.name] = [_canonical(data[i]) for i in range(len(data))
                                            if i not in taken]
            yield from self._seq(list(zip(fixed, chosen)), 0)
            if rest_ref.name is not None:
                del self.bind[rest_ref.name]

    def _seq(self, pairs, i: int):
        if i == len(pairs):
            yield
            return
        ref, tensor = pairs[i]
        for _ in self._tensor(ref, tensor):
            yield from self._seq(pairs, i + 1)

    def _glob(self, specs, data, si: int, di: int):
        """Match ``specs[si:]`` against ``data[di:]``; variadic refs take runs of any length."""
        if si == len(specs):
            if di == len(data):
                yield
            return
        ref = specs[si]
        if not ref.variadic:
            if di >= len(data):
                return
            for _ in self._tensor(ref, data[di]):
                yield from self._glob(specs, data, si + 1, di + 1)
            return
        later = specs[si + 1:]
        needed = sum(not r.variadic for r in later)
        most = len(data) - di - needed
        lengths = range(most, most + 1) if not any(r.variadic for r in later) else range(most + 1)
        for n in lengths:
            if n < 0:
                return
            if ref.name is not None:
                self.bind[ref.name] = [_canonical(t) for t in data[di:di + n]]
            yield from self._glob(specs, data, si + 1, di + n)
            if ref.name is not None:
                del self.bind[ref.name]
