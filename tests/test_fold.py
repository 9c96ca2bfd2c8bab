"""Constant folding on real frozen graphs: what folds, what must not, and that TF agrees.

Numerical expectations come from running the graph in TensorFlow before and
after folding (and from the fixtures' reference outputs).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

import tensorflow as tf  # noqa: E402 - a real dependency: missing it fails

import graphtool  # noqa: E402
from graphtool import ops  # noqa: E402
from graphtool.attrs import Shape  # noqa: E402
from graphtool.dtypes import DType  # noqa: E402
from graphtool.errors import GraphtoolError  # noqa: E402
from graphtool.fold import fold_constants  # noqa: E402
from graphtool.graph import Graph  # noqa: E402
from graphtool.tensors import uses_tensor_content  # noqa: E402

from conftest import ROOT, fixture_graphs  # noqa: E402
from test_shapes import freeze_dynamic_batch, small_resnet  # noqa: E402

KERAS3 = [p for p in fixture_graphs() if ".k3." in p.name]


def run_tf(graph: Graph, feeds: dict, fetches: list[str]) -> list[np.ndarray]:
    g = tf.Graph()
    with g.as_default():
        tf.import_graph_def(tf.compat.v1.GraphDef.FromString(graph.serialize()), name="")
    with tf.compat.v1.Session(graph=g) as session:
        return session.run(fetches, feeds)


def foldable_leftovers(graph: Graph) -> list[str]:
    """Nodes with a kernel whose data inputs are all Consts (what folding should remove)."""
    return [n.name for n in graph.nodes if ops.is_foldable(n) and n.data_inputs and all(
        graph.node(i).op == "Const" for i in n.data_inputs) and graph.consumers(n.name)]


def check_fold(graph: Graph, feeds: dict, fetches: list[str], **options) -> list[dict]:
    before = run_tf(graph, feeds, fetches)
    outputs = graph.outputs
    log = fold_constants(graph, **options)
    graph.check()
    assert graph.outputs == outputs
    for entry in log:
        node = graph.get(entry["node"])
        if node is not None:
            assert node.op == "Const"
            assert uses_tensor_content(node.proto.attr["value"].tensor), entry
            assert list(node.tensor.shape) == entry["shape"]
            assert str(DType(node.proto.attr["dtype"].type)) == entry["dtype"]
    after = run_tf(graph, feeds, fetches)
    for name, b, a in zip(fetches, before, after):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(b).max())),
                                   err_msg=name)
    assert fold_constants(graph, **options) == [], "folding again found more to fold"
    return log


@pytest.mark.parametrize("path", KERAS3, ids=lambda p: p.name)
def test_keras3_fixtures_fold_and_compute_the_same(path):
    graph = graphtool.load(path)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    reference = np.load(path.with_suffix(".npz"))
    feeds = {i["tensor"]: reference[f"inputs/{i['name']}"] for i in sidecar["inputs"]}
    fetches = [o["tensor"] for o in sidecar["outputs"]]
    log = check_fold(graph, feeds, fetches)
    assert log and not foldable_leftovers(graph)
    for fetch, out in zip(fetches, run_tf(graph, feeds, fetches)):
        name = fetch.split(":")[0]
        np.testing.assert_allclose(out, reference[f"outputs/{name}"], rtol=1e-5, atol=1e-5)
    # Keras 3's bias pattern Reshape(Identity(Const)) + Squeeze is gone.
    assert not [n for n in graph.nodes if n.op in ("Reshape", "Squeeze") and all(
        graph.node(i).op == "Const" for i in n.data_inputs)]


@pytest.fixture(scope="module")
def dynamic_resnet_like(tmp_path_factory):
    return freeze_dynamic_batch(small_resnet(), tmp_path_factory.mktemp("fold") / "dyn.pb")


def test_shape_chains_fold_once_the_batch_is_pinned(dynamic_resnet_like):
    x = np.random.default_rng(3).standard_normal((1, 20, 20, 3), np.float32)
    graph = graphtool.load(dynamic_resnet_like)
    name = graph.inputs[0].name
    batch_packs = {n.name for n in graph.nodes_by_op("Pack")
                   if any(graph.node(i).op == "StridedSlice" for i in n.data_inputs)}
    assert len(batch_packs) == 3  # two Flatten layers and a Reshape layer
    unpinned = graph.copy()
    fold_constants(unpinned)
    assert all(unpinned.node(p).op == "Pack" for p in batch_packs)

    log = check_fold(graph, {name + ":0": x}, ["Identity:0"], input_shapes={name: [1, 20, 20, 3]})
    assert batch_packs <= {e["node"] for e in log}
    folded_ops = {e["op"] for e in log}
    assert {"Shape", "StridedSlice", "Pack", "Identity", "Reshape", "Squeeze", "Rsqrt",
            "AddV2", "Mul", "Sub"} <= folded_ops
    assert not graph.nodes_by_op("Shape")
    assert not foldable_leftovers(graph)
    # Every Reshape left reshapes data, with a constant int32 target shape.
    for node in graph.nodes_by_op("Reshape"):
        assert graph.node(node.data_inputs[1]).op == "Const"


def test_resnet50_folds_batch_norm_and_biases(resnet50_pb):
    graph = graphtool.load(resnet50_pb)
    x = np.random.default_rng(4).standard_normal((1, 224, 224, 3), np.float32)
    logits = [n.name for n in graph.nodes if n.op == "BiasAdd"][-1] + ":0"
    started = time.perf_counter()
    log = check_fold(graph, {graph.inputs[0].name + ":0": x}, [logits, "Identity:0"])
    assert time.perf_counter() - started < 60
    histogram = graph.op_histogram()
    for op in ("Rsqrt", "Sub", "Squeeze", "Reshape"):
        assert op not in histogram, op
    assert sum(e["op"] == "Rsqrt" for e in log) == 53  # one per batch norm
    # Remaining Identity nodes read activations only (weights became plain Consts).
    assert all(graph.node(n.data_inputs[0]).op != "Const" for n in graph.nodes_by_op("Identity"))


# -- precise behaviour on hand-built graphs ---------------------------------------------------
def graph_with_input(shape=(2, 3)) -> Graph:
    graph = Graph()
    graph.add_node("Placeholder", "x", attrs={"dtype": DType.float32, "shape": Shape(shape)})
    return graph


def add(graph, op, name, inputs, **attrs):
    attrs.setdefault("T", DType.float32)
    return graph.add_node(op, name, inputs, attrs)


def test_size_limit_is_honoured():
    graph = graph_with_input((2, 100))
    graph.add_const(np.array([4096, 4096], np.int32), "dims")
    graph.add_const(np.float32(1.0), "one")
    add(graph, "Fill", "huge", ["dims", "one"], index_type=DType.int32)  # 64 MiB + more
    graph.add_const(np.ones((100, 100), np.float32), "w")
    add(graph, "Identity", "w_read", ["w"])
    add(graph, "Sum", "total", ["huge", "axes"], Tidx=DType.int32, keep_dims=False)
    graph.add_const(np.array([0, 1], np.int32), "axes")
    add(graph, "AddV2", "y", ["total", "x"])
    add(graph, "MatMul", "z", ["x", "w_read"], transpose_a=False, transpose_b=False)

    log = fold_constants(graph, max_bytes=4095 * 4096 * 4)
    assert graph.node("huge").op == "Fill" and graph.node("w_read").op == "Const"
    assert {e["node"] for e in log} == {"w_read"}
    assert "w" not in graph  # fed only the folded Identity

    assert fold_constants(graph, max_bytes=100 * 100 * 4 - 1) == []
    with pytest.raises(GraphtoolError, match="max_bytes"):
        fold_constants(graph, max_bytes=-1)


def test_limit_applies_to_identity_weights():
    graph = graph_with_input((2, 100))
    graph.add_const(np.ones((100, 100), np.float32), "w")
    add(graph, "Identity", "w_read", ["w"])
    add(graph, "MatMul", "z", ["x", "w_read"], transpose_a=False, transpose_b=False)
    assert fold_constants(graph, max_bytes=39_999) == []
    assert graph.node("w_read").op == "Identity"


def test_multi_output_node_becomes_one_const_per_used_port():
    graph = graph_with_input((2, 2))
    graph.add_const(np.arange(12, dtype=np.float32).reshape(2, 6), "value")
    graph.add_const(np.int32(1), "axis")
    graph.add_node("NoOp", "barrier")
    graph.add_node("Split", "split", ["axis", "value", "^barrier"],
                   {"num_split": 3, "T": DType.float32})
    add(graph, "AddV2", "a", ["x", "split"])
    add(graph, "AddV2", "b", ["x", "split:2"])
    graph.add_node("NoOp", "after", ["^split"])
    log = fold_constants(graph)
    assert "split" not in graph and "value" not in graph and "axis" not in graph
    assert [e["node"] for e in log] == ["split/out_0", "split/out_2"]
    assert all(e["from"] == "split" and e["op"] == "Split" for e in log)
    np.testing.assert_array_equal(graph.node("split/out_2").tensor, [[4, 5], [10, 11]])
    assert graph.node("a").inputs == ("x", "split/out_0")
    assert graph.node("b").inputs == ("x", "split/out_2")
    assert graph.node("split/out_0").control_inputs == ("barrier",)
    assert graph.node("after").control_inputs == ("split/out_0",)
    feeds = {"x:0": np.ones((2, 2), np.float32)}
    a, b = run_tf(graph, feeds, ["a:0", "b:0"])
    np.testing.assert_array_equal(a, [[1, 2], [7, 8]])
    np.testing.assert_array_equal(b, [[5, 6], [11, 12]])


def const_behind_control_edge() -> Graph:
    """x; c (waits for NoOp init); neg = Neg(c); uses_neg = x + neg."""
    graph = graph_with_input()
    graph.add_node("NoOp", "init")
    graph.add_const(np.ones((2, 3), np.float32), "c")
    graph.node("c").add_control_input("init")
    add(graph, "Neg", "neg", ["c"])
    add(graph, "AddV2", "uses_neg", ["x", "neg"])
    return graph


def test_control_inputs_and_shared_consts_survive():
    graph = const_behind_control_edge()
    add(graph, "AddV2", "uses_c", ["x", "c"])
    graph.node("neg").add_control_input("x")
    log = fold_constants(graph)
    assert [e["node"] for e in log] == ["neg"]
    assert "c" in graph  # still read by uses_c
    assert graph.node("neg").op == "Const" and graph.node("neg").control_inputs == ("x",)
    np.testing.assert_array_equal(graph.node("neg").tensor, -np.ones((2, 3)))

    graph = const_behind_control_edge()
    fold_constants(graph)
    assert "c" not in graph and graph.node("neg").control_inputs == ("init",)


def test_never_folded():
    graph = graph_with_input()
    graph.add_const(np.ones((2, 3), np.float32), "c")
    graph.add_node("PlaceholderWithDefault", "pwd", ["c"],
                   {"dtype": DType.float32, "shape": Shape((2, 3))})
    add(graph, "AddV2", "uses_pwd", ["x", "pwd"])
    graph.add_const(np.int32([1, 2]), "ints")
    graph.add_const(np.int32([0, 1]), "zeros")
    add(graph, "FloorDiv", "div_zero", ["ints", "zeros"], T=DType.int32)
    graph.add_const(np.float32([np.nan]), "nan")
    graph.add_node("Cast", "cast_nan", ["nan"], {"SrcT": DType.float32, "DstT": DType.int32})
    graph.add_const(np.int32(0), "zero")
    graph.add_const(np.int32(5), "five")
    add(graph, "Range", "range", ["zero", "five", "zero"], Tidx=DType.int32)
    graph.add_node("RandomUniform", "random", ["ints"], {"dtype": DType.float32,
                                                         "T": DType.int32})
    add(graph, "MyOp", "custom", ["c"])
    for name in ("div_zero", "cast_nan", "range", "random", "custom"):
        add(graph, "Identity", f"use_{name}", [name])
    assert fold_constants(graph) == []
    assert graph.node("x").op == "Placeholder" and graph.node("pwd").op == "PlaceholderWithDefault"


def test_inconsistent_graph_is_an_error_not_garbage():
    graph = graph_with_input()
    graph.add_const(np.ones((2, 3), np.float32), "c")
    graph.add_const(np.int32([4, 4]), "shape")
    add(graph, "Reshape", "bad", ["c", "shape"])
    add(graph, "AddV2", "y", ["x", "bad"])
    with pytest.raises(GraphtoolError, match=r"'bad' \(Reshape\).*\[2,3\]"):
        fold_constants(graph)
    with pytest.raises(GraphtoolError, match="not a graph input"):
        fold_constants(graph_with_input(), input_shapes={"nope": [1]})


def test_reshape_dims_given_or_left_to_the_shape_function():
    """Dims a Reshape's shape input lists in full are taken as they are; a -1 goes to
    the shape function, and both agree with shape inference on the folded graph."""
    graph = graph_with_input((3, 2))
    graph.add_const(np.arange(6, dtype=np.float32), "c")
    graph.add_const(np.array([3, 2], np.int32), "given")
    graph.add_const(np.array([-1, 2], np.int32), "open")
    add(graph, "Reshape", "r_given", ["c", "given"], Tshape=DType.int32)
    add(graph, "Reshape", "r_open", ["c", "open"], Tshape=DType.int32)
    add(graph, "Mul", "y1", ["x", "r_given"])
    add(graph, "Mul", "y2", ["x", "r_open"])
    shapes = graphtool.analysis.shapes.infer_shapes(graph, lazy=True)
    log = check_fold(graph, {"x:0": np.ones((3, 2), np.float32)}, ["y1:0", "y2:0"],
                     shapes=shapes)
    assert [(e["node"], e["shape"]) for e in log] == [("r_given", [3, 2]), ("r_open", [3, 2])]
    fresh = graph.shapes()
    for name in ("r_given", "r_open", "y1", "y2"):
        kept, inferred = shapes[name], fresh[name]
        assert (kept.dtype, kept.shape, kept.partial) == (inferred.dtype, inferred.shape, None)
        np.testing.assert_array_equal(kept.value, inferred.value)


def test_folding_does_not_import_tensorflow():
    code = ("import sys, graphtool; from graphtool.fold import fold_constants;"
            f"g = graphtool.load({str(KERAS3[0])!r}); g.shapes(); fold_constants(g);"
            "g.save(sys.argv[1]);"
            "print('tensorflow' in sys.modules, 'cv2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, "/dev/null"], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- the pass-through paths of the rewrite (Const bytes moved or copied, never decoded) -------
def pass_through_graph() -> Graph:
    """Identity/Reshape chains over Consts, kept because unfolded nodes read them:
    an Identity that takes over its Const, a Reshape of the same Const next to it (a copy
    from the moved bytes), a Const shared with an unfolded reader (a copy), and a
    Reshape(Identity(Const)) whose Identity disappears (the Const moves afterwards)."""
    graph = graph_with_input((2, 6))
    graph.add_node("NoOp", "init")
    graph.add_node("Placeholder", "x23", attrs={"dtype": DType.float32, "shape": Shape((2, 3))})
    graph.add_const(np.array([2, 3], np.int32), "shape23")
    graph.add_const(np.arange(6, dtype=np.float32) - 2.5, "c")
    add(graph, "Identity", "i", ["c"])
    add(graph, "Reshape", "r", ["i", "shape23"])
    add(graph, "Mul", "y1", ["x", "i"])
    add(graph, "AddV2", "y2", ["x23", "r"])
    graph.add_const(np.linspace(-1, 1, 6).astype(np.float32), "s")
    add(graph, "Identity", "j", ["s"])
    add(graph, "Mul", "y3", ["x", "s"])
    add(graph, "Sub", "y4", ["x", "j"])
    graph.add_const(np.arange(6, dtype=np.float32) * 3, "c2")
    graph.node("c2").add_control_input("init")
    add(graph, "Identity", "i2", ["c2"])
    add(graph, "Reshape", "k", ["i2", "shape23"])
    add(graph, "Mul", "y5", ["x23", "k"])
    return graph


def test_pass_throughs_move_or_copy_the_stored_bytes():
    graph = pass_through_graph()
    fetches = ["y1:0", "y2:0", "y3:0", "y4:0", "y5:0"]
    rng = np.random.default_rng(7)
    feeds = {"x:0": rng.standard_normal((2, 6)).astype(np.float32),
             "x23:0": rng.standard_normal((2, 3)).astype(np.float32)}
    reference = {"i": "c", "r": "c", "j": "s", "k": "c2"}  # folded node -> TF value of it
    before = run_tf(graph, feeds, fetches + [f"{n}:0" for n in reference])
    log = check_fold(graph, feeds, fetches)
    assert {e["node"] for e in log} >= {"i", "r", "j", "k", "i2"}
    assert "c" not in graph and "c2" not in graph and "i2" not in graph
    assert "s" in graph  # y3 still reads it
    for (name, _), want in zip(reference.items(), before[len(fetches):]):
        node = graph.node(name)
        assert node.op == "Const" and uses_tensor_content(node.proto.attr["value"].tensor)
        np.testing.assert_array_equal(node.tensor, want, err_msg=name)
    assert graph.node("k").control_inputs == ("init",)  # inherited through i2 from c2
    assert graph.node("i").inputs == () and graph.node("r").inputs == ()
