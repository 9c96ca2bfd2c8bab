"""Which tensors to feed and fetch: from the freeze sidecar, else from the graph itself.

``graphtool freeze`` writes ``OUT.json`` next to ``OUT.pb`` naming inputs and
outputs with dtypes and shapes; with it users never retype names.  Without a
sidecar, inputs are the Placeholders (shape attr, unknown batch -> 1) and
outputs the graph's sinks; ``--input-shape NAME=dims`` fills what is unknown.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from graphtool.dtypes import as_dtype
from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.graph import parse_ref
from graphtool.tensors import shape_of

SIDECAR_FORMAT = "graphtool-sidecar/1"


@dataclass
class Port:
    """One input or output: node name, tensor to feed/fetch, dtype name, static shape."""
    name: str
    tensor: str
    dtype: str = "float32"
    shape: tuple[int, ...] | None = None


@dataclass
class Signature:
    inputs: list[Port]
    outputs: list[Port]
    source: str                 # "sidecar FILE" or "graph"


def sidecar_path(reference) -> str:
    """``model.json`` next to ``model.pb``."""
    return os.path.splitext(os.fspath(reference))[0] + ".json"


def read_signature(graph, reference, *, sidecar=None, input_shapes: dict | None = None
                   ) -> Signature:
    """The reference graph's inputs and outputs.

    ``sidecar`` is a path (or False to ignore the default ``<reference>.json``).
    ``input_shapes`` maps input names to shapes and overrides both sources.
    """
    path = sidecar if sidecar else (sidecar_path(reference) if sidecar is None else None)
    if sidecar and not os.path.exists(sidecar):
        raise GraphtoolError("no such sidecar file; check the path", path=sidecar)
    if path and os.path.exists(path):
        signature = _from_sidecar(graph, path)
    else:
        signature = _from_graph(graph)
    _apply_shapes(signature, input_shapes or {})
    unknown = [f"{p.name} {list(p.shape) if p.shape is not None else '(unknown rank)'}"
               for p in signature.inputs if p.shape is None or any(d < 0 for d in p.shape)]
    if unknown:
        raise GraphtoolError("inputs with unknown dimensions: " + ", ".join(unknown)
                             + "; give them with --input-shape NAME=1,224,224,3")
    return signature


def _from_sidecar(graph, path: str) -> Signature:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise GraphtoolError(f"cannot read the sidecar: {exc}", path=path) from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise GraphtoolError(f"not a graphtool sidecar (format should be {SIDECAR_FORMAT!r}); "
                             "regenerate it with `graphtool freeze` or pass --sidecar",
                             path=path)
    ports = {}
    for kind in ("inputs", "outputs"):
        entries = data.get(kind)
        if not isinstance(entries, list) or not entries:
            raise GraphtoolError(f"the sidecar lists no {kind}", path=path)
        ports[kind] = []
        for entry in entries:
            if not isinstance(entry, dict) or "name" not in entry:
                raise GraphtoolError(f"a sidecar entry in {kind!r} has no name", path=path)
            name = entry["name"]
            tensor = entry.get("tensor") or f"{name}:0"
            if graph.get(parse_ref(tensor).node) is None:
                raise GraphtoolError(f"the sidecar names {kind[:-1]} {name!r}, but the graph has "
                                     f"no node {parse_ref(tensor).node!r}"
                                     + did_you_mean(parse_ref(tensor).node, graph.names()),
                                     path=path)
            shape = entry.get("shape")
            ports[kind].append(Port(name, tensor, str(as_dtype(entry.get("dtype", "float32"))),
                                    None if shape is None else tuple(int(d) for d in shape)))
    return Signature(ports["inputs"], ports["outputs"], f"sidecar {path}")


def _from_graph(graph) -> Signature:
    inputs = []
    for node in graph.inputs:
        dtype = str(as_dtype(node.attr("dtype", 1)))
        shape_attr = node.proto.attr["shape"].shape if node.has_attr("shape") else None
        shape = shape_of(shape_attr) if shape_attr is not None else None
        if shape and shape[0] == -1:
            shape = (1,) + shape[1:]
        inputs.append(Port(node.name, f"{node.name}:0", dtype, shape))
    outputs = [Port(parse_ref(t).node, f"{parse_ref(t).node}:{parse_ref(t).port}")
               for t in graph.outputs]
    if not inputs:
        raise GraphtoolError("the graph has no Placeholder inputs; nothing to feed",
                             path=graph.source)
    if not outputs:
        raise GraphtoolError("the graph has no outputs (no node without consumers)",
                             path=graph.source)
    return Signature(inputs, outputs, "graph")


def _apply_shapes(signature: Signature, shapes: dict) -> None:
    by_name = {p.name: p for p in signature.inputs}
    for name, shape in shapes.items():
        port = by_name.get(name) or by_name.get(parse_ref(name).node)
        if port is None:
            raise GraphtoolError(f"--input-shape names {name!r}, which is not an input"
                                 + did_you_mean(name, by_name)
                                 + "; inputs: " + ", ".join(by_name))
        port.shape = tuple(int(d) for d in shape)


def parse_shape_option(text: str) -> tuple[str, tuple[int, ...]]:
    """'input_1=1,224,224,3' (or 1x224x224x3) -> ('input_1', (1, 224, 224, 3))."""
    from graphtool.options import parse_input_shape
    name, shape = parse_input_shape(text)
    return name, tuple(shape)
