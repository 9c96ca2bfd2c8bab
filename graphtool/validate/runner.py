"""Parent side of the OpenCV run: a child process, a timeout, and a verdict on how it ended.

OpenCV may segfault, abort or hang on a graph it does not understand.  The
worker script runs in its own process group under any Python that has cv2
(OpenCV 4.x in this environment, 5.x in another); whatever happens to it
comes back here as an ``OpenCVResult`` - graphtool itself never goes down.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from graphtool.errors import GraphtoolError

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "opencv_worker.py")
PYTHON_ENV = "GRAPHTOOL_OPENCV_PYTHON"
# Worker stage -> what OpenCV was doing, for "... crashed with SIGSEGV while <doing>".
_DOING = {
    None: "starting Python",
    "start": "loading cv2",
    "import": "importing {model}",
    "forward": "running {model}",
    "dump": "computing intermediate layers of {model}",
    "done": "exiting",
}


@dataclass
class OpenCVResult:
    """How one OpenCV run ended, and what it computed."""
    ok: bool
    error: str | None = None
    stage: str | None = None
    version: str | None = None
    engine: str | None = None
    python: str | None = None
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    output_layers: dict[str, str] = field(default_factory=dict)
    output_layouts: dict[str, str] = field(default_factory=dict)
    layers: dict[str, np.ndarray] = field(default_factory=dict)
    layer_names: list[str] = field(default_factory=list)
    layer_types: dict[str, str] = field(default_factory=dict)
    dump_error: str | None = None
    returncode: int | None = None
    seconds: float = 0.0
    log: str = ""

    @property
    def label(self) -> str:
        """'OpenCV 5.0.0' (or just 'OpenCV' when it never got as far as loading cv2)."""
        return f"OpenCV {self.version}" if self.version else "OpenCV"


def opencv_python(python: str | None = None) -> str:
    """The interpreter that runs OpenCV: the argument, $GRAPHTOOL_OPENCV_PYTHON, or this one."""
    return python or os.environ.get(PYTHON_ENV) or sys.executable


def run_opencv(pb, inputs: dict, outputs, *, pbtxt=None, python: str | None = None,
               engine: str | None = None, timeout: float = 120,
               dump_layers=None) -> OpenCVResult:
    """Run ``pb`` (plus ``pbtxt``) in OpenCV in a child process.

    ``inputs`` maps input names to NHWC arrays (fed as NCHW blobs, by name when
    there are several).  Each entry of ``outputs`` is a layer name or a list of
    candidate names (the first that is a layer of the imported network wins);
    results are keyed by the entry's first name and come back NHWC.
    ``dump_layers`` ("all" or a list of layer names) also returns intermediate
    blobs in ``.layers``.  Crashes, hangs and OpenCV errors give ``ok=False``;
    a missing interpreter, an interpreter without cv2 or an engine that build
    lacks raise ``GraphtoolError``.
    """
    python = opencv_python(python)
    specs = [[o] if isinstance(o, str) else list(o) for o in outputs]
    request = {
        "model": os.path.abspath(os.fspath(pb)),
        "config": os.path.abspath(os.fspath(pbtxt)) if pbtxt else None,
        "engine": engine,
        "inputs": [{"name": name, "key": f"input{i}"} for i, name in enumerate(inputs)],
        "outputs": [{"key": c[0], "candidates": c} for c in specs],
        "dump": dump_layers if dump_layers in (None, "all") else list(dump_layers),
    }
    with tempfile.TemporaryDirectory(prefix="graphtool-opencv-") as job:
        with open(os.path.join(job, "request.json"), "w", encoding="utf-8") as fh:
            json.dump(request, fh)
        np.savez(os.path.join(job, "inputs.npz"),
                 **{f"input{i}": np.asarray(a) for i, a in enumerate(inputs.values())})
        started = time.monotonic()
        returncode, timed_out, log = _spawn(python, job, timeout)
        result = _collect(job, returncode, timed_out, timeout, log,
                          model=os.path.basename(request["model"]))
        result.seconds = round(time.monotonic() - started, 3)
        result.python = python
        return result


# exec failures that say nothing about the interpreter: the same call can succeed a
# moment later (seen: EFAULT when several validations start children at once).
_TRANSIENT_SPAWN_ERRORS = (errno.EFAULT, errno.EAGAIN, errno.ENOMEM, errno.EINTR)


def _start(python: str, job: str, log):
    """Start the worker; transient exec failures are retried, a bad interpreter is an error."""
    for attempt in range(3):
        try:
            return subprocess.Popen([python, WORKER, job], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as exc:
            if exc.errno in _TRANSIENT_SPAWN_ERRORS and attempt < 2:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise GraphtoolError(f"cannot start the OpenCV interpreter {python}: {exc.strerror}; "
                                 f"pass --opencv-python or set {PYTHON_ENV} to a Python that "
                                 "has cv2") from None


def _spawn(python: str, job: str, timeout: float) -> tuple[int | None, bool, str]:
    """Run the worker; returns (exit code or -signal, whether it was killed for time, its log)."""
    log_path = os.path.join(job, "log.txt")
    with open(log_path, "wb") as log:
        proc = _start(python, job, log)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        except BaseException:
            _kill_group(proc)
            raise
    with open(log_path, "rb") as fh:
        text = fh.read()[-4000:].decode("utf-8", "replace")
    return proc.returncode, timed_out, text


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker and anything it started (its own session, so only its group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _collect(job: str, returncode, timed_out: bool, timeout: float, log: str,
             model: str) -> OpenCVResult:
    stage, info = _last_stage(job)
    data = {}
    result_path = os.path.join(job, "result.json")
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as fh:
            data = json.load(fh)
    if data.get("setup_error"):
        raise GraphtoolError(data["setup_error"])
    result = OpenCVResult(ok=False, stage=stage or data.get("stage"),
                          version=data.get("opencv_version") or info.get("opencv_version"),
                          engine=data.get("engine") or info.get("engine"),
                          returncode=returncode, log=log)
    doing = _DOING.get(result.stage, "running").format(model=model)
    crash = None
    if timed_out:
        crash = (f"{result.label} did not finish within {timeout:g} s while {doing} "
                 "(killed; raise --timeout if the model is merely slow)")
    elif returncode is not None and returncode < 0:
        crash = f"{result.label} crashed with {_signal_name(-returncode)} while {doing}"
    elif not data:
        crash = (f"{result.label} exited with code {returncode} while {doing} "
                 f"without a result: {_last_line(log)}")
    if crash and not (result.stage == "dump" and data.get("ok")):
        result.error = crash
        return result
    result.ok = bool(data.get("ok"))
    if data.get("error"):
        result.error = f"{result.label} failed while {doing}: {_tidy(data['error'])}"
    result.layer_names = list(data.get("layer_names") or [])
    result.layer_types = dict(data.get("layer_types") or {})
    result.output_layers = dict(data.get("output_layers") or {})
    result.output_layouts = dict(data.get("output_layouts") or {})
    result.dump_error = crash or data.get("dump_error")
    result.outputs = _load_npz(os.path.join(job, "outputs.npz"))
    result.layers = _load_npz(os.path.join(job, "layers.npz"))
    return result


def _last_stage(job: str) -> tuple[str | None, dict]:
    path = os.path.join(job, "stage.jsonl")
    if not os.path.exists(path):
        return None, {}
    with open(path, encoding="utf-8") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    if not lines:
        return None, {}
    try:
        info = json.loads(lines[-1])
    except ValueError:
        return None, {}
    return info.get("stage"), info


def _load_npz(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        return {}
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


_OPENCV_PREFIX = re.compile(r"^OpenCV\([^)]*\) (?P<file>\S+?):(?P<line>\d+): error: (?P<what>.*)$")


def _tidy(message: str) -> str:
    """'OpenCV(4.13.0) /io/.../net.cpp:105: error: (-215:...) x' -> '(-215:...) x [net.cpp:105]'."""
    m = _OPENCV_PREFIX.match(message)
    if not m:
        return message
    return f"{m.group('what')} [{os.path.basename(m.group('file'))}:{m.group('line')}]"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
