"""`graphtool rewrite` with every optional output: pbtxt config, drawings, report, validation."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from conftest import FIXTURES, ROOT, run_cli


def _opencv5() -> str:
    python = os.environ.get("GRAPHTOOL_OPENCV5_PYTHON")
    assert python, "set GRAPHTOOL_OPENCV5_PYTHON to a Python with OpenCV 5.0 (make test does)"
    return python


def test_rewrite_writes_config_drawings_report_and_validates(tmp_path):
    source = tmp_path / "model.pb"
    for suffix in (".pb", ".json", ".npz"):
        shutil.copy(FIXTURES / f"dense_dropout.k3{suffix}", source.with_suffix(suffix))
    out = tmp_path / "out.pb"
    result = run_cli("rewrite", source, "--rules", ROOT / "rules" / "opencv.yaml", "-o", out,
                     "--pbtxt", tmp_path / "out.pbtxt", "--render", tmp_path / "svg",
                     "--report", tmp_path / "report.html", "--validate",
                     "--opencv-python", _opencv5())
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.count("PASS") == 2  # the .pb alone and the .pb + .pbtxt
    assert "OpenCV 5.0" in result.stdout
    config = (tmp_path / "out.pbtxt").read_text()
    assert 'op: "Const"' in config and "tensor_content" not in config
    for name in ("before.svg", "after.svg"):
        svg = (tmp_path / "svg" / name).read_text()
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") >= 2 and "remove-identity" in html
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert sidecar["outputs"][0]["name"] == "probs"


def test_rewrite_validate_needs_an_output(tmp_path):
    result = run_cli("rewrite", FIXTURES / "dense_dropout.k3.pb", "--rules",
                     ROOT / "rules" / "opencv.yaml", "--dry-run", "--validate")
    assert result.returncode == 2
    assert "need -o" in result.stderr and "Traceback" not in result.stderr
    assert not list(Path(tmp_path).iterdir())
