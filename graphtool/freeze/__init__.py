"""Turn Keras models, SavedModels and model builders into frozen GraphDefs for OpenCV.

`freeze(model_path, out_path, ...)` is the Python API behind `graphtool freeze`.
It decides which Keras can read the input (Keras 3 here; tf-keras in a child
process with TF_USE_LEGACY_KERAS=1), freezes with training=False, checks that
TensorFlow running the frozen graph reproduces the model, and writes OUT.pb +
OUT.json (+ OUT.npz with reference=True) atomically.  TensorFlow is imported
only when a freeze runs, never by `import graphtool`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from graphtool.errors import GraphtoolError

__all__ = ["FreezeRequest", "freeze", "freeze_all"]


@dataclass
class FreezeRequest:
    """One model to freeze; mirrors the `graphtool freeze` options."""
    out: str
    model: str | None = None                 # .keras / .h5 file or SavedModel directory
    builder: str | None = None               # "pkg.module:fn" or "FILE.py:fn"
    signature: str = "serving_default"
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    custom_objects: list[str] = field(default_factory=list)
    reference: bool = False
    keras: str = "auto"                      # "auto", "3" or "2"


def freeze(model: str | None, out: str, **options) -> dict:
    """Freeze one model; return the sidecar written next to `out`."""
    return freeze_all([FreezeRequest(out=out, model=model, **options)])[0]


def freeze_all(requests: list[FreezeRequest]) -> list[dict]:
    """Freeze several models, running all tf-keras ones in a single child process.

    A model file that the Keras chosen from its recorded version cannot load is
    tried once with the other Keras (unless `keras` was given explicitly).  All
    jobs run; the first error is raised at the end.
    """
    jobs = [plan(r) for r in requests]
    outcomes = _execute(jobs)
    for k, outcome in enumerate(outcomes):
        if (isinstance(outcome, GraphtoolError) and getattr(outcome, "load_failure", False)
                and requests[k].keras == "auto" and jobs[k]["kind"] == "keras-file"):
            other = dict(jobs[k], flavour="k3" if jobs[k]["flavour"] == "k2" else "k2")
            retry = _execute([other])[0]
            if not isinstance(retry, GraphtoolError):
                outcomes[k] = retry
    for outcome in outcomes:
        if isinstance(outcome, GraphtoolError):
            raise outcome
    return outcomes


def _execute(jobs: list[dict]) -> list:
    """Sidecar or GraphtoolError per job: Keras 3 jobs here, tf-keras ones in the worker."""
    from graphtool.freeze.job import run_job

    outcomes: list = [None] * len(jobs)
    for k, job in enumerate(jobs):
        if job["flavour"] != "k2":
            try:
                outcomes[k] = run_job(job)
            except GraphtoolError as exc:
                outcomes[k] = exc
    legacy = [k for k, job in enumerate(jobs) if job["flavour"] == "k2"]
    if legacy:
        for k, outcome in zip(legacy, _run_worker([jobs[k] for k in legacy])):
            outcomes[k] = outcome
    return outcomes


def _abs_if_file(spec: str) -> str:
    return os.path.abspath(spec) if spec.endswith(".py") or os.sep in spec else spec


def plan(request: FreezeRequest) -> dict:
    """Check the request without TensorFlow and turn it into a JSON-able job."""
    from graphtool.freeze.source import detect

    if bool(request.model) == bool(request.builder):
        raise GraphtoolError("give either a MODEL path or --builder MODULE:FUNCTION (exactly one)")
    if request.keras not in ("auto", "2", "3"):
        raise GraphtoolError(f"--keras must be auto, 2 or 3, not {request.keras!r}")
    out = os.path.abspath(request.out)
    out_dir = os.path.dirname(out)
    if not os.path.isdir(out_dir):
        raise GraphtoolError("output directory does not exist; create it first", path=out_dir)
    if os.path.isdir(out):
        raise GraphtoolError("output is a directory; give a file name such as model.pb", path=request.out)
    job = {
        "out": out, "signature": request.signature, "input_shapes": dict(request.input_shapes),
        "custom_objects": [_abs_if_file(s) for s in request.custom_objects],
        "reference": bool(request.reference), "saved_by": None, "file_format": None,
    }
    if request.builder:
        target, _, func = request.builder.rpartition(":")
        job.update(kind="builder", source=None, display=request.builder,
                   builder=f"{_abs_if_file(target)}:{func}" if target else request.builder,
                   flavour="k2" if request.keras == "2" else "k3")
        return job
    source = detect(request.model, request.keras)
    model_abs = os.path.abspath(request.model)
    if {out, *_sidecars(out)} & {model_abs, *_inside(model_abs)}:
        raise GraphtoolError("output would overwrite the input model; choose another -o path", path=request.out)
    job.update(kind=source.kind, source=model_abs, display=request.model, flavour=source.flavour,
               saved_by=source.saved_by, file_format=source.file_format)
    return job


def _sidecars(out: str):
    from graphtool.freeze.sidecar import sidecar_paths
    return sidecar_paths(out)


def _inside(path: str):
    return [os.path.join(path, "saved_model.pb")] if os.path.isdir(path) else []


def _run_worker(jobs: list[dict]) -> list:
    """Run jobs under tf-keras in `python -m graphtool.freeze.worker`; sidecar or GraphtoolError each."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="graphtool-freeze-") as tmp:
        request, result = os.path.join(tmp, "request.json"), os.path.join(tmp, "result.json")
        with open(request, "w") as f:
            json.dump({"jobs": jobs}, f)
        proc = subprocess.run([sys.executable, "-m", "graphtool.freeze.worker", request, result],
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        results = []
        if os.path.exists(result):
            with open(result) as f:
                results = json.load(f)["results"]
    outcomes = []
    for entry in results:
        if "crash" in entry:
            raise RuntimeError("tf-keras freeze worker failed:\n" + entry["crash"])
        if "error" in entry:
            error = GraphtoolError(entry["error"])
            error.exit_code = entry["exit_code"]
            error.load_failure = entry["load_failure"]
            outcomes.append(error)
        else:
            outcomes.append(entry["sidecar"])
    if len(results) != len(jobs):
        tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"tf-keras freeze worker exited with code {proc.returncode}:\n{tail}")
    return outcomes
