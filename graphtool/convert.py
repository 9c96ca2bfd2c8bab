"""One call from a Keras model (or an already frozen graph) to OpenCV files with evidence.

``convert`` chains what graphtool already has - freeze, rewrite with the
OpenCV rules, the ``.pb`` and its ``.pbtxt`` config, before/after drawings,
validation in OpenCV of the ``.pb`` alone and with the ``.pbtxt`` - and puts
the results in one folder.  Every input is checked before anything is
written.  The work happens in a hidden staging folder inside OUTDIR and each
finished file is renamed into place at the end, so OUTDIR never holds a half
file and a conversion that stops early adds nothing to it.

The OpenCV rules are ``rules/opencv.yaml`` of the checkout graphtool runs from
(``pip install -e .``), or the copy ``pip install .`` puts under
``<prefix>/share/graphtool/rules``: ``default_rules()`` finds either.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from graphtool.errors import GraphtoolError

__all__ = ["ConvertResult", "OUTPUT_FILES", "convert", "default_rules"]

# What a conversion leaves in OUTDIR: role -> file name.
OUTPUT_FILES = {
    "graph": "model.pb",          # the rewritten frozen graph: readNetFromTensorflow(pb)
    "config": "model.pbtxt",      # its text topology: readNetFromTensorflow(pb, pbtxt)
    "sidecar": "model.json",      # inputs, outputs, shapes, where it came from
    "reference": "model.npz",     # a seeded input and TensorFlow's outputs for it
    "before": "before.svg",       # the frozen graph, with what the rules removed marked
    "after": "after.svg",         # the rewritten graph, with what they added marked
    "report": "report.html",      # both drawings, the rewrite log and the validation
}
FROZEN_SUFFIXES = (".pb", ".pbtxt")
# Ops that mean a graph still reads variables: OpenCV has no weights for them.
_VARIABLE_OPS = ("VarHandleOp", "VariableV2", "Variable", "ReadVariableOp", "ResourceGather")
PARALLEL_VALIDATIONS = 2


@dataclass
class Validation:
    """One OpenCV run of the result: which files, which interpreter, and the report."""
    form: str                      # "model.pb" or "model.pb + model.pbtxt"
    report: object                 # graphtool.validate.ValidationReport

    @property
    def passed(self) -> bool:
        return self.report.passed

    @property
    def max_abs_err(self) -> float | None:
        errors = [o.max_abs for o in self.report.outputs if o.max_abs is not None]
        return max(errors) if errors else None


@dataclass
class ConvertResult:
    """What ``convert`` did: files written (role -> path), node counts, validations, timings."""
    model: str
    out_dir: str
    froze: bool
    files: dict[str, str] = field(default_factory=dict)
    nodes_before: int = 0
    nodes_after: int = 0
    fired: dict = field(default_factory=dict)
    validations: list[Validation] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every OpenCV run loaded the result and matched TensorFlow."""
        return bool(self.validations) and all(v.passed for v in self.validations)

    @property
    def max_abs_err(self) -> float | None:
        errors = [v.max_abs_err for v in self.validations if v.max_abs_err is not None]
        return max(errors) if errors else None


def default_rules() -> str:
    """``rules/opencv.yaml``: of the checkout this graphtool is imported from, or as
    installed under ``<prefix>/share/graphtool/rules``.

    The rule files (and the ones they include) live at the top of the
    repository, next to the ``graphtool`` package; an editable install keeps
    them there and ``pip install .`` copies them to the prefix, so ``graphtool
    convert`` finds them from any working directory.
    """
    from graphtool.targets.opencv import RULES

    if not os.path.isfile(RULES):
        raise GraphtoolError(
            f"the OpenCV rules are not at {RULES} nor under share/graphtool/rules of this "
            "Python's prefix: reinstall graphtool (pip install .) or pass "
            "--rules PATH/rules/opencv.yaml")
    return RULES


def convert(model, out_dir, *, input_shapes: dict | None = None, custom_objects=None,
            rules=None, opencv_python=None, progress: bool = True) -> ConvertResult:
    """Freeze ``model``, rewrite it for OpenCV, write and validate the files in ``out_dir``.

    ``model``: a ``.keras``/``.h5`` file or SavedModel directory (frozen here,
    with ``custom_objects`` files or modules), or a frozen ``.pb``/``.pbtxt``.
    ``input_shapes`` maps input names to full shapes.  ``rules`` is one rule
    file or a list (default: ``default_rules()``).  ``opencv_python`` is the
    interpreter whose cv2 validates, or a list of several (default:
    $GRAPHTOOL_OPENCV_PYTHON, else this one).  Bad input raises
    ``GraphtoolError`` before anything is written; a result OpenCV cannot load
    or computes differently still writes every file and gives ``passed=False``.
    """
    plan = _Plan.check(model, out_dir, input_shapes, custom_objects, rules, opencv_python)
    steps = _Steps(progress)
    result = ConvertResult(model=plan.model, out_dir=plan.out_dir, froze=not plan.frozen)
    created = not os.path.isdir(plan.out_dir)
    _make_dir(plan.out_dir)
    staging = tempfile.mkdtemp(prefix=".graphtool-convert-", dir=plan.out_dir)
    try:
        with steps.step(f"freeze {os.path.basename(plan.model)}", result, "freeze",
                        skip=plan.frozen):
            source = _frozen_source(plan, staging)
        with steps.step("rewrite with " + ", ".join(os.path.basename(r) for r in plan.rules),
                        result, "rewrite"):
            run = _rewrite(plan, source)
        result.nodes_before, result.nodes_after = len(run.before), len(run.after)
        result.fired = dict(run.stats.get("fired", {}))
        with steps.step("write model.pb, model.pbtxt, model.json", result, "write"):
            _write_graph_files(plan, source, run, staging)
        with steps.step("draw before.svg and after.svg", result, "render"):
            from graphtool.render import write_diff
            drawn = write_diff(run.before, run.after, staging, log=run.log)
        with steps.step(f"validate in OpenCV ({_runs_text(plan)})", result, "validate"):
            result.validations = _validate(plan, source, staging)
        with steps.step("write report.html", result, "report"):
            _write_report(plan, run, drawn, result, staging)
        result.files = _publish(staging, plan.out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and os.path.isdir(plan.out_dir) and not os.listdir(plan.out_dir):
            os.rmdir(plan.out_dir)
    return result


# -- checking the inputs ---------------------------------------------------------------------
@dataclass
class _Plan:
    """The checked request: absolute paths, rule files, interpreters."""
    model: str
    out_dir: str
    frozen: bool
    input_shapes: dict
    custom_objects: list
    rules: list
    pythons: list

    @classmethod
    def check(cls, model, out_dir, input_shapes, custom_objects, rules, opencv_python):
        """Everything a conversion needs, checked without TensorFlow and without writing."""
        model = os.fspath(model)
        if not os.path.exists(model):
            raise GraphtoolError("no such file or directory; give a .keras/.h5 file, a "
                                 "SavedModel directory or a frozen .pb", path=model)
        frozen = _is_frozen_graph(model)
        shapes = {name: [int(d) for d in dims] for name, dims in (input_shapes or {}).items()}
        custom = [os.fspath(c) for c in _as_list(custom_objects)]
        if frozen:
            _check_frozen(model, custom, shapes)
        else:
            from graphtool.freeze.source import detect
            detect(model)
            for spec in custom:
                if spec.endswith(".py") and not os.path.isfile(spec):
                    raise GraphtoolError("no such --custom-objects file; check the path",
                                         path=spec)
        out = os.path.abspath(os.fspath(out_dir))
        _check_out_dir(out)
        rule_paths = [os.path.abspath(os.fspath(r)) for r in _as_list(rules)] or [default_rules()]
        from graphtool.lang.loader import load_rules
        load_rules(*rule_paths)
        _protect_inputs(out, [model, *_sidecar_files(model), *rule_paths])
        pythons = [_check_python(p) for p in (_as_list(opencv_python) or [None])]
        return cls(os.path.abspath(model), out, frozen, shapes, custom, rule_paths, pythons)


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    return list(value)


def _is_frozen_graph(path: str) -> bool:
    """A GraphDef file; SavedModels (a folder holding saved_model.pb) are not."""
    name = os.path.basename(path)
    return (os.path.isfile(path) and path.lower().endswith(FROZEN_SUFFIXES)
            and not name.startswith("saved_model."))


def _check_frozen(path: str, custom: list, shapes: dict) -> None:
    import graphtool

    if custom:
        raise GraphtoolError("--custom-objects is for Keras models, but this is an already "
                             "frozen graph; drop the option", path=path)
    graph = graphtool.load(path)
    variables = sorted({n.op for n in graph.nodes if n.op in _VARIABLE_OPS})
    if variables:
        raise GraphtoolError(f"the graph still reads variables ({', '.join(variables)}), so it "
                             "is not frozen; convert the Keras model or SavedModel instead",
                             path=path)
    inputs = [n.name for n in graph.inputs]
    unknown = [name for name in shapes if name.split(":")[0] not in inputs]
    if unknown:
        from graphtool.errors import did_you_mean
        raise GraphtoolError(f"--input-shape names {unknown[0]!r}, which is not a graph input"
                             + (did_you_mean(unknown[0], inputs)
                                or f"; inputs: {', '.join(inputs) or 'none'}"), path=path)


def _check_out_dir(out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise GraphtoolError("OUTDIR exists and is not a directory; give a directory for the "
                             "results", path=out)
    for name in OUTPUT_FILES.values():
        if os.path.isdir(os.path.join(out, name)):
            raise GraphtoolError(f"OUTDIR holds a directory named {name}, where the result "
                                 "goes; remove it or choose another OUTDIR", path=out)
    parent = out
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GraphtoolError("cannot write there; choose another OUTDIR or fix its "
                             "permissions", path=parent)


def _sidecar_files(model: str) -> list[str]:
    """The freeze sidecar and reference data next to a frozen graph."""
    stem = os.path.splitext(model)[0]
    return [stem + ".json", stem + ".npz"]


def _protect_inputs(out: str, inputs: list[str]) -> None:
    for name in OUTPUT_FILES.values():
        target = os.path.join(out, name)
        for given in inputs:
            if os.path.exists(target) and os.path.exists(given) and os.path.samefile(target,
                                                                                      given):
                raise GraphtoolError(f"OUTDIR would overwrite the input {given} with its "
                                     f"{name}; choose another OUTDIR", path=out)


def _check_python(python: str | None) -> str:
    """The interpreter that runs OpenCV, once it has shown it can import cv2."""
    from graphtool.validate.runner import PYTHON_ENV, opencv_python

    chosen = opencv_python(os.fspath(python) if python else None)
    hint = f"pass --opencv-python PATH (or set {PYTHON_ENV}) to a Python that has opencv-python"
    if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
        raise GraphtoolError(f"the OpenCV interpreter is not an executable file; {hint}",
                             path=chosen)
    try:
        probe = subprocess.run([chosen, "-c", "import cv2"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphtoolError(f"cannot run the OpenCV interpreter ({exc}); {hint}",
                             path=chosen) from None
    if probe.returncode != 0:
        raise GraphtoolError(f"this Python cannot import cv2; {hint}", path=chosen)
    return chosen


def _make_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise GraphtoolError(f"cannot create OUTDIR: {exc.strerror}", path=path) from None


# -- the stages ----------------------------------------------------------------------------
@dataclass
class _Source:
    """The frozen graph the rewrite starts from, with its sidecar and reference data."""
    graph: str
    sidecar: str | None
    reference: str | None


def _frozen_source(plan: _Plan, staging: str) -> _Source:
    """Freeze a model into the staging folder, or find the given graph's sidecar and data."""
    if not plan.frozen:
        from graphtool.freeze import freeze

        out = os.path.join(staging, "frozen.pb")
        freeze(plan.model, out, input_shapes=plan.input_shapes,
               custom_objects=plan.custom_objects, reference=True)
        stem = os.path.splitext(out)[0]
        return _Source(out, stem + ".json", stem + ".npz")
    sidecar, reference = (p if os.path.isfile(p) else None for p in _sidecar_files(plan.model))
    if sidecar and reference is None:
        named = _read_json(sidecar).get("reference")
        path = os.path.join(os.path.dirname(sidecar), named) if named else None
        reference = path if path and os.path.isfile(path) else None
    return _Source(plan.model, sidecar, reference)


def _rewrite(plan: _Plan, source: _Source):
    from graphtool.rewrite.run import run_rewrite

    shapes = plan.input_shapes if plan.frozen else None   # freezing already pinned them
    return run_rewrite(source.graph, plan.rules, input_shapes=shapes)


def _write_graph_files(plan: _Plan, source: _Source, run, staging: str) -> None:
    """model.pb, model.pbtxt, model.npz (made with TensorFlow if the input had none), model.json."""
    from graphtool.emit.files import atomic_write
    from graphtool.emit.opencv_pbtxt import opencv_config
    from graphtool.freeze.sidecar import json_bytes
    from graphtool.validate.signature import SIDECAR_FORMAT, read_signature

    path = _staged(staging)
    atomic_write(path["graph"], run.after.serialize())
    atomic_write(path["config"], opencv_config(run.after))
    signature = read_signature(run.before, source.graph, sidecar=source.sidecar or False,
                               input_shapes=plan.input_shapes or None)
    if source.reference:
        shutil.copyfile(source.reference, path["reference"])
    else:
        atomic_write(path["reference"], _reference_npz(run.before, signature))
    sidecar = dict(_read_json(source.sidecar)) if source.sidecar else {
        "format": SIDECAR_FORMAT,
        "inputs": [_port(p) for p in signature.inputs],
        "outputs": [_port(p) for p in signature.outputs],
        "source": {"path": plan.model, "kind": "frozen-graph"},
    }
    sidecar["reference"] = OUTPUT_FILES["reference"]
    sidecar["converted"] = {"from": plan.model, "rules": list(run.rules.files)}
    atomic_write(path["sidecar"], json_bytes(sidecar))


def _port(port) -> dict:
    return {"name": port.name, "tensor": port.tensor, "dtype": port.dtype,
            "shape": list(port.shape) if port.shape is not None else None}


def _reference_npz(graph, signature) -> bytes:
    """A seeded input and TensorFlow's outputs for it, as freeze --reference writes them."""
    from graphtool.freeze.sidecar import npz_bytes
    from graphtool.validate.feeds import random_inputs
    from graphtool.validate.tf_runner import TFSession

    feeds = random_inputs(signature.inputs)
    with _tensorflow_quietly(), TFSession(graph, label="reference") as session:
        values = session.run({p.tensor: feeds[p.name] for p in signature.inputs},
                             [p.tensor for p in signature.outputs])
    arrays = {f"inputs/{name}": value for name, value in feeds.items()}
    arrays.update({f"outputs/{p.name}": values[p.tensor] for p in signature.outputs})
    return npz_bytes(arrays)


def _runs_text(plan: _Plan) -> str:
    count = 2 * len(plan.pythons)
    return f"{count} runs" if count > 2 else "model.pb, model.pb + model.pbtxt"


def _validate(plan: _Plan, source: _Source, staging: str) -> list[Validation]:
    """Each interpreter runs model.pb alone and with model.pbtxt, against the reference data.

    A run that fails is repeated with bisection, which names the first node
    whose value diverges (TensorFlow runs the frozen graph for that).
    """
    from graphtool.validate import validate

    path = _staged(staging)
    forms = [(OUTPUT_FILES["graph"], None),
             (f"{OUTPUT_FILES['graph']} + {OUTPUT_FILES['config']}", path["config"])]
    jobs = [(python, form, pbtxt) for python in plan.pythons for form, pbtxt in forms]

    def one(job, bisect=False):
        python, form, pbtxt = job
        report = validate(source.graph, path["graph"], pbtxt=pbtxt,
                          reference_data=path["reference"], sidecar=path["sidecar"],
                          opencv_python=python, bisect=bisect)
        report.reference = plan.model
        report.candidate = os.path.join(plan.out_dir, OUTPUT_FILES["graph"])
        report.pbtxt = os.path.join(plan.out_dir, OUTPUT_FILES["config"]) if pbtxt else None
        return Validation(form, report)

    with ThreadPoolExecutor(max_workers=PARALLEL_VALIDATIONS) as pool:
        runs = list(pool.map(one, jobs))
        again = [k for k, v in enumerate(runs) if not v.passed and v.report.outputs]
        if again:
            with _tensorflow_quietly():
                for k, redone in zip(again, pool.map(lambda k: one(jobs[k], True), again)):
                    runs[k] = redone
    return runs


@contextmanager
def _tensorflow_quietly():
    """TensorFlow's C++ log lines (CUDA probing, MLIR notes) kept off stderr unless it crashes."""
    from graphtool.freeze.job import quiet_tensorflow, stderr_captured

    quiet_tensorflow()
    with stderr_captured():
        yield


def _write_report(plan: _Plan, run, drawn: dict, result: ConvertResult, staging: str) -> None:
    from graphtool.emit.files import atomic_write
    from graphtool.render.report import build_report

    before, after = run.before.copy(), run.after.copy()
    before.source = plan.model
    after.source = os.path.join(plan.out_dir, OUTPUT_FILES["graph"])
    page = build_report(before, after, log=run.log, validation=_validation_rows(result),
                        title=f"graphtool convert {os.path.basename(plan.model)}",
                        diff=drawn["diff"], svgs=drawn["svgs"])
    atomic_write(_staged(staging)["report"], page)


def _validation_rows(result: ConvertResult) -> list[dict]:
    """One table per OpenCV run for the report: verdict, error, and one row per output."""
    runs = []
    for v in result.validations:
        report = v.report
        meta = {"files": v.form, "runtime": report.runtime,
                "verdict": "pass" if report.passed else "FAIL"}
        if report.error:
            meta["error"] = report.error
        if report.bisect is not None and report.bisect.node:
            meta["first divergence"] = f"{report.bisect.node} ({report.bisect.layer_type})"
        rows = [{"output": o.name, "passed": o.passed, "max abs err": o.max_abs,
                 "tolerance": o.tolerance, "layout": o.layout, "read from": o.source,
                 **({"error": o.error} if o.error else {})} for o in report.outputs]
        runs.append({**meta, "outputs": rows})
    return runs


def _staged(staging: str) -> dict[str, str]:
    return {role: os.path.join(staging, name) for role, name in OUTPUT_FILES.items()}


def _publish(staging: str, out_dir: str) -> dict[str, str]:
    """Rename each finished file from the staging folder into OUTDIR (atomic per file)."""
    files = {}
    for role, name in OUTPUT_FILES.items():
        target = os.path.join(out_dir, name)
        os.replace(os.path.join(staging, name), target)
        files[role] = target
    return files


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise GraphtoolError(f"cannot read the sidecar: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise GraphtoolError("the sidecar is not a JSON object; regenerate it with graphtool "
                             "freeze", path=path)
    return data


# -- progress --------------------------------------------------------------------------------
class _Steps:
    """The progress display: a spinner for the running step on a terminal, a line per finished one.

    Off (``progress=False``) nothing is printed; timings are recorded either way.
    """

    def __init__(self, enabled: bool):
        self.console = None
        if enabled:
            from rich.console import Console
            self.console = Console(stderr=True, highlight=False)

    @contextmanager
    def step(self, text: str, result: ConvertResult, key: str, skip: bool = False):
        started = time.monotonic()
        if self.console is not None and not skip and self.console.is_terminal:
            with self.console.status(text + " ..."):
                yield
        else:
            yield
        if skip:
            return
        result.seconds[key] = round(time.monotonic() - started, 3)
        if self.console is not None:
            self.console.print(f"[green]done[/]  {text} [dim]({result.seconds[key]:.1f} s)[/]")
