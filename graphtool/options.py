"""Option values several commands share: ``--input-shape NAME=1,224,224,3``."""
from __future__ import annotations

from graphtool.errors import GraphtoolError


def parse_input_shape(text: str) -> tuple[str, list[int]]:
    """One ``NAME=1,224,224,3`` (or ``NAME=1x224x224x3``) value -> ``(name, [dims])``."""
    name, sep, dims = text.rpartition("=")
    try:
        parts = dims.split(",") if "," in dims else dims.split("x")
        shape = [int(d) for d in parts] if sep and name and dims else None
    except ValueError:
        shape = None
    if not shape or any(d < 1 for d in shape):
        raise GraphtoolError(f"bad --input-shape {text!r}: write NAME=dims with positive "
                             "integers, e.g. input_1=1,224,224,3")
    return name, shape


def parse_input_shapes(texts) -> dict[str, list[int]]:
    """Repeated ``--input-shape`` values -> ``{name: [dims]}``; a name given twice is an error."""
    shapes: dict[str, list[int]] = {}
    for text in texts:
        name, shape = parse_input_shape(text)
        if name in shapes:
            raise GraphtoolError(f"--input-shape given twice for {name!r}")
        shapes[name] = shape
    return shapes
