"""graphtool freeze on every kind of input, against the models' own outputs.

Models are real Keras 3 / tf-keras models built into tmp_path; the expected
output always comes from the original model (Keras, the SavedModel signature,
or a TF1 session), never from graphtool.  tf-keras models are built in a child
process, as tf-keras needs TF_USE_LEGACY_KERAS=1 before TensorFlow loads.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, ROOT, run_cli
from graphtool.errors import GraphtoolError
from graphtool.freeze import freeze

sys.path.insert(0, str(FIXTURES))
import make_fixtures  # noqa: E402

LEFTOVER_OPS = {"VarHandleOp", "VariableV2", "ReadVariableOp", "PartitionedCall",
                "StatefulPartitionedCall", "Switch", "Merge", "If", "StatelessIf",
                "PlaceholderWithDefault"}

CUSTOM_LAYERS = textwrap.dedent('''
    import tensorflow as tf

    class TimesTwo(tf.keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0
''')


# ------------------------------------------------------------------ helpers

def read_graph(path):
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(path).read_bytes())
    return graph_def


def run_pb(path, feeds: dict) -> dict:
    """Run a frozen .pb with TensorFlow, feeding/fetching through its sidecar."""
    import tensorflow as tf

    sidecar = json.loads(Path(path).with_suffix(".json").read_text())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(read_graph(path), name="")
    with tf.compat.v1.Session(graph=graph) as session:
        values = session.run([o["tensor"] for o in sidecar["outputs"]],
                             {i["tensor"]: feeds[i["name"]] for i in sidecar["inputs"]})
    return {o["name"]: v for o, v in zip(sidecar["outputs"], values)}


def assert_close(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    tolerance = 1e-5 * max(1.0, float(np.max(np.abs(want))))
    assert float(np.max(np.abs(got - want))) <= tolerance


def assert_fully_frozen(path):
    graph_def = read_graph(path)
    left = sorted({n.op for n in graph_def.node} & LEFTOVER_OPS)
    assert not left, left
    assert not graph_def.library.function
    sidecar = json.loads(Path(path).with_suffix(".json").read_text())
    placeholders = sorted(n.name for n in graph_def.node if n.op == "Placeholder")
    assert placeholders == sorted(i["name"] for i in sidecar["inputs"])
    names = {n.name for n in graph_def.node}
    assert all(o["name"] in names and o["tensor"] == o["name"] + ":0" for o in sidecar["outputs"])
    return graph_def, sidecar


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def seeded(shape):
    return np.random.default_rng(7).standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="module")
def custom_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("custom") / "custom_layers.py"
    path.write_text(CUSTOM_LAYERS)
    return path


@pytest.fixture(scope="module")
def k2_models(tmp_path_factory, custom_file):
    """tf-keras .h5 files (nested Functional, custom layer) and their own outputs, from a child."""
    out = tmp_path_factory.mktemp("k2")
    script = textwrap.dedent(f'''
        import importlib.util, sys
        import numpy as np
        import tensorflow as tf
        import tf_keras
        sys.path.insert(0, {str(FIXTURES)!r})
        import make_fixtures
        spec = importlib.util.spec_from_file_location("custom_layers", {str(custom_file)!r})
        custom = importlib.util.module_from_spec(spec); spec.loader.exec_module(custom)
        x = np.random.default_rng(7).standard_normal((1, 16, 16, 3)).astype(np.float32)
        nested = make_fixtures.build_nested_functional()
        nested.save({str(out / "nested.h5")!r})
        inp = tf.keras.Input((6,), name="features")
        y = custom.TimesTwo(name="double")(tf.keras.layers.Dense(3, name="dense")(inp))
        model = tf.keras.Model(inp, y)
        model.save({str(out / "custom.h5")!r})
        v = np.random.default_rng(7).standard_normal((1, 6)).astype(np.float32)
        np.savez({str(out / "expected.npz")!r}, nested=nested(x, training=False).numpy(),
                 custom=model(v, training=False).numpy(), version=tf_keras.__version__)
    ''')
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True)
    return out


def _custom_module(custom_file):
    import importlib.util

    spec = importlib.util.spec_from_file_location("test_custom_layers", custom_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ Keras 3


@pytest.fixture(scope="module")
def keras3_custom(tmp_path_factory, custom_file):
    """A Keras 3 .keras model with BatchNorm (random statistics), Dropout and a custom layer."""
    import keras

    keras.utils.set_random_seed(3)
    custom = _custom_module(custom_file)
    inp = keras.Input((8, 8, 3), name="photo")
    x = keras.layers.Conv2D(4, 3, name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = custom.TimesTwo(name="double")(x)
    out = keras.layers.Dense(2, name="score")(keras.layers.Flatten(name="flat")(x))
    model = make_fixtures._finish(keras.Model(inp, out))
    path = tmp_path_factory.mktemp("k3") / "custom.keras"
    model.save(path)
    return path, model


def test_keras3_file_with_custom_objects_matches_model(keras3_custom, custom_file, tmp_path):
    path, model = keras3_custom
    out = tmp_path / "frozen.pb"
    result = run_cli("freeze", path, "-o", out, "--custom-objects", custom_file, "--reference")
    assert result.returncode == 0, result.stderr
    graph_def, sidecar = assert_fully_frozen(out)
    assert sidecar["format"] == "graphtool-sidecar/1"
    assert sidecar["inputs"] == [{"name": "photo", "tensor": "photo:0", "dtype": "float32",
                                  "shape": [1, 8, 8, 3]}]
    assert sidecar["outputs"] == [{"name": "score", "tensor": "score:0", "dtype": "float32",
                                   "shape": [1, 2]}]
    assert sidecar["source"]["kind"] == "keras3" and sidecar["source"]["path"] == str(path)
    assert set(sidecar["versions"]) >= {"tensorflow", "keras", "graphtool"}
    assert sidecar["reference"] == "frozen.npz"
    assert "RandomUniform" not in {n.op for n in graph_def.node}

    x = seeded((1, 8, 8, 3))
    assert_close(run_pb(out, {"photo": x})["score"], model(x, training=False))

    reference = np.load(tmp_path / "frozen.npz")
    assert sorted(reference.files) == ["inputs/photo", "outputs/score"]
    expected_input = np.random.default_rng(0).standard_normal((1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(reference["inputs/photo"], expected_input)
    assert_close(reference["outputs/score"], model(expected_input, training=False))


def test_keras3_missing_custom_object_is_one_line(keras3_custom, tmp_path):
    out = tmp_path / "frozen.pb"
    result = run_cli("freeze", keras3_custom[0], "-o", out)
    assert_one_line_error(result, "TimesTwo", "--custom-objects", str(keras3_custom[0]))
    assert list(tmp_path.iterdir()) == []


GROUPED_BUILDER = textwrap.dedent('''
    import numpy as np
    import keras

    def make():
        keras.utils.set_random_seed(5)
        inp = keras.Input((6, 6, 4), name="x")
        y = keras.layers.Conv2D(4, 3, groups=4, padding="same", name="depthwise_groups")(inp)
        y = keras.layers.Conv2D(6, 1, groups=2, name="two_groups")(y)
        return keras.Model(inp, keras.layers.ReLU(name="y")(y))
''')


def test_builder_file_inlines_xla_grouped_convolutions(tmp_path):
    """Keras 3 runs grouped convs as XLA functions; the frozen graph has plain ops instead."""
    builder = tmp_path / "grouped.py"
    builder.write_text(GROUPED_BUILDER)
    out = tmp_path / "grouped.pb"
    sidecar = freeze(None, str(out), builder=f"{builder}:make")
    graph_def, _ = assert_fully_frozen(out)
    ops = {n.op for n in graph_def.node}
    assert {"DepthwiseConv2dNative", "Split", "ConcatV2"} <= ops
    assert sidecar["source"]["kind"] == "builder"

    sys.path.insert(0, str(tmp_path))
    try:
        import grouped
    finally:
        sys.path.remove(str(tmp_path))
    model = grouped.make()
    x = seeded((1, 6, 6, 4))
    assert_close(run_pb(out, {"x": x})["y"], model(x, training=False))


def test_builder_module_and_multi_io_names(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    out = tmp_path / "multi.pb"
    sidecar = freeze(None, str(out), builder="make_fixtures:build_multi_io", reference=True)
    assert_fully_frozen(out)
    assert [i["name"] for i in sidecar["inputs"]] == ["image", "meta"]
    assert [o["name"] for o in sidecar["outputs"]] == ["class_probs", "box"]
    model = make_fixtures.build_multi_io()
    image, meta = seeded((1, 16, 16, 3)), seeded((1, 4))
    got = run_pb(out, {"image": image, "meta": meta})
    want = model([image, meta], training=False)
    assert_close(got["class_probs"], want[0])
    assert_close(got["box"], want[1])


def test_input_shape_for_dynamic_dimensions(tmp_path):
    builder = tmp_path / "fcn.py"
    builder.write_text(textwrap.dedent('''
        import keras

        def make():
            keras.utils.set_random_seed(2)
            inp = keras.Input((None, None, 3), name="image")
            return keras.Model(inp, keras.layers.Conv2D(2, 3, padding="same", name="heat")(inp))
    '''))
    out = tmp_path / "fcn.pb"
    result = run_cli("freeze", "--builder", f"{builder}:make", "-o", out)
    assert_one_line_error(result, "image [1, ?, ?, 3]", "--input-shape")
    assert not out.exists() and not out.with_suffix(".json").exists()

    result = run_cli("freeze", "--builder", f"{builder}:make", "-o", out, "--input-shape", "imag=1,4,4,3")
    assert_one_line_error(result, "'imag'", "did you mean 'image'")

    sidecar = freeze(None, str(out), builder=f"{builder}:make", input_shapes={"image": [1, 12, 10, 3]})
    assert sidecar["inputs"][0]["shape"] == [1, 12, 10, 3]
    assert sidecar["outputs"][0]["shape"] == [1, 12, 10, 2]
    assert_fully_frozen(out)


# ------------------------------------------------------------------ tf-keras 2 (.h5)


def test_tf_keras_h5_with_nested_functional(k2_models, tmp_path):
    out = tmp_path / "nested.pb"
    result = run_cli("freeze", k2_models / "nested.h5", "-o", out, "--reference")
    assert result.returncode == 0, result.stderr
    _, sidecar = assert_fully_frozen(out)
    expected = np.load(k2_models / "expected.npz")
    assert sidecar["source"]["kind"] == "keras2-h5"
    assert sidecar["source"]["saved_by_keras"] == str(expected["version"])
    assert sidecar["versions"]["keras"].startswith("2.")
    got = run_pb(out, {"input": seeded((1, 16, 16, 3))})
    assert_close(got["probs"], expected["nested"])


def test_tf_keras_h5_custom_objects(k2_models, custom_file, tmp_path):
    out = tmp_path / "custom.pb"
    with pytest.raises(GraphtoolError, match="'TimesTwo'.*--custom-objects"):
        freeze(str(k2_models / "custom.h5"), str(out))
    assert not out.exists()
    freeze(str(k2_models / "custom.h5"), str(out), custom_objects=[str(custom_file)])
    assert_fully_frozen(out)
    got = run_pb(out, {"features": seeded((1, 6))})
    assert_close(got["double"], np.load(k2_models / "expected.npz")["custom"])


def test_h5_the_recorded_keras_cannot_read_falls_back_to_the_other(tmp_path):
    """An .h5 from Keras 3 whose keras_version says 2.x: tf-keras fails, Keras 3 reads it."""
    import h5py

    model = make_fixtures.build_nested_functional()
    path = tmp_path / "relabelled.h5"
    model.save(path)
    with h5py.File(path, "a") as f:
        f.attrs["keras_version"] = "2.15.0"
    out = tmp_path / "relabelled.pb"
    with pytest.raises(GraphtoolError, match="tf-keras cannot load the model"):
        freeze(str(path), str(out), keras="2")
    assert not out.exists()
    sidecar = freeze(str(path), str(out))
    assert sidecar["source"]["kind"] == "keras3" and sidecar["source"]["saved_by_keras"] == "2.15.0"
    x = seeded((1, 16, 16, 3))
    assert_close(run_pb(out, {"input": x})["probs"], model(x, training=False))


# ------------------------------------------------------------------ SavedModels


@pytest.fixture(scope="module")
def tf2_saved_model(tmp_path_factory):
    import tensorflow as tf

    class Affine(tf.Module):
        def __init__(self):
            rng = np.random.default_rng(4)
            self.w = tf.Variable(rng.standard_normal((5, 3)).astype(np.float32))
            self.b = tf.Variable(rng.standard_normal(3).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32, name="features")])
        def serve(self, features):
            return {"logits": tf.matmul(features, self.w) + self.b}

        @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32, name="features")])
        def double(self, features):
            return {"twice": 2.0 * tf.nn.relu(tf.matmul(features, self.w))}

    module = Affine()
    path = tmp_path_factory.mktemp("tf2") / "saved"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve, "double": module.double})
    return path, module


def test_tf2_saved_model_signatures(tf2_saved_model, tmp_path):
    path, module = tf2_saved_model
    x = seeded((1, 5))
    for signature, output, method in (("serving_default", "logits", module.serve),
                                      ("double", "twice", module.double)):
        out = tmp_path / f"{signature}.pb"
        sidecar = freeze(str(path), str(out), signature=signature)
        assert_fully_frozen(out)
        assert sidecar["source"]["kind"] == "savedmodel-tf2"
        assert sidecar["inputs"][0]["shape"] == [1, 5]
        assert_close(run_pb(out, {"features": x})[output], method(x)[output])


def test_unknown_signature_lists_available(tf2_saved_model, tmp_path):
    out = tmp_path / "x.pb"
    result = run_cli("freeze", tf2_saved_model[0], "-o", out, "--signature", "doubel")
    assert_one_line_error(result, "'doubel'", "did you mean 'double'", "serving_default", "--signature")
    assert not out.exists()


def test_tf1_simple_save_freezes_learning_phase(tmp_path):
    import tensorflow as tf

    export = tmp_path / "tf1_saved"
    make_fixtures.save_tf1_saved_model(str(export))
    x = seeded((1, 8, 8, 3))
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(export))
        sig = meta.signature_def["serving_default"]
        want = session.run(sig.outputs["probs"].name, {sig.inputs["input"].name: x})

    out = tmp_path / "tf1.pb"
    sidecar = freeze(str(export), str(out))
    graph_def, _ = assert_fully_frozen(out)
    assert "keras_learning_phase" not in {n.name for n in graph_def.node}
    assert sidecar["source"]["kind"] == "savedmodel-tf1"
    assert sidecar["learning_phase"]["nodes"] == ["keras_learning_phase"]
    assert_close(run_pb(out, {"input": x})["probs"], want)


# ------------------------------------------------------------------ bad input


def _make_bad(tmp_path, kind) -> list:
    """Arguments for one kind of bad input (files created in tmp_path/in)."""
    src = tmp_path / "in"
    src.mkdir()
    if kind == "text":
        (src / "model.h5").write_text("not a model\n")
        return [src / "model.h5"]
    if kind == "truncated_h5":
        import h5py

        with h5py.File(src / "full.h5", "w") as f:
            f.attrs["model_config"] = "{}"
            f.create_dataset("w", data=np.zeros(4096, np.float32))
        data = (src / "full.h5").read_bytes()
        (src / "model.h5").write_bytes(data[: len(data) // 3])
        return [src / "model.h5"]
    if kind == "weights_h5":
        import h5py

        with h5py.File(src / "weights.h5", "w") as f:
            f.create_dataset("kernel", data=np.zeros(3, np.float32))
        return [src / "weights.h5"]
    if kind == "empty_dir":
        return [src]
    if kind == "corrupt_saved_model":
        (src / "saved_model.pb").write_bytes(b"\x08\x96\x01garbage\xff\xff")
        return [src]
    if kind == "missing":
        return [src / "nope.keras"]
    if kind == "bad_builder":
        (src / "b.py").write_text("def other():\n    return 1\n")
        return ["--builder", f"{src / 'b.py'}:make"]
    if kind == "bad_shape":
        (src / "model.keras").write_bytes(b"")
        return [src / "model.keras", "--input-shape", "x=1,a,3"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, needle", [
    ("text", "not a model"),
    ("truncated_h5", "corrupt"),
    ("weights_h5", "weights only"),
    ("empty_dir", "no saved_model.pb"),
    ("corrupt_saved_model", "unreadable SavedModel"),
    ("missing", "no such file"),
    ("bad_builder", "no function 'make'"),
    ("bad_shape", "--input-shape"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, kind, needle):
    args = _make_bad(tmp_path, kind)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run_cli("freeze", *args, "-o", out_dir / "model.pb", "--reference")
    assert_one_line_error(result, needle)
    assert list(out_dir.iterdir()) == []


def test_output_never_overwrites_input(keras3_custom, tmp_path):
    model_path = keras3_custom[0]
    before = model_path.read_bytes()
    with pytest.raises(GraphtoolError, match="overwrite the input"):
        freeze(str(model_path), str(model_path))
    assert model_path.read_bytes() == before
    with pytest.raises(GraphtoolError, match="does not exist"):
        freeze(str(model_path), str(tmp_path / "missing_dir" / "m.pb"))


# ------------------------------------------------------------------ fixtures


def test_regenerating_a_fixture_is_byte_identical(tmp_path):
    """The graph, the sidecar and the reference inputs come out byte for byte the same.
    The reference outputs are TensorFlow's own results, and its kernels (oneDNN) pick
    their instruction set per CPU, so on another machine they may differ in the last
    bits (seen: an AVX-512 EPYC against the machine the fixtures were made on)."""
    result = subprocess.run(
        [sys.executable, str(FIXTURES / "make_fixtures.py"), "--only", "conv_bn_pool,tf1_phase",
         "--flavours", "k3,tf1", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for name in ("conv_bn_pool.k3", "tf1_phase.tf1"):
        for ext in (".pb", ".json"):
            assert (tmp_path / (name + ext)).read_bytes() == (FIXTURES / (name + ext)).read_bytes(), name + ext
        with np.load(tmp_path / (name + ".npz")) as made, np.load(FIXTURES / (name + ".npz")) as kept:
            assert sorted(made.files) == sorted(kept.files)
            for key in kept.files:
                if key.startswith("outputs/"):
                    np.testing.assert_allclose(made[key], kept[key], rtol=1e-5, atol=1e-6, err_msg=key)
                else:
                    assert made[key].tobytes() == kept[key].tobytes(), key
