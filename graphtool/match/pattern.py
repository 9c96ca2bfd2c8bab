"""The pattern model: a DAG of named nodes compiled from a rule's ``pattern:``.

Every pattern node is a capture name; inputs refer to other pattern nodes, to
leaf captures (names no pattern node defines: any tensor), to ``_`` (any
tensor, not captured) or to variadic runs (``...`` uncaptured, ``...name``
captured as a list).  The same name in two places is one tensor.  Compiling
checks the structure once (one root, connected, acyclic, sensible
commutativity) so the matcher can trust it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from graphtool.attrs import Func
from graphtool.dtypes import DType, as_dtype, dtype_name
from graphtool.errors import GraphtoolError
from graphtool.lang.capture import constant_tensor
from graphtool.lang.source import Position, SourceMap
from graphtool.tensors import has_typed_values, header_value, shape_of

_REF = re.compile(r"^(?P<rest>\.\.\.)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)?(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class InputRef:
    """One entry of an ``inputs:`` list."""
    text: str
    name: str | None       # capture name; None for '_' and '...'
    port: int | None       # explicit ':N', else None
    variadic: bool         # '...' or '...name'

    @property
    def anonymous(self) -> bool:
        return self.name is None


def parse_input_ref(text: str) -> InputRef:
    if text == "_":
        return InputRef(text, None, None, False)
    if text == "...":
        return InputRef(text, None, None, True)
    m = _REF.match(text)
    if not m or not m.group("name") or (m.group("rest") and m.group("port")):
        raise GraphtoolError(f"{text!r} is not an input reference (use name, name:1, _, ... or "
                             "...name)")
    return InputRef(text, m.group("name"), int(m.group("port")) if m.group("port") else None,
                    bool(m.group("rest")))


def normalize(value):
    """Attr values in comparable form: DType -> 'float32', tuples -> lists, arrays -> lists."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Func):
        return value.name
    if isinstance(value, DType):
        return str(value)
    return value


def same_value(actual, expected) -> bool:
    actual, expected = normalize(actual), normalize(expected)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            same_value(a, e) for a, e in zip(actual, expected))
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected or (type(actual) is type(expected) and actual == expected)
    if isinstance(actual, float) or isinstance(expected, float):
        if isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
            return math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-12)
        return False
    return actual == expected


@dataclass(frozen=True)
class AttrCheck:
    """One constraint on one attr: eq, in, not, not_in, regex, min, max or present."""
    key: str
    kind: str
    arg: object

    def test(self, node) -> str | None:
        """None when the attr satisfies the constraint, else why not."""
        present = node.has_attr(self.key)
        if self.kind == "present":
            if present == bool(self.arg):
                return None
            return f"attr {self.key!r} is {'missing' if self.arg else 'present'}"
        if not present:
            if self.kind in ("not", "not_in"):
                return None
            return f"has no attr {self.key!r}"
        actual = node.attr(self.key)
        if self.kind == "eq":
            ok = same_value(actual, self.arg)
        elif self.kind == "not":
            ok = not same_value(actual, self.arg)
        elif self.kind == "in":
            ok = any(same_value(actual, v) for v in self.arg)
        elif self.kind == "not_in":
            ok = not any(same_value(actual, v) for v in self.arg)
        elif self.kind == "regex":
            text = normalize(actual)
            ok = isinstance(text, str) and self.arg.fullmatch(text) is not None
        else:  # min / max
            number = normalize(actual)
            ok = isinstance(number, (int, float)) and not isinstance(number, bool) and (
                number >= self.arg if self.kind == "min" else number <= self.arg)
        if ok:
            return None
        shown = self.arg.pattern if self.kind == "regex" else self.arg
        return f"attr {self.key}={normalize(actual)!r} fails {self.kind} {shown!r}"


def compile_attr_checks(attrs: dict) -> list[AttrCheck]:
    checks = []
    for key, spec in attrs.items():
        if not isinstance(spec, dict):
            checks.append(AttrCheck(key, "eq", spec))
            continue
        for kind, arg in spec.items():
            if kind == "regex":
                try:
                    arg = re.compile(arg)
                except re.error as exc:
                    raise GraphtoolError(f"attr {key!r}: invalid regex {arg!r} ({exc})") from None
            checks.append(AttrCheck(key, kind, arg))
    return checks


def _storage(tensor, dtype: int, count: int) -> str:
    """Which TensorProto field holds the values: "tensor_content", "typed_values" or "nothing"
    (no elements).  The typed list is looked at first: it is cheap, the bytes are copied."""
    if count == 0:
        return "nothing (no elements)"
    return "typed_values" if _typed(tensor, dtype) else "tensor_content"


def _typed(tensor, dtype: int) -> bool:
    """Whether the values are not in tensor_content: in the typed list, or nowhere."""
    return has_typed_values(tensor, dtype) or not tensor.tensor_content


@dataclass(frozen=True)
class ConstCheck:
    """Constraints on a constant node's tensor (its ``value`` attr)."""
    dtypes: frozenset | None = None
    ranks: frozenset | None = None
    shape: tuple | None = None
    scalar: bool | None = None
    value: object = None
    rtol: float = 1e-6
    atol: float = 1e-8
    all_equal: bool | None = None
    max_elements: int | None = None
    storage: str | None = None   # "tensor_content" or "typed_values"
    # Whether any constraint but the values needs the shape (most checks of a value do not).
    _sized: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_sized", any(
            v is not None for v in (self.ranks, self.shape, self.scalar, self.max_elements,
                                    self.storage)))

    def test(self, node) -> str | None:
        """None when ``node`` meets every constraint, else why not."""
        failure = self.failure(node.proto)
        return None if failure is None else failure()

    def plausible(self, msg) -> bool:
        """``failure(msg, values=False) is None`` for screens, the cheapest facts first: the
        dtype and where the values are stored reject most constants before the shape is
        read.  Reasons come from ``failure``, in the order the constraints are listed."""
        if self.dtypes is not None or self.storage is not None:
            held = msg.attr.get("value")
            if held is None or held.WhichOneof("value") != "tensor":
                return False
            tensor = held.tensor
            number = tensor.dtype
            if self.dtypes is not None and dtype_name(number) not in self.dtypes:
                return False
            # (an empty tensor passes here: failure tells it apart by its element count)
            if self.storage is not None and (self.storage == "typed_values") != _typed(
                    tensor, number):
                return False
        return self.failure(msg, False) is None

    def failure(self, msg, values: bool = True):
        """``test`` on a NodeDef without writing the reason: None, or a function giving it
        (a rewrite fails most candidates and never asks why).  ``values=False`` leaves out
        the constraints that decode the tensor (value, all_equal), for screens that must not
        raise where the search would not have looked."""
        tensor = constant_tensor(msg)
        if tensor is None:
            return lambda: "is not a constant"
        number = tensor.dtype
        if self.dtypes is not None:
            dtype = dtype_name(number)
            if dtype not in self.dtypes:
                return lambda: f"constant dtype {dtype} is not {'/'.join(sorted(self.dtypes))}"
        if not self._sized and (not values or self.value is None and self.all_equal is None):
            return None
        shape = shape_of(tensor.tensor_shape)
        dims = shape or ()
        if self.ranks is not None and len(dims) not in self.ranks:
            return lambda: (f"constant rank {len(dims)} is not "
                            f"{'/'.join(map(str, sorted(self.ranks)))}")
        if self.shape is not None and (len(dims) != len(self.shape) or any(
                want is not None and want != got for want, got in zip(self.shape, dims))):
            return lambda: f"constant shape {list(dims)} is not {list(self.shape)}"
        count = math.prod(dims)
        if self.scalar is not None and (count == 1) != self.scalar:
            return lambda: f"constant has {count} elements" + (", not 1" if self.scalar else "")
        if self.max_elements is not None and count > self.max_elements:
            return lambda: f"constant has {count} elements, over {self.max_elements}"
        if self.storage is not None:
            stored = _storage(tensor, number, count)
            if stored != self.storage:
                return lambda: f"constant values are stored in {stored}, not {self.storage}"
        if not values or self.value is None and self.all_equal is None:
            return None
        array = header_value(tensor, as_dtype(number), shape)  # no second header read
        if self.all_equal is not None and count:
            flat = array.reshape(-1)
            if bool(np.all(flat == flat[0])) != self.all_equal:
                return lambda: "constant elements are " + ("not all equal" if self.all_equal
                                                           else "all equal")
        if self.value is not None and not self._close(array, count):
            return lambda: (f"constant value {array.reshape(-1)[:4].tolist()}"
                            f"{'...' if count > 4 else ''} is not {self.value!r}")
        return None

    def _close(self, array, count: int) -> bool:
        """``array`` equals ``value`` within rtol/atol.  For a single expected number the
        first element is tried alone first: most constants differ right there."""
        value = self.value
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool) and count:
                first = float(array.reshape(-1)[0])
                if not abs(first - value) <= self.atol + self.rtol * abs(value):
                    return False
            return bool(np.allclose(array.astype(np.float64), np.asarray(value, np.float64),
                                    rtol=self.rtol, atol=self.atol))
        except (ValueError, TypeError):
            return False


def compile_const_check(spec: dict) -> ConstCheck:
    def as_set(value, convert=lambda v: v):
        if value is None:
            return None
        return frozenset(convert(v) for v in (value if isinstance(value, list) else [value]))
    dtypes = as_set(spec.get("dtype"), lambda v: str(as_dtype(v)))
    return ConstCheck(
        dtypes=dtypes, ranks=as_set(spec.get("rank")),
        shape=tuple(spec["shape"]) if "shape" in spec else None, scalar=spec.get("scalar"),
        value=spec.get("value"), rtol=float(spec.get("rtol", 1e-6)),
        atol=float(spec.get("atol", 1e-8)), all_equal=spec.get("all_equal"),
        max_elements=spec.get("max_elements"), storage=spec.get("storage"))


@dataclass
class PatternNode:
    """A node of the pattern: a capture with constraints on op, attrs, value and inputs."""
    name: str
    ops: frozenset | None
    inputs: list[InputRef] | None          # None: inputs are not constrained
    commutative: tuple[int, ...] | None    # input positions that may trade places
    attrs: list[AttrCheck] = field(default_factory=list)
    const: ConstCheck | None = None
    shared: bool = False
    position: Position | None = None

    @property
    def variadic(self) -> bool:
        return bool(self.inputs) and any(r.variadic for r in self.inputs)

    @property
    def reads_anything(self) -> bool:
        """Whether any inputs do: no ``inputs:`` list, or only ``...`` (which binds nothing)."""
        return self.inputs is None or [r.text for r in self.inputs] == ["..."]

    def describe_op(self) -> str:
        return "any op" if self.ops is None else "/".join(sorted(self.ops))


@dataclass
class Pattern:
    """A compiled pattern: nodes by capture name, the root, and derived facts."""
    nodes: dict[str, PatternNode]
    root: str
    leaves: list[str]          # captures no pattern node defines
    rests: list[str]           # '...name' captures (lists of tensors)
    order: list[str]           # defined nodes, root first, producers after their readers
    depth: int                 # longest chain of defined nodes from the root

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def root_ops(self) -> frozenset | None:
        return self.nodes[self.root].ops

    @property
    def captures(self) -> list[str]:
        return list(self.nodes) + self.leaves + self.rests


def compile_pattern(data: dict, smap: SourceMap, path: tuple, root: str | None = None) -> Pattern:
    """Build a Pattern from the ``pattern:`` mapping at ``path``; errors carry positions."""
    nodes: dict[str, PatternNode] = {}
    for name, spec in data.items():
        here = path + (name,)
        nodes[name] = _compile_node(name, spec or {}, smap, here)
    leaves, rests, readers = _references(nodes, smap, path)
    if root is None:
        roots = [n for n in nodes if not readers.get(n)]
        if len(roots) != 1:
            if not roots:
                raise smap.error(path, "the pattern has no root (every node is read by another: "
                                 "a cycle); patterns are acyclic")
            raise smap.error(path, f"the pattern has several roots ({', '.join(roots)}); "
                             "patterns have one output node: name it with root:, or connect "
                             "the others")
        root = roots[0]
    elif root not in nodes:
        raise smap.error(path[:-1] + ("root",), f"root {root!r} is not a pattern node"
                         + _suggest(root, nodes))
    elif readers.get(root):
        raise smap.error(path[:-1] + ("root",), f"root {root!r} is read by pattern node "
                         f"{readers[root][0]!r}; the root must be the pattern's output")
    order, depth = _walk(nodes, root, smap, path)
    unreached = [n for n in nodes if n not in order]
    if unreached:
        raise smap.error(path + (unreached[0],), f"pattern node {unreached[0]!r} is not connected "
                         f"to the root {root!r}; every node must feed the root")
    return Pattern(nodes, root, leaves, rests, order, depth)


def _suggest(word, options) -> str:
    from graphtool.errors import did_you_mean
    return did_you_mean(word, list(options))


def _compile_node(name: str, spec: dict, smap: SourceMap, here: tuple) -> PatternNode:
    op = spec.get("op", "*")
    ops = None if op == "*" else frozenset([op] if isinstance(op, str) else op)
    inputs = None
    if "inputs" in spec:
        inputs = []
        for i, text in enumerate(spec["inputs"]):
            try:
                inputs.append(parse_input_ref(text))
            except GraphtoolError as exc:
                raise smap.error(here + ("inputs", i), str(exc)) from None
        if sum(r.variadic for r in inputs) > 1 and spec.get("commutative"):
            raise smap.error(here + ("commutative",), "a commutative node may have only one "
                             "variadic input ('...')")
    commutative = _commutative(spec.get("commutative"), inputs, smap, here)
    try:
        attrs = compile_attr_checks(spec.get("attrs", {}))
    except GraphtoolError as exc:
        raise smap.error(here + ("attrs",), str(exc)) from None
    const = None
    if "const" in spec:
        try:
            const = compile_const_check(spec["const"])
        except GraphtoolError as exc:
            raise smap.error(here + ("const",), str(exc)) from None
        if inputs:
            raise smap.error(here + ("inputs",), f"pattern node {name!r} has const: constraints, "
                             "so it has no data inputs; remove inputs:")
    return PatternNode(name, ops, inputs, commutative, attrs, const, bool(spec.get("shared")),
                       smap.at(here))


def _commutative(spec, inputs, smap, here) -> tuple[int, ...] | None:
    if not spec:
        return None
    fixed = [i for i, r in enumerate(inputs or []) if not r.variadic]
    if inputs is None:
        raise smap.error(here + ("commutative",), "commutative: needs an inputs: list")
    if spec is True:
        return tuple(fixed)
    if any(r.variadic for r in inputs):
        raise smap.error(here + ("commutative",), "with a variadic input ('...') write "
                         "commutative: true, not a list of positions")
    bad = [p for p in spec if p >= len(inputs)]
    if bad:
        raise smap.error(here + ("commutative",), f"input position {bad[0]} does not exist "
                         f"(the node lists {len(inputs)} inputs, counted from 0)")
    return tuple(sorted(spec))


def _references(nodes: dict, smap: SourceMap, path: tuple):
    leaves, rests, readers = [], [], {}
    for name, node in nodes.items():
        for i, ref in enumerate(node.inputs or []):
            where = path + (name, "inputs", i)
            if ref.name is None:
                continue
            if ref.variadic:
                if ref.name in nodes or ref.name in leaves:
                    raise smap.error(where, f"'...{ref.name}' captures a list of inputs, but "
                                     f"{ref.name!r} is already a single capture; choose another "
                                     "name")
                if ref.name in rests:
                    raise smap.error(where, f"the list capture '...{ref.name}' is used twice; "
                                     "lists cannot be compared")
                rests.append(ref.name)
                continue
            if ref.name in rests:
                raise smap.error(where, f"{ref.name!r} is a list capture ('...{ref.name}') and "
                                 "cannot be a single input")
            if ref.name == name:
                raise smap.error(where, f"pattern node {name!r} reads itself")
            if ref.name in nodes:
                readers.setdefault(ref.name, []).append(name)
            elif ref.name not in leaves:
                leaves.append(ref.name)
    return leaves, rests, readers


def _walk(nodes: dict, root: str, smap: SourceMap, path: tuple):
    """Defined nodes in depth-first order from the root, and the pattern depth; finds cycles."""
    order: list[str] = []
    state: dict[str, int] = {}
    height: dict[str, int] = {}

    def visit(name: str, trail: list[str]):
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise smap.error(path + (name,), "the pattern has a cycle: " + " -> ".join(cycle))
        if state.get(name) == 2:
            return
        state[name] = 1
        order.append(name)
        below = 0
        for ref in nodes[name].inputs or []:
            if ref.name in nodes and not ref.variadic:
                visit(ref.name, trail + [name])
                below = max(below, height[ref.name])
        height[name] = below + 1
        state[name] = 2

    visit(root, [])
    return order, height[root]
