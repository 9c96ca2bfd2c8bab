"""The outcome of one validation, as data: for the CLI table, JSON and HTML reports."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from graphtool.validate.bisection import Divergence
from graphtool.validate.compare import DEFAULT_ATOL, DEFAULT_RTOL, Comparison


@dataclass
class ValidationReport:
    """Candidate vs reference: per-output comparisons, how the candidate ran, where it diverged.

    ``passed`` is true only when the candidate ran and every output is within
    tolerance.  ``error`` says why the candidate produced nothing (an OpenCV
    crash, hang or exception, or a TensorFlow failure under ``--engine tf``).
    """
    passed: bool
    reference: str
    candidate: str
    pbtxt: str | None = None
    engine: str = "opencv"
    opencv_version: str | None = None
    opencv_engine: str | None = None
    opencv_python: str | None = None
    outputs: list[Comparison] = field(default_factory=list)
    error: str | None = None
    stage: str | None = None
    bisect: Divergence | None = None
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    inputs: list[dict] = field(default_factory=list)
    signature: str | None = None   # where input/output names came from
    seconds: dict = field(default_factory=dict)

    @property
    def runtime(self) -> str:
        """'OpenCV 5.0.0, engine auto' or 'TensorFlow'."""
        if self.engine == "tf":
            return "TensorFlow"
        version = f"OpenCV {self.opencv_version}" if self.opencv_version else "OpenCV"
        return f"{version}, engine {self.opencv_engine}" if self.opencv_engine else version

    @property
    def failed_outputs(self) -> list[Comparison]:
        return [o for o in self.outputs if not o.passed]

    def to_dict(self) -> dict:
        """Plain JSON-safe data (inf/NaN become strings)."""
        data = asdict(self)
        data["runtime"] = self.runtime
        return _json_safe(data)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
