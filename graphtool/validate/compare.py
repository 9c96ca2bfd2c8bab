"""Numeric comparison of a candidate tensor against the reference.

Pass rule, per tensor::

    max|candidate - reference| <= atol + rtol * max(1, max|reference|)

The defaults (rtol=1e-4, atol=0) are exactly the project's acceptance
criterion: max abs error <= 1e-4 x max(1, max|reference|).  Scaling by the
reference's magnitude keeps the rule meaningful for logits in the hundreds
and for probabilities alike; the floor of 1 stops near-zero outputs from
demanding impossible precision.  ``max_rel`` is the max abs error divided by
that same scale, so a tensor passes (with atol=0) exactly when max_rel <= rtol.

Layout: OpenCV runs 4-D/5-D tensors channels-first; the worker hands them back
channels-last.  ``align`` decides how a candidate array lines up with the
reference's shape, and says which layout it used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 0.0
# Channels-last -> channels-first, to undo the worker's conversion when needed.
_TO_CHANNELS_FIRST = {4: (0, 3, 1, 2), 5: (0, 4, 1, 2, 3)}


@dataclass
class Stats:
    """Summary of one tensor, for reports."""
    shape: list[int]
    dtype: str
    min: float
    max: float
    mean: float

    @classmethod
    def of(cls, array) -> "Stats":
        a = np.asarray(array)
        if a.size == 0:
            return cls(list(a.shape), str(a.dtype), 0.0, 0.0, 0.0)
        values = a.astype(np.float64, copy=False)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(list(a.shape), str(a.dtype), float("nan"), float("nan"), float("nan"))
        return cls(list(a.shape), str(a.dtype), float(finite.min()), float(finite.max()),
                   float(finite.mean()))


@dataclass
class Comparison:
    """Candidate vs reference for one tensor.  ``passed`` follows the module's rule."""
    name: str
    passed: bool
    max_abs: float | None = None
    max_rel: float | None = None
    tolerance: float | None = None
    layout: str | None = None
    reference: Stats | None = None
    candidate: Stats | None = None
    error: str | None = None
    source: str | None = None   # the candidate's layer or tensor this value was read from


def scale(reference) -> float:
    """max(1, max|reference|) - the magnitude the relative tolerance is measured against."""
    ref = np.asarray(reference, dtype=np.float64)
    finite = np.abs(ref[np.isfinite(ref)])
    return max(1.0, float(finite.max()) if finite.size else 0.0)


def tolerance(reference, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> float:
    return atol + rtol * scale(reference)


def max_abs_error(reference, candidate) -> float:
    """Largest |candidate - reference|; NaN or inf where the other side differs counts as inf."""
    ref = np.asarray(reference, dtype=np.float64)
    got = np.asarray(candidate, dtype=np.float64)
    if ref.size == 0:
        return 0.0
    same_special = (np.isnan(ref) & np.isnan(got)) | (np.isinf(ref) & (ref == got))
    special = ~np.isfinite(ref) | ~np.isfinite(got)
    if np.any(special & ~same_special):
        return float("inf")
    diff = np.abs(np.where(same_special, 0.0, got - ref))
    return float(diff.max())


def compare(name: str, reference, candidate, *, rtol: float = DEFAULT_RTOL,
            atol: float = DEFAULT_ATOL, layout: str | None = None) -> Comparison:
    """Compare two arrays of the same shape (see ``align`` for arrays that need lining up)."""
    ref, got = np.asarray(reference), np.asarray(candidate)
    result = Comparison(name=name, passed=False, layout=layout, reference=Stats.of(ref),
                        candidate=Stats.of(got))
    if ref.shape != got.shape:
        result.error = (f"shape differs: candidate {list(got.shape)}, "
                        f"reference {list(ref.shape)}")
        return result
    result.max_abs = max_abs_error(ref, got)
    result.tolerance = tolerance(ref, rtol, atol)
    result.max_rel = result.max_abs / scale(ref)
    result.passed = result.max_abs <= result.tolerance
    return result


def layouts(candidate, reference_shape) -> list[tuple[str, np.ndarray]]:
    """Ways ``candidate`` (channels-last as the worker returns it) can line up with the
    reference shape, most conventional first: as returned, in OpenCV's own
    channels-first order, or equal up to size-1 dimensions."""
    got = np.asarray(candidate)
    shape = tuple(reference_shape)
    found = []
    if got.shape == shape:
        found.append(("nhwc" if got.ndim in _TO_CHANNELS_FIRST else "same", got))
    if got.ndim in _TO_CHANNELS_FIRST:
        raw = got.transpose(_TO_CHANNELS_FIRST[got.ndim])
        if raw.shape == shape:
            found.append(("nchw", raw))
    if not found and got.size == int(np.prod(shape)) and _squeezed(got.shape) == _squeezed(shape):
        found.append(("squeezed", got.reshape(shape)))
    return found


def align_and_compare(name: str, reference, candidate, *, rtol: float = DEFAULT_RTOL,
                      atol: float = DEFAULT_ATOL, best: bool = False) -> Comparison:
    """Compare after lining the candidate up with the reference's shape.

    By default the first (most conventional) layout that fits is used - for
    graph outputs, where users will read the blob that way.  ``best=True``
    tries every fitting layout and keeps the closest, for intermediate layers
    whose layout OpenCV does not promise.
    """
    ref = np.asarray(reference)
    options = layouts(candidate, ref.shape)
    if not options:
        return compare(name, ref, candidate, rtol=rtol, atol=atol)
    if not best:
        options = options[:1]
    results = [compare(name, ref, arr, rtol=rtol, atol=atol, layout=lay) for lay, arr in options]
    return min(results, key=lambda r: (not r.passed, r.max_abs))


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)
