"""Values computed per match: literals, expressions, attr copies and helper calls.

Conditions (``where:``), computed attrs and computed Const tensors share one
model: something that, given the captures of a match, yields a value.  They
are compiled when the rule file is loaded, so a misspelled name or an unknown
helper is reported with its position before any graph is touched.
"""
from __future__ import annotations

from typing import Mapping

from graphtool.errors import GraphtoolError
from graphtool.lang.capture import Capture
from graphtool.lang.expr import Expression, truth
from graphtool.lang.functions import helper
from graphtool.lang.source import SourceMap


class Computed:
    """Base: ``evaluate(env)`` gives the value; ``names_used`` lists captures read."""
    names_used: list[str] = []
    position = None

    def evaluate(self, env: Mapping):
        raise NotImplementedError

    def holds(self, env: Mapping) -> bool:
        return truth(self.evaluate(env))


class Literal(Computed):
    def __init__(self, value, kind: str | None = None):
        self.value = value
        self.kind = kind
        self.names_used = []

    def evaluate(self, env):
        return self.value

    def __str__(self) -> str:
        return repr(self.value)


class ExprValue(Computed):
    def __init__(self, expression: Expression):
        self.expression = expression
        self.position = expression.position
        self.names_used = expression.names_used

    def evaluate(self, env):
        return self.expression.evaluate(env)

    def holds(self, env) -> bool:
        value = self.expression.evaluate(env)  # a condition's usual answer is a bool
        return value if value is True or value is False else truth(value)

    def __str__(self) -> str:
        return self.expression.text.strip()


class CopyAttr(Computed):
    """The same attr of another captured node (``{copy: conv}``)."""

    def __init__(self, capture: str, key: str, position):
        self.capture = capture
        self.key = key
        self.position = position
        self.names_used = [capture]

    def evaluate(self, env):
        node = env[self.capture].node
        if not node.has_attr(self.key):
            raise GraphtoolError(f"{self.position}: cannot copy attr {self.key!r} from "
                                 f"{self.capture!r}: node {node.name!r} ({node.op}) has no such "
                                 "attr")
        return node.proto.attr[self.key]

    def __str__(self) -> str:
        return f"copy of {self.capture}.{self.key}"


class CallValue(Computed):
    """A registered Python helper applied to evaluated argument expressions."""

    def __init__(self, name: str, args: list[Expression], position):
        self.name = name
        self.function = helper(name)
        self.args = args
        self.position = position
        self.names_used = [n for a in args for n in a.names_used]

    def arguments(self, env) -> list:
        return [a.evaluate(env) for a in self.args]

    def evaluate(self, env):
        try:
            return self.function(*self.arguments(env))
        except GraphtoolError as exc:
            raise GraphtoolError(f"{self.position}: helper {self.name!r}: {exc}") from None

    def __str__(self) -> str:
        return f"{self.name}({', '.join(a.text for a in self.args)})"


def expression(text: str, smap: SourceMap, path, names) -> Expression:
    """Compile the expression string found at ``path``, positions included."""
    start, _ = smap.text_start(path)
    return Expression(str(text), position=start, names=names)


def compile_call(data: dict, smap: SourceMap, path, names) -> CallValue:
    args = [expression(str(a) if not isinstance(a, str) else a, smap, tuple(path) + ("args", i),
                       names)
            for i, a in enumerate(data.get("args", []))]
    try:
        return CallValue(data["call"], args, smap.at(tuple(path) + ("call",)))
    except GraphtoolError as exc:
        raise smap.error(tuple(path) + ("call",), str(exc)) from None


def compile_condition(data, smap: SourceMap, path, names) -> Computed:
    if isinstance(data, dict):
        return compile_call(data, smap, path, names)
    return ExprValue(expression(data, smap, path, names))


class Scope(dict):
    """Captures of one match plus its ``let:`` values, each made on first use: most
    candidates fail a condition after reading two or three of their captures."""

    def __init__(self, graph, bound: Mapping, lets: Mapping):
        """``bound`` maps capture names to a tensor name, or a list of them (a rest)."""
        super().__init__()
        self._graph = graph
        self._bound = bound
        self._lets = lets

    def __missing__(self, key):
        tensor = self._bound.get(key)
        if tensor is not None:
            if type(tensor) is str:
                value = Capture(key, self._graph, tensor)
            else:
                value = [Capture(key, self._graph, t) for t in tensor]
            self[key] = value
            return value
        computed = self._lets.get(key)
        if computed is None:
            raise KeyError(key)
        value = computed.evaluate(self)
        self[key] = value
        return value
