"""Small helpers for GraphDef tensor references ("node", "node:1", "^node").

Kept apart so the graph passes in this package share one spelling of the rules.
"""
from __future__ import annotations

import re

_VALID_NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")


def split_ref(ref: str) -> tuple[str, int, bool]:
    """Return (node name, output index, is_control) for a NodeDef input string."""
    if ref.startswith("^"):
        return ref[1:], -1, True
    name, sep, index = ref.rpartition(":")
    if sep and index.isdigit():
        return name, int(index), False
    return ref, 0, False


def data_ref(node: str, index: int) -> str:
    """Canonical input spelling: output 0 is written without the suffix, as TF does."""
    return node if index == 0 else f"{node}:{index}"


def tensor_name(ref: str) -> str:
    """Feed/fetch spelling ("node:0") of a data reference."""
    node, index, _ = split_ref(ref)
    return f"{node}:{index}"


def node_name_for(wanted: str) -> str:
    """Turn a Keras layer or signature key into a valid TF node name."""
    if _VALID_NODE_NAME.match(wanted):
        return wanted
    cleaned = re.sub(r"[^A-Za-z0-9_.\-/>]", "_", wanted.split(":")[0]) or "tensor"
    if not re.match(r"[A-Za-z0-9.]", cleaned[0]):
        cleaned = "t" + cleaned
    return cleaned


def unique_name(wanted: str, taken: set[str]) -> str:
    name, n = wanted, 1
    while name in taken:
        name = f"{wanted}_{n}"
        n += 1
    return name
