"""Every test declared in rules/**/*.yaml runs here, one pytest item per rule test."""
from __future__ import annotations

from pathlib import Path

import pytest

from graphtool.errors import GraphtoolError
from graphtool.rewrite import load_rules
from graphtool.rewrite.testing import collect, run_test

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = sorted((ROOT / "rules").rglob("*.yaml"))


def _cases():
    for path in RULE_FILES:
        name = str(path.relative_to(ROOT))
        try:
            found = collect([path])
        except GraphtoolError as exc:  # reported by the item below, not at collection
            yield pytest.param(None, exc, id=f"{name}:load")
            continue
        for rules, test in found:
            yield pytest.param(rules, test, id=f"{name}:{test.position.line}:{test.label}")


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_rule_file_loads_without_warnings(path):
    rules = load_rules(path)
    assert rules.warnings == []
    assert rules.rules, "a rule file in rules/ should hold at least one rule"


@pytest.mark.parametrize("rules, test", list(_cases()))
def test_rule(rules, test):
    if rules is None:
        raise test
    import tensorflow  # noqa: F401 - a real dependency: missing it fails
    result = run_test(rules, test)
    assert result.passed, str(result)
