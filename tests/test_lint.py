"""graphtool lint: static findings on real graphs, checked against what OpenCV really does.

Expectations come from OpenCV itself (a graph lint flags fails or computes wrong in
OpenCV; a graph lint passes loads and matches) and from the graphs' construction.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, run_cli

GRAPHS = ROOT / "rules" / "opencv" / "graphs"


def _lint(path, **kwargs):
    import graphtool
    from graphtool.lint import lint
    return lint(graphtool.load(path), "opencv", **kwargs)


def _checks(findings) -> set[tuple[str, str]]:
    return {(f.op, f.check) for f in findings}


@pytest.mark.parametrize("graph, expected", [
    ("dilated_conv.pb", {("Conv2D", "attrs")}),
    ("sub_from_constant.pb", {("Sub", "const_first_input")}),
    ("matmul_transpose_b.pb", {("MatMul", "attrs")}),
    ("stored_inline.pb", {("BiasAdd", "const_storage")}),
    ("strided_slices.pb", {("StridedSlice", "attrs")}),
    ("generic_math.pb", {("Neg", "unknown_op"), ("Rsqrt", "unknown_op"), ("Erfc", "unknown_op"),
                         ("SquaredDifference", "unknown_op"), ("Pow", "unknown_op")}),
    ("clamps.pb", {("Maximum", "unknown_op"), ("Minimum", "unknown_op")}),
])
def test_each_check_kind_finds_what_the_graph_was_built_with(graph, expected):
    assert _checks(_lint(GRAPHS / graph)) == expected


def test_findings_name_node_op_and_reason():
    findings = _lint(GRAPHS / "dilated_conv.pb")
    assert {f.node for f in findings} == {"Conv2D", "Conv2D_1"}
    assert all("dilations" in f.message and "silently wrong" in f.message for f in findings)


def test_keras3_graph_as_frozen():
    """Biases behind Squeeze(Reshape(...)), unknown ops and Sub(const, x) of the raw graph."""
    checks = _checks(_lint(FIXTURES / "conv_bn_pool.k3.pb"))
    assert checks == {("BiasAdd", "const_inputs"), ("Rsqrt", "unknown_op"),
                      ("Sub", "const_first_input")}


def test_rank_checks_use_input_shapes():
    """A bias on a 3-D tensor is found only when shapes are known."""
    path = FIXTURES / "reshape_permute.k3.pb"
    with_shapes = _lint(path, input_shapes={"input": [1, 8, 8, 4]})
    assert ("BiasAdd", "input_ranks") in _checks(with_shapes)
    assert any("3-D" in f.message for f in with_shapes)


def test_concat_axis_must_stay_in_int_val(tmp_path):
    import graphtool

    graph = graphtool.load(FIXTURES / "residual_concat.k2.pb")
    concat = graph.nodes_by_op("ConcatV2")[0]
    axis = graph.node(concat.data_inputs[-1])
    assert not _lint_graph(graph)
    axis.set_tensor(axis.tensor)            # same value, now in tensor_content
    findings = _lint_graph(graph)
    assert _checks(findings) == {("ConcatV2", "typed_inputs")}


def _lint_graph(graph):
    from graphtool.lint import lint
    return [f for f in lint(graph, "opencv") if f.op == "ConcatV2"]


def test_what_lint_flags_really_fails_in_opencv():
    """Lint's claims hold in OpenCV: the flagged raw graphs fail, the rewritten one passes."""
    from graphtool.validate import validate

    for name in ("dilated_conv", "sub_from_constant", "generic_math"):
        path = GRAPHS / f"{name}.pb"
        assert _lint(path)
        report = validate(path, path, reference_data=path.with_suffix(".npz"))
        assert not report.passed, f"{name}: OpenCV computed it right although lint flags it"


def test_cli_exit_codes_and_json(tmp_path):
    flagged = run_cli("lint", GRAPHS / "dilated_conv.pb")
    assert flagged.returncode == 1
    assert "Conv2D_1 (Conv2D): dilations=[1, 3, 2, 1]" in flagged.stdout

    clean = run_cli("lint", FIXTURES / "conv_bn_pool.k2.pb")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no problems found" in clean.stdout

    as_json = run_cli("lint", GRAPHS / "matmul_transpose_b.pb", "--json")
    data = json.loads(as_json.stdout)
    assert [(f["node"], f["check"]) for f in data["findings"]] == [("MatMul", "attrs")]
    assert "transpose_b=True" in data["findings"][0]["message"]


def test_cli_bad_target_is_one_line(tmp_path):
    result = run_cli("lint", FIXTURES / "conv_bn_pool.k2.pb", "--target", "opencvv")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "did you mean 'opencv'" in result.stderr

    bogus = tmp_path / "target.yaml"
    bogus.write_text("name: x\n")
    result = run_cli("lint", FIXTURES / "conv_bn_pool.k2.pb", "--target", bogus)
    assert result.returncode == 2 and "graphtool-target/1" in result.stderr


def test_a_target_file_is_data(tmp_path):
    """A custom target: its op list and constraints drive the findings, no code changes."""
    target = tmp_path / "tiny.yaml"
    target.write_text(
        "format: graphtool-target/1\nname: tiny\nignored: [Const]\n"
        "ops:\n  Placeholder: {}\n  Conv2D:\n    attrs:\n      padding:\n"
        "        equals: VALID\n        why: tiny pads nothing\n")
    import graphtool
    from graphtool.lint import lint

    found = lint(graphtool.load(GRAPHS / "dilated_conv.pb"), str(target))
    assert {(f.node, f.check) for f in found} == {
        ("Conv2D", "attrs"), ("Relu", "unknown_op"), ("Relu_1", "unknown_op"),
        ("output", "unknown_op")}
    assert "tiny pads nothing" in [f for f in found if f.node == "Conv2D"][0].message


def test_lint_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, graphtool; from graphtool.lint import lint; "
            f"lint(graphtool.load({str(FIXTURES / 'conv_bn_pool.k3.pb')!r}), 'opencv'); "
            "print('tensorflow' in sys.modules, 'cv2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]
