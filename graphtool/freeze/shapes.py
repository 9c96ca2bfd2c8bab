"""Static input shapes: batch 1 by default, `--input-shape NAME=1,224,224,3` for the rest.

OpenCV and the rewrite rules need every dimension known, so freezing refuses
to guess anything except the batch dimension.
"""
from __future__ import annotations

from graphtool.errors import GraphtoolError, did_you_mean


def parse_input_shape(text: str) -> tuple[str, list[int]]:
    """Parse one `NAME=1,224,224,3` option value."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = [int(d) for d in dims.split(",")] if sep and name and dims else None
    except ValueError:
        shape = None
    if shape is None or any(d < 1 for d in shape):
        raise GraphtoolError(
            f"bad --input-shape {text!r}: write NAME=D0,D1,... with positive integers, e.g. input_1=1,224,224,3")
    return name, shape


def parse_input_shapes(texts: list[str]) -> dict[str, list[int]]:
    """Parse repeated `--input-shape` values into {name: shape}; a name given twice is an error."""
    shapes: dict[str, list[int]] = {}
    for text in texts:
        name, shape = parse_input_shape(text)
        if name in shapes:
            raise GraphtoolError(f"--input-shape given twice for {name!r}")
        shapes[name] = shape
    return shapes


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
