"""rules/opencv.yaml on every fixture: OpenCV 4.x and 5.x load the result and match TensorFlow.

Each fixture is rewritten once (in this process, without TensorFlow), then run
in OpenCV 4 ($GRAPHTOOL_OPENCV4_PYTHON, default this interpreter) and OpenCV 5
($GRAPHTOOL_OPENCV5_PYTHON, required) as a .pb alone and as .pb + .pbtxt,
each run in a child process by graphtool.validate, against the fixture's
TensorFlow reference (.npz).  Pass rule: max abs error <= 1e-4 x max(1,
max|reference|).  The runs are started together (a few at a time) when the
first of them is needed, so the whole matrix costs about as long as its
slowest quarter.
"""
from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

RULE_GRAPHS = ROOT / "rules" / "opencv" / "graphs"
GRAPHS = sorted(FIXTURES.glob("*.pb")) + sorted(RULE_GRAPHS.glob("*.pb"))
VERSIONS = ("4", "5")
FORMS = ("pb", "pbtxt")
TOLERANCE = 1e-4          # the acceptance rule, relative to max(1, max|reference|)
PARALLEL_RUNS = 3

# Fixtures the rules cannot make pass yet: (fixture stem, version or None, form or None) -> why.
KNOWN_FAILURES: dict = {}


def _known_failure(stem: str, version: str, form: str) -> str | None:
    for (name, v, f), why in KNOWN_FAILURES.items():
        if name == stem and v in (None, version) and f in (None, form):
            return why
    return None


def _python(version: str) -> str:
    if version == "4":
        return os.environ.get("GRAPHTOOL_OPENCV4_PYTHON") or sys.executable
    path = os.environ.get("GRAPHTOOL_OPENCV5_PYTHON")
    if not path:
        pytest.fail("GRAPHTOOL_OPENCV5_PYTHON is not set: point it at a Python interpreter with "
                    "opencv-python-headless 5.x and numpy (`make test` sets it)")
    return path


def _case_id(path: Path, version: str, form: str) -> str:
    return f"{path.stem}-opencv{version}-{form}"


CASES = [pytest.param(path, version, form, id=_case_id(path, version, form),
                      marks=[pytest.mark.xfail(strict=True, reason=why)]
                      if (why := _known_failure(path.stem, version, form)) else [])
         for path in GRAPHS for version in VERSIONS for form in FORMS]


class _Runs:
    """Rewritten fixtures and their OpenCV validations, started together on first use."""

    def __init__(self, folder: Path, wanted: list[tuple]):
        self.folder = folder
        self.wanted = wanted
        self.rewritten: dict[Path, object] = {}
        self.futures: dict[tuple, object] = {}
        self.pool = ThreadPoolExecutor(PARALLEL_RUNS)
        self.lock = threading.Lock()   # one rewrite per graph, however many runs need it

    def rewrite(self, path: Path):
        """(out.pb, out.pbtxt, RewriteResult or the exception that stopped it)."""
        with self.lock:
            return self._rewrite(path)

    def _rewrite(self, path: Path):
        if path not in self.rewritten:
            from graphtool.targets.opencv import rewrite_for_opencv

            out, pbtxt = self.folder / f"{path.stem}.pb", self.folder / f"{path.stem}.pbtxt"
            try:
                result = rewrite_for_opencv(path, out, pbtxt=pbtxt)
            except Exception as exc:  # noqa: BLE001 - reported by the test that needs it
                result = exc
            self.rewritten[path] = (out, pbtxt, result)
        return self.rewritten[path]

    def result(self, path: Path, version: str, form: str):
        key = (path, version, form)
        if key not in self.futures:
            # Rewrite (which parses rule expressions with ast) and import the validator
            # here, in the main thread: CPython 3.11's parser is not safe to run in a
            # worker thread while pytest parses source to report a failure.  The
            # threads only wait for OpenCV child processes.
            import graphtool.validate  # noqa: F401
            for wanted in [*self.wanted, key]:
                self.rewrite(wanted[0])
            for wanted in [*self.wanted, key]:
                if wanted not in self.futures:
                    self.futures[wanted] = self.pool.submit(self._validate, *wanted)
        return self.futures[key].result()

    def _validate(self, path: Path, version: str, form: str):
        from graphtool.validate import validate

        out, pbtxt, result = self.rewritten[path]
        if isinstance(result, Exception):
            return result
        return validate(path, out, pbtxt=pbtxt if form == "pbtxt" else None,
                        reference_data=path.with_suffix(".npz"), rtol=TOLERANCE, atol=0.0,
                        opencv_python=_python(version), timeout=300)


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    wanted = [tuple(item.callspec.params[k] for k in ("path", "version", "form"))
              for item in request.session.items
              if item.originalname == "test_fixture_loads_and_matches_in_opencv"]
    for _, version, _ in wanted:
        _python(version)  # fail now, not in a worker thread, when OpenCV 5 is not configured
    state = _Runs(tmp_path_factory.mktemp("opencv"), wanted)
    yield state
    state.pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("path, version, form", CASES)
def test_fixture_loads_and_matches_in_opencv(runs, path, version, form):
    report = runs.result(path, version, form)
    if isinstance(report, Exception):
        raise report
    assert report.opencv_version and report.opencv_version.startswith(version + "."), \
        f"{_python(version)} runs OpenCV {report.opencv_version}, not {version}.x"
    assert report.error is None, report.error
    assert report.outputs, "no output was compared"
    for output in report.outputs:
        assert output.passed, (f"{output.name}: max abs error {output.max_abs} exceeds "
                               f"{output.tolerance} ({output.error or 'values differ'})")
        assert output.source == output.name, (
            f"OpenCV has no layer named {output.name!r}; its value was read from "
            f"{output.source!r} (an output name did not survive)")


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p.stem)
def test_rewritten_graph_is_lint_clean(runs, path):
    """graphtool lint finds nothing OpenCV would refuse in what the rules produce."""
    import graphtool
    from graphtool.lint import lint

    out, _, result = runs.rewrite(path)
    if isinstance(result, Exception):
        raise result
    findings = lint(graphtool.load(out), "opencv")
    assert not findings, "\n".join(map(str, findings))


def test_cli_rewrite_writes_both_forms_and_validates(tmp_path):
    """What users run: graphtool rewrite IN --rules rules/opencv.yaml -o OUT.pb --pbtxt OUT.pbtxt."""
    from conftest import run_cli

    fixture = FIXTURES / "layer_norm.k3.pb"
    out, pbtxt = tmp_path / "ln.pb", tmp_path / "ln.pbtxt"
    result = run_cli("rewrite", fixture, "--rules", ROOT / "rules" / "opencv.yaml", "-o", out,
                     "--pbtxt", pbtxt, "--validate",
                     env={"GRAPHTOOL_OPENCV_PYTHON": _python("5")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.exists() and pbtxt.exists()
    assert result.stdout.count("PASS: all 1 outputs within tolerance") == 2, result.stdout
    assert "OpenCV 5." in result.stdout


def test_rewrite_needs_neither_tensorflow_nor_opencv():
    import subprocess

    code = ("import sys; from graphtool.targets.opencv import rewrite_for_opencv; "
            f"rewrite_for_opencv({str(FIXTURES / 'tf1_phase.tf1.pb')!r}, sys.argv[1], "
            "pbtxt=sys.argv[1] + 'txt'); print('tensorflow' in sys.modules, 'cv2' in sys.modules)")
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([sys.executable, "-c", code, os.path.join(folder, "out.pb")],
                             capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_stages_run_in_the_documented_order():
    """(The rule tests of every file under rules/ run in tests/test_rule_files.py.)"""
    from graphtool.rewrite import load_rules

    rules = load_rules(ROOT / "rules" / "opencv.yaml")
    assert [s.name for s in rules.stages] == ["inline", "cleanup", "fold", "fuse", "collapse",
                                              "fix", "trim", "lower", "finish"]
