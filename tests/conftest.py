"""Shared test helpers: real frozen graphs built with TensorFlow, cached per session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CACHE = Path(os.environ.get("GRAPHTOOL_TEST_CACHE", ROOT / ".cache" / "tests"))


def fixture_graphs() -> list[Path]:
    """Every committed fixture graph (.pb and .pbtxt)."""
    return sorted(p for p in FIXTURES.glob("*.pb*") if p.suffix in (".pb", ".pbtxt"))


def freeze_keras(model, path: Path) -> Path:
    """Freeze a Keras 3 model at batch 1 with TensorFlow's own converter."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    specs = [tf.TensorSpec([1, *i.shape[1:]], i.dtype, name=i.name.split(":")[0])
             for i in model.inputs]
    fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
    concrete = fn.get_concrete_function(*specs)
    frozen = convert_variables_to_constants_v2(concrete)
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    return path


@pytest.fixture(scope="session")
def resnet50_pb() -> Path:
    """A frozen Keras 3 ResNet50 (weights=None), built once and cached on disk."""
    path = CACHE / "resnet50.k3.pb"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        script = (
            "import sys; sys.path.insert(0, %r); import keras; from conftest import freeze_keras;"
            "from pathlib import Path;"
            "keras.utils.set_random_seed(0);"
            "m = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3));"
            "freeze_keras(m, Path(%r + '.tmp'))" % (str(Path(__file__).parent), str(path)))
        subprocess.run([sys.executable, "-c", script], check=True)
        os.replace(str(path) + ".tmp", path)
    return path


@pytest.fixture(scope="session")
def small_pb(tmp_path_factory) -> Path:
    """A small frozen Keras 3 conv net with BatchNorm, Dropout and a custom computation."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(1)
    x = keras.Input((8, 8, 3), name="image")
    y = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.ReLU(name="relu")(y)
    y = keras.layers.Dropout(0.5, name="drop")(y)
    y = keras.layers.Flatten(name="flat")(y)
    y = keras.layers.Dense(3, activation="softmax", name="probs")(y)
    model = keras.Model(x, y)
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 1.5, 4), rng.normal(size=4), rng.normal(size=4),
                    rng.uniform(0.5, 2.0, 4)])
    return freeze_keras(model, tmp_path_factory.mktemp("small") / "small.pb")


def run_cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Run the graphtool CLI in a fresh process, as a user would."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "graphtool", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=full_env)


# -- no silent skips -------------------------------------------------------------
# The suite runs real TensorFlow, OpenCV 4.x and 5.x, graphviz and Chromium.  A test
# that cannot reach one of them has not passed, so a skip is turned into a failure
# (expected failures marked xfail with a reason stay what they are).
REQUIRED_PROGRAMS = ("dot", "chromium", "chromedriver")
REQUIRED_ENV = ("GRAPHTOOL_OPENCV5_PYTHON",)


def pytest_sessionstart(session):
    import shutil
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    missing += [f"${v}" for v in REQUIRED_ENV if not os.environ.get(v)]
    if missing:
        raise pytest.UsageError(
            "the test suite needs " + ", ".join(missing) + "; run `make test`, which installs "
            "and sets them up")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, which this suite treats as a failure: {reason}"


@pytest.hookimpl(tryfirst=True)
def pytest_collectreport(report):
    """A test module skipped at import (a missing dependency) fails too."""
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"module skipped, which this suite treats as a failure: {reason}"
        _SKIPPED_MODULES.append(report.nodeid)


_SKIPPED_MODULES: list[str] = []


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED_MODULES and exitstatus == 0:
        session.exitstatus = 1
