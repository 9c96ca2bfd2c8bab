"""The rewrite engine: load rule files, rewrite graphs, explain rules, run rule tests.

    from graphtool.rewrite import load_rules, rewrite, explain, run_rule_tests
    rules = load_rules("rules/examples/pipeline.yaml")
    result = rewrite(graph, rules)            # graph itself is never modified
    result.graph, result.log, result.stats
"""
from graphtool.lang.functions import register_function
from graphtool.lang.loader import load_rules
from graphtool.lang.model import Rule, RuleSet, RuleTest, Stage
from graphtool.rewrite.actions import register_action
from graphtool.rewrite.driver import RewriteResult, rewrite
from graphtool.rewrite.edit import Edit
from graphtool.rewrite.explain import Explanation, explain


def run_rule_tests(paths, **options):
    """Run the tests declared in rule files; returns a list of RuleTestResult."""
    from graphtool.rewrite.testing import run_rule_tests as run
    return run(paths, **options)


__all__ = ["Edit", "Explanation", "RewriteResult", "Rule", "RuleSet", "RuleTest", "Stage",
           "explain", "load_rules", "register_action", "register_function", "rewrite",
           "run_rule_tests"]
