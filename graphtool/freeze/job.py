"""One freeze, start to finish, in the current process.

Runs under Keras 3 in the graphtool process, or under tf-keras in the worker
process; the steps are the same: load, trace and fold, finish the graph, check
TensorFlow's run of the frozen graph against the model's own output, write.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings

from graphtool.errors import GraphtoolError


def quiet_tensorflow() -> None:
    """Keep TF's C++ and Python log chatter off stderr so errors stay one line.

    TF 2.21 logs (CUDA probing) while it loads, and reads TF_CPP_MIN_LOG_LEVEL only
    from the environment the process started with, so the first import runs with
    file descriptor 2 pointed at /dev/null instead.
    """
    if "tensorflow" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import tensorflow as tf
            tf.config.list_logical_devices("CPU")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    warnings.filterwarnings("ignore", module=r"(keras|tf_keras|tensorflow|h5py)(\.|$)")
    for name in ("tensorflow", "absl", "keras", "tf_keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


@contextlib.contextmanager
def stderr_captured():
    """Send fd 2 (TF's C++ logging) to a temp file; replay it only if something crashes."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except GraphtoolError:
            raise
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _raw_freeze(job: dict):
    from graphtool.freeze import kerasmodel, loaders, savedmodel

    shapes = {k: list(v) for k, v in job["input_shapes"].items()}
    if job["kind"] == "savedmodel":
        return savedmodel.freeze_saved_model(job["source"], job["signature"], shapes), None
    flavour = job["flavour"]
    objects = loaders.custom_objects(job["custom_objects"])
    keras = loaders.keras_module(flavour)
    if job["kind"] == "builder":
        model, kind = loaders.build_model(job["builder"], flavour), "builder"
    else:
        model = loaders.load_model(job["source"], flavour, objects)
        kind = "keras3" if flavour == "k3" else ("keras2-h5" if job["file_format"] == "h5" else "keras2")
    raw = kerasmodel.freeze_model(model, shapes, job["display"], kind, keras.__version__)
    return raw, keras.__version__


def run_job(job: dict) -> dict:
    """Freeze `job` (see graphtool.freeze.plan) and write its files; return the sidecar."""
    quiet_tensorflow()
    with stderr_captured():
        return _run_job(job)


def _run_job(job: dict) -> dict:
    import tensorflow as tf

    from graphtool.freeze import finish, sidecar, tfrun
    from graphtool.freeze.inline import inline_calls

    raw, keras_version = _raw_freeze(job)
    graph_def = raw.graph_def
    inline_calls(graph_def)
    inputs = finish.name_inputs(graph_def, raw.placeholders, raw.input_names)
    for name, shape in zip(inputs, raw.input_shapes):
        finish.set_placeholder_shape(graph_def, name, shape)
    outputs = finish.name_outputs(graph_def, raw.output_refs, raw.output_names, raw.output_dtypes)
    graph_def = finish.prune(graph_def, outputs)
    finish.check_frozen(graph_def, inputs, job["display"])

    feeds = tfrun.reference_inputs(raw.input_shapes, raw.input_dtypes)
    got = tfrun.run_graph(graph_def, {f"{n}:0": a for n, a in zip(inputs, feeds)}, [f"{o}:0" for o in outputs])
    want = raw.run_model(feeds)
    err, tolerance = tfrun.max_error(got, want)
    if not err <= tolerance:
        failure = GraphtoolError(
            f"frozen graph disagrees with the model: max abs error {err:.3g} > {tolerance:.3g}; "
            "this is a graphtool bug, please report it with the model", path=job["display"])
        failure.exit_code = 1
        raise failure

    json_path, npz_path = sidecar.sidecar_paths(job["out"])
    in_ports, out_ports = finish.ports(inputs, feeds), finish.ports(outputs, got)
    source = {"path": job["display"], "kind": raw.kind, "keras": keras_version}
    if job.get("saved_by"):
        source["saved_by_keras"] = job["saved_by"]
    if job["kind"] == "savedmodel":
        source["signature"] = job["signature"]
    extra = {"check": {"max_abs_err": err, "tolerance": tolerance}}
    if raw.learning_phase:
        extra["learning_phase"] = {"frozen_to": False, "nodes": raw.learning_phase}
    versions = {"tensorflow": tf.__version__, "keras": keras_version, "graphtool": sidecar.graphtool_version()}
    data = sidecar.build_sidecar(in_ports, out_ports, source, versions,
                                 os.path.basename(npz_path) if job["reference"] else None, extra)
    files = {job["out"]: graph_def.SerializeToString(deterministic=True), json_path: sidecar.json_bytes(data)}
    if job["reference"]:
        arrays = {f"inputs/{p.name}": a for p, a in zip(in_ports, feeds)}
        arrays.update({f"outputs/{p.name}": a for p, a in zip(out_ports, got)})
        files[npz_path] = sidecar.npz_bytes(arrays)
    sidecar.write_all(files)
    return data
