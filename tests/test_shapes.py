"""Static shape inference against TensorFlow: its own static shapes and real run outputs.

Expectations come from TensorFlow (its C++ shape inference on the same GraphDef,
and the shapes of the tensors a session actually produces), never from
graphtool's own output.
"""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

import tensorflow as tf  # noqa: E402 - a real dependency: missing it fails

import graphtool  # noqa: E402
from graphtool.analysis import format_shapes, infer_shapes  # noqa: E402
from graphtool.attrs import Shape  # noqa: E402
from graphtool.dtypes import DType  # noqa: E402
from graphtool.errors import GraphtoolError  # noqa: E402
from graphtool.graph import Graph  # noqa: E402
from graphtool.proto import GraphDef  # noqa: E402

from conftest import fixture_graphs, freeze_keras  # noqa: E402


def to_graphtool(graph_def) -> Graph:
    return Graph(GraphDef.FromString(graph_def.SerializeToString()))


def imported(graph: Graph):
    """The graph imported into TensorFlow (TF runs its own shape inference on import)."""
    g = tf.Graph()
    with g.as_default():
        tf.import_graph_def(tf.compat.v1.GraphDef.FromString(graph.serialize()), name="")
    return g


def tf_static(g) -> dict:
    """tensor name -> TF's static shape (tuple with None, or None for unknown rank)."""
    result = {}
    for op in g.get_operations():
        for t in op.outputs:
            shape = t.shape
            result[t.name] = None if shape.rank is None else tuple(shape.as_list())
    return result


def assert_at_least_as_known(ours, tf_shapes, graph, exempt=()):
    """Every dim TF knows statically, graphtool knows with the same value."""
    for name, theirs in tf_shapes.items():
        node = name.rsplit(":", 1)[0]
        if graph.node(node).op in exempt:
            continue
        mine = ours[name].shape
        if theirs is None:
            continue
        assert mine is not None and len(mine) == len(theirs), f"{name}: {mine} vs TF {theirs}"
        for a, b in zip(mine, theirs):
            assert b is None or a == b, f"{name}: graphtool {mine} vs TF {theirs}"


def run_all(g, feeds: dict, tensors: list[str]) -> dict:
    """Run the graph as written (Grappler off, so every fetched tensor exists)."""
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    with tf.compat.v1.Session(graph=g, config=config) as session:
        values = session.run(tensors, feeds)
    return dict(zip(tensors, values))


def assert_matches_run(ours, actual: dict):
    """Known dims and values agree with what TF computed (unknown is allowed, wrong is not)."""
    for name, value in actual.items():
        info = ours[name]
        if info.shape is None:
            continue
        assert all(a is None or a == b for a, b in zip(info.shape, value.shape)) and len(
            info.shape) == value.ndim, f"{name}: graphtool {info.shape} vs run {value.shape}"
        assert str(info.dtype) == tf.as_dtype(value.dtype).name, f"{name}: dtype {info.dtype}"
        if info.value is not None and value.dtype.kind == "f":  # TF's Rsqrt is not exact
            np.testing.assert_allclose(info.value, value, rtol=1e-6, err_msg=name)
        elif info.value is not None:
            np.testing.assert_array_equal(info.value, value, err_msg=name)


def fetchable(g) -> list[str]:
    return [t.name for op in g.get_operations() for t in op.outputs
            if t.dtype not in (tf.resource, tf.variant) and op.type != "NoOp"]


# -- the committed fixtures ---------------------------------------------------------------------
@pytest.mark.parametrize("path", fixture_graphs(), ids=lambda p: p.name)
def test_fixture_shapes_match_tensorflow(path):
    graph = graphtool.load(path)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    pinned = {i["name"]: i["shape"] for i in sidecar["inputs"]}
    shapes = infer_shapes(graph, pinned)
    g = imported(graph)
    assert_at_least_as_known(shapes, tf_static(g), graph)
    assert not shapes.unknown_ops
    control_flow = any(n.op in ("Switch", "Merge") for n in graph.nodes)
    reference = np.load(path.with_suffix(".npz"))
    feeds = {i["tensor"]: reference[f"inputs/{i['name']}"] for i in sidecar["inputs"]}
    tensors = [i["tensor"] for i in sidecar["outputs"]] if control_flow else fetchable(g)
    assert_matches_run(shapes, run_all(g, feeds, tensors))
    unknown = [t for t in shapes if not shapes[t].fully_known]
    # Only FusedBatchNormV3's reserve_space_3, whose size TF leaves to the device.
    assert all(t.endswith(":5") and "FusedBatchNorm" in graph.node(t[:-2]).op
               for t in unknown), unknown


# -- Keras 3 models built here -----------------------------------------------------------------
def small_resnet():
    import keras
    keras.utils.set_random_seed(1)
    L = keras.layers
    inp = keras.Input((20, 20, 3), name="image")
    x = L.ZeroPadding2D(((1, 0), (1, 0)))(inp)
    x = L.Conv2D(8, 3, strides=2, padding="valid")(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    y = L.DepthwiseConv2D(3, padding="same")(x)
    y = L.BatchNormalization()(y)
    y = L.Conv2D(8, 1)(y)
    x = L.Activation("relu")(L.Add()([x, y]))
    x = L.MaxPooling2D(2)(x)
    z = L.SeparableConv2D(8, 3, padding="same", dilation_rate=2)(x)
    z = L.Cropping2D(((1, 0), (0, 1)))(L.ZeroPadding2D(((1, 0), (0, 1)))(z))
    x = L.Concatenate()([x, z])
    x = L.UpSampling2D(2)(x)
    x = L.AveragePooling2D(2, padding="same")(x)
    x = L.LayerNormalization()(x)
    x = L.Activation("gelu")(x)
    f = L.Flatten()(x)
    f = L.Reshape((5, -1))(f)
    f = L.Permute((2, 1))(f)
    g = L.GlobalAveragePooling2D()(x)
    g = L.Dropout(0.5)(L.Dense(6, activation="swish")(g))
    out = L.Concatenate()([L.Flatten()(f), g])
    return keras.Model(inp, L.Dense(4, activation="softmax")(out))


def freeze_dynamic_batch(model, path):
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name="image")
    fn = tf.function(lambda x: model(x, training=False))
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function(spec))
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    return path


@pytest.fixture(scope="module")
def resnet_like(tmp_path_factory):
    model = small_resnet()
    folder = tmp_path_factory.mktemp("shapes")
    return (freeze_keras(model, folder / "batch1.pb"),
            freeze_dynamic_batch(model, folder / "dynamic.pb"))


def test_keras_model_batch_one_every_tensor_matches_run(resnet_like):
    graph = graphtool.load(resnet_like[0])
    shapes = infer_shapes(graph)
    g = imported(graph)
    assert_at_least_as_known(shapes, tf_static(g), graph)
    x = np.random.default_rng(0).standard_normal((1, 20, 20, 3), np.float32)
    actual = run_all(g, {graph.inputs[0].name + ":0": x}, fetchable(g))
    assert_matches_run(shapes, actual)
    assert all(shapes[t].fully_known for t in actual)


def test_dynamic_batch_partial_shapes_and_pinned_batch(resnet_like):
    """Unknown batch: dims stay None where TF's own inference cannot do better;
    pinning the input makes every shape known, including the Flatten/Reshape chains."""
    graph = graphtool.load(resnet_like[1])
    shapes = infer_shapes(graph)
    g = imported(graph)
    assert_at_least_as_known(shapes, tf_static(g), graph)
    placeholder = graph.inputs[0]
    assert shapes[placeholder.name].shape == (None, 20, 20, 3)
    shape_nodes = [n for n in graph.nodes if n.op == "Shape"]
    assert shape_nodes and all(shapes[n.name].partial[0] is None for n in shape_nodes)
    assert all(shapes[n.name].partial[1:] == shapes[n.data_inputs[0]].shape[1:]
               for n in shape_nodes)

    pinned = infer_shapes(graph, {placeholder.name: [3, 20, 20, 3]})
    x = np.random.default_rng(1).standard_normal((3, 20, 20, 3), np.float32)
    actual = run_all(g, {placeholder.name + ":0": x}, fetchable(g))
    assert_matches_run(pinned, actual)
    assert all(pinned[t].fully_known for t in actual)
    reshapes = [n for n in graph.nodes if n.op == "Reshape" and "flatten" in n.name]
    assert reshapes and all(pinned[n.name].value is None for n in reshapes)
    assert all(pinned[n.data_inputs[1]].value is not None for n in reshapes)


def test_resnet50_all_known_and_fast(resnet50_pb):
    graph = graphtool.load(resnet50_pb)
    infer_shapes(graph)
    started = time.perf_counter()
    shapes = graph.shapes()
    elapsed = time.perf_counter() - started
    g = imported(graph)
    assert_at_least_as_known(shapes, tf_static(g), graph)
    assert all(shapes[t].fully_known for t in shapes)
    assert shapes["Identity"].shape == (1, 1000)
    assert elapsed < 1.0, f"shape inference took {elapsed:.2f} s"


# -- TF's static inference on partially known inputs -----------------------------------------
PINNED = {"x": (2, 16, 12, 3), "m": (5, 7), "n": (3,)}


def partial_graph(x_shape=(None, 16, None, 3), m_shape=(None, 7), n_shape=(None,)):
    """Ops on placeholders with unknown dims, built with TF's graph API."""
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, x_shape, name="x")
        m = v1.placeholder(tf.float32, m_shape, name="m")
        n = v1.placeholder(tf.int32, n_shape, name="n")
        raw = tf.raw_ops
        w = tf.constant(np.ones((3, 3, 3, 8), np.float32))
        c = raw.Conv2D(input=x, filter=w, strides=[1, 2, 2, 1], padding="SAME")
        raw.Conv2D(input=x, filter=w, strides=[1, 1, 1, 1], padding="VALID",
                   dilations=[1, 2, 2, 1])
        raw.Conv2D(input=tf.transpose(x, [0, 3, 1, 2]), filter=w, strides=[1, 1, 2, 1],
                   padding="EXPLICIT", explicit_paddings=[0, 0, 0, 0, 1, 1, 2, 2],
                   data_format="NCHW", name="nchw")
        raw.DepthwiseConv2dNative(input=x, filter=tf.ones((3, 3, 3, 2)), strides=[1, 1, 1, 1],
                                  padding="SAME")
        p = raw.MaxPool(input=c, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="VALID")
        raw.AvgPool(value=c, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
        s = tf.shape(p)
        flat = tf.reshape(p, tf.stack([s[0], -1]), name="flatten")
        tf.reshape(p, [-1, 4 * 8], name="reshape_minus_one")
        tf.reduce_mean(c, axis=[1, 2], keepdims=True)
        tf.reduce_sum(c, axis=-1)
        tf.squeeze(tf.expand_dims(x, 1), [1])
        tf.concat([x, x[:, :, :, :2]], axis=-1)
        tf.stack([m, m], axis=1)
        tf.unstack(m[:, :3], axis=1)
        tf.split(c, 2, axis=3)
        tf.split(m, [2, -1, 1], axis=1)
        x[:, ::-2, 1:, 0]
        x[..., tf.newaxis, 1]
        tf.slice(m, [0, 2], [-1, 3])
        tf.pad(x, [[0, 0], [1, 2], [3, 4], [0, 0]])
        tf.tile(m, [2, 3])
        tf.matmul(m, tf.ones((7, 5)))
        tf.linalg.matmul(tf.ones((4, 1, 2, 7)), tf.ones((3, 7, 2)))
        tf.gather(m, n, axis=1)
        tf.one_hot(n, 6)
        tf.range(tf.size(n))
        tf.fill(tf.shape(m), 2.0)
        tf.broadcast_to(tf.ones((1, 7)), tf.shape(m))
        raw.ResizeBilinear(images=x, size=[32, 24])
        tf.image.resize(x, tf.shape(x)[1:3] * 2, method="nearest")
        tf.transpose(x, [0, 3, 1, 2])
        tf.einsum("bij,jk->bik", tf.reshape(m, [-1, 1, 7]), tf.ones((7, 2)))
        tf.cast(flat, tf.int32) + 1
        tf.nn.softmax(m)
        tf.where(m > 0, m, tf.zeros_like(m))
        tf.argmax(m, axis=1)
        tf.nn.bias_add(c, tf.ones(8))
        raw.Conv2DBackpropInput(input_sizes=tf.stack([tf.shape(x)[0], 16, 12, 3]),
                                filter=w, out_backprop=c, strides=[1, 2, 2, 1], padding="SAME")
        tf.space_to_batch_nd(x, [2, 2], [[0, 0], [0, 0]])
        tf.nn.depth_to_space(c, 2)
    return g


def test_partial_shapes_at_least_as_known_as_tensorflow():
    g = partial_graph()
    graph = to_graphtool(g.as_graph_def())
    shapes = infer_shapes(graph)
    assert_at_least_as_known(shapes, tf_static(g), graph)
    # Where graphtool knows more than TF's static pass, a real run agrees.
    rng = np.random.default_rng(2)
    feeds = {"x:0": rng.standard_normal((2, 16, 12, 3), np.float32),
             "m:0": rng.standard_normal((5, 7), np.float32),
             "n:0": np.array([1, 4, 0], np.int32)}
    tensors = [t for t in fetchable(g) if not t.startswith("nchw")]  # NCHW has no CPU kernel
    assert_matches_run(shapes, run_all(g, feeds, tensors))


def test_pinned_input_shapes_override_the_placeholder():
    """Pinning the inputs gives exactly what TF infers for a graph built with those shapes."""
    graph = to_graphtool(partial_graph().as_graph_def())
    shapes = infer_shapes(graph, {"x": PINNED["x"], "m:0": list(PINNED["m"]), "n": PINNED["n"]})
    reference = tf_static(partial_graph(PINNED["x"], PINNED["m"], PINNED["n"]))
    assert all(None not in s for s in reference.values() if s is not None)
    assert {t: shapes[t].shape for t in reference} == reference
    with pytest.raises(GraphtoolError, match="not a graph input.*did you mean 'x'"):
        infer_shapes(graph, {"xx": [1]})
    with pytest.raises(GraphtoolError, match="not a list of sizes"):
        infer_shapes(graph, {"x": "big"})


# -- errors and unknown ops (graphs TF itself refuses to build) ------------------------------------
def tiny_graph():
    graph = Graph()
    graph.add_node("Placeholder", "x", attrs={"dtype": DType.float32, "shape": Shape((2, 3, 4))})
    return graph


def add(graph, op, name, inputs, **attrs):
    attrs.setdefault("T", DType.float32)
    return graph.add_node(op, name, inputs, attrs)


def test_reshape_size_mismatch_names_node_and_shapes():
    graph = tiny_graph()
    graph.add_const(np.array([5, 5], np.int32), "target")
    add(graph, "Reshape", "bad_reshape", ["x", "target"])
    with pytest.raises(GraphtoolError, match=r"'bad_reshape' \(Reshape\).*\[2,3,4\].*24 "
                                             r"elements.*\[5, 5\]"):
        infer_shapes(graph)


def test_matmul_inner_mismatch_names_node_and_shapes():
    graph = tiny_graph()
    graph.add_const(np.ones((3, 4), np.float32), "a")
    graph.add_const(np.ones((5, 2), np.float32), "b")
    add(graph, "MatMul", "mm", ["a", "b"], transpose_a=False, transpose_b=False)
    with pytest.raises(GraphtoolError, match=r"'mm' \(MatMul\).*\[3,4\] x \[5,2\]"):
        infer_shapes(graph)


@pytest.mark.parametrize("op,inputs,attrs,message", [
    ("AddV2", [np.ones((2, 3)), np.ones((4,))], {}, r"cannot broadcast shapes \[2,3\] and \[4\]"),
    ("ConcatV2", [np.ones((2, 3)), np.ones((3, 3)), np.int32(1)], {"N": 2},
     r"differ outside the concat axis"),
    ("StridedSlice", [np.ones((2, 3)), np.array([7], np.int32), np.array([8], np.int32),
                      np.array([1], np.int32)], {"shrink_axis_mask": 1}, r"takes index 7"),
    ("Squeeze", [np.ones((2, 3))], {"squeeze_dims": [1]}, r"cannot squeeze dimension 1"),
    ("Conv2D", [np.ones((1, 5, 5, 3)), np.ones((3, 3, 2, 4))],
     {"strides": [1, 1, 1, 1], "padding": "VALID"}, r"3 channels.*made for 2"),
    ("Conv2D", [np.ones((1, 2, 2, 3)), np.ones((3, 3, 3, 4))],
     {"strides": [1, 1, 1, 1], "padding": "VALID"}, r"larger than its padded input"),
])
def test_inconsistent_shapes_are_errors(op, inputs, attrs, message):
    graph = Graph()
    names = []
    for k, value in enumerate(inputs):
        value = np.asarray(value)
        graph.add_const(value.astype(np.float32) if value.dtype == np.float64 else value, f"in{k}")
        names.append(f"in{k}")
    add(graph, op, "culprit", names, **attrs)
    with pytest.raises(GraphtoolError, match="'culprit'.*" + message):
        infer_shapes(graph)


def test_unknown_op_gives_unknown_never_a_guess():
    graph = tiny_graph()
    add(graph, "MyCustomOp", "custom", ["x"])
    add(graph, "Relu", "after", ["custom"])
    add(graph, "MyCustomOp", "declared", ["x"],
        _output_shapes=[Shape((2, -1))])
    shapes = infer_shapes(graph)
    assert shapes["custom"].shape is None and shapes["custom:3"].shape is None
    assert shapes["after"].shape is None
    assert shapes["declared"].shape == (2, None)
    assert shapes.unknown_ops == {"MyCustomOp": 2}
    with pytest.raises(KeyError):
        shapes["nonexistent"]
    text = format_shapes(graph, shapes)
    assert "unknown ops (outputs unknown): MyCustomOp x2" in text
    assert any(line.split()[:3] == ["x", "Placeholder", "float32[2,3,4]"]
               for line in text.splitlines())


def test_format_shapes_shows_small_values():
    g = partial_graph()
    graph = to_graphtool(g.as_graph_def())
    text = format_shapes(graph, infer_shapes(graph, PINNED))
    feeds = {f"{k}:0": np.zeros(v, np.int32 if k == "n" else np.float32)
             for k, v in PINNED.items()}
    value = run_all(g, feeds, ["Shape:0"])["Shape:0"]
    shape_line = next(line for line in text.splitlines() if line.startswith("Shape "))
    assert re.split(r"\s{2,}", shape_line) == [
        "Shape", "Shape", "int32[4]", "= [" + ", ".join(str(v) for v in value) + "]"]


@pytest.mark.parametrize("path", fixture_graphs()[:12], ids=lambda p: p.name)
def test_const_fast_path_agrees_with_the_op_shape_function(path):
    """Consts read straight from their NodeDef (OpDef.node_info) give what the general
    path through a Ctx and the Const shape function gives, values included."""
    from graphtool import ops
    from graphtool.analysis.shapes import node_context
    from graphtool.ops.evaluate import infer_node
    graph = graphtool.load(path)
    shapes = infer_shapes(graph, lazy=True)
    entry = ops.get("Const")
    consts = graph.nodes_by_op("Const")
    assert consts
    for node in consts:
        fast = shapes.output(node.name)
        [general] = infer_node(entry, node_context(node, []))
        assert (fast.dtype, fast.shape) == (general.dtype, general.shape), node.name
        if general.value is None:
            assert fast.value is None
        else:
            np.testing.assert_array_equal(fast.value, general.value, err_msg=node.name)
            assert fast.value.dtype == general.value.dtype
        np.testing.assert_array_equal(node.tensor.shape, fast.shape)
