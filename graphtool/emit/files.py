"""Atomic, deterministic writes that never clobber the input by accident."""
from __future__ import annotations

import os
import tempfile

from google.protobuf import text_format

from graphtool.errors import GraphtoolError

TEXT_SUFFIXES = (".pbtxt", ".pbtext", ".txt", ".prototxt")


def atomic_write(path, data: bytes | str, *, protect=()) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename.

    ``protect`` lists paths (typically the inputs) that must not be overwritten.
    A failure leaves any existing file at ``path`` untouched.
    """
    path = os.fspath(path)
    for other in protect:
        if other and os.path.exists(path) and os.path.exists(other) and os.path.samefile(
                path, other):
            raise GraphtoolError("refusing to overwrite the input file; choose another output "
                                 "path", path=path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise GraphtoolError(f"output directory {directory} does not exist; create it first",
                             path=path)
    if os.path.isdir(path):
        raise GraphtoolError("output path is a directory; give a file name", path=path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=".graphtool-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise GraphtoolError(f"cannot write to {directory}: {exc.strerror}", path=path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise GraphtoolError(f"cannot write the file: {exc.strerror}", path=path) from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def graph_bytes(graph, path) -> bytes:
    """The serialized graph in the format the file name asks for."""
    if os.fspath(path).lower().endswith(TEXT_SUFFIXES):
        return text_format.MessageToString(graph.to_graph_def()).encode("utf-8")
    return graph.serialize()


def save_graph(graph, path, *, overwrite_input: bool = False) -> None:
    """Save ``graph`` to ``path``; refuses to replace the file it was loaded from unless asked."""
    protect = () if overwrite_input else (graph.source,)
    atomic_write(path, graph_bytes(graph, path), protect=protect)
