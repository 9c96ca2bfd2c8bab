"""The editing API keeps the graph consistent, on real frozen graphs and random edit sequences."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphtool
from graphtool.errors import GraphtoolError
from graphtool.graph import Graph, parse_ref


def _recomputed_consumers(graph: Graph) -> dict:
    index = {}
    for node in graph.nodes:
        for text in node.inputs:
            index.setdefault(parse_ref(text).node, Counter())[node.name] += 1
    return index


def _assert_index_consistent(graph: Graph) -> None:
    expected = _recomputed_consumers(graph)
    for name in graph.names():
        got = sorted(n.name for n in graph.consumers(name))
        assert got == sorted(expected.get(name, {})), name
    controlled = [n.name for n in graph.nodes if any(t.startswith("^") for t in n.inputs)]
    assert [n.name for n in graph.controlled()] == controlled


def test_refs():
    assert parse_ref("a") == ("a", 0, False)
    assert parse_ref("a:2") == ("a", 2, False)
    assert parse_ref("^a") == ("a", 0, True)
    assert parse_ref("scope/x:0")[:2] == parse_ref("scope/x")[:2]
    assert str(parse_ref("a:1")) == "a:1" and str(parse_ref("a:0")) == "a"
    assert graphtool.ref("n", 3) == "n:3"


def test_bypass_identity_nodes_of_a_real_graph(small_pb):
    graph = graphtool.load(small_pb)
    outputs_before = graph.outputs
    identities = graph.nodes_by_op("Identity")
    assert identities
    for node in graph:  # iterating a snapshot: removal inside the loop is safe
        if node.op == "Identity":
            graph.bypass(node)
    assert not graph.nodes_by_op("Identity")
    assert all(not n.alive for n in identities)
    graph.check()
    _assert_index_consistent(graph)
    # The graph output kept its name: its producer took it over.
    assert graph.outputs == outputs_before
    with pytest.raises(GraphtoolError, match="was removed"):
        identities[0].set_attr("x", 1)


def test_remove_refuses_while_used_and_prune_cleans(small_pb):
    graph = graphtool.load(small_pb)
    placeholder = graph.inputs[0]
    with pytest.raises(GraphtoolError, match="still used by"):
        graph.remove(placeholder)
    dangling = graph.add_const(np.ones(3, np.float32), name="unused")
    chained = graph.add_node("Neg", None, [dangling.output()])
    assert chained.name == "Neg"
    assert graph.fresh_name("Neg") == "Neg_1"
    graph.outputs = graph.outputs[:1]  # declare the real output so Neg is not one
    removed = graph.prune()
    assert set(removed) >= {"unused", "Neg"}
    graph.check()
    _assert_index_consistent(graph)


def test_replace_all_uses_ports_and_control(small_pb):
    graph = graphtool.load(small_pb)
    a = graph.add_node("Split", "split", [graph.add_const(np.int32(0), "axis").output(),
                                          graph.inputs[0].output()], {"num_split": 1})
    user = graph.add_node("Neg", "user", ["split:1", "split", "^split"])
    count = graph.replace_all_uses("split:1", "image")
    assert count == 1
    assert user.inputs == ("image", "split", "^split")
    graph.replace_all_uses("split", "axis")
    assert user.inputs == ("image", "axis", "^axis")
    assert a.name not in {n.name for n in graph.consumers("image") if n.name == "user"}
    _assert_index_consistent(graph)


def test_set_inputs_puts_control_last_and_dedups():
    graph = Graph()
    a = graph.add_node("NoOp", "a")
    c = graph.add_const(np.float32(1), "c")
    n = graph.add_node("Identity", "n", ["^a", c.output(), "^a"])
    assert n.inputs == ("c", "^a")
    assert n.control_inputs == ("a",)
    assert [x.name for x in a.consumers] == ["n"]


def test_the_graph_knows_its_nodes_with_control_inputs():
    graph = Graph()
    a = graph.add_node("NoOp", "a")
    c = graph.add_const(np.float32(1), "c")
    c.add_control_input(a)
    n = graph.add_node("Identity", "n", [c.output(), "^a"])
    m = graph.add_node("Identity", "m", [n.output()])
    d = graph.add_const(np.float32(2), "d")
    x = graph.add_node("Identity", "x", ["^a", d.output()])
    assert [node.name for node in graph.controlled()] == ["c", "n", "x"]
    graph.adopt(m, n)  # m takes over n's inputs, control input included
    graph.adopt(x, d)  # x takes over d's: none
    assert [node.name for node in graph.controlled()] == ["c", "m"]
    _assert_index_consistent(graph)
    graph.rename("m", "m2")
    c.remove_control_inputs()
    assert [node.name for node in graph.controlled()] == ["m2"]
    assert graph.with_control_inputs(["a", "m2", "x"]) == ["m2"]
    _assert_index_consistent(graph)


def test_toposort_is_stable_and_cycles_are_named():
    graph = Graph()
    graph.add_node("Neg", "late", ["early"])
    graph.add_const(np.float32(1), "other")
    graph.add_const(np.float32(1), "early")
    graph.toposort()
    assert graph.names() == ["other", "early", "late"]
    graph.add_node("Neg", "x", ["y"])
    graph.add_node("Neg", "y", ["z"])
    graph.add_node("Neg", "z", ["x"])
    cycle = graph.find_cycle()
    assert set(cycle) == {"x", "y", "z"}
    with pytest.raises(GraphtoolError, match="cycle"):
        graph.toposort()


def test_check_finds_a_cycle_made_after_a_sort():
    """A sort proves the graph acyclic; every later way of adding an edge undoes that."""
    def sorted_chain():
        graph = Graph()
        graph.add_const(np.float32(1), "c")
        graph.add_node("Neg", "a", ["c", "b"])
        graph.add_node("Neg", "b", ["c"])
        graph.toposort()
        graph.check()
        return graph

    graph = sorted_chain()
    graph.node("b").set_inputs(["a"])  # set_inputs
    with pytest.raises(GraphtoolError, match="cycle"):
        graph.check()
    graph = sorted_chain()
    graph.replace_all_uses("c", "a")  # rewire: b reads a, a reads b
    with pytest.raises(GraphtoolError, match="cycle"):
        graph.check()
    graph = Graph()
    graph.add_node("Neg", "x", ["y"])
    graph.toposort()  # a dangling input is no edge yet
    graph.add_node("Neg", "y", ["x"])  # a new node whose name an input was waiting for
    with pytest.raises(GraphtoolError, match="cycle"):
        graph.check()


def test_rename_rewires_consumers(small_pb):
    graph = graphtool.load(small_pb)
    first = graph.inputs[0]
    users = [n.name for n in first.consumers]
    graph.rename(first.name, "pixels")
    for name in users:
        assert any(parse_ref(i).node == "pixels" for i in graph.node(name).inputs)
    _assert_index_consistent(graph)
    with pytest.raises(GraphtoolError, match="taken"):
        graph.rename("pixels", users[0])


def test_lookup_errors_suggest_names(small_pb):
    graph = graphtool.load(small_pb)
    with pytest.raises(GraphtoolError, match="did you mean"):
        graph.node("imagee")
    with pytest.raises(GraphtoolError, match="already exists"):
        graph.add_node("Neg", "image")


def test_attrs_round_trip_python_values(small_pb):
    from graphtool.attrs import Func, Shape
    from graphtool.dtypes import DType
    graph = graphtool.load(small_pb)
    node = graph.add_node("Custom", "custom", [], {
        "i": 3, "f": 0.5, "b": True, "s": "SAME", "t": DType.int32,
        "shape": Shape((1, None, 3)), "ints": [1, 2, 3], "strs": ["a", "b"],
        "tensor": np.eye(2, dtype=np.float32), "fn": Func("f", {"k": 1}),
        "empty": ([], "list")})
    got = node.attrs
    assert got["i"] == 3 and got["f"] == 0.5 and got["b"] is True and got["s"] == "SAME"
    assert got["t"] is DType.int32 and got["shape"] == (1, -1, 3)
    assert got["ints"] == [1, 2, 3] and got["strs"] == ["a", "b"]
    np.testing.assert_array_equal(got["tensor"], np.eye(2))
    assert got["fn"] == Func("f", {"k": 1}) and got["empty"] == []
    assert node.attr("missing", None) is None
    with pytest.raises(GraphtoolError, match="no attr"):
        node.attr("missing")


_OPS = st.sampled_from(["add", "remove", "rewire", "bypass", "rename", "control", "uncontrol",
                        "adopt"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_OPS, st.integers(0, 10**6), st.integers(0, 10**6)), max_size=40))
def test_random_edit_sequences_keep_the_index_consistent(steps):
    graph = Graph()
    graph.add_const(np.float32(1), "c0")
    for op, a, b in steps:
        names = graph.names()
        if not names:
            graph.add_const(np.float32(1), graph.fresh_name("c"))
            continue
        pick = names[a % len(names)]
        other = names[b % len(names)]
        try:
            if op == "add":
                graph.add_node("AddV2", None, [pick, other])
            elif op == "remove":
                graph.remove(pick)
            elif op == "rewire":
                graph.replace_all_uses(pick, other)
            elif op == "bypass" and graph.node(pick).data_inputs:
                graph.bypass(pick)
            elif op == "rename":
                graph.rename(pick, graph.fresh_name("r"))
            elif op == "control" and pick != other:
                graph.node(pick).add_control_input(other)
            elif op == "uncontrol":
                graph.node(pick).remove_control_inputs()
            elif op == "adopt":
                graph.adopt(pick, other)
        except GraphtoolError:
            pass  # refused edits (removing a used node, taken names) must change nothing
        _assert_index_consistent(graph)
        assert all(n.alive for n in graph.nodes)
    graph.copy()  # rebuilding the message works from any state


def test_adopt_moves_a_definition_without_copying(small_pb):
    graph = graphtool.load(small_pb)
    identity = next(n for n in graph.nodes_by_op("Identity")
                    if n.input_node(0).op == "Const" and n.consumers)
    const = identity.input_node(0)
    readers = sorted(n.name for n in identity.consumers)
    value = const.tensor.copy()
    proto = const.proto
    graph.adopt(identity, const)
    assert identity.op == "Const" and identity.proto is proto  # the same message, moved
    assert not const.alive and const.name not in graph
    np.testing.assert_array_equal(identity.tensor, value)
    assert sorted(n.name for n in identity.consumers) == readers
    graph.check()
    _assert_index_consistent(graph)
    shared = graph.add_const(np.float32(1), "shared")
    a = graph.add_node("Identity", "a", [shared.output()])
    graph.add_node("Identity", "b", [shared.output()])
    with pytest.raises(GraphtoolError, match="read it too"):
        graph.adopt(a, shared)


def test_a_rebuilt_graph_def_keeps_versions_and_the_function_library():
    """After an edit the node list is rebuilt; the other GraphDef fields come along."""
    graph = graphtool.load(Path(__file__).parent.parent / "rules" / "opencv" / "graphs" / "grouped_conv.pb")
    before = graphtool.proto.GraphDef()
    before.CopyFrom(graph.to_graph_def())
    assert len(before.library.function) > 0
    graph.add_const(np.zeros(3, np.float32), "extra")
    after = graph.to_graph_def()
    assert after.library == before.library and after.versions == before.versions
    assert [n.name for n in after.node] == [n.name for n in before.node] + ["extra"]
