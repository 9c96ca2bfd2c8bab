"""Patterns and the matcher: DAG patterns of named nodes, matched with backtracking."""
from graphtool.match.matcher import Match, Matcher, Tracer
from graphtool.match.pattern import Pattern, PatternNode, compile_pattern

__all__ = ["Match", "Matcher", "Pattern", "PatternNode", "Tracer", "compile_pattern"]
