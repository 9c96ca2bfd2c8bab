"""Replacements: what a matched subgraph becomes.

Three forms (see docs/rules.md):

* ``replace: x`` - bypass: the root's readers read capture ``x`` instead
  (Identity-like removal);
* ``replace: {call: helper, args: [...]}`` - a registered Python function
  does the edit itself through an ``Edit``;
* ``replace: {name: {op: ..., inputs: [...], attrs: {...}}, ...}`` - new
  nodes taking captures, with literal, copied or computed attrs and computed
  Const tensors.  The node named like the pattern root (or the only sink)
  takes over the root: the root node is rebuilt in place, so it keeps its
  name and its readers stay wired.

Everything a replacement computes is evaluated before the graph is touched,
so an error leaves no half-done rewrite behind.  Matched nodes nobody reads
afterwards are removed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphtool import attrs as attr_codec
from graphtool.dtypes import DType, as_dtype, to_numpy
from graphtool.errors import GraphtoolError
from graphtool.lang.computed import (CallValue, Computed, CopyAttr, ExprValue, Literal,
                                     compile_call, expression)
from graphtool.lang.functions import MAX_ELEMENTS, value_of
from graphtool.lang.source import Position, SourceMap
from graphtool.match.pattern import InputRef, Pattern, parse_input_ref
from graphtool.proto import AttrValue, NodeDef
from graphtool.rewrite.edit import CONST_OP, Edit


@dataclass
class NewNode:
    """One node of a replacement subgraph."""
    key: str
    position: Position
    op: str | None = None
    inputs: list = field(default_factory=list)          # InputRefs
    like: str | None = None                             # copy op and attrs of this capture
    copy_attrs: str | None = None
    attrs: dict = field(default_factory=dict)           # key -> Computed, or None to drop
    const: Computed | None = None
    dtype: DType | None = None
    shape: object = None                                # list, Computed or None


@dataclass
class Replacement:
    kind: str                                           # "bypass", "call" or "nodes"
    position: Position
    target: InputRef | None = None
    call: CallValue | None = None
    nodes: dict = field(default_factory=dict)           # key -> NewNode
    root: str | None = None
    order: list = field(default_factory=list)           # producers before readers
    names_used: set = field(default_factory=set)


# -- compiling ----------------------------------------------------------------------
def compile_replacement(data, smap: SourceMap, path: tuple, pattern: Pattern,
                        lets: list[str]) -> Replacement:
    names = set(pattern.captures) | set(lets)
    here = smap.at(path)
    if isinstance(data, str):
        return _compile_bypass(data, smap, path, pattern, here)
    if isinstance(data.get("call"), str):
        call = compile_call(data, smap, path, names)
        return Replacement("call", here, call=call, names_used=set(call.names_used))
    rep = Replacement("nodes", here)
    singles = set(pattern.nodes) | set(pattern.leaves)
    for key, spec in data.items():
        where = path + (key,)
        if key != pattern.root and (key in names):
            raise smap.error(where, f"replacement node {key!r} has the name of a capture; "
                             "choose another name (only the pattern root's name may be reused)",
                             key=True)
        rep.nodes[key] = _compile_node(key, spec, smap, where, pattern, names, data, singles)
    _wire(rep, smap, path, pattern)
    for node in rep.nodes.values():
        for computed in list(node.attrs.values()) + [node.const, node.shape]:
            if isinstance(computed, Computed):
                rep.names_used.update(computed.names_used)
        rep.names_used.update(r.name for r in node.inputs if r.name in names)
        if node.copy_attrs:
            rep.names_used.add(node.copy_attrs)
        if node.like:
            rep.names_used.add(node.like)
    return rep


def _compile_bypass(text: str, smap, path, pattern: Pattern, here) -> Replacement:
    try:
        ref = parse_input_ref(text)
    except GraphtoolError as exc:
        raise smap.error(path, str(exc)) from None
    if ref.name is None or ref.variadic:
        raise smap.error(path, f"replace: {text!r} must name one captured tensor")
    if ref.name not in pattern.nodes and ref.name not in pattern.leaves:
        raise smap.error(path, f"replace: {ref.name!r} is not a capture of the pattern"
                         + _suggest(ref.name, pattern.captures))
    if ref.name == pattern.root:
        raise smap.error(path, "replace: the root cannot replace itself")
    if ref.port is not None and ref.name in pattern.leaves:
        raise smap.error(path, f"{ref.name!r} is already a tensor; drop the ':{ref.port}'")
    return Replacement("bypass", here, target=ref, names_used={ref.name})


def _suggest(word, options) -> str:
    from graphtool.errors import did_you_mean
    return did_you_mean(word, list(options))


def _compile_node(key, spec, smap, where, pattern, names, all_nodes, singles) -> NewNode:
    node = NewNode(key, smap.at(where, key=True))
    if ("op" in spec or "copy" in spec) == ("const" in spec):
        raise smap.error(where, f"replacement node {key!r} needs op: or copy: (a new node), or "
                         "const: (a computed constant)", key=True)
    node.op = spec.get("op")
    for i, text in enumerate(spec.get("inputs", [])):
        ref = parse_input_ref(text)
        at = where + ("inputs", i)
        if ref.name is None:
            raise smap.error(at, f"{text!r} cannot be used in a replacement; name a capture or "
                             "a replacement node")
        if ref.variadic and ref.name not in pattern.rests:
            raise smap.error(at, f"'...{ref.name}' is not a list capture of the pattern"
                             + _suggest(ref.name, pattern.rests))
        if not ref.variadic and ref.name not in singles and ref.name not in all_nodes:
            raise smap.error(at, f"{ref.name!r} is neither a capture nor a replacement node"
                             + _suggest(ref.name, list(singles) + list(all_nodes)))
        if ref.port is not None and ref.name in pattern.leaves:
            raise smap.error(at, f"{ref.name!r} is already a tensor; drop the ':{ref.port}'")
        node.inputs.append(ref)
    for source in ("copy", "copy_attrs"):
        if source in spec and spec[source] not in singles:
            raise smap.error(where + (source,), f"{source}: {spec[source]!r} is not a capture"
                             + _suggest(spec[source], singles))
    node.like = spec.get("copy")
    node.copy_attrs = spec.get("copy_attrs") or node.like
    for attr_key, value in spec.get("attrs", {}).items():
        node.attrs[attr_key] = _compile_attr(attr_key, value, smap, where + ("attrs", attr_key),
                                             names, singles)
    if "const" in spec:
        node.const = _compile_tensor(spec["const"], smap, where + ("const",), names)
        if spec.get("attrs") or spec.get("inputs") or spec.get("copy_attrs") or spec.get("copy"):
            raise smap.error(where, f"replacement node {key!r} is a computed constant; it takes "
                             "no inputs:, attrs: or copy_attrs:", key=True)
    elif "dtype" in spec or "shape" in spec:
        raise smap.error(where, "dtype: and shape: describe a computed const:; this node has op:",
                         key=True)
    if "dtype" in spec:
        try:
            node.dtype = as_dtype(spec["dtype"])
        except GraphtoolError as exc:
            raise smap.error(where + ("dtype",), str(exc)) from None
    if "shape" in spec:
        shape = spec["shape"]
        node.shape = (ExprValue(expression(shape, smap, where + ("shape",), names))
                      if isinstance(shape, str) else list(shape))
        if isinstance(node.const, Literal) and isinstance(node.shape, list):
            try:
                _tensor(node, {})  # a literal with a literal shape: check it now
            except GraphtoolError as exc:
                raise smap.error(where + ("shape",), str(exc).split(": ", 1)[-1]) from None
    return node


def _compile_attr(key, value, smap, where, names, singles):
    if value is None:
        return None
    if isinstance(value, dict):
        if "expr" in value:
            return ExprValue(expression(value["expr"], smap, where + ("expr",), names))
        if "copy" in value:
            if value["copy"] not in singles:
                raise smap.error(where + ("copy",), f"copy: {value['copy']!r} is not a capture"
                                 + _suggest(value["copy"], singles))
            return CopyAttr(value["copy"], key, smap.at(where))
        if "call" in value:
            return compile_call(value, smap, where, names)
        return Literal(value["value"], value["kind"])
    return Literal(value)


def _compile_tensor(value, smap, where, names) -> Computed:
    if isinstance(value, str):
        return ExprValue(expression(value, smap, where, names))
    if isinstance(value, dict):
        return compile_call(value, smap, where, names)
    return Literal(value)


def _wire(rep: Replacement, smap, path, pattern: Pattern) -> None:
    """Pick the node that takes over the root, check reachability, order the nodes."""
    readers = {key: [] for key in rep.nodes}
    for key, node in rep.nodes.items():
        for ref in node.inputs:
            if ref.name == pattern.root and ref.name not in rep.nodes:
                raise smap.error(path + (key,), f"replacement node {key!r} reads the pattern root "
                                 f"{pattern.root!r}, which the replacement takes over (a cycle)",
                                 key=True)
            if ref.name in rep.nodes and not ref.variadic:
                if ref.name == key:
                    raise smap.error(path + (key,), f"replacement node {key!r} reads itself",
                                     key=True)
                readers[ref.name].append(key)
    if pattern.root in rep.nodes:
        root = pattern.root
    else:
        sinks = [k for k, r in readers.items() if not r]
        if len(sinks) != 1:
            raise smap.error(path, "cannot tell which replacement node takes over the pattern "
                             f"root: name it {pattern.root!r} (sinks: {', '.join(sinks) or 'none'})")
        root = sinks[0]
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(key: str, trail: list[str]):
        if state.get(key) == 1:
            raise smap.error(path + (key,), "the replacement has a cycle: "
                             + " -> ".join(trail[trail.index(key):] + [key]), key=True)
        if state.get(key) == 2:
            return
        state[key] = 1
        for ref in rep.nodes[key].inputs:
            if ref.name in rep.nodes and not ref.variadic:
                visit(ref.name, trail + [key])
        state[key] = 2
        order.append(key)

    visit(root, [])
    unused = [k for k in rep.nodes if k not in state]
    if unused:
        raise smap.error(path + (unused[0],), f"replacement node {unused[0]!r} is not used by "
                         f"{root!r} (it reaches no output); remove it or wire it in", key=True)
    rep.root, rep.order = root, order


# -- applying -----------------------------------------------------------------------
def apply(rep: Replacement, match, edit: Edit, env, control: str) -> None:
    """Perform the replacement for ``match``; the graph is only touched after all values exist.

    ``env`` is the match's scope (captures and lets); a bypass needs none and may get None.
    """
    graph = edit.graph
    matched = match.matched
    controls = _outside_controls(graph, matched) if control == "keep" else []
    inner = len(matched) > 1  # nodes besides the root, whose readers the replacement rewires
    if rep.kind == "bypass":
        ref = rep.target
        target = match.tensor(ref.name)
        if ref.port:
            target = f"{target}:{ref.port}"
        was_output = _bypass(match, target, edit, controls)
        if inner:
            _retarget_controls(edit, match, target.split(":")[0], control)
        edit.remove_dead(matched)
        if was_output:
            _keep_output_name(edit, match.root, target)
    elif rep.kind == "call":
        rep.call.function(edit, match, *rep.call.arguments(env))
        edit.remove_dead(matched)
    else:
        _build(rep, match, edit, env, controls)
        if inner:
            _retarget_controls(edit, match, match.root, control)
        edit.remove_dead([n for n in matched if n != match.root])


def _outside_controls(graph, matched: list[str]) -> list[str]:
    """The nodes outside the match that matched nodes wait for, in input order, once each."""
    found: dict[str, None] = {}
    for name in graph.with_control_inputs(matched):
        for text in graph.node(name).proto.input[:]:
            if text.startswith("^"):
                found[text[1:]] = None
    if found and len(matched) > 1:
        for name in matched:
            found.pop(name, None)
    return list(found)


def _retarget_controls(edit: Edit, match, target: str, control: str) -> None:
    """Control edges from outside onto replaced inner nodes: onto ``target`` (keep) or gone."""
    graph = edit.graph
    inside = set(match.matched)
    for name in match.matched:
        if name == match.root or name not in graph:
            continue
        for reader_name in graph.readers(name):  # names: most readers are matched nodes
            if reader_name in inside or reader_name in edit.created:
                continue
            reader = graph.node(reader_name)
            if ("^" + name) not in reader.inputs:
                continue
            if any(i.split(":")[0] == name for i in reader.data_inputs):
                continue  # a shared node keeps its readers
            inputs = [i for i in reader.inputs if i != "^" + name]
            if control == "keep" and target in graph and target != reader.name:
                inputs.append("^" + target)
            edit.set_inputs(reader, inputs)


def _tensor_ref(ref: InputRef, match, made: dict) -> list[str]:
    if ref.variadic:
        return list(match.rests[ref.name])
    if ref.name in made:
        base = made[ref.name]
    else:
        base = match.tensor(ref.name)
    if ref.port:
        return [f"{base}:{ref.port}"]
    return [base]


def _bypass(match, target: str, edit: Edit, controls: list[str]) -> bool:
    """Readers of the root read ``target``; returns whether the root was a graph output."""
    graph = edit.graph
    root = match.root
    data_readers = _data_readers(graph, root) if controls else ()
    edit.replace_uses(root, target, single_output=True)  # refuses readers of other outputs
    for name in data_readers:
        if name in graph:
            node = graph.node(name)
            edit.set_inputs(node, list(node.inputs) + ["^" + c for c in controls])
    was_output = root in edit.outputs
    if was_output:
        edit.outputs.discard(root)
        edit.outputs.add(target.split(":")[0])
    return was_output


def _data_readers(graph, root: str) -> list[str]:
    """Names of the nodes reading output 0 of ``root``; a reader of another output is refused."""
    port_prefix = root + ":"
    data_readers = []
    for reader in graph.consumers(root):
        reads_data = False
        for text in reader.proto.input[:]:
            if text == root:
                reads_data = True
            elif text.startswith(port_prefix):
                if text != port_prefix + "0":
                    raise GraphtoolError(f"cannot bypass {root!r}: {reader.name!r} reads its "
                                         f"output {text}")
                reads_data = True
        if reads_data:
            data_readers.append(reader.name)
    return data_readers


def _keep_output_name(edit: Edit, root: str, target: str) -> None:
    """A bypassed graph output keeps its name: its producer takes it over when it can."""
    graph = edit.graph
    producer = target.split(":")[0]
    if any(node.name == producer for node in graph.inputs):
        return  # a graph input keeps its own name: it is what callers feed
    if (target == producer and producer in graph and root not in graph
            and not graph.consumers(producer)
            and [o for o in graph.outputs if o.split(":")[0] == producer] == [producer]):
        edit.rename(producer, root)


def _build(rep: Replacement, match, edit: Edit, env, controls: list[str]) -> None:
    graph = edit.graph
    planned = {}
    for key in rep.order:
        planned[key] = _plan(rep.nodes[key], env, match.root)
    made: dict[str, str] = {}
    for key in rep.order:
        node = rep.nodes[key]
        inputs = [t for ref in node.inputs for t in _tensor_ref(ref, match, made)]
        kind, payload = planned[key]
        if key == rep.root:
            if kind == "const":
                array, dtype = payload
                attrs = {"value": attr_codec.encode(array.astype(to_numpy(dtype), copy=False)),
                         "dtype": attr_codec.encode(dtype, "type")}
                edit.rebuild(graph.node(match.root), CONST_OP, ["^" + c for c in controls], attrs)
            else:
                op, base, attrs = payload
                edit.rebuild(graph.node(match.root), op, inputs + ["^" + c for c in controls],
                             attrs, base=base)
            made[key] = match.root
            continue
        name = f"{match.root}/{key}"
        if kind == "const":
            array, dtype = payload
            made[key] = edit.add_const(array, name, dtype).name
        else:
            op, base, attrs = payload
            made[key] = edit.add_node(op, name, inputs, attrs, base=base).name


def _plan(node: NewNode, env, root: str):
    """Evaluate everything a new node needs: ('const', (array, dtype)) or
    ('node', (op, base, attrs)) - ``base`` a NodeDef whose attrs are copied first, or None."""
    if node.const is not None:
        return "const", _tensor(node, env)
    base = None
    if node.copy_attrs:
        base = env[node.copy_attrs].node.proto
        if base.name == root:
            # A snapshot now: the root is rebuilt before this is used.  Other matched
            # nodes keep their attrs until the replacement is built, so they are merged
            # from directly, saving a copy.
            snapshot = NodeDef()
            snapshot.attr.MergeFrom(base.attr)
            base = snapshot
    attrs: dict[str, AttrValue | None] = {}
    for key, computed in node.attrs.items():
        attrs[key] = None if computed is None else _attr(computed, env)
    op = node.op or env[node.like].node.op
    return "node", (op, base, attrs)


def _attr(computed: Computed, env) -> AttrValue:
    value = computed.evaluate(env)
    if isinstance(value, AttrValue):
        copied = AttrValue()
        copied.CopyFrom(value)
        return copied
    value = value_of(value)
    if isinstance(computed, Literal) and computed.kind:
        kind = computed.kind
        if kind.startswith("list("):
            return attr_codec.encode(value, "list", kind[5:-1])
        if kind == "type":
            value = as_dtype(value)
        return attr_codec.encode(value, kind)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        value = [v.item() if isinstance(v, np.generic) else v for v in value]
    return attr_codec.encode(value)


_DTYPES: dict = {}  # numpy dtype -> DType: as_dtype's numpy path costs an import and a parse


def _tensor(node: NewNode, env) -> tuple[np.ndarray, DType]:
    raw = value_of(node.const.evaluate(env))
    if isinstance(raw, (list, tuple)):
        raw = [value_of(v) for v in raw]
    python_value = not isinstance(raw, (np.ndarray, np.generic))
    array = np.asarray(raw)
    kind = array.dtype.kind
    if kind in "OSUV":  # objects, strings, raw bytes
        raise GraphtoolError(f"{node.position}: const {node.key!r} computed a "
                             f"{type(raw).__name__}, not a numeric tensor")
    if array.size > MAX_ELEMENTS:
        raise GraphtoolError(f"{node.position}: const {node.key!r} has {array.size} elements, "
                             f"over the limit of {MAX_ELEMENTS}")
    if node.dtype is not None:
        dtype = node.dtype
    elif python_value and kind in "fi":
        dtype = DType.float32 if kind == "f" else DType.int32
    else:
        dtype = _DTYPES.get(array.dtype)
        if dtype is None:
            dtype = _DTYPES[array.dtype] = as_dtype(array.dtype)
    array = array.astype(to_numpy(dtype), copy=False)
    declared = node.shape
    if isinstance(declared, Computed):
        declared = value_of(declared.evaluate(env))
        if type(declared) is not list or not {int}.issuperset(map(type, declared)):
            declared = [int(d) for d in np.ravel(declared)]  # shape(x) gives ints already
    if declared is not None and declared != list(array.shape) and (
            len(declared) != array.ndim or any(
                d is not None and d != s for d, s in zip(declared, array.shape))):
        shown = [("?" if d is None else d) for d in declared]
        raise GraphtoolError(f"{node.position}: computed const {node.key!r} has shape "
                             f"{list(array.shape)}, but the rule declares {shown}")
    return array, dtype
