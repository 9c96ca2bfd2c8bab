"""graphtool: rewrite TensorFlow frozen graphs so that OpenCV's DNN module runs them.

Pipeline: load -> match -> rewrite -> emit -> render -> validate.  Importing
this package never imports TensorFlow; the rule engine, renderer, validator and
converter are imported on first use.
"""
from graphtool.errors import GraphtoolError
from graphtool.graph import Graph, Node, TensorRef, parse_ref, ref
from graphtool.load import load

__version__ = "0.1.0"

# name -> (module, attribute) for the parts that load on first use.  The
# rewrite, validate, freeze and convert functions live in sub-packages of the
# same names: ``from graphtool.rewrite import rewrite`` and so on.
_LAZY = {
    "load_rules": ("graphtool.rewrite", "load_rules"),
    "explain": ("graphtool.rewrite", "explain"),
    "run_rule_tests": ("graphtool.rewrite", "run_rule_tests"),
    "register_function": ("graphtool.rewrite", "register_function"),
    "register_action": ("graphtool.rewrite", "register_action"),
    "render_svg": ("graphtool.render", "render_svg"),
    "opencv_config": ("graphtool.emit", "opencv_config"),
}

__all__ = ["Graph", "GraphtoolError", "Node", "TensorRef", "load", "parse_ref", "ref",
           "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'graphtool' has no attribute {name!r}")
