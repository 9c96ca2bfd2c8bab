"""graphtool validate: TensorFlow vs OpenCV 4.x and 5.x on real frozen graphs.

OpenCV runs in child processes under two interpreters: this one (OpenCV 4.x,
or $GRAPHTOOL_OPENCV4_PYTHON) and $GRAPHTOOL_OPENCV5_PYTHON (OpenCV 5.x),
which must be set - these tests fail rather than skip without it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

import graphtool
from conftest import FIXTURES
from graphtool.errors import GraphtoolError
from graphtool.proto import GraphDef
from graphtool.validate import run_opencv, validate
from graphtool.validate.compare import align_and_compare, compare
from graphtool.validate.feeds import image_inputs
from graphtool.validate.signature import Port, parse_shape_option

CONV = FIXTURES / "conv_bn_pool.k2.pb"          # tf-keras conv net both OpenCV versions load
CONV_K3 = FIXTURES / "conv_bn_pool.k3.pb"       # the same in Keras 3: OpenCV 5.0 segfaults
MULTI = FIXTURES / "multi_io.k2.pb"             # two inputs (image, meta), two outputs
DENSE_KERNEL = "conv_bn_pool/probs/MatMul/ReadVariableOp/resource"
CONV_KERNEL = "conv_bn_pool/conv/Conv2D/ReadVariableOp/resource"


def _opencv4_python() -> str:
    return os.environ.get("GRAPHTOOL_OPENCV4_PYTHON") or sys.executable


def _opencv5_python() -> str:
    path = os.environ.get("GRAPHTOOL_OPENCV5_PYTHON")
    if not path:
        pytest.fail("GRAPHTOOL_OPENCV5_PYTHON is not set: point it at a Python interpreter with "
                    "opencv-python-headless 5.x and numpy (`make test` sets it)")
    return path


@pytest.fixture(params=["4", "5"], ids=["opencv4", "opencv5"])
def opencv(request):
    """(interpreter, expected OpenCV major version) - every OpenCV test runs on both."""
    python = _opencv4_python() if request.param == "4" else _opencv5_python()
    return python, request.param


def _perturbed_copy(src: Path, dst: Path, const: str, delta: float = 0.5) -> Path:
    """Copy a graph with one weight tensor's first output channel (last axis) shifted by
    ``delta`` - a Graph API edit (shifting a whole Dense kernel would cancel in the softmax)."""
    graph = graphtool.load(src)
    node = graph.node(const)
    weights = node.tensor.copy()
    weights[..., 0] += np.float32(delta)
    node.set_tensor(weights)
    graph.save(dst)
    return dst


def _copy_with_sidecar(src: Path, directory: Path) -> Path:
    dst = directory / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def _write_topology_pbtxt(pb: Path, path: Path) -> Path:
    """An OpenCV text config: the graph without Consts (weights stay in the .pb) and NoOps."""
    graph_def = GraphDef()
    for node in graphtool.load(pb).to_graph_def().node:
        if node.op in ("Const", "NoOp"):
            continue
        kept = graph_def.node.add()
        kept.CopyFrom(node)
        del kept.input[:]
        kept.input.extend(i for i in node.input if not i.startswith("^"))
    path.write_text(text_format.MessageToString(graph_def))
    return path


def _identity_graph(path: Path) -> Path:
    """Placeholder -> Identity: OpenCV 5.0 segfaults importing it, 4.13 raises at forward."""
    graph = graphtool.Graph()
    graph.add_node("Placeholder", "x", attrs={"dtype": ("float32", "type"),
                                              "shape": ([1, 4, 4, 3], "shape")})
    graph.add_node("Identity", "y", ["x"], attrs={"T": ("float32", "type")})
    graph.save(path)
    return path


@pytest.fixture(scope="module")
def tf_graphs(tmp_path_factory):
    """Graphs frozen from tf.functions: a 4-D multi-output net and one with dynamic shapes."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    rng = np.random.default_rng(3)
    const = lambda *shape: tf.constant(rng.normal(size=shape).astype("float32"))  # noqa: E731
    w1, b1, w2 = const(3, 3, 3, 4), const(4), const(1, 1, 2, 4)

    def two_in_two_out(a, b):
        y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(a, w1, 1, "SAME"), b1))
        s = tf.add(y, tf.nn.conv2d(b, w2, 1, "SAME"), name="sum")
        return (tf.identity(tf.nn.avg_pool2d(s, 2, 2, "VALID"), name="feat"),
                tf.identity(tf.reduce_mean(s, axis=[1, 2]), name="vec"))

    def conv_any_size(x):
        return tf.identity(tf.nn.relu(tf.nn.conv2d(x, w1, 1, "SAME")), name="out")

    out = tmp_path_factory.mktemp("tfgraphs")
    graphs = {}
    for name, fn, specs in (
            ("two_in_two_out", two_in_two_out, [tf.TensorSpec([1, 6, 6, 3], tf.float32, "a"),
                                                tf.TensorSpec([1, 6, 6, 2], tf.float32, "b")]),
            ("any_size", conv_any_size, [tf.TensorSpec([None, None, None, 3], tf.float32, "x")])):
        concrete = tf.function(fn).get_concrete_function(*specs)
        frozen = convert_variables_to_constants_v2(concrete)
        path = out / f"{name}.pb"
        path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
        graphs[name] = (path, frozen)
    return graphs


def run_cli(*args):
    """The CLI in a fresh process; stderr ends with a line saying whether TF was imported."""
    code = ("import sys; from graphtool.cli import main; rc = main(sys.argv[1:]); "
            "print('tensorflow imported:', 'tensorflow' in sys.modules, file=sys.stderr); "
            "sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True)


# -- the pass rule ------------------------------------------------------------------------

def test_default_tolerance_is_the_projects_acceptance_criterion():
    # max abs error <= 1e-4 x max(1, max|reference|): 0.02 for a reference peaking at 200.
    ref = np.array([200.0, -3.0, 0.5], np.float32)
    assert compare("o", ref, ref + np.array([0, 0.019, 0], np.float32)).passed
    assert not compare("o", ref, ref + np.array([0, 0.021, 0], np.float32)).passed
    # Small references are measured against 1, not against their own size.
    small = np.array([0.001, -0.002], np.float32)
    assert compare("o", small, small + np.float32(0.00009)).passed
    assert not compare("o", small, small + np.float32(0.00011)).passed
    # NaN where the reference has a number fails; matching NaNs do not.
    assert not compare("o", np.array([1.0, 2.0]), np.array([1.0, np.nan])).passed
    assert compare("o", np.array([1.0, np.nan]), np.array([1.0, np.nan])).passed


def test_layout_alignment_prefers_channels_last_then_falls_back():
    rng = np.random.default_rng(0)
    nhwc = rng.normal(size=(1, 3, 5, 2)).astype(np.float32)
    assert align_and_compare("o", nhwc, nhwc).layout == "nhwc"
    # A blob that was never transposed back (OpenCV's own NCHW order) still lines up.
    raw_nchw_viewed_as_nhwc = nhwc.transpose(0, 3, 1, 2)  # shape (1, 2, 3, 5)
    as_returned = raw_nchw_viewed_as_nhwc.transpose(0, 2, 3, 1)
    result = align_and_compare("o", raw_nchw_viewed_as_nhwc, as_returned)
    assert (result.layout, result.passed) == ("nchw", True)
    assert align_and_compare("o", nhwc.reshape(1, 30), nhwc.reshape(1, 1, 1, 30)).passed
    wrong = align_and_compare("o", nhwc, nhwc[:, :2])
    assert not wrong.passed and "shape differs" in wrong.error


# -- pass ------------------------------------------------------------------------------------

def test_fixture_passes_against_tensorflow(opencv):
    python, major = opencv
    report = validate(CONV, CONV, opencv_python=python)
    assert report.error is None
    assert report.opencv_version.startswith(major + ".")
    assert report.opencv_engine == ("classic" if major == "4" else "auto")
    assert report.passed and [o.name for o in report.outputs] == ["probs"]
    assert report.signature.startswith("sidecar")
    out = report.outputs[0]
    assert out.max_abs <= out.tolerance == pytest.approx(1e-4)  # softmax: max(1, max|p|) = 1
    assert out.source == "conv_bn_pool/probs/Softmax"


def test_fixture_passes_against_freeze_reference_data(opencv):
    python, _ = opencv
    npz = CONV.with_suffix(".npz")
    report = validate(CONV, CONV, reference_data=npz, opencv_python=python)
    assert report.passed
    with np.load(npz) as data:
        expected = data["outputs/probs"]
    stats = report.outputs[0].reference
    assert stats.shape == list(expected.shape)
    assert stats.max == pytest.approx(float(expected.max()))
    assert report.inputs[0]["source"].startswith("reference data")


def test_engine_choice_on_opencv5():
    report = validate(CONV, CONV, opencv_python=_opencv5_python(), opencv_engine="classic")
    assert report.passed and report.opencv_engine == "classic"
    with pytest.raises(GraphtoolError, match="no engine 'warp'"):
        validate(CONV, CONV, opencv_python=_opencv5_python(), opencv_engine="warp")
    with pytest.raises(GraphtoolError, match="no engine choice"):
        validate(CONV, CONV, opencv_python=_opencv4_python(), opencv_engine="new")


def test_interpreter_comes_from_the_environment_by_default(monkeypatch):
    monkeypatch.setenv("GRAPHTOOL_OPENCV_PYTHON", _opencv5_python())
    report = validate(CONV, CONV, reference_data=CONV.with_suffix(".npz"))
    assert report.passed and report.opencv_version.startswith("5.")
    assert report.opencv_python == _opencv5_python()


# -- a perturbed weight fails, and bisection names it ----------------------------------------

@pytest.mark.parametrize("const, layer, matched_at_least", [
    (DENSE_KERNEL, "conv_bn_pool/probs/MatMul", 4),   # conv, bn, relu, pool match before it
    (CONV_KERNEL, "conv_bn_pool/conv/Conv2D", 0),
], ids=["dense-kernel", "conv-kernel"])
def test_perturbed_weight_fails_and_bisect_names_its_layer(opencv, tmp_path, const, layer,
                                                           matched_at_least):
    python, _ = opencv
    bad = _perturbed_copy(CONV, tmp_path / "bad.pb", const)
    report = validate(CONV, bad, opencv_python=python, bisect=True)
    assert not report.passed and report.error is None
    assert report.outputs[0].max_abs > report.outputs[0].tolerance
    found = report.bisect
    assert found.layer == layer
    assert const in found.consts
    assert found.node in found.covers
    assert found.matched_before >= matched_at_least
    assert found.comparison.max_abs > found.comparison.tolerance
    assert found.comparison.reference.shape == found.comparison.candidate.shape


def test_bisect_is_not_run_when_outputs_pass():
    report = validate(CONV, CONV, bisect=True)
    assert report.passed and report.bisect is None


# -- crashes and hangs are reports, not deaths -------------------------------------------------

def test_opencv5_segfault_is_reported(tmp_path):
    graph = _identity_graph(tmp_path / "identity.pb")
    report = validate(graph, graph, opencv_python=_opencv5_python())
    assert not report.passed and report.outputs == []
    assert report.error == "OpenCV 5.0.0 crashed with SIGSEGV while importing identity.pb"
    assert report.stage == "import"
    keras3 = validate(CONV_K3, CONV_K3, reference_data=CONV_K3.with_suffix(".npz"),
                      opencv_python=_opencv5_python())
    assert keras3.error.startswith("OpenCV 5.0.0 crashed with SIGSEGV while importing")


def test_opencv4_error_on_the_same_graphs_is_its_first_line(tmp_path):
    graph = _identity_graph(tmp_path / "identity.pb")
    report = validate(graph, graph, opencv_python=_opencv4_python())
    assert report.error.startswith("OpenCV 4.13.0 failed while running identity.pb: "
                                   "(-215:Assertion failed) !empty() in function 'forward'")
    keras3 = validate(CONV_K3, CONV_K3, reference_data=CONV_K3.with_suffix(".npz"),
                      opencv_python=_opencv4_python())
    assert "failed while importing" in keras3.error and "Input layer not found" in keras3.error
    assert "\n" not in keras3.error


def test_a_worker_over_its_time_is_killed_and_reported(opencv):
    python, _ = opencv
    x = np.zeros((1, 16, 16, 3), np.float32)
    result = run_opencv(CONV, {"input": x}, ["probs"], python=python, timeout=0.05)
    assert not result.ok
    assert "did not finish within 0.05 s" in result.error and "killed" in result.error
    assert result.returncode == -9


# -- multi-input / multi-output, layouts ---------------------------------------------------------

def test_multi_input_multi_output_fixture(opencv):
    python, _ = opencv
    report = validate(MULTI, MULTI, opencv_python=python)
    assert report.passed
    assert [o.name for o in report.outputs] == ["class_probs", "box"]
    assert [i["name"] for i in report.inputs] == ["image", "meta"]


def test_multi_output_4d_blobs_come_back_channels_last(opencv, tf_graphs):
    python, _ = opencv
    path, frozen = tf_graphs["two_in_two_out"]
    report = validate(path, path, opencv_python=python)
    assert report.passed, report.to_dict()
    shapes = {o.name: (o.reference.shape, o.layout) for o in report.outputs}
    assert sorted(shapes.values()) == [([1, 3, 3, 4], "nhwc"), ([1, 4], "same")]
    # The same net through run_opencv directly, against TensorFlow's own function: the two
    # inputs (3 and 2 channels) only fit when fed by name.
    import tensorflow as tf
    rng = np.random.default_rng(1)
    a = rng.normal(size=(1, 6, 6, 3)).astype(np.float32)
    b = rng.normal(size=(1, 6, 6, 2)).astype(np.float32)
    result = run_opencv(path, {"a": a, "b": b}, [["Identity", "feat", "AvgPool2D"]],
                        python=python)
    expected = frozen(tf.constant(a), tf.constant(b))[0].numpy()
    np.testing.assert_allclose(result.outputs["Identity"], expected, rtol=1e-4, atol=1e-4)


def test_pbtxt_config(opencv, tmp_path):
    python, _ = opencv
    for pb in (CONV, MULTI):
        pbtxt = _write_topology_pbtxt(pb, tmp_path / (pb.stem + ".pbtxt"))
        report = validate(pb, pb, pbtxt=pbtxt, opencv_python=python)
        assert report.passed, report.error
        assert report.pbtxt == str(pbtxt)


def test_pbtxt_bisect_uses_the_text_topology(tmp_path):
    bad = _perturbed_copy(CONV, tmp_path / "bad.pb", DENSE_KERNEL)
    pbtxt = _write_topology_pbtxt(bad, tmp_path / "bad.pbtxt")
    report = validate(CONV, bad, pbtxt=pbtxt, bisect=True)
    assert not report.passed
    assert report.bisect.layer == "conv_bn_pool/probs/MatMul"
    assert DENSE_KERNEL in report.bisect.consts


# -- --engine tf -------------------------------------------------------------------------------

def test_engine_tf_checks_semantics_without_opencv(tmp_path):
    assert validate(CONV, CONV, engine="tf").passed
    bad = _perturbed_copy(CONV, tmp_path / "bad.pb", DENSE_KERNEL, delta=0.2)
    report = validate(CONV, bad, engine="tf", bisect=True)
    assert not report.passed and report.opencv_version is None
    assert report.bisect.node == "conv_bn_pool/probs/MatMul"
    assert report.bisect.consts == [DENSE_KERNEL]
    assert report.bisect.comparison.layout == "same"


def test_engine_tf_names_ops_tensorflow_lacks(tmp_path):
    graph = graphtool.load(CONV)
    graph.node("conv_bn_pool/relu/Relu").op = "HardSwish"   # an OpenCV-only layer type
    graph.save(tmp_path / "opencv_only.pb")
    with pytest.raises(GraphtoolError, match=r"HardSwish \(conv_bn_pool/relu/Relu\)"):
        validate(CONV, tmp_path / "opencv_only.pb", engine="tf")


# -- inputs ----------------------------------------------------------------------------------------

def test_image_input_is_resized_and_made_rgb(tmp_path):
    import cv2
    bgr = np.zeros((40, 30, 3), np.uint8)
    bgr[:] = (30, 20, 10)                                   # B, G, R
    cv2.imwrite(str(tmp_path / "flat.png"), bgr)
    arrays = image_inputs(str(tmp_path / "flat.png"),
                          [Port("input", "input:0", "float32", (1, 16, 16, 3))])
    assert arrays["input"].shape == (1, 16, 16, 3)
    assert (arrays["input"][0, 5, 7] == [10, 20, 30]).all()  # R, G, B
    report = validate(CONV, CONV, input_file=tmp_path / "flat.png")
    assert report.passed and report.inputs[0]["source"].startswith("file")


def test_npy_and_npz_inputs(tmp_path):
    x = np.random.default_rng(5).uniform(0, 1, (16, 16, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)                           # batch dimension added
    assert validate(CONV, CONV, input_file=tmp_path / "x.npy").passed
    np.savez(tmp_path / "wrong.npz", other=x)
    with pytest.raises(GraphtoolError, match="no array for input 'input'"):
        validate(CONV, CONV, input_file=tmp_path / "wrong.npz")


def test_dynamic_shapes_need_input_shape(tf_graphs):
    path, frozen = tf_graphs["any_size"]
    with pytest.raises(GraphtoolError, match=r"x \[1, -1, -1, 3\].*--input-shape"):
        validate(path, path)
    name, shape = parse_shape_option("x=1,5,7,3")
    report = validate(path, path, input_shapes={name: shape})
    assert report.passed and report.inputs[0]["shape"] == [1, 5, 7, 3]


def test_reference_data_that_disagrees_fails_by_the_right_amount(tmp_path):
    with np.load(CONV.with_suffix(".npz")) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["outputs/probs"] = arrays["outputs/probs"] * np.float32(1.5)
    np.savez(tmp_path / "scaled.npz", **arrays)
    report = validate(CONV, CONV, reference_data=tmp_path / "scaled.npz")
    assert not report.passed
    # OpenCV computes the true probabilities p; the reference now says 1.5 p.
    expected_error = float(np.abs(arrays["outputs/probs"] / 1.5 * 0.5).max())
    assert report.outputs[0].max_abs == pytest.approx(expected_error, rel=1e-3)


# -- CLI ---------------------------------------------------------------------------------------------

def test_cli_json_with_reference_data_needs_no_tensorflow(tmp_path):
    ref = _copy_with_sidecar(MULTI, tmp_path)
    proc = run_cli("validate", ref, ref, "--reference-data", MULTI.with_suffix(".npz"), "--json",
                   "--opencv-python", _opencv5_python())
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["passed"] is True and data["opencv_version"].startswith("5.")
    assert [o["name"] for o in data["outputs"]] == ["class_probs", "box"]
    assert all(o["max_abs"] <= o["tolerance"] for o in data["outputs"])
    assert proc.stderr.strip().endswith("tensorflow imported: False")


def test_cli_reports_a_crash_with_exit_1(tmp_path):
    graph = _identity_graph(tmp_path / "identity.pb")
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 3)).astype(np.float32)
    np.savez(tmp_path / "identity.npz", **{"inputs/x": x, "outputs/y": x})  # y = x, by definition
    proc = run_cli("validate", graph, graph, "--reference-data", tmp_path / "identity.npz",
                   "--opencv-python", _opencv5_python())
    assert proc.returncode == 1
    assert "OpenCV 5.0.0 crashed with SIGSEGV while importing identity.pb" in proc.stdout
    assert "FAIL" in proc.stdout and "Traceback" not in proc.stderr


def test_cli_bisect_text_report(tmp_path, capsys):
    # In this process: TensorFlow is already loaded here, a fresh one would spend its import.
    from graphtool.cli import main
    bad = _perturbed_copy(CONV, tmp_path / "bad.pb", DENSE_KERNEL)
    assert main(["validate", str(CONV), str(bad), "--bisect"]) == 1
    out = capsys.readouterr().out
    assert "first diverging node: conv_bn_pool/probs/BiasAdd" in out
    assert DENSE_KERNEL in out
    assert "FAIL: 1 of 1 outputs beyond tolerance" in out


NPZ = str(CONV.with_suffix(".npz"))


@pytest.mark.parametrize("args, message", [
    (["missing.pb", CONV, "--reference-data", NPZ], "no such file"),
    ([CONV, CONV, "--input-shape", "input"], "write NAME=dims"),
    ([CONV, CONV, "--input-shape", "nope=1,2", "--reference-data", NPZ], "not an input"),
    ([CONV, CONV, "--input", "x.txt"], "no such input file"),
    ([CONV, CONV, "--input", "x.txt", "--reference-data", NPZ], "both give the input data"),
    ([CONV, CONV, "--opencv-python", "/nonexistent/python", "--reference-data", NPZ],
     "cannot start the OpenCV interpreter"),
], ids=["missing-graph", "bad-shape", "unknown-input", "missing-input", "two-inputs",
        "no-interpreter"])
def test_cli_bad_input_exits_2_with_one_line(args, message):
    proc = run_cli("validate", *args)
    assert proc.returncode == 2, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("graphtool validate: error:") and message in lines[0]
    assert lines[-1] == "tensorflow imported: False" and len(lines) == 2
