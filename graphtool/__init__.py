"""graphtool: rewrite TensorFlow frozen graphs so that OpenCV's DNN module runs them.

Pipeline: load -> match -> rewrite -> emit -> render -> validate.  Importing
this package never imports TensorFlow.
"""
from graphtool.errors import GraphtoolError
from graphtool.graph import Graph, Node, TensorRef, parse_ref, ref
from graphtool.load import load

__version__ = "0.1.0"
__all__ = ["Graph", "GraphtoolError", "Node", "TensorRef", "load", "parse_ref", "ref",
           "__version__"]
