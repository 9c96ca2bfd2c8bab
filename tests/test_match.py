"""The matcher on real frozen graphs: ops, commutativity, variadic inputs, ports,
attr and Const constraints, where:, containment, control-input policy and explain."""
from __future__ import annotations

import numpy as np
import pytest

from graphtool.match import Matcher, Tracer
from graphtool.rewrite import explain, rewrite
from graphtool.rewrite.edit import OpIndex
from tf_graphs import const, frozen, rules_from, waited_on

import tensorflow  # noqa: E402,F401 - a real dependency: missing it fails


def outcomes(graph, rules, rule_id="r", nodes=None) -> dict:
    return {e.root: e for e in explain(graph, rules, rule_id, nodes=nodes)}


@pytest.fixture(scope="module")
def leaky_graph(tmp_path_factory):
    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [1, 4, 4, 3], name="x")
        y = tf.compat.v1.placeholder(tf.float32, [1, 4, 4, 3], name="y")
        a = tf.maximum(x, tf.multiply(x, 0.2, name="xa"), name="a")           # x * alpha
        b = tf.maximum(tf.multiply(tf.constant(0.1, name="k"), a, name="ab"), a, name="b")
        c = tf.maximum(b, tf.multiply(y, 0.2, name="yc"), name="c")          # different x
        d = tf.maximum(c, tf.multiply(c, 3.0, name="cd"), name="d")          # alpha > 1
        return ["d"]
    return frozen(tmp_path_factory.mktemp("leaky"), "leaky", build)


LEAKY = """
rules:
  - id: r
    pattern:
      m: {op: Mul, inputs: [x, alpha], commutative: true}
      alpha: {op: Const, const: {scalar: true}}
      r: {op: Maximum, inputs: [x, m], commutative: true}
    where: ["value(alpha) < 1"]
    replace:
      r: {op: LeakyRelu, inputs: [x], attrs: {alpha: {expr: "float(alpha)"}}}
"""


def test_commutative_inputs_and_the_same_capture_twice(tmp_path, leaky_graph):
    found = outcomes(leaky_graph, rules_from(tmp_path, LEAKY))
    assert found["a"].matched and found["a"].bindings["x"] == "x"
    assert found["b"].matched and found["b"].bindings == {
        "r": "b", "m": "ab", "alpha": "k", "x": "a"}
    # c = max(b, y * 0.2): x would have to be both b and y.
    assert not found["c"].matched
    assert "'x' is already" in found["c"].reason
    # d = max(c, 3 * c): the structure matches, where: rejects it.
    assert not found["d"].matched and found["d"].reason == "where: value(alpha) < 1 is false"


def test_without_commutative_only_the_written_order_matches(tmp_path, leaky_graph):
    rules = rules_from(tmp_path, LEAKY.replace(", commutative: true}", "}"))
    found = outcomes(leaky_graph, rules)
    assert found["a"].matched                 # max(x, mul(x, alpha)) as written
    assert not found["b"].matched             # max(mul(alpha, a), a): both swapped
    assert found["b"].failed_at in ("m", "x")


def test_commutative_positions_list(tmp_path, leaky_graph):
    rules = rules_from(tmp_path, LEAKY.replace(
        "m: {op: Mul, inputs: [x, alpha], commutative: true}",
        "m: {op: Mul, inputs: [x, alpha], commutative: [0, 1]}"))
    assert outcomes(leaky_graph, rules)["b"].matched


@pytest.fixture(scope="module")
def concat_graph(tmp_path_factory):
    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [1, 2, 2, 2], name="x")
        a, b, c = tf.nn.relu(x, name="a"), tf.sigmoid(x, name="b"), tf.tanh(x, name="c")
        inner = tf.concat([b, c], 3, name="inner")
        tf.concat([a, inner, x, a], 3, name="outer")
        parts = tf.split(x, 2, axis=3, name="split")
        tf.concat([parts[1], parts[0]], 3, name="swap")
        return ["outer", "swap"]
    return frozen(tmp_path_factory.mktemp("concat"), "concat", build)


def test_variadic_inputs_capture_the_rest(tmp_path, concat_graph):
    rules = rules_from(tmp_path, """
        rules:
          - id: r
            pattern:
              inner: {op: ConcatV2, inputs: [...inner_values, axis_in]}
              outer: {op: ConcatV2, inputs: [...before, inner, ...after, axis]}
            replace: inner
        """)
    found = outcomes(concat_graph, rules)
    assert found["outer"].matched
    bound = found["outer"].bindings
    assert bound["before"] == ["a"] and bound["after"] == ["x", "a"]
    assert bound["inner_values"] == ["b", "c"] and bound["axis"] == "outer/axis"
    assert not found["inner"].matched          # its inputs are not concats
    assert not found["swap"].matched


def test_uncaptured_variadic_and_anonymous_inputs(tmp_path, concat_graph):
    rules = rules_from(tmp_path, """
        rules:
          - id: r
            pattern:
              c: {op: ConcatV2, inputs: [first, ..., _]}
            replace: first
        """)
    found = outcomes(concat_graph, rules)
    assert found["outer"].bindings == {"c": "outer", "first": "a"}
    assert found["swap"].bindings == {"c": "swap", "first": "split:1"}


def test_output_ports(tmp_path, concat_graph):
    rules = rules_from(tmp_path, """
        rules:
          - id: r
            pattern:
              s: {op: Split, inputs: [_, x]}
              c: {op: ConcatV2, inputs: ["s:1", "s:0", _]}
            replace: x
        """)
    found = outcomes(concat_graph, rules)
    assert found["swap"].matched and found["swap"].bindings["s"] == "split"
    rules = rules_from(tmp_path, """
        rules:
          - id: r
            pattern:
              s: {op: Split, inputs: [_, x]}
              c: {op: ConcatV2, inputs: [s, "s:1", _]}
            replace: x
        """, name="r2.yaml")
    found = outcomes(concat_graph, rules)
    assert not found["swap"].matched
    assert "output 1 of 'split'; write s:1 to match it" in found["swap"].reason


@pytest.fixture(scope="module")
def conv_graph(tmp_path_factory):
    rng = np.random.default_rng(0)

    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3], name="x")
        a = tf.nn.conv2d(x, const(tf, rng, [3, 3, 3, 4], name="wa"), 1, "SAME", name="a")
        b = tf.nn.conv2d(a, const(tf, rng, [3, 3, 4, 4], name="wb"), 2, "VALID", name="b")
        c = tf.nn.conv2d(b, tf.ones([1, 1, 4, 2], name="wc"), 1, "SAME", dilations=2, name="c")
        return [tf.identity(c, name="out").name.split(":")[0]]
    return frozen(tmp_path_factory.mktemp("conv"), "conv", build)


@pytest.mark.parametrize("constraint, matches", [
    ("padding: SAME", {"a", "c"}),
    ("padding: {eq: VALID}", {"b"}),
    ("padding: {in: [VALID, EXPLICIT]}", {"b"}),
    ("padding: {not: SAME}", {"b"}),
    ("padding: {not_in: [SAME]}", {"b"}),
    ("padding: {regex: 'S.M.'}", {"a", "c"}),
    ("strides: [1, 2, 2, 1]", {"b"}),
    ("dilations: {not: [1, 1, 1, 1]}", {"c"}),
    ("T: float32", {"a", "b", "c"}),
    ("T: {in: [float16, int32]}", set()),
    ("explicit_paddings: {present: true}", {"a", "b", "c"}),
    ("no_such_attr: {present: false}", {"a", "b", "c"}),
    ("no_such_attr: {present: true}", set()),
    ("use_cudnn_on_gpu: true", {"a", "b", "c"}),
])
def test_attr_constraints(tmp_path, conv_graph, constraint, matches):
    rules = rules_from(tmp_path, f"""
        rules:
          - id: r
            pattern:
              conv: {{op: Conv2D, inputs: [x, _], attrs: {{{constraint}}}}}
            replace: x
        """)
    found = outcomes(conv_graph, rules)
    assert {root for root, e in found.items() if e.matched} == matches


def test_numeric_attr_range(tmp_path, leaky_graph):
    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        tf.nn.leaky_relu(tf.nn.leaky_relu(x, 0.1, name="low"), 0.5, name="high")
        return ["high"]
    graph = frozen(tmp_path, "lr", build)
    rules = rules_from(tmp_path, """
        rules:
          - id: r
            pattern:
              l: {op: LeakyRelu, inputs: [x], attrs: {alpha: {min: 0.05, max: 0.2}}}
            replace: x
        """)
    found = outcomes(graph, rules)
    assert found["low"].matched and not found["high"].matched
    assert "attr alpha=0.5 fails max 0.2" in found["high"].reason


@pytest.mark.parametrize("constraint, matches", [
    ("dtype: float32", {"a", "b", "c"}),
    ("dtype: [int32, float16]", set()),
    ("rank: 4", {"a", "b", "c"}),
    ("shape: [3, 3, null, 4]", {"a", "b"}),
    ("shape: [1, 1, 4, 2]", {"c"}),
    ("scalar: false", {"a", "b", "c"}),
    ("all_equal: true", {"c"}),
    ("value: 1.0", {"c"}),
    ("value: 1.0000001", {"c"}),
    ("{value: 1.01, rtol: 0.02}", {"c"}),
    ("value: 1.01", set()),
    ("max_elements: 8", {"c"}),
])
def test_const_constraints(tmp_path, conv_graph, constraint, matches):
    spec = constraint if constraint.startswith("{") else "{" + constraint + "}"
    rules = rules_from(tmp_path, f"""
        rules:
          - id: r
            pattern:
              w: {{op: Const, const: {spec}, shared: true}}
              conv: {{op: Conv2D, inputs: [x, w]}}
            replace: x
        """)
    found = outcomes(conv_graph, rules)
    assert {root for root, e in found.items() if e.matched} == matches


@pytest.mark.parametrize("storage, matches", [
    ("typed_values", {"splat", "scalar"}), ("tensor_content", {"array"})])
def test_const_storage(tmp_path, storage, matches):
    """TensorFlow itself decides the storage: a splat or scalar goes to float_val, a
    numpy array of distinct values to tensor_content."""
    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        a = tf.multiply(x, tf.constant(0.5, shape=[4]), name="splat")
        b = tf.multiply(a, tf.constant(2.0), name="scalar")
        tf.multiply(b, tf.constant(np.arange(4, dtype=np.float32)), name="array")
        return ["array"]
    graph = frozen(tmp_path, "storage", build)
    rules = rules_from(tmp_path, f"""
        rules:
          - id: r
            pattern:
              c: {{op: Const, const: {{storage: {storage}}}}}
              m: {{op: Mul, inputs: [x, c]}}
            replace: x
        """)
    found = outcomes(graph, rules)
    assert {root for root, e in found.items() if e.matched} == matches
    if storage == "tensor_content":
        assert "stored in typed_values, not tensor_content" in found["splat"].reason


def test_containment_blocks_inner_nodes_used_outside_unless_shared(tmp_path):
    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        inner = tf.nn.relu(x, name="inner")
        tf.negative(inner, name="root")
        tf.abs(inner, name="other")
        return ["root", "other"]
    graph = frozen(tmp_path, "shared", build)
    text = """
        rules:
          - id: r
            pattern:
              inner: {op: Relu, inputs: [x]SHARED}
              root: {op: Neg, inputs: [inner]}
            replace: x
        """
    found = outcomes(graph, rules_from(tmp_path, text.replace("SHARED", "")))
    assert not found["root"].matched
    assert found["root"].reason == ("node 'inner' (inner) is also read by 'other' outside the "
                                    "match; mark inner shared: true to allow it")
    found = outcomes(graph, rules_from(tmp_path, text.replace("SHARED", ", shared: true"), "s.yaml"))
    assert found["root"].matched


def test_control_input_policies(tmp_path):
    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        inner = tf.nn.relu(x, name="inner")
        with tf.control_dependencies([inner]):
            waiter = tf.no_op(name="waiter")
        with tf.control_dependencies([waiter]):
            root = tf.negative(inner, name="root")
        return ["root"]
    graph = frozen(tmp_path, "control", build)
    base = """
        rules:
          - id: r
            control_inputs: POLICY
            pattern:
              inner: {op: Relu, inputs: [x]}
              root: {op: Neg, inputs: [inner]}
            replace: x
        """
    # keep and drop: a control edge from outside does not block (the rewrite re-points or
    # drops it); forbid: matched nodes may have no control edges at all.
    keep = outcomes(graph, rules_from(tmp_path, base.replace("POLICY", "keep"), "k.yaml"))
    assert keep["root"].matched
    drop = outcomes(graph, rules_from(tmp_path, base.replace("POLICY", "drop"), "d.yaml"))
    assert drop["root"].matched
    forbid = outcomes(graph, rules_from(tmp_path, base.replace("POLICY", "forbid"), "f.yaml"))
    assert forbid["root"].reason == "node 'root' has control inputs (control_inputs: forbid)"
    inner_only = base.replace("POLICY", "forbid").replace("root: {op: Neg, inputs: [inner]}",
                                                          "neg: {op: Neg, inputs: [inner]}")
    graph_without = frozen(tmp_path, "control2", waited_on)
    forbid = outcomes(graph_without, rules_from(tmp_path, inner_only, "f2.yaml"))
    assert forbid["root"].reason == ("node 'inner' (inner) is also read by 'waiter' (control "
                                     "edge) outside the match; mark inner shared: true to allow it")



def test_op_alternatives_and_wildcards(tmp_path, leaky_graph):
    rules = rules_from(tmp_path, """
        rules:
          - id: r
            pattern:
              m: {op: "*", inputs: [_, _]}
              r: {op: [Minimum, Maximum], inputs: [_, m]}
            replace: m
        """)
    found = outcomes(leaky_graph, rules)
    assert found["a"].matched and found["c"].matched and not found["b"].matched


def test_explain_without_candidates_suggests_ops(tmp_path, leaky_graph):
    rules = rules_from(tmp_path, """
        rules:
          - id: r
            pattern:
              m: {op: Maximun, inputs: [x, _]}
            replace: x
        """)
    (only,) = explain(leaky_graph, rules, "r")
    assert only.root is None and "no node has op Maximun (did you mean 'Maximum'?)" in only.reason


def test_op_index_offers_only_nodes_of_the_root_op(leaky_graph):
    index = OpIndex(leaky_graph)
    assert index.candidates(frozenset({"Maximum"})) == ["a", "b", "c", "d"]
    within = index.ordered({"d", "xa", "x", "gone"})
    assert within == ["x", "xa", "d"]
    # A later pass's neighbourhood comes as a set; candidates come in graph order.
    around = {"d", "xa", "x", "gone"}
    assert index.candidates(frozenset({"Mul", "Maximum"}), around) == ["xa", "d"]
    assert index.candidates(None, around) == ["x", "xa", "d"]
    assert set(index.candidates(None)) == set(leaky_graph.names())


def test_op_index_knows_when_a_pattern_cannot_bind(tmp_path, leaky_graph):
    rules = rules_from(tmp_path, LEAKY)
    nodes = rules.rule("r").pattern.nodes.values()
    graph = leaky_graph.copy()
    index = OpIndex(graph)
    assert index.offers_each(nodes)
    graph.observe(index)
    for node in graph.nodes_by_op("Mul"):  # the pattern's m has nothing left to bind
        node.op = "Sub"
    assert not index.offers_each(nodes)
    graph.observe(None)
    assert rewrite(graph, rules).stats["fired"] == {}
    assert rewrite(leaky_graph, rules).stats["fired"] == {"r": 2}


def _same_order(index: OpIndex, graph) -> None:
    """``index`` offers what a fresh index of ``graph`` offers, in the same order."""
    fresh = OpIndex(graph)
    for op in {*fresh.by_op, *index.by_op}:
        assert index.candidates(frozenset({op})) == fresh.candidates(frozenset({op})), op
    everything = set(graph.names()) | {"gone"}
    assert index.ordered(everything) == fresh.ordered(everything)
    assert index.candidates(frozenset({"Mul", "Maximum", "Const"}), everything) == \
        fresh.candidates(frozenset({"Mul", "Maximum", "Const"}), everything)


def test_op_index_follows_the_graph_across_stages(leaky_graph):
    graph = leaky_graph.copy()
    index = OpIndex(graph)
    graph.observe(index)
    first = graph.names()[0]
    graph.add_node("Mul", "late", [first, first])       # new: last
    graph.node("b").op = "Mul"                          # another op: its place stays
    graph.rename("late", "later")                       # its place and serial stay
    graph.remove(["d", "cd"])
    graph.add_node("Const", "spare")
    graph.remove(["spare"])
    _same_order(index.settle(graph), graph)
    graph.add_node("Maximum", "spare", [first, first])  # dead since the last stage: last
    graph.node("a").op = "Const"
    assert index.settle(graph) is index
    _same_order(index, graph)
    graph.remove(["spare"])
    graph.add_node("Maximum", "spare", [first, first])  # back within a stage: rebuilt
    rebuilt = index.settle(graph)
    assert rebuilt is not index
    _same_order(rebuilt, graph)
    graph.observe(None)


def test_search_limit_is_a_reported_failure(tmp_path):
    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
        tf.add_n([x * float(i) for i in range(1, 9)], name="sum")
        return ["sum"]
    graph = frozen(tmp_path, "addn", build)
    rules = rules_from(tmp_path, """
        rules:
          - id: r
            pattern:
              s: {op: AddN, inputs: [a, b, c, ...], commutative: true}
            where: ["False"]
            replace: a
        """)
    rule = rules.rule("r")
    (result,) = explain(graph, rules, "r")
    assert result.reason == "where: False is false"      # 8*7*6 orders are within the limit
    tracer = Tracer()
    small = Matcher(rule.pattern, conditions=rule.conditions, max_steps=50)
    assert small.match(graph, graph.node("sum"), tracer=tracer) is None
    assert tracer.reason == "gave up after 50 search steps (too many commutative/variadic alternatives)"
