"""Reading frozen graphs: format detection by content and clear errors for everything else.

A user hands us whatever file they have.  Before parsing, we recognise the
usual wrong files (SavedModels, Keras archives, HDF5, directories, empty or huge
files) and say what to do with them; after parsing, we check that the message
really is a GraphDef with unique names, existing inputs and no cycles.
"""
from __future__ import annotations

import os

from google.protobuf import message as pb_message
from google.protobuf import text_format

from graphtool.errors import GraphtoolError
from graphtool.graph import Graph
from graphtool.proto import GraphDef, SavedModel

PROTOBUF_LIMIT = 2**31 - 1
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_FREEZE_HINT = "run `graphtool freeze {path} -o model.pb` to make a frozen graph first"
_TEXT_CONTROL = set(range(0, 32)) - {9, 10, 11, 12, 13}


def load(path, *, check: bool = True) -> Graph:
    """Load a frozen graph from ``.pb`` (binary) or ``.pbtxt`` (text), detected by content."""
    path = os.fspath(path)
    data = _read(path)
    if _looks_like_text(data):
        graph_def = _parse_text(path, data)
    else:
        graph_def = _parse_binary(path, data)
    graph = Graph(graph_def, source=path)
    if check:
        graph.check()
    return graph


def _read(path: str) -> bytes:
    if not os.path.exists(path):
        raise GraphtoolError("no such file; check the path", path=path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")) or os.path.exists(
                os.path.join(path, "saved_model.pbtxt")):
            raise GraphtoolError("this is a SavedModel directory, not a frozen graph; "
                                 + _FREEZE_HINT.format(path=path), path=path)
        raise GraphtoolError("is a directory; give the path of a .pb or .pbtxt file", path=path)
    size = os.path.getsize(path)
    if size == 0:
        raise GraphtoolError("the file is empty; it holds no graph", path=path)
    if size > PROTOBUF_LIMIT:
        raise GraphtoolError(
            f"the file is {size / 2**30:.1f} GiB, over protobuf's 2 GiB message limit; "
            "TensorFlow cannot read it either - store large weights outside the graph",
            path=path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise GraphtoolError(f"cannot read the file: {exc.strerror}", path=path) from None
    if data.startswith(_HDF5_MAGIC):
        raise GraphtoolError("this is a Keras/HDF5 model file, not a frozen graph; "
                             + _FREEZE_HINT.format(path=path), path=path)
    if data.startswith(_ZIP_MAGIC):
        raise GraphtoolError("this is a zip archive (a Keras .keras model?), not a frozen graph; "
                             + _FREEZE_HINT.format(path=path), path=path)
    return data


def _looks_like_text(data: bytes) -> bool:
    """Text GraphDefs are printable UTF-8; binary ones contain length bytes below 32."""
    head = data[:65536]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            return False
        text = head[:exc.start].decode("utf-8")
    return not any(ord(c) in _TEXT_CONTROL for c in text)


def _parse_text(path: str, data: bytes):
    graph_def = GraphDef()
    try:
        text_format.Parse(data.decode("utf-8"), graph_def, allow_unknown_extension=True)
    except text_format.ParseError as exc:
        detail = str(exc).splitlines()[0]
        if "saved_model_schema_version" in detail or "meta_graphs" in detail:
            raise GraphtoolError("this is a SavedModel in text form, not a frozen graph; "
                                 + _FREEZE_HINT.format(path=os.path.dirname(path) or "."),
                                 path=path) from None
        raise GraphtoolError(f"not a GraphDef in text format ({detail}); give a frozen graph "
                             "(.pb or .pbtxt)", path=path) from None
    except UnicodeDecodeError:
        raise GraphtoolError("not a GraphDef in text format (invalid UTF-8)", path=path) from None
    _check_nodes(path, graph_def)
    return graph_def


def _parse_binary(path: str, data: bytes):
    if _is_saved_model(data):
        raise GraphtoolError("this is a SavedModel's saved_model.pb, not a frozen graph; "
                             + _FREEZE_HINT.format(path=os.path.dirname(path) or "."),
                             path=path)
    graph_def = GraphDef()
    try:
        graph_def.ParseFromString(data)
    except (pb_message.DecodeError, RuntimeError, ValueError) as exc:
        raise GraphtoolError(f"not a GraphDef: the protobuf data is truncated or corrupt ({exc}); "
                             "re-export the frozen graph", path=path) from None
    _check_nodes(path, graph_def)
    return graph_def


def _is_saved_model(data: bytes) -> bool:
    """A SavedModel starts with field 1 as a varint (schema version) then meta graphs."""
    if not data.startswith(b"\x08"):
        return False
    saved = SavedModel()
    try:
        saved.ParseFromString(data)
    except (pb_message.DecodeError, RuntimeError, ValueError):
        return False
    return bool(saved.meta_graphs) and saved.meta_graphs[0].HasField("graph_def")


def _check_nodes(path: str, graph_def) -> None:
    if not graph_def.node:
        if graph_def.ByteSize() > 0:
            raise GraphtoolError("not a GraphDef: no nodes, only unrecognised data", path=path)
        raise GraphtoolError("the graph has no nodes; give a frozen graph with at least one node",
                             path=path)
    for index, node in enumerate(graph_def.node):
        if not node.name:
            raise GraphtoolError(f"node #{index} (op {node.op or '?'!r}) has no name; "
                                 "the file is not a valid GraphDef", path=path)
        if not node.op:
            raise GraphtoolError(f"node {node.name!r} has no op; the file is not a valid "
                                 "GraphDef", path=path)
