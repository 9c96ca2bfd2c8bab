"""Bad input: one line naming the file and what to do, exit 2, no traceback, nothing lost."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphtool
from conftest import fixture_graphs, run_cli
from graphtool.errors import GraphtoolError


def _assert_one_line_error(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory):
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self):
            self.w = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([1, 3], tf.float32)])
        def __call__(self, x):
            return x * self.w

    path = tmp_path_factory.mktemp("sm") / "model"
    tf.saved_model.save(Scale(), str(path))
    return path


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    import keras
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    base = tmp_path_factory.mktemp("keras")
    model.save(base / "m.keras")
    model.save(base / "m.h5")
    return base / "m.keras", base / "m.h5"


def test_missing_file(tmp_path):
    _assert_one_line_error(run_cli("inspect", tmp_path / "nope.pb"), "nope.pb", "no such file")


def test_directory(tmp_path):
    _assert_one_line_error(run_cli("inspect", tmp_path), "is a directory")


def test_empty_file(tmp_path):
    (tmp_path / "empty.pb").write_bytes(b"")
    _assert_one_line_error(run_cli("inspect", tmp_path / "empty.pb"), "empty.pb", "empty")


def test_truncated_protobuf(small_pb, tmp_path):
    data = small_pb.read_bytes()
    bad = tmp_path / "truncated.pb"
    bad.write_bytes(data[: len(data) // 2])
    _assert_one_line_error(run_cli("inspect", bad), "truncated.pb", "truncated or corrupt")


def test_text_that_is_not_a_graph(tmp_path):
    bad = tmp_path / "notes.pbtxt"
    bad.write_text("hello: world\nthis is not a graph\n")
    _assert_one_line_error(run_cli("inspect", bad), "notes.pbtxt", "not a GraphDef in text format")


def test_saved_model_file_and_directory(saved_model_dir):
    _assert_one_line_error(run_cli("inspect", saved_model_dir / "saved_model.pb"),
                           "SavedModel", "graphtool freeze")
    _assert_one_line_error(run_cli("inspect", saved_model_dir), "SavedModel", "graphtool freeze")


def test_keras_files(keras_files):
    keras_path, h5_path = keras_files
    _assert_one_line_error(run_cli("inspect", keras_path), "Keras", "graphtool freeze")
    _assert_one_line_error(run_cli("inspect", h5_path), "HDF5", "graphtool freeze")


def test_over_two_gib(tmp_path):
    huge = tmp_path / "huge.pb"
    with open(huge, "wb") as fh:  # sparse: costs no disk
        fh.truncate(2**31 + 10)
    _assert_one_line_error(run_cli("inspect", huge), "2 GiB")


def _text_graph(tmp_path, body: str) -> Path:
    path = tmp_path / "g.pbtxt"
    path.write_text(body)
    return path


def test_duplicate_names(tmp_path):
    path = _text_graph(tmp_path, 'node { name: "a" op: "Placeholder" }\n'
                                 'node { name: "a" op: "Neg" }\n')
    _assert_one_line_error(run_cli("inspect", path), "duplicate node names", "'a'")


def test_missing_input(tmp_path):
    path = _text_graph(tmp_path, 'node { name: "a" op: "Placeholder" }\n'
                                 'node { name: "b" op: "Neg" input: "aa" }\n')
    _assert_one_line_error(run_cli("inspect", path), "'b'", "'aa'", "did you mean 'a'")


def test_cycle(tmp_path):
    path = _text_graph(tmp_path, 'node { name: "a" op: "Neg" input: "c" }\n'
                                 'node { name: "b" op: "Neg" input: "a" }\n'
                                 'node { name: "c" op: "Neg" input: "b:0" }\n')
    _assert_one_line_error(run_cli("inspect", path), "cycle", "a -> b -> c -> a")


def test_debug_shows_traceback(tmp_path):
    result = run_cli("inspect", "--debug", tmp_path / "nope.pb")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_save_never_overwrites_the_input_and_is_atomic(small_pb, tmp_path):
    copy = tmp_path / "in.pb"
    copy.write_bytes(small_pb.read_bytes())
    graph = graphtool.load(copy)
    graph.remove(graph.add_const(__import__("numpy").float32(0), "tmp"))
    with pytest.raises(GraphtoolError, match="refusing to overwrite the input"):
        graph.save(copy)
    assert copy.read_bytes() == small_pb.read_bytes()
    graph.save(copy, overwrite_input=True)  # explicit permission
    with pytest.raises(GraphtoolError, match="does not exist"):
        graph.save(tmp_path / "no" / "such" / "dir.pb")
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".graphtool-")]
    assert leftovers == []


_SEEDS = [p for p in fixture_graphs() if p.stat().st_size < 200_000]


@pytest.fixture(scope="module")
def fuzz_seeds(small_pb):
    return [p.read_bytes() for p in _SEEDS] + [small_pb.read_bytes()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_bytes_load_or_fail_cleanly(fuzz_seeds, tmp_path, data):
    seed = fuzz_seeds[data.draw(st.integers(0, len(fuzz_seeds) - 1), label='seed index')]
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if kind == "flip" and buf:
            buf[pos] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del buf[pos:pos + data.draw(st.integers(1, 16))]
    path = tmp_path / "mutant.pb"
    path.write_bytes(bytes(buf))
    try:
        graph = graphtool.load(path)
    except GraphtoolError:
        return
    from graphtool.summary import summarize
    try:
        summarize(graph)
        graph.save(tmp_path / "mutant_out.pb")
    except GraphtoolError:
        pass
