"""Whole-graph analyses: static shapes and dtypes (``infer_shapes``)."""
from graphtool.analysis.shapes import Shapes, TensorInfo, format_shapes, infer_shapes

__all__ = ["Shapes", "TensorInfo", "format_shapes", "infer_shapes"]
