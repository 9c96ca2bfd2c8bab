"""graphtool convert: a real Keras model to OpenCV files, checked against Keras itself.

The Keras model is the bundled seed example (Functional, batch norm, Dropout, a
custom layer), built with examples/seed/build.py and saved by Keras in a temp
dir.  What the converted files compute is checked here without graphtool:
Keras predicts on an image, and OpenCV 4.x ($GRAPHTOOL_OPENCV4_PYTHON, default
this interpreter) and 5.x ($GRAPHTOOL_OPENCV5_PYTHON, required) run
``readNetFromTensorflow`` on the files in child processes.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, ROOT

SEED = ROOT / "examples" / "seed"
OUTPUT_NAMES = ["model.pb", "model.pbtxt", "model.json", "model.npz", "before.svg", "after.svg",
                "report.html"]
KERAS_TOLERANCE = 1e-4      # relative to max(1, max|keras output|), as graphtool validate uses

# Builds the seed model, saves it, reads it back as a user would, and predicts on an image.
_BUILD_AND_PREDICT = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import keras
from build import build_model
from layers import TimesTwo  # noqa: F401  (registered for load_model)
build_model().save(sys.argv[2])
image = np.random.default_rng(7).random((1, 32, 32, 3), dtype=np.float32)
model = keras.models.load_model(sys.argv[2])
np.save(sys.argv[3], image)
np.save(sys.argv[4], model.predict(image, verbose=0))
# The reference input graphtool freeze documents: standard normal from default_rng(0).
seeded = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype(np.float32)
np.save(sys.argv[5], model.predict(seeded, verbose=0))
"""

# OpenCV alone, as a user runs it: NHWC image -> NCHW blob -> forward.
_OPENCV_FORWARD = """
import sys, numpy as np, cv2
pb, pbtxt, image, out = sys.argv[1:5]
net = cv2.dnn.readNetFromTensorflow(pb, pbtxt) if pbtxt != "-" else cv2.dnn.readNetFromTensorflow(pb)
net.setInput(np.load(image).transpose(0, 3, 1, 2))
np.save(out, net.forward())
print(cv2.__version__)
"""


def opencv_pythons() -> dict[str, str]:
    """OpenCV major version -> interpreter; a missing OpenCV 5 interpreter fails the test."""
    five = os.environ.get("GRAPHTOOL_OPENCV5_PYTHON")
    if not five:
        pytest.fail("GRAPHTOOL_OPENCV5_PYTHON is not set: point it at a Python interpreter with "
                    "opencv-python-headless 5.x and numpy (`make test` sets it)")
    return {"4": os.environ.get("GRAPHTOOL_OPENCV4_PYTHON") or sys.executable, "5": five}


def run_convert(*args, cwd) -> subprocess.CompletedProcess:
    """The CLI in a fresh process from another folder, with graphtool importable as installed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    return subprocess.run([sys.executable, "-m", "graphtool", "convert", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env)


def opencv_forward(python: str, pb: Path, pbtxt: Path | None, image: Path, out: Path):
    done = subprocess.run([python, "-c", _OPENCV_FORWARD, str(pb), str(pbtxt or "-"),
                           str(image), str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(out), done.stdout.strip()


def assert_close(got, expected):
    tolerance = KERAS_TOLERANCE * max(1.0, float(np.abs(expected).max()))
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= tolerance, np.abs(got - expected).max()


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """model.keras built and saved by Keras, an image, and Keras' prediction for it."""
    base = tmp_path_factory.mktemp("seed")
    (base / "layers.py").write_text((SEED / "layers.py").read_text())
    done = subprocess.run([sys.executable, "-c", _BUILD_AND_PREDICT, str(SEED),
                           base / "model.keras", base / "image.npy", base / "keras.npy",
                           base / "keras_seeded.npy"],
                          capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-2000:]
    return base


@pytest.fixture(scope="module")
def converted(seed):
    """`graphtool convert` on the seed model, validated in OpenCV 4 and 5."""
    pythons = opencv_pythons()
    result = run_convert("model.keras", "-o", "out", "--custom-objects", "layers.py",
                         "--opencv-python", pythons["4"], "--opencv-python", pythons["5"],
                         cwd=seed)
    return result, seed / "out"


def test_keras_model_converts_and_passes(converted):
    result, out = converted
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(out)) == sorted(OUTPUT_NAMES)      # and no staging folder left
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("PASS")
    runs = [line for line in lines if line.startswith("  OpenCV")]
    assert len(runs) == 4 and all(" pass " in line for line in runs)
    assert any(line.startswith("  OpenCV 4.") for line in runs)
    assert any(line.startswith("  OpenCV 5.") for line in runs)
    for step in ("freeze model.keras", "rewrite with opencv.yaml", "validate in OpenCV"):
        assert step in result.stderr


@pytest.mark.parametrize("version", ["4", "5"])
@pytest.mark.parametrize("with_pbtxt", [False, True], ids=["pb", "pb+pbtxt"])
def test_opencv_runs_the_files_like_keras(converted, seed, version, with_pbtxt, tmp_path):
    _, out = converted
    got, cv_version = opencv_forward(opencv_pythons()[version], out / "model.pb",
                                     out / "model.pbtxt" if with_pbtxt else None,
                                     seed / "image.npy", tmp_path / "got.npy")
    assert cv_version.startswith(version + ".")
    assert_close(got, np.load(seed / "keras.npy"))


def test_sidecar_and_reference_data(converted, seed):
    _, out = converted
    sidecar = json.loads((out / "model.json").read_text())
    assert sidecar["format"] == "graphtool-sidecar/1"
    assert [(p["name"], p["shape"]) for p in sidecar["inputs"]] == [("image", [1, 32, 32, 3])]
    assert [(p["name"], p["shape"]) for p in sidecar["outputs"]] == [("probs", [1, 10])]
    assert sidecar["reference"] == "model.npz"
    assert sidecar["converted"]["rules"][0] == str(ROOT / "rules" / "opencv.yaml")
    data = np.load(out / "model.npz")
    assert sorted(data.files) == ["inputs/image", "outputs/probs"]
    # The reference is what Keras computes for the documented seeded input.
    seeded = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(data["inputs/image"], seeded)
    assert_close(data["outputs/probs"], np.load(seed / "keras_seeded.npy"))


def test_drawings_and_report(converted):
    _, out = converted
    for name in ("before.svg", "after.svg"):
        root = ET.parse(out / name).getroot()
        assert root.tag.endswith("svg")
        assert "times_two" in (out / name).read_text()    # the custom layer's scope is drawn
    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 2
    assert page.count("OpenCV 4.") >= 2 and page.count("OpenCV 5.") >= 2
    assert ">FAIL<" not in page and page.count('class="pass"') >= 4
    assert "remove-identity" in page                        # the rewrite log is on the page


def test_make_demo_converts_the_bundled_example(tmp_path):
    """The Makefile's demo command, as written there, on the committed examples/seed model."""
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines()
                if "graphtool convert" in line)
    words = shlex.split(line)
    assert words[0].endswith("graphtool") and words[1] == "convert"
    args = words[2:]
    args[args.index("-o") + 1] = str(tmp_path / "seed")     # not into the checkout's out/
    result = run_convert(*args, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("PASS")
    assert sorted(os.listdir(tmp_path / "seed")) == sorted(OUTPUT_NAMES)


def test_frozen_graph_input_skips_freezing(tmp_path):
    from graphtool.convert import convert

    result = convert(FIXTURES / "dense_dropout.k3.pb", tmp_path / "out", progress=False)
    assert not result.froze and "freeze" not in result.seconds
    assert result.passed
    assert len(result.validations) == 2
    assert {v.form for v in result.validations} == {"model.pb", "model.pb + model.pbtxt"}
    assert sorted(os.listdir(tmp_path / "out")) == sorted(OUTPUT_NAMES)
    # The fixture's own reference data (made by TensorFlow when it was frozen) is reused.
    ours, theirs = np.load(result.files["reference"]), np.load(FIXTURES / "dense_dropout.k3.npz")
    assert sorted(ours.files) == sorted(theirs.files)
    for key in theirs.files:
        np.testing.assert_array_equal(ours[key], theirs[key])


def test_frozen_graph_without_sidecar_gets_reference_from_tensorflow(tmp_path):
    """No .json/.npz next to the .pb: TensorFlow makes the reference from the seeded input."""
    (tmp_path / "graph.pb").write_bytes((FIXTURES / "conv_bn_pool.k3.pb").read_bytes())
    result = run_convert("graph.pb", "-o", "out", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == ""                       # --quiet: no progress lines
    ours = np.load(tmp_path / "out" / "model.npz")
    theirs = np.load(FIXTURES / "conv_bn_pool.k3.npz")      # freeze --reference, same seed
    np.testing.assert_array_equal(ours["inputs/input"], theirs["inputs/input"])
    output = [k for k in theirs.files if k.startswith("outputs/")]
    assert len(output) == 1
    np.testing.assert_allclose(ours[output[0]], theirs[output[0]], rtol=1e-5, atol=1e-6)
    sidecar = json.loads((tmp_path / "out" / "model.json").read_text())
    assert sidecar["source"]["kind"] == "frozen-graph"
    assert [p["shape"] for p in sidecar["inputs"]] == [[1, 16, 16, 3]]


# A rule that changes what the model computes: the hidden layer's ReLU becomes a sigmoid.
WRONG_RULES = """\
version: 1
description: Deliberately wrong, to test that convert notices.
rules:
  - id: relu-becomes-sigmoid
    stage: fix
    pattern:
      act: {op: Relu, inputs: [x]}
    replace:
      act: {op: Sigmoid, inputs: [x], attrs: {T: {copy: act}}}
"""


def test_failed_validation_exits_1_and_still_writes_the_evidence(tmp_path):
    (tmp_path / "wrong.yaml").write_text(WRONG_RULES)
    result = run_convert(FIXTURES / "dense_dropout.k3.pb", "-o", "out", "--rules",
                         ROOT / "rules" / "opencv.yaml", "--rules", "wrong.yaml", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.splitlines()[-1].startswith("FAIL: 2 of 2 OpenCV runs failed")
    assert result.stdout.count(" FAIL ") == 2
    assert "first diverging node: dense_dropout_1/hidden_1/Relu" in result.stdout
    assert sorted(os.listdir(tmp_path / "out")) == sorted(OUTPUT_NAMES)
    page = (tmp_path / "out" / "report.html").read_text()
    assert ">FAIL<" in page and "relu-becomes-sigmoid" in page


def _assert_bad_input(result, out: Path, *needles):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("graphtool convert: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists()


def test_bad_input_missing_model(tmp_path):
    _assert_bad_input(run_convert("nope.keras", "-o", "out", cwd=tmp_path), tmp_path / "out",
                      "nope.keras", "no such file")


def test_bad_input_not_a_model(tmp_path):
    (tmp_path / "notes.keras").write_text("not a model")
    _assert_bad_input(run_convert("notes.keras", "-o", "out", cwd=tmp_path), tmp_path / "out",
                      "not a model")


def test_bad_input_outdir_is_a_file(tmp_path):
    (tmp_path / "out").write_text("keep me")
    result = run_convert(FIXTURES / "dense_dropout.k3.pb", "-o", "out", cwd=tmp_path)
    assert result.returncode == 2 and "not a directory" in result.stderr
    assert (tmp_path / "out").read_text() == "keep me"


def test_bad_input_outdir_would_overwrite_the_input(tmp_path):
    original = (FIXTURES / "dense_dropout.k3.pb").read_bytes()
    (tmp_path / "model.pb").write_bytes(original)
    result = run_convert("model.pb", "-o", ".", cwd=tmp_path)
    assert result.returncode == 2 and "would overwrite the input" in result.stderr
    assert (tmp_path / "model.pb").read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["model.pb"]


@pytest.mark.parametrize("args, needles", [
    (["--rules", "missing.yaml"], ["missing.yaml"]),
    (["--custom-objects", "layers.py"], ["--custom-objects", "already frozen"]),
    (["--input-shape", "nope=1,16"], ["nope", "not a graph input"]),
    (["--input-shape", "input=1,x"], ["--input-shape"]),
    (["--opencv-python", "/nonexistent/python"], ["/nonexistent/python", "--opencv-python"]),
], ids=["rules", "custom-objects", "input-name", "input-syntax", "opencv-python"])
def test_bad_options(tmp_path, args, needles):
    result = run_convert(FIXTURES / "dense_dropout.k3.pb", "-o", "out", *args, cwd=tmp_path)
    _assert_bad_input(result, tmp_path / "out", *needles)


def test_bad_input_missing_custom_objects_file(tmp_path):
    result = run_convert(SEED / "model.keras", "-o", "out", "--custom-objects", "nope.py",
                         cwd=tmp_path)
    _assert_bad_input(result, tmp_path / "out", "nope.py", "--custom-objects")


def test_opencv_python_without_cv2(tmp_path):
    """An interpreter that cannot import cv2 is refused before anything is written."""
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -S -c 'raise ImportError(\"cv2\")'\n")
    fake.chmod(0o755)
    result = run_convert(FIXTURES / "dense_dropout.k3.pb", "-o", "out", "--opencv-python", fake,
                         cwd=tmp_path)
    _assert_bad_input(result, tmp_path / "out", "cannot import cv2")
