"""Lossless load/save against TensorFlow's own GraphDef parser, on real frozen graphs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format

import graphtool
from conftest import fixture_graphs


def _tf_graph_def(data: bytes, text: bool = False):
    import tensorflow as tf
    gd = tf.compat.v1.GraphDef()
    if text:
        text_format.Parse(data.decode(), gd)
    else:
        gd.ParseFromString(data)
    return gd


def _graphs(resnet50_pb, small_pb):
    return [*fixture_graphs(), small_pb, resnet50_pb]


@pytest.fixture(scope="module")
def all_graphs(resnet50_pb, small_pb):
    return _graphs(resnet50_pb, small_pb)


def test_round_trip_binary_equals_tensorflow_parse(all_graphs, tmp_path):
    assert len(all_graphs) >= 2
    for source in all_graphs:
        graph = graphtool.load(source)
        out = tmp_path / (source.stem + ".pb")
        graph.save(out)
        original = _tf_graph_def(source.read_bytes(), text=source.suffix == ".pbtxt")
        saved = _tf_graph_def(out.read_bytes())
        assert saved == original, source.name
        assert [n.name for n in saved.node] == [n.name for n in original.node]
        # Saving a graphtool-written file again is byte-identical (deterministic maps).
        again = tmp_path / (source.stem + ".again.pb")
        graphtool.load(out).save(again)
        assert again.read_bytes() == out.read_bytes(), source.name


def test_round_trip_text_equals_tensorflow_parse(small_pb, tmp_path):
    graph = graphtool.load(small_pb)
    text_path = tmp_path / "small.pbtxt"
    graph.save(text_path)
    assert text_path.read_text().lstrip().startswith("node {")
    reparsed = _tf_graph_def(text_path.read_bytes(), text=True)
    assert reparsed == _tf_graph_def(small_pb.read_bytes())
    # Detection is by content: a text graph saved under a .pb name still loads.
    disguised = tmp_path / "text_really.pb"
    disguised.write_bytes(text_path.read_bytes())
    assert graphtool.load(disguised).names() == graph.names()
    # ... and the text written twice is identical.
    again = tmp_path / "again.pbtxt"
    graphtool.load(text_path).save(again)
    assert again.read_bytes() == text_path.read_bytes()


def test_unknown_fields_survive(small_pb, tmp_path):
    # Append a field (number 1000, varint 7) to the GraphDef and to one NodeDef,
    # fields no schema of ours declares; TensorFlow keeps them too.
    import tensorflow as tf
    gd = tf.compat.v1.GraphDef.FromString(small_pb.read_bytes())
    extra = b"\xc0\x3e\x07"  # tag (1000 << 3 | 0), value 7
    node = gd.node[3]
    node_bytes = node.SerializeToString() + extra
    node.Clear()
    node.MergeFromString(node_bytes)
    data = gd.SerializeToString() + extra
    source = tmp_path / "unknown.pb"
    source.write_bytes(data)
    graph = graphtool.load(source)
    graph.node(node.name).set_attr("graphtool_touched", True)
    out = tmp_path / "out.pb"
    graph.save(out)
    saved = _tf_graph_def(out.read_bytes())
    assert saved.SerializeToString().count(extra) == 2
    assert saved.node[3].attr["graphtool_touched"].b is True


def test_function_library_is_preserved(tmp_path):
    import tensorflow as tf

    @tf.function
    def inner(x):
        return tf.nn.relu(x) * 2.0

    @tf.function(input_signature=[tf.TensorSpec([2, 3], tf.float32)])
    def outer(x):
        return inner(x) + 1.0

    gd = outer.get_concrete_function().graph.as_graph_def()
    assert len(gd.library.function) >= 1
    source = tmp_path / "lib.pb"
    source.write_bytes(gd.SerializeToString())
    graph = graphtool.load(source)
    assert graph.has_library()
    out = tmp_path / "lib_out.pb"
    graph.save(out)
    assert _tf_graph_def(out.read_bytes()) == gd
    text = tmp_path / "lib_out.pbtxt"
    graph.save(text)
    assert _tf_graph_def(text.read_bytes(), text=True) == gd


def test_edit_then_save_runs_in_tensorflow(small_pb, tmp_path):
    import numpy as np
    import tensorflow as tf

    graph = graphtool.load(small_pb)
    out_name = graph.outputs[0]
    # Insert a Mul by a constant 2 in front of the output and check TF computes it.
    two = graph.add_const(np.array(2.0, np.float32), name="two")
    producer = graph.node(out_name)
    doubled = graph.add_node("Mul", "doubled", [producer.output(), two.output()],
                             {"T": graphtool.dtypes.DType.float32})
    out = tmp_path / "edited.pb"
    graph.save(out)

    def run(path, fetch):
        gd = tf.compat.v1.GraphDef.FromString(path.read_bytes())
        with tf.Graph().as_default() as g:
            tf.import_graph_def(gd, name="")
            with tf.compat.v1.Session(graph=g) as sess:
                x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype(np.float32)
                return sess.run(fetch + ":0", {"image:0": x})

    np.testing.assert_allclose(run(out, doubled.name), 2 * run(small_pb, out_name), rtol=1e-6)


def test_loading_and_editing_never_imports_tensorflow(small_pb, tmp_path):
    script = f"""
import sys
import numpy as np
import graphtool
g = graphtool.load({str(small_pb)!r})
for node in g:
    if node.op == "Identity" and node.consumers:
        g.bypass(node)
g.add_const(np.zeros(3, np.float32), name="extra")
g.toposort()
g.save({str(tmp_path / 'x.pb')!r})
g.save({str(tmp_path / 'x.pbtxt')!r})
from graphtool.summary import summarize
summarize(g)
assert "tensorflow" not in sys.modules, "tensorflow was imported"
assert "cv2" not in sys.modules, "cv2 was imported"
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
