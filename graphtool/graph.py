"""The graph model: a GraphDef with an editing API that keeps itself consistent.

GraphDef edges are strings (``name``, ``name:port``, ``^name`` for control).
Code that edits those strings by hand ends up with dangling names, lost ports
and lists mutated while iterated.  Here every edit goes through ``Graph`` and
``Node`` methods that keep a consumer index in sync, iteration always runs over
snapshots, and removed nodes refuse further use.

The protobuf messages stay the storage: a ``Node`` wraps its ``NodeDef``
without copying it, so loading and saving cost little more than protobuf's own
parse and serialize.
"""
from __future__ import annotations

import heapq
import itertools
import re
from collections import Counter
from typing import Iterable, Iterator, NamedTuple

from graphtool import attrs as attr_codec
from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.proto import GraphDef, NodeDef

# Ops that produce no tensors: a node of these kinds is never a graph output.
_NO_OUTPUT_OPS = frozenset({"NoOp", "Assert", "SaveV2", "Save", "Print", "PrintV2"})
# Ops that define graph inputs.
INPUT_OPS = frozenset({"Placeholder"})


class TensorRef(NamedTuple):
    """One endpoint of an edge: ``node`` output ``port``, or a control edge."""
    node: str
    port: int = 0
    control: bool = False

    def __str__(self) -> str:
        if self.control:
            return "^" + self.node
        return self.node if self.port == 0 else f"{self.node}:{self.port}"


_PORT = re.compile(r"^(.*):(\d+)$")


def parse_ref(text: str) -> TensorRef:
    """``'a'``, ``'a:1'``, ``'^a'`` -> TensorRef.  ``'a:0'`` and ``'a'`` are the same tensor."""
    if text.startswith("^"):
        return TensorRef(text[1:], 0, True)
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdecimal() and tail.isascii():
        return TensorRef(head, int(tail), False)
    return TensorRef(text, 0, False)


def ref(node, port: int = 0) -> str:
    """The canonical input string for output ``port`` of ``node`` (a Node or a name)."""
    name = node.name if isinstance(node, Node) else node
    return str(TensorRef(name, port))


def split_ref(text: str) -> tuple[str, int]:
    """(producer, port) of a data input string: ``parse_ref`` without the tuple, for hot loops."""
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdecimal() and tail.isascii():
        return head, int(tail)
    return text, 0


def _tensor(text: str) -> tuple[str, int]:
    """``parse_ref(text)[:2]`` without building the tuple's class."""
    if text.startswith("^"):
        return text[1:], 0
    if ":" not in text:  # a plain node name (a bypass, most rewires): nothing to parse
        return text, 0
    return split_ref(text)


def producer_name(text: str) -> str:
    """The node name of an input string (``parse_ref(text).node``, without the tuple)."""
    if text.startswith("^"):
        return text[1:]
    head, sep, tail = text.rpartition(":")
    return head if sep and tail.isdecimal() and tail.isascii() else text


def _producers(inputs: list[str]) -> list[str]:
    """The producing node of each of a node's input strings, in input order; plain names
    (most inputs) are taken as they are, without parsing.  Used by every whole-graph
    loop over edges, so it is one call per node rather than one per input."""
    return [producer_name(text) if ":" in text or text.startswith("^") else text
            for text in inputs]


class Node:
    """A view of one NodeDef inside a Graph.  Inputs change only through this API."""

    __slots__ = ("_graph", "_msg", "_alive")

    def __init__(self, graph: "Graph", msg):
        self._graph = graph
        self._msg = msg
        self._alive = True

    def __repr__(self) -> str:
        state = "" if self._alive else " (removed)"
        return f"<Node {self._msg.name!r} op={self._msg.op}{state}>"

    def _check(self):
        if not self._alive:
            raise GraphtoolError(f"node {self._msg.name!r} was removed from the graph")
        return self._msg

    # -- identity -----------------------------------------------------------
    @property
    def name(self) -> str:
        return self._msg.name

    @property
    def op(self) -> str:
        return self._msg.op

    @op.setter
    def op(self, value: str) -> None:
        msg = self._check()
        old, msg.op = msg.op, value
        observer = self._graph._observer
        if observer is not None and old != value:
            observer.retyped(msg.name, old, value)

    @property
    def device(self) -> str:
        return self._msg.device

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def graph(self) -> "Graph":
        return self._graph

    @property
    def proto(self):
        """The underlying NodeDef.  Edit attrs freely; change inputs via ``set_inputs``."""
        if self._alive:  # _check() inlined: the hottest property of the rewrite
            return self._msg
        return self._check()

    def output(self, port: int = 0) -> str:
        """Input string that refers to this node's output ``port``."""
        return ref(self.name, port)

    # -- inputs -------------------------------------------------------------
    @property
    def inputs(self) -> tuple[str, ...]:
        """All input strings, data first then control (``^name``), as stored."""
        return tuple(self._msg.input)

    @property
    def data_inputs(self) -> tuple[str, ...]:
        return tuple(i for i in self._msg.input[:] if not i.startswith("^"))

    @property
    def control_inputs(self) -> tuple[str, ...]:
        """Names of the nodes this one waits for (without the ``^``)."""
        return tuple(i[1:] for i in self._msg.input[:] if i.startswith("^"))

    def input_node(self, index: int) -> "Node":
        """The node producing data input ``index``."""
        return self._graph.node(producer_name(self.data_inputs[index]))

    def input_nodes(self) -> list["Node"]:
        return [self._graph.node(producer_name(i)) for i in self.data_inputs]

    def set_inputs(self, inputs: Iterable[str]) -> None:
        """Replace all inputs; control inputs are moved after data inputs as TF requires."""
        self._graph._set_inputs(self, [str(i) for i in inputs])

    def set_input(self, index: int, value: str) -> None:
        """Replace data input ``index``."""
        data = list(self.data_inputs)
        data[index] = str(value)
        self.set_inputs(data + ["^" + c for c in self.control_inputs])

    def add_control_input(self, node) -> None:
        name = node.name if isinstance(node, Node) else node
        if name not in self.control_inputs:
            self.set_inputs(list(self.inputs) + ["^" + name])

    def remove_control_inputs(self) -> None:
        self.set_inputs(self.data_inputs)

    # -- outputs ------------------------------------------------------------
    @property
    def consumers(self) -> list["Node"]:
        """Nodes that take any output of this node, data or control (a snapshot)."""
        return self._graph.consumers(self.name)

    # -- attrs --------------------------------------------------------------
    def attr(self, key: str, default=attr_codec.KINDS):
        """Decoded value of attr ``key``; ``default`` when absent (error if none given)."""
        msg = self._check()
        if key in msg.attr:
            return attr_codec.decode(msg.attr[key])
        if default is attr_codec.KINDS:
            raise GraphtoolError(
                f"node {self.name!r} ({self.op}) has no attr {key!r}"
                + did_you_mean(key, msg.attr.keys()))
        return default

    def has_attr(self, key: str) -> bool:
        return key in self._msg.attr

    @property
    def attrs(self) -> dict:
        """All attrs decoded, sorted by key (a snapshot)."""
        return {k: attr_codec.decode(self._msg.attr[k]) for k in sorted(self._msg.attr)}

    def set_attr(self, key: str, value, kind: str | None = None) -> None:
        """Set attr ``key`` from a Python value (see ``graphtool.attrs.encode``)."""
        self._check().attr[key].CopyFrom(attr_codec.encode(value, kind))

    def remove_attr(self, key: str) -> None:
        msg = self._check()
        if key in msg.attr:
            del msg.attr[key]

    # -- constants ----------------------------------------------------------
    @property
    def tensor(self):
        """The value of a Const node's ``value`` attr."""
        msg = self._check()
        if "value" not in msg.attr or msg.attr["value"].WhichOneof("value") != "tensor":
            raise GraphtoolError(f"node {self.name!r} ({self.op}) holds no constant tensor")
        from graphtool.tensors import to_array
        return to_array(msg.attr["value"].tensor)

    def set_tensor(self, array, dtype=None) -> None:
        """Store ``array`` as this node's ``value`` (tensor_content) and ``dtype`` attrs."""
        from graphtool.tensors import write_array
        msg = self._check()
        tensor = msg.attr["value"].tensor
        tensor.Clear()
        msg.attr["dtype"].type = int(write_array(tensor, array, dtype))  # in place: no copy


class Graph:
    """A TensorFlow graph that can be edited safely and saved losslessly.

    Build one with ``graphtool.load(path)`` or ``Graph(graph_def)``.
    """

    def __init__(self, graph_def=None, *, source: str | None = None):
        if graph_def is None:
            graph_def = GraphDef()
        self._gd = graph_def
        self.source = source
        self._nodes: dict[str, Node] = {}
        self._consumers: dict[str, dict[str, int]] = {}  # producer -> reader -> edge count
        self._order_changed = False
        self._outputs: list[str] | None = None
        self._observer = None  # see observe()
        # Nodes with control inputs, so that dropping them all does not read every node.
        self._controlled: dict[str, None] = {}
        # Proven by the last topological sort and no edge added since: no cycle search.
        self._acyclic = False
        duplicates = []
        nodes, link, controlled = self._nodes, self._link, self._controlled
        for msg in graph_def.node:
            name = msg.name
            if name in nodes:
                duplicates.append(name)
                continue
            nodes[name] = Node(self, msg)
            inputs = msg.input[:]
            if inputs:  # sources (a third of most graphs) have no edges
                link(name, inputs)
                if _has_control(inputs):
                    controlled[name] = None
        if duplicates:
            raise GraphtoolError(
                f"duplicate node names {sorted(set(duplicates))[:5]}: a GraphDef needs unique "
                "names; regenerate the graph", path=source)

    # -- whole-graph access -------------------------------------------------
    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name) -> bool:
        if isinstance(name, str):
            return name in self._nodes
        if isinstance(name, Node):
            return name._alive and name._graph is self
        return name in self._nodes

    def __iter__(self) -> Iterator[Node]:
        """Iterates over a snapshot, so the graph may be edited inside the loop."""
        return iter(list(self._nodes.values()))

    @property
    def nodes(self) -> list[Node]:
        """All nodes in graph order (a snapshot list)."""
        return list(self._nodes.values())

    def names(self) -> list[str]:
        return list(self._nodes)

    def node(self, name: str) -> Node:
        """The node called ``name`` (a ``name:port`` or ``^name`` reference works too)."""
        node = self._nodes.get(name)
        if node is None:
            node = self._nodes.get(producer_name(name))
        if node is None:
            raise GraphtoolError(f"no node named {name!r} in the graph"
                                 + did_you_mean(name, self._nodes))
        return node

    def get(self, name: str) -> Node | None:
        return self._nodes.get(name) or self._nodes.get(producer_name(name))

    def ops(self) -> list[str]:
        """The op of every node in graph order (parallel to ``names()``), without Node views."""
        return [node._msg.op for node in self._nodes.values()]

    def controlled(self) -> list[Node]:
        """The nodes with control inputs, in graph order (known without reading every node)."""
        controlled = self._controlled
        if not controlled:
            return []
        return [node for name, node in self._nodes.items() if name in controlled]

    def with_control_inputs(self, names) -> list[str]:
        """Those of ``names`` whose nodes have control inputs (no input is read)."""
        controlled = self._controlled
        return [name for name in names if name in controlled] if controlled else []

    def nodes_by_op(self, *ops: str) -> list[Node]:
        wanted = set(ops)
        return [n for n in self._nodes.values() if n._msg.op in wanted]

    def op_histogram(self) -> dict[str, int]:
        """Op type -> count, most frequent first."""
        return dict(Counter(n._msg.op for n in self._nodes.values()).most_common())

    def consumers(self, name) -> list[Node]:
        """Nodes that read ``name`` (a node, node name or tensor ref); a tensor ref
        with a port selects the data consumers of that port only."""
        if isinstance(name, Node):
            name = name.name
        nodes = self._nodes
        if ":" not in name and not name.startswith("^"):  # a plain node name: the hot path
            users = self._consumers.get(name)
            return [nodes[u] for u in users if u in nodes] if users else []
        target = parse_ref(name)
        users = self._consumers.get(producer_name(name), ())
        result = [nodes[u] for u in users if u in nodes]
        if not target.control and _PORT.match(name):
            result = [n for n in result if any(
                (r := parse_ref(i)).node == target.node and not r.control and r.port == target.port
                for i in n._msg.input[:])]
        return result

    def readers(self, name: str) -> list[str]:
        """Names of the nodes reading node ``name`` (data or control): ``consumers``
        without building Node views, for walks that only need names."""
        users = self._consumers.get(name)
        if not users:
            return []
        return list(filter(self._nodes.__contains__, users))  # no comprehension frame

    def reader_count(self, name: str) -> int:
        """How many nodes read node ``name`` (data or control): ``len(readers(name))``
        without the list."""
        users = self._consumers.get(name)
        if not users:
            return 0
        return sum(map(self._nodes.__contains__, users))  # counted in C

    def downstream(self, seeds: Iterable[str], steps: int) -> set[str]:
        """Names of the nodes at most ``steps`` edges (data or control) downstream of
        ``seeds``, the seeds in the graph included."""
        nodes, consumers = self._nodes, self._consumers
        seen = {s for s in seeds if s in nodes}
        frontier = seen
        for _ in range(steps):
            following = set()
            for name in frontier:
                users = consumers.get(name)
                if users:
                    following.update(users)  # readers in the index are nodes of the graph
            following -= seen
            if not following:
                break
            seen |= following
            frontier = following
        return seen

    def uses(self, tensor: str) -> list[tuple[Node, int]]:
        """(consumer, data input index) for every data edge reading ``tensor``."""
        want = parse_ref(tensor)
        found = []
        for node in self.consumers(want.node):
            for index, text in enumerate(node.data_inputs):
                if parse_ref(text)[:2] == want[:2]:
                    found.append((node, index))
        return found

    # -- graph interface ----------------------------------------------------
    @property
    def inputs(self) -> list[Node]:
        """Placeholder nodes, in graph order."""
        return [n for n in self._nodes.values() if n._msg.op in INPUT_OPS]

    @property
    def outputs(self) -> list[str]:
        """Output tensors: as set (e.g. from a sidecar), else every tensor-producing sink."""
        if self._outputs is not None:
            return list(self._outputs)
        consumers = self._consumers
        return [ref(name) for name, n in self._nodes.items()
                if not consumers.get(name) and n._msg.op not in _NO_OUTPUT_OPS and n._msg.input]

    @outputs.setter
    def outputs(self, tensors: Iterable[str] | None) -> None:
        if tensors is None:
            self._outputs = None
            return
        tensors = [str(t) for t in tensors]
        for t in tensors:
            self.node(t)
        self._outputs = tensors

    @property
    def versions(self):
        return self._gd.versions

    @property
    def library(self):
        """The FunctionDefLibrary (empty message when the graph has none)."""
        return self._gd.library

    def has_library(self) -> bool:
        return self._gd.HasField("library") and (
            len(self._gd.library.function) > 0 or len(self._gd.library.gradient) > 0)

    # -- editing ------------------------------------------------------------
    def observe(self, observer) -> None:
        """Tell ``observer`` (or stop telling, with None) of every node added, removed,
        renamed or given another op, and of reordering, through its methods
        ``inserted(name, op)``, ``removed(name, op)``, ``renamed(old, new, op)``,
        ``retyped(name, old_op, new_op)`` and ``reordered()``.  A rewrite's op index
        follows the graph this way across actions and rule firings alike, instead of
        rescanning every node at each stage."""
        self._observer = observer

    def fresh_name(self, base: str) -> str:
        """``base`` if unused, else ``base_1``, ``base_2``, ..."""
        if base not in self._nodes:
            return base
        for i in itertools.count(1):
            candidate = f"{base}_{i}"
            if candidate not in self._nodes:
                return candidate
        raise AssertionError("unreachable")

    def add_node(self, op: str, name: str | None = None, inputs: Iterable[str] = (),
                 attrs: dict | None = None, *, device: str = "") -> Node:
        """Add a node.  ``name=None`` picks a fresh one from ``op``; a taken name is an error.

        ``attrs`` maps keys to Python values or ``(value, kind)`` pairs.
        """
        name = self._new_name(name, op)
        inputs = [str(i) for i in inputs]
        if _has_control(inputs):
            inputs = _ordered_inputs(inputs)
            self._controlled[name] = None
        # One constructor call, inputs included: a new node has no edges to undo.
        msg = NodeDef(name=name, op=op, input=inputs, device=device) if device else \
            NodeDef(name=name, op=op, input=inputs)
        node = self._insert(name, msg, inputs)
        for key, value in (attrs or {}).items():
            if isinstance(value, tuple) and len(value) == 2 and value[1] in attr_codec.KINDS:
                node.set_attr(key, value[0], value[1])
            else:
                node.set_attr(key, value)
        return node

    def add_const(self, array, name: str | None = None, dtype=None) -> Node:
        """Add a Const holding ``array`` (written as tensor_content)."""
        from graphtool.tensors import const_def
        name = self._new_name(name or None, "Const")
        return self._insert(name, const_def(name, array, dtype), ())

    def _new_name(self, name: str | None, op: str) -> str:
        """The name of a node to add: ``name`` when valid and free, a fresh one if None."""
        if name is None:
            return self.fresh_name(op)
        if name in self._nodes:
            raise GraphtoolError(f"a node named {name!r} already exists; use graph.fresh_name()")
        if not name or name.startswith("^") or ":" in name and _PORT.match(name):
            raise GraphtoolError(f"{name!r} is not a valid node name")
        return name

    def _insert(self, name: str, msg, inputs) -> Node:
        """Add NodeDef ``msg`` called ``name`` (checked), whose inputs are ``inputs``."""
        node = Node(self, msg)
        self._nodes[name] = node
        self._order_changed = True
        if self._observer is not None:
            self._observer.inserted(name, msg.op)
        if inputs:
            self._link(name, inputs)
        return node

    def _set_inputs(self, node: Node, inputs: list[str]) -> None:
        msg = node._check()
        name = msg.name
        if _has_control(inputs):
            inputs = _ordered_inputs(inputs)
            self._controlled[name] = None
        elif self._controlled:
            self._controlled.pop(name, None)
        field = msg.input
        current = field[:]
        if current:  # a source has no edges to undo
            self._unlink(name, current)
            del field[:]
        if inputs:  # a node left without inputs (a folded Const) has nothing to link
            field.extend(inputs)
            self._link(name, inputs)

    def _link(self, name: str, inputs: list[str]) -> None:
        """Count node ``name`` as a consumer of the producers of its ``inputs``."""
        self._acyclic = False  # a new edge may close a cycle
        consumers = self._consumers
        for producer in _producers(inputs):
            counts = consumers.get(producer)
            if counts is None:
                consumers[producer] = {name: 1}
            else:
                counts[name] = counts.get(name, 0) + 1

    def _move_edges(self, reader: str, old: str, new: str, count: int) -> None:
        """``count`` of ``reader``'s edges now come from ``new`` instead of ``old``."""
        self._acyclic = False
        consumers = self._consumers
        counts = consumers[old]
        left = counts[reader] - count
        if left > 0:
            counts[reader] = left
        else:
            del counts[reader]
        counts = consumers.get(new)
        if counts is None:
            consumers[new] = {reader: count}
        else:
            counts[reader] = counts.get(reader, 0) + count

    def _unlink(self, name: str, inputs: list[str]) -> list[str]:
        """Undo ``_link`` for node ``name``'s current ``inputs``; returns their producers."""
        consumers = self._consumers
        producers = _producers(inputs)
        for producer in producers:
            counts = consumers.get(producer)
            if counts is not None:
                count = counts.get(name)
                if count is None:
                    continue
                if count <= 1:
                    del counts[name]
                else:
                    counts[name] = count - 1
        return producers

    def remove(self, *nodes) -> set[str]:
        """Remove nodes (Nodes or names).  Refused while nodes outside the set still use them.

        Returns the names of the nodes left that fed the removed ones.
        """
        doomed = self._doomed(nodes)
        names = doomed.keys()
        consumers = self._consumers
        for name in names:
            users = consumers.get(name)
            if users and not users.keys() <= names:  # a set test in C, per node
                self._refuse_removal(name, users, doomed)
        producers = set()
        self._take_out(doomed, producers)
        table = self._nodes
        return set(filter(table.__contains__, producers))  # no comprehension frame

    def remove_batch(self, nodes, clear=()) -> None:
        """``remove(nodes)`` for a batch that feeds itself, as folding leaves it, after
        the nodes named in ``clear`` (which stay, as sources) lose all their inputs.

        Their edges from removed producers are not undone one by one: those producers'
        consumer entries go whole.  No set of the producers left is built."""
        doomed = self._doomed([nodes])
        table, consumers, controlled = self._nodes, self._consumers, self._controlled
        for name in clear:
            node = table.get(name) or self.node(name)
            field = node._check().input
            inputs = field[:]
            if not inputs:
                continue
            del field[:]
            for producer in _producers(inputs):
                if producer not in doomed:
                    counts = consumers.get(producer)
                    if counts is not None:
                        counts.pop(name, None)
            if controlled:
                controlled.pop(name, None)
        # The cleared nodes are still listed as readers of their removed producers.
        allowed = doomed.keys() | set(clear) if clear else doomed.keys()
        for name in doomed:
            users = consumers.get(name)
            if users and not users.keys() <= allowed:  # a set test in C, per node
                self._refuse_removal(name, [u for u in users if u not in allowed], doomed)
        self._take_out(doomed, None)

    def _doomed(self, nodes) -> dict:
        """Name -> Node of the nodes ``remove`` is given (Nodes or names, or lists of them)."""
        doomed, table = {}, self._nodes
        for n in nodes:
            for item in (n if isinstance(n, (list, tuple, set)) else [n]):
                node = table.get(item) if type(item) is str else None
                if node is not None:  # a node's own name: no ref parsing, no name read
                    doomed[item] = node
                    continue
                node = item if isinstance(item, Node) else self.node(item)
                if not node._alive:
                    node._check()
                doomed[node._msg.name] = node
        return doomed

    @staticmethod
    def _refuse_removal(name: str, users, doomed: dict) -> None:
        others = sorted(u for u in users if u not in doomed)
        raise GraphtoolError(
            f"cannot remove {name!r}: still used by {others[:5]}; "
            "rewire them first (replace_all_uses or bypass)")

    def _take_out(self, doomed: dict, producers: set | None) -> None:
        """Take the ``doomed`` nodes (name -> Node, no outside readers) out of the graph;
        their producers go into ``producers`` when given.  An edge between two doomed
        nodes needs no unlinking: the producer's consumer entry goes whole."""
        table, consumers, observer = self._nodes, self._consumers, self._observer
        for name, node in doomed.items():
            msg = node._msg
            inputs = msg.input[:]  # left in the dropped NodeDef: nothing reads it again
            if inputs:  # sources (Consts, most of a batch) have no edges to undo
                for producer in _producers(inputs):
                    if producer not in doomed:
                        counts = consumers.get(producer)
                        if counts is not None:
                            counts.pop(name, None)  # every edge of the node from it
                        if producers is not None:
                            producers.add(producer)
            del table[name]
            consumers.pop(name, None)
            node._alive = False
            if observer is not None:  # while the node is at hand: a big batch is out of cache
                observer.removed(name, msg.op)
        controlled = self._controlled
        if controlled:
            for name in doomed:
                controlled.pop(name, None)
        outputs = self._outputs  # pinned during a rewrite, and seldom among the removed
        if outputs is not None and not doomed.keys().isdisjoint(map(producer_name, outputs)):
            self._outputs = [o for o in outputs if producer_name(o) not in doomed]
        self._order_changed = True

    def replace_all_uses(self, old: str, new: str) -> int:
        """Rewire every reader of tensor ``old`` to tensor ``new``; returns the count.

        Control edges (``^old``) follow to the producer of ``new``.  Graph outputs
        naming ``old`` are updated too.  A node never becomes its own input: uses by
        ``new``'s producer are left alone.
        """
        return len(self.rewire(old, new))

    def rewire(self, old: str, new: str, *, single_output: bool = False) -> list[Node]:
        """``replace_all_uses``, returning the nodes whose inputs changed.

        ``single_output``: node ``old`` is being bypassed, so a reader of any other output
        of it is refused, before anything changes (the readers' inputs are read once).
        """
        old_node, old_port = _tensor(str(old))
        new_node, new_port = _tensor(str(new))
        # The spellings of the old tensor, and what each becomes.
        data_forms = ({old_node, old_node + ":0"} if old_port == 0
                      else {f"{old_node}:{old_port}"})
        new_data = new_node if new_port == 0 else f"{new_node}:{new_port}"
        control_form = "^" + old_node if old_port == 0 else None
        new_control = "^" + new_node
        changed = []
        users = self._consumers.get(old_node)
        nodes = self._nodes
        readers = []
        for user in list(users) if users else ():
            node = nodes.get(user)
            if node is not None:
                field = node._msg.input
                readers.append((user, node, field, field[:]))
        if single_output:
            port_prefix = old_node + ":"
            for user, _, _, current in readers:
                for text in current:
                    if text.startswith(port_prefix) and text not in data_forms:
                        raise GraphtoolError(f"cannot bypass {old_node!r}: {user!r} reads its "
                                             f"output {text}")
        for user, node, field, current in readers:
            if user == new_node:
                continue
            moved = 0
            controls = False
            for i, text in enumerate(current):
                if text in data_forms:
                    field[i] = new_data  # in place: positions kept, control inputs stay last
                    moved += 1
                elif text == control_form:
                    controls = True
            if controls:  # ^new may now be there twice: relink all
                updated = _ordered_inputs([new_control if t == control_form else t
                                           for t in field[:]])
                self._unlink(user, current)
                del field[:]
                field.extend(updated)
                self._link(user, updated)
            elif moved:
                self._move_edges(user, old_node, new_node, moved)
            else:
                continue
            changed.append(node)
        outputs = self._outputs
        if outputs is not None and old_node in map(producer_name, outputs):
            self._outputs = [new_data if o in data_forms else o for o in outputs]
        return changed

    def has_consumers(self, name: str) -> bool:
        """Whether any node reads node ``name`` (data or control); cheaper than ``consumers``."""
        return bool(self._consumers.get(name))  # readers in the index are nodes of the graph

    def bypass(self, node, input_index: int = 0) -> None:
        """Remove ``node`` and feed its readers from its data input ``input_index``.

        Its own control inputs are dropped.  If the node is a declared graph output,
        the producer of that input takes over the node's name (when it can: a port-0
        producer nobody else reads), so output names users rely on survive.
        """
        node = node if isinstance(node, Node) else self.node(node)
        source = node.data_inputs[input_index]
        src = parse_ref(source)
        is_output = any(producer_name(o) == node.name for o in self.outputs)
        self.replace_all_uses(node.output(0), source)
        if is_output and src.port == 0 and src.node in self._nodes and set(
                self._consumers.get(src.node, ())) <= {node.name}:
            self.remove(node)
            self.rename(src.node, node.name)
            return
        self.remove(node)

    def adopt(self, node, donor) -> None:
        """``node`` takes over ``donor``'s definition (op, attrs, inputs); ``donor`` is removed.

        The NodeDef moves, nothing is copied, and readers of ``node`` keep reading
        the same name: folding turns ``Identity(Const)`` into the Const this way
        without duplicating its weights.  ``donor`` may be read by ``node`` only.
        """
        node = node if isinstance(node, Node) else self.node(node)
        donor = donor if isinstance(donor, Node) else self.node(donor)
        if not node._alive or not donor._alive:
            node._check()
            donor._check()
        own, msg = node._msg, donor._msg
        name, donor_name = own.name, msg.name
        own_op = own.op
        consumers = self._consumers
        users = consumers.get(donor_name)
        if users and (len(users) > 1 or name not in users) or node is donor:
            others = set(users or ()) - {name}
            raise GraphtoolError(f"{name!r} cannot adopt {donor_name!r}: "
                                 + (f"{sorted(others)[:5]} read it too" if others
                                    else "a node cannot adopt itself"))
        own_inputs = own.input[:]  # each read of a field builds a wrapper: once
        if own_inputs and own_inputs != [donor_name]:  # the donor's edges go with it below
            self._unlink(name, own_inputs)
        inputs = msg.input[:]
        if inputs:
            self._unlink(donor_name, inputs)
        del self._nodes[donor_name]
        consumers.pop(donor_name, None)
        donor._alive = False
        own.name, own.op = donor_name, msg.op  # the removed view keeps its name and op,
        donor._msg = own  # on the NodeDef the node leaves behind
        msg.name = name
        node._msg = msg
        if inputs:
            self._link(name, inputs)
        controlled = self._controlled
        if controlled:  # the node's inputs are the donor's now
            if donor_name in controlled:
                del controlled[donor_name]
                controlled[name] = None
            else:
                controlled.pop(name, None)
        self._order_changed = True
        observer = self._observer
        if observer is not None:
            observer.removed(donor_name, msg.op)
            if own_op != msg.op:
                observer.retyped(name, own_op, msg.op)

    def rename(self, old: str, new: str) -> Node:
        """Give a node a new name, rewiring its readers and the output list."""
        node = self.node(old)
        if new in self._nodes:
            raise GraphtoolError(f"cannot rename {old!r} to {new!r}: that name is taken")
        users = list(self._consumers.get(old, ()))
        own_inputs = list(node._msg.input)
        self._set_inputs(node, [])  # producers' consumer entries name the node: redo them
        node._msg.name = new
        self._nodes = {(new if k == old else k): v for k, v in self._nodes.items()}
        self._set_inputs(node, own_inputs)
        for user in users:
            u = self._nodes[new if user == old else user]
            self._set_inputs(u, [_rename_ref(t, old, new) for t in u._msg.input[:]])
        if not self._consumers.get(old):
            self._consumers.pop(old, None)
        if self._outputs is not None:
            self._outputs = [_rename_ref(o, old, new) for o in self._outputs]
        self._order_changed = True
        if self._observer is not None:
            self._observer.renamed(old, new, node._msg.op)
        return node

    def prune(self, outputs: Iterable[str] | None = None, keep: Iterable[str] = ()) -> list[str]:
        """Remove every node that no output (or ``keep`` node) depends on; returns their names."""
        roots = [producer_name(o) for o in (list(outputs) if outputs is not None else self.outputs)]
        roots += [producer_name(k) for k in keep]
        nodes = self._nodes
        reached = set()
        stack = [r for r in roots if r in nodes]
        while stack:
            name = stack.pop()
            if name in reached:
                continue
            reached.add(name)
            for producer in _producers(nodes[name]._msg.input[:]):
                if producer in nodes and producer not in reached:
                    stack.append(producer)
        dead = [n for n in nodes if n not in reached]
        if dead:
            self.remove([nodes[n] for n in dead])
        return dead

    # -- order and checks ---------------------------------------------------
    def find_cycle(self) -> list[str] | None:
        """Node names forming a cycle (data or control edges), or None."""
        remaining = self._kahn_order()[1]
        if not remaining:
            return None
        # Walk producers inside the stuck set until a name repeats.
        stuck = set(remaining)
        start = remaining[0]
        path, seen = [start], {start: 0}
        current = start
        while True:
            nxt = next(producer_name(i) for i in self._nodes[current]._msg.input
                       if producer_name(i) in stuck)
            if nxt in seen:
                cycle = list(reversed(path[seen[nxt]:]))  # producer -> consumer order
                order = {name: i for i, name in enumerate(self._nodes)}
                first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
                return cycle[first:] + cycle[:first]
            seen[nxt] = len(path)
            path.append(nxt)
            current = nxt

    def _kahn_order(self) -> tuple[list[str], list[str]]:
        """Stable topological order (ties keep graph order); also the nodes left over.

        Edges are counted from the consumer index, without parsing input strings.  When
        every edge already runs forward in graph order (a loaded or sorted graph), that
        order is the answer: it is the first one the heap below would pick anyway.
        """
        names = list(self._nodes)
        index = dict(zip(names, range(len(names))))  # no comprehension frame
        if self._runs_forward(index):
            self._acyclic = True
            return names, []
        pending = dict.fromkeys(names, 0)  # producers in the graph, each counted once
        for producer, users in self._consumers.items():
            if producer in index:
                for user in users:
                    if user in pending:
                        pending[user] += 1
        heap = [index[n] for n, c in pending.items() if c == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            name = names[heapq.heappop(heap)]
            order.append(name)
            for user in self._consumers.get(name, ()):
                if user in pending:
                    pending[user] -= 1
                    if pending[user] == 0:
                        heapq.heappush(heap, index[user])
        placed = set(order)
        left = [n for n in names if n not in placed]
        self._acyclic = not left
        return order, left

    def _runs_forward(self, index: dict) -> bool:
        """Whether every edge goes from a node to one later in ``index`` (graph positions)."""
        for producer, users in self._consumers.items():
            at = index.get(producer)
            if at is not None:
                for user in users:
                    if index.get(user, at + 1) <= at:
                        return False
        return True

    def toposort(self) -> None:
        """Reorder nodes so every node follows its inputs; otherwise keeps graph order."""
        order, left = self._kahn_order()
        if left:
            raise GraphtoolError("the graph has a cycle: " + " -> ".join(self.find_cycle()))
        if order != list(self._nodes):
            self._nodes = {name: self._nodes[name] for name in order}
            self._order_changed = True
            if self._observer is not None:
                self._observer.reordered()

    def check(self) -> None:
        """Raise a GraphtoolError for dangling inputs or cycles."""
        nodes = self._nodes
        for node in nodes.values():
            for producer in _producers(node._msg.input[:]):
                if producer not in nodes:
                    text = next(t for t in node._msg.input if producer_name(t) == producer)
                    raise GraphtoolError(
                        f"node {node.name!r} reads {text!r}, but no node is called "
                        f"{producer!r}" + did_you_mean(producer, nodes), path=self.source)
        cycle = None if self._acyclic else self.find_cycle()
        if cycle:
            raise GraphtoolError("the graph has a cycle: " + " -> ".join(cycle + cycle[:1]),
                                 path=self.source)

    # -- analyses -----------------------------------------------------------
    def shapes(self, input_shapes: dict | None = None):
        """Static dtype/shape of every tensor (see ``graphtool.analysis.shapes``)."""
        from graphtool.analysis.shapes import infer_shapes
        return infer_shapes(self, input_shapes)

    # -- conversion ---------------------------------------------------------
    def to_graph_def(self):
        """The GraphDef message, with nodes in graph order.

        When no node was added, removed or reordered the original message is
        returned as is (no copy); otherwise the node list is rebuilt once.
        """
        if self._order_changed:
            new = GraphDef()
            for field, value in self._gd.ListFields():  # all but the nodes: no copy of those
                if field.name == "node":
                    continue
                if field.type == field.TYPE_MESSAGE:
                    getattr(new, field.name).CopyFrom(value)
                else:
                    setattr(new, field.name, value)
            new.node.extend(n._msg for n in self._nodes.values())
            self._gd = new
            for node, msg in zip(self._nodes.values(), new.node):
                node._msg = msg
            self._order_changed = False
        return self._gd

    def copy(self) -> "Graph":
        """An independent deep copy (outputs and source carried over)."""
        gd = GraphDef()
        gd.CopyFrom(self.to_graph_def())
        clone = Graph(gd, source=self.source)
        clone._outputs = None if self._outputs is None else list(self._outputs)
        return clone

    def serialize(self) -> bytes:
        """Binary GraphDef bytes, deterministic (map keys sorted)."""
        return self.to_graph_def().SerializeToString(deterministic=True)

    def save(self, path, *, overwrite_input: bool = False) -> None:
        """Write the graph: text format for ``.pbtxt``/``.txt``, binary otherwise; atomic."""
        from graphtool.emit import save_graph
        save_graph(self, path, overwrite_input=overwrite_input)

    def _repr_svg_(self):
        """Jupyter shows graphs as SVG."""
        from graphtool.render import render_svg
        return render_svg(self)

    def __repr__(self) -> str:
        return f"<Graph {len(self)} nodes{' from ' + self.source if self.source else ''}>"


def _has_control(inputs: list[str]) -> bool:
    """Whether an input list holds a control input (no node name contains ``^``)."""
    return "^" in "".join(inputs)


def data_only(inputs: list[str]) -> list[str]:
    """A NodeDef's input list without its control inputs (the same list when it has none,
    found with one scan of the joined names instead of a test per input)."""
    if _has_control(inputs):
        return [t for t in inputs if not t.startswith("^")]
    return inputs


def _ordered_inputs(inputs: list[str]) -> list[str]:
    """Data inputs as given (repeats kept: Mul(x, x)), then each control input once."""
    data = [i for i in inputs if not i.startswith("^")]
    return data + list(dict.fromkeys(i for i in inputs if i.startswith("^")))


def _rename_ref(text: str, old: str, new: str) -> str:
    r = parse_ref(text)
    return str(r._replace(node=new)) if r.node == old else text
