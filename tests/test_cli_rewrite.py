"""The rewrite, explain and test-rules commands, run as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "conv_bn_pool.k3.pb"
PIPELINE = ROOT / "rules" / "examples" / "pipeline.yaml"


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_rewrite_writes_graph_sidecar_and_log(tmp_path):
    out, log = tmp_path / "out.pb", tmp_path / "log.jsonl"
    result = run_cli("rewrite", FIXTURE, "--rules", PIPELINE, "-o", out, "--log", log, "--stats")
    assert result.returncode == 0, result.stderr
    assert "39 -> 14 nodes" in result.stdout and "fold-batchnorm" in result.stdout
    assert "ops: AddV2 2->0" in result.stdout
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert sidecar["outputs"][0]["name"] == "probs"
    assert (tmp_path / sidecar["reference"]).resolve() == FIXTURE.with_suffix(".npz")
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(e.get("rule") == "fold-batchnorm" for e in entries)
    # TensorFlow computes the reference outputs from the rewritten graph.
    import tensorflow  # noqa: F401 - a real dependency: missing it fails
    import graphtool
    from tf_graphs import run
    data = np.load(FIXTURE.with_suffix(".npz"))
    got = run(graphtool.load(out), {"input": data["inputs/input"]}, ["probs"])
    np.testing.assert_allclose(got[0], data["outputs/probs"], rtol=1e-5, atol=1e-6)


def test_rewrite_does_not_import_tensorflow(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from graphtool.cli import main
        code = main(["rewrite", {str(FIXTURE)!r}, "--rules", {str(PIPELINE)!r},
                     "-o", {str(tmp_path / 'o.pb')!r}])
        print(code, "tensorflow" in sys.modules)
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split()[-2:] == ["0", "False"], result.stderr


def test_dry_run_writes_nothing(tmp_path):
    result = run_cli("rewrite", FIXTURE, "--rules", PIPELINE, "--dry-run", cwd=tmp_path,
                     env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and "nothing written" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_output_is_required_without_dry_run():
    message = one_line_error(run_cli("rewrite", FIXTURE, "--rules", PIPELINE))
    assert "give -o OUT.pb" in message


def test_bad_rule_file_is_reported_before_the_graph_is_read(tmp_path):
    rules = tmp_path / "bad.yaml"
    rules.write_text("rules:\n  - id: r\n    pattern: {a: {op: Relu, inputs: [x]}}\n"
                     "    replace: x\n    prioritty: 3\n")
    out = tmp_path / "out.pb"
    message = one_line_error(run_cli("rewrite", tmp_path / "missing.pb", "--rules", rules,
                                     "-o", out))
    assert f"{rules}:5:5: unknown key 'prioritty' in rule 'r' (did you mean 'priority'?)" in message
    assert not out.exists()


def test_a_failing_rule_writes_nothing(tmp_path):
    rules = tmp_path / "shape.yaml"
    rules.write_text(textwrap.dedent("""
        rules:
          - id: wrong-shape
            pattern:
              bias: {op: BiasAdd, inputs: [x, b]}
            replace:
              bias: {op: BiasAdd, inputs: [x, b2]}
              b2: {const: "zeros([3])", shape: [4]}
        """).lstrip())
    out = tmp_path / "out.pb"
    message = one_line_error(run_cli("rewrite", FIXTURE, "--rules", rules, "-o", out,
                                     "--log", tmp_path / "log"))
    assert "rule 'wrong-shape'" in message and "failed at node" in message
    assert "computed const 'b2' has shape [3], but the rule declares [4]" in message
    assert not out.exists() and not (tmp_path / "log").exists()


def test_refuses_to_overwrite_the_input(tmp_path):
    copy = tmp_path / "model.pb"
    copy.write_bytes(FIXTURE.read_bytes())
    message = one_line_error(run_cli("rewrite", copy, "--rules", PIPELINE, "-o", copy))
    assert "refusing to overwrite the input file" in message
    assert copy.read_bytes() == FIXTURE.read_bytes()


def test_input_shape_names_are_checked(tmp_path):
    message = one_line_error(run_cli("rewrite", ROOT / "rules/examples/graphs/leaky.pb",
                                     "--rules", PIPELINE, "--dry-run",
                                     "--input-shape", "inptu=1,6,6,3"))
    assert "'inptu'" in message and "did you mean 'input'" in message


def test_explain_reports_partial_matches_and_reasons():
    result = run_cli("explain", FIXTURE, "--rules", PIPELINE, "--rule", "fold-batchnorm")
    assert result.returncode == 0, result.stderr
    assert "0 of 2 candidate(s) match" in result.stdout
    assert "is Identity, not Mul" in result.stdout
    prepared = run_cli("explain", FIXTURE, "--rules", PIPELINE, "--rule", "fold-batchnorm",
                       "--prepare", "--json")
    entries = json.loads(prepared.stdout)
    matched = [e for e in entries if e["matched"]]
    assert [e["root"] for e in matched] == ["conv_bn_pool_1/bn_1/batchnorm/add_1"]
    assert matched[0]["bindings"]["conv"] == "conv_bn_pool_1/conv_1/convolution"


def test_explain_unknown_rule_suggests():
    message = one_line_error(run_cli("explain", FIXTURE, "--rules", PIPELINE,
                                     "--rule", "fold-batchnrom"))
    assert "no rule 'fold-batchnrom'" in message and "did you mean 'fold-batchnorm'" in message


def test_test_rules_passes_and_fails(tmp_path):
    import tensorflow  # noqa: F401 - a real dependency: missing it fails
    good = run_cli("test-rules", ROOT / "rules/examples/leaky.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.count("PASS") == 2 and "2 passed, 0 failed" in good.stdout
    failing = tmp_path / "failing.yaml"
    failing.write_text(textwrap.dedent(f"""
        rules:
          - id: leaky
            pattern:
              m: {{op: Mul, inputs: [x, a], commutative: true}}
              r: {{op: Maximum, inputs: [x, m], commutative: true}}
            replace:
              r: {{op: LeakyRelu, inputs: [x], attrs: {{alpha: 0.3}}}}
            tests:
              - graph: {ROOT / 'rules/examples/graphs/leaky.pb'}
                fires: 3
        """).lstrip())
    bad = run_cli("test-rules", failing)
    assert bad.returncode == 1
    assert "FAIL leaky on leaky.pb" in bad.stdout
    assert "output output differs by" in bad.stdout   # alpha 0.3 is not what the graph computed
    assert "0 passed, 1 failed" in bad.stdout
