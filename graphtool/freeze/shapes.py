"""Static input shapes: batch 1 by default, `--input-shape NAME=1,224,224,3` for the rest.

OpenCV and the rewrite rules need every dimension known, so freezing refuses
to guess anything except the batch dimension.
"""
from __future__ import annotations

from graphtool.errors import GraphtoolError, did_you_mean


def resolve_shapes(inputs: list[tuple[str, list | None]], overrides: dict[str, list[int]],
                   path: str) -> list[list[int]]:
    """Known shape for each (name, dims-with-None) input, or one error listing what is open."""
    names = [n for n, _ in inputs]
    for name in overrides:
        if name not in names:
            raise GraphtoolError(
                f"--input-shape names {name!r}, which is not an input{did_you_mean(name, names)};"
                f" inputs are: {', '.join(names)}", path=path)
    resolved, dynamic = [], []
    for name, dims in inputs:
        if name in overrides:
            given = overrides[name]
            if dims is not None and (len(dims) != len(given) or any(
                    d is not None and d != g for d, g in zip(dims[1:], given[1:]))):
                raise GraphtoolError(
                    f"--input-shape {name}={','.join(map(str, given))} does not fit the model's shape "
                    f"{_show(dims)}", path=path)
            resolved.append(list(given))
            continue
        if dims is None:
            dynamic.append(f"{name} (unknown rank)")
            resolved.append(None)
            continue
        shape = [1 if (k == 0 and d is None) else d for k, d in enumerate(dims)]
        if any(d is None for d in shape):
            dynamic.append(f"{name} {_show(shape)}")
        resolved.append(shape)
    if dynamic:
        raise GraphtoolError(
            "inputs with dynamic dimensions: " + "; ".join(dynamic)
            + " - give each a full shape with --input-shape NAME=1,H,W,C", path=path)
    return resolved


def _show(dims) -> str:
    if dims is None:
        return "(unknown rank)"
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
