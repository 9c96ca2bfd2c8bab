"""Rule tests: the tests that live with the rules, run by ``graphtool test-rules`` and pytest.

A test names a frozen graph (relative to its rule file), how often a rule must
fire (0: must not match), ops that must be present or absent afterwards, and -
when TensorFlow knows every op of the result - a numerical check: TensorFlow
runs the graph before and after on the same input (the fixture's ``.npz``
reference input, else seeded random data) and the outputs must agree within
``atol + rtol * max|reference|``.  TensorFlow is imported only when a
numerical check runs.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from graphtool.errors import GraphtoolError
from graphtool.lang.loader import load_rules
from graphtool.lang.model import RuleSet, RuleTest


@dataclass
class RuleTestResult:
    test: RuleTest
    passed: bool
    failures: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    fired: dict = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        detail = "; ".join(self.failures if not self.passed else self.notes)
        return f"{status} {self.test.label} ({self.test.position})" + (f": {detail}" if detail
                                                                       else "")


def collect(paths) -> list[tuple[RuleSet, RuleTest]]:
    """The tests declared in the given rule files, each with the RuleSet of its file.

    Tests of included files run when those files are tested themselves.
    """
    found = []
    for path in paths:
        rules = load_rules(path)
        own = os.path.realpath(path)
        found.extend((rules, t) for t in rules.all_tests() if os.path.realpath(t.file) == own)
    return found


def run_rule_tests(paths, *, numeric: bool = True) -> list[RuleTestResult]:
    return [run_test(rules, test, numeric=numeric) for rules, test in collect(paths)]


def run_test(rules: RuleSet, test: RuleTest, *, numeric: bool = True) -> RuleTestResult:
    """Run one rule test; never raises for a failing expectation (it is in the result)."""
    import graphtool
    from graphtool.rewrite.driver import rewrite

    started = time.perf_counter()
    result = RuleTestResult(test, True)
    if not os.path.exists(test.graph):
        result.passed = False
        result.failures.append(f"test graph {test.graph} does not exist")
        return result
    graph = graphtool.load(test.graph)
    signature = _signature(graph, test)
    if signature is not None:
        graph.outputs = [p.tensor for p in signature.outputs]
    used = rules.subset([test.rule]) if test.alone else rules
    shapes = {p.name: list(p.shape) for p in signature.inputs if p.shape} if signature else {}
    shapes.update(test.input_shapes)
    try:
        outcome = rewrite(graph, used, input_shapes=shapes)
    except GraphtoolError as exc:
        result.passed = False
        result.failures.append(f"the rewrite failed: {exc}")
        return result
    fired = outcome.stats["fired"]
    result.fired = dict(fired)
    expected = test.fires if isinstance(test.fires, dict) else (
        {test.rule: test.fires} if test.fires is not None else {})
    for rule_id, count in expected.items():
        if fired.get(rule_id, 0) != count:
            result.failures.append(f"rule {rule_id!r} fired {fired.get(rule_id, 0)} times, "
                                   f"expected {count}")
    ops = outcome.graph.op_histogram()
    result.failures += [f"op {op} is absent after the rewrite" for op in test.present
                        if op not in ops]
    result.failures += [f"op {op} is still present ({ops[op]} nodes)" for op in test.absent
                        if op in ops]
    if numeric and test.numeric is not False:
        _numeric(graph, outcome.graph, signature, test, result)
    result.passed = not result.failures
    result.seconds = time.perf_counter() - started
    return result


def _signature(graph, test: RuleTest):
    from graphtool.validate.signature import read_signature
    try:
        return read_signature(graph, test.graph, input_shapes=test.input_shapes)
    except GraphtoolError:
        return None


def unknown_to_tensorflow(graph) -> list[str]:
    """Ops of ``graph`` that TensorFlow has no kernel registration for."""
    from tensorflow.python.framework import op_def_registry
    return sorted(op for op in graph.op_histogram() if op_def_registry.get(op) is None)


def _numeric(before, after, signature, test: RuleTest, result: RuleTestResult) -> None:
    if signature is None:
        note = "numeric check skipped: the graph's input shapes are unknown (add input_shapes:)"
        (result.failures if test.numeric else result.notes).append(note)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out
    import tensorflow  # noqa: F401  (only now: the check needs it)
    unknown = unknown_to_tensorflow(after)
    if unknown:
        note = (f"numeric check skipped: TensorFlow does not know {', '.join(unknown)} in the "
                "result")
        (result.failures if test.numeric else result.notes).append(note)
        return
    from graphtool.freeze.tfrun import run_graph
    feeds = _feeds(signature, test)
    fetches = [p.tensor if ":" in p.tensor else p.tensor + ":0" for p in signature.outputs]
    want = run_graph(tf_graph_def(before), feeds, fetches)
    got = run_graph(tf_graph_def(after), feeds, fetches)
    worst = 0.0
    for port, w, g in zip(signature.outputs, want, got):
        w64, g64 = np.asarray(w, np.float64), np.asarray(g, np.float64)
        if w64.shape != g64.shape:
            result.failures.append(f"output {port.name} has shape {list(g64.shape)} after, "
                                   f"{list(w64.shape)} before")
            continue
        error = float(np.max(np.abs(w64 - g64))) if w64.size else 0.0
        limit = test.atol + test.rtol * (float(np.max(np.abs(w64))) if w64.size else 0.0)
        worst = max(worst, error)
        if not error <= limit:
            result.failures.append(f"output {port.name} differs by {error:.3g} (allowed "
                                   f"{limit:.3g})")
    result.notes.append(f"max abs error {worst:.3g}")


def tf_graph_def(graph):
    """The graph as TensorFlow's own GraphDef message (TensorFlow must be importable)."""
    import tensorflow as tf
    return tf.compat.v1.GraphDef.FromString(graph.serialize())


def _feeds(signature, test: RuleTest) -> dict:
    from graphtool.validate.feeds import npz_inputs, random_inputs
    reference = os.path.splitext(test.graph)[0] + ".npz"
    arrays = npz_inputs(reference, signature.inputs) if os.path.exists(reference) \
        else random_inputs(signature.inputs)
    by_name = {p.name: p.tensor for p in signature.inputs}
    return {(by_name[name] if ":" in by_name[name] else by_name[name] + ":0"): array
            for name, array in arrays.items()}
