"""Text for labels and tooltips: short summaries and escaping for dot.

Two kinds of strings reach ``dot``: HTML-like labels (``label=<...>``) and
quoted attributes (tooltips, edge labels).  Graphviz expands backslash escapes
such as ``\\N`` (node name) in both, and does so a version-dependent number of
times, so a literal backslash cannot be written reliably; it is shown as the
look-alike U+29F5 instead.  Everything else is written as XML character
references, which Graphviz passes through to the SVG unchanged.
"""
from __future__ import annotations

import numpy as np

from graphtool.attrs import Func
from graphtool.dtypes import DType

BACKSLASH_STANDIN = "\u29f5"
MAX_TEXT = 120        # characters of a string attr shown in a tooltip
MAX_LIST = 12         # items of a list attr shown in a tooltip
SMALL_TENSOR = 8      # tensors with at most this many elements are shown in full
STATS_LIMIT = 1 << 20  # min/max/mean only for tensors up to this many elements


def short_name(name: str) -> str:
    """The last scope component: ``model/conv1/Conv2D`` -> ``Conv2D``."""
    return name.rsplit("/", 1)[-1]


def shape_text(shape) -> str:
    """``(1, 32, 32, 3)`` -> ``1x32x32x3``; unknown dims are ``?``; ``()`` is ``scalar``."""
    if shape is None:
        return "?"
    if len(shape) == 0:
        return "scalar"
    return "x".join("?" if d is None or d < 0 else str(d) for d in shape)


def _number(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def tensor_text(array: np.ndarray, dtype=None) -> str:
    """A tensor in one line: full values when small, else shape, dtype and statistics."""
    dt = str(dtype) if dtype is not None else str(array.dtype)
    shape = shape_text(array.shape)
    if array.size <= SMALL_TENSOR:
        flat = array.reshape(-1)
        values = ", ".join(_value_text(v) for v in flat)
        return f"{dt}[{shape}] = [{values}]" if array.ndim else f"{dt} = {values}"
    text = f"{dt}[{shape}]"
    if array.size <= STATS_LIMIT and array.dtype.kind in "fiub":
        data = array.astype(np.float64, copy=False)
        text += (f" min {_number(data.min())} max {_number(data.max())}"
                 f" mean {_number(data.mean())}")
    return text


def _value_text(value) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return _clip(repr(value))
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return _number(value)


def attr_text(value) -> str:
    """A decoded attr value (see ``graphtool.attrs.decode``) in one short line."""
    if isinstance(value, np.ndarray):
        return tensor_text(value)
    if isinstance(value, DType):
        return str(value)
    if isinstance(value, Func):
        return f"function {value.name}"
    if isinstance(value, list):
        items = [attr_text(v) for v in value[:MAX_LIST]]
        more = f", \u2026 ({len(value)} items)" if len(value) > MAX_LIST else ""
        return "[" + ", ".join(items) + more + "]"
    if isinstance(value, tuple) or value is None:
        return "shape " + shape_text(value)
    return _value_text(value)


def plain(text: str) -> str:
    """Display text with the backslash replaced by its stand-in (see module doc)."""
    return str(text).replace("\\", BACKSLASH_STANDIN)


def _xml(text: str) -> str:
    return (plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def html(text: str) -> str:
    """Text for inside an HTML-like label."""
    return _xml(text)


def quoted(text: str) -> str:
    """A double-quoted dot string; newlines become line breaks in tooltips."""
    return '"' + _xml(text).replace("\n", "&#10;") + '"'
