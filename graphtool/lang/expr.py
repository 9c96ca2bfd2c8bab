"""The safe expression evaluator used by ``where:`` conditions and computed values.

Rules compute weights and attrs from captured tensors (``w * rsqrt(var + eps)``).
Python's ``eval`` would hand a rule file the whole interpreter, so expressions
are parsed with ``ast`` and only a small, explicit subset is accepted:
literals, names (captures, dtype names, ``pi``/``e``/``inf``/``nan``),
arithmetic and comparisons with numpy broadcasting, ``and``/``or``/``not``,
``a if c else b``, indexing and slicing, list/tuple displays, and calls of the
functions in ``graphtool.lang.functions``.  Everything else - attribute access,
dunder names, lambdas, comprehensions, f-strings, walrus, any name not known at
load time - is rejected when the rule file is loaded, with its position.

The accepted tree is compiled once into nested closures, so evaluating an
expression per match costs a few microseconds.
"""
from __future__ import annotations

import ast
import operator
from contextlib import contextmanager
from typing import Callable, Container, Mapping

import numpy as np

from graphtool.errors import GraphtoolError, did_you_mean
from graphtool.lang import functions as fn
from graphtool.lang.capture import Capture
from graphtool.lang.source import Position

MAX_ELEMENTS = fn.MAX_ELEMENTS
_MAX_INT_EXPONENT = 1024

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow, ast.MatMult: operator.matmul,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_REJECTED = {
    ast.Attribute: "attribute access (x.y) is not allowed; use a function such as shape(x) "
                   "or attr(x, 'key')",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed", ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed", ast.NamedExpr: "':=' is not allowed",
    ast.Starred: "'*' unpacking is not allowed", ast.Dict: "dict displays are not allowed",
    ast.Set: "set displays are not allowed", ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed", ast.YieldFrom: "yield is not allowed",
}

Compiled = Callable[[Mapping], object]


class Expression:
    """A parsed, checked and compiled expression; ``evaluate(env)`` runs it.

    ``names`` is the set of capture names the expression may use (None: any
    name is looked up in the environment at run time).  ``names_used`` lists
    the captures it reads, for lint.
    """

    __slots__ = ("text", "position", "names_used", "_fn")

    def __init__(self, text: str, *, position: Position | None = None,
                 names: Container[str] | None = None):
        self.text = text
        self.position = position
        self.names_used: list[str] = []
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise self._error(f"invalid expression: {exc.msg}",
                              (exc.lineno or 1, (exc.offset or 1) - 1)) from None
        self._fn = _Compiler(self, names).compile(tree.body)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def evaluate(self, env: Mapping):
        """The value of the expression with captures bound by ``env``.

        Floating-point errors (division by zero, sqrt of a negative, overflow) are
        errors, not silent inf/nan in a computed weight.
        """
        try:
            if _strict_depth:  # the caller already made floating-point errors raise
                value = self._fn(env)
            else:
                with strict_floats():
                    value = self._fn(env)
        except GraphtoolError as exc:
            raise self._error(str(exc)) from None
        except (TypeError, ValueError, ArithmeticError, IndexError, KeyError,
                FloatingPointError) as exc:
            raise self._error(f"{type(exc).__name__}: {exc}") from None
        return value

    def _error(self, message: str, at: tuple[int, int] | None = None) -> GraphtoolError:
        where = self.position
        if where is not None and at is not None:
            where = where.shifted(at[0] - 1, at[1])
        prefix = f"{where}: " if where is not None else ""
        return GraphtoolError(f"{prefix}{message} in expression {self.text.strip()!r}")


_strict_depth = 0


@contextmanager
def strict_floats():
    """Division by zero, invalid operations and overflow raise inside the block.

    The driver opens this once around its passes, so evaluating an expression
    per match does not pay for switching numpy's error state each time.
    """
    global _strict_depth
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        _strict_depth += 1
        try:
            yield
        finally:
            _strict_depth -= 1


def _node_at(node) -> tuple[int, int]:
    return getattr(node, "lineno", 1), getattr(node, "col_offset", 0)


class _Compiler:
    def __init__(self, expr: Expression, names: Container[str] | None):
        self.expr = expr
        self.names = names
        # What compiled leaves stand for, so calls and comparisons with literal or
        # capture operands skip a closure call per operand: closure -> value / name.
        self.literals: dict[Compiled, object] = {}
        self.bound: dict[Compiled, str] = {}

    def fail(self, node, message: str):
        raise self.expr._error(message, _node_at(node))

    def compile(self, node) -> Compiled:
        if type(node) in _REJECTED:
            self.fail(node, _REJECTED[type(node)])
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            self.fail(node, f"{type(node).__name__} is not allowed in expressions")
        return method(node)

    # -- leaves -------------------------------------------------------------
    def _Constant(self, node):
        value = node.value
        if isinstance(value, (bytes, complex)) or value is Ellipsis:
            self.fail(node, f"{type(value).__name__} literals are not allowed")
        return self._literal(value)

    def _literal(self, value) -> Compiled:
        def literal(env):
            return value
        self.literals[literal] = value
        return literal

    def _Name(self, node):
        name = node.id
        if name.startswith("__"):
            self.fail(node, f"the name {name!r} is not allowed (dunder names are reserved)")
        # A capture or let named like a constant (e, pi, ...) is that capture, not the constant.
        if name in fn.CONSTANTS and not (self.names is not None and name in self.names):
            return self._literal(fn.CONSTANTS[name])
        if self.names is None or name in self.names:
            if name not in self.expr.names_used:
                self.expr.names_used.append(name)

            def lookup(env, name=name):
                try:
                    return env[name]
                except KeyError:
                    raise GraphtoolError(f"{name!r} is not bound") from None
            self.bound[lookup] = name
            return lookup
        if name in fn.FUNCTIONS:
            self.fail(node, f"{name!r} is a function; call it, e.g. {name}(x)")
        hint = (did_you_mean(name, list(self.names or ()))
                or did_you_mean(name, list(fn.CONSTANTS) + list(fn.FUNCTIONS)))
        self.fail(node, f"unknown name {name!r}" + (
            hint or "; names must be captures of the pattern, dtype names or constants"))

    # -- structure ----------------------------------------------------------
    def _List(self, node):
        items = [self.compile(e) for e in node.elts]
        literals = self.literals
        if all(f in literals and type(literals[f]) in _SCALARS for f in items):
            # [-1], [1, 1, -1, 1]: built once.  Calls of built-in functions and comparisons
            # get the one list (they only read it); anything else gets a fresh copy.
            values = [literals[f] for f in items]

            def literal_list(env):
                return list(values)
            literals[literal_list] = values
            return literal_list
        return lambda env: [f(env) for f in items]

    def _Tuple(self, node):
        items = [self.compile(e) for e in node.elts]
        return lambda env: tuple(f(env) for f in items)

    def _BinOp(self, node):
        op = _BINOPS.get(type(node.op))
        if op is None:
            self.fail(node, f"the operator {type(node.op).__name__} is not allowed")
        left, right = self.compile(node.left), self.compile(node.right)
        kind = type(node.op)

        def binary(env):
            a = left(env)
            if isinstance(a, Capture):  # fn.value_of inlined, here and below: the hot path
                a = a.value
            b = right(env)
            if isinstance(b, Capture):
                b = b.value
            return _binary(kind, op, a, b)
        return binary

    def _UnaryOp(self, node):
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not truth(operand(env))
        op = _UNARY[type(node.op)]
        if isinstance(node.op, (ast.USub, ast.UAdd)) and type(
                self.literals.get(operand)) in (int, float):  # -1: a literal too
            return self._literal(op(self.literals[operand]))
        return lambda env: op(fn.value_of(operand(env)))

    def _BoolOp(self, node):
        parts = [self.compile(v) for v in node.values]
        if isinstance(node.op, ast.And):
            def all_of(env):
                value = True
                for part in parts:
                    value = part(env)
                    if value is True:
                        continue
                    if value is False or not truth(value):
                        return value
                return value
            return all_of

        def any_of(env):
            value = False
            for part in parts:
                value = part(env)
                if value is False:
                    continue
                if value is True or truth(value):
                    return value
            return value
        return any_of

    def _Compare(self, node):
        first = self.compile(node.left)
        rest = []
        for op_node, right in zip(node.ops, node.comparators):
            op = _COMPARE.get(type(op_node))
            if op is None:
                self.fail(node, f"the comparison {type(op_node).__name__} is not allowed; use "
                                "== or !=")
            rest.append((op, self.compile(right)))
        if len(rest) == 1:
            op, right_fn = rest[0]
            if right_fn in self.literals:  # size(s) == 1, attr(x, 'k') == 'v'
                right_value = self.literals[right_fn]

                def compare_literal(env):
                    left = first(env)
                    if isinstance(left, Capture):
                        left = left.value
                    return op(left, right_value)
                return compare_literal

            def compare_one(env):
                left = first(env)
                if isinstance(left, Capture):
                    left = left.value
                right = right_fn(env)
                if isinstance(right, Capture):
                    right = right.value
                return op(left, right)
            return compare_one

        def compare(env):
            left = fn.value_of(first(env))
            result = True
            for op, right_fn in rest:
                right = fn.value_of(right_fn(env))
                outcome = op(left, right)
                if not truth(outcome):
                    return False
                left = right
            return result
        return compare

    def _IfExp(self, node):
        test, body, orelse = (self.compile(node.test), self.compile(node.body),
                              self.compile(node.orelse))
        return lambda env: body(env) if truth(test(env)) else orelse(env)

    def _Subscript(self, node):
        target = self.compile(node.value)
        index = self._index(node.slice)

        def subscript(env):
            value = target(env)
            if not isinstance(value, list):
                value = fn.value_of(value)
            return value[index(env)]
        return subscript

    def _index(self, node):
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self.compile(p)
                     for p in (node.lower, node.upper, node.step)]
            return lambda env: slice(*(None if p is None else _as_index(p(env)) for p in parts))
        if isinstance(node, ast.Tuple):
            items = [self._index(e) for e in node.elts]
            return lambda env: tuple(i(env) for i in items)
        inner = self.compile(node)
        return lambda env: _as_index(inner(env))

    def _Call(self, node):
        if isinstance(node.func, ast.Attribute):
            self.fail(node, _REJECTED[ast.Attribute])
        if isinstance(node.func, ast.Name) and node.func.id.startswith("__"):
            self.fail(node, f"the name {node.func.id!r} is not allowed (dunder names are "
                            "reserved)")
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only the built-in functions can be called (a name followed by "
                            "arguments)")
        name = node.func.id
        function = fn.FUNCTIONS.get(name)
        if function is None:
            self.fail(node, f"{name!r} is not an allowed function"
                      + (did_you_mean(name, fn.FUNCTIONS) or
                         f"; allowed: {', '.join(sorted(fn.FUNCTIONS))}"))
        args = [self.compile(a) for a in node.args]
        keywords = {}
        for kw in node.keywords:
            if kw.arg is None:
                self.fail(node, "'**' unpacking is not allowed")
            keywords[kw.arg] = self.compile(kw.value)
        problem = fn.check_call(name, len(args), list(keywords))
        if problem:
            self.fail(node, problem)
        if keywords:
            return lambda env: function(*[a(env) for a in args],
                                        **{k: v(env) for k, v in keywords.items()})
        if args and args[0] in self.bound and all(a in self.literals for a in args[1:]):
            return _call_on_capture(function, self.bound[args[0]],
                                    tuple(self.literals[a] for a in args[1:]))
        if len(args) == 1:
            only = args[0]
            return lambda env: function(only(env))
        return lambda env: function(*[a(env) for a in args])


def _call_on_capture(function, name: str, literals: tuple) -> Compiled:
    """``function(name, *literals)``, the usual call (``shape(x)``, ``attr(x, 'k', 0)``),
    with the lookup inlined and the literals evaluated once."""
    def call(env):
        try:
            value = env[name]
        except KeyError:
            raise GraphtoolError(f"{name!r} is not bound") from None
        return function(value, *literals)
    return call


def _as_index(value):
    value = fn.value_of(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


_SEQUENCES = (str, list, tuple)
_SCALARS = (int, float, bool, str)  # immutable literal values a literal list may hold


def _is_sequence(value) -> bool:
    return isinstance(value, _SEQUENCES)


def _binary(kind, op, left, right):
    if isinstance(left, _SEQUENCES) or isinstance(right, _SEQUENCES):
        if kind is ast.Add and _is_sequence(left) and _is_sequence(right):
            if isinstance(left, str) != isinstance(right, str):
                raise GraphtoolError("cannot add a string and a list")
            if isinstance(left, str):
                return left + right
            return list(left) + list(right)
        if kind is ast.Mod and isinstance(left, str):
            raise GraphtoolError("string formatting with % is not allowed")
        if not (isinstance(left, str) or isinstance(right, str)):
            left, right = np.asarray(left), np.asarray(right)
        else:
            raise GraphtoolError(f"cannot apply {kind.__name__} to a string")
    if kind is ast.Pow and _is_int(left) and _is_int(right) and abs(int(right)) > _MAX_INT_EXPONENT:
        raise GraphtoolError(f"integer exponent {int(right)} is too large")
    result = op(left, right)
    if isinstance(result, np.ndarray) and result.size > MAX_ELEMENTS:
        raise GraphtoolError(f"the result has {result.size} elements, over the limit of "
                             f"{MAX_ELEMENTS}")
    return result


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def truth(value) -> bool:
    """Python truth, but an array must have exactly one element to be true or false."""
    if value is True or value is False:
        return value
    value = fn.value_of(value)
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise GraphtoolError(f"an array of shape {list(value.shape)} is neither true nor "
                                 "false; wrap it in all(...) or any(...)")
        return bool(value.reshape(()))
    return bool(value)
