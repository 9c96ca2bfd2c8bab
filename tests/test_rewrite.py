"""The driver and actions on real frozen graphs: fixed points, priorities, the pass cap,
transactional failures, the rewrite log, and outputs that TensorFlow computes the same."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import graphtool
from graphtool.errors import GraphtoolError
from graphtool.rewrite import load_rules, register_action, register_function, rewrite
from graphtool.rewrite.actions import SHAPES_HANDOFF
from tf_graphs import frozen, random_input, rules_from, run, waited_on

import tensorflow as tf  # noqa: E402 - a real dependency: missing it fails

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
EXAMPLES = ROOT / "rules" / "examples"


def reference(fixture: str):
    data = np.load(FIXTURES / f"{fixture}.npz")
    inputs = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("inputs/")}
    outputs = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("outputs/")}
    return inputs, outputs


@pytest.mark.parametrize("fixture", ["conv_bn_pool.k3", "depthwise.k3", "nested_functional.k3",
                                     "residual_concat.k3"])
def test_example_pipeline_matches_the_keras_reference(fixture):
    graph = graphtool.load(FIXTURES / f"{fixture}.pb")
    inputs, outputs = reference(fixture)
    result = rewrite(graph, load_rules(EXAMPLES / "pipeline.yaml"))
    assert result.stats["nodes_after"] < result.stats["nodes_before"]
    assert "Identity" not in result.graph.op_histogram()
    got = run(result.graph, inputs, outputs=list(outputs))
    for (name, want), value in zip(outputs.items(), got):
        np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_batchnorm_is_folded_into_the_convolution_weights():
    graph = graphtool.load(FIXTURES / "conv_bn_pool.k3.pb")
    result = rewrite(graph, load_rules(EXAMPLES / "batchnorm.yaml"))
    after = result.graph
    ops = after.op_histogram()
    assert "Rsqrt" not in ops and "Sub" not in ops and ops["Conv2D"] == 1
    # The root keeps its name, so the Relu still reads it.
    root = "conv_bn_pool_1/bn_1/batchnorm/add_1"
    assert after.node(root).op == "BiasAdd"
    assert after.node("conv_bn_pool_1/relu_1/Relu").inputs == (root,)
    # W' = W * gamma / sqrt(var + eps) along the output channels, from the original Consts.
    before = {n.name: n for n in graph.nodes}
    bn = "conv_bn_pool_1/bn_1/Cast{}/ReadVariableOp/resource"
    mean, var, gamma, beta = (before[bn.format(s)].tensor for s in ("", "_1", "_2", "_3"))
    eps = before["conv_bn_pool_1/bn_1/batchnorm/add/y"].tensor
    scale = gamma / np.sqrt(var + eps)
    w = before["conv_bn_pool_1/conv_1/convolution/ReadVariableOp/resource"].tensor
    conv = after.node(after.node(root).data_inputs[0])
    new_w = after.node(conv.data_inputs[1]).tensor
    np.testing.assert_allclose(new_w, w * scale, rtol=1e-6)
    b = before["conv_bn_pool_1/conv_1/Reshape/ReadVariableOp/resource"].tensor
    new_b = after.node(after.node(root).data_inputs[1]).tensor
    np.testing.assert_allclose(new_b, (b - mean) * scale + beta, rtol=1e-5, atol=1e-6)


def test_gelu_collapses_into_one_node(tmp_path):
    graph = graphtool.load(FIXTURES / "act_gelu.k3.pb")
    result = rewrite(graph, load_rules(EXAMPLES / "pipeline.yaml"))
    (gelu,) = result.graph.nodes_by_op("Gelu")
    assert gelu.name == "act_gelu_1/gelu_1/Gelu/mul_2"
    assert result.graph.node(gelu.data_inputs[0]).op == "BiasAdd"
    assert {"Erfc", "Neg", "Mul"}.isdisjoint(result.graph.op_histogram())


def test_addv2_becomes_add_and_tensorflow_agrees():
    graph = graphtool.load(FIXTURES / "residual_concat.k3.pb")
    inputs, outputs = reference("residual_concat.k3")
    result = rewrite(graph, load_rules(EXAMPLES / "pipeline.yaml"))
    ops = result.graph.op_histogram()
    assert "AddV2" not in ops and ops["Add"] == 2
    got = run(result.graph, inputs, outputs=list(outputs))
    np.testing.assert_allclose(got[0], list(outputs.values())[0], rtol=1e-5, atol=1e-5)


def _chain(tf_):
    x = tf_.compat.v1.placeholder(tf_.float32, [3], name="x")
    y = x
    for i in range(5):
        y = tf_.identity(y, name=f"id{i}")
    z = tf_.subtract(0.0, tf_.subtract(0.0, tf_.nn.relu(y, name="relu"), name="s1"), name="s2")
    tf_.identity(z, name="out")
    return ["out"]


CASCADE = """
rules:
  - id: drop-identity
    pattern:
      i: {op: Identity, inputs: [x]}
    replace: x
  - id: zero-minus-to-neg
    pattern:
      zero: {op: Const, const: {value: 0}, shared: true}
      s: {op: Sub, inputs: [zero, x]}
    replace:
      s: {op: Neg, inputs: [x], attrs: {T: {copy: s}}}
  - id: double-neg
    priority: 5
    pattern:
      inner: {op: Neg, inputs: [x]}
      outer: {op: Neg, inputs: [inner]}
    replace: x
"""


def test_fixed_point_across_passes_and_priorities(tmp_path):
    graph = frozen(tmp_path, "chain", _chain)
    log = []
    result = rewrite(graph, rules_from(tmp_path, CASCADE), log=log)
    ops = result.graph.op_histogram()
    assert set(ops) == {"Placeholder", "Relu"}, ops  # the zero Consts died with the Subs
    assert result.stats["fired"] == {"drop-identity": 6, "zero-minus-to-neg": 2, "double-neg": 1}
    # double-neg (highest priority) only finds its pattern after the Subs became Negs.
    assert result.stats["passes"]["main"] == 3
    assert [e["rule"] for e in log][-1] == "double-neg"
    assert result.graph.outputs == ["out"] and result.graph.node("out").op == "Relu"
    x = random_input(3)
    np.testing.assert_allclose(run(result.graph, {"x": x})[0], run(graph, {"x": x})[0])


def test_the_input_graph_is_never_modified(tmp_path):
    graph = frozen(tmp_path, "chain", _chain)
    before = graph.serialize()
    rewrite(graph, rules_from(tmp_path, CASCADE))
    assert graph.serialize() == before


def test_in_place_rewrite_gives_the_same_graph_without_a_copy():
    rules = load_rules(ROOT / "rules" / "opencv.yaml")
    copied = rewrite(graphtool.load(FIXTURES / "conv_bn_pool.k3.pb"), rules)
    graph = graphtool.load(FIXTURES / "conv_bn_pool.k3.pb")
    nodes_before = len(graph)
    in_place = rewrite(graph, rules, in_place=True)
    assert in_place.graph is graph and len(graph) < nodes_before
    assert in_place.graph.serialize() == copied.graph.serialize()
    assert in_place.log == copied.log


def test_rewrites_are_deterministic(tmp_path):
    graph = graphtool.load(FIXTURES / "depthwise.k3.pb")
    rules = load_rules(EXAMPLES / "pipeline.yaml")
    first, second = rewrite(graph, rules), rewrite(graph, rules)
    assert first.graph.serialize() == second.graph.serialize()
    assert first.log == second.log


def test_pass_cap_names_the_rules_still_firing(tmp_path):
    def build(tf_):
        x = tf_.compat.v1.placeholder(tf_.float32, [3], name="x")
        tf_.nn.relu(tf_.nn.elu(x, name="e"), name="r")
        return ["r"]
    graph = frozen(tmp_path, "pingpong", build)
    rules = rules_from(tmp_path, """
        rules:
          - id: relu-to-elu
            pattern: {r: {op: Relu, inputs: [x]}}
            replace: {r: {op: Elu, inputs: [x], attrs: {T: {copy: r}}}}
          - id: elu-to-relu
            pattern: {e: {op: Elu, inputs: [x]}}
            replace: {e: {op: Relu, inputs: [x], attrs: {T: {copy: e}}}}
        """)
    with pytest.raises(GraphtoolError) as info:
        rewrite(graph, rules, max_passes=4)
    message = str(info.value)
    assert "stage 'main' still changes the graph after 4 passes" in message
    assert "relu-to-elu (2 times)" in message and "elu-to-relu (2 times)" in message


def test_once_rules_run_in_the_first_pass_only(tmp_path):
    def build(tf_):
        x = tf_.compat.v1.placeholder(tf_.float32, [3], name="x")
        tf_.nn.relu(tf_.nn.relu(x, name="a"), name="b")
        return ["b"]
    graph = frozen(tmp_path, "relus", build)
    rules = rules_from(tmp_path, """
        rules:
          - id: wrap-relu
            once: true
            pattern: {r: {op: Relu, inputs: [x]}}
            replace:
              r: {op: Relu, inputs: [inner]}
              inner: {op: Relu, inputs: [x]}
        """)
    assert rules.warnings == []      # once: true silences the self-recreation warning
    result = rewrite(graph, rules)
    assert result.stats["fired"] == {"wrap-relu": 2}
    assert result.graph.op_histogram()["Relu"] == 4


def test_a_failing_replacement_rolls_back_and_names_rule_and_nodes(tmp_path):
    graph = graphtool.load(EXAMPLES / "graphs" / "scaled_conv.pb")
    before = graph.serialize()
    rules = rules_from(tmp_path, """
        rules:
          - id: bad-shape
            pattern:
              w: {op: Const}
              conv: {op: Conv2D, inputs: [x, w]}
              s: {op: Const, shared: true}
              out: {op: Mul, inputs: [conv, s], commutative: true}
            replace:
              out: {op: Conv2D, inputs: [x, new_w], copy_attrs: conv}
              new_w:
                const: w * reshape(s, [-1])
                shape: [3, 3, 3, 5]
        """)
    with pytest.raises(GraphtoolError) as info:
        rewrite(graph, rules)
    message = str(info.value)
    assert message.startswith("rule 'bad-shape' (")
    assert "failed at node 'scaled' (matched scaled, conv, Const, Const_1)" in message
    assert "r.yaml:10:7: computed const 'new_w' has shape [3, 3, 3, 4], but the rule declares " \
           "[3, 3, 3, 5]" in message
    assert message.endswith("nothing was changed")
    assert graph.serialize() == before


def test_rewrite_log_entries_and_json_lines_file(tmp_path):
    graph = graphtool.load(FIXTURES / "conv_bn_pool.k3.pb")
    path = tmp_path / "log.jsonl"
    result = rewrite(graph, load_rules(EXAMPLES / "pipeline.yaml"), log=path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == result.log
    (bn,) = [e for e in lines if e.get("rule") == "fold-batchnorm"]
    assert bn["stage"] == "fuse" and bn["root"] == "conv_bn_pool_1/bn_1/batchnorm/add_1"
    assert "conv_bn_pool_1/conv_1/convolution" in bn["matched"]
    assert "conv_bn_pool_1/conv_1/convolution" in bn["removed"]
    assert bn["changed"] == [bn["root"]]
    assert set(bn["created"]) == {bn["root"] + "/new_conv", bn["root"] + "/new_w",
                                  bn["root"] + "/new_b"}
    assert all(result.graph.get(n) for n in bn["created"])
    actions = [e for e in lines if "action" in e]
    assert [a["action"] for a in actions] == ["remove_control_inputs", "prune", "rename_op",
                                              "prune", "sort"]
    assert actions[0]["changed"] == ["NoOp", "probs"]
    (identity_output,) = [e for e in lines if e.get("root") == "probs"]
    assert identity_output["renamed"] == {"conv_bn_pool_1/probs_1/Softmax": "probs"}


def test_bypassing_an_output_keeps_its_name(tmp_path):
    graph = graphtool.load(FIXTURES / "dense_dropout.k3.pb")
    names = graph.outputs
    result = rewrite(graph, load_rules(EXAMPLES / "identity.yaml"))
    assert result.graph.outputs == names
    for name in names:
        assert result.graph.node(name).op != "Identity"


def test_control_edges_onto_removed_nodes_follow_the_policy(tmp_path):
    graph = frozen(tmp_path, "control", waited_on)
    text = """
        rules:
          - id: r
            control_inputs: POLICY
            pattern:
              inner: {op: Relu, inputs: [x]}
              root: {op: Neg, inputs: [inner]}
            replace:
              root: {op: Elu, inputs: [x], attrs: {T: {copy: root}}}
        """
    keep = rewrite(graph, rules_from(tmp_path, text.replace("POLICY", "keep"), "k.yaml")).graph
    assert keep.node("waiter").control_inputs == ("root",) and "inner" not in keep
    drop = rewrite(graph, rules_from(tmp_path, text.replace("POLICY", "drop"), "d.yaml")).graph
    assert drop.node("waiter").control_inputs == () and "inner" not in drop


@register_function("split_relu_for_test")
def _split_relu(edit, match, x):
    """A Python rewriter: relu(x) -> max(x, 0) built through the Edit."""
    zero = edit.add_const(np.float32(0), match.root + "/zero")
    node = edit.graph.node(match.root)
    edit.rebuild(node, "Maximum", [x.tensor, zero.name], {"T": node.proto.attr["T"]})


def test_python_rewriters_edit_through_the_edit_object(tmp_path):
    def build(tf_):
        x = tf_.compat.v1.placeholder(tf_.float32, [5], name="x")
        tf_.nn.relu(x, name="r")
        return ["r"]
    graph = frozen(tmp_path, "relu", build)
    log = []
    result = rewrite(graph, rules_from(tmp_path, """
        rules:
          - id: relu-as-max
            pattern: {r: {op: Relu, inputs: [x]}}
            replace: {call: split_relu_for_test, args: [x]}
        """), log=log)
    assert result.graph.node("r").op == "Maximum"
    assert log[0]["created"] == ["r/zero"] and log[0]["changed"] == ["r"]
    x = random_input(5)
    np.testing.assert_allclose(run(result.graph, {"x": x})[0], np.maximum(x, 0))


def test_inline_functions_replaces_calls_by_their_bodies(tmp_path):
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    w = tf.Variable(np.random.default_rng(0).standard_normal((3, 3, 2, 4)).astype(np.float32))

    @tf.function(jit_compile=True)
    def inner(x):
        y = tf.nn.conv2d(x, w, 1, "SAME")
        a, b = tf.split(y, 2, axis=3)
        # TopKV2 has two output args: the body names them (values, indices), not ports
        values, indices = tf.math.top_k(tf.reshape(y, [-1]), k=3)
        ranked = tf.reduce_sum(values) + tf.cast(indices[0], tf.float32)
        return tf.nn.relu(a) + b, tf.reduce_sum(y) + ranked

    @tf.function
    def outer(x):
        p, q = inner(x)
        return p * q

    concrete = outer.get_concrete_function(tf.TensorSpec((1, 5, 5, 2)))
    graph_def = convert_variables_to_constants_v2(concrete).graph.as_graph_def()
    path = tmp_path / "calls.pb"
    path.write_bytes(graph_def.SerializeToString())
    graph = graphtool.load(path)
    assert graph.nodes_by_op("StatefulPartitionedCall") and graph.has_library()
    result = rewrite(graph, rules_from(tmp_path, """
        rules:
          - id: inline
            action: inline_functions
        """))
    after = result.graph
    assert not after.nodes_by_op("StatefulPartitionedCall", "PartitionedCall")
    assert not after.has_library()
    x = random_input(1, 5, 5, 2)
    np.testing.assert_allclose(run(after, {"x": x}, ["Identity"])[0],
                               run(graph, {"x": x}, ["Identity"])[0], rtol=1e-5)


def test_fold_constants_and_set_input_shape_actions(tmp_path):
    graph = graphtool.load(FIXTURES / "act_relu6.k3.pb")
    inputs, outputs = reference("act_relu6.k3")
    rules = rules_from(tmp_path, """
        rules:
          - id: pin
            action: set_input_shape
          - id: fold
            action: fold_constants
            args: {max_bytes: 1000000}
        """)
    result = rewrite(graph, rules, input_shapes={"input": [1, 8, 8, 4]})
    after = result.graph
    assert after.node("input").attr("shape") == (1, 8, 8, 4)
    assert "Squeeze" not in after.op_histogram()
    fold_entry = [e for e in result.log if e.get("action") == "fold_constants"][0]
    assert fold_entry["folded"] >= 2 and fold_entry["removed"]
    got = run(after, inputs, outputs=list(outputs))
    np.testing.assert_allclose(got[0], list(outputs.values())[0], rtol=1e-5, atol=1e-5)


_SEEN_HANDOFF: list = []


@register_action("probe_handoff")
def _probe_handoff(graph, ctx):
    """Records whether a fold's shape analysis reached this action."""
    _SEEN_HANDOFF.append(SHAPES_HANDOFF in ctx.handoff)
    return {}


@pytest.mark.parametrize("rules_text, seen", [
    ("  - {id: fold, action: fold_constants}\n  - {id: probe, action: probe_handoff}\n",
     [True]),
    ("  - {id: fold, action: fold_constants}\n  - {id: sort, action: sort}\n"
     "  - {id: probe, action: probe_handoff}\n", [False]),
    ("stages: [{name: a}, {name: b}]\nrules:\n  - {id: fold, stage: a, action: fold_constants}\n"
     "  - {id: probe, stage: b, action: probe_handoff}\n", [False]),
])
def test_shapes_handed_on_by_a_fold_reach_only_the_next_action(tmp_path, rules_text, seen):
    """annotate_output_shapes right after fold_constants reuses the fold's analysis;
    after any other action, or once pattern rules may have run, it is gone."""
    text = rules_text if rules_text.startswith("stages") else "rules:\n" + rules_text
    _SEEN_HANDOFF.clear()
    rewrite(graphtool.load(FIXTURES / "dense_dropout.k3.pb"), rules_from(tmp_path, text))
    assert _SEEN_HANDOFF == seen


def test_annotated_shapes_after_a_fold_match_a_fresh_analysis(tmp_path):
    graph = graphtool.load(FIXTURES / "conv_bn_pool.k3.pb")
    rules = rules_from(tmp_path, "python: [graphtool.targets.opencv]\nrules:\n"
                       "  - {id: fold, action: fold_constants}\n"
                       "  - {id: annotate, action: annotate_output_shapes}\n")
    after = rewrite(graph, rules, input_shapes={"input": [1, 16, 16, 3]}).graph
    fresh = after.copy().shapes({"input": [1, 16, 16, 3]})
    annotated = {n.name: n.attr("_output_shapes") for n in after.nodes
                 if n.has_attr("_output_shapes")}
    assert len(annotated) > 10
    for name, shapes in annotated.items():
        assert shapes == [tuple(i.shape) for i in fresh.outputs(name)], name


def test_set_input_shape_rejects_unknown_inputs(tmp_path):
    graph = graphtool.load(FIXTURES / "act_relu6.k3.pb")
    rules = rules_from(tmp_path, """
        rules:
          - id: pin
            action: set_input_shape
            args: {shapes: {inptu: [1, 2]}}
        """)
    with pytest.raises(GraphtoolError, match="'inptu' is not a graph input.*did you mean 'input'"):
        rewrite(graph, rules)


@pytest.mark.parametrize("rule_file, shape, fires", [
    ("fold.yaml", [], 2), ("fold.yaml", [1, 1], 2), ("fold.yaml", [3, 1], 0),
    ("trim.yaml", [1, 4], 2), ("trim.yaml", [3, 1], 1)])
def test_ones_and_zeros_go_only_where_they_do_not_broadcast(tmp_path, rule_file, shape, fires):
    """x * ones + zeros is x when the constants cannot make x bigger: one-element ones
    and zeros in the fold stage, tensors of x's shape or less in the trim stage. Ones of
    shape [3, 1] make x [1, 4] into [3, 4], so that Mul stays (the fold stage keeps the
    zeros after it too; the trim stage sees they add nothing). When both go, the output
    is the graph input itself, which keeps its name. TensorFlow computes the same."""
    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [1, 4], name="x")
        y = tf.multiply(x, tf.ones(shape), name="scaled")
        tf.add(y, tf.zeros(shape), name="out")
        return ["out"]
    graph = frozen(tmp_path, "zeros", build)
    rules = load_rules(ROOT / "rules" / "opencv" / rule_file)
    result = rewrite(graph, rules, input_shapes={"x": [1, 4]})
    fired = result.stats["fired"]
    assert sum(fired.get(rule, 0) for rule in (
        "multiply-by-one", "add-zero", "drop-unit-scale", "drop-zero-offset")) == fires
    feed = {"x": random_input(1, 4)}
    expected = run(graph, feed)[0]
    got = run(result.graph, feed)[0]
    assert got.shape == expected.shape == ((shape[0] if shape else 1), 4)
    np.testing.assert_array_equal(got, expected)


def test_a_scalar_offset_after_a_convolution_is_no_bias(tmp_path):
    """Conv2D + 3.0 (hard-swish after a bias-free convolution): offset-as-bias wants a
    per-channel vector and must pass over a scalar, not fail on it."""
    def build(tf):
        x = tf.compat.v1.placeholder(tf.float32, [1, 4, 4, 2], name="x")
        w = tf.constant(np.random.default_rng(1).standard_normal((1, 1, 2, 3)), tf.float32)
        tf.add(tf.nn.conv2d(x, w, 1, "VALID"), 3.0, name="out")
        return ["out"]
    graph = frozen(tmp_path, "scalar_offset", build)
    result = rewrite(graph, load_rules(ROOT / "rules" / "opencv" / "fuse.yaml"),
                     input_shapes={"x": [1, 4, 4, 2]})
    assert "offset-as-bias" not in result.stats["fired"]
    feed = {"x": random_input(1, 4, 4, 2)}
    np.testing.assert_allclose(run(result.graph, feed)[0], run(graph, feed)[0], rtol=1e-6)


def test_new_input_shapes_make_remembered_shapes_go(tmp_path):
    """Shapes annotated in one stage are remembered for the next; pinning other input
    shapes in between must drop them, or the later annotation would keep the old ones."""
    graph = graphtool.load(FIXTURES / "dense_dropout.k3.pb")  # input shape attr [1, 16]
    rules = rules_from(tmp_path, """
        python: [graphtool.targets.opencv]
        stages: [a, b]
        rules:
          - {id: first, stage: a, action: annotate_output_shapes}
          - {id: drop, stage: a, action: drop_attr, args: {key: _output_shapes}}
          - {id: repin, stage: b, action: set_input_shape, args: {shapes: {input: [5, 16]}}}
          - {id: again, stage: b, action: annotate_output_shapes}
        """)
    after = rewrite(graph, rules).graph
    assert after.node("probs").attr("_output_shapes") == [(5, 10)]
