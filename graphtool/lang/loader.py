"""Loading rule files: YAML with positions -> schema check -> includes -> compiled rules.

Everything that can be wrong with a rule file is found here, before any graph
is touched: YAML syntax, unknown keys and wrong types (via the JSON Schema),
include cycles, unknown stages, actions and helpers, unbound names in
expressions, malformed patterns and replacements.  Each error is one line with
``file:line:column``.  Things that are legal but suspicious (a capture never
used, a replacement that re-creates its own pattern) become warnings.
"""
from __future__ import annotations

import importlib
import os

from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.graph import Graph
from graphtool.lang import validate
from graphtool.lang.computed import compile_condition, compile_call, ExprValue, expression, Literal
from graphtool.lang.model import Rule, RuleSet, RuleTest, Stage
from graphtool.lang.source import read_yaml
from graphtool.match.matcher import Matcher
from graphtool.match.pattern import compile_pattern

DEFAULT_STAGE = "main"
_PATTERN_KEYS = ("pattern", "replace", "where", "let", "root", "control_inputs")


def load_rules(*paths) -> RuleSet:
    """Load one or more rule files (their includes too) into a RuleSet."""
    if not paths:
        raise GraphtoolError("no rule file given; pass at least one .yaml rule file")
    loader = _Loader()
    for path in paths:
        loader.load_file(os.fspath(path), None, [], None)
    return loader.finish()


class _Loader:
    def __init__(self):
        self.files: list[str] = []
        self.seen: set[str] = set()
        self.stage_lists: list[tuple] = []     # (file, [names], smap)
        self.stage_info: dict[str, Stage] = {}
        self.rules: list[Rule] = []
        self.ids: dict[str, Rule] = {}
        self.tests: list[RuleTest] = []
        self.file_fires: list[tuple] = []      # (test, smap, path) to check ids at the end
        self.warnings: list[str] = []

    # -- files ------------------------------------------------------------------
    def load_file(self, path: str, default_stage, stack: list[str], included_at) -> None:
        real = os.path.realpath(path)
        if real in stack:
            chain = " -> ".join(os.path.basename(p) for p in stack[stack.index(real):] + [real])
            raise GraphtoolError(f"{included_at}: include cycle: {chain}; remove one include")
        if real in self.seen:
            return
        self.seen.add(real)
        data, smap = read_yaml(path)
        if data is None:
            raise GraphtoolError("the rule file is empty; it needs at least rules: or include:",
                                 path=path)
        if not isinstance(data, dict):
            raise smap.error((), "a rule file is a mapping with keys such as rules:, include:, "
                             "stages:")
        validate.check(data, smap)
        self.files.append(path)
        for i, module in enumerate(data.get("python", [])):
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
                raise smap.error(("python", i), f"cannot import {module!r}: "
                                 f"{type(exc).__name__}: {exc}") from None
        self._stages(data.get("stages"), path, smap)
        base = os.path.dirname(path)
        for i, item in enumerate(data.get("include", [])):
            target, stage = (item, None) if isinstance(item, str) else (item["file"],
                                                                        item.get("stage"))
            full = os.path.normpath(os.path.join(base, target))
            if not os.path.exists(full):
                raise smap.error(("include", i), f"included file {target!r} does not exist "
                                 f"(looked for {full})")
            self.load_file(full, stage or default_stage, stack + [real], smap.at(("include", i)))
        for i, spec in enumerate(data.get("rules", [])):
            self._rule(spec, smap, ("rules", i), path, default_stage)
        for i, spec in enumerate(data.get("tests", [])):
            test = self._test(spec, smap, ("tests", i), path, None)
            self.tests.append(test)
            self.file_fires.append((test, smap, ("tests", i, "fires")))

    def _stages(self, stages, path, smap) -> None:
        if not stages:
            return
        names = []
        for i, item in enumerate(stages):
            info = Stage(item) if isinstance(item, str) else Stage(
                item["name"], item.get("description", ""), item.get("max_passes"))
            if info.name in names:
                raise smap.error(("stages", i), f"stage {info.name!r} is listed twice")
            names.append(info.name)
            known = self.stage_info.get(info.name)
            if known is None or (not known.description and known.max_passes is None):
                self.stage_info[info.name] = info
        self.stage_lists.append((path, names, smap))

    # -- rules --------------------------------------------------------------------
    def _rule(self, spec: dict, smap, path, file, default_stage) -> None:
        rid = spec["id"]
        if rid in self.ids:
            first = self.ids[rid].position
            raise smap.error(path + ("id",), f"rule id {rid!r} is already used at {first}; "
                             "rule ids must be unique")
        rule = Rule(rid, file, smap.at(path), len(self.rules),
                    stage=spec.get("stage") or default_stage,
                    description=spec.get("description", ""), once=spec.get("once", False),
                    enabled=spec.get("enabled", True))
        if "action" in spec:
            self._action_rule(rule, spec, smap, path)
        else:
            self._pattern_rule(rule, spec, smap, path)
        rule.tests = [self._test(t, smap, path + ("tests", i), file, rid)
                      for i, t in enumerate(spec.get("tests", []))]
        self.rules.append(rule)
        self.ids[rid] = rule

    def _action_rule(self, rule: Rule, spec, smap, path) -> None:
        from graphtool.rewrite.actions import check_args, action
        extra = [k for k in _PATTERN_KEYS if k in spec]
        if extra:
            raise smap.error(path + (extra[0],), f"rule {rule.id!r} runs an action; {extra[0]}: "
                             "belongs to pattern rules", key=True)
        try:
            action(spec["action"])
        except GraphtoolError as exc:
            raise smap.error(path + ("action",), str(exc)) from None
        problem = check_args(spec["action"], spec.get("args", {}))
        if problem:
            raise smap.error(path + ("args",), problem)
        rule.action, rule.args = spec["action"], dict(spec.get("args", {}))
        rule.priority = spec.get("priority", 0)

    def _pattern_rule(self, rule: Rule, spec, smap, path) -> None:
        from graphtool.rewrite.replacement import compile_replacement
        for key in ("pattern", "replace"):
            if key not in spec:
                raise smap.error(path, f"rule {rule.id!r} needs pattern: and replace: (or "
                                 f"action: for a built-in step); {key}: is missing")
        if "args" in spec:
            raise smap.error(path + ("args",), "args: belongs to action rules", key=True)
        pattern = compile_pattern(spec["pattern"], smap, path + ("pattern",), spec.get("root"))
        names = set(pattern.captures)
        for name, value in spec.get("let", {}).items():
            at = path + ("let", name)
            if name in names:
                raise smap.error(at, f"let: {name!r} has the name of a capture; choose another",
                                 key=True)
            rule.lets[name] = (ExprValue(expression(value, smap, at, names))
                               if isinstance(value, str) else
                               compile_call(value, smap, at, names) if isinstance(value, dict)
                               else Literal(value))
            names.add(name)
        rule.conditions = [compile_condition(c, smap, path + ("where", i), names)
                           for i, c in enumerate(spec.get("where", []))]
        rule.pattern = pattern
        rule.control = spec.get("control_inputs", "keep")
        rule.replacement = compile_replacement(spec["replace"], smap, path + ("replace",),
                                               pattern, list(rule.lets))
        rule.priority = spec.get("priority", pattern.size)
        self._lint(rule, smap, path)

    def _lint(self, rule: Rule, smap, path) -> None:
        pattern = rule.pattern
        used = set(rule.replacement.names_used)
        for computed in list(rule.lets.values()) + rule.conditions:
            used.update(computed.names_used)
        counts: dict[str, int] = {}
        for node in pattern.nodes.values():
            for ref in node.inputs or []:
                if ref.name:
                    counts[ref.name] = counts.get(ref.name, 0) + 1
        for leaf in pattern.leaves:
            if counts.get(leaf, 0) == 1 and leaf not in used:
                self.warnings.append(f"{smap.at(path + ('pattern',))}: rule {rule.id!r}: capture "
                                     f"{leaf!r} is never used again; write '_' for an input you "
                                     "do not need")
        for name in rule.lets:
            if name not in used:
                self.warnings.append(f"{smap.at(path + ('let', name), key=True)}: rule "
                                     f"{rule.id!r}: let {name!r} is never used")
        if not rule.once and _recreates_pattern(pattern, rule.replacement):
            self.warnings.append(f"{smap.at(path + ('replace',))}: rule {rule.id!r}: the "
                                 "replacement contains the rule's own pattern, so it may fire on "
                                 "its own output until the pass cap; make the pattern stricter "
                                 "or set once: true")

    # -- tests --------------------------------------------------------------------
    def _test(self, spec, smap, path, file, rule_id) -> RuleTest:
        base = os.path.dirname(os.path.abspath(file))
        return RuleTest(
            file=file, graph=os.path.normpath(os.path.join(base, spec["graph"])),
            position=smap.at(path), rule=rule_id, fires=spec.get("fires"),
            alone=spec.get("alone", False), present=list(spec.get("present", [])),
            absent=list(spec.get("absent", [])), numeric=spec.get("numeric"),
            rtol=float(spec.get("rtol", 1e-5)), atol=float(spec.get("atol", 1e-5)),
            input_shapes=dict(spec.get("input_shapes", {})),
            description=spec.get("description", ""))

    # -- finishing ----------------------------------------------------------------
    def finish(self) -> RuleSet:
        order = self._stage_order()
        stages = [self.stage_info[name] for name in order] or [Stage(DEFAULT_STAGE)]
        by_name = {s.name: s for s in stages}
        for rule in self.rules:
            if rule.stage is None:
                if order:
                    raise GraphtoolError(f"{rule.position}: rule {rule.id!r} names no stage; "
                                         f"this rule set has stages {', '.join(order)}: add "
                                         "stage: (or include its file with a stage)")
                rule.stage = DEFAULT_STAGE
            if rule.stage not in by_name:
                known = list(by_name)
                raise GraphtoolError(f"{rule.position}: rule {rule.id!r} is in stage "
                                     f"{rule.stage!r}, which no stages: list declares"
                                     + (did_you_mean(rule.stage, known)
                                        or f"; stages: {', '.join(known)}"))
            by_name[rule.stage].rules.append(rule)
        for test, smap, path in self.file_fires:
            for rid in (test.fires or {}):
                if rid not in self.ids:
                    raise smap.error(path + (rid,), f"test expects fires of rule {rid!r}, which "
                                     "does not exist" + did_you_mean(rid, self.ids), key=True)
        return RuleSet(stages, self.files, self.tests, self.warnings)

    def _stage_order(self) -> list[str]:
        merged: list[str] = []
        for _, names, _ in self.stage_lists:
            merged.extend(n for n in names if n not in merged)
        for file, names, smap in self.stage_lists:
            positions = [merged.index(n) for n in names]
            if positions != sorted(positions):
                raise smap.error(("stages",), f"the stage order here ({', '.join(names)}) "
                                 f"contradicts the order of other files ({', '.join(merged)})")
        return merged


def _recreates_pattern(pattern, replacement) -> bool:
    """Whether the replacement's own wiring has the pattern's shape (ops and edges only)."""
    if replacement.kind != "nodes":
        return False
    from graphtool.rewrite.edit import CONST_OP
    graph = Graph()
    tensors: dict[str, str] = {}

    def source() -> str:
        return graph.add_node("<tensor>", graph.fresh_name("t")).name

    def capture(name: str) -> list[str]:
        if name in pattern.rests:
            return [source(), source()]
        if name not in tensors:
            node = pattern.nodes.get(name)
            if node is None or node.ops is None:
                tensors[name] = source()
            else:
                inputs = [source() for r in node.inputs or [] if not r.variadic]
                tensors[name] = graph.add_node(sorted(node.ops)[0], graph.fresh_name(name),
                                               inputs).name
        return [tensors[name]]

    made: dict[str, str] = {}
    for key in replacement.order:
        new = replacement.nodes[key]
        inputs = []
        for ref in new.inputs:
            base = [made[ref.name]] if ref.name in made else capture(ref.name)
            inputs.extend(f"{b}:{ref.port}" if ref.port else b for b in base)
        like = pattern.nodes.get(new.like) if new.like else None
        op = CONST_OP if new.const is not None else new.op or (
            sorted(like.ops)[0] if like is not None and like.ops else "<copy>")
        made[key] = graph.add_node(op, graph.fresh_name("new_" + key), inputs).name
    matcher = Matcher(pattern, structural=True)
    return matcher.match(graph, graph.node(made[replacement.root])) is not None
