"""Run one frozen graph in OpenCV's DNN module, in a child process.

OpenCV can kill the process that imports an unknown graph (5.0 segfaults on
some), so graphtool never calls it in its own process: ``runner.py`` starts
this script with whatever Python has the wanted OpenCV build.  That is why it
imports only the standard library, numpy and cv2 - never graphtool.

Usage: ``python opencv_worker.py JOB_DIR``.  JOB_DIR holds ``request.json``
and ``inputs.npz`` (written by the parent).  This script writes:

* ``stage.jsonl`` - one line per stage reached (``start``, ``import``,
  ``forward``, ``dump``, ``done``), flushed before the stage runs, so the
  parent can say what OpenCV was doing when it crashed;
* ``result.json`` - versions, engine, layer names/types, which layer each
  output was read from, and ``error`` (first line of OpenCV's message) or
  ``setup_error`` (bad interpreter or request);
* ``outputs.npz`` and, when asked, ``layers.npz``: arrays keyed by output
  key or layer name, with 4-D/5-D blobs turned back from NCHW to NHWC.
"""
import json
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
# Started as a script, Python puts this directory first on sys.path; drop it so
# sibling modules never shadow a library numpy or cv2 imports.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

# Blob rank -> permutation from OpenCV's channels-first order to TensorFlow's.
TO_CHANNELS_LAST = {4: (0, 2, 3, 1), 5: (0, 2, 3, 4, 1)}
# Blob rank -> permutation from TensorFlow's channels-last order to OpenCV's.
TO_CHANNELS_FIRST = {4: (0, 3, 1, 2), 5: (0, 4, 1, 2, 3)}


class Job:
    """The job directory: reads the request, records stages and results."""

    def __init__(self, directory):
        self.directory = directory
        with open(self.path("request.json"), encoding="utf-8") as fh:
            self.request = json.load(fh)
        self.result = {"ok": False, "stage": None, "error": None, "setup_error": None,
                       "opencv_version": None, "engine": None, "layer_names": [],
                       "layer_types": {}, "output_layers": {}, "output_layouts": {},
                       "unconnected_outputs": [], "dumped": [], "dump_error": None,
                       "python": sys.executable, "seconds": {}}
        self._started = time.monotonic()

    def path(self, name):
        return os.path.join(self.directory, name)

    def stage(self, name):
        """Record that ``name`` starts now; the line reaches the file before OpenCV runs."""
        self.result["stage"] = name
        line = json.dumps({"stage": name, "opencv_version": self.result["opencv_version"],
                           "engine": self.result["engine"]})
        with open(self.path("stage.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
        self.result["seconds"][name] = round(time.monotonic() - self._started, 4)

    def finish(self):
        tmp = self.path("result.json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.result, fh, indent=1)
        os.replace(tmp, self.path("result.json"))


def first_line(exc):
    """OpenCV errors span several lines; the first one names the assertion or layer."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def engine_code(cv2, name):
    """The ``cv2.dnn.ENGINE_*`` value for ``name``; None means the importer's default."""
    if name is None:
        return None
    code = getattr(cv2.dnn, "ENGINE_" + name.upper(), None)
    if code is None:
        known = sorted(n[7:].lower() for n in dir(cv2.dnn) if n.startswith("ENGINE_"))
        if not known:
            raise ValueError(f"OpenCV {cv2.__version__} has no engine choice (only OpenCV 5 "
                             f"has); leave the engine unset")
        raise ValueError(f"OpenCV {cv2.__version__} has no engine {name!r}; choose one of "
                         + ", ".join(known))
    return code


def uses_new_engine(cv2, engine):
    """Whether forward() only hands out the network's outputs (OpenCV 5's new engine)."""
    if not any(n.startswith("ENGINE_") for n in dir(cv2.dnn)):
        return False
    return engine not in ("classic",)


def read_net(cv2, request, engine, extra_outputs=()):
    model, config = request["model"], request.get("config") or ""
    if engine is None and not extra_outputs:
        return cv2.dnn.readNetFromTensorflow(model, config)
    code = engine_code(cv2, engine) if engine else cv2.dnn.ENGINE_AUTO
    extra = [list(extra_outputs)] if extra_outputs else []
    return cv2.dnn.readNetFromTensorflow(model, config, code, *extra)


def layer_types(net, names):
    types = {}
    for name in names:
        try:
            types[name] = net.getLayer(net.getLayerId(name)).type
        except Exception:  # some builds cannot look layers up by name; types are optional
            pass
    return types


def resolve_outputs(outputs, layer_names, unconnected):
    """Output key -> layer name: the first candidate name that is a layer.

    OpenCV drops Identity nodes and names a fused layer after one node of its
    group, so the parent lists several TensorFlow names per output.  Outputs none
    of whose names survived take the network's unused unconnected outputs when
    exactly as many are left.
    """
    layers = set(layer_names)
    resolved = {}
    for out in outputs:
        found = next((c for c in out["candidates"] if c in layers), None)
        if found is not None:
            resolved[out["key"]] = found
    missing = [o["key"] for o in outputs if o["key"] not in resolved]
    spare = [u for u in unconnected if u not in resolved.values()]
    if missing and len(missing) == len(spare):
        resolved.update(zip(missing, spare))
    elif missing:
        names = {o["key"]: o["candidates"] for o in outputs}
        raise LookupError("no layer of the imported network is called "
                          + " or ".join(repr(c) for c in names[missing[0]][:3])
                          + f" (output {missing[0]!r}); OpenCV's output layers are "
                          + ", ".join(repr(u) for u in unconnected))
    return resolved


def set_inputs(net, request, arrays):
    specs = request["inputs"]
    for spec in specs:
        blob = arrays[spec["key"]]
        blob = blob.astype("float32") if blob.dtype.kind == "f" else blob.astype("int32")
        if blob.ndim in TO_CHANNELS_FIRST:
            blob = blob.transpose(TO_CHANNELS_FIRST[blob.ndim])
        blob = blob.copy(order="C")
        if len(specs) == 1:
            net.setInput(blob)
        else:
            net.setInput(blob, spec["name"])


def forward(cv2, net, wanted, request, engine):
    """Layer name -> blob for ``wanted`` layers.

    The classic engine computes any layer asked for.  OpenCV 5's new engine
    only hands out the network's outputs - all of them at once - so layers that
    are not outputs are declared as extra outputs by importing again.
    """
    if not uses_new_engine(cv2, engine):
        blobs = net.forward(list(wanted))
        return dict(zip(wanted, blobs))
    unconnected = list(net.getUnconnectedOutLayersNames())
    if any(w not in unconnected for w in wanted):
        net = read_net(cv2, request, engine, [w for w in wanted if w not in unconnected])
        set_inputs(net, request, load_inputs(request))
        unconnected = list(net.getUnconnectedOutLayersNames())
    blobs = net.forward(unconnected)
    found = dict(zip(unconnected, blobs))
    return {w: found[w] for w in wanted if w in found}  # OpenCV may refuse an extra output


def channels_last(blob):
    import numpy as np
    blob = np.asarray(blob)
    if blob.ndim in TO_CHANNELS_LAST:
        return np.ascontiguousarray(blob.transpose(TO_CHANNELS_LAST[blob.ndim])), "nchw->nhwc"
    return blob, "as is"


_INPUTS = {}


def load_inputs(request):
    import numpy as np
    if not _INPUTS:
        with np.load(request["_inputs_path"]) as data:
            _INPUTS.update({k: data[k] for k in data.files})
    return _INPUTS


def save_npz(path, arrays):
    import numpy as np
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def dump_layers(cv2, job, engine):
    """Every requested layer's blob, for bisection; per-layer failures are recorded.

    A network that already ran has fused layers that share (and overwrite)
    blobs, so asking it for intermediate outputs returns stale values
    (measured on 4.13).  A fresh import with fusion off gives each layer its own.
    """
    wanted = job.request.get("dump")
    names = list(job.result["layer_names"])
    if wanted != "all":
        keep = set(wanted)
        names = [n for n in names if n in keep]
    net = read_net(cv2, job.request, engine)
    if not uses_new_engine(cv2, engine):
        net.enableFusion(False)
    set_inputs(net, job.request, load_inputs(job.request))
    blobs = {}
    try:
        blobs = forward(cv2, net, names, job.request, engine)
    except cv2.error as exc:
        job.result["dump_error"] = first_line(exc)
        if not uses_new_engine(cv2, engine):
            for name in names:  # one by one: keep what can be computed
                try:
                    blobs[name] = net.forward(name)
                except cv2.error:
                    continue
    arrays = {}
    for name, blob in blobs.items():
        arrays[name], _ = channels_last(blob)
    save_npz(job.path("layers.npz"), arrays)
    job.result["dumped"] = sorted(arrays)


def run(job):
    request = job.request
    request["_inputs_path"] = job.path("inputs.npz")
    job.stage("start")
    try:
        import numpy  # noqa: F401  (fail here, clearly, rather than inside cv2)
        import cv2
    except ImportError as exc:
        job.result["setup_error"] = (f"cannot import OpenCV in {sys.executable}: {exc}; install "
                                     "opencv-python-headless there or choose another interpreter")
        return
    job.result["opencv_version"] = cv2.__version__
    engine = request.get("engine")
    try:
        engine_code(cv2, engine)
    except ValueError as exc:
        job.result["setup_error"] = str(exc)
        return
    job.result["engine"] = engine or ("auto" if uses_new_engine(cv2, None) else "classic")

    job.stage("import")
    try:
        net = read_net(cv2, request, engine)
        names = list(net.getLayerNames())
        job.result["layer_names"] = names
        job.result["layer_types"] = layer_types(net, names)
        job.result["unconnected_outputs"] = list(net.getUnconnectedOutLayersNames())
    except cv2.error as exc:
        job.result["error"] = first_line(exc)
        return

    job.stage("forward")
    try:
        resolved = resolve_outputs(request["outputs"], names, job.result["unconnected_outputs"])
        set_inputs(net, request, load_inputs(request))
        wanted = list(dict.fromkeys(resolved.values()))
        blobs = forward(cv2, net, wanted, request, engine)
        lost = [w for w in wanted if w not in blobs]
        if lost:
            raise LookupError(f"OpenCV computed no value for layer {lost[0]!r}")
    except (cv2.error, LookupError) as exc:
        job.result["error"] = first_line(exc)
        return
    arrays = {}
    for key, layer in resolved.items():
        arrays[key], layout = channels_last(blobs[layer])
        job.result["output_layouts"][key] = layout
    job.result["output_layers"] = resolved
    save_npz(job.path("outputs.npz"), arrays)
    job.result["ok"] = True

    if request.get("dump"):
        job.finish()  # the outputs survive even if dumping layers kills the process
        job.stage("dump")
        dump_layers(cv2, job, engine)
    job.stage("done")


def main(argv):
    if len(argv) != 2:
        print("usage: opencv_worker.py JOB_DIR", file=sys.stderr)
        return 2
    job = Job(argv[1])
    try:
        run(job)
    except Exception as exc:  # a Python-level failure is still a reported result
        message = f"{type(exc).__name__}: {first_line(exc)}"
        if job.result["stage"] == "dump":
            job.result["dump_error"] = message
        else:
            job.result["ok"] = False
            job.result["error"] = message
    finally:
        job.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
