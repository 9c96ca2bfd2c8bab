"""Target runtimes: what graphtool knows about the engines it prepares graphs for.

Each module registers the rule helpers and actions its rule files load with
``python:`` (e.g. ``graphtool.targets.opencv`` for ``rules/opencv.yaml``).
"""
