"""Static lint: which nodes a target runtime will not import, or will compute wrong, and why.

A target is data - a YAML file such as ``graphtool/targets/opencv_importer.yaml`` -
listing the ops the runtime handles, the layer types it reaches by op name, and per
op the constraints its importer puts on inputs, attrs and constant values.  This
module knows no op names: it applies the check kinds the target file uses to every
node, without running the runtime.

    from graphtool.lint import lint
    for finding in lint(graph, "opencv"):
        print(finding)
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from graphtool.errors import GraphtoolError, did_you_mean

TARGET_FORMAT = "graphtool-target/1"
_TARGETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets")
_BUILT_IN = {"opencv": os.path.join(_TARGETS, "opencv_importer.yaml")}


@dataclass
class Finding:
    """One reason the target will not accept a node as it is."""
    node: str
    op: str
    check: str        # the check kind that failed, e.g. "const_inputs"
    message: str

    def __str__(self) -> str:
        return f"{self.node} ({self.op}): {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Target:
    name: str
    path: str
    ops: dict
    layers: set
    ignored: set
    transparent: set
    const_storage_why: str


def load_target(name_or_path: str) -> Target:
    """A built-in target by name ("opencv") or a target YAML file by path."""
    import yaml

    path = _BUILT_IN.get(name_or_path, name_or_path)
    if not os.path.exists(path):
        raise GraphtoolError(f"unknown target {name_or_path!r}"
                             + (did_you_mean(name_or_path, _BUILT_IN)
                                or f"; built-in targets: {', '.join(sorted(_BUILT_IN))}, or "
                                   "give the path of a target YAML file"))
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise GraphtoolError(f"cannot read the target file: {exc}", path=path) from None
    if not isinstance(data, dict) or data.get("format") != TARGET_FORMAT:
        raise GraphtoolError(f"not a graphtool target file (format should be {TARGET_FORMAT!r})",
                             path=path)
    return Target(name=str(data.get("name", os.path.basename(path))), path=path,
                  ops={op: spec or {} for op, spec in (data.get("ops") or {}).items()},
                  layers=set(data.get("layers") or ()), ignored=set(data.get("ignored") or ()),
                  transparent=set(data.get("transparent") or ()),
                  const_storage_why=(data.get("const_storage") or {}).get("why", ""))


def lint(graph, target="opencv", *, input_shapes: dict | None = None) -> list[Finding]:
    """Every finding for ``graph`` against ``target`` (a Target, a name or a path)."""
    target = target if isinstance(target, Target) else load_target(target)
    shapes = _shapes(graph, input_shapes)
    findings: list[Finding] = []
    for node in graph.nodes:
        if node.op in target.ignored or node.op in target.transparent:
            continue
        spec = target.ops.get(node.op)
        if spec is None:
            if node.op not in target.layers:
                findings.append(Finding(node.name, node.op, "unknown_op",
                                        f"{target.name} has no layer for op {node.op}; the import "
                                        f"fails with \"Can't create layer\""))
            _const_storage(graph, node, {}, target, findings)
            continue
        _Checks(graph, node, spec, shapes, target, findings).run()
        _const_storage(graph, node, spec, target, findings)
    return findings


def _shapes(graph, input_shapes):
    """Static shapes when they can be had; None otherwise (rank checks are then skipped)."""
    from graphtool.analysis.shapes import infer_shapes
    try:
        return infer_shapes(graph, input_shapes)
    except GraphtoolError:
        return None


def _index(inputs: list, key) -> int | None:
    i = int(key)
    i = i + len(inputs) if i < 0 else i
    return i if 0 <= i < len(inputs) else None


def _producer(graph, tensor: str, transparent=()):
    """The node that computes ``tensor``, looking through ops the target removes."""
    node = graph.get(tensor.split(":")[0])
    seen = set()
    while node is not None and node.op in transparent and node.data_inputs and node.name not in seen:
        seen.add(node.name)
        node = graph.get(node.data_inputs[0].split(":")[0])
    return node


def _is_const(graph, tensor: str, transparent=()) -> bool:
    from graphtool import ops

    node = _producer(graph, tensor, transparent)
    entry = ops.get(node.op) if node is not None else None
    return entry is not None and entry.constant


class _Checks:
    """The check kinds a target file may use, applied to one node."""

    def __init__(self, graph, node, spec: dict, shapes, target: Target, findings: list):
        self.graph, self.node, self.spec, self.shapes = graph, node, spec, shapes
        self.inputs = list(node.data_inputs)
        self.transparent = target.transparent
        self.findings = findings

    def _const(self, i: int) -> bool:
        return _is_const(self.graph, self.inputs[i], self.transparent)

    def _source(self, i: int):
        return _producer(self.graph, self.inputs[i], self.transparent)

    def run(self) -> None:
        for kind, rule in self.spec.items():
            check = getattr(self, kind, None)
            if check is None:
                raise GraphtoolError(f"target op {self.node.op}: unknown check kind {kind!r}"
                                     + did_you_mean(kind, [k for k in dir(self)
                                                           if not k.startswith("_")]))
            check(rule)

    def _add(self, kind: str, message: str) -> None:
        self.findings.append(Finding(self.node.name, self.node.op, kind, message))

    def const_inputs(self, rule: dict) -> None:
        for key, why in rule.items():
            i = _index(self.inputs, key)
            if i is not None and not self._const(i):
                producer = self._source(i)
                self._add("const_inputs", f"input {i} comes from {producer.op if producer else '?'} "
                                          f"{self.inputs[i]!r}: {why}")

    def typed_inputs(self, rule: dict) -> None:
        for key, why in rule.items():
            i = _index(self.inputs, key)
            if i is None:
                continue
            if not self._const(i):
                self._add("typed_inputs", f"input {i} is not a Const: {why}")
                continue
            tensor = self._source(i).proto.attr["value"].tensor
            if tensor.tensor_content:
                self._add("typed_inputs", f"input {i} ({self.inputs[i]!r}) holds its value in "
                                          f"tensor_content: {why}")

    def const_first_input(self, rule: dict) -> None:
        if len(self.inputs) == 2 and self._const(0) and not self._const(1):
            self._add("const_first_input", f"the Const is the first operand: {rule['why']}")

    def attrs(self, rule: dict) -> None:
        for key, constraint in rule.items():
            if not self.node.has_attr(key):
                continue
            value = _plain(self.node.attr(key))
            problem = _violates(value, constraint)
            if problem:
                self._add("attrs", f"{key}={_show(value)} {problem}: {constraint['why']}")

    def input_values(self, rule: dict) -> None:
        for key, constraint in rule.items():
            i = _index(self.inputs, key)
            if i is None or not self._const(i):
                continue
            value = self._source(i).tensor
            if "when_size" in constraint and value.size != constraint["when_size"]:
                continue
            problem = _violates(value.reshape(-1).tolist(), constraint)
            if problem:
                self._add("input_values", f"input {i} = {_show(value.tolist())} {problem}: "
                                          f"{constraint['why']}")

    def input_ranks(self, rule: dict) -> None:
        if self.shapes is None:
            return
        for key, constraint in rule.items():
            i = _index(self.inputs, key)
            if i is None:
                continue
            try:
                rank = self.shapes[self.inputs[i]].rank
            except KeyError:
                continue
            if rank is not None and rank in constraint.get("not_in", ()):
                self._add("input_ranks", f"input {i} has rank {rank}: {constraint['why']}")


def _plain(value):
    from graphtool.attrs import Shape
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Shape):
        return value.dims
    if isinstance(value, tuple):
        return list(value)
    return value


def _show(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _violates(value, constraint: dict) -> str | None:
    """Why ``value`` breaks ``constraint`` ("is not ..."), or None when it does not."""
    if "equals" in constraint and value != constraint["equals"]:
        return f"is not {constraint['equals']!r}"
    if "in" in constraint and value not in constraint["in"]:
        return "is not one of " + ", ".join(str(v) for v in constraint["in"])
    if "all" in constraint and isinstance(value, list) and any(
            v != constraint["all"] for v in value):
        return f"is not all {constraint['all']}"
    if "length" in constraint and isinstance(value, list) and len(value) not in constraint["length"]:
        return f"has {len(value)} values, not {' or '.join(map(str, constraint['length']))}"
    for key, wanted in (constraint.get("pairs") or {}).items():
        if isinstance(value, list) and value:
            i = int(key)
            if -len(value) <= i < len(value) and value[i] != wanted:
                return f"has {value[i]} at position {key}, not {wanted}"
    if constraint.get("fully_known") and (value is None or any(
            d is None or d < 0 for d in value)):
        return "is not fully known"
    return None


def _const_storage(graph, node, spec: dict, target: Target, findings: list) -> None:
    """Consts this node reads must list every value: in tensor_content, or one typed value
    per element (a splat or an empty list is what the target misreads)."""
    import math

    from graphtool.attrs import shape_of
    from graphtool.dtypes import as_dtype
    from graphtool.tensors import _VAL_FIELD

    typed = {_index(list(node.data_inputs), k) for k in (spec.get("typed_inputs") or {})}
    for i, tensor in enumerate(node.data_inputs):
        if i in typed or not _is_const(graph, tensor, target.transparent):
            continue
        proto = _producer(graph, tensor, target.transparent).proto.attr["value"].tensor
        field = _VAL_FIELD.get(as_dtype(proto.dtype))
        shape = shape_of(proto.tensor_shape)
        if proto.tensor_content or field in (None, "string_val", "bool_val") or shape is None:
            continue
        count, stored = math.prod(shape), len(getattr(proto, field))
        if count and stored != count:
            findings.append(Finding(
                node.name, node.op, "const_storage",
                f"input {i} ({tensor!r}) stores {stored} value{'s' * (stored != 1)} in {field} "
                f"for {count} elements: {target.const_storage_why}"))


def format_findings(findings: list[Finding], graph_name: str = "") -> str:
    """A readable report: one line per finding, grouped by op, with a count."""
    if not findings:
        return f"{graph_name}: no problems found".lstrip(": ")
    lines = [f"{graph_name}: {len(findings)} problem{'s' * (len(findings) != 1)}".lstrip(": ")]
    for finding in sorted(findings, key=lambda f: (f.op, f.node, f.check)):
        lines.append(f"  {finding}")
    return "\n".join(lines)


__all__ = ["Finding", "Target", "format_findings", "lint", "load_target"]
