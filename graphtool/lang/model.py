"""What a loaded rule file is: stages of rules, each rule a pattern + replacement or an action.

These objects are built by ``graphtool.lang.loader`` from validated YAML and
are immutable in spirit: the driver reads them, never changes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.lang.source import Position


@dataclass
class RuleTest:
    """A test that lives with the rules: a graph, expected fire counts, ops, numerics."""
    file: str                    # the rule file declaring the test
    graph: str                   # absolute path of the frozen graph
    position: Position
    rule: str | None = None      # rule-level test: the rule under test
    fires: object = None         # int (rule-level) or {rule id: int} (file-level)
    alone: bool = False          # run only ``rule`` instead of the whole rule set
    present: list = field(default_factory=list)
    absent: list = field(default_factory=list)
    numeric: bool | None = None  # None: check when TensorFlow knows every op of the result
    rtol: float = 1e-5
    atol: float = 1e-5
    input_shapes: dict = field(default_factory=dict)
    description: str = ""

    @property
    def label(self) -> str:
        import os
        who = self.rule or os.path.basename(self.file)
        return f"{who} on {os.path.basename(self.graph)}"


@dataclass
class Rule:
    """One rule: ``pattern`` + ``replacement`` (with conditions), or a built-in ``action``."""
    id: str
    file: str
    position: Position
    order: int                       # position in load order, the tie-breaker
    stage: str = "main"
    description: str = ""
    priority: int = 0
    once: bool = False
    enabled: bool = True
    pattern: object = None           # graphtool.match.pattern.Pattern
    conditions: list = field(default_factory=list)
    lets: dict = field(default_factory=dict)   # name -> Computed, evaluated lazily per match
    control: str = "keep"
    replacement: object = None       # graphtool.rewrite.replacement.Replacement
    action: str | None = None
    args: dict = field(default_factory=dict)
    tests: list = field(default_factory=list)

    @property
    def is_action(self) -> bool:
        return self.action is not None


@dataclass
class Stage:
    name: str
    description: str = ""
    max_passes: int | None = None
    rules: list = field(default_factory=list)

    @property
    def actions(self) -> list[Rule]:
        return [r for r in self.rules if r.is_action and r.enabled]

    @property
    def patterns(self) -> list[Rule]:
        """Enabled pattern rules, highest priority first, ties in load order."""
        rules = [r for r in self.rules if not r.is_action and r.enabled]
        return sorted(rules, key=lambda r: (-r.priority, r.order))


@dataclass
class RuleSet:
    """Everything loaded from one or more rule files (includes resolved)."""
    stages: list[Stage]
    files: list[str]
    tests: list[RuleTest] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def rules(self) -> list[Rule]:
        """All rules in load order."""
        return sorted((r for s in self.stages for r in s.rules), key=lambda r: r.order)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise GraphtoolError(f"no rule {rule_id!r} in {', '.join(self.files)}"
                             + did_you_mean(rule_id, [r.id for r in self.rules]))

    def all_tests(self) -> list[RuleTest]:
        return [t for r in self.rules for t in r.tests] + list(self.tests)

    def subset(self, rule_ids) -> "RuleSet":
        """The same stages holding only the given rules (for isolated tests and explain)."""
        wanted = set(rule_ids)
        stages = [Stage(s.name, s.description, s.max_passes, [r for r in s.rules if r.id in wanted])
                  for s in self.stages]
        return RuleSet(stages, self.files, [], list(self.warnings))

    def until_stage(self, stage: str) -> "RuleSet":
        """Only the stages that run before ``stage``."""
        names = [s.name for s in self.stages]
        return RuleSet(self.stages[:names.index(stage)], self.files, [], list(self.warnings))
