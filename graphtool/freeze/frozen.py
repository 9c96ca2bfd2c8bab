"""What each model source hands to the shared finishing steps."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class RawFreeze:
    """A GraphDef with constants for variables, before naming, pruning and checking."""
    graph_def: object
    placeholders: list[str]        # current Placeholder node names, in input order
    input_names: list[str]         # names the inputs should get
    input_shapes: list[list[int]]
    input_dtypes: list[str]
    output_refs: list[str]         # tensors holding the outputs, in output order
    output_names: list[str]        # names the outputs should get
    output_dtypes: list[int]       # DataType enums
    run_model: Callable[[list], list]  # the original model on numpy inputs, for the check
    kind: str
    keras_version: str | None = None
    learning_phase: list[str] = field(default_factory=list)
