"""Work out what a model file is and which Keras can read it, without importing TensorFlow.

An .h5 or .keras archive records the Keras version that wrote it; Keras 2
files go to tf-keras (in a child process), everything else to Keras 3 here.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass

from graphtool.errors import GraphtoolError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass
class Source:
    kind: str            # "keras-file" | "savedmodel" | "builder"
    flavour: str         # "k3" (Keras 3, in process) or "k2" (tf-keras, child process)
    saved_by: str | None  # Keras version recorded in the file, when there is one
    file_format: str | None = None  # "h5" | "keras" for Keras files


def detect(path: str, keras: str = "auto") -> Source:
    """Classify `path`; raise a one-line error for anything that is not a model."""
    if os.path.isdir(path):
        if not any(os.path.isfile(os.path.join(path, f)) for f in ("saved_model.pb", "saved_model.pbtxt")):
            raise GraphtoolError(
                "directory has no saved_model.pb, so it is not a SavedModel; pass a SavedModel "
                "directory, a .keras file or an .h5 saved with model.save", path=path)
        return Source("savedmodel", "k3", None)
    if not os.path.isfile(path):
        raise GraphtoolError("no such file or directory", path=path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        saved_by = _h5_keras_version(path)
        return Source("keras-file", _flavour(keras, saved_by), saved_by, "h5")
    if zipfile.is_zipfile(path):
        saved_by = _keras_archive_version(path)
        return Source("keras-file", _flavour(keras, saved_by), saved_by, "keras")
    hint = ""
    if os.path.basename(path) == "saved_model.pb":
        hint = f" (pass the directory {os.path.dirname(path) or '.'!r} instead)"
    elif path.endswith((".pb", ".pbtxt")):
        hint = " (a GraphDef is already frozen: use it directly)"
    elif path.endswith((".h5", ".hdf5", ".keras")):
        hint = " (the file is damaged or not what its name says; save the model again)"
    raise GraphtoolError(
        "not a model: expected a .keras file, an .h5 file written by model.save, a SavedModel "
        "directory, or --builder" + hint, path=path)


def _flavour(keras: str, saved_by: str | None) -> str:
    if keras in ("2", "3"):
        return "k" + keras
    return "k2" if saved_by and saved_by.split(".")[0] in ("1", "2") else "k3"


def _h5_keras_version(path: str) -> str | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                raise GraphtoolError(
                    "HDF5 file has no model_config: it holds weights only; save the whole model with "
                    "model.save(...), or use --builder to build it and load the weights", path=path)
            version = f.attrs.get("keras_version")
    except OSError as exc:
        raise GraphtoolError(f"cannot read HDF5 file ({_first_line(exc)}): it is corrupt or truncated; "
                             "save the model again", path=path) from None
    if isinstance(version, bytes):
        version = version.decode()
    return str(version) if version is not None else None


def _keras_archive_version(path: str) -> str | None:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "config.json" not in names:
                raise GraphtoolError("zip archive has no config.json, so it is not a .keras model; "
                                     "save the model with model.save('model.keras')", path=path)
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise GraphtoolError(f"cannot read .keras archive ({_first_line(exc)}); save the model again",
                             path=path) from None
    return meta.get("keras_version")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
